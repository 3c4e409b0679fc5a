//! The views read Delta snapshots: `delta_scan` (DuckDB's delta extension,
//! from the pip wheel) and the inspector's own file list give exactly the
//! same rows and columns, on a local lake and on S3 (moto); files outside the
//! snapshot (a crashed attempt's, the log's checkpoints) are never rows;
//! `--as-of` reads older snapshots; `history` lists the commits.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::{
    commit, inspector, json, lake_objects, local_lake, ok, orders_objects, put, remove_file,
    runtime, store_objects, write_local_lake, write_objects, Shell, SECRET,
};
use lake::{Lake, LakeArgs};
use serde_json::{json, Value};
use testkit::Moto;

const VIEWS: [&str; 4] = [
    "bronze.events",
    "dead_letters.events",
    "bronze.orders",
    "dead_letters.orders",
];

fn run(root: &Path, args: &[&str]) -> Output {
    let lake_url = root.display().to_string();
    inspector(root, &[("LAKE_URL", lake_url.as_str())], args)
}

fn query(root: &Path, sql: &str, extra: &[&str]) -> Value {
    let mut args = vec!["query", sql, "--format", "json"];
    args.extend_from_slice(extra);
    json(&run(root, &args))
}

fn count(root: &Path, view: &str, extra: &[&str]) -> i64 {
    let rows = query(root, &format!("SELECT count(*) AS n FROM {view}"), extra);
    rows[0]["n"].as_i64().expect("a count")
}

/// Every row of `view`, sorted, and its columns with their types.
fn everything(out: impl Fn(&str) -> Value, view: &str) -> (Value, Value) {
    (
        out(&format!("SELECT * FROM {view} ORDER BY ALL")),
        out(&format!(
            "SELECT column_name, column_type FROM (DESCRIBE {view})"
        )),
    )
}

/// The events and orders tables, with a column the orders table gained (a
/// compatible contract change) that no file has yet.
fn write_lake(root: &Path) {
    write_local_lake(root);
    write_objects(root, orders_objects());
    widen_orders(&local_lake(root));
}

fn widen_orders(lake: &Lake) {
    let mut fields: Vec<arrow::datatypes::Field> =
        lake::schema::bronze(&common::contract("orders.schema.json"))
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
    fields.push(arrow::datatypes::Field::new(
        "note",
        arrow::datatypes::DataType::Utf8,
        true,
    ));
    let wider = arrow::datatypes::Schema::new(fields);
    runtime()
        .block_on(delta::Table::open_or_create(lake, "bronze/orders", &wider))
        .expect("add a column");
}

