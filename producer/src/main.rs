//! `producer`: parses the command line and runs [`producer::run`]. Exit codes:
//! 0 on success (also after SIGINT/SIGTERM), 2 for a bad flag or variable,
//! 1 for anything that fails while running; every error is one line.

use std::process::ExitCode;

use lake::config::{parse_command_line, print_error};

#[tokio::main]
async fn main() -> ExitCode {
    // Before parsing: clap reads the variables `.env` provides.
    lake::store::load_dotenv();
    let config: producer::Config = parse_command_line("producer");
    let secrets = [
        config.lake.secret_values(),
        config.kafka.args.secret_values(),
    ]
    .concat();
    lake::config::init_logging("producer", "info");
    match producer::run(config).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            print_error("producer", &e, &secrets);
            ExitCode::FAILURE
        }
    }
}
