//! `refiner`: see the library's documentation. Parses the command line,
//! sets up logging, runs, and turns any failure into one line and exit 1
//! (exit 2 for a bad flag or variable).

use lake::config::{parse_command_line, print_error};

fn main() {
    lake::store::load_dotenv();
    let args: refiner::config::Args = parse_command_line("refiner");
    let secrets = args.lake.secret_values();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,buoyant_kernel=off,deltalake_core=warn")
            }),
        )
        .init();
    if let Err(e) = refiner::run(args) {
        print_error("refiner", &e, &secrets);
        std::process::exit(1);
    }
}
