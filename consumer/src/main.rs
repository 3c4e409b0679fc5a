//! `consumer`: see the library's documentation. Parses the command line,
//! sets up logging, runs, and turns any failure into one line and exit 1
//! (exit 2 for a bad flag or variable).

use lake::config::{init_logging, parse_command_line, print_error, QUIET_DELTA};

fn main() {
    lake::store::load_dotenv();
    let args: consumer::config::Args = parse_command_line("consumer");
    let secrets = [args.lake.secret_values(), args.kafka.secret_values()].concat();
    init_logging("consumer", &format!("info,{QUIET_DELTA}"));
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
