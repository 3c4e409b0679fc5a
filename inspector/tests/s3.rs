//! The real binary over an S3 lake served by moto on loopback: through
//! DuckDB's httpfs (loaded from the `duckdb-extension-httpfs` wheel) and
//! through the local mirror.

mod common;

use std::path::Path;
use std::process::Output;

use common::{inspector, json, lake_objects, ok, orders_objects, remove_file, runtime, SECRET};
use lake::{Lake, LakeArgs};
use serde_json::json;
use testkit::Moto;

fn args(moto: &Moto, lake_url: &str) -> LakeArgs {
    LakeArgs {
        lake_url: lake_url.into(),
        aws_endpoint_url: Some(moto.endpoint.clone()),
        aws_access_key_id: Some("test-key".into()),
        aws_secret_access_key: Some(SECRET.into()),
        aws_region: "us-east-1".into(),
        ..Default::default()
    }
}

fn upload(moto: &Moto, lake_url: &str) -> Lake {
    let lake = Lake::open(&args(moto, lake_url)).expect("lake");
    put_objects(&lake, lake_objects());
    lake
}

/// Uploads `objects` and commits the data files to their Delta tables.
fn put_objects(lake: &Lake, objects: Vec<(String, Vec<u8>)>) {
    runtime().block_on(common::store_objects(lake, objects));
}

