//! `pathbench`: the consumer's whole path (the "Whole path" and "Freshness"
//! measurements of the README's Benchmarks section, `make bench`), with the
//! real `producer` and `consumer` binaries and librdkafka's mock cluster
//! running inside this process. Prints one JSON line per run.
//!
//! * `throughput`: the producer fills a topic with the `make bench` dataset
//!   (same flags and seed, so the same batches), then `consumer --once`
//!   drains it into a local lake or a bucket on a moto server, pinned to one
//!   core with one worker thread (`--all-cores`: every core, the default
//!   threads). The bronze objects' count and median size are reported for a
//!   local lake. Wall time and peak RSS come from
//!   `bench/measure.py`; the Delta commit time per micro-batch (p50, p99,
//!   max) from the consumer's log. The lake's counts, read through the
//!   inspector (DuckDB), must equal the producer's summary, or the run fails.
//! * `freshness`: the consumer runs continuously while the producer sends at a
//!   steady rate. An event is visible when the Delta commit that adds the
//!   Parquet object holding it is in bronze's log (readers see a snapshot);
//!   its latency is the first listing of the log that shows the commit minus
//!   its Kafka timestamp, which the producer's client sets when it sends.
//! * `gold-freshness`: the same with the refiner running too (both with
//!   their default intervals): an event is visible in `gold.events_per_minute`
//!   from the first gold commit whose `txn` reflects a silver commit whose
//!   `txn` reflects the bronze commit holding it (commits seen by listing
//!   each log every 50 ms).
//! * `log-read`: the read side of a long-lived table. One micro-batch goes
//!   through the real binaries, then `--commits` appends of a copy of its file
//!   go through the consumer's own Delta code (`delta::Table::append`, a
//!   checkpoint every 100 commits). `count(*)` of `bronze.events` is timed as
//!   whole processes (the inspector with DuckDB's `delta_scan`, the inspector
//!   reading the snapshot's file list itself, and the official DuckDB CLI's
//!   `delta_scan`), on the table as written and on a copy without its Delta
//!   checkpoints, so every reader replays every JSON commit.
//!
//! Known limit: the mock broker keeps only the last 5 MB of each partition
//! (`rdkafka_mock.c`), so a backlog is spread over enough partitions to keep
//! every message; the producer compresses with zstd, about 3.5 times.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context as _};
use arrow::array::{Array, AsArray};
use arrow::datatypes::TimestampMicrosecondType;
use clap::{Parser, Subcommand, ValueEnum};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use serde_json::{json, Value};

/// The dataset's flags, as `BENCH_PRODUCE` in the Makefile.
const DATASET: &[&str] = &[
    "--batch-size",
    "500",
    "--corrupt-ratio",
    "0.02",
    "--invalid-ratio",
    "0.01",
    "--seed",
    "1",
];
const TOPIC: &str = "events";

#[derive(Parser)]
#[command(name = "pathbench")]
struct Args {
    #[command(subcommand)]
    run: Run,
    /// Scratch directory (emptied first).
    #[arg(long, global = true, default_value = "data/bench/path")]
    work: PathBuf,
}

