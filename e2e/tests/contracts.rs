//! End to end for every shipped contract (`contracts/*.schema.json`): the
//! producer generates each table's records from its contract (breaking some
//! on purpose, and corrupting some batches), one consumer ingests all four
//! tables at once, and the lake read back through the inspector's DuckDB
//! views has exactly the producer's counts, per table and per error code.
//! Kafka (the mock cluster, three partitions per topic) and the files source.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::Value;

/// (table, contract file, topic)
const TABLES: [(&str, &str, &str); 4] = [
    ("clicks", "clicks.schema.json", "clicks"),
    ("events", "events.schema.json", "events"),
    ("orders", "orders.schema.json", "orders"),
    ("sensor_readings", "sensor_readings.schema.json", "sensors"),
];

fn contracts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../contracts")
}

/// Produces one table's batches with `sink`; the built-in generator for
/// `events` (its rules are the events contract's), the contract's otherwise.
fn produce(env: &Env, table: &str, file: &str, sink: &str, seed: &str) -> Value {
    let contract = contracts_dir().join(file).display().to_string();
    let mut args = vec![
        "--batches",
        "60",
        "--batch-size",
        "40",
        "--rate",
        "0",
        "--corrupt-ratio",
        "0.05",
        "--invalid-ratio",
        "0.05",
        "--seed",
        seed,
        "--sink",
        sink,
    ];
    if table != "events" {
        args.extend(["--contract", &contract]);
    }
    env.produce(&args)
}

/// The lake holds exactly what the producer said, for one table.
fn assert_table(env: &Env, table: &str, summary: &Value) {
    let valid = num(summary, "valid_records");
    let invalid = num(summary, "invalid_records");
    let corrupt = num(summary, "corrupt_batches");
    assert!(
        valid > 0 && invalid > 0 && corrupt > 0,
        "{table}: the scenario must exercise every path: {summary}"
    );
    let count = |sql: String| env.count(&sql);
    assert_eq!(
        count(format!("SELECT count(*) FROM bronze.{table}")),
        valid,
        "{table}: bronze rows"
    );
    assert_eq!(
        count(format!(
            "SELECT count(*) FROM dead_letters.{table} WHERE error_kind = 'corrupt_batch'"
        )),
        corrupt,
        "{table}: corrupt batches"
    );
    assert_eq!(
        count(format!(
            "SELECT count(*) FROM dead_letters.{table} WHERE error_kind = 'invalid_record'"
        )),
        invalid,
        "{table}: invalid records"
    );
    assert_eq!(
        count(format!(
            "SELECT count(*) FROM (SELECT contract_version FROM bronze.{table} UNION ALL \
             SELECT contract_version FROM dead_letters.{table}) WHERE contract_version = 1"
        )),
        valid + invalid + corrupt,
        "{table}: every row says which contract version judged it"
    );
    // Each invalid record has the code the producer broke it for. The
    // built-in generator names its breakages by mode, not code.
    if table != "events" {
        let rows = env.query(&format!(
            "SELECT error_code, count(*) AS n FROM dead_letters.{table} \
             WHERE error_kind = 'invalid_record' GROUP BY ALL ORDER BY error_code"
        ));
        let got: Vec<(String, u64)> = rows
            .iter()
            .map(|r| {
                (
                    r["error_code"].as_str().unwrap_or_default().to_string(),
                    r["n"].as_u64().unwrap_or_default(),
                )
            })
            .collect();
        let mut expected: Vec<(String, u64)> = summary["invalid_modes"]
            .as_object()
            .expect("invalid_modes")
            .iter()
            .map(|(code, n)| (code.clone(), n.as_u64().unwrap_or_default()))
            .filter(|(_, n)| *n > 0)
            .collect();
        expected.sort();
        assert_eq!(got, expected, "{table}: dead letters by code");
    }
}

