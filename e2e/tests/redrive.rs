//! `consumer redrive` (docs/DESIGN.md §15): dead letters judged again under
//! a fixed contract and a higher message limit, and brought back exactly
//! once. The oracle is a real ingestion of the same batches under the new
//! rules into a second lake: the dry run must predict exactly the rows it
//! gains and the dead letters it keeps, and writes nothing; a re-drive
//! moves exactly those records, also when it is killed at random instants
//! and run again.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use common::*;
use serde_json::Value;

/// 240 batches of 50 events of about 165 bytes: with an 8 KiB message limit
/// some batches are `oversized`, and kept whole (under the 64 KiB prefix).
const LIMIT_BEFORE: &str = "8KiB";

/// Every file under `dir` with its size and modification time.
fn listing(dir: &Path) -> BTreeMap<String, (u64, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let entry = entry.expect("entry");
            let meta = entry.metadata().expect("metadata");
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                out.insert(
                    entry.path().display().to_string(),
                    (meta.len(), meta.modified().expect("mtime")),
                );
            }
        }
    }
    out
}

/// The events contract with two more event types.
fn widened_contract(dir: &Path) -> String {
    let path = dir.join("events-widened.schema.json");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../contracts/events.schema.json"
    ))
    .expect("the events contract");
    let mut contract: Value = serde_json::from_str(&text).expect("JSON");
    let types = contract["properties"]["event_type"]["enum"]
        .as_array_mut()
        .expect("an enum of event types");
    types.extend([Value::from("refund"), Value::from("signup")]);
    std::fs::write(&path, contract.to_string()).expect("write the contract");
    path.display().to_string()
}

/// `consumer ... redrive --dry-run` parsed: code → (selected, would move, still failing).
fn dry_run(env: &Env, before: &[&str], after: &[&str]) -> BTreeMap<String, (u64, u64, u64)> {
    let mut args = before.to_vec();
    args.extend(["redrive", "--table", "events", "--dry-run"]);
    args.extend(after);
    let out = env.run("consumer", &args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{stdout}");
    stdout
        .lines()
        .skip(2)
        .filter(|l| !l.starts_with("    e.g."))
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let n = |i: usize| f[i].parse::<u64>().unwrap_or_else(|_| panic!("{line}"));
            (f[0].to_string(), (n(1), n(2), n(3)))
        })
        .collect()
}

/// A test's own local lake: its environment and root.
fn local_lake() -> (Env, std::path::PathBuf) {
    let mut env = Env::new();
    let lake = env.dir.path().join("lake");
    env.set("LAKE_URL", lake.display().to_string());
    (env, lake)
}

/// [`PRODUCE`] as raw files, ingested under [`LIMIT_BEFORE`]; returns the
/// producer's arguments, for an oracle of the same batches.
fn ingested_under_the_old_limit(env: &Env) -> Vec<&'static str> {
    let mut produce = PRODUCE.to_vec();
    produce.extend(["--sink", "files"]);
    env.produce(&produce);
    env.run(
        "consumer",
        &[
            "--source",
            "files",
            "--once",
            "--max-message-bytes",
            LIMIT_BEFORE,
        ],
    );
    produce
}

