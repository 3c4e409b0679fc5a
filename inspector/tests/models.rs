//! The refiner's layers: a Delta table under `gold/<model>/` is the view
//! `gold.<model>`, with the same rows through `delta_scan` and the file
//! list, in `init-sql`, `status` and `history`; the schemas `silver` and
//! `gold` exist on any lake.

mod common;

use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use common::{
    commit, inspector, json, local_lake, ok, parquet, runtime, store_objects, write_local_lake,
    SECRET,
};
use lake::{Lake, LakeArgs};
use object_store::{ObjectStoreExt, PutPayload};
use serde_json::{json, Value};
use testkit::Moto;

/// 2026-01-01T10:00:00Z.
const MINUTE: i64 = 1_767_261_600_000_000;

fn run(root: &Path, args: &[&str]) -> Output {
    let lake_url = root.display().to_string();
    inspector(root, &[("LAKE_URL", lake_url.as_str())], args)
}

fn query(root: &Path, sql: &str, extra: &[&str]) -> Value {
    let mut args = vec!["query", sql, "--format", "json"];
    args.extend_from_slice(extra);
    json(&run(root, &args))
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "minute",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("events", DataType::Int64, true),
    ]))
}

fn per_minute(rows: &[(i64, i64)]) -> Vec<u8> {
    let minutes: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let counts: Vec<i64> = rows.iter().map(|r| r.1).collect();
    let batch = RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(TimestampMicrosecondArray::from(minutes).with_timezone("UTC")),
            Arc::new(Int64Array::from(counts)),
        ],
    )
    .expect("batch");
    parquet(&batch)
}

async fn upload(lake: &Lake, key: &str, bytes: Vec<u8>) {
    lake.store
        .put(&Lake::path(key), PutPayload::from(bytes))
        .await
        .expect("put");
}

/// `gold/events_per_minute` with three rows over two days in two commits
/// (versions 1 and 2), a file beside them that no commit has, and a silver
/// directory without a log.
async fn write_gold(lake: &Lake) {
    let prefix = "gold/events_per_minute";
    let mut table = delta::Table::open_or_create(lake, prefix, &schema())
        .await
        .expect("create");
    for (path, bytes) in [
        (
            "event_date=2026-01-01/part-0.parquet",
            per_minute(&[(MINUTE, 7), (MINUTE + 60_000_000, 3)]),
        ),
        (
            "event_date=2026-01-02/part-1.parquet",
            per_minute(&[(MINUTE + 86_400_000_000, 5)]),
        ),
    ] {
        upload(lake, &format!("{prefix}/{path}"), bytes.clone()).await;
        commit(&mut table, path, &bytes).await;
    }
    // Written, never committed: no row.
    let crashed = per_minute(&[(MINUTE, 1000)]);
    upload(
        lake,
        &format!("{prefix}/event_date=2026-01-01/crashed.parquet"),
        crashed,
    )
    .await;
    // A directory without a log is no table.
    let pending = per_minute(&[(MINUTE, 1)]);
    upload(
        lake,
        "silver/pending/event_date=2026-01-01/x.parquet",
        pending,
    )
    .await;
}

/// The test lake's events, and the gold table of [`write_gold`].
fn write_lake(root: &Path) {
    write_local_lake(root);
    runtime().block_on(write_gold(&local_lake(root)));
}

fn expected_rows() -> Value {
    json!([
        {"minute": "2026-01-01 10:00:00+00", "events": 7, "event_date": "2026-01-01"},
        {"minute": "2026-01-01 10:01:00+00", "events": 3, "event_date": "2026-01-01"},
        {"minute": "2026-01-02 10:00:00+00", "events": 5, "event_date": "2026-01-02"},
    ])
}

const ROWS: &str = "SELECT CAST(minute AS VARCHAR) AS minute, events, \
     CAST(event_date AS VARCHAR) AS event_date FROM gold.events_per_minute ORDER BY ALL";

#[test]
fn gold_tables_are_views_through_both_readers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write_lake(root);

    let expected = expected_rows();
    let columns = json!([
        {"column_name": "minute", "column_type": "TIMESTAMP WITH TIME ZONE"},
        {"column_name": "events", "column_type": "BIGINT"},
        {"column_name": "event_date", "column_type": "DATE"},
    ]);
    let describe = "SELECT column_name, column_type FROM (DESCRIBE gold.events_per_minute)";
    for reader in [&[][..], &["--file-list"][..]] {
        assert_eq!(query(root, ROWS, reader), expected, "{reader:?}");
        assert_eq!(query(root, describe, reader), columns, "{reader:?}");
        // The bronze views are as they were.
        let n = query(root, "SELECT count(*) AS n FROM bronze.events", reader);
        assert_eq!(n, json!([{"n": 3}]), "{reader:?}");
    }
    let status = ok(&run(root, &["status"]));
    assert!(status.contains("read by delta_scan"), "{status}");

    // As of version 1: the first commit only.
    for reader in [&["--as-of", "1"][..], &["--as-of", "1", "--file-list"][..]] {
        let n = query(
            root,
            "SELECT count(*) AS n FROM gold.events_per_minute",
            reader,
        );
        assert_eq!(n, json!([{"n": 2}]), "{reader:?}");
    }

    // Schemas without tables: the table is missing, not the schema.
    for view in ["silver.pending", "gold.nothing"] {
        let out = run(root, &["query", &format!("SELECT * FROM {view}")]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains("does not exist") && !stderr.contains("chema"),
            "{view}: {stderr}"
        );
    }
}

