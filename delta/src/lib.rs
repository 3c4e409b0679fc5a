//! Delta Lake tables on the lake's own store (docs/DESIGN.md §5.4): every
//! `bronze/<table>/` and `dead_letters/<table>/` is a Delta table partitioned
//! by `event_date`. A micro-batch is one commit per table whose `add` actions
//! are the files it wrote and whose `txn` action records its source (`appId`)
//! and the end of its range (`version`), so the log itself says what is
//! committed. The log's conditional writes (`If-None-Match` on S3, as the
//! consumer proves at start) make two commits of one version impossible, and
//! the conflict check refuses a commit racing another of the same source; no
//! lock service is needed.
//!
//! Built on `deltalake-core` without DataFusion: the consumer writes the
//! Parquet itself and hands over the files; readers get the snapshot's file
//! list ([`Table::files`]) or read the log with DuckDB's `delta` extension.

use std::collections::HashMap;
use std::sync::{Arc, Once};

use arrow::datatypes::Schema;
use chrono::{DateTime, Utc};
use deltalake_core::kernel::engine::arrow_conversion::{TryIntoArrow, TryIntoKernel};
use deltalake_core::kernel::transaction::{
    CommitBuilder, CommitConflictError, CommitProperties, TransactionError,
};
use deltalake_core::kernel::{Action, Add, StructField, StructType, Transaction};
use deltalake_core::logstore::{
    default_logstore, logstore_factories, LogStore, LogStoreFactory, ObjectStoreRef, StorageConfig,
};
use deltalake_core::operations::create::CreateBuilder;
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::{DeltaResult, DeltaTable, DeltaTableBuilder, DeltaTableError, TableProperty};
use futures::TryStreamExt;
use lake::Lake;
use serde::Deserialize;
use url::Url;

mod compact;
mod convert;
mod replace;
mod vacuum;

pub use compact::{compact, CompactOptions, CompactReport, DEFAULT_TARGET_SIZE};
pub use convert::{convert, ConvertReport};
pub use replace::Replaced;
pub use vacuum::{vacuum, VacuumReport};

/// The hive partition column of every table.
pub const PARTITION: &str = "event_date";

/// Delta writes a checkpoint of the log every this many commits, so a reader
/// replays at most this many JSON commits after the newest checkpoint.
pub const CHECKPOINT_INTERVAL: u64 = 100;

/// How often a commit is tried again after another commit of its source
/// landed first without covering its range, before it counts as lost.
const CONFLICT_ATTEMPTS: u32 = 5;

/// One Parquet object of a table, as its log records it.
#[derive(Debug, Clone, PartialEq)]
pub struct DataFile {
    /// Relative to the table's root, e.g. `event_date=2026-11-22/x.parquet`.
    pub path: String,
    /// The partition value, `YYYY-MM-DD`.
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
    /// replay of a commit whose response was lost, or a zombie's.
    Already,
    /// A commit of the same source with another range won the race: another
    /// writer owns the source now.
    Lost { committed: Option<i64> },
}

/// One source's range in a commit: its `appId` and the end of its range.
#[derive(Debug, Clone, Copy)]
pub struct Txn<'a> {
    pub source: &'a str,
    pub through: i64,
}

/// What a commit of several sources came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// A new version of the table with every source's `txn`.
    Version(u64),
    /// Nothing was committed: the log covers these sources' ranges
    /// (`Already`) or they are `Lost`, by their index in the commit.
    Without(Vec<(usize, Committed)>),
}

/// Which snapshot to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    Latest,
    Version(u64),
    /// The newest version committed at or before this instant.
    Timestamp(DateTime<Utc>),
}

/// One commit of a table, for `inspector history`.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    pub version: u64,
    /// Milliseconds since the epoch (the commit's `commitInfo`).
    pub timestamp: Option<i64>,
    /// `CREATE TABLE`, `WRITE`, `OPTIMIZE`, …
    pub operation: String,
    /// Rows of the files added with `dataChange` (a compaction adds none).
    pub rows_added: u64,
    pub files_added: u64,
    pub files_removed: u64,
    /// The `txn` actions: source and range end.
    pub transactions: Vec<(String, i64)>,
}

