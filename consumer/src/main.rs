//! `consumer`: see the library's documentation. Parses the command line,
//! sets up logging, runs, and turns any failure into one line and exit 1
//! (exit 2 for a bad flag or variable).

use lake::config::{parse_command_line, print_error};

fn main() {
    lake::store::load_dotenv();
    let args: consumer::config::Args = parse_command_line("consumer");
    let secrets = [args.lake.secret_values(), args.kafka.secret_values()].concat();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            // The Delta kernel logs every snapshot it builds, and expected
            // cases such as a table without a log yet, as errors.
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,buoyant_kernel=off,deltalake_core=warn")
            }),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("consumer: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(consumer::run(args)) {
        print_error("consumer", &e, &secrets);
        std::process::exit(1);
    }
}