#[test]
fn init_sql_status_and_history_show_gold_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write_lake(root);

    let sql = ok(&run(root, &["init-sql"]));
    for schema in ["silver", "gold"] {
        assert!(
            sql.contains(&format!("CREATE SCHEMA IF NOT EXISTS {schema};")),
            "{sql}"
        );
    }
    assert!(
        sql.contains(&format!(
            "CREATE OR REPLACE VIEW gold.events_per_minute AS\n\
             SELECT * EXCLUDE (event_date), event_date\n\
             FROM delta_scan('{}/gold/events_per_minute');",
            root.display()
        )),
        "{sql}"
    );
    assert!(!sql.contains("silver.pending"), "{sql}");
    let listed = ok(&run(root, &["init-sql", "--file-list"]));
    assert!(
        listed.contains("part-1.parquet") && !listed.contains("crashed"),
        "{listed}"
    );
    for printed in [&sql, &listed] {
        let conn = duckdb::Connection::open_in_memory().expect("duckdb");
        if printed == &sql {
            conn.execute_batch(&format!("LOAD '{}';", testkit::delta_extension()))
                .expect("the delta extension");
        }
        conn.execute_batch(printed).expect("the printed SQL runs");
        let n: i64 = conn
            .query_row("SELECT sum(events) FROM gold.events_per_minute", [], |r| {
                r.get(0)
            })
            .expect("sum");
        assert_eq!(n, 15);
    }

    let text = ok(&run(root, &["status"]));
    assert!(
        text.lines()
            .any(|l| l == "  gold.events_per_minute  3 rows  version 2"),
        "{text}"
    );
    let report = json(&run(root, &["status", "--format", "json"]));
    assert_eq!(
        report["models"],
        json!({
            "rows": {"gold.events_per_minute": 3},
            "versions": {"gold.events_per_minute": 2},
            "refiner": {},
        })
    );
    // The consumer's tables are reported as before, without the models.
    assert_eq!(
        report["rows"],
        json!({"bronze.events": 3, "dead_letters.events": 2})
    );
    assert!(
        report["tables"].get("events_per_minute").is_none(),
        "{report}"
    );

    let history = json(&run(
        root,
        &["history", "gold.events_per_minute", "--format", "json"],
    ));
    let versions: Vec<u64> = history
        .as_array()
        .expect("commits")
        .iter()
        .filter_map(|c| c["version"].as_u64())
        .collect();
    assert_eq!(versions, [2, 1, 0]);
    assert_eq!(history[1]["rows_added"], 2);
}

#[test]
fn a_lake_without_models_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write_local_lake(root);
    let text = ok(&run(root, &["status"]));
    assert!(
        text.contains("silver and gold tables\n  none yet\n"),
        "{text}"
    );
    let report = json(&run(root, &["status", "--format", "json"]));
    assert_eq!(
        report["models"],
        json!({"rows": {}, "versions": {}, "refiner": {}})
    );
}

#[test]
fn on_s3_gold_tables_are_read_by_every_reader() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let moto = Moto::start();
    let lake_url = "s3://model-lake/lake";
    let lake = Lake::open(&LakeArgs {
        lake_url: lake_url.into(),
        aws_endpoint_url: Some(moto.endpoint.clone()),
        aws_access_key_id: Some("test-key".into()),
        aws_secret_access_key: Some(SECRET.into()),
        aws_region: "us-east-1".into(),
        ..Default::default()
    })
    .expect("lake");
    runtime().block_on(async {
        store_objects(&lake, common::lake_objects()).await;
        write_gold(&lake).await;
    });
    let mirror_dir = root.join("mirror");
    let env: Vec<(&str, String)> = vec![
        ("LAKE_URL", lake_url.into()),
        ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "test-key".into()),
        ("AWS_SECRET_ACCESS_KEY", SECRET.into()),
        ("AWS_REGION", "us-east-1".into()),
        ("INSPECTOR_MIRROR_DIR", mirror_dir.display().to_string()),
        ("DUCKDB_HTTPFS_EXTENSION", testkit::httpfs_extension()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for reader in [&[][..], &["--file-list"][..], &["--mirror"][..]] {
        let mut args = vec!["query", ROWS, "--format", "json"];
        args.extend_from_slice(reader);
        let out = inspector(root, &env, &args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !stderr.contains("warning"),
            "{reader:?} fell back: {stderr}"
        );
        assert_eq!(json(&out), expected_rows(), "{reader:?}");
    }
    // The mirror holds the gold table's committed files, not the others.
    let mirrored = mirror_dir.join("model-lake/lake/gold/events_per_minute");
    assert!(mirrored
        .join("event_date=2026-01-02/part-1.parquet")
        .is_file());
    assert!(!mirrored
        .join("event_date=2026-01-01/crashed.parquet")
        .exists());
    assert!(!mirrored.join("_delta_log").exists());
    assert!(!mirror_dir.join("model-lake/lake/silver/pending").exists());
    let status = json(&inspector(root, &env, &["status", "--format", "json"]));
    assert_eq!(
        status["models"]["rows"],
        json!({"gold.events_per_minute": 3})
    );
}