/// A Delta table of the lake, e.g. `bronze/events`.
pub struct Table {
    table: DeltaTable,
    /// The newest `txn` version per source, as of `table`'s version: filled
    /// on first use from the log and kept current from the commits read
    /// since, so a commit does not rescan the log.
    txns: HashMap<String, Option<i64>>,
    /// A commit failed in a way that may have landed: read the log before
    /// the next one.
    stale: bool,
}

impl Table {
    /// The table under `prefix` (relative to the lake root) at `as_of`;
    /// `None` if it has no log.
    pub async fn open(lake: &Lake, prefix: &str, as_of: AsOf) -> anyhow::Result<Option<Table>> {
        if let lake::store::Location::Local { root } = &lake.location {
            // Delta reports a missing local directory as an error, not as
            // "not a table".
            if !root.join(prefix).join("_delta_log").is_dir() {
                return Ok(None);
            }
        }
        let mut builder = builder(lake, prefix)?;
        builder = match as_of {
            AsOf::Latest => builder,
            AsOf::Version(v) => builder.with_version(v as _),
            AsOf::Timestamp(t) => builder.with_timestamp(t),
        };
        match builder.load().await {
            Ok(table) => Ok(Some(Table::new(table))),
            Err(DeltaTableError::NotATable(_)) => Ok(None),
            Err(e) => Err(anyhow::anyhow!("Delta table {}: {e}", lake.url_of(prefix))),
        }
    }

