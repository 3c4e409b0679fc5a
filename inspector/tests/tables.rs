//! A lake with several tables: `events`, `orders` (nested columns, stored
//! contract, checkpoint), `sensor_readings` (only stored contracts) and
//! `clicks` (a stored contract that does not parse). Every table gets its
//! views without the inspector being told about any contract.

mod common;

use std::path::Path;

use common::{
    contract, contract_file, inspector, json, ok, orders_objects, put, write_local_lake,
    write_objects, Shell,
};
use lake::layout::contract_key;
use serde_json::json;

fn write_orders(root: &Path) {
    write_objects(root, orders_objects());
}

/// `sensor_readings` has no files, only contracts: v9 without `firmware`,
/// v10 with it, so the newest (by number, not by name) types the view.
fn write_sensor_contracts(root: &Path) {
    let text = std::fs::read(contract_file("sensor_readings.schema.json")).expect("contract");
    let mut older: serde_json::Value = serde_json::from_slice(&text).expect("json");
    older["properties"]
        .as_object_mut()
        .expect("properties")
        .remove("firmware");
    put(
        root,
        &contract_key("sensor_readings", 9),
        older.to_string().as_bytes(),
    );
    put(root, &contract_key("sensor_readings", 10), &text);
}

/// The full lake, and things that are not tables beside it.
fn write_lake(root: &Path) {
    write_local_lake(root);
    write_orders(root);
    write_sensor_contracts(root);
    put(root, &contract_key("clicks", 1), b"{ not a contract");
    put(
        root,
        "_checkpoints/_probes/conditional-write-1-2.json",
        b"{\"probe\": true}",
    );
    put(root, "bronze/Not-A-Table/x.parquet", b"junk");
}

fn run(root: &Path, args: &[&str]) -> std::process::Output {
    let lake_url = root.display().to_string();
    inspector(root, &[("LAKE_URL", lake_url.as_str())], args)
}

fn query(root: &Path, sql: &str) -> serde_json::Value {
    json(&run(root, &["query", sql, "--format", "json"]))
}

fn columns(root: &Path, view: &str) -> serde_json::Value {
    query(
        root,
        &format!("SELECT column_name, column_type FROM (DESCRIBE {view})"),
    )
}

#[test]
fn every_table_has_its_views() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write_lake(root);

    let counts = query(
        root,
        "SELECT (SELECT count(*) FROM bronze.orders) AS orders, \
                (SELECT count(*) FROM dead_letters.orders) AS dead, \
                (SELECT count(*) FROM bronze.events) AS events, \
                (SELECT count(*) FROM bronze.sensor_readings) AS sensors, \
                (SELECT count(*) FROM dead_letters.clicks) AS clicks",
    );
    assert_eq!(
        counts,
        json!([{"orders": 3, "dead": 1, "events": 3, "sensors": 0, "clicks": 0}])
    );

    let skus = query(
        root,
        "SELECT order_id, event_date, items[1].sku AS sku, len(items) AS lines \
         FROM bronze.orders ORDER BY order_id",
    );
    assert_eq!(
        skus,
        json!([
            {"order_id": "ord_00000001", "event_date": "2026-01-01", "sku": "sku_00001", "lines": 2},
            {"order_id": "ord_00000002", "event_date": "2026-01-01", "sku": "sku_00003", "lines": 1},
            {"order_id": "ord_00000003", "event_date": "2026-01-02", "sku": "sku_00004", "lines": 1},
        ])
    );
    let dead = query(
        root,
        "SELECT error_code, raw_text, contract_version FROM dead_letters.orders",
    );
    assert_eq!(
        dead,
        json!([{"error_code": "not_in_enum", "raw_text": "{}", "contract_version": 1}])
    );

    // A stored contract that does not parse: one warning line, no bronze
    // view; its dead letters still have the shared placeholder.
    let out = run(root, &["query", "SELECT count(*) FROM bronze.clicks"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0]
            .starts_with("inspector: warning: contract _contracts/clicks/v1.schema.json: not JSON")
            && warnings[0].ends_with("no empty view bronze.clicks"),
        "{stderr}"
    );

    // Names that are not tables get no views; the dead letters of each
    // table are three: as written, their history, and as they are now.
    let schemas = query(
        root,
        "SELECT DISTINCT table_name AS t FROM information_schema.tables \
         WHERE table_schema IN ('bronze', 'dead_letters') ORDER BY 1",
    );
    let views: Vec<serde_json::Value> = ["clicks", "events", "orders", "sensor_readings"]
        .iter()
        .flat_map(|t| {
            [
                t.to_string(),
                format!("{t}__written"),
                format!("{t}_history"),
            ]
        })
        .map(|t| json!({ "t": t }))
        .collect();
    assert_eq!(schemas, json!(views));
    let bronze = query(
        root,
        "SELECT table_name AS t FROM information_schema.tables \
         WHERE table_schema = 'bronze' ORDER BY 1",
    );
    assert_eq!(
        bronze,
        json!([{"t": "events"}, {"t": "orders"}, {"t": "sensor_readings"}])
    );
}