#[test]
fn delta_scan_and_the_file_list_give_the_same_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write_lake(root);

    let status = ok(&run(root, &["status"]));
    assert!(status.contains("read by delta_scan"), "{status}");
    let status = ok(&run(root, &["status", "--file-list"]));
    assert!(
        status.contains("read as their logs' file lists"),
        "{status}"
    );

    for view in VIEWS {
        let (rows, columns) = everything(|sql| query(root, sql, &[]), view);
        let (listed_rows, listed_columns) =
            everything(|sql| query(root, sql, &["--file-list"]), view);
        assert!(!rows.as_array().expect("rows").is_empty(), "{view}");
        assert_eq!(rows, listed_rows, "{view}");
        assert_eq!(columns, listed_columns, "{view}");
        let names: Vec<&str> = columns
            .as_array()
            .expect("columns")
            .iter()
            .filter_map(|c| c["column_name"].as_str())
            .collect();
        let tail: &[&str] = if view.starts_with("dead_letters") {
            &["event_date", "raw_text"]
        } else {
            &["event_date"]
        };
        assert!(names.ends_with(tail), "{view}: {names:?}");
    }
    // The column the table has and no file: there, typed, null, before event_date.
    let note = query(
        root,
        "SELECT count(note) AS n, typeof(any_value(note)) AS t FROM bronze.orders",
        &["--file-list"],
    );
    assert_eq!(note, json!([{"n": 0, "t": "VARCHAR"}]));

    // init-sql: delta_scan by default, the file lists on request.
    let sql = ok(&run(root, &["init-sql"]));
    assert!(
        sql.contains("delta_scan(") && !sql.contains("read_parquet("),
        "{sql}"
    );
    let sql = ok(&run(root, &["init-sql", "--file-list"]));
    assert!(
        sql.contains("read_parquet(") && !sql.contains("delta_scan("),
        "{sql}"
    );
    let conn = duckdb::Connection::open_in_memory().expect("duckdb");
    conn.execute_batch(&sql).expect("the printed SQL runs");
    let n: i64 = conn
        .query_row("SELECT count(*) FROM dead_letters.orders", [], |r| r.get(0))
        .expect("count");
    assert_eq!(n, 1);

    // Without the extension (a file that does not load, nothing installed,
    // nothing to download): a warning, and the same rows.
    let out = inspector(
        root,
        &[
            ("LAKE_URL", root.display().to_string().as_str()),
            (
                "DUCKDB_DELTA_EXTENSION",
                "/nonexistent/delta.duckdb_extension",
            ),
            ("HOME", root.display().to_string().as_str()),
        ],
        &[
            "query",
            "SELECT * FROM bronze.events ORDER BY ALL",
            "--format",
            "json",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let rows: Value = serde_json::from_str(&ok(&out)).expect("json");
    assert_eq!(
        rows,
        everything(|sql| query(root, sql, &[]), "bronze.events").0
    );
    if stderr.contains("warning") {
        assert!(
            stderr.contains("LOAD '/nonexistent/delta.duckdb_extension'")
                && stderr.lines().count() == 1,
            "{stderr}"
        );
    }
}

#[test]
fn files_outside_the_snapshot_are_not_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write_local_lake(root);
    // A crashed attempt's files: written, never committed.
    let objects = lake_objects();
    put(
        root,
        "bronze/events/event_date=2026-01-01/kafka-events-p0-00000000000000000042-00000000000000000050.parquet",
        &objects[0].1,
    );
    put(
        root,
        "dead_letters/events/event_date=2026-01-02/kafka-events-p0-00000000000000000042-00000000000000000050.parquet",
        &objects[2].1,
    );
    // Enough commits for Delta to checkpoint the log, a Parquet file that a
    // `*/*.parquet` glob would take for data.
    let lake = local_lake(root);
    runtime().block_on(async {
        let mut table = delta::Table::open(&lake, "bronze/events", delta::AsOf::Latest)
            .await
            .expect("open")
            .expect("a table");
        for through in 0..delta::CHECKPOINT_INTERVAL as i64 {
            table
                .append("idle-source", through, &[])
                .await
                .expect("an empty commit");
        }
    });
    let checkpoints: Vec<_> = std::fs::read_dir(root.join("bronze/events/_delta_log"))
        .expect("log")
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .ends_with(".checkpoint.parquet")
        })
        .collect();
    assert!(!checkpoints.is_empty(), "the log has a checkpoint");

    for reader in [&[][..], &["--file-list"][..]] {
        assert_eq!(count(root, "bronze.events", reader), 3, "{reader:?}");
        assert_eq!(count(root, "dead_letters.events", reader), 2, "{reader:?}");
    }
    let report = json(&run(root, &["status", "--format", "json"]));
    assert_eq!(
        report["rows"],
        json!({"bronze.events": 3, "dead_letters.events": 2})
    );
    assert_eq!(
        report["versions"],
        json!({"bronze.events": 2 + delta::CHECKPOINT_INTERVAL, "dead_letters.events": 1})
    );
    // A version before the checkpoint is still there.
    assert_eq!(count(root, "bronze.events", &["--as-of", "1"]), 2);
}

