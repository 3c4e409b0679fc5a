//! The producer: generates events for a fixed list of users, groups them into
//! batches, deliberately corrupts a share of batches and records, and sends
//! each batch as one Kafka message or one raw object in the lake (docs/DESIGN.md §1,
//! §3, §8). Everything about the content is a function of the seed and flags;
//! `--summary` reports the counts the consumer's output must match.
//!
//! Pipeline: [`generate`] (users, events, batches), or [`from_contract`]
//! (records of `--contract`) → [`corrupt`] (named breakage) → [`arrival`]
//! (duplicates, late events) → [`sink`] (kafka | files) → [`summary`].

pub mod arrival;
pub mod config;
pub mod corrupt;
mod draw;
pub mod from_contract;
pub mod generate;
pub mod record;
pub mod sink;
pub mod summary;

use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tracing::{debug, info, warn};

pub use config::{Config, SinkKind};
use from_contract::ContractGenerator;
use generate::{Batch, Generator, Settings};
use sink::Sink;
use summary::Summary;

const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Runs until `--batches` are sent or a signal arrives, waits for every
/// delivery, writes the summary and returns it.
pub async fn run(config: Config) -> Result<Summary> {
    let contract = config
        .contract
        .as_deref()
        .map(lake::contract::Contract::load)
        .transpose()?;
    let (kafka, raw_prefix) = config.destination(contract.as_ref().map(|c| &c.table));
    info!(
        sink = config.sink.as_str(),
        batches = ?config.batches,
        batch_size = config.batch_size,
        rate = config.rate,
        corrupt_ratio = config.corrupt_ratio,
        invalid_ratio = config.invalid_ratio,
        duplicate_ratio = config.duplicate_ratio,
        late_ratio = config.late_ratio,
        late_by = ?config.late_by,
        seed = config.seed,
        users = config.users,
        start_time = %config.start_time.to_rfc3339(),
        summary = ?config.summary,
        contract = ?config.contract,
        raw_prefix,
        settings = %match config.sink {
            SinkKind::Kafka => kafka.masked(),
            SinkKind::Files => config.lake.masked(),
        },
        "producer starting"
    );
    let mut stop = stop_on_signal();
    // Before connecting: a contract no record can satisfy fails here.
    let mut source = Source::new(&config, contract)?;
    let mut sink = Sink::open(&config, &kafka, &raw_prefix).await?;
    let mut summary = match &source {
        Source::Events(_) => Summary::new(config.seed, config.sink.as_str()),
        Source::Contract(g) => Summary::with_modes(config.seed, config.sink.as_str(), g.codes()),
    };
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
        let mut batch = source.next_batch()?;
        let batch_id = sink.batch_id(config.seed, seq);
        debug!(batch_id, bytes = batch.payload.len(), content = ?batch.content, "sending batch");
        // The payload goes to the sink; the rest is counted once it is sent.
        sink.send(seq, &batch_id, std::mem::take(&mut batch.payload))
            .await?;
        summary.add(&batch_id, &batch);
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
        duplicate_records = summary.duplicate_records,
        late_records = summary.late_records,
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

/// What batches are made of: the built-in events, or a contract's records.
pub enum Source {
    Events(Box<Generator>),
    Contract(Box<ContractGenerator>),
}

impl Source {
    pub fn new(config: &Config, contract: Option<lake::contract::Contract>) -> Result<Source> {
        let settings = Settings::from_config(config);
        Ok(match contract {
            None => Source::Events(Box::new(Generator::new(settings))),
            Some(c) => Source::Contract(Box::new(ContractGenerator::new(c, settings)?)),
        })
    }

    pub fn next_batch(&mut self) -> Result<Batch> {
        match self {
            Source::Events(g) => Ok(g.next_batch()),
            Source::Contract(g) => g.next_batch(),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::collections::BTreeMap;
    use std::time::Duration;

    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message};
    use rdkafka::mocking::MockCluster;
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};

    fn config(args: &[&str]) -> Config {
        let base = [
            "producer",
            "--rate",
            "0",
            "--batch-size",
            "5",
            "--corrupt-ratio",
            "0.2",
            "--seed",
            "3",
        ];
        Config::try_parse_from(base.iter().chain(args)).expect("valid test flags")
    }

    /// The payloads the generator makes for these flags, by batch number.
    fn expected(config: &Config, n: usize) -> Vec<Vec<u8>> {
        let mut generator = Generator::new(Settings::from_config(config));
        (0..n).map(|_| generator.next_batch().payload).collect()
    }

    /// With `--duplicate-ratio` and `--late-ratio` at 0 (their default), the
    /// batches are byte for byte those of the producer before the flags
    /// existed (FNV-1a of 40 batches, taken from that build), so existing
    /// tests and benchmark data keep their data. A change of these digests
    /// changes every dataset generated with the same seed.
    #[test]
    fn without_duplicates_or_late_events_the_batches_are_as_before() {
        let orders = contract_path("orders");
        for (contract, digest) in [
            (None, 0x6b67_886d_d078_5987_u64),
            (Some(&orders), 0x6f12_8d32_37a6_71a7),
        ] {
            let zero = [
                "--duplicate-ratio",
                "0",
                "--late-ratio",
                "0",
                "--late-by",
                "1h",
            ];
            for extra in [&[][..], &zero[..]] {
                let mut args = vec![
                    "producer",
                    "--batch-size",
                    "25",
                    "--corrupt-ratio",
                    "0.1",
                    "--invalid-ratio",
                    "0.1",
                    "--seed",
                    "42",
                ];
                args.extend(extra);
                if let Some(path) = contract {
                    args.extend(["--contract", path]);
                }
                let config = Config::try_parse_from(args).expect("valid test flags");
                let loaded = config
                    .contract
                    .as_deref()
                    .map(|path| lake::contract::Contract::load(path).expect("contract loads"));
                let mut source = Source::new(&config, loaded).expect("a source");
                let mut hash = 0xcbf2_9ce4_8422_2325_u64;
                for _ in 0..40 {
                    for byte in source.next_batch().expect("a batch").payload {
                        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
                    }
                }
                assert_eq!(hash, digest, "{contract:?} {extra:?}");
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kafka_sink_sends_one_message_per_batch() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster.create_topic("batches", 3, 1).expect("topic");
        let servers = cluster.bootstrap_servers();
        let config = config(&[
            "--batches",
            "30",
            "--kafka-bootstrap-servers",
            &servers,
            "--kafka-topic",
            "batches",
        ]);
        let summary = run(config.clone()).await.expect("run succeeds");
        assert_eq!(summary.batches, 30);
        assert_eq!(summary.first_batch_id.as_deref(), Some("s3-000000000"));
        assert_eq!(summary.last_batch_id.as_deref(), Some("s3-000000029"));

        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &servers)
            .set("group.id", "test")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut partitions = TopicPartitionList::new();
        for p in 0..3 {
            partitions
                .add_partition_offset("batches", p, Offset::Beginning)
                .expect("offset");
        }
        consumer.assign(&partitions).expect("assign");
        let mut received = BTreeMap::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while received.len() < 30 && std::time::Instant::now() < deadline {
            let Some(message) = consumer.poll(Duration::from_millis(200)) else {
                continue;
            };
            let message = message.expect("no consumer error");
            let key = String::from_utf8(message.key().expect("key").to_vec()).expect("utf-8 key");
            let header = message.headers().expect("headers").get(0);
            assert_eq!(header.key, "batch-id");
            assert_eq!(header.value, Some(key.as_bytes()));
            received.insert(key, message.payload().unwrap_or_default().to_vec());
        }
        let want: BTreeMap<String, Vec<u8>> = expected(&config, 30)
            .into_iter()
            .enumerate()
            .map(|(seq, payload)| (format!("s3-{seq:09}"), payload))
            .collect();
        assert_eq!(received, want);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kafka_sink_fails_on_a_missing_topic() {
        // The mock cluster creates topics on request: the producer must not ask.
        let cluster = MockCluster::new(1).expect("mock cluster");
        let servers = cluster.bootstrap_servers();
        let config = config(&[
            "--batches",
            "1",
            "--kafka-bootstrap-servers",
            &servers,
            "--kafka-topic",
            "absent",
        ]);
        let error = format!("{:#}", run(config).await.expect_err("no such topic"));
        assert!(
            error.contains("topic absent (KAFKA_TOPIC) does not exist") && error.contains(&servers),
            "{error}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn files_sink_writes_raw_objects_and_summary() {
        let dir = tempfile::tempdir().expect("temp dir");
        let lake = dir.path().join("lake");
        let summary_path = dir.path().join("summary.json");
        let config = config(&[
            "--sink",
            "files",
            "--batches",
            "12",
            "--lake-url",
            lake.to_str().expect("utf-8 path"),
            "--summary",
            summary_path.to_str().expect("utf-8 path"),
        ]);
        let summary = run(config.clone()).await.expect("run succeeds");
        let runs: Vec<_> = std::fs::read_dir(lake.join("raw/events"))
            .expect("run dir")
            .collect();
        assert_eq!(runs.len(), 1);
        let run_dir = runs.into_iter().next().expect("one").expect("entry").path();
        let run_name = run_dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_string();
        assert!(run_name.ends_with("-s3"), "{run_name}");
        for (seq, payload) in expected(&config, 12).into_iter().enumerate() {
            let key = lake::layout::raw_key("raw/events/", &run_name, seq as u64);
            assert_eq!(
                std::fs::read(lake.join(&key)).expect("object"),
                payload,
                "{key}"
            );
        }
        assert_eq!(summary.last_batch_id, Some(format!("{run_name}-000000011")));
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&summary_path).expect("summary")).expect("JSON");
        assert_eq!(written["batches"], 12);
        assert_eq!(
            written["records"],
            summary.valid_records + summary.invalid_records
        );
        assert_eq!(written["records"], (12 - summary.corrupt_batches) * 5);
        // No duplicates by default: every valid record is unique.
        assert_eq!(written["duplicate_records"], 0);
        assert_eq!(written["unique_valid_records"], summary.valid_records);
        assert_eq!(written["late_records"], 0);
    }

    fn contract_path(name: &str) -> String {
        format!(
            "{}/../contracts/{name}.schema.json",
            env!("CARGO_MANIFEST_DIR")
        )
    }

    /// With a contract, the files sink writes under its raw prefix, the
    /// records are the contract's, and the summary counts by error code.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn files_sink_writes_contract_records_under_its_prefix() {
        let dir = tempfile::tempdir().expect("temp dir");
        let lake = dir.path().join("lake");
        let orders = contract_path("orders");
        let config = config(&[
            "--sink",
            "files",
            "--batches",
            "6",
            "--invalid-ratio",
            "0.3",
            "--contract",
            &orders,
            "--lake-url",
            lake.to_str().expect("utf-8 path"),
        ]);
        let summary = run(config.clone()).await.expect("run succeeds");
        assert!(!lake.join("raw/events").exists());
        let runs: Vec<_> = std::fs::read_dir(lake.join("raw/orders"))
            .expect("run dir under the contract's raw prefix")
            .collect();
        let run_dir = runs.into_iter().next().expect("one").expect("entry").path();
        let run_name = run_dir.file_name().and_then(|n| n.to_str()).expect("name");
        let contract =
            lake::contract::Contract::load(std::path::Path::new(&orders)).expect("loads");
        let mut source = Source::new(&config, Some(contract)).expect("generator");
        for seq in 0..6u64 {
            let key = lake::layout::raw_key("raw/orders/", run_name, seq);
            let payload = source.next_batch().expect("batch").payload;
            assert_eq!(
                std::fs::read(lake.join(&key)).expect("object"),
                payload,
                "{key}"
            );
        }
        assert!(summary.invalid_modes.contains_key("pattern_mismatch"));
        assert!(
            !summary.invalid_modes.contains_key("bad_uuid"),
            "orders has no uuid"
        );
        assert_eq!(
            summary.invalid_modes.values().sum::<u64>(),
            summary.invalid_records
        );
        assert!(summary.invalid_records > 0);
    }

    /// The topic defaults to the contract's; an explicit one wins.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kafka_sink_takes_the_contract_topic_unless_one_is_given() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster.create_topic("sensors", 1, 1).expect("topic");
        let servers = cluster.bootstrap_servers();
        let sensors = contract_path("sensor_readings");
        let args = [
            "--batches",
            "2",
            "--kafka-bootstrap-servers",
            &servers,
            "--contract",
            &sensors,
        ];
        let summary = run(config(&args))
            .await
            .expect("sent to the contract's topic");
        assert_eq!(summary.batches, 2);
        let error = format!(
            "{:#}",
            run(config(&[&args[..], &["--kafka-topic", "events"]].concat()))
                .await
                .expect_err("events does not exist")
        );
        assert!(
            error.contains("topic events (KAFKA_TOPIC) does not exist"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_contract_that_does_not_compile_is_one_error_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bad.schema.json");
        std::fs::write(&path, br#"{"type": "object", "properties": {}}"#).expect("write");
        let config = config(&[
            "--contract",
            path.to_str().expect("utf-8"),
            "--batches",
            "1",
        ]);
        let error = format!("{:#}", run(config).await.expect_err("refused"));
        assert!(
            error.starts_with("contract ") && error.contains("bad.schema.json"),
            "{error}"
        );
        assert!(error.contains("x-lakehouse"), "{error}");
    }
}
