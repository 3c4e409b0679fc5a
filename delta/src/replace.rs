//! Tables derived from other tables (the refiner's silver and gold models,
//! docs/DESIGN.md §13): what an input added since a version, and replacing
//! whole partitions of the output in one commit that records, with one `txn`
//! per input, the input version it reflects.

use std::collections::BTreeSet;

use chrono::Utc;
use deltalake_core::kernel::transaction::{CommitProperties, TransactionError};
use deltalake_core::kernel::{Action, Transaction};
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::DeltaTableError;
use futures::TryStreamExt;

use crate::{add, rows_in_stats, DataFile, Table, PARTITION};

/// What a replace came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replaced {
    /// A new version of the table.
    Version(u64),
    /// Every input's `txn` is already at or past the version given: another
    /// run (a replay, a second refiner) committed this work first.
    Already,
    /// Another commit changed the table since the snapshot this replace was
    /// planned on: plan again on the newest snapshot.
    Conflict(String),
}

impl Table {
    /// The data files added with new data (`dataChange`) by the commits
    /// after `since` up to the snapshot in hand and still in it: what a
    /// reader that saw version `since` has not seen. A compaction's rewrites
    /// hold rows already seen and are left out.
    pub async fn added_since(&self, since: u64) -> anyhow::Result<Vec<DataFile>> {
        let mut added: Vec<DataFile> = Vec::new();
        let mut removed = BTreeSet::new();
        for version in since + 1..=self.version() {
            for line in self.log_entry(version).await? {
                if let Some(file) = line.add.filter(|a| a.data_change) {
                    added.push(DataFile {
                        event_date: file.partition_values.get(PARTITION).cloned().flatten(),
                        rows: file.stats.as_deref().map_or(0, rows_in_stats),
                        size: file.size,
                        path: file.path,
                    });
                }
                if let Some(file) = line.remove {
                    removed.insert(file.path);
                }
            }
        }
        added.retain(|f| !removed.contains(&f.path));
        Ok(added)
    }

    /// One commit that removes every file of the partitions `replaced` (by
    /// `event_date`) in the snapshot in hand, adds `added`, and records
    /// `inputs` (source, version) as `txn` actions. Readers see the old
    /// partitions or the new ones, never both. With `skip_if_current`, a
    /// table whose `txn`s already reach every input version is left alone
    /// (`Already`); without it (a full refresh) the commit is made anyway.
    pub async fn replace(
        &mut self,
        inputs: &[(String, i64)],
        replaced: &BTreeSet<Option<String>>,
        added: &[DataFile],
        skip_if_current: bool,
    ) -> anyhow::Result<Replaced> {
        let mut current = true;
        for (source, version) in inputs {
            current &= self
                .committed_through(source)
                .await?
                .is_some_and(|v| v >= *version);
        }
        if current && skip_if_current {
            return Ok(Replaced::Already);
        }
        let read_version = self.version();
        let now = Utc::now().timestamp_millis();
        let mut actions = Vec::new();
        let views: Vec<_> = self
            .table
            .get_active_add_actions_by_partitions(&[])
            .try_collect()
            .await?;
        for view in views {
            let mut remove = view.remove_action(true);
            let date = remove
                .partition_values
                .as_ref()
                .and_then(|values| values.get(PARTITION).cloned())
                .flatten();
            if replaced.contains(&date) {
                remove.deletion_timestamp = Some(now);
                actions.push(Action::Remove(remove));
            }
        }
        actions.extend(added.iter().map(|f| Action::Add(add(f, now, true))));
        actions.extend(
            inputs
                .iter()
                .map(|(source, version)| Action::Txn(Transaction::new(source, *version))),
        );
        let operation = DeltaOperation::Write {
            mode: SaveMode::Overwrite,
            partition_by: Some(vec![PARTITION.into()]),
            predicate: Some(format!("{PARTITION} IN ({} partitions)", replaced.len())),
        };
        match self
            .commit_actions(CommitProperties::default(), actions, operation)
            .await
        {
            Ok(version) => Ok(Replaced::Version(version)),
            Err(DeltaTableError::Transaction {
                source: TransactionError::CommitConflict(conflict),
            }) => Ok(Replaced::Conflict(conflict.to_string())),
            Err(DeltaTableError::Transaction {
                source: TransactionError::VersionAlreadyExists(v),
            }) => Ok(Replaced::Conflict(format!(
                "version {v} was committed by another writer since version {read_version}"
            ))),
            Err(e) => Err(e.into()),
        }
    }
}
