//! `producer`: parses the command line and runs [`producer::run`]. Exit codes:
//! 0 on success (also after SIGINT/SIGTERM), 2 for a bad flag or variable,
//! 1 for anything that fails while running; every error is one line.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    // Before parsing: clap reads the variables `.env` provides.
    lake::store::load_dotenv();
    let config = match producer::Config::try_parse() {
        Ok(config) => config,
        Err(e) if e.use_stderr() => {
            // clap's first line names the flag and the problem.
            let text = e.to_string();
            eprintln!(
                "{}",
                text.lines().next().unwrap_or("error: invalid command line")
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    producer::init_tracing();
    match producer::run(config).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