#[derive(Subcommand)]
enum Run {
    /// A backlog of `--batches` drained by `consumer --once`.
    Throughput {
        #[arg(long, default_value = "4000")]
        batches: u64,
        /// Default: enough that the mock broker keeps every message.
        #[arg(long)]
        partitions: Option<i32>,
        #[arg(long, value_enum, default_value = "local")]
        target: Target,
        /// Names the result, e.g. kafka-local-1x.
        #[arg(long)]
        name: String,
        /// The consumer on every core with its default threads, instead of
        /// pinned to one core with one thread of each kind.
        #[arg(long)]
        all_cores: bool,
        /// A setting of the consumer's environment, `NAME=VALUE` (repeatable),
        /// e.g. `FLUSH_BYTES=32MiB`.
        #[arg(long = "consumer-env", value_name = "NAME=VALUE")]
        consumer_env: Vec<String>,
        /// The producer's `--event-gap` (its default, 6s, spreads 2,000,000
        /// events over 70 days; 1ms gives a busy stream's few dates).
        #[arg(long)]
        event_gap: Option<String>,
    },
    /// Produce→visible latency in gold.events_per_minute, through the
    /// consumer and the refiner, at a steady rate with their default intervals.
    GoldFreshness {
        #[arg(long, default_value = "40")]
        rate: u64,
        #[arg(long, default_value = "30")]
        seconds: u64,
    },
    /// count(*) after `--commits` Delta commits, with and without checkpoints.
    LogRead {
        #[arg(long, default_value = "10000")]
        commits: u64,
        /// Runs of each reader; the median is reported.
        #[arg(long, default_value = "3")]
        runs: usize,
    },
    /// Produce→visible latency at a steady rate.
    Freshness {
        /// Batches of 500 events per second.
        #[arg(long, default_value = "40")]
        rate: u64,
        #[arg(long, default_value = "30")]
        seconds: u64,
        /// The consumer's FLUSH_INTERVAL, in seconds (its default is 5).
        #[arg(long, default_value = "5")]
        flush_interval: u64,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Target {
    /// A directory.
    Local,
    /// A bucket on a moto server on loopback (Python: measures moto, not S3).
    S3,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.work.exists() {
        std::fs::remove_dir_all(&args.work)?;
    }
    std::fs::create_dir_all(&args.work)?;
    let work = args.work.canonicalize()?;
    let result = match args.run {
        Run::Throughput {
            batches,
            partitions,
            target,
            name,
            all_cores,
            consumer_env,
            event_gap,
        } => {
            let run = Throughput {
                batches,
                // About 23 KB per compressed batch: 100 batches stay under 5 MB.
                partitions: partitions.unwrap_or((batches.div_ceil(100) as i32).max(3)),
                target,
                all_cores,
                consumer_env,
                event_gap,
            };
            throughput(&work, &run, &name)?
        }
        Run::Freshness {
            rate,
            seconds,
            flush_interval,
        } => freshness(&work, rate, seconds, flush_interval)?,
        Run::GoldFreshness { rate, seconds } => gold_freshness(&work, rate, seconds)?,
        Run::LogRead { commits, runs } => log_read(&work, commits, runs)?,
    };
    println!("{result}");
    Ok(())
}

/// What a `throughput` run drains, and how the consumer runs.
struct Throughput {
    batches: u64,
    partitions: i32,
    target: Target,
    all_cores: bool,
    consumer_env: Vec<String>,
    event_gap: Option<String>,
}

fn throughput(work: &Path, run: &Throughput, name: &str) -> anyhow::Result<Value> {
    let &Throughput {
        batches,
        partitions,
        target,
        all_cores,
        ..
    } = run;
    let cluster = mock_cluster(partitions)?;
    let moto = (target == Target::S3).then(testkit::Moto::start);
    let env = Env::new(work, Some(&cluster), moto.as_ref());
    let started = Instant::now();
    let batches_flag = batches.to_string();
    let mut produce = vec!["--rate", "0", "--batches", &batches_flag];
    if let Some(gap) = &run.event_gap {
        produce.extend(["--event-gap", gap.as_str()]);
    }
    let summary = env.produce(&produce)?;
    eprintln!(
        "produced {batches} batches into {partitions} partitions in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let events = number(&summary, "records")?;
    let mut measure = env.command(
        "python3",
        &[concat!(env!("CARGO_MANIFEST_DIR"), "/measure.py")],
    );
    if all_cores {
        measure.env_remove("TOKIO_WORKER_THREADS");
    }
    for setting in &run.consumer_env {
        let (name, value) = setting
            .split_once('=')
            .with_context(|| format!("--consumer-env {setting}: not NAME=VALUE"))?;
        measure.env(name, value);
    }
    let pin = if all_cores { Vec::new() } else { taskset(0) };
    let measured = measure
        .args(["--name", &format!("whole-path-{name}")])
        .args(["--events", &events.to_string(), "--"])
        .args(pin)
        .arg(binary("consumer"))
        .arg("--once")
        .stderr(std::fs::File::create(work.join("consumer.log"))?)
        .output()
        .context("python3 bench/measure.py")?;
    let mut result: Value = serde_json::from_slice(&measured.stdout)
        .with_context(|| String::from_utf8_lossy(&measured.stdout).into_owned())?;
    ensure!(result["exit_status"] == 0, "the consumer failed: {result}");
    let counts = env.lake_counts()?;
    let expected = json!({
        "bronze": number(&summary, "valid_records")?,
        "invalid": number(&summary, "invalid_records")?,
        "corrupt": number(&summary, "corrupt_batches")?,
    });
    ensure!(
        counts == expected,
        "the lake holds {counts}, the producer sent {expected}: a run that lost or repeated data has no throughput"
    );
    result["batches"] = json!(batches);
    result["partitions"] = json!(partitions);
    result["target"] = json!(if target == Target::S3 {
        "s3 (moto)"
    } else {
        "local"
    });
    result["counts_match"] = json!(true);
    result["cores"] = json!(if all_cores { "all" } else { "one" });
    // null: the producer's default.
    result["event_gap"] = json!(run.event_gap);
    if target == Target::Local {
        let mut sizes = parquet_sizes(&work.join("lake/bronze/events"))?;
        sizes.sort_unstable();
        ensure!(!sizes.is_empty(), "bronze/events holds no Parquet object");
        result["bronze_objects"] = json!(sizes.len());
        result["bronze_object_mib_median"] =
            json!((sizes[sizes.len() / 2] as f64 / (1 << 20) as f64 * 100.0).round() / 100.0);
    }
    let log = std::fs::read_to_string(work.join("consumer.log"))?;
    let mut commit_ms: Vec<u64> = log
        .lines()
        .filter(|line| line.contains("micro-batch committed"))
        .filter_map(|line| field(line, "delta_commit_ms"))
        .collect();
    ensure!(
        !commit_ms.is_empty(),
        "consumer.log has no committed micro-batch"
    );
    commit_ms.sort_unstable();
    let at = |q: f64| commit_ms[((commit_ms.len() - 1) as f64 * q).round() as usize];
    result["micro_batches"] = json!(commit_ms.len());
    result["delta_commit_ms"] = json!({"p50": at(0.5), "p99": at(0.99), "max": at(1.0)});
    Ok(result)
}

/// The sizes of the data objects under `dir`, at any depth (not the Delta
/// log's checkpoints).
fn parquet_sizes(dir: &Path) -> anyhow::Result<Vec<u64>> {
    let mut sizes = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| dir.display().to_string())? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            if entry.file_name() == "_delta_log" {
                continue;
            }
            sizes.extend(parquet_sizes(&path)?);
        } else if path.extension().is_some_and(|e| e == "parquet") {
            sizes.push(entry.metadata()?.len());
        }
    }
    Ok(sizes)
}

