//! `consumer`: see the library's documentation. Parses the command line,
//! sets up logging, runs, and turns any failure into one line and exit 1
//! (exit 2 for a bad flag or variable).

use lake::config::{init_logging, parse_command_line, print_error, QUIET_DELTA};

fn main() {
    bound_freed_memory();
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

/// Buffers of 1 MiB or more are mapped on their own and returned to the
/// system when freed. glibc otherwise raises that threshold as large blocks
/// are freed, and then keeps the freed room of every micro-batch's arrays
/// in its arenas: at 400 partitions and ten times the backlog the peak RSS
/// rose from 258 to 391 MiB while the live heap stayed at 175 MiB; with
/// this setting it stays at about 260 MiB, in the same time.
///
/// Fixing that threshold also fixes the trim threshold at its 128 KiB
/// default, so the top of the heap went back to the system after nearly
/// every batch and was faulted in again for the next; it is 1 MiB too: the
/// files path on one core faults 50,000 pages for 1 M events instead of
/// 62,000. Higher trim thresholds fault less (41,000 at 16 MiB) but keep
/// more: 341 MiB at 400 partitions and ten times the backlog, against 261.
/// `MALLOC_MMAP_THRESHOLD_` and `MALLOC_TRIM_THRESHOLD_` in the environment win.
#[allow(unsafe_code)]
fn bound_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    for (variable, parameter, value) in [
        ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, 1 << 20),
        ("MALLOC_TRIM_THRESHOLD_", libc::M_TRIM_THRESHOLD, 1 << 20),
    ] {
        if std::env::var_os(variable).is_none() {
            // SAFETY: mallopt only sets a parameter of the allocator; called
            // before any other thread exists.
            unsafe {
                libc::mallopt(parameter, value);
            }
        }
    }
}
