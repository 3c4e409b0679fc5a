//! `inspector`: DuckDB over the lake. Parses the command line and hands over
//! to the library; every failure ends here as one line on stderr and a
//! non-zero exit code.

use std::process::ExitCode;

use lake::config::{init_logging, parse_command_line, print_error, QUIET_DELTA};

fn main() -> ExitCode {
    lake::store::load_dotenv();
    let cli: inspector::Cli = parse_command_line("inspector");
    let secrets = cli.secret_values();
    init_logging("inspector", &format!("warn,{QUIET_DELTA}"));
    match inspector::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            print_error("inspector", &e, &secrets);
            ExitCode::FAILURE
        }
    }
}
