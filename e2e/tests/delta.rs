//! The lake's tables are Delta tables: read by an independent reader (the
//! official DuckDB CLI with its `delta` extension), counted consistently
//! while ingestion and compaction run, compacted and vacuumed without a
//! reader noticing, and converted in place from the previous layout.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

/// A local lake fed by the files source.
fn files_env() -> Env {
    let mut env = Env::new();
    let lake = env.dir.path().join("lake").display().to_string();
    env.set("LAKE_URL", lake);
    env
}

fn lake_dir(env: &Env) -> std::path::PathBuf {
    env.dir.path().join("lake")
}

/// The official DuckDB CLI (pip `duckdb-cli==1.5.5`) with the delta
/// extension: one number from `sql`.
fn duckdb_cli(sql: &str) -> u64 {
    let load = format!("LOAD '{}';", testkit::delta_extension());
    let out = std::process::Command::new("duckdb")
        .args(["-noheader", "-csv", "-c", &load, "-c", sql])
        .output()
        .expect("the duckdb CLI (pip install duckdb-cli==1.5.5)");
    assert!(
        out.status.success(),
        "duckdb {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("duckdb {sql}: not a number: {text}"))
}

fn parquet_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                if !path.ends_with("_delta_log") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "parquet") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Exact counts through the inspector's views and through an independent
/// Delta reader, on both tables.
#[test]
fn an_independent_delta_reader_sees_the_same_tables() {
    let env = files_env();
    let summary = env.produce(&[
        "--sink",
        "files",
        "--batches",
        "120",
        "--batch-size",
        "50",
        "--rate",
        "0",
        "--corrupt-ratio",
        "0.05",
        "--invalid-ratio",
        "0.02",
        "--seed",
        "11",
    ]);
    env.run(
        "consumer",
        &["--source", "files", "--once", "--flush-records", "500"],
    );
    assert_exactly_once(&env, &summary);
    let lake = lake_dir(&env);
    let bronze = lake.join("bronze/events").display().to_string();
    let dead = lake.join("dead_letters/events").display().to_string();
    let valid = num(&summary, "valid_records");
    let dead_letters = num(&summary, "invalid_records") + num(&summary, "corrupt_batches");
    assert_eq!(
        duckdb_cli(&format!("SELECT count(*) FROM delta_scan('{bronze}')")),
        valid
    );
    assert_eq!(
        duckdb_cli(&format!(
            "SELECT count(DISTINCT event_id) FROM delta_scan('{bronze}')"
        )),
        valid
    );
    assert_eq!(
        duckdb_cli(&format!("SELECT count(*) FROM delta_scan('{dead}')")),
        dead_letters
    );
    // The same rows: no event_id of one reader is missing from the other.
    let ids = env.count("SELECT sum(hash(event_id)) % 1000000007 FROM bronze.events");
    assert_eq!(
        duckdb_cli(&format!(
            "SELECT sum(hash(event_id)) % 1000000007 FROM delta_scan('{bronze}')"
        )),
        ids
    );
}

/// The official DuckDB CLI, set up by `inspector init-sql` (httpfs, the S3
/// secret, the delta extension and `delta_scan` views), reads an S3 lake
/// written from Kafka with the producer's exact counts.
#[test]
fn the_duckdb_cli_reads_the_s3_tables_with_delta_scan() {
    let moto = Moto::start();
    let kafka = Kafka::start("events-delta-cli", 3);
    let env = Env::kafka(&moto, &kafka, "lake-delta-cli");
    let mut args = PRODUCE.to_vec();
    args.extend(["--sink", "kafka"]);
    let summary = env.produce(&args);
    env.run(
        "consumer",
        &["--source", "kafka", "--once", "--flush-records", "2000"],
    );
    assert_exactly_once(&env, &summary);
    let init = env.run("inspector", &["init-sql", "--with-secrets"]);
    let init_sql = String::from_utf8_lossy(&init.stdout).to_string();
    assert!(
        init_sql.contains("delta_scan('s3://lake-delta-cli/bronze/events"),
        "{init_sql}"
    );
    let init_file = env.dir.path().join("lake.sql");
    std::fs::write(&init_file, &init_sql).expect("write init sql");
    let count = |sql: &str| -> u64 {
        let out = std::process::Command::new("duckdb")
            .args(["-noheader", "-csv", "-init"])
            .arg(&init_file)
            .args(["-c", sql])
            .output()
            .expect("the duckdb CLI (pip install duckdb-cli==1.5.5)");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "duckdb {sql}: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        text.lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("duckdb {sql}: not a number: {text}"))
    };
    assert_eq!(
        count("SELECT count(DISTINCT event_id) FROM bronze.events"),
        num(&summary, "valid_records")
    );
    assert_eq!(
        count("SELECT count(*) FROM dead_letters.events"),
        num(&summary, "invalid_records") + num(&summary, "corrupt_batches")
    );
}

