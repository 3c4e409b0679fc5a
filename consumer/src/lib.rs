//! The consumer: reads JSON event batches from Kafka (or raw objects in the
//! lake), validates every record, and writes valid events to
//! `bronze/events/` and everything else to `dead_letters/events/` as Parquet,
//! exactly once across crashes, with its checkpoints in the same bucket.
//!
//! Stages: [`source`] (kafka | files) → [`decode`] (bytes → rows and dead
//! letters) → [`write`] (Arrow builders → Parquet objects) → [`commit`] (the
//! intent/data/commit protocol), with [`batch`] deciding when to flush.

pub mod batch;
pub mod commit;
pub mod config;
pub mod decode;
pub mod source;
pub mod write;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lake::config::KafkaArgs;
use tracing::info;

use crate::batch::FlushLimits;
use crate::commit::Committer;
use crate::config::{Args, Source};

/// Everything the sources need, parsed once from the command line.
pub struct Context {
    pub committer: Committer,
    pub kafka: KafkaArgs,
    pub group_id: String,
    pub limits: FlushLimits,
    pub input_limits: lake::event::Limits,
    pub files_poll_interval: Duration,
    pub once: bool,
    pub shutdown: Shutdown,
}

/// Set by the first SIGINT/SIGTERM: finish the current micro-batch, commit, exit.
/// A second signal exits at once; the open intent is replayed on the next start.
#[derive(Clone, Default)]
pub struct Shutdown {
    requested: Arc<AtomicBool>,
    notify: Arc<tokio::sync::Notify>,
}

impl Shutdown {
    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    pub fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Resolves once shutdown has been requested.
    pub async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            if self.requested() {
                return;
            }
            notified.await;
        }
    }

    /// Installs the signal handlers.
    pub fn on_signals(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => return,
                };
            for round in 0.. {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                if round == 0 {
                    info!("shutdown requested: finishing the current micro-batch (signal again to abandon it)");
                    this.request();
                } else {
                    std::process::exit(130);
                }
            }
        });
    }
}

/// Runs the consumer until `--once` finishes or a signal stops it.
pub async fn run(args: Args) -> anyhow::Result<()> {
    args.validate().map_err(anyhow::Error::msg)?;
    info!(config = %args.lake.masked(), kafka = %args.kafka.masked(), source = ?args.source, once = args.once, "consumer starting");
    let lake = lake::Lake::open(&args.lake).map_err(anyhow::Error::msg)?;
    lake.check_writable().map_err(anyhow::Error::msg)?;
    startup_checks(&lake, &args).await?;
    let shutdown = Shutdown::default();
    shutdown.on_signals();
    let ctx = Context {
        committer: Committer {
            lake,
            writer: writer_name(),
            upload_concurrency: args.upload_concurrency,
        },
        kafka: args.kafka.clone(),
        group_id: args.kafka_group_id.clone(),
        limits: FlushLimits {
            records: args.flush_records,
            bytes: args.flush_bytes,
            interval: args.flush_interval,
        },
        input_limits: args.input_limits(),
        files_poll_interval: args.files_poll_interval,
        once: args.once,
        shutdown,
    };
    match args.source {
        Source::Kafka => source::kafka::run(&ctx).await,
        Source::Files => source::files::run(&ctx).await,
    }
}

/// The bucket answers (created if allowed) and refuses stale conditional
/// writes. A few attempts, so one transient S3 error at start is not fatal.
async fn startup_checks(lake: &lake::Lake, args: &Args) -> anyhow::Result<()> {
    let mut attempt = 0;
    loop {
        let result = async {
            lake.ensure_bucket(args.create_bucket).await?;
            if !args.unsafe_single_writer {
                lake.check_conditional_writes().await?;
            }
            Ok::<(), String>(())
        }
        .await;
        match result {
            Ok(()) => break,
            Err(e) if attempt >= 4 => anyhow::bail!(e),
            Err(e) => {
                attempt += 1;
                tracing::warn!(attempt, error = %e, "startup check failed; retrying");
                tokio::time::sleep(commit::backoff(attempt)).await;
            }
        }
    }
    if args.unsafe_single_writer {
        tracing::warn!(
            "UNSAFE_SINGLE_WRITER: conditional writes not checked; run exactly one consumer"
        );
    }
    Ok(())
}

/// `host/pid`: who wrote a checkpoint, for people reading it.
fn writer_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{host}/{}", std::process::id())
}