#[test]
fn a_dry_run_predicts_a_fresh_ingestion_under_the_new_rules_and_writes_nothing() {
    let (env, lake) = local_lake();
    let produce = ingested_under_the_old_limit(&env);

    // The oracle: the same batches, ingested under the widened contract and
    // the default limits.
    let (fixed, _) = local_lake();
    fixed.produce(&produce);
    let contract = widened_contract(env.dir.path());
    fixed.run(
        "consumer",
        &["--source", "files", "--once", "--contract", &contract],
    );

    let bronze = env.count("SELECT count(*) FROM bronze.events");
    let dead = env.count("SELECT count(*) FROM dead_letters.events");
    let oversized =
        env.count("SELECT count(*) FROM dead_letters.events WHERE error_code = 'oversized'");
    assert!(
        oversized > 0,
        "the 8 KiB limit must make some batches oversized"
    );
    let fixed_bronze = fixed.count("SELECT count(*) FROM bronze.events");
    let fixed_dead = fixed.count("SELECT count(*) FROM dead_letters.events");

    let before = listing(&lake);
    let report = dry_run(&env, &["--contract", &contract], &[]);
    assert_eq!(listing(&lake), before, "the dry run wrote to the lake");

    let selected: u64 = report.values().map(|r| r.0).sum();
    let would_move: u64 = report.values().map(|r| r.1).sum();
    let still_failing: u64 = report.values().map(|r| r.2).sum();
    assert_eq!(selected, dead, "every dead letter selected: {report:?}");
    assert_eq!(
        bronze + would_move,
        fixed_bronze,
        "rows bronze would gain: {report:?}"
    );
    assert_eq!(
        still_failing, fixed_dead,
        "dead letters that would stay: {report:?}"
    );

    // One code: the unknown event types that are known now move, the rest stay.
    let widened = env.count(
        "SELECT count(*) FROM dead_letters.events WHERE error_code = 'unknown_event_type' \
         AND (raw_text LIKE '%\"event_type\":\"refund\"%' OR raw_text LIKE '%\"event_type\":\"signup\"%')",
    );
    let unknown = env
        .count("SELECT count(*) FROM dead_letters.events WHERE error_code = 'unknown_event_type'");
    assert!(widened > 0 && widened < unknown, "{widened} of {unknown}");
    let one_code = dry_run(
        &env,
        &["--contract", &contract],
        &["--code", "unknown_event_type"],
    );
    assert_eq!(
        one_code,
        BTreeMap::from([(
            "unknown_event_type".to_string(),
            (unknown, widened, unknown - widened)
        )])
    );

    // The limit raised: the oversized batches split into their records, each
    // judged as the oracle's ingestion judged it. The same seed gives the same
    // batches; a raw file's batch id is `<run started>-s<seed>-<sequence>`,
    // and the two runs may start in different seconds, so batches are matched
    // by their sequence number.
    let sequences: Vec<String> = env
        .query("SELECT DISTINCT batch_id FROM dead_letters.events WHERE error_code = 'oversized'")
        .iter()
        .map(|row| {
            let id = row["batch_id"].as_str().expect("a batch id");
            let sequence = id.rsplit('-').next().expect("a sequence number");
            format!("'{sequence}'")
        })
        .collect();
    assert_eq!(
        sequences.len() as u64,
        oversized,
        "one batch id per oversized batch"
    );
    let of_those = |view: &str| {
        fixed.count(&format!(
            "SELECT count(*) FROM {view} WHERE split_part(batch_id, '-', -1) IN ({})",
            sequences.join(", ")
        ))
    };
    let oversized_only = dry_run(&env, &["--contract", &contract], &["--code", "oversized"]);
    let (selected, moves, fails) = oversized_only["oversized"];
    assert_eq!(selected, oversized);
    assert_eq!(
        moves,
        of_those("bronze.events"),
        "records of the batches that pass"
    );
    assert_eq!(
        fails,
        of_those("dead_letters.events"),
        "records of the batches that fail"
    );
    assert!(moves > 0);

    // Still nothing written, and a selection of nothing is reported as such.
    let none = dry_run(&env, &[], &["--code", "no_such_code"]);
    assert!(none.is_empty(), "{none:?}");
    assert_eq!(listing(&lake), before);
}

/// `SQL` through the inspector, each row as one line of its values.
fn lines(env: &Env, sql: &str) -> Vec<String> {
    env.query(sql)
        .iter()
        .map(|row| {
            let values: Vec<String> = row
                .as_object()
                .expect("a row object")
                .values()
                .map(|v| v.to_string())
                .collect();
            values.join(" | ")
        })
        .collect()
}

/// The event id in a dead letter's JSON text (the bundled DuckDB has no
/// json extension).
const EVENT_ID: &str = r#"regexp_extract(raw_text, '"event_id":"([^"]+)"', 1)"#;