/// A reader counting `bronze.events` in a loop while the consumer ingests
/// and compacts never sees the count go down or past the producer's total.
#[test]
fn readers_see_whole_micro_batches_while_ingestion_and_compaction_run() {
    let env = files_env();
    // The producer writes while the consumer reads: 300 batches at 25 a second.
    let summary_path = env.dir.path().join("summary.json").display().to_string();
    let mut producer = Background(
        env.command(
            "producer",
            &[
                "--sink",
                "files",
                "--batches",
                "300",
                "--batch-size",
                "40",
                "--rate",
                "25",
                "--corrupt-ratio",
                "0.02",
                "--invalid-ratio",
                "0.02",
                "--seed",
                "5",
                "--summary",
                &summary_path,
            ],
        )
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn producer"),
    );
    let _consumer = Background(
        env.command(
            "consumer",
            &[
                "--source",
                "files",
                "--flush-records",
                "200",
                "--flush-interval",
                "100ms",
                "--compact-min-files",
                "5",
                "--compact-interval",
                "300ms",
            ],
        )
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn consumer"),
    );
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut seen: Vec<u64> = Vec::new();
    let mut valid = None;
    loop {
        assert!(Instant::now() < deadline, "counts so far: {seen:?}");
        if valid.is_none() && producer.0.try_wait().expect("producer").is_some() {
            let summary: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&summary_path).expect("summary"))
                    .expect("json");
            valid = Some(num(&summary, "valid_records"));
        }
        let Some(count) = env.try_count("SELECT count(*) FROM bronze.events") else {
            continue;
        };
        // 300 batches of at most 40 valid records.
        assert!(count <= 300 * 40, "{count} rows; {seen:?}");
        if let Some(last) = seen.last() {
            assert!(count >= *last, "the count went down: {seen:?} then {count}");
        }
        seen.push(count);
        if Some(count) == valid {
            break;
        }
    }
    let valid = valid.expect("the producer finished");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary_path).expect("summary")).expect("json");
    assert!(
        seen.iter().filter(|c| **c > 0 && **c < valid).count() >= 2,
        "the reader saw ingestion in progress: {seen:?}"
    );
    // Compaction really ran during the reads.
    let history = env.run(
        "inspector",
        &["history", "bronze.events", "--format", "json"],
    );
    let history: serde_json::Value = serde_json::from_slice(&history.stdout).expect("json");
    let optimized = history
        .as_array()
        .expect("rows")
        .iter()
        .filter(|c| c["operation"] == "OPTIMIZE")
        .count();
    assert!(optimized > 0, "no compaction commit: {history}");
    assert_exactly_once(&env, &summary);
}

/// `consumer compact` turns 400 small files into a few, with the same rows;
/// `consumer vacuum` keeps what time travel inside the retention needs and
/// deletes the rest.
#[test]
fn compaction_and_vacuum() {
    let env = files_env();
    let summary = env.produce(&[
        "--sink",
        "files",
        "--batches",
        "400",
        "--batch-size",
        "10",
        "--rate",
        "0",
        "--corrupt-ratio",
        "0",
        "--invalid-ratio",
        "0",
        "--seed",
        "8",
    ]);
    // One micro-batch per raw object: 400 small files in one partition or a few.
    env.run(
        "consumer",
        &["--source", "files", "--once", "--flush-records", "1"],
    );
    let lake = lake_dir(&env);
    let bronze = lake.join("bronze/events");
    let before = parquet_files(&bronze).len();
    assert!(before >= 400, "{before} files");
    let ids = "SELECT sum(hash(event_id)) % 1000000007 FROM bronze.events";
    let (count, hash) = (
        env.count("SELECT count(*) FROM bronze.events"),
        env.count(ids),
    );
    assert_eq!(count, num(&summary, "valid_records"));
    let version_before = history_version(&env, "bronze.events");

    let out = env.run(
        "consumer",
        &["compact", "--table", "events", "--target-size", "64MiB"],
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("bronze/events:"), "{printed}");
    let partitions = env.count("SELECT count(DISTINCT event_date) FROM bronze.events");
    assert_eq!(
        snapshot_files(&env, "bronze/events"),
        partitions as usize,
        "one file per partition after compaction"
    );
    assert_eq!(env.count("SELECT count(*) FROM bronze.events"), count);
    assert_eq!(env.count(ids), hash, "the same event_id set");
    assert_eq!(
        parquet_files(&bronze).len(),
        before + partitions as usize,
        "the replaced files stay for time travel until vacuum"
    );

    // Inside the retention: nothing is deleted, the old version still reads.
    env.run("consumer", &["vacuum", "--retain", "1h"]);
    assert_eq!(parquet_files(&bronze).len(), before + partitions as usize);
    let old = env.run(
        "inspector",
        &[
            "query",
            "SELECT count(*) AS n FROM bronze.events",
            "--as-of",
            &version_before.to_string(),
            "--format",
            "json",
        ],
    );
    let old: serde_json::Value = serde_json::from_slice(&old.stdout).expect("json");
    assert_eq!(old[0]["n"].as_u64(), Some(count), "{old}");

    // A dry run lists and deletes nothing; a vacuum with no retention
    // deletes the replaced files.
    let dry = env.run("consumer", &["vacuum", "--retain", "0s", "--dry-run"]);
    assert!(String::from_utf8_lossy(&dry.stdout).contains("would delete"));
    assert_eq!(parquet_files(&bronze).len(), before + partitions as usize);
    env.run("consumer", &["vacuum", "--retain", "0s"]);
    assert_eq!(parquet_files(&bronze).len(), partitions as usize);
    assert_eq!(env.count("SELECT count(*) FROM bronze.events"), count);
    assert_eq!(env.count(ids), hash);
    assert_txns_match_checkpoints(&env, "events");
}

