use super::*;
use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field};
use object_store::{ObjectStoreExt, PutPayload};

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]))
}

fn local(dir: &std::path::Path) -> Lake {
    Lake::open(&lake::LakeArgs {
        lake_url: dir.display().to_string(),
        ..Default::default()
    })
    .expect("local lake")
}

async fn put(lake: &Lake, path: &str, rows: Vec<i64>) -> DataFile {
    let batch = RecordBatch::try_new(schema(), vec![Arc::new(Int64Array::from(rows.clone()))])
        .expect("batch");
    let mut bytes = Vec::new();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(&mut bytes, schema(), None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    let size = bytes.len() as i64;
    lake.store
        .put(
            &Lake::path(&format!("bronze/t/{path}")),
            PutPayload::from(bytes::Bytes::from(bytes)),
        )
        .await
        .expect("put");
    DataFile {
        path: path.into(),
        event_date: Some("2026-11-22".into()),
        size,
        rows: rows.len() as u64,
    }
}

/// A micro-batch is one commit with its txn; committing the same range
/// again (a replay) adds nothing; a writer with a stale snapshot of the
/// same source cannot land a second copy.
async fn a_range_is_committed_once(lake: &Lake) {
    let mut table = Table::open_or_create(lake, "bronze/t", &schema())
        .await
        .expect("create");
    let mut stale = Table::open_or_create(lake, "bronze/t", &schema())
        .await
        .expect("open");
    let a = put(lake, "event_date=2026-11-22/a.parquet", vec![1, 2, 3]).await;
    assert_eq!(
        table
            .append("p0", 9, std::slice::from_ref(&a))
            .await
            .expect("commit"),
        Committed::Version(1)
    );
    assert_eq!(table.committed_through("p0").await.expect("txn"), Some(9));
    assert_eq!(
        table
            .append("p0", 9, std::slice::from_ref(&a))
            .await
            .expect("replay"),
        Committed::Already
    );
    // The zombie read the table before the commit: it is told, not duplicated.
    assert_eq!(
        stale.append("p0", 9, &[a]).await.expect("zombie"),
        Committed::Already
    );
    // A writer behind on another source still commits, on top of the log.
    let b = put(lake, "event_date=2026-11-22/b.parquet", vec![4]).await;
    assert_eq!(
        stale.append("p1", 0, &[b]).await.expect("other source"),
        Committed::Version(2)
    );
    table.refresh().await.expect("refresh");
    let mut files: Vec<String> = table
        .files()
        .await
        .expect("files")
        .into_iter()
        .map(|f| f.path)
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "event_date=2026-11-22/a.parquet",
            "event_date=2026-11-22/b.parquet"
        ]
    );
    let log = lake
        .store
        .head(&Lake::path("bronze/t/_delta_log/00000000000000000002.json"))
        .await;
    assert!(log.is_ok(), "the third commit is in the log");

    // History, newest first, with what each commit added.
    let history = table.history(10).await.expect("history");
    type Summary<'a> = (u64, &'a str, u64, u64, Vec<(String, i64)>);
    let summary: Vec<Summary> = history
        .iter()
        .map(|c| {
            (
                c.version,
                c.operation.as_str(),
                c.rows_added,
                c.files_added,
                c.transactions.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (2, "WRITE", 1, 1, vec![("p1".to_string(), 0)]),
            (1, "WRITE", 3, 1, vec![("p0".to_string(), 9)]),
            (0, "CREATE TABLE", 0, 0, vec![]),
        ]
    );
    // Time travel: version 1 has only the first file.
    let old = Table::open(lake, "bronze/t", AsOf::Version(1))
        .await
        .expect("open")
        .expect("a table");
    let files = old.files().await.expect("files");
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].rows, 3);
    assert_eq!(files[0].event_date.as_deref(), Some("2026-11-22"));
    assert!(Table::open(lake, "bronze/none", AsOf::Latest)
        .await
        .expect("open")
        .is_none());

    // A compatible contract change adds a column; a retyped one is refused.
    let wider = Schema::new(vec![
        Field::new("n", DataType::Int64, true),
        Field::new("m", DataType::Utf8, false),
    ]);
    let widened = Table::open_or_create(lake, "bronze/t", &wider)
        .await
        .expect("add column");
    assert_eq!(widened.version(), 3);
    let retyped = Schema::new(vec![Field::new("n", DataType::Utf8, true)]);
    let err = Table::open_or_create(lake, "bronze/t", &retyped)
        .await
        .err()
        .expect("retyped");
    assert!(err.to_string().contains("column `n`"), "{err}");
}

#[tokio::test]
async fn on_a_local_lake() {
    let dir = tempfile::tempdir().expect("tempdir");
    a_range_is_committed_once(&local(dir.path())).await;
}

/// The same on S3 (moto), where the log's conditional puts are what
/// refuse a second commit of one version.
#[tokio::test(flavor = "multi_thread")]
async fn on_s3() {
    let moto = testkit::Moto::start();
    let lake = Lake::open(&lake::LakeArgs {
        lake_url: "s3://delta-test/lake".into(),
        aws_endpoint_url: Some(moto.endpoint.clone()),
        aws_access_key_id: Some("testing-key".into()),
        aws_secret_access_key: Some("testing-secret".into()),
        aws_region: "us-east-1".into(),
        ..Default::default()
    })
    .expect("S3 lake");
    lake.ensure_bucket(true).await.expect("bucket");
    a_range_is_committed_once(&lake).await;
}