/// `inspector redrives --table events --format json`.
fn redrives(env: &Env) -> Vec<Value> {
    let out = env.run(
        "inspector",
        &["redrives", "--table", "events", "--format", "json"],
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .expect("JSON")
        .as_array()
        .expect("an array")
        .clone()
}

#[test]
fn a_redrive_moves_exactly_the_records_a_widened_contract_lets_through() {
    let moto = Moto::start();
    let env = Env::s3(&moto, "redrive-widened");
    let mut produce = PRODUCE.to_vec();
    produce.extend(["--sink", "files"]);
    let summary = env.produce(&produce);
    env.run("consumer", &["--source", "files", "--once"]);
    // Only the default model silver.events.
    std::fs::create_dir_all(env.dir.path().join("models")).expect("models dir");
    env.run("refiner", &["--once", "--models", "models"]);
    let contract = widened_contract(env.dir.path());

    let bronze_before = env.count("SELECT count(*) FROM bronze.events");
    let dead_before = env.count("SELECT count(*) FROM dead_letters.events");
    let silver_before = env.count("SELECT count(*) FROM silver.events");
    assert_eq!(silver_before, bronze_before);
    // The oracle: the same batches ingested under the widened contract.
    let (oracle, _) = local_lake();
    oracle.produce(&produce);
    oracle.run(
        "consumer",
        &["--source", "files", "--once", "--contract", &contract],
    );
    let passes_now: std::collections::HashSet<String> = oracle
        .query("SELECT event_id FROM bronze.events")
        .iter()
        .map(|row| row["event_id"].as_str().expect("an event id").to_string())
        .collect();
    // What must move: the dead letters of the code whose records pass now,
    // with their lineage; the others stay where they are.
    let of_code = env.query(&format!(
        "SELECT {EVENT_ID} AS event_id, source_key, record_index, batch_id, ingested_at \
         FROM dead_letters.events WHERE error_code = 'unknown_event_type' ORDER BY ALL"
    ));
    let (moving, not_moving): (Vec<Value>, Vec<Value>) = of_code
        .into_iter()
        .partition(|row| passes_now.contains(row["event_id"].as_str().expect("an event id")));
    let as_line = |row: &Value| -> String {
        [
            "event_id",
            "source_key",
            "record_index",
            "batch_id",
            "ingested_at",
        ]
        .map(|c| row[c].to_string())
        .join(" | ")
    };
    let expected_moved: Vec<String> = moving.iter().map(as_line).collect();
    let unknown = (moving.len() + not_moving.len()) as u64;
    let moved = moving.len() as u64;
    assert!(moved > 0 && moved < unknown, "{moved} of {unknown}");
    let position = |row: &Value| format!("{} | {}", row["source_key"], row["record_index"]);
    let moving_positions: std::collections::HashSet<String> = moving.iter().map(position).collect();
    let mut staying: Vec<String> = env
        .query("SELECT source_key, record_index FROM dead_letters.events")
        .iter()
        .map(position)
        .filter(|p| !moving_positions.contains(p))
        .collect();
    staying.sort();
    let ids_before = env.count(&format!(
        "SELECT count(DISTINCT {EVENT_ID}) FROM dead_letters.events WHERE error_code = 'unknown_event_type'"
    ));
    assert_eq!(ids_before, unknown, "one event id per unknown type");

    let out = env.run(
        "consumer",
        &[
            "--contract",
            &contract,
            "redrive",
            "--table",
            "events",
            "--code",
            "unknown_event_type",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    let failing = unknown - moved;
    assert!(
        stdout.contains(&format!(
            "re-drive 000001 of table events: {unknown} dead letter(s) selected, {moved} record(s) moved to bronze, \
             {failing} still failing ({failing} written again with a new code or message)"
        )),
        "{stdout}"
    );

    // Bronze gained exactly those records, with their original lineage.
    assert_eq!(
        env.count("SELECT count(*) FROM bronze.events"),
        bronze_before + moved
    );
    let in_bronze: Vec<String> = env
        .query(
            "SELECT event_id, source_key, record_index, batch_id, ingested_at FROM bronze.events \
             WHERE redrive_id IS NOT NULL ORDER BY ALL",
        )
        .iter()
        .map(as_line)
        .collect();
    assert_eq!(in_bronze, expected_moved);
    assert_eq!(
        env.count(
            "SELECT count(*) FROM bronze.events WHERE redrive_id = '000001' AND redriven_at IS NOT NULL \
             AND event_type IN ('refund', 'signup')"
        ),
        moved
    );
    // The dead letters lost exactly those, and kept the rest as they were.
    assert_eq!(
        env.count("SELECT count(*) FROM dead_letters.events"),
        dead_before - moved
    );
    let mut dead_now: Vec<String> = env
        .query("SELECT source_key, record_index FROM dead_letters.events")
        .iter()
        .map(position)
        .collect();
    dead_now.sort();
    assert_eq!(dead_now, staying);
    // Those of unknown types failing still were written again: their
    // message names the new list of types (one fails for another reason
    // first now, a second fault of the record).
    assert_eq!(
        env.count(
            "SELECT count(*) FROM dead_letters.events WHERE redrive_id = '000001' \
             AND (error_message LIKE '%\"refund\", \"signup\"%' OR error_code <> 'unknown_event_type')"
        ),
        failing
    );
    assert_eq!(
        env.count("SELECT count(*) FROM dead_letters.events WHERE redrive_id IS NOT NULL"),
        failing
    );
    // Every event id of those dead letters is on exactly one side.
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM (SELECT event_id FROM bronze.events WHERE redrive_id IS NOT NULL \
             INTERSECT SELECT {EVENT_ID} FROM dead_letters.events)"
        )),
        0,
        "an event id in both views"
    );
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM (SELECT event_id FROM bronze.events WHERE redrive_id IS NOT NULL \
             UNION ALL SELECT {EVENT_ID} FROM dead_letters.events \
             WHERE error_code = 'unknown_event_type' OR redrive_id = '000001')"
        )),
        unknown
    );
    // The history keeps every dead letter, and says which left, when, where to.
    assert_eq!(
        env.count("SELECT count(*) FROM dead_letters.events_history"),
        dead_before + failing,
        "every dead letter ever written"
    );
    assert_eq!(
        env.count(
            "SELECT count(*) FROM dead_letters.events_history WHERE left_by = '000001' AND left_to = 'dead_letters'"
        ),
        failing
    );
    let left: Vec<String> = env
        .query(&format!(
            "SELECT {EVENT_ID} AS event_id, source_key, record_index, batch_id, ingested_at \
             FROM dead_letters.events_history WHERE left_by = '000001' AND left_to = 'bronze' \
             AND left_at IS NOT NULL ORDER BY ALL"
        ))
        .iter()
        .map(as_line)
        .collect();
    assert_eq!(left, expected_moved);
    assert_eq!(
        env.count("SELECT count(*) FROM dead_letters.events_history WHERE left_by IS NULL"),
        dead_before - moved
    );
    let listed = redrives(&env);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], "000001");
    assert_eq!(listed[0]["state"], "done");
    assert_eq!(listed[0]["selected"], unknown);
    assert_eq!(listed[0]["moved"], moved);
    assert_eq!(listed[0]["still_failing"], unknown - moved);

    // The same re-drive again changes nothing: what moved is gone from the
    // view, and what fails the same way is not written again.
    let objects = |env: &Env| {
        let (lake, runtime) = env.lake();
        runtime.block_on(async {
            use futures::TryStreamExt;
            let keys: Vec<String> = lake
                .store
                .list(None)
                .map_ok(|m| m.location.to_string())
                .try_collect()
                .await
                .expect("list");
            keys.into_iter().filter(|k| k.ends_with(".parquet")).count()
        })
    };
    let files_before = objects(&env);
    let still_unknown = env
        .count("SELECT count(*) FROM dead_letters.events WHERE error_code = 'unknown_event_type'");
    env.run(
        "consumer",
        &[
            "--contract",
            &contract,
            "redrive",
            "--table",
            "events",
            "--code",
            "unknown_event_type",
        ],
    );
    assert_eq!(objects(&env), files_before, "a second run wrote data files");
    assert_eq!(
        env.count("SELECT count(*) FROM bronze.events"),
        bronze_before + moved
    );
    assert_eq!(
        env.count("SELECT count(*) FROM dead_letters.events"),
        dead_before - moved
    );
    let listed = redrives(&env);
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1]["moved"], 0);
    assert_eq!(listed[1]["selected"], still_unknown);

    // Silver picks the records up in its normal incremental run (their
    // event times are within the default model's 24 hours of lookback).
    env.run("refiner", &["--once", "--models", "models"]);
    assert_eq!(
        env.count("SELECT count(*) FROM silver.events"),
        silver_before + moved
    );
    assert_eq!(
        env.count("SELECT count(*) FROM silver.events WHERE redrive_id = '000001'"),
        moved
    );
    assert_eq!(num(&summary, "valid_records"), bronze_before);
}

