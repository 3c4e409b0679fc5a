//! What every source is handed: the settings parsed once at start, the
//! committer, the table it ingests, and the shutdown signal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lake::config::KafkaArgs;
use lake::decoder::Decoder;
use lake::layout::SourceId;
use tracing::info;

use crate::commit::{Committer, Tables};
use crate::flush::FlushLimits;

/// Everything the source of one table needs, parsed once from the command
/// line: one per table, sharing the committer and the shutdown signal.
#[derive(Clone)]
pub struct Context {
    pub committer: Committer,
    /// The table: its contract compiled.
    pub table: Arc<Decoder>,
    /// Its bronze and dead-letter Delta tables.
    pub delta: Arc<Tables>,
    /// `kafka_topic` is the table's topic.
    pub kafka: KafkaArgs,
    pub group_id: String,
    pub limits: FlushLimits,
    pub input_limits: lake::event::Limits,
    pub files_poll_interval: Duration,
    pub once: bool,
    pub shutdown: Shutdown,
}

impl Context {
    /// Partition `p` of the table's topic.
    pub fn kafka_source(&self, p: i32) -> SourceId {
        SourceId::kafka(&self.table.contract.table.table, &self.kafka.kafka_topic, p)
    }

    /// The name of the table's condition in `/readyz`: set until its source
    /// has loaded its checkpoints (Kafka: owns a partition).
    pub fn readiness(&self) -> String {
        format!("table {}", self.table.contract.table.table)
    }

    /// The table's raw prefix.
    pub fn files_source(&self) -> SourceId {
        let table = &self.table.contract.table;
        SourceId::files(&table.table, &table.raw_prefix)
    }
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
