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
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
                // The Delta kernel logs every snapshot it builds at INFO.
                .add_directive("buoyant_kernel=warn".parse().expect("a directive"))
                .add_directive("deltalake_core=warn".parse().expect("a directive")),
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
