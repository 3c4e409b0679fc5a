//! The refiner end to end: bronze → silver (one row per key) → gold, kept up
//! to date incrementally by `refiner --once` runs with new data between them,
//! and after `kill -9` at random instants; every result is compared with the
//! same SQL run from scratch.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// The gold models of the events contract, as shipped in `models/gold/`.
const EVENTS_GOLD: &[&str] = &[
    "events_per_minute",
    "revenue_per_minute",
    "funnel_daily",
    "dead_letter_rate",
];
const ORDERS_GOLD: &[&str] = &["revenue_by_category", "top_products", "customer_spend"];

fn models() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models")
}

fn local_env() -> Env {
    let mut env = Env::new();
    let lake = env.dir.path().join("lake").display().to_string();
    env.set("LAKE_URL", lake);
    env.set("MODELS_DIR", models().display().to_string());
    env
}

/// The producer's files sink: `batches` of 100 with (unless `extra` sets
/// them) 10 % duplicates and 5 % events 10 minutes late, and the usual
/// invalid records and corrupt batches.
fn produce(env: &Env, batches: u32, seed: u64, extra: &[&str]) -> Value {
    let (batches, seed) = (batches.to_string(), seed.to_string());
    let mut args = vec![
        "--sink",
        "files",
        "--rate",
        "0",
        "--batches",
        &batches,
        "--batch-size",
        "100",
        "--seed",
        &seed,
        "--late-by",
        "10m",
    ];
    for (flag, default) in [("--duplicate-ratio", "0.1"), ("--late-ratio", "0.05")] {
        if !extra.contains(&flag) {
            args.extend([flag, default]);
        }
    }
    args.extend(extra);
    env.produce(&args)
}

fn ingest(env: &Env, extra: &[&str]) {
    let mut args = vec!["--source", "files", "--once"];
    args.extend(extra);
    env.run("consumer", &args);
}

fn refine(env: &Env, extra: &[&str]) -> String {
    let mut args = vec!["--once"];
    args.extend(extra);
    String::from_utf8_lossy(&env.run("refiner", &args).stderr).into_owned()
}

/// Silver holds exactly one row per key of bronze, and as many as the
/// producers sent unique valid records.
fn assert_silver(env: &Env, table: &str, key: &str, unique: u64) {
    assert_eq!(
        env.count(&format!("SELECT count(*) FROM silver.{table}")),
        unique,
        "silver.{table} rows = the unique valid records sent"
    );
    assert_eq!(
        env.count(&format!("SELECT count(DISTINCT {key}) FROM silver.{table}")),
        unique,
        "one row per {key}"
    );
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM (SELECT {key} FROM bronze.{table} EXCEPT SELECT {key} FROM silver.{table})"
        )),
        0,
        "every key of bronze is in silver"
    );
}

/// Every listed gold model equals its SQL run from scratch over the current
/// silver: the same multiset of rows.
fn assert_gold_is_a_full_recompute(env: &Env, names: &[&str]) {
    for name in names {
        let file = models().join("gold").join(format!("{name}.sql"));
        let sql = std::fs::read_to_string(&file).expect("model file");
        let stored = format!("SELECT * EXCLUDE (event_date) FROM gold.{name}");
        let diff = format!(
            "SELECT count(*) FROM (({stored} EXCEPT ALL ({sql}\n)) UNION ALL (({sql}\n) EXCEPT ALL {stored}))"
        );
        assert_eq!(
            env.count(&diff),
            0,
            "gold.{name} differs from its SQL recomputed over silver"
        );
        assert!(
            env.count(&format!("SELECT count(*) FROM gold.{name}")) > 0,
            "gold.{name} has rows"
        );
    }
}

fn sum(summaries: &[Value], field: &str) -> u64 {
    summaries.iter().map(|s| num(s, field)).sum()
}