/// Several sources in one commit: one version with a txn each. All or
/// nothing: when the log already holds one source's range (a zombie's
/// commit), nothing is committed and that source is named, and the others
/// then commit without it.
#[tokio::test]
async fn sources_share_one_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = local(dir.path());
    let mut table = Table::open_or_create(&lake, "bronze/t", &schema())
        .await
        .expect("create");
    let mut other = Table::open_or_create(&lake, "bronze/t", &schema())
        .await
        .expect("open");
    let shared = put(&lake, "event_date=2026-11-22/a.parquet", vec![1, 2, 3]).await;
    let txn = |source, through| Txn { source, through };
    let group = [txn("p0", 4), txn("p1", 7)];
    assert_eq!(
        table
            .append_together(&group, std::slice::from_ref(&shared))
            .await
            .expect("commit"),
        Appended::Version(1)
    );
    let history = table.history(1).await.expect("history");
    assert_eq!((history[0].files_added, history[0].rows_added), (1, 3));
    assert_eq!(
        history[0].transactions,
        [("p0".to_string(), 4), ("p1".to_string(), 7)]
    );
    // The same group again: both sources are recognised, nothing is added.
    assert_eq!(
        other
            .append_together(&group, std::slice::from_ref(&shared))
            .await
            .expect("replay"),
        Appended::Without(vec![(0, Committed::Already), (1, Committed::Already)])
    );
    // Another writer lands p0's next range; a group on an older snapshot
    // (both sources cached) holding that range too is built, refused by the
    // conflict check, and then returns p0 without committing.
    let mut stale = Table::open_or_create(&lake, "bronze/t", &schema())
        .await
        .expect("open");
    stale.committed_through("p0").await.expect("txn");
    stale.committed_through("p1").await.expect("txn");
    let c = put(&lake, "event_date=2026-11-22/c.parquet", vec![4]).await;
    assert_eq!(
        other
            .append("p0", 9, std::slice::from_ref(&c))
            .await
            .expect("p0"),
        Committed::Version(2)
    );
    let both = put(&lake, "event_date=2026-11-22/both.parquet", vec![4, 5]).await;
    let group = [txn("p0", 9), txn("p1", 8)];
    assert_eq!(
        stale
            .append_together(&group, std::slice::from_ref(&both))
            .await
            .expect("refused"),
        Appended::Without(vec![(0, Committed::Already)])
    );
    let d = put(&lake, "event_date=2026-11-22/d.parquet", vec![5]).await;
    assert_eq!(
        stale
            .append_together(&group[1..], std::slice::from_ref(&d))
            .await
            .expect("without p0"),
        Appended::Version(3)
    );
    table.refresh().await.expect("refresh");
    let mut files: Vec<(String, u64)> = table
        .files()
        .await
        .expect("files")
        .into_iter()
        .map(|f| (f.path, f.rows))
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            ("event_date=2026-11-22/a.parquet".to_string(), 3),
            ("event_date=2026-11-22/c.parquet".to_string(), 1),
            ("event_date=2026-11-22/d.parquet".to_string(), 1),
        ],
        "every row once; the refused file in no snapshot"
    );
    assert_eq!(table.committed_through("p1").await.expect("txn"), Some(8));
}

/// A txn looked up on a pinned snapshot is that snapshot's: a commit made
/// since is not read (as `committed_through` reads it), and a commit with
/// only a `txn` (no files) counts.
#[tokio::test]
async fn transaction_version_reads_the_snapshot_in_hand() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = local(dir.path());
    let mut table = Table::open_or_create(&lake, "bronze/t", &schema())
        .await
        .expect("create");
    let a = put(&lake, "event_date=2026-11-22/a.parquet", vec![1]).await;
    assert_eq!(
        table.append("p0", 4, &[a]).await.expect("commit"),
        Committed::Version(1)
    );
    let pinned = Table::open(&lake, "bronze/t", AsOf::Version(1))
        .await
        .expect("open")
        .expect("a table");
    assert_eq!(
        table
            .append("redrive-000001", 1, &[])
            .await
            .expect("txn only"),
        Committed::Version(2)
    );
    assert_eq!(
        pinned.transaction_version("p0").await.expect("txn"),
        Some(4)
    );
    assert_eq!(
        pinned
            .transaction_version("redrive-000001")
            .await
            .expect("txn"),
        None,
        "committed after the pinned snapshot"
    );
    let latest = Table::open(&lake, "bronze/t", AsOf::Latest)
        .await
        .expect("open")
        .expect("a table");
    assert_eq!(
        latest
            .transaction_version("redrive-000001")
            .await
            .expect("txn"),
        Some(1)
    );
    assert_eq!(latest.transaction_version("p9").await.expect("txn"), None);
    assert_eq!(latest.files().await.expect("files").len(), 1);
}