#[test]
fn empty_tables_are_typed_by_their_newest_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write_sensor_contracts(root);

    let mut expected: Vec<String> = lake::schema::bronze(&contract("sensor_readings.schema.json"))
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    expected.push("event_date".into());
    let sensors = columns(root, "bronze.sensor_readings");
    let names: Vec<&str> = sensors
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|c| c["column_name"].as_str())
        .collect();
    assert_eq!(names, expected);
    assert!(names.contains(&"firmware"), "v10, not v9: {names:?}");
    for column in [
        json!({"column_name": "read_at", "column_type": "TIMESTAMP WITH TIME ZONE"}),
        json!({"column_name": "battery_pct", "column_type": "BIGINT"}),
        json!({"column_name": "contract_version", "column_type": "INTEGER"}),
    ] {
        assert!(
            sensors.as_array().expect("rows").contains(&column),
            "{column} in {sensors}"
        );
    }
    assert_eq!(
        query(root, "SELECT count(*) AS n FROM bronze.sensor_readings"),
        json!([{"n": 0}])
    );

    // The placeholder of a nested contract has the very column types the
    // files give the view.
    let only_contract = tempfile::tempdir().expect("tempdir");
    let orders_contract =
        std::fs::read(contract_file("orders.schema.json")).expect("orders contract");
    put(
        only_contract.path(),
        &contract_key("orders", 1),
        &orders_contract,
    );
    let full = tempfile::tempdir().expect("tempdir");
    write_orders(full.path());
    let empty = columns(only_contract.path(), "bronze.orders");
    assert_eq!(empty, columns(full.path(), "bronze.orders"));
    assert!(
        empty.as_array().expect("rows").contains(&json!({
            "column_name": "items",
            "column_type": "STRUCT(sku VARCHAR, category VARCHAR, qty BIGINT, unit_price DOUBLE)[]"
        })),
        "{empty}"
    );
    assert_eq!(
        columns(only_contract.path(), "dead_letters.orders"),
        columns(full.path(), "dead_letters.orders")
    );
}

#[test]
fn status_reports_each_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write_lake(root);
    let text = ok(&run(root, &["status"]));
    for line in [
        "table events",
        "checkpoints (_checkpoints/events/)",
        "  kafka topic events partition 0",
        "  bronze.events        3",
        "table orders",
        "checkpoints (_checkpoints/orders/)",
        "  files under raw/orders/",
        "    position    after_key raw/orders/r/000000002.json",
        "    totals      2 micro-batches, 2 messages, 3 bronze rows, 1 dead-letter rows",
        "  bronze.orders        3",
        "  dead_letters.orders  1",
        "  not_in_enum  1",
        "table sensor_readings",
        "  bronze.sensor_readings        0",
        "  none yet: the consumer has not committed anything",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(!text.contains("_probes"), "{text}");

    let report = json(&run(root, &["status", "--format", "json"]));
    let tables = report["tables"].as_object().expect("tables");
    assert_eq!(
        tables.keys().collect::<Vec<_>>(),
        ["clicks", "events", "orders", "sensor_readings"]
    );
    let orders = &report["tables"]["orders"];
    assert_eq!(
        orders["rows"],
        json!({"bronze.orders": 3, "dead_letters.orders": 1})
    );
    assert_eq!(
        orders["dead_letter_error_codes"],
        json!([{"error_code": "not_in_enum", "count": 1}])
    );
    assert_eq!(
        orders["checkpoints"][0]["key"],
        "_checkpoints/orders/files/raw-orders.json"
    );
    assert_eq!(
        orders["checkpoints"][0]["checkpoint"]["source"]["table"],
        "orders"
    );
    // No view, no files: no rows.
    assert_eq!(
        report["tables"]["clicks"]["rows"],
        json!({"bronze.clicks": 0, "dead_letters.clicks": 0})
    );
    // The fields of before several tables are those of events.
    assert_eq!(
        report["rows"],
        json!({"bronze.events": 3, "dead_letters.events": 2})
    );
    assert_eq!(
        report["checkpoints"],
        report["tables"]["events"]["checkpoints"]
    );
    assert_eq!(report["checkpoints"].as_array().map(Vec::len), Some(2));
}

#[test]
fn init_sql_defines_every_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write_lake(root);
    let sql = ok(&run(root, &["init-sql"]));
    for part in [
        "CREATE OR REPLACE VIEW bronze.orders AS".to_string(),
        format!("FROM delta_scan('{}/bronze/orders');", root.display()),
        "-- bronze.sensor_readings has no files yet".into(),
        "-- No view bronze.clicks".into(),
    ] {
        assert!(sql.contains(&part), "missing {part} in\n{sql}");
    }
    let conn = duckdb::Connection::open_in_memory().expect("duckdb");
    conn.execute_batch(&sql).expect("the printed SQL runs");
    let n: i64 = conn
        .query_row(
            "SELECT (SELECT count(*) FROM bronze.orders) * 10 + (SELECT count(*) FROM bronze.sensor_readings)",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(n, 30);
}

#[test]
fn the_shell_sees_a_table_that_appears_later() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write_local_lake(root);
    let mut shell = Shell::start(root);
    let first = shell.send("SELECT count(*) AS n FROM bronze.events;");
    assert!(
        first.contains("views: bronze.events, dead_letters.events;"),
        "{first}"
    );
    write_orders(root);
    let second = shell.send("SELECT count(*) AS n FROM bronze.orders WHERE items[1].qty = 2;");
    assert!(second.contains("| 3 |"), "{second}");
    shell.quit();
}