#[test]
fn silver_and_gold_follow_bronze_run_after_run() {
    let env = local_env();
    let mut summaries = Vec::new();
    // Round 1; round 2 re-sends round 1's first batches unchanged (the same
    // seed makes the same events) beside new ones; round 3 adds more.
    for (round, (batches, seed)) in [(30, 7), (10, 7), (20, 8)].into_iter().enumerate() {
        let summary = produce(&env, batches, seed, &[]);
        assert!(num(&summary, "duplicate_records") > 0, "{summary}");
        ingest(&env, &[]);
        let log = refine(&env, &[]);
        assert!(log.contains("model refreshed"), "round {round}: {log}");
        if seed != 7 || round == 0 {
            summaries.push(summary);
        }
        assert_silver(
            &env,
            "events",
            "event_id",
            sum(&summaries, "unique_valid_records"),
        );
        assert_gold_is_a_full_recompute(&env, EVENTS_GOLD);
    }
    assert!(sum(&summaries, "late_records") > 0);
    // Nothing new: a run commits nothing.
    let before = env.run(
        "inspector",
        &["history", "gold.events_per_minute", "--format", "json"],
    );
    refine(&env, &[]);
    let after = env.run(
        "inspector",
        &["history", "gold.events_per_minute", "--format", "json"],
    );
    assert_eq!(before.stdout, after.stdout, "an idle run commits nothing");
    // Status: each model's version, the input versions it reflects, no lag.
    let out = env.run("inspector", &["status", "--format", "json"]);
    let status: Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    let silver = &status["models"]["refiner"]["silver.events"];
    assert_eq!(silver["inputs"]["bronze.events"]["lag"], 0, "{silver}");
    assert_eq!(silver["error"], Value::Null, "{silver}");
    let gold = &status["models"]["refiner"]["gold.dead_letter_rate"];
    assert_eq!(gold["inputs"]["dead_letters.events"]["lag"], 0, "{gold}");
    assert_eq!(
        status["models"]["versions"]["gold.events_per_minute"],
        newest_version(&env, "gold.events_per_minute"),
    );
}

/// The newest version in `inspector history`.
fn newest_version(env: &Env, table: &str) -> Value {
    let out = env.run(
        "inspector",
        &["history", table, "--format", "json", "--limit", "1"],
    );
    let history: Value = serde_json::from_slice(&out.stdout).expect("history JSON");
    history[0]["version"].clone()
}

#[test]
fn a_late_event_beyond_the_lookback_waits_for_a_full_refresh() {
    let env = local_env();
    let recent = produce(
        &env,
        10,
        11,
        &["--start-time", "2026-11-10T00:00:00Z", "--late-ratio", "0"],
    );
    ingest(&env, &[]);
    refine(&env, &[]);
    // Nine days older than the newest bucket, far beyond silver's 24 hours.
    let old = produce(
        &env,
        2,
        12,
        &[
            "--start-time",
            "2026-11-01T00:00:00Z",
            "--duplicate-ratio",
            "0",
        ],
    );
    ingest(&env, &[]);
    let log = refine(&env, &[]);
    assert!(log.contains("beyond the lookback"), "{log}");
    let status = env
        .dir
        .path()
        .join("lake/_checkpoints/_refiner/silver.events.json");
    let status: Value =
        serde_json::from_slice(&std::fs::read(status).expect("status")).expect("JSON");
    assert_eq!(
        status["late_rows_since_start"],
        num(&old, "valid_records"),
        "{status}"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM silver.events"),
        num(&recent, "unique_valid_records"),
        "the late events are in bronze only"
    );
    refine(&env, &["--full-refresh"]);
    let all = num(&recent, "unique_valid_records") + num(&old, "unique_valid_records");
    assert_silver(&env, "events", "event_id", all);
    assert_gold_is_a_full_recompute(&env, EVENTS_GOLD);
}

#[test]
fn kill_nine_during_refinement_converges_to_the_full_recompute() {
    let cycles: u32 = std::env::var("CHAOS_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(20)
        .min(40);
    let mut env = local_env();
    env.set("REFINE_INTERVAL", "100ms");
    let mut summaries = Vec::new();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for cycle in 0..cycles {
        summaries.push(produce(&env, 4, 100 + cycle as u64, &[]));
        ingest(&env, &[]);
        let mut refiner = Background(
            env.command("refiner", &[])
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn refiner"),
        );
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(200 + seed % 1500));
        refiner.0.kill().expect("SIGKILL");
        let _ = refiner.0.wait();
    }
    // The killed runs committed work: the last run resumes, it does not start over.
    assert!(env.count("SELECT count(*) FROM silver.events") > 0);
    refine(&env, &[]);
    assert_silver(
        &env,
        "events",
        "event_id",
        sum(&summaries, "unique_valid_records"),
    );
    assert_gold_is_a_full_recompute(&env, EVENTS_GOLD);
}

#[test]
fn the_orders_models_flatten_paid_line_items() {
    let env = local_env();
    let contract = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../contracts/orders.schema.json")
        .display()
        .to_string();
    let summary = produce(&env, 20, 5, &["--contract", &contract]);
    ingest(&env, &["--contract", &contract]);
    refine(&env, &[]);
    assert_silver(
        &env,
        "orders",
        "order_id",
        num(&summary, "unique_valid_records"),
    );
    let paid_items = env.count("SELECT sum(len(items)) FROM silver.orders WHERE status = 'PAID'");
    assert!(paid_items > 0);
    assert_eq!(
        env.count("SELECT count(*) FROM silver.order_items"),
        paid_items
    );
    assert_eq!(
        env.count(
            "SELECT count(*) FROM (SELECT DISTINCT order_id, line_number FROM silver.order_items)"
        ),
        paid_items
    );
    assert_gold_is_a_full_recompute(&env, ORDERS_GOLD);
}
