//! The producer: generates events for a fixed list of users, groups them into
//! batches, deliberately corrupts a share of batches and records, and sends
//! each batch as one Kafka message or one raw object in the lake (DESIGN §1,
//! §3, §8). Everything about the content is a function of the seed and flags;
//! `--summary` reports the counts the consumer's output must match.
//!
//! Pipeline: [`generate`] (users, events, batches) → [`corrupt`] (named
//! breakage) → [`sink`] (kafka | files) → [`summary`].

pub mod config;
pub mod corrupt;
pub mod generate;
pub mod sink;
pub mod summary;

use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tracing::{debug, info, warn};

pub use config::{Config, SinkKind};
use generate::{Generator, Settings};
use sink::Sink;
use summary::Summary;

const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Logs to stderr; `RUST_LOG` filters, `info` by default.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .init();
}

/// Runs until `--batches` are sent or a signal arrives, waits for every
/// delivery, writes the summary and returns it.
pub async fn run(config: Config) -> Result<Summary> {
    info!(
        sink = config.sink.as_str(),
        batches = ?config.batches,
        batch_size = config.batch_size,
        rate = config.rate,
        corrupt_ratio = config.corrupt_ratio,
        invalid_ratio = config.invalid_ratio,
        seed = config.seed,
        users = config.users,
        start_time = %config.start_time.to_rfc3339(),
        summary = ?config.summary,
        settings = %match config.sink {
            SinkKind::Kafka => config.kafka.masked(),
            SinkKind::Files => config.lake.masked(),
        },
        "producer starting"
    );
    let mut stop = stop_on_signal();
    let mut sink = Sink::open(&config).await?;
    let mut generator = Generator::new(Settings::from_config(&config));
    let mut summary = Summary::new(config.seed, config.sink.as_str());
    let mut ticker = config.period().map(|period| {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticker
    });

    let mut seq = 0u64;
    let mut last_progress = Instant::now();
    while config.batches.is_none_or(|n| seq < n) {
        if let Some(ticker) = ticker.as_mut() {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stopped(&mut stop) => {}
            }
        }
        if *stop.borrow() {
            summary.interrupted = true;
            break;
        }
        let batch = generator.next_batch();
        let batch_id = sink.batch_id(config.seed, seq);
        debug!(batch_id, bytes = batch.payload.len(), content = ?batch.content, "sending batch");
        sink.send(seq, &batch_id, batch.payload).await?;
        summary.add(&batch_id, &batch.content);
        seq += 1;
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            info!(
                batches = seq,
                valid_records = summary.valid_records,
                "progress"
            );
        }
    }
    sink.finish().await?;

    info!(
        batches = summary.batches,
        corrupt_batches = summary.corrupt_batches,
        records = summary.records,
        valid_records = summary.valid_records,
        invalid_records = summary.invalid_records,
        first_batch_id = summary.first_batch_id.as_deref().unwrap_or("-"),
        last_batch_id = summary.last_batch_id.as_deref().unwrap_or("-"),
        interrupted = summary.interrupted,
        "producer finished"
    );
    if let Some(path) = &config.summary {
        summary.write(path)?;
    }
    Ok(summary)
}

/// Becomes true on the first SIGINT or SIGTERM; a second one exits at once,
/// for when waiting for deliveries takes too long.
fn stop_on_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut term = match signal(SignalKind::terminate()) {
            Ok(term) => Some(term),
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGTERM");
                None
            }
        };
        next_signal(&mut term).await;
        info!("signal received: stopping after the current batch");
        let _ = tx.send(true);
        next_signal(&mut term).await;
        warn!("second signal: exiting without waiting for deliveries");
        std::process::exit(130);
    });
    rx
}

async fn next_signal(term: &mut Option<Signal>) {
    let sigterm = async {
        match term {
            Some(term) => term.recv().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = sigterm => {}
    }
}

/// Resolves once a stop is requested; never, if the signal task is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}
