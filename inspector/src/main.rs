//! `inspector`: DuckDB over the lake. Parses the command line and hands over
//! to the library; every failure ends here as one line on stderr and a
//! non-zero exit code.

use std::process::ExitCode;

use lake::config::{parse_command_line, print_error};

fn main() -> ExitCode {
    lake::store::load_dotenv();
    let cli: inspector::Cli = parse_command_line("inspector");
    let secrets = cli.secret_values();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            // The Delta kernel logs, as errors, the answers the inspector
            // expects and reports itself (no such version, no log yet).
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,buoyant_kernel=off".into()),
        )
        .init();
    match inspector::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            print_error("inspector", &e, &secrets);
            ExitCode::FAILURE
        }
    }
}