/// The value of `key=<number>` in a log line.
fn field(line: &str, key: &str) -> Option<u64> {
    let start = line.find(&format!("{key}="))? + key.len() + 1;
    let digits: String = line[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn freshness(work: &Path, rate: u64, seconds: u64, flush_interval: u64) -> anyhow::Result<Value> {
    let cluster = mock_cluster(3)?;
    let env = Env::new(work, Some(&cluster), None);
    let mut consumer = env.continuous_consumer(work, flush_interval)?;

    let bronze = work.join("lake/bronze/events");
    let stop = Arc::new(AtomicBool::new(false));
    let lister = {
        let (bronze, stop) = (bronze.clone(), stop.clone());
        std::thread::spawn(move || watch_commits(&bronze, &stop))
    };
    let batches = rate * seconds;
    let summary = env.produce(&[
        "--rate",
        &rate.to_string(),
        "--batches",
        &batches.to_string(),
    ])?;
    let valid = number(&summary, "valid_records")?;
    let deadline = Duration::from_secs(flush_interval + 60);
    let mut log = Log::default();
    let mut committed_rows = 0;
    let all_visible = wait_for(deadline, "every event to be visible", || {
        for version in log.read_new(&bronze, micros_now()) {
            committed_rows += log.commits[&version]
                .files
                .iter()
                .map(|f| rows(&bronze.join(f)).unwrap_or(0))
                .sum::<u64>();
        }
        committed_rows == valid
    });
    consumer.stop();
    stop.store(true, Ordering::SeqCst);
    let seen = lister
        .join()
        .map_err(|_| anyhow::anyhow!("lister panicked"))?;
    all_visible?;

    let mut latencies = Vec::new();
    for commit in seen.values() {
        for file in &commit.files {
            for sent_micros in kafka_timestamps(&bronze.join(file))? {
                latencies.push((commit.seen - sent_micros) as f64 / 1e6);
            }
        }
    }
    let [p50, p99, max] = latency_quantiles(latencies, valid)?;
    let in_view = env.lake_counts()?["bronze"].clone();
    ensure!(
        in_view == valid,
        "bronze.events has {in_view} rows, {valid} valid events sent"
    );
    Ok(json!({
        "step": "freshness",
        "target": "local",
        "flush_interval_s": flush_interval,
        "rate_events_per_s": rate * 500,
        "seconds": seconds,
        "batches": batches,
        "events": valid,
        "objects": seen.values().map(|c| c.files.len()).sum::<usize>(),
        "p50_s": p50,
        "p99_s": p99,
        "max_s": max,
        "target_p99_s": flush_interval + 1,
        "all_visible": true,
    }))
}

/// The consumer's and the refiner's defaults: FLUSH_INTERVAL and REFINE_INTERVAL.
const FLUSH_INTERVAL_S: u64 = 5;
const REFINE_INTERVAL_S: u64 = 5;

fn gold_freshness(work: &Path, rate: u64, seconds: u64) -> anyhow::Result<Value> {
    let cluster = mock_cluster(3)?;
    let env = Env::new(work, Some(&cluster), None);
    let mut consumer = env.continuous_consumer(work, FLUSH_INTERVAL_S)?;
    let models = concat!(env!("CARGO_MANIFEST_DIR"), "/../models");
    let refiner_log = std::fs::File::create(work.join("refiner.log"))?;
    let mut command = env.pinned(1, "refiner", &["--models", models]);
    command.stdout(refiner_log.try_clone()?).stderr(refiner_log);
    let mut refiner = Background(command.spawn().context("refiner")?);

    let lake = work.join("lake");
    let tables = ["bronze/events", "silver/events", "gold/events_per_minute"];
    let stop = Arc::new(AtomicBool::new(false));
    let watchers: Vec<_> = tables
        .iter()
        .map(|table| {
            let (dir, stop) = (lake.join(table), stop.clone());
            std::thread::spawn(move || watch_commits(&dir, &stop))
        })
        .collect();
    let summary = env.produce(&[
        "--rate",
        &rate.to_string(),
        "--batches",
        &(rate * seconds).to_string(),
    ])?;
    let unique = number(&summary, "unique_valid_records")?;
    let deadline = Duration::from_secs(FLUSH_INTERVAL_S + REFINE_INTERVAL_S + 120);
    let all_visible = wait_for(
        deadline,
        "every event to be counted in gold.events_per_minute",
        || {
            env.count("SELECT sum(events) FROM gold.events_per_minute")
                .is_ok_and(|n| n == unique)
        },
    );
    stop.store(true, Ordering::SeqCst);
    refiner.stop();
    consumer.stop();
    let mut logs = Vec::new();
    for watcher in watchers {
        logs.push(
            watcher
                .join()
                .map_err(|_| anyhow::anyhow!("watcher panicked"))?,
        );
    }
    all_visible?;
    let [bronze, silver, gold] =
        <[_; 3]>::try_from(logs).map_err(|_| anyhow::anyhow!("three logs"))?;

    // A bronze commit is visible in gold from the first gold commit that
    // reflects a silver commit that reflects it.
    let first_reflecting = |log: &BTreeMap<u64, Commit>, input: &str, version: u64| {
        log.iter()
            .find(|(_, c)| c.txns.get(input).is_some_and(|v| *v >= version as i64))
            .map(|(v, c)| (*v, c.seen))
    };
    let mut latencies = Vec::new();
    for (version, commit) in &bronze {
        if commit.files.is_empty() {
            continue;
        }
        let (silver_version, _) = first_reflecting(&silver, "bronze.events", *version)
            .with_context(|| format!("no silver commit reflects bronze version {version}"))?;
        let (_, seen) = first_reflecting(&gold, "silver.events", silver_version)
            .with_context(|| format!("no gold commit reflects silver version {silver_version}"))?;
        for file in &commit.files {
            for sent in kafka_timestamps(&lake.join("bronze/events").join(file))? {
                latencies.push((seen - sent) as f64 / 1e6);
            }
        }
    }
    let valid = number(&summary, "valid_records")?;
    let [p50, p99, max] = latency_quantiles(latencies, valid)?;
    Ok(json!({
        "step": "gold-freshness",
        "target": "local",
        "flush_interval_s": FLUSH_INTERVAL_S,
        "refine_interval_s": REFINE_INTERVAL_S,
        "rate_events_per_s": rate * 500,
        "seconds": seconds,
        "events": valid,
        "gold_commits": gold.len(),
        "p50_s": p50,
        "p99_s": p99,
        "max_s": max,
        "target_p99_s": FLUSH_INTERVAL_S + REFINE_INTERVAL_S + 2,
    }))
}

/// p50, p99 and max of one latency per valid event sent, in seconds to the
/// millisecond.
fn latency_quantiles(mut latencies: Vec<f64>, valid: u64) -> anyhow::Result<[f64; 3]> {
    ensure!(
        latencies.len() as u64 == valid,
        "{} events timed, {valid} sent",
        latencies.len()
    );
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    let round = |s: f64| (s * 1000.0).round() / 1000.0;
    Ok([round(at(0.5)), round(at(0.99)), round(at(1.0))])
}

/// One commit of a Delta log as a watcher saw it.
struct Commit {
    /// When its JSON was first listed, microseconds since the epoch.
    seen: i64,
    /// Its `txn` actions: source → version.
    txns: BTreeMap<String, i64>,
    /// The data files it adds with new data.
    files: Vec<String>,
}

/// Polls the Delta log of the table at `dir` every 50 ms until `stop`.
/// Readers see a file from its commit on, not from its upload.
fn watch_commits(dir: &Path, stop: &AtomicBool) -> BTreeMap<u64, Commit> {
    let mut log = Log::default();
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        log.read_new(dir, micros_now());
        if stopping {
            return log.commits;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A table's Delta log, read commit by commit as it grows.
#[derive(Default)]
struct Log {
    commits: BTreeMap<u64, Commit>,
}

impl Log {
    /// Reads the commits not read before, as seen at `now`, and returns
    /// their versions. The local store moves a finished object into place,
    /// so a listed commit is complete.
    fn read_new(&mut self, dir: &Path, now: i64) -> Vec<u64> {
        let Ok(entries) = std::fs::read_dir(dir.join("_delta_log")) else {
            return Vec::new();
        };
        let mut new = Vec::new();
        for path in entries.flatten().map(|e| e.path()) {
            let Some(version) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            if self.commits.contains_key(&version) {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let mut commit = Commit {
                seen: now,
                txns: BTreeMap::new(),
                files: Vec::new(),
            };
            for action in text
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            {
                if let (Some(app), Some(v)) = (
                    action["txn"]["appId"].as_str(),
                    action["txn"]["version"].as_i64(),
                ) {
                    commit.txns.insert(app.to_string(), v);
                }
                // Compaction's rewrites (`dataChange: false`) hold rows already counted.
                if let (Some(path), Some(true)) = (
                    action["add"]["path"].as_str(),
                    action["add"]["dataChange"].as_bool(),
                ) {
                    commit.files.push(path.to_string());
                }
            }
            self.commits.insert(version, commit);
            new.push(version);
        }
        new.sort();
        new
    }
}

fn log_read(work: &Path, commits: u64, runs: usize) -> anyhow::Result<Value> {
    let env = Env::new(work, None, None);
    let status = env
        .pinned(
            1,
            "producer",
            &["--sink", "files", "--rate", "0", "--batches", "1"],
        )
        .args(["--batch-size", "20", "--seed", "1"])
        .args(["--corrupt-ratio", "0", "--invalid-ratio", "0"])
        .env("RUST_LOG", "warn")
        .status()
        .context("producer")?;
    ensure!(status.success(), "the producer failed: {status}");
    let status = env
        .pinned(0, "consumer", &["--source", "files", "--once"])
        .env("RUST_LOG", "warn")
        .status()
        .context("consumer")?;
    ensure!(status.success(), "the consumer failed: {status}");

    let root = work.join("lake");
    let started = Instant::now();
    let (version, rows) = append_copies(&root, commits)?;
    let write_seconds = started.elapsed().as_secs_f64();
    eprintln!("{commits} commits in {write_seconds:.1} s, table version {version}");

    // The same table without its checkpoints: every reader replays the log.
    let bare = work.join("lake-without-checkpoints");
    let status = Command::new("cp")
        .arg("-a")
        .arg(&root)
        .arg(&bare)
        .status()?;
    ensure!(status.success(), "cp -a failed: {status}");
    let log = bare.join("bronze/events/_delta_log");
    let mut removed = 0;
    for entry in std::fs::read_dir(&log)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.contains(".checkpoint") || name == "_last_checkpoint" {
            std::fs::remove_file(&path)?;
            removed += 1;
        }
    }
    ensure!(removed > 0, "the table has no Delta checkpoints to remove");

    let mut readers = Vec::new();
    for (table, dir) in [("with_checkpoints", &root), ("without_checkpoints", &bare)] {
        let inspector = |extra: &[&str]| {
            let mut command = env.command(binary("inspector"), &["query"]);
            command
                .args([
                    "SELECT count(*) AS n FROM bronze.events",
                    "--format",
                    "json",
                ])
                .args(extra)
                .env("LAKE_URL", dir)
                .env("RUST_LOG", "warn");
            command
        };
        let table_dir = dir.join("bronze/events").display().to_string();
        let cli = {
            let sql = format!(
                "LOAD '{}'; SELECT count(*) AS n FROM delta_scan('{table_dir}');",
                testkit::delta_extension()
            );
            let mut command = env.command("duckdb", &["-json", "-c", &sql]);
            command.env("RUST_LOG", "warn");
            command
        };
        for (reader, command) in [
            ("inspector, delta_scan", inspector(&[])),
            ("inspector, snapshot file list", inspector(&["--file-list"])),
            ("duckdb 1.5.5 CLI, delta_scan", cli),
        ] {
            let seconds = median_seconds(command, runs, rows)?;
            readers.push(json!({"table": table, "reader": reader, "seconds": seconds}));
        }
    }
    Ok(json!({
        "step": "log-read",
        "target": "local",
        "commits": commits,
        "table_version": version,
        "rows": rows,
        "checkpoint_interval": delta::CHECKPOINT_INTERVAL,
        "write_seconds": (write_seconds * 1000.0).round() / 1000.0,
        "readers": readers,
    }))
}

/// Appends `commits` copies of bronze's one data file, each in its own Delta
/// commit with its own `txn` version; the table's version and rows after.
fn append_copies(root: &Path, commits: u64) -> anyhow::Result<(u64, u64)> {
    let lake = lake::Lake::open(&lake::LakeArgs {
        lake_url: root.display().to_string(),
        ..Default::default()
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut table = delta::Table::open(&lake, "bronze/events", delta::AsOf::Latest)
            .await?
            .context("bronze/events has no Delta log")?;
        let files = table.files().await?;
        ensure!(
            files.len() == 1,
            "bronze/events has {} files, not 1",
            files.len()
        );
        let first = &files[0];
        let bytes = std::fs::read(root.join("bronze/events").join(&first.path))?;
        let day = first
            .event_date
            .clone()
            .context("the file has no event_date")?;
        for n in 1..=commits {
            let path = format!("event_date={day}/logread-{n:06}.parquet");
            std::fs::write(root.join("bronze/events").join(&path), &bytes)?;
            let copy = delta::DataFile {
                path,
                ..first.clone()
            };
            let committed = table.append("logread", n as i64, &[copy]).await?;
            ensure!(
                matches!(committed, delta::Committed::Version(_)),
                "commit {n}: {committed:?}"
            );
        }
        Ok((table.version(), first.rows * (commits + 1)))
    })
}

/// The median wall time of `runs` runs of `command`, each of which must print
/// `[{"n": rows}]`.
fn median_seconds(mut command: Command, runs: usize, rows: u64) -> anyhow::Result<f64> {
    let mut times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let out = command.output().with_context(|| format!("{command:?}"))?;
        times.push(started.elapsed().as_secs_f64());
        ensure!(
            out.status.success(),
            "{command:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let counted: Value = serde_json::from_slice(&out.stdout)
            .with_context(|| String::from_utf8_lossy(&out.stdout).into_owned())?;
        ensure!(
            counted[0]["n"] == rows,
            "{command:?} counted {counted}, the log holds {rows} rows"
        );
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2] * 1000.0).round() / 1000.0)
}

fn rows(file: &Path) -> anyhow::Result<u64> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(file)?)?;
    Ok(reader.metadata().file_metadata().num_rows() as u64)
}

