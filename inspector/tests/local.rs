//! The real binary over a local lake: exact counts and values through every
//! output format, status, init-sql, the empty lake, and the shell picking up
//! data that arrives while it runs.

mod common;

use std::path::Path;

use common::{inspector, json, ok, write_local_lake, Shell};
use serde_json::json;

fn lake_env(root: &Path) -> Vec<(&'static str, String)> {
    vec![("LAKE_URL", root.display().to_string())]
}

fn run(root: &Path, args: &[&str]) -> std::process::Output {
    let env = lake_env(root);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    inspector(root, &env, args)
}

#[test]
fn queries_in_every_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write_local_lake(root);

    let n = json(&run(
        root,
        &[
            "query",
            "SELECT count(*) AS n FROM bronze.events",
            "--format",
            "json",
        ],
    ));
    assert_eq!(n, json!([{"n": 3}]));
    let n = json(&run(
        root,
        &[
            "query",
            "SELECT count(*) AS n FROM dead_letters.events",
            "--format",
            "json",
        ],
    ));
    assert_eq!(n, json!([{"n": 2}]));

    let rows = json(&run(
        root,
        &[
            "query",
            "SELECT event_id, event_date, event_ts, amount, country FROM bronze.events ORDER BY event_id",
            "--format",
            "json",
        ],
    ));
    assert_eq!(
        rows,
        json!([
            {"event_id": "00000000-0000-4000-8000-000000000001", "event_date": "2026-01-01",
             "event_ts": "2026-01-01T10:00:00Z", "amount": null, "country": "NL"},
            {"event_id": "00000000-0000-4000-8000-000000000002", "event_date": "2026-01-01",
             "event_ts": "2026-01-01T23:59:59.500Z", "amount": 9.5, "country": null},
            {"event_id": "00000000-0000-4000-8000-000000000003", "event_date": "2026-01-02",
             "event_ts": "2026-01-02T00:00:01Z", "amount": null, "country": "DE"},
        ])
    );

    let types = json(&run(
        root,
        &[
            "query",
            "SELECT typeof(event_date) AS d, typeof(event_ts) AS t FROM bronze.events LIMIT 1",
            "--format",
            "json",
        ],
    ));
    assert_eq!(
        types,
        json!([{"d": "DATE", "t": "TIMESTAMP WITH TIME ZONE"}])
    );

    let dead = json(&run(
        root,
        &[
            "query",
            "SELECT error_code, raw_text, raw_payload, record_index FROM dead_letters.events ORDER BY error_code",
            "--format",
            "json",
        ],
    ));
    assert_eq!(
        dead,
        json!([
            {"error_code": "not_utf8", "raw_text": null, "raw_payload": "fffe", "record_index": null},
            {"error_code": "out_of_range", "raw_text": "{\"user_id\":-1}",
             "raw_payload": "7b22757365725f6964223a2d317d", "record_index": 3},
        ])
    );

    let csv = ok(&run(
        root,
        &[
            "query",
            "SELECT event_date, count(*) AS n FROM bronze.events GROUP BY ALL ORDER BY 1",
            "--format",
            "csv",
        ],
    ));
    assert_eq!(csv, "event_date,n\n2026-01-01,2\n2026-01-02,1\n");

    let table = ok(&run(
        root,
        &[
            "query",
            "SELECT event_type, user_id FROM bronze.events ORDER BY event_ts",
        ],
    ));
    let expected = "\
+------------+---------+
| event_type | user_id |
+------------+---------+
| page_view  | 1       |
| purchase   | 2       |
| click      | 1       |
+------------+---------+
";
    assert_eq!(table, expected);
}