#[test]
fn as_of_reads_older_snapshots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    // bronze.events: v1 two rows, v2 one more; dead_letters.events: v1 two.
    write_local_lake(root);
    std::thread::sleep(Duration::from_millis(1200));
    let between = chrono::Utc::now();
    std::thread::sleep(Duration::from_millis(1200));
    // Later: the orders table, and two more rows of events (v3).
    write_objects(root, orders_objects());
    let extra = lake_objects().remove(0).1;
    let key =
        "event_date=2026-01-01/kafka-events-p0-00000000000000000042-00000000000000000050.parquet";
    put(root, &format!("bronze/events/{key}"), &extra);
    runtime().block_on(async {
        let lake = local_lake(root);
        let mut table = delta::Table::open(&lake, "bronze/events", delta::AsOf::Latest)
            .await
            .expect("open")
            .expect("a table");
        assert_eq!(commit(&mut table, key, &extra).await, 3);
    });
    assert_eq!(count(root, "bronze.events", &[]), 5);

    for reader in [&[][..], &["--file-list"][..]] {
        fn with<'a>(extra: &[&'a str], reader: &[&'a str]) -> Vec<&'a str> {
            [extra, reader].concat()
        }
        assert_eq!(
            count(root, "bronze.events", &with(&["--as-of", "1"], reader)),
            2
        );
        assert_eq!(
            count(root, "bronze.events", &with(&["--as-of", "2"], reader)),
            3
        );
        assert_eq!(
            count(
                root,
                "dead_letters.events",
                &with(&["--as-of", "1"], reader)
            ),
            2
        );
        // Version 0 is the table's creation: empty, with its columns.
        assert_eq!(
            count(root, "bronze.events", &with(&["--as-of", "0"], reader)),
            0
        );
        let at = between.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        assert_eq!(
            count(
                root,
                "bronze.events",
                &with(&["--as-of", at.as_str()], reader)
            ),
            3
        );

        // A table without that snapshot: an error when read, naming it and
        // its newest version; the others still answer.
        let mut args = vec![
            "query",
            "SELECT count(*) FROM bronze.orders",
            "--as-of",
            at.as_str(),
        ];
        args.extend_from_slice(reader);
        let out = run(root, &args);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("bronze.orders has no snapshot at")
                && stderr.contains("its newest version is 2"),
            "{stderr}"
        );
        let mut args = vec![
            "query",
            "SELECT count(*) FROM dead_letters.events",
            "--as-of",
            "3",
        ];
        args.extend_from_slice(reader);
        let out = run(root, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success()
                && stderr.lines().count() == 1
                && stderr.contains("dead_letters.events has no snapshot at version 3")
                && stderr.contains("its newest version is 1"),
            "{stderr}"
        );
        assert_eq!(
            count(root, "bronze.events", &with(&["--as-of", "3"], reader)),
            5
        );
    }
    // Before every table: every view says so.
    let out = run(
        root,
        &[
            "query",
            "SELECT * FROM bronze.events",
            "--as-of",
            "2001-01-01T00:00:00Z",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("bronze.events has no snapshot at 2001-01-01T00:00:00Z"),
        "{stderr}"
    );

    // Text that is neither a version nor an instant: one line naming the flag.
    for bad in ["yesterday", "-3", "2026-12-01"] {
        let out = run(root, &["query", "SELECT 1", &format!("--as-of={bad}")]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.lines().count() == 1 && stderr.contains("--as-of"),
            "{bad}: {stderr}"
        );
    }
}

#[test]
fn the_shell_follows_new_versions() {
    for reader in [&[][..], &["--file-list"][..]] {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write_local_lake(root);
        let mut shell = Shell::start_with(root, reader);
        let first = shell.send("SELECT count(*) AS n FROM bronze.events;");
        assert!(first.contains("| 3 |"), "{first}");
        // A compaction-like removal, then a new file: two new versions.
        let lake = local_lake(root);
        runtime().block_on(remove_file(
            &lake,
            "bronze/events",
            "event_date=2026-01-02/kafka-events-p0-00000000000000000020-00000000000000000041.parquet",
        ));
        let second = shell.send("SELECT count(*) AS n FROM bronze.events;");
        assert!(second.contains("| 2 |"), "{reader:?}: {second}");
        shell.quit();
    }
}