fn kafka_timestamps(file: &Path) -> anyhow::Result<Vec<i64>> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(file)?)?;
    let index = builder
        .schema()
        .index_of("kafka_timestamp")
        .context("kafka_timestamp column")?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), [index]);
    let mut stamps = Vec::new();
    for batch in builder.with_projection(mask).build()? {
        let column = batch?.column(0).clone();
        let column = column.as_primitive::<TimestampMicrosecondType>();
        ensure!(
            column.null_count() == 0,
            "{} has rows without a Kafka timestamp",
            file.display()
        );
        stamps.extend(column.values().iter().copied());
    }
    Ok(stamps)
}

fn micros_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

fn mock_cluster(partitions: i32) -> anyhow::Result<MockCluster<'static, DefaultProducerContext>> {
    let cluster = MockCluster::new(1).context("mock cluster")?;
    cluster
        .create_topic(TOPIC, partitions, 1)
        .context("creating the topic")?;
    Ok(cluster)
}

/// The environment every binary of one run gets, and nothing from the shell's.
struct Env {
    dir: PathBuf,
    vars: Vec<(String, String)>,
}

impl Env {
    fn new(
        work: &Path,
        cluster: Option<&MockCluster<'_, DefaultProducerContext>>,
        moto: Option<&testkit::Moto>,
    ) -> Env {
        let mut vars = vec![
            ("RUST_LOG".into(), "info".into()),
            ("DUCKDB_DELTA_EXTENSION".into(), testkit::delta_extension()),
        ];
        if let Some(cluster) = cluster {
            vars.extend([
                (
                    "KAFKA_BOOTSTRAP_SERVERS".into(),
                    cluster.bootstrap_servers(),
                ),
                ("KAFKA_TOPIC".into(), TOPIC.into()),
                ("KAFKA_GROUP_ID".into(), "pathbench".into()),
            ]);
        }
        match moto {
            Some(moto) => vars.extend([
                ("LAKE_URL".into(), "s3://pathbench".into()),
                ("AWS_ENDPOINT_URL".into(), moto.endpoint.clone()),
                ("AWS_ACCESS_KEY_ID".into(), "bench-key".into()),
                ("AWS_SECRET_ACCESS_KEY".into(), "bench-secret".into()),
                ("AWS_REGION".into(), "us-east-1".into()),
                (
                    "DUCKDB_HTTPFS_EXTENSION".into(),
                    testkit::httpfs_extension(),
                ),
            ]),
            None => vars.push(("LAKE_URL".into(), work.join("lake").display().to_string())),
        }
        Env {
            dir: work.to_path_buf(),
            vars,
        }
    }

