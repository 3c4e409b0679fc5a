//! Delta Lake tables on the lake's own store (docs/DESIGN.md §12, issue 13 in
//! progress): a table is created with the contract's columns, partitioned by
//! `event_date`; a micro-batch is one commit whose `add` actions are the
//! files it wrote and whose `txn` action records its source (`appId`) and
//! the end of its range (`version`), so the log itself says what is
//! committed. The log's own conditional writes (`If-None-Match` on S3, as the
//! consumer proves at start) make a concurrent commit of the same source
//! fail rather than land twice; no lock service is needed.
//!
//! Built on `deltalake-core` without DataFusion: the consumer writes the
//! Parquet itself and hands over the files.

use std::collections::HashMap;
use std::sync::{Arc, Once};

use arrow::datatypes::Schema;
use deltalake_core::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake_core::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake_core::kernel::{Action, Add, StructType, Transaction};
use deltalake_core::logstore::{
    default_logstore, logstore_factories, LogStore, LogStoreFactory, ObjectStoreRef, StorageConfig,
};
use deltalake_core::operations::create::CreateBuilder;
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::{DeltaResult, DeltaTable, DeltaTableBuilder, DeltaTableError, TableProperty};
use lake::Lake;
use url::Url;

/// The hive partition column of every table.
pub const PARTITION: &str = "event_date";

/// One Parquet object a micro-batch wrote, as the table's log records it.
#[derive(Debug, Clone, PartialEq)]
pub struct DataFile {
    /// Relative to the table's root, e.g. `event_date=2026-11-22/x.parquet`.
    pub path: String,
    pub event_date: Option<String>,
    pub size: i64,
    pub rows: u64,
}

/// What a commit came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    /// A new version of the table.
    Version(u64),
    /// The log already holds this source's range (`txn` at or past it): a
    /// replay of a commit whose response was lost, or a second run.
    Already,
}

/// A Delta table of the lake, e.g. `bronze/events`.
pub struct Table {
    table: DeltaTable,
}

impl Table {
    /// Opens the table under `prefix`, creating it with `schema`'s columns
    /// and `event_date` if it has no log yet.
    pub async fn open_or_create(
        lake: &Lake,
        prefix: &str,
        schema: &Schema,
    ) -> anyhow::Result<Table> {
        if let lake::store::Location::Local { root } = &lake.location {
            // The local table root must exist before Delta will look at it.
            std::fs::create_dir_all(root.join(prefix))?;
        }
        let (store, root) = lake.root_store()?;
        let url = Url::parse(&format!("{root}/{}/", prefix.trim_matches('/')))?;
        register_s3();
        let builder = DeltaTableBuilder::from_url(url.clone())?.with_storage_backend(store, url);
        let log_store = builder.build_storage()?;
        let table = match builder.load().await {
            Ok(table) => table,
            Err(DeltaTableError::NotATable(_)) => {
                let columns: StructType = schema.try_into_kernel()?;
                let mut create = CreateBuilder::new()
                    .with_log_store(log_store)
                    .with_columns(columns.fields().cloned());
                if !schema.fields().iter().any(|f| f.name() == PARTITION) {
                    create = create.with_column(
                        PARTITION,
                        deltalake_core::kernel::DataType::DATE,
                        true,
                        None,
                    );
                }
                create
                    .with_partition_columns([PARTITION])
                    .with_configuration_property(TableProperty::CheckpointInterval, Some("100"))
                    .await?
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Table { table })
    }

    /// Reads the log again; returns the latest version.
    pub async fn refresh(&mut self) -> anyhow::Result<Option<u64>> {
        self.table.update_state().await?;
        Ok(self.table.version())
    }

    /// The end of the last range committed for `source` (its `txn` version).
    pub async fn committed_through(&self, source: &str) -> anyhow::Result<Option<i64>> {
        let snapshot = self.table.snapshot()?;
        Ok(snapshot
            .transaction_version(self.table.log_store().as_ref(), source)
            .await?)
    }

    /// Commits `files` as the micro-batch of `source` ending at `through`, on
    /// top of the snapshot last read. A commit of the same source that won
    /// in between is recognised from the log: `Already` when it covers this
    /// range, else an error (another writer owns the source).
    pub async fn append(
        &mut self,
        source: &str,
        through: i64,
        files: &[DataFile],
    ) -> anyhow::Result<Committed> {
        if self
            .committed_through(source)
            .await?
            .is_some_and(|v| v >= through)
        {
            return Ok(Committed::Already);
        }
        let now = chrono::Utc::now().timestamp_millis();
        let actions = files
            .iter()
            .map(|f| {
                Action::Add(Add {
                    path: f.path.clone(),
                    partition_values: HashMap::from([(
                        PARTITION.to_string(),
                        f.event_date.clone(),
                    )]),
                    size: f.size,
                    modification_time: now,
                    data_change: true,
                    stats: Some(format!("{{\"numRecords\":{}}}", f.rows)),
                    ..Default::default()
                })
            })
            .collect();
        let properties = CommitProperties::default()
            .with_application_transaction(Transaction::new(source, through));
        let commit = CommitBuilder::from(properties)
            .with_actions(actions)
            .build(
                Some(self.table.snapshot()?),
                self.table.log_store(),
                DeltaOperation::Write {
                    mode: SaveMode::Append,
                    partition_by: Some(vec![PARTITION.into()]),
                    predicate: None,
                },
            )
            .await;
        match commit {
            Ok(done) => {
                let version = done.version();
                self.refresh().await?;
                Ok(Committed::Version(version))
            }
            Err(DeltaTableError::Transaction {
                source: TransactionError::CommitConflict(conflict),
            }) => {
                self.refresh().await?;
                match self.committed_through(source).await? {
                    Some(v) if v >= through => Ok(Committed::Already),
                    _ => {
                        anyhow::bail!("commit of {source} through {through} conflicts: {conflict}")
                    }
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The data files of the current snapshot, relative to the table's root.
    pub fn files(&self) -> anyhow::Result<Vec<String>> {
        // Absolute URIs (`s3://…`), or absolute paths on a local lake.
        let url = self.table.table_url();
        let roots = [url.to_string(), url.path().to_string()];
        Ok(self
            .table
            .get_file_uris()?
            .map(|uri| {
                roots
                    .iter()
                    .find_map(|root| uri.strip_prefix(root.as_str()))
                    .unwrap_or(&uri)
                    .to_string()
            })
            .collect())
    }
}

/// `s3://` tables use the default log store: conditional puts, no DynamoDB.
fn register_s3() {
    struct ConditionalPuts;
    impl LogStoreFactory for ConditionalPuts {
        fn with_options(
            &self,
            prefixed: ObjectStoreRef,
            root: ObjectStoreRef,
            location: &Url,
            options: &StorageConfig,
        ) -> DeltaResult<Arc<dyn LogStore>> {
            Ok(default_logstore(prefixed, root, location, options))
        }
    }
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        logstore_factories().insert(
            Url::parse("s3://").expect("a URL"),
            Arc::new(ConditionalPuts),
        );
    });
}

#[cfg(test)]
mod tests {
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
            table.append("p0", 9, &[a.clone()]).await.expect("commit"),
            Committed::Version(1)
        );
        assert_eq!(table.committed_through("p0").await.expect("txn"), Some(9));
        assert_eq!(
            table.append("p0", 9, &[a.clone()]).await.expect("replay"),
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
        let mut files = table.files().expect("files");
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
}
