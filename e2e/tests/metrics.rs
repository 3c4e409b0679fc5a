//! The consumer's `/metrics`, `/healthz` and `/readyz` (docs/DESIGN.md §14),
//! read as Prometheus and an orchestrator would:
//! * after an end-to-end run from the mock Kafka cluster to moto S3, every
//!   counter equals what the lake holds (rows, dead letters by code,
//!   messages, micro-batches, files and bytes), the lag is zero, and the
//!   S3 requests, owned partitions, freshness and process metrics are there;
//! * with S3 unreachable for a while (the fault proxy refuses every
//!   request), `/readyz` answers 503 naming the bucket and comes back to 200,
//!   `/healthz` stays 200, the retries are counted, and the data still lands
//!   exactly once.

mod common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use lake::layout::SourceId;
use object_store::ObjectStore;
use testkit::{Fault, FaultProxy, Op, Rule};

const TOPIC_PARTITIONS: i32 = 3;

/// A continuous consumer with its endpoints on a free port, logging to a file.
fn start_consumer(env: &Env) -> (Background, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let log = std::fs::File::create(env.dir.path().join("consumer.log")).expect("log file");
    let child = env
        .command(
            "consumer",
            &[
                "--source",
                "kafka",
                "--flush-records",
                "300",
                "--flush-interval",
                "1s",
            ],
        )
        .env("METRICS_ADDR", &addr)
        .env("COMPACT_MIN_FILES", "0")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn consumer");
    (Background(child), addr)
}

fn consumer_log(env: &Env) -> String {
    std::fs::read_to_string(env.dir.path().join("consumer.log")).unwrap_or_default()
}