/// The number of files in the current snapshot of the table at `prefix`.
fn snapshot_files(env: &Env, prefix: &str) -> usize {
    let (lake, runtime) = env.lake();
    runtime.block_on(async {
        let table = delta::Table::open(&lake, prefix, delta::AsOf::Latest)
            .await
            .expect("open")
            .expect("a table");
        table.files().await.expect("files").len()
    })
}

/// The newest version of `view`'s table, from `inspector history`.
fn history_version(env: &Env, view: &str) -> u64 {
    let out = env.run("inspector", &["history", view, "--format", "json"]);
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    history[0]["version"].as_u64().expect("a version")
}

/// A lake of the previous layout (plain Parquet, no `_delta_log`, dead
/// letters under their source's folder) is converted on the consumer's
/// first start, without rewriting a file, and keeps its counts; new
/// batches then land in the Delta tables.
#[test]
fn a_lake_of_the_previous_layout_is_converted_in_place() {
    let env = files_env();
    let first = env.produce(&[
        "--sink",
        "files",
        "--batches",
        "60",
        "--batch-size",
        "50",
        "--rate",
        "0",
        "--corrupt-ratio",
        "0.05",
        "--invalid-ratio",
        "0.02",
        "--seed",
        "21",
    ]);
    env.run(
        "consumer",
        &["--source", "files", "--once", "--flush-records", "1000"],
    );
    let counts = |env: &Env| {
        (
            env.count("SELECT count(*) FROM bronze.events"),
            env.count("SELECT count(*) FROM dead_letters.events"),
        )
    };
    let before = counts(&env);
    // Rewrite it as the previous layout wrote it.
    let lake = lake_dir(&env);
    let mut files = Vec::new();
    for table in ["bronze/events", "dead_letters/events"] {
        std::fs::remove_dir_all(lake.join(table).join("_delta_log")).expect("drop the log");
        for file in parquet_files(&lake.join(table)) {
            let name = file
                .file_name()
                .expect("a name")
                .to_string_lossy()
                .to_string();
            // <tag>-<range>-<attempt>.parquet → <tag>-<range>.parquet
            let stem = name.trim_end_matches(".parquet");
            let old = &stem[..stem.rfind('-').expect("attempt")];
            let target = if table.starts_with("bronze") {
                file.with_file_name(format!("{old}.parquet"))
            } else {
                let (tag, range) = old.split_at(old.find("-0").expect("range"));
                lake.join(table)
                    .join(tag)
                    .join(format!("{}.parquet", &range[1..]))
            };
            std::fs::create_dir_all(target.parent().expect("a folder")).expect("mkdir");
            std::fs::rename(&file, &target).expect("rename");
            files.push((target.clone(), std::fs::read(&target).expect("read")));
        }
    }
    for dir in std::fs::read_dir(lake.join("dead_letters/events")).expect("dir") {
        let dir = dir.expect("entry").path();
        if dir
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .starts_with("event_date=")
        {
            std::fs::remove_dir(&dir).expect("empty partition");
        }
    }
    // More input, then the new consumer's first start.
    let second = env.produce(&[
        "--sink",
        "files",
        "--batches",
        "20",
        "--batch-size",
        "50",
        "--rate",
        "0",
        "--corrupt-ratio",
        "0",
        "--invalid-ratio",
        "0",
        "--seed",
        "22",
    ]);
    env.run("consumer", &["--source", "files", "--once"]);
    let after = counts(&env);
    assert_eq!(
        after,
        (before.0 + num(&second, "valid_records"), before.1),
        "previous: {before:?}, first run: {first}"
    );
    for (path, bytes) in files {
        assert_eq!(
            std::fs::read(&path).expect("still there"),
            bytes,
            "{} was not rewritten",
            path.display()
        );
    }
    let out = env.run("consumer", &["convert"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nothing to convert"),
        "a second conversion does nothing"
    );
}