struct Env(Vec<(&'static str, String)>);

impl Env {
    fn new(moto: &Moto, lake_url: &str, mirror_dir: &Path) -> Env {
        Env(vec![
            ("LAKE_URL", lake_url.into()),
            ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "test-key".into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET.into()),
            ("AWS_REGION", "us-east-1".into()),
            ("INSPECTOR_MIRROR_DIR", mirror_dir.display().to_string()),
        ])
    }

    fn run(&self, dir: &Path, args: &[&str]) -> Output {
        let env: Vec<(&str, &str)> = self.0.iter().map(|(k, v)| (*k, v.as_str())).collect();
        inspector(dir, &env, args)
    }

    fn count(&self, dir: &Path, view: &str, extra: &[&str]) -> (serde_json::Value, String) {
        let sql = format!("SELECT count(*) AS n FROM {view}");
        let mut args = vec!["query", sql.as_str(), "--format", "json"];
        args.extend_from_slice(extra);
        let out = self.run(dir, &args);
        (
            json(&out),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

#[test]
fn s3_lake_through_httpfs() {
    let extension = testkit::httpfs_extension();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let moto = Moto::start();
    let lake = upload(&moto, "s3://httpfs-lake/team/lake");
    let mirror_dir = root.join("mirror");
    let env = Env::new(&moto, "s3://httpfs-lake/team/lake", &mirror_dir);
    let with_ext = ["--httpfs-extension", extension.as_str()];

    let (n, stderr) = env.count(root, "bronze.events", &with_ext);
    assert_eq!(n, json!([{"n": 3}]));
    assert!(stderr.is_empty(), "httpfs should have been used: {stderr}");
    assert!(!mirror_dir.exists(), "no mirror with httpfs");
    let (n, _) = env.count(root, "dead_letters.events", &with_ext);
    assert_eq!(n, json!([{"n": 2}]));

    let mut args = vec![
        "query",
        "SELECT event_date, typeof(event_date) AS t, count(*) AS n FROM bronze.events GROUP BY ALL ORDER BY 1",
        "--format",
        "json",
    ];
    args.extend_from_slice(&with_ext);
    assert_eq!(
        json(&env.run(root, &args)),
        json!([{"event_date": "2026-01-01", "t": "DATE", "n": 2}, {"event_date": "2026-01-02", "t": "DATE", "n": 1}])
    );
    // A second table, found by listing the bucket, nested columns and all.
    put_objects(&lake, orders_objects());
    let mut args = vec![
        "query",
        "SELECT count(*) AS n, max(items[1].sku) AS sku FROM bronze.orders",
        "--format",
        "json",
    ];
    args.extend_from_slice(&with_ext);
    assert_eq!(
        json(&env.run(root, &args)),
        json!([{"n": 3, "sku": "sku_00004"}])
    );
    let (n, _) = env.count(root, "dead_letters.orders", &with_ext);
    assert_eq!(n, json!([{"n": 1}]));

    let mut args = vec![
        "query",
        "SELECT raw_text FROM dead_letters.events WHERE error_code = 'out_of_range'",
    ];
    args.extend_from_slice(&with_ext);
    assert!(ok(&env.run(root, &args)).contains(r#"{"user_id":-1}"#));

    let mut args = vec!["status"];
    args.extend_from_slice(&with_ext);
    let status = ok(&env.run(root, &args));
    assert!(
        status.contains("through httpfs") && status.contains("  dead_letters.events  2"),
        "{status}"
    );
    assert!(
        status.contains("    position    next_offset 42")
            && status.contains("  bronze.orders        3"),
        "{status}"
    );

    // init-sql: the settings of this lake, the key only on request.
    let mut args = vec!["init-sql"];
    args.extend_from_slice(&with_ext);
    let sql = ok(&env.run(root, &args));
    let host = moto.endpoint.trim_start_matches("http://");
    for part in [
        format!("LOAD '{extension}';"),
        format!("ENDPOINT '{host}'"),
        "URL_STYLE 'path'".into(),
        "USE_SSL false".into(),
        "SECRET '<AWS_SECRET_ACCESS_KEY>'".into(),
        format!("LOAD '{}';", testkit::delta_extension()),
        "FROM delta_scan('s3://httpfs-lake/team/lake/bronze/events');".into(),
    ] {
        assert!(sql.contains(&part), "missing {part} in\n{sql}");
    }
    args.push("--with-secrets");
    let out = env.run(root, &args);
    assert!(out.status.success());
    let with_secret = String::from_utf8_lossy(&out.stdout);
    assert!(
        with_secret.contains(&format!("SECRET '{SECRET}'")),
        "{with_secret}"
    );
    // ... and it works in another DuckDB.
    let conn = duckdb::Connection::open_in_memory().expect("duckdb");
    conn.execute_batch(&with_secret)
        .expect("the printed SQL runs");
    let n: i64 = conn
        .query_row("SELECT count(*) FROM bronze.events", [], |r| r.get(0))
        .expect("count");
    assert_eq!(n, 3);

    // An S3 prefix without files: empty views, not an error.
    let empty = Env::new(&moto, "s3://httpfs-lake/nothing-here", &mirror_dir);
    let (n, stderr) = empty.count(root, "bronze.events", &with_ext);
    assert_eq!(n, json!([{"n": 0}]));
    assert!(stderr.is_empty(), "{stderr}");

    // An extension that cannot be loaded: a one-line warning, then the
    // installed or downloaded httpfs, or the mirror; the answer is the same.
    let isolated = Env(env
        .0
        .iter()
        .cloned()
        .chain([("HOME", root.display().to_string())])
        .collect());
    let (n, stderr) = isolated.count(
        root,
        "bronze.events",
        &["--httpfs-extension", "/nonexistent/httpfs.duckdb_extension"],
    );
    assert_eq!(n, json!([{"n": 3}]));
    if stderr.contains("warning") {
        assert!(
            stderr.contains("LOAD '/nonexistent/httpfs.duckdb_extension'"),
            "{stderr}"
        );
        assert!(
            stderr.contains("local mirror")
                && mirror_dir.join("httpfs-lake/team/lake/bronze").is_dir(),
            "{stderr}"
        );
        eprintln!("fallback observed: {stderr}");
    }
}

#[test]
fn s3_lake_through_the_mirror() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let moto = Moto::start();
    let lake = upload(&moto, "s3://mirror-lake");
    let mirror_dir = root.join("mirror");
    let env = Env::new(&moto, "s3://mirror-lake", &mirror_dir);

    let (n, stderr) = env.count(root, "bronze.events", &["--mirror"]);
    assert_eq!(n, json!([{"n": 3}]));
    assert!(
        stderr.contains("3 objects (3 downloaded, 0 deleted)"),
        "{stderr}"
    );
    let day2 = "bronze/events/event_date=2026-01-02/kafka-events-p0-00000000000000000020-00000000000000000041.parquet";
    assert!(mirror_dir.join("mirror-lake").join(day2).is_file());
    assert!(
        !mirror_dir.join("mirror-lake/_checkpoints").exists(),
        "only the tables are mirrored"
    );

    // Unchanged lake: nothing downloaded.
    let (n, stderr) = env.count(root, "dead_letters.events", &["--mirror"]);
    assert_eq!(n, json!([{"n": 2}]));
    assert!(stderr.is_empty(), "{stderr}");

    // A file removed from the snapshot disappears from the mirror (the
    // object itself stays in the lake, as before a vacuum).
    runtime().block_on(remove_file(
        &lake,
        "bronze/events",
        day2.trim_start_matches("bronze/events/"),
    ));
    let (n, stderr) = env.count(root, "bronze.events", &["--mirror"]);
    assert_eq!(n, json!([{"n": 2}]));
    assert!(
        stderr.contains("2 objects (0 downloaded, 1 deleted)"),
        "{stderr}"
    );
    assert!(!mirror_dir.join("mirror-lake").join(day2).exists());

    let status = ok(&env.run(root, &["status", "--mirror"]));
    assert!(
        status.contains("through the mirror") && status.contains("  bronze.events        2"),
        "{status}"
    );
    // A table that appears later: mirrored by the next sync (its contract
    // and checkpoint are not mirrored).
    put_objects(&lake, orders_objects());
    let (n, stderr) = env.count(root, "bronze.orders", &["--mirror"]);
    assert_eq!(n, json!([{"n": 3}]));
    assert!(
        stderr.contains("5 objects (3 downloaded, 0 deleted)"),
        "{stderr}"
    );

    let sql = ok(&env.run(root, &["init-sql", "--mirror"]));
    assert!(
        sql.contains(&format!(
            "'{}/mirror-lake/bronze/events/event_date=2026-01-01/kafka-events-p0-00000000000000000000-00000000000000000019.parquet'",
            mirror_dir.display()
        )),
        "{sql}"
    );
    assert!(
        !sql.contains("SECRET"),
        "the mirror needs no S3 settings: {sql}"
    );

    // An endpoint that does not answer: one line naming it.
    let down = Env(env
        .0
        .iter()
        .map(|(k, v)| {
            (
                *k,
                if *k == "AWS_ENDPOINT_URL" {
                    "http://127.0.0.1:1".to_string()
                } else {
                    v.clone()
                },
            )
        })
        .collect());
    let out = down.run(root, &["query", "SELECT 1", "--mirror"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("http://127.0.0.1:1") && !stderr.contains(SECRET),
        "{stderr}"
    );
}