    /// `program` with only this run's settings. It runs in the temporary
    /// directory: the binaries read a `.env` from their directory or any
    /// parent, and the work directory is inside the repository, whose `.env`
    /// holds the Docker stack's settings.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Command {
        let mut command = Command::new(program);
        command.args(args).current_dir(std::env::temp_dir());
        for (key, _) in std::env::vars() {
            if ["AWS_", "KAFKA_", "LAKE_", "DUCKDB_", "FLUSH_"]
                .iter()
                .any(|prefix| key.starts_with(prefix))
            {
                command.env_remove(key);
            }
        }
        command.env("METRICS_ADDR", "");
        command.envs(self.vars.iter().map(|(k, v)| (k, v)));
        // One worker thread: the consumer's runtime reads TOKIO_WORKER_THREADS.
        command.env("TOKIO_WORKER_THREADS", "1");
        command
    }

    /// One of our binaries, pinned to `core` when taskset exists, so the
    /// consumer has a core to itself and the producer stays off it.
    fn pinned(&self, core: u32, name: &str, args: &[&str]) -> Command {
        let mut argv = taskset(core);
        argv.push(binary(name).display().to_string());
        let mut command = self.command(&argv[0], &[]);
        command.args(&argv[1..]).args(args);
        command
    }

    /// Runs the producer (pinned to the other core) and returns its summary.
    fn produce(&self, args: &[&str]) -> anyhow::Result<Value> {
        let summary = self.dir.join("summary.json");
        let status = self
            .pinned(1, "producer", args)
            .args(DATASET)
            .args(["--sink", "kafka", "--summary"])
            .arg(&summary)
            .env("RUST_LOG", "warn")
            .status()
            .context("producer")?;
        ensure!(status.success(), "the producer failed: {status}");
        Ok(serde_json::from_slice(&std::fs::read(&summary)?)?)
    }

    /// `consumer` running on core 0 with `flush_interval` seconds, its log
    /// in `work/consumer.log`, once it owns the topic's three partitions.
    fn continuous_consumer(&self, work: &Path, flush_interval: u64) -> anyhow::Result<Background> {
        let log = std::fs::File::create(work.join("consumer.log"))?;
        let mut command = self.pinned(0, "consumer", &[]);
        command
            .env("FLUSH_INTERVAL", format!("{flush_interval}s"))
            .stdout(log.try_clone()?)
            .stderr(log);
        let consumer = Background(command.spawn().context("consumer")?);
        wait_for(
            Duration::from_secs(60),
            "the consumer to join its group",
            || {
                std::fs::read_to_string(work.join("consumer.log"))
                    .is_ok_and(|log| log.matches("partition assigned").count() >= 3)
            },
        )?;
        Ok(consumer)
    }

    /// One number through the inspector: the first column of the first row.
    fn count(&self, sql: &str) -> anyhow::Result<u64> {
        let out = self
            .command(binary("inspector"), &["query", sql, "--format", "json"])
            .env("RUST_LOG", "warn")
            .output()
            .context("inspector")?;
        ensure!(
            out.status.success(),
            "inspector failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rows: Value = serde_json::from_slice(&out.stdout)?;
        rows[0]
            .as_object()
            .and_then(|row| row.values().next())
            .and_then(Value::as_u64)
            .with_context(|| format!("{sql}: not a number: {rows}"))
    }

    /// Bronze rows, invalid records and corrupt batches, through DuckDB.
    fn lake_counts(&self) -> anyhow::Result<Value> {
        let sql = "SELECT (SELECT count(*) FROM bronze.events) AS bronze, \
            (SELECT count(*) FROM dead_letters.events WHERE error_kind = 'invalid_record') AS invalid, \
            (SELECT count(*) FROM dead_letters.events WHERE error_kind = 'corrupt_batch') AS corrupt";
        let out = self
            .command(binary("inspector"), &["query", sql, "--format", "json"])
            .env("RUST_LOG", "warn")
            .output()
            .context("inspector")?;
        if !out.status.success() {
            bail!("inspector failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let rows: Value = serde_json::from_slice(&out.stdout)?;
        Ok(rows[0].clone())
    }
}

/// `taskset -c core` when taskset exists, else nothing.
fn taskset(core: u32) -> Vec<String> {
    let exists = Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if exists {
        vec!["taskset".into(), "-c".into(), core.to_string()]
    } else {
        Vec::new()
    }
}

/// A binary of the workspace, built next to this one.
fn binary(name: &str) -> PathBuf {
    std::env::current_exe()
        .expect("current_exe")
        .with_file_name(name)
}

fn number(summary: &Value, field: &str) -> anyhow::Result<u64> {
    summary[field]
        .as_u64()
        .with_context(|| format!("summary has no {field}: {summary}"))
}

fn wait_for(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !done() {
        ensure!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// A child stopped with SIGTERM (the consumer's graceful stop) and waited for.
struct Background(Child);

impl Background {
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