#[test]
fn history_lists_the_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write_local_lake(root);
    let history = |args: &[&str]| {
        let mut all = vec!["history"];
        all.extend_from_slice(args);
        json(&run(root, &all))
    };
    let commits = history(&["bronze.events", "--format", "json"]);
    let summary: Vec<(u64, &str, u64, u64, u64)> = commits
        .as_array()
        .expect("commits")
        .iter()
        .map(|c| {
            (
                c["version"].as_u64().expect("version"),
                c["operation"].as_str().expect("operation"),
                c["rows_added"].as_u64().expect("rows"),
                c["files_added"].as_u64().expect("files"),
                c["files_removed"].as_u64().expect("removed"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (2, "WRITE", 1, 1, 0),
            (1, "WRITE", 2, 1, 0),
            (0, "CREATE TABLE", 0, 0, 0)
        ]
    );
    for c in commits.as_array().expect("commits") {
        let time = c["time"].as_str().expect("a time");
        assert!(
            time.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(time).is_ok(),
            "{time}"
        );
    }
    assert_eq!(commits[0]["transactions"], "fixture through 2");
    assert_eq!(history(&["events", "--format", "json"])[0]["version"], 2);
    let dead = history(&["dead_letters.events", "--format", "json", "--limit", "1"]);
    assert_eq!(dead.as_array().map(Vec::len), Some(1));
    assert_eq!(
        (dead[0]["version"].as_u64(), dead[0]["rows_added"].as_u64()),
        (Some(1), Some(2))
    );

    let lake = local_lake(root);
    runtime().block_on(remove_file(
        &lake,
        "bronze/events",
        "event_date=2026-01-02/kafka-events-p0-00000000000000000020-00000000000000000041.parquet",
    ));
    let latest = history(&["bronze.events", "--format", "json", "--limit", "1"]);
    assert_eq!(latest[0]["operation"], "DELETE");
    assert_eq!(latest[0]["files_removed"], 1);

    let table = ok(&run(root, &["history", "events"]));
    assert!(
        table.contains("| version | time") && table.contains("| CREATE TABLE |"),
        "{table}"
    );
    for (name, expected) in [
        ("platinum.events", "expected bronze.<table>"),
        ("silver.events", "silver.events has no Delta log"),
        ("bronze.orders", "bronze.orders has no Delta log"),
    ] {
        let out = run(root, &["history", name]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.lines().count() == 1 && stderr.contains(expected),
            "{name}: {stderr}"
        );
    }
}

fn s3_args(moto: &Moto, lake_url: &str) -> LakeArgs {
    LakeArgs {
        lake_url: lake_url.into(),
        aws_endpoint_url: Some(moto.endpoint.clone()),
        aws_access_key_id: Some("test-key".into()),
        aws_secret_access_key: Some(SECRET.into()),
        aws_region: "us-east-1".into(),
        ..Default::default()
    }
}

#[test]
fn on_s3_every_reader_gives_the_same_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let moto = Moto::start();
    let lake_url = "s3://delta-lake/team/lake";
    let lake = Lake::open(&s3_args(&moto, lake_url)).expect("lake");
    runtime().block_on(async {
        store_objects(&lake, lake_objects()).await;
        store_objects(&lake, orders_objects()).await;
    });
    widen_orders(&lake);
    // An orphan beside the committed files.
    runtime().block_on(async {
        use object_store::ObjectStoreExt;
        lake.store
            .put(
                &Lake::path("bronze/events/event_date=2026-01-01/orphan.parquet"),
                lake_objects().remove(0).1.into(),
            )
            .await
            .expect("put");
    });
    let mirror_dir = root.join("mirror");
    let httpfs = testkit::httpfs_extension();
    let env: Vec<(&str, String)> = vec![
        ("LAKE_URL", lake_url.into()),
        ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "test-key".into()),
        ("AWS_SECRET_ACCESS_KEY", SECRET.into()),
        ("AWS_REGION", "us-east-1".into()),
        ("INSPECTOR_MIRROR_DIR", mirror_dir.display().to_string()),
        ("DUCKDB_HTTPFS_EXTENSION", httpfs),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let query = |sql: &str, extra: &[&str]| {
        let mut args = vec!["query", sql, "--format", "json"];
        args.extend_from_slice(extra);
        let out = inspector(root, &env, &args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!stderr.contains("warning"), "{extra:?} fell back: {stderr}");
        json(&out)
    };
    let status = ok(&inspector(root, &env, &["status"]));
    assert!(
        status.contains("through httpfs, Delta tables read by delta_scan")
            && status.contains("  bronze.events        3"),
        "{status}"
    );
    for view in VIEWS {
        let delta_scan = everything(|sql| query(sql, &[]), view);
        assert!(!delta_scan.0.as_array().expect("rows").is_empty(), "{view}");
        for other in [&["--file-list"][..], &["--mirror"][..]] {
            assert_eq!(
                everything(|sql| query(sql, other), view),
                delta_scan,
                "{view} {other:?}"
            );
        }
    }
    assert_eq!(
        query("SELECT count(*) AS n FROM bronze.events", &["--as-of", "1"]),
        json!([{"n": 2}])
    );
    assert_eq!(
        query(
            "SELECT count(*) AS n FROM bronze.events",
            &["--as-of", "1", "--mirror"]
        ),
        json!([{"n": 2}])
    );
    let commits = json(&inspector(
        root,
        &env,
        &["history", "dead_letters.orders", "--format", "json"],
    ));
    assert_eq!(commits[0]["rows_added"], 1);
    // The mirror holds the files of the snapshots last read only (version 1
    // of bronze.events: not the second day's file): no orphan, no log.
    let mirrored = mirror_dir.join("delta-lake/team/lake/bronze/events");
    assert!(mirrored.join("event_date=2026-01-01").is_dir());
    assert!(!mirrored.join("event_date=2026-01-02").exists());
    assert!(!mirrored
        .join("event_date=2026-01-01/orphan.parquet")
        .exists());
    assert!(!mirrored.join("_delta_log").exists());
}
