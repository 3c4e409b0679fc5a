//! `refiner`: see the library's documentation. Parses the command line,
//! sets up logging, runs, and turns any failure into one line and exit 1
//! (exit 2 for a bad flag or variable).

use lake::config::{init_logging, parse_command_line, print_error, QUIET_DELTA};

fn main() {
    lake::store::load_dotenv();
    let args: refiner::config::Args = parse_command_line("refiner");
    let secrets = args.lake.secret_values();
    init_logging("refiner", &format!("info,{QUIET_DELTA}"));
    if let Err(e) = refiner::run(args) {
        print_error("refiner", &e, &secrets);
        std::process::exit(1);
    }
}
