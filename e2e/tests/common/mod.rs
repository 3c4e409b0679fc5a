//! Test harness: the real binaries, a moto S3 server and librdkafka's mock
//! cluster, all on loopback, each test with its own bucket or directory and topic.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use serde_json::Value;

/// A built binary of the workspace, next to the test executable's folder.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --release --workspace` first (make test does)",
        path.display()
    );
    path
}

pub use testkit::{free_port, Moto};

/// The mock Kafka cluster with one topic of `partitions` partitions.
pub struct Kafka {
    pub cluster: MockCluster<'static, DefaultProducerContext>,
    pub topic: String,
}

impl Kafka {
    pub fn start(topic: &str, partitions: i32) -> Kafka {
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster
            .create_topic(topic, partitions, 1)
            .expect("create topic");
        Kafka {
            cluster,
            topic: topic.to_string(),
        }
    }

    pub fn bootstrap(&self) -> String {
        self.cluster.bootstrap_servers()
    }
}

/// Environment and working directory for one test's binaries.
pub struct Env {
    pub vars: Vec<(String, String)>,
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            vars: vec![
                ("RUST_LOG".into(), "info,buoyant_kernel=off".into()),
                // The inspector reads the Delta tables with delta_scan.
                ("DUCKDB_DELTA_EXTENSION".into(), testkit::delta_extension()),
            ],
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.vars.retain(|(k, _)| k != key);
        self.vars.push((key.into(), value.into()));
        self
    }

    pub fn s3(moto: &Moto, bucket: &str) -> Env {
        let mut env = Env::new();
        env.set("LAKE_URL", format!("s3://{bucket}"))
            .set("AWS_ENDPOINT_URL", moto.endpoint.clone())
            .set("AWS_ACCESS_KEY_ID", "testing-key")
            .set("AWS_SECRET_ACCESS_KEY", "testing-secret")
            .set("AWS_REGION", "us-east-1");
        env.set("DUCKDB_HTTPFS_EXTENSION", testkit::httpfs_extension());
        env
    }

    /// An S3 lake on `moto` fed by the mock cluster's topic, with its own consumer group.
    pub fn kafka(moto: &Moto, kafka: &Kafka, bucket: &str) -> Env {
        let mut env = Env::s3(moto, bucket);
        env.set("KAFKA_BOOTSTRAP_SERVERS", kafka.bootstrap())
            .set("KAFKA_TOPIC", kafka.topic.clone())
            .set("KAFKA_GROUP_ID", format!("{bucket}-group"));
        env
    }

    /// A command for one of the binaries, in the test's directory (so no
    /// `.env` is read) with only this test's settings.
    pub fn command(&self, binary: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin(binary));
        cmd.args(args).current_dir(self.dir.path());
        for (key, _) in std::env::vars() {
            if key.starts_with("AWS_")
                || key.starts_with("KAFKA_")
                || key.starts_with("LAKE_")
                || key.starts_with("DUCKDB_")
            {
                cmd.env_remove(key);
            }
        }
        // Tests run many consumers at once: no endpoints unless a test asks.
        cmd.env("METRICS_ADDR", "");
        cmd.envs(self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd
    }

    /// Runs to completion; panics with its output unless it exits 0.
    pub fn run(&self, binary: &str, args: &[&str]) -> Output {
        let out = self.command(binary, args).output().expect("spawn");
        assert!(
            out.status.success(),
            "{binary} {args:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            tail(&String::from_utf8_lossy(&out.stderr), 4000)
        );
        out
    }

    /// Runs the producer and returns its summary.
    pub fn produce(&self, args: &[&str]) -> Value {
        let summary = self
            .dir
            .path()
            .join(format!("summary-{}.json", free_port()));
        let summary_arg = summary.display().to_string();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--summary", &summary_arg]);
        self.run("producer", &all);
        serde_json::from_slice(&std::fs::read(&summary).expect("summary written"))
            .expect("summary is JSON")
    }

    /// `inspector query SQL --format json`, parsed.
    pub fn query(&self, sql: &str) -> Vec<Value> {
        let out = self.run("inspector", &["query", sql, "--format", "json"]);
        let value: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "inspector output is not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        value.as_array().expect("a JSON array of rows").clone()
    }

    /// Like [`Env::count`], for polling while the consumer writes: a failed
    /// query is printed and gives `None` instead of ending the test.
    pub fn try_count(&self, sql: &str) -> Option<u64> {
        let out = self
            .command("inspector", &["query", sql, "--format", "json"])
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "inspector failed while polling: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        let rows: Value = serde_json::from_slice(&out.stdout).ok()?;
        rows.get(0)?.as_object()?.values().next()?.as_u64()
    }

    /// The lake this test's binaries write, opened from the same settings,
    /// with a runtime to call it from a test.
    pub fn lake(&self) -> (lake::Lake, tokio::runtime::Runtime) {
        let var = |key: &str| {
            self.vars
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let mut lake_url = var("LAKE_URL").expect("LAKE_URL");
        if !lake_url.contains("://") && !lake_url.starts_with('/') {
            lake_url = self.dir.path().join(lake_url).display().to_string();
        }
        let lake = lake::Lake::open(&lake::LakeArgs {
            lake_url,
            aws_endpoint_url: var("AWS_ENDPOINT_URL"),
            aws_access_key_id: var("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
            aws_region: var("AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
            ..Default::default()
        })
        .expect("lake");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        (lake, runtime)
    }

    /// A single number from a one-row, one-column query.
    pub fn count(&self, sql: &str) -> u64 {
        let rows = self.query(sql);
        let row = rows.first().and_then(Value::as_object).expect("one row");
        row.values()
            .next()
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("not a count: {row:?}"))
    }
}

/// 240 batches of 50 (spread over the topic's partitions), with corrupt
/// batches and invalid records: the producer arguments most scenarios share.
pub const PRODUCE: &[&str] = &[
    "--batches",
    "240",
    "--batch-size",
    "50",
    "--rate",
    "0",
    "--corrupt-ratio",
    "0.05",
    "--invalid-ratio",
    "0.02",
    "--seed",
    "7",
];

/// A background process killed when the test ends, pass or fail.
pub struct Background(pub std::process::Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

pub fn num(summary: &Value, field: &str) -> u64 {
    summary[field]
        .as_u64()
        .unwrap_or_else(|| panic!("summary has no {field}: {summary}"))
}

/// The checks every scenario ends with: exact counts against the producer's
/// summary, and no event twice.
pub fn assert_exactly_once(env: &Env, summary: &Value) {
    let valid = num(summary, "valid_records");
    let invalid = num(summary, "invalid_records");
    let corrupt = num(summary, "corrupt_batches");
    assert!(
        valid > 0 && invalid > 0 && corrupt > 0,
        "the scenario must exercise every path: {summary}"
    );
    assert_eq!(num(summary, "records"), valid + invalid);
    assert_eq!(
        env.count("SELECT count(*) FROM bronze.events"),
        valid,
        "bronze rows"
    );
    assert_eq!(
        env.count("SELECT count(DISTINCT event_id) FROM bronze.events"),
        valid,
        "distinct event_ids in bronze"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM dead_letters.events"),
        invalid + corrupt,
        "dead-letter rows"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM dead_letters.events WHERE error_kind = 'corrupt_batch' AND record_index IS NULL"),
        corrupt,
        "corrupt batches"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM dead_letters.events WHERE error_kind = 'invalid_record'"),
        invalid,
        "invalid records"
    );
    // Every (batch, record) position appears once across both tables.
    assert_eq!(
        env.count(
            "SELECT count(*) FROM (SELECT batch_id, record_index FROM (\
             SELECT batch_id, record_index FROM bronze.events UNION ALL \
             SELECT batch_id, record_index FROM dead_letters.events WHERE record_index IS NOT NULL) \
             GROUP BY ALL HAVING count(*) > 1)"
        ),
        0,
        "a record position appears twice"
    );
    assert_txns_match_checkpoints(env, "events");
}

/// The Delta logs agree with the checkpoints: no intent is left open, and
/// for every source of `table` the newest `txn` version in its bronze or
/// dead-letter log is the end of the checkpoint's last range (neither is
/// past it).
pub fn assert_txns_match_checkpoints(env: &Env, table: &str) {
    let (lake, runtime) = env.lake();
    runtime.block_on(async {
        use futures::TryStreamExt;
        use lake::layout;
        use object_store::ObjectStoreExt;
        let prefix = lake::Lake::path(&layout::checkpoints_prefix(table));
        let keys: Vec<_> = lake
            .store
            .list(Some(&prefix))
            .try_collect::<Vec<_>>()
            .await
            .expect("list checkpoints");
        let open = |prefix: String| {
            let lake = &lake;
            async move {
                delta::Table::open(lake, &prefix, delta::AsOf::Latest)
                    .await
                    .expect("open a Delta table")
            }
        };
        let mut bronze = open(layout::bronze_prefix(table)).await;
        let mut dead = open(layout::dead_letters_prefix(table)).await;
        let mut sources = 0;
        for meta in keys.iter().filter(|m| m.location.as_ref().ends_with(".json")) {
            let bytes = lake
                .store
                .get(&meta.location)
                .await
                .expect("get")
                .bytes()
                .await
                .expect("bytes");
            let checkpoint: lake::checkpoint::Checkpoint =
                serde_json::from_slice(&bytes).expect("a checkpoint");
            assert_eq!(checkpoint.intent, None, "open intent in {}", meta.location);
            if checkpoint.totals.micro_batches == 0 {
                continue;
            }
            let end = checkpoint
                .next_offset()
                .map_or(checkpoint.totals.micro_batches as i64 - 1, |next| next - 1);
            let tag = checkpoint.source.tag();
            let in_bronze = txn_of(bronze.as_mut(), &tag).await;
            let in_dead = txn_of(dead.as_mut(), &tag).await;
            assert_eq!(
                in_bronze.max(in_dead),
                Some(end),
                "{}: txn versions (bronze {in_bronze:?}, dead letters {in_dead:?}) vs the checkpoint's end {end}",
                meta.location
            );
            sources += 1;
        }
        assert!(sources > 0, "no checkpoint of {table} with a micro-batch");
    });
}

async fn txn_of(table: Option<&mut delta::Table>, source: &str) -> Option<i64> {
    match table {
        Some(table) => table.committed_through(source).await.expect("txn"),
        None => None,
    }
}

/// Waits for `condition` with a deadline instead of sleeping a fixed time.
pub fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `GET path` from `addr` (host:port): the status and the body, or `None`
/// when nothing answers. A plain HTTP/1.1 exchange, closed after one reply.
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// One sample of a Prometheus text exposition.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub value: f64,
}

/// The samples of a Prometheus text exposition (label values without
/// escapes, which is all the binaries write).
pub fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|pair| !pair.is_empty())
                .filter_map(|pair| {
                    let (key, value) = pair.split_once('=')?;
                    Some((key.to_string(), value.trim_matches('"').to_string()))
                })
                .collect();
            Some(Sample {
                name: name.to_string(),
                labels,
                value: value.parse().ok()?,
            })
        })
        .collect()
}

/// The sum of metric `name` over the series whose labels include `labels`.
pub fn metric(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}