/// The nested columns of orders are queryable as structs and lists.
fn assert_nested_orders(env: &Env, summary: &Value) {
    assert_eq!(
        env.count(
            "SELECT count(*) FROM bronze.orders WHERE items[1].sku IS NOT NULL AND len(items) >= 1"
        ),
        num(summary, "valid_records"),
        "every valid order has a first line item with a sku"
    );
    assert_eq!(
        env.count(
            "SELECT count(*) FROM (SELECT unnest(items) AS item FROM bronze.orders) WHERE item.qty < 1"
        ),
        0,
        "no line item breaks qty >= 1"
    );
}

#[test]
fn four_contracts_through_kafka_into_one_consumer() {
    let moto = Moto::start();
    let kafka = Kafka::start("events", 3);
    for (_, _, topic) in TABLES {
        if topic != "events" {
            kafka
                .cluster
                .create_topic(topic, 3, 1)
                .expect("create topic");
        }
    }
    // No KAFKA_TOPIC: each producer writes to its contract's topic.
    let mut env = Env::s3(&moto, "lake-contracts");
    env.set("KAFKA_BOOTSTRAP_SERVERS", kafka.bootstrap())
        .set("KAFKA_GROUP_ID", "contracts-group");
    let summaries: Vec<Value> = TABLES
        .iter()
        .enumerate()
        .map(|(i, (table, file, _))| produce(&env, table, file, "kafka", &format!("{}", 30 + i)))
        .collect();
    let dir = contracts_dir().display().to_string();
    env.run(
        "consumer",
        &["--source", "kafka", "--once", "--contract", &dir],
    );
    for ((table, _, _), summary) in TABLES.iter().zip(&summaries) {
        assert_table(&env, table, summary);
    }
    assert_nested_orders(&env, &summaries[2]);
    // Each table's partitions were consumed from its own topic.
    assert_eq!(
        env.count("SELECT count(DISTINCT source_partition) FROM bronze.sensor_readings WHERE source_topic = 'sensors'"),
        3
    );
    // The contracts in force are in the lake.
    assert_eq!(
        env.count("SELECT count(*) FROM bronze.orders WHERE contract_version = 1"),
        num(&summaries[2], "valid_records")
    );
    // A second run finds nothing new and changes nothing.
    env.run(
        "consumer",
        &["--source", "kafka", "--once", "--contract", &dir],
    );
    for ((table, _, _), summary) in TABLES.iter().zip(&summaries) {
        assert_table(&env, table, summary);
    }
}

#[test]
fn four_contracts_through_the_files_source() {
    let mut env = Env::new();
    let lake = env.dir.path().join("lake");
    env.set("LAKE_URL", format!("file://{}", lake.display()));
    let summaries: Vec<Value> = TABLES
        .iter()
        .enumerate()
        .map(|(i, (table, file, _))| produce(&env, table, file, "files", &format!("{}", 40 + i)))
        .collect();
    let dir = contracts_dir().display().to_string();
    env.run(
        "consumer",
        &[
            "--source",
            "files",
            "--once",
            "--flush-records",
            "500",
            "--contract",
            &dir,
        ],
    );
    for ((table, _, _), summary) in TABLES.iter().zip(&summaries) {
        assert_table(&env, table, summary);
    }
    assert_nested_orders(&env, &summaries[2]);
    for (table, _, _) in TABLES {
        assert!(
            lake.join(format!("_contracts/{table}/v1.schema.json"))
                .exists(),
            "the contract of {table} is stored in the lake"
        );
    }
    // An incompatible edit under the same version is refused, naming the change.
    let edited = env.dir.path().join("clicks.schema.json");
    let text = std::fs::read_to_string(contracts_dir().join("clicks.schema.json"))
        .expect("clicks contract")
        .replace(
            r#""user_id": {"type": "integer", "minimum": 1}"#,
            r#""user_id": {"type": "string"}"#,
        );
    std::fs::write(&edited, text).expect("write the edited contract");
    let edited_arg = edited.display().to_string();
    let out = env
        .command(
            "consumer",
            &["--source", "files", "--once", "--contract", &edited_arg],
        )
        .output()
        .expect("spawn");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an incompatible edit must not start");
    assert!(
        stderr.contains("field `user_id` changed from integer to string")
            && stderr.contains("clicks.schema.json"),
        "{stderr}"
    );
}
