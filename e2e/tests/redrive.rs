//! `consumer redrive --dry-run` (docs/DESIGN.md §15): dead letters judged
//! again under a fixed contract and a higher message limit. The oracle is a
//! real ingestion of the same batches under the new rules into a second
//! lake: the dry run must predict exactly the rows it gains and the dead
//! letters it keeps; and the dry run writes nothing.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

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

#[test]
fn a_dry_run_predicts_a_fresh_ingestion_under_the_new_rules_and_writes_nothing() {
    let mut env = Env::new();
    let lake = env.dir.path().join("lake");
    env.set("LAKE_URL", lake.display().to_string());
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

    // The oracle: the same batches, ingested under the widened contract and
    // the default limits.
    let mut fixed = Env::new();
    let fixed_lake = fixed.dir.path().join("lake");
    fixed.set("LAKE_URL", fixed_lake.display().to_string());
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
    // judged as the oracle's ingestion judged it (the same seed gives the
    // same batch ids).
    let ids: Vec<String> = env
        .query("SELECT DISTINCT batch_id FROM dead_letters.events WHERE error_code = 'oversized'")
        .iter()
        .map(|row| format!("'{}'", row["batch_id"].as_str().expect("a batch id")))
        .collect();
    assert_eq!(
        ids.len() as u64,
        oversized,
        "one batch id per oversized batch"
    );
    let of_those = |view: &str| {
        fixed.count(&format!(
            "SELECT count(*) FROM {view} WHERE batch_id IN ({})",
            ids.join(", ")
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