    /// Opens the table under `prefix`, creating it with `schema`'s columns
    /// and `event_date` if it has no log yet, and adding the columns of
    /// `schema` the table lacks (a compatible contract change).
    pub async fn open_or_create(
        lake: &Lake,
        prefix: &str,
        schema: &Schema,
    ) -> anyhow::Result<Table> {
        if let lake::store::Location::Local { root } = &lake.location {
            // The local table root must exist before Delta will look at it.
            std::fs::create_dir_all(root.join(prefix))?;
        }
        let wanted: StructType = schema.try_into_kernel()?;
        let mut table = match Table::open(lake, prefix, AsOf::Latest).await? {
            Some(table) => table,
            None => {
                match create(lake, prefix, &wanted)?.await {
                    Ok(table) => Table::new(table),
                    // Another consumer created it first.
                    Err(DeltaTableError::Transaction {
                        source: TransactionError::VersionAlreadyExists(_),
                    }) => Table::open(lake, prefix, AsOf::Latest)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("{prefix}: table vanished"))?,
                    Err(e) => return Err(e.into()),
                }
            }
        };
        table.add_missing_columns(prefix, &wanted).await?;
        Ok(table)
    }

    fn new(table: DeltaTable) -> Table {
        Table {
            table,
            txns: HashMap::new(),
            stale: false,
        }
    }

    /// Adds the nullable columns of `wanted` that the table lacks; a column
    /// of another type is refused, naming it (Delta cannot retype it).
    async fn add_missing_columns(
        &mut self,
        prefix: &str,
        wanted: &StructType,
    ) -> anyhow::Result<()> {
        let current = self.table.snapshot()?.schema();
        let mut missing: Vec<StructField> = Vec::new();
        for field in wanted.fields() {
            match current.field(field.name()) {
                Some(have) if have.data_type() != field.data_type() => anyhow::bail!(
                    "{prefix}: column `{}` is {} in the Delta table and {} in the contract; \
                     a retyped column needs a new table",
                    field.name(),
                    have.data_type(),
                    field.data_type()
                ),
                Some(_) => {}
                None => missing.push(StructField::new(
                    field.name(),
                    field.data_type().clone(),
                    true,
                )),
            }
        }
        if !missing.is_empty() {
            let table = self
                .table
                .clone()
                .add_columns()
                .with_fields(missing)
                .await?;
            self.table = table;
            self.txns.clear();
        }
        Ok(())
    }

    /// The table's columns (the partition column included), in Arrow types.
    pub fn schema(&self) -> anyhow::Result<Arc<Schema>> {
        let schema: Schema = self.table.snapshot()?.schema().as_ref().try_into_arrow()?;
        Ok(Arc::new(schema))
    }

    /// The version of the snapshot in hand.
    pub fn version(&self) -> u64 {
        self.table.version().unwrap_or(0)
    }

    /// Reads the commits made since the snapshot in hand; returns the
    /// latest version.
    pub async fn refresh(&mut self) -> anyhow::Result<u64> {
        let before = self.version();
        self.table.update_state().await?;
        let after = self.version();
        for version in before + 1..=after {
            for (source, through) in self.commit(version).await?.transactions {
                self.txns.insert(source, Some(through));
            }
        }
        self.stale = false;
        Ok(after)
    }

    /// The end of the last range committed for `source` (its `txn` version).
    pub async fn committed_through(&mut self, source: &str) -> anyhow::Result<Option<i64>> {
        if self.stale {
            self.refresh().await?;
        }
        if let Some(known) = self.txns.get(source) {
            return Ok(*known);
        }
        // A source not seen yet is looked up in the newest log, not in a
        // snapshot that may be minutes old (a partition assigned later).
        self.refresh().await?;
        if let Some(known) = self.txns.get(source) {
            return Ok(*known);
        }
        let version = self
            .table
            .snapshot()?
            .transaction_version(self.table.log_store().as_ref(), source)
            .await?;
        self.txns.insert(source.to_string(), version);
        Ok(version)
    }

    /// The `txn` version of `app_id` in the snapshot in hand, or `None` if
    /// it has none: unlike [`Table::committed_through`], never reads commits
    /// newer than that snapshot, so a reader pinned to a version (`--as-of`)
    /// sees exactly the transactions of that version.
    pub async fn transaction_version(&self, app_id: &str) -> anyhow::Result<Option<i64>> {
        Ok(self
            .table
            .snapshot()?
            .transaction_version(self.table.log_store().as_ref(), app_id)
            .await?)
    }

    /// Commits `files` as the micro-batch of `source` ending at `through`:
    /// [`Table::append_together`] for one source.
    pub async fn append(
        &mut self,
        source: &str,
        through: i64,
        files: &[DataFile],
    ) -> anyhow::Result<Committed> {
        match self
            .append_together(&[Txn { source, through }], files)
            .await?
        {
            Appended::Version(version) => Ok(Committed::Version(version)),
            Appended::Without(mut refused) => Ok(refused.pop().expect("the one source").1),
        }
    }

    /// Commits `files`, which hold the micro-batches of several sources, as
    /// one commit with a `txn` per source: readers see all of them or none,
    /// and the log records each source's range. All or nothing: when the
    /// log already covers a source's range (a replay, a lost response, a
    /// zombie) or commits of a source with another range keep winning the
    /// race (`Lost`), nothing is committed and those sources are returned,
    /// for the caller to commit the others without them.
    pub async fn append_together(
        &mut self,
        txns: &[Txn<'_>],
        files: &[DataFile],
    ) -> anyhow::Result<Appended> {
        let now = Utc::now().timestamp_millis();
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: Some(vec![PARTITION.into()]),
            predicate: None,
        };
        // Per source: how often a commit of it with another range won.
        let mut conflicts = vec![0u32; txns.len()];
        loop {
            let seen = self.judge(txns).await?;
            let refused: Vec<(usize, Committed)> = seen
                .iter()
                .enumerate()
                .filter_map(|(i, committed)| {
                    if committed.is_some_and(|v| v >= txns[i].through) {
                        Some((i, Committed::Already))
                    } else if conflicts[i] >= CONFLICT_ATTEMPTS {
                        Some((
                            i,
                            Committed::Lost {
                                committed: *committed,
                            },
                        ))
                    } else {
                        None
                    }
                })
                .collect();
            if !refused.is_empty() {
                return Ok(Appended::Without(refused));
            }
            let mut actions: Vec<Action> = files
                .iter()
                .map(|f| Action::Add(add(f, now, true)))
                .collect();
            actions.extend(
                txns.iter()
                    .map(|t| Action::Txn(Transaction::new(t.source, t.through))),
            );
            match self
                .commit_actions(CommitProperties::default(), actions, operation.clone())
                .await
            {
                Ok(version) => return Ok(Appended::Version(version)),
                // A commit of one of the sources landed since the snapshot in
                // hand: an earlier range (the snapshot was behind) or this one
                // (a replay, a zombie). The next round reads the log again.
                Err(DeltaTableError::Transaction {
                    source:
                        TransactionError::CommitConflict(CommitConflictError::ConcurrentTransaction),
                }) => {
                    let now_seen = self.judge(txns).await?;
                    let mut moved = false;
                    for (i, (before, after)) in seen.iter().zip(&now_seen).enumerate() {
                        if before != after {
                            conflicts[i] += 1;
                            moved = true;
                        }
                    }
                    // Each round counts a conflict, so the loop ends.
                    anyhow::ensure!(
                        moved,
                        "a commit conflicted on another commit's txn, but no source's txn moved"
                    );
                }
                Err(DeltaTableError::Transaction {
                    source: TransactionError::CommitConflict(conflict),
                }) => anyhow::bail!(
                    "commit of {} ({} sources) conflicts: {conflict}",
                    txns.first().map_or("nothing", |t| t.source),
                    txns.len(),
                ),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Each source's `txn` version, all on one snapshot (the one a commit is
    /// then built on): a lookup that reads newer commits starts over.
    async fn judge(&mut self, txns: &[Txn<'_>]) -> anyhow::Result<Vec<Option<i64>>> {
        loop {
            let version = self.version();
            let mut seen = Vec::with_capacity(txns.len());
            for txn in txns {
                seen.push(self.committed_through(txn.source).await?);
            }
            if self.version() == version {
                return Ok(seen);
            }
        }
    }

    /// One commit on top of the snapshot in hand (Delta rebases it over
    /// commits that landed since, when they do not conflict); the snapshot
    /// is then current. Its `txn` actions are among `actions`, where the
    /// txn cache reads them.
    async fn commit_actions(
        &mut self,
        properties: CommitProperties,
        actions: Vec<Action>,
        operation: DeltaOperation,
    ) -> DeltaResult<u64> {
        let own: Vec<(String, i64)> = actions
            .iter()
            .filter_map(|action| match action {
                Action::Txn(txn) => Some((txn.app_id.clone(), txn.version)),
                _ => None,
            })
            .collect();
        let before = self.version();
        let result = CommitBuilder::from(properties)
            .with_actions(actions)
            .build(
                Some(self.table.snapshot()?),
                self.table.log_store(),
                operation,
            )
            .await;
        // Whatever happened, the next step must see the log as it is now.
        self.stale = true;
        let version = result?.version() as u64;
        // The log is read again rather than taking the commit's own snapshot
        // (`FinalizedCommit::snapshot`): commits made on that one slow down as
        // the log grows, 164 s against 53 s for 1,000 commits (`pathbench
        // log-read --commits 1000`). The own commit's txns are known; those
        // of the commits around it are read from their JSON.
        if self.table.update_state().await.is_err() {
            return Ok(version);
        }
        let mut txns_current = true;
        for other in before + 1..=self.version() {
            if other == version {
                for (source, through) in &own {
                    self.txns.insert(source.clone(), Some(*through));
                }
                continue;
            }
            match self.commit(other).await {
                Ok(commit) => {
                    for (source, through) in commit.transactions {
                        self.txns.insert(source, Some(through));
                    }
                }
                Err(_) => txns_current = false,
            }
        }
        self.stale = !txns_current;
        Ok(version)
    }

    /// The data files of the snapshot in hand.
    pub async fn files(&self) -> anyhow::Result<Vec<DataFile>> {
        let views: Vec<_> = self
            .table
            .get_active_add_actions_by_partitions(&[])
            .try_collect()
            .await?;
        Ok(views
            .into_iter()
            .map(|view| {
                let path = view.path().to_string();
                DataFile {
                    event_date: partition_date(&view),
                    rows: view.stats().as_deref().map_or(0, rows_in_stats),
                    size: view.size(),
                    path,
                }
            })
            .collect())
    }

    /// The newest `limit` commits, newest first. Commits whose JSON the log
    /// cleanup removed (older than the log retention) are not listed.
    pub async fn history(&self, limit: usize) -> anyhow::Result<Vec<Commit>> {
        let latest = self.version();
        let mut commits = Vec::new();
        for version in (0..=latest).rev().take(limit) {
            match self.commit(version).await {
                Ok(commit) => commits.push(commit),
                Err(_) if !commits.is_empty() => break,
                Err(e) => return Err(e),
            }
        }
        Ok(commits)
    }

    /// Reads one commit's JSON from the log.
    async fn commit(&self, version: u64) -> anyhow::Result<Commit> {
        let mut commit = Commit {
            version,
            timestamp: None,
            operation: String::new(),
            rows_added: 0,
            files_added: 0,
            files_removed: 0,
            transactions: Vec::new(),
        };
        for action in self.log_entry(version).await? {
            if let Some(info) = action.commit_info {
                commit.timestamp = info.timestamp;
                commit.operation = info.operation.unwrap_or_default();
            }
            if let Some(add) = action.add {
                commit.files_added += 1;
                if add.data_change {
                    commit.rows_added += add.stats.as_deref().map_or(0, rows_in_stats);
                }
            }
            if action.remove.is_some() {
                commit.files_removed += 1;
            }
            if let Some(txn) = action.txn {
                commit.transactions.push((txn.app_id, txn.version));
            }
        }
        Ok(commit)
    }

    /// The actions of one log entry, one per line of its JSON.
    async fn log_entry(&self, version: u64) -> anyhow::Result<Vec<LogLine>> {
        let bytes = self
            .table
            .log_store()
            .read_commit_entry(version as _)
            .await?
            .ok_or_else(|| {
                anyhow::anyhow!("version {version} is no longer in the Delta log (log retention)")
            })?;
        bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|line| Ok(serde_json::from_slice(line)?))
            .collect()
    }
}

/// Creates the table under `prefix` with `wanted`'s columns, `event_date`
/// (added if `wanted` lacks it) as its partition column, and a log
/// checkpoint every [`CHECKPOINT_INTERVAL`] commits.
fn create(lake: &Lake, prefix: &str, wanted: &StructType) -> anyhow::Result<CreateBuilder> {
    let mut create = CreateBuilder::new()
        .with_log_store(builder(lake, prefix)?.build_storage()?)
        .with_columns(wanted.fields().cloned())
        .with_configuration_property(
            TableProperty::CheckpointInterval,
            Some(CHECKPOINT_INTERVAL.to_string()),
        );
    if wanted.field(PARTITION).is_none() {
        create = create.with_column(
            PARTITION,
            deltalake_core::kernel::DataType::DATE,
            true,
            None,
        );
    }
    Ok(create.with_partition_columns([PARTITION]))
}

/// The `add` action of `file`.
fn add(file: &DataFile, modification_time: i64, data_change: bool) -> Add {
    Add {
        path: file.path.clone(),
        partition_values: HashMap::from([(PARTITION.to_string(), file.event_date.clone())]),
        size: file.size,
        modification_time,
        data_change,
        stats: Some(format!("{{\"numRecords\":{}}}", file.rows)),
        ..Default::default()
    }
}

/// The file's `event_date` as the log records it (`YYYY-MM-DD`); a
/// converted file's path need not contain it.
fn partition_date(view: &deltalake_core::kernel::LogicalFileView) -> Option<String> {
    let values = view.partition_values()?;
    values
        .fields()
        .iter()
        .zip(values.values())
        .find(|(field, _)| field.name() == PARTITION)
        .and_then(|(_, value)| match value {
            delta_kernel::expressions::Scalar::Date(days) => Some(lake::layout::day_to_date(*days)),
            _ => None,
        })
}

fn rows_in_stats(stats: &str) -> u64 {
    #[derive(Deserialize)]
    struct Stats {
        #[serde(rename = "numRecords")]
        num_records: Option<u64>,
    }
    serde_json::from_str::<Stats>(stats)
        .ok()
        .and_then(|s| s.num_records)
        .unwrap_or(0)
}

/// The parts of a log line that history, the txn cache and
/// [`Table::added_since`] read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogLine {
    commit_info: Option<LogCommitInfo>,
    add: Option<LogAdd>,
    remove: Option<LogRemove>,
    txn: Option<LogTxn>,
}

#[derive(Deserialize)]
struct LogCommitInfo {
    timestamp: Option<i64>,
    operation: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogAdd {
    path: String,
    #[serde(default)]
    partition_values: HashMap<String, Option<String>>,
    #[serde(default)]
    size: i64,
    #[serde(default)]
    data_change: bool,
    stats: Option<String>,
}

#[derive(Deserialize)]
struct LogRemove {
    path: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogTxn {
    app_id: String,
    version: i64,
}

/// A builder for the table under `prefix`, on the lake's own store.
fn builder(lake: &Lake, prefix: &str) -> anyhow::Result<DeltaTableBuilder> {
    let (store, root) = lake.root_store()?;
    let url = Url::parse(&format!("{root}/{}/", prefix.trim_matches('/')))?;
    register_s3();
    Ok(DeltaTableBuilder::from_url(url.clone())?.with_storage_backend(store, url))
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
mod tests;