/// Every file under `from`, copied to `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.metadata().expect("metadata").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// What a user checks after a re-drive: bronze rows with their lineage and
/// whether they were re-driven, and the dead letters of the view.
fn end_state(env: &Env) -> (Vec<String>, Vec<String>) {
    let bronze = lines(
        env,
        "SELECT event_id, source_key, record_index, ingested_at, redrive_id IS NOT NULL AS redriven \
         FROM bronze.events ORDER BY ALL",
    );
    let dead = lines(
        env,
        "SELECT source_key, record_index, error_kind, error_code, error_message, raw_text \
         FROM dead_letters.events ORDER BY ALL",
    );
    (bronze, dead)
}

#[test]
fn kill_nine_during_a_redrive_then_a_clean_rerun_ends_as_one_clean_run() {
    let cycles: u64 = std::env::var("REDRIVE_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let (env, lake) = local_lake();
    ingested_under_the_old_limit(&env);
    let contract = widened_contract(env.dir.path());
    let redrive = [
        "--contract",
        contract.as_str(),
        "redrive",
        "--table",
        "events",
    ];

    // One clean run on a copy of the lake: the state to reach. How long a
    // run takes is the fastest of three such runs (each on its own copy):
    // one run timed while the machine is busy (make test runs other tests
    // beside this one) put every kill after the runs' end.
    let clean_run = || {
        let mut clean = Env::new();
        let clean_lake = clean.dir.path().join("lake");
        copy_dir(&lake, &clean_lake);
        clean.set("LAKE_URL", clean_lake.display().to_string());
        let started = Instant::now();
        clean.run("consumer", &redrive);
        (clean, started.elapsed())
    };
    let (clean, mut took) = clean_run();
    for _ in 0..2 {
        took = took.min(clean_run().1);
    }
    let expected = end_state(&clean);
    let moved = clean.count("SELECT count(*) FROM bronze.events WHERE redrive_id IS NOT NULL");
    let rewritten =
        clean.count("SELECT count(*) FROM dead_letters.events WHERE redrive_id IS NOT NULL");
    assert!(
        moved > 0 && rewritten > 0,
        "{moved} moved, {rewritten} rewritten"
    );

    // Killed at random instants of a run, each run finishing what the one
    // before left open.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let (mut killed, mut finished_open) = (0, 0);
    for _ in 0..cycles {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let at = took.mul_f64((seed % 1000) as f64 / 1000.0 * 1.2);
        let mut child = env
            .command("consumer", &redrive)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        std::thread::sleep(at);
        if child.try_wait().expect("wait").is_none() {
            child.kill().expect("kill -9");
            killed += 1;
        }
        let out = child.wait_with_output().expect("wait");
        finished_open += String::from_utf8_lossy(&out.stdout)
            .matches("left open before")
            .count();
    }
    let last = env.run("consumer", &redrive);
    finished_open += String::from_utf8_lossy(&last.stdout)
        .matches("left open before")
        .count();
    println!(
        "{killed} of {cycles} runs killed mid-run (a clean run takes {took:?}); \
         {finished_open} re-drives left open were finished by the next run"
    );
    assert!(
        killed >= cycles / 2,
        "only {killed} of {cycles} runs were killed mid-run"
    );
    assert!(finished_open > 0, "no kill landed inside a re-drive");
    assert_eq!(end_state(&env), expected);
    assert!(
        redrives(&env).iter().all(|r| r["state"] == "done"),
        "a re-drive left open"
    );
    assert_eq!(
        env.count(
            "SELECT count(*) FROM (SELECT source_key, record_index FROM bronze.events GROUP BY ALL HAVING count(*) > 1)"
        ),
        0,
        "a record twice in bronze"
    );
}

/// Batches of 500 events (about 82 KB) ingested under a 64 KiB limit: every
/// one is `oversized` and keeps only its first 64 KiB, so a re-drive under
/// the default limit must read it again from its source. `source` is
/// `files` or `kafka`.
fn oversized_batches_come_back_from(env: &Env, source: &str) {
    let produce = [
        "--batches",
        "12",
        "--batch-size",
        "500",
        "--rate",
        "0",
        "--corrupt-ratio",
        "0",
        "--invalid-ratio",
        "0.01",
        "--seed",
        "11",
    ];
    let mut args = produce.to_vec();
    if source == "files" {
        args.extend(["--sink", "files"]);
    }
    let summary = env.produce(&args);
    env.run(
        "consumer",
        &["--source", source, "--once", "--max-message-bytes", "64KiB"],
    );
    assert_eq!(env.count("SELECT count(*) FROM bronze.events"), 0);
    assert_eq!(
        env.count(
            "SELECT count(*) FROM dead_letters.events WHERE error_code = 'oversized' \
             AND octet_length(raw_payload) = 65536"
        ),
        12,
        "every batch is an oversized dead letter with its first 64 KiB"
    );
    let out = env.run(
        "consumer",
        &["redrive", "--table", "events", "--code", "oversized"],
    );
    println!("{}", String::from_utf8_lossy(&out.stdout));
    let valid = num(&summary, "valid_records");
    let invalid = num(&summary, "invalid_records");
    assert!(valid > 0 && invalid > 0, "{summary}");
    assert_eq!(env.count("SELECT count(*) FROM bronze.events"), valid);
    assert_eq!(
        env.count("SELECT count(DISTINCT event_id) FROM bronze.events WHERE redrive_id = '000001'"),
        valid
    );
    // The batches left; their invalid records are dead letters of their own.
    assert_eq!(
        env.count("SELECT count(*) FROM dead_letters.events WHERE record_index IS NULL"),
        0
    );
    assert_eq!(
        env.count(
            "SELECT count(*) FROM dead_letters.events WHERE error_kind = 'invalid_record' \
             AND redrive_id = '000001'"
        ),
        invalid
    );
    assert_eq!(
        env.count(
            "SELECT count(*) FROM dead_letters.events_history WHERE error_code = 'oversized' \
             AND left_by = '000001'"
        ),
        12
    );
    assert_exactly_once_after_redrive(env, valid, invalid);
}

/// No position on both sides, none twice.
fn assert_exactly_once_after_redrive(env: &Env, valid: u64, invalid: u64) {
    assert_eq!(
        env.count(
            "SELECT count(*) FROM (SELECT batch_id, record_index FROM (\
             SELECT batch_id, record_index FROM bronze.events UNION ALL \
             SELECT batch_id, record_index FROM dead_letters.events) GROUP BY ALL HAVING count(*) > 1)"
        ),
        0
    );
    assert_eq!(
        env.count(
            "SELECT count(*) FROM (SELECT batch_id, record_index FROM bronze.events UNION ALL \
             SELECT batch_id, record_index FROM dead_letters.events)"
        ),
        valid + invalid
    );
}

#[test]
fn an_oversized_batch_comes_back_after_the_limit_is_raised_from_files_and_from_kafka() {
    let (files, _) = local_lake();
    oversized_batches_come_back_from(&files, "files");

    let moto = Moto::start();
    let kafka = Kafka::start("redrive-oversized", 2);
    let env = Env::kafka(&moto, &kafka, "redrive-oversized");
    oversized_batches_come_back_from(&env, "kafka");
}