#[test]
fn errors_are_one_line_and_exit_non_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(dir.path(), &["query", "SELECT * FROM bronze.nothing"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("inspector: ") && stderr.contains("nothing"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));

    let out = inspector(
        dir.path(),
        &[("LAKE_URL", "gs://elsewhere")],
        &["query", "SELECT 1"],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("inspector: LAKE_URL"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn status_reports_checkpoints_counts_and_reasons() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write_local_lake(root);
    let text = ok(&run(root, &["status"]));
    for line in [
        "  kafka topic events partition 0",
        "    position    next_offset 42",
        "    intent      none",
        "    totals      2 micro-batches, 42 messages, 3 bronze rows, 2 dead-letter rows",
        "    writer      consumer-test",
        "  files under raw/events/",
        "    position    after_key raw/events/r/000000004.json",
        "    intent      open: micro-batch 5 over keys raw/events/r/000000005.json ..= raw/events/r/000000006.json (2 messages)",
        "  bronze.events        3",
        "  dead_letters.events  2",
        "  not_utf8      1",
        "  out_of_range  1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    assert!(text.contains("  lag: n/a (brokers 127.0.0.1:1"), "{text}");

    let report = json(&run(root, &["status", "--format", "json"]));
    assert_eq!(
        report["rows"],
        json!({"bronze.events": 3, "dead_letters.events": 2})
    );
    assert_eq!(
        report["dead_letter_error_codes"],
        json!([{"error_code": "not_utf8", "count": 1}, {"error_code": "out_of_range", "count": 1}])
    );
    assert_eq!(report["checkpoints"][1]["checkpoint"]["next_offset"], 42);
    assert!(report["kafka_lag"]["error"].is_string(), "{report}");
}

#[test]
fn init_sql_recreates_the_views_in_another_duckdb() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write_local_lake(root);
    let sql = ok(&run(root, &["init-sql"]));
    assert!(sql.contains("CREATE SCHEMA IF NOT EXISTS bronze;"), "{sql}");
    assert!(
        sql.contains(&format!(
            "FROM delta_scan('{}/bronze/events');",
            root.display()
        )),
        "{sql}"
    );
    assert!(!sql.contains("httpfs") && !sql.contains("SECRET"), "{sql}");
    let conn = duckdb::Connection::open_in_memory().expect("duckdb");
    conn.execute_batch(&sql).expect("the printed SQL runs");
    let n: i64 = conn
        .query_row("SELECT (SELECT count(*) FROM bronze.events) * 10 + (SELECT count(*) FROM dead_letters.events)", [], |r| r.get(0))
        .expect("count");
    assert_eq!(n, 32);
    // The dead letters as written, their history, and the current ones,
    // printed after the views they read.
    let at = |view: &str| {
        sql.find(&format!("CREATE OR REPLACE VIEW {view} AS"))
            .unwrap_or_else(|| panic!("{view} in {sql}"))
    };
    assert!(at("bronze.events") < at("dead_letters.events_history"));
    assert!(at("dead_letters.\"events__written\"") < at("dead_letters.events_history"));
    assert!(at("dead_letters.events_history") < at("dead_letters.events"));
    let n: i64 = conn
        .query_row(
            "SELECT (SELECT count(*) FROM dead_letters.\"events__written\") * 10 \
             + (SELECT count(*) FROM dead_letters.events_history WHERE left_by IS NULL)",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(n, 22);
}

fn columns(root: &Path, view: &str) -> serde_json::Value {
    json(&run(
        root,
        &[
            "query",
            &format!("SELECT column_name, column_type FROM (DESCRIBE {view})"),
            "--format",
            "json",
        ],
    ))
}

#[test]
fn an_empty_lake_has_empty_views_with_the_same_columns() {
    let empty = tempfile::tempdir().expect("tempdir");
    let full = tempfile::tempdir().expect("tempdir");
    write_local_lake(full.path());
    for view in ["bronze.events", "dead_letters.events"] {
        let n = json(&run(
            empty.path(),
            &[
                "query",
                &format!("SELECT count(*) AS n FROM {view}"),
                "--format",
                "json",
            ],
        ));
        assert_eq!(n, json!([{"n": 0}]));
        assert_eq!(
            columns(empty.path(), view),
            columns(full.path(), view),
            "{view}"
        );
    }
    // The dead letters: the table's columns, re-drive ones last, then
    // event_date and raw_text; the history adds when each row left.
    let names = |view: &str| -> Vec<String> {
        columns(full.path(), view)
            .as_array()
            .expect("rows")
            .iter()
            .map(|c| c["column_name"].as_str().expect("name").to_string())
            .collect()
    };
    let dead = names("dead_letters.events");
    assert_eq!(
        dead[dead.len() - 4..],
        ["redrive_id", "redriven_at", "event_date", "raw_text"]
    );
    assert_eq!(dead, names("dead_letters.\"events__written\""));
    let mut history = dead.clone();
    history.extend(["left_at", "left_by", "left_to"].map(String::from));
    assert_eq!(names("dead_letters.events_history"), history);
    let bronze = columns(empty.path(), "bronze.events");
    assert_eq!(
        bronze[3],
        json!({"column_name": "event_ts", "column_type": "TIMESTAMP WITH TIME ZONE"})
    );
    assert_eq!(bronze.as_array().map(Vec::len), Some(21)); // 20 stored + event_date

    let csv = ok(&run(
        empty.path(),
        &[
            "query",
            "SELECT event_id, event_date FROM bronze.events",
            "--format",
            "csv",
        ],
    ));
    assert_eq!(csv, "event_id,event_date\n");
    let status = ok(&run(empty.path(), &["status"]));
    assert!(
        status.contains("none yet") && status.contains("  bronze.events        0"),
        "{status}"
    );
    let sql = ok(&run(empty.path(), &["init-sql"]));
    assert!(sql.contains("bronze.events has no files yet"), "{sql}");
}

#[test]
fn the_shell_sees_data_that_arrives_later() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let mut shell = Shell::start(root);
    // A statement over two lines.
    let first = shell.send("SELECT count(*) AS n\n  FROM bronze.events;");
    assert!(first.contains("| 0 |"), "{first}");

    write_local_lake(root);
    let second = shell.send("SELECT count(*) AS n FROM bronze.events; SELECT * FROM nowhere;");
    assert!(second.contains("| 3 |"), "{second}");
    let tables = shell.send(".tables");
    assert!(
        tables.contains("dead_letters") && tables.contains("VIEW"),
        "{tables}"
    );
    let out = shell.quit();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: ") && stderr.contains("nowhere"),
        "{stderr}"
    );
    assert!(root.join(".cache/lakehouse/inspector_history").exists());
}