/// [`wait_until`], ending with the consumer's log when it times out.
fn wait_for(env: &Env, what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !condition() {
        if std::time::Instant::now() > deadline {
            panic!(
                "timed out after {timeout:?} waiting for {what}; consumer log:\n{}",
                tail(&consumer_log(env), 4000)
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn scrape(addr: &str) -> Vec<Sample> {
    match http_get(addr, "/metrics") {
        Some((200, body)) => samples(&body),
        other => panic!("GET /metrics: {other:?}"),
    }
}

/// Every counter of the lake's `events` tables, as the lake itself says.
#[derive(Debug)]
struct LakeCounts {
    bronze: u64,
    dead_letters: u64,
    by_code: BTreeMap<String, u64>,
    micro_batches: u64,
    messages: u64,
    /// Parquet objects under each layer's prefix, and their bytes.
    files: BTreeMap<&'static str, (u64, u64)>,
}

fn lake_counts(env: &Env, topic: &str) -> LakeCounts {
    let by_code = env
        .query("SELECT error_code, count(*) AS n FROM dead_letters.events GROUP BY ALL")
        .iter()
        .map(|row| {
            (
                row["error_code"].as_str().expect("a code").to_string(),
                row["n"].as_u64().expect("a count"),
            )
        })
        .collect();
    let (lake, runtime) = env.lake();
    let (mut micro_batches, mut messages) = (0, 0);
    for p in 0..TOPIC_PARTITIONS {
        let source = SourceId::kafka("events", topic, p);
        let state = runtime
            .block_on(lake::checkpoint::load(&lake, &source))
            .expect("checkpoint");
        micro_batches += state.checkpoint.totals.micro_batches;
        messages += state.checkpoint.totals.messages;
    }
    let mut files = BTreeMap::new();
    for (layer, prefix) in [
        ("bronze", "bronze/events/"),
        ("dead_letters", "dead_letters/events/"),
    ] {
        let objects: Vec<object_store::ObjectMeta> = runtime.block_on(async {
            use futures::TryStreamExt;
            lake.store
                .list(Some(&object_store::path::Path::from(prefix)))
                .try_collect()
                .await
                .expect("listing")
        });
        let parquet = objects
            .iter()
            .filter(|o| o.location.as_ref().ends_with(".parquet"));
        files.insert(
            layer,
            parquet.fold((0, 0), |(n, bytes), o| (n + 1, bytes + o.size)),
        );
    }
    LakeCounts {
        bronze: env.count("SELECT count(*) FROM bronze.events"),
        dead_letters: env.count("SELECT count(*) FROM dead_letters.events"),
        by_code,
        micro_batches,
        messages,
        files,
    }
}

#[test]
fn a_scrape_after_a_run_equals_the_lake() {
    let moto = Moto::start();
    let kafka = Kafka::start("events-metrics", TOPIC_PARTITIONS);
    let env = Env::kafka(&moto, &kafka, "lake-metrics");
    let mut produce = PRODUCE.to_vec();
    produce.extend(["--sink", "kafka"]);
    let summary = env.produce(&produce);
    let (valid, invalid, corrupt) = (
        num(&summary, "valid_records"),
        num(&summary, "invalid_records"),
        num(&summary, "corrupt_batches"),
    );
    let (_consumer, addr) = start_consumer(&env);
    wait_for(
        &env,
        "the consumer to commit every record",
        Duration::from_secs(120),
        || {
            let m = http_get(&addr, "/metrics").map(|(_, body)| samples(&body));
            m.is_some_and(|m| {
                metric(&m, "lakehouse_records_total", &[("outcome", "bronze")]) == valid as f64
                    && metric(&m, "lakehouse_records_total", &[("outcome", "dead_letter")])
                        == (invalid + corrupt) as f64
            })
        },
    );
    // librdkafka's statistics come once a second: the lag follows.
    wait_for(
        &env,
        "the lag to reach zero",
        Duration::from_secs(30),
        || {
            let m = scrape(&addr);
            metric(&m, "lakehouse_kafka_lag_messages", &[]) == 0.0
                && m.iter()
                    .filter(|s| s.name == "lakehouse_kafka_lag_messages")
                    .count()
                    == TOPIC_PARTITIONS as usize
        },
    );
    let m = scrape(&addr);
    let lake = lake_counts(&env, &kafka.topic);
    // What was compared, for a failure and for the record (`--nocapture`).
    eprintln!("lake: {lake:?}");
    for s in m.iter().filter(|s| {
        s.name.starts_with("lakehouse_") && !s.name.contains("_bucket") && s.value != 0.0
    }) {
        eprintln!("scrape: {} {:?} {}", s.name, s.labels, s.value);
    }
    let events = [("table", "events")];
    let get = |name: &str, labels: &[(&str, &str)]| metric(&m, name, labels) as u64;

    assert_eq!(lake.bronze, valid, "bronze rows in the lake");
    assert_eq!(
        get(
            "lakehouse_records_total",
            &[("table", "events"), ("outcome", "bronze")]
        ),
        lake.bronze
    );
    assert_eq!(
        get(
            "lakehouse_records_total",
            &[("table", "events"), ("outcome", "dead_letter")]
        ),
        lake.dead_letters
    );
    let by_code: BTreeMap<String, u64> = m
        .iter()
        .filter(|s| s.name == "lakehouse_dead_letters_total")
        .map(|s| (s.labels["error_code"].clone(), s.value as u64))
        .collect();
    assert_eq!(by_code, lake.by_code, "dead letters by code");
    assert!(
        lake.by_code.len() >= 2,
        "the run must have several codes: {by_code:?}"
    );
    assert_eq!(get("lakehouse_messages_total", &events), lake.messages);
    assert_eq!(
        lake.messages,
        num(&summary, "batches"),
        "messages in the checkpoints"
    );
    assert_eq!(
        get("lakehouse_micro_batches_total", &events),
        lake.micro_batches
    );
    for (layer, (files, bytes)) in &lake.files {
        let labels = [("table", "events"), ("layer", *layer)];
        assert_eq!(
            get("lakehouse_written_files_total", &labels),
            *files,
            "{layer} files"
        );
        assert_eq!(
            get("lakehouse_written_bytes_total", &labels),
            *bytes,
            "{layer} bytes"
        );
    }
    assert_eq!(
        get(
            "lakehouse_owned_partitions",
            &[("topic", kafka.topic.as_str())]
        ),
        TOPIC_PARTITIONS as u64
    );
    assert_eq!(get("lakehouse_lost_ownership_total", &[]), 0);
    // Every object written was one successful PUT at least.
    let files: u64 = lake.files.values().map(|(n, _)| n).sum();
    assert!(
        get(
            "lakehouse_s3_requests_total",
            &[("operation", "put"), ("status", "200")]
        ) >= files,
        "S3 PUTs counted"
    );
    // One commit histogram per stage, one observation per flush.
    let flushes = get(
        "lakehouse_commit_duration_seconds_count",
        &[("stage", "delta_commit")],
    );
    assert!(
        flushes > 0 && flushes <= lake.micro_batches,
        "{flushes} flushes"
    );
    for stage in ["encode", "upload", "checkpoint"] {
        assert_eq!(
            get(
                "lakehouse_commit_duration_seconds_count",
                &[("stage", stage)]
            ),
            flushes,
            "{stage} observations"
        );
    }
    let freshness = metric(&m, "lakehouse_freshness_seconds", &events);
    assert!(
        freshness > 0.0 && freshness < 600.0,
        "freshness {freshness}"
    );
    assert!(
        get("process_resident_memory_bytes", &[]) > 1 << 20,
        "process metrics"
    );
    assert_eq!(http_get(&addr, "/healthz").map(|(s, _)| s), Some(200));
    assert_eq!(
        http_get(&addr, "/readyz"),
        Some((200, "ready\n".to_string()))
    );
    // The progress line carries the lag after each commit.
    let log = consumer_log(&env);
    assert!(
        log.contains("micro-batch committed") && log.contains("lag_messages="),
        "{}",
        tail(&log, 2000)
    );

    // The refiner on the same lake: every model runs, catches up with
    // bronze (version lag 0), and says what it wrote.
    let refiner_addr = format!("127.0.0.1:{}", free_port());
    let models = format!("{}/../models", env!("CARGO_MANIFEST_DIR"));
    let _refiner = Background(
        env.command("refiner", &["--models", &models, "--interval", "1s"])
            .env("METRICS_ADDR", &refiner_addr)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn refiner"),
    );
    let expected_models = [
        "silver.events",
        "gold.events_per_minute",
        "gold.dead_letter_rate",
    ];
    wait_for(
        &env,
        "every model caught up",
        Duration::from_secs(120),
        || {
            let Some((200, body)) = http_get(&refiner_addr, "/metrics") else {
                return false;
            };
            let m = samples(&body);
            expected_models.iter().all(|model| {
                let ok = [("model", *model), ("outcome", "ok")];
                let lag = m.iter().find(|s| {
                    s.name == "lakehouse_model_version_lag" && s.labels["model"] == *model
                });
                metric(&m, "lakehouse_model_runs_total", &ok) > 0.0
                    && lag.is_some_and(|s| s.value == 0.0)
            })
        },
    );
    let m = scrape(&refiner_addr);
    assert_eq!(
        metric(&m, "lakehouse_model_runs_total", &[("outcome", "failed")]),
        0.0,
        "failed model runs"
    );
    // One full run of silver.events wrote every row it holds; later rounds had nothing new.
    assert_eq!(
        metric(
            &m,
            "lakehouse_model_rows_written_total",
            &[("model", "silver.events")]
        ) as u64,
        env.count("SELECT count(*) FROM silver.events")
    );
    assert_eq!(
        http_get(&refiner_addr, "/readyz"),
        Some((200, "ready\n".to_string()))
    );
}

#[test]
fn readyz_follows_the_bucket_and_healthz_stays_alive() {
    let moto = Moto::start();
    let kafka = Kafka::start("events-ready", TOPIC_PARTITIONS);
    let proxy = FaultProxy::start(&moto.endpoint);
    let direct = Env::kafka(&moto, &kafka, "lake-ready");
    let mut faulted = Env::kafka(&moto, &kafka, "lake-ready");
    faulted.set("AWS_ENDPOINT_URL", proxy.endpoint.clone());
    let (_consumer, addr) = start_consumer(&faulted);
    wait_for(
        &faulted,
        "/readyz to answer 200",
        Duration::from_secs(60),
        || http_get(&addr, "/readyz").is_some_and(|(status, _)| status == 200),
    );

    // S3 goes away: every request of every kind fails with 503.
    proxy.set_rules(vec![Rule::new(Op::ALL, Fault::slow_down())]);
    let mut produce = PRODUCE.to_vec();
    produce.extend(["--sink", "kafka"]);
    let summary = direct.produce(&produce);
    let mut not_ready = String::new();
    wait_for(
        &faulted,
        "/readyz to answer 503",
        Duration::from_secs(30),
        || match http_get(&addr, "/readyz") {
            Some((503, body)) => {
                not_ready = body;
                true
            }
            _ => false,
        },
    );
    assert!(
        not_ready.starts_with("not ready: bucket unreachable") || not_ready.contains("bucket"),
        "{not_ready}"
    );
    // The consumer retries meanwhile; it is alive, not stuck.
    wait_for(
        &faulted,
        "a retry to be counted",
        Duration::from_secs(30),
        || metric(&scrape(&addr), "lakehouse_retries_total", &[]) > 0.0,
    );
    assert_eq!(http_get(&addr, "/healthz").map(|(s, _)| s), Some(200));
    let refused = metric(
        &scrape(&addr),
        "lakehouse_s3_requests_total",
        &[("status", "503")],
    );
    assert!(refused > 0.0, "refused requests counted");

    // S3 comes back.
    proxy.clear_rules();
    wait_for(
        &faulted,
        "/readyz to answer 200 again",
        Duration::from_secs(30),
        || http_get(&addr, "/readyz").is_some_and(|(status, _)| status == 200),
    );
    let valid = num(&summary, "valid_records");
    wait_for(
        &faulted,
        "every record committed",
        Duration::from_secs(120),
        || {
            metric(
                &scrape(&addr),
                "lakehouse_records_total",
                &[("outcome", "bronze")],
            ) == valid as f64
        },
    );
    assert_exactly_once(&direct, &summary);
}
