//! Which snapshot of a Delta table a view reads (docs/DESIGN.md §6): the
//! newest, or the one [`crate::session::Options::as_of`] (`--as-of`) names (a version, or the newest version
//! committed at or before an instant), and what is in it. Every table of
//! the lake is a Delta table; its `_delta_log/` is the only truth about its
//! files, so a session never lists or globs data files.
//!
//! A snapshot that does not exist is not an error here: it becomes a view
//! that raises the reason when it is read ([`Snapshot::Unavailable`]), so the
//! other tables stay queryable.
//!
//! A bronze snapshot also says which re-drives of dead letters it holds
//! ([`read_redriven`], docs/DESIGN.md §15): the ids listed under
//! `_redrives/<t>/` ([`lake::redrive::ids`]) whose `txn` `redrive-<id>` is in it.
//! Only their dead-letter rows are shown, so a record a re-drive rewrote is
//! in the dead letters once, before and after its bronze commit.

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::Context;
use arrow::datatypes::Schema;
use chrono::{DateTime, SecondsFormat, Utc};
use delta::{AsOf, DataFile, Table};
use futures::StreamExt;
use lake::store::Location;
use lake::Lake;

/// One table's state as a view sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Snapshot {
    /// No `_delta_log/` under the table's prefix: nothing committed yet.
    NoLog,
    /// The snapshot at `version` and its data files (maybe none).
    Files { version: u64, files: Vec<DataFile> },
    /// `--as-of` names a snapshot the table does not have: why, in one line
    /// that names the view and the table's newest version.
    Unavailable(String),
}

impl Snapshot {
    pub fn version(&self) -> Option<u64> {
        match self {
            Snapshot::Files { version, .. } => Some(*version),
            Snapshot::NoLog | Snapshot::Unavailable(_) => None,
        }
    }
}

/// Parses `--as-of`: a plain integer is a version, anything else must be an
/// RFC 3339 instant (`2026-12-01T15:00:00Z`).
pub fn parse_as_of(text: &str) -> Result<AsOf, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map(AsOf::Version)
            .map_err(|_| format!("version {text} is too large"));
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| AsOf::Timestamp(t.with_timezone(&Utc)))
        .map_err(|_| {
            "expected a table version (e.g. 12) or an RFC 3339 timestamp (e.g. 2026-12-01T15:00:00Z)"
                .to_string()
        })
}

/// `2026-12-01T15:00:00.123Z` for milliseconds since the epoch.
pub fn rfc3339_millis(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_else(|| format!("{ms} ms"))
}

fn describe(as_of: AsOf) -> String {
    match as_of {
        AsOf::Latest => "now".into(),
        AsOf::Version(v) => format!("version {v}"),
        AsOf::Timestamp(t) => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
    }
}

/// The snapshot of the table under `prefix` (named `view` in messages) at
/// `as_of`. Errors are failures to read the log; a snapshot that does not
/// exist is [`Snapshot::Unavailable`].
pub async fn read(lake: &Lake, prefix: &str, view: &str, as_of: AsOf) -> anyhow::Result<Snapshot> {
    let (snapshot, _) = read_redriven(lake, prefix, view, as_of, &[], &Redriven::default()).await?;
    Ok(snapshot)
}

/// Which re-drives a bronze snapshot holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redriven {
    /// The version of the snapshot they were looked up in; `None`: none (no
    /// log, no such snapshot, nothing to look up).
    pub version: Option<u64>,
    /// The ids looked up in it.
    pub looked_up: BTreeSet<String>,
    /// Those of them whose `txn` the snapshot holds.
    pub visible: BTreeSet<String>,
}

/// [`read`], and which of the re-drives `ids` the snapshot holds: those
/// whose `txn` (`redrive-<id>`) is in it, looked up in that snapshot (never
/// a newer one, so `--as-of` sees the re-drives of its version). `before`
/// is the answer of the previous refresh: a re-drive visible in an older
/// version is visible in every newer one (a `txn` stays in the log), and
/// one not visible in this very version is not looked up again, so a
/// refresh without new re-drives or new versions reads no `txn`.
pub async fn read_redriven(
    lake: &Lake,
    prefix: &str,
    view: &str,
    as_of: AsOf,
    ids: &[String],
    before: &Redriven,
) -> anyhow::Result<(Snapshot, Redriven)> {
    let table = match open(lake, prefix, view, as_of).await? {
        Ok(table) => table,
        Err(snapshot) => return Ok((snapshot, Redriven::default())),
    };
    let version = table.version();
    let mut redriven = Redriven::default();
    for id in ids {
        let known_visible = before.visible.contains(id) && before.version <= Some(version);
        let known_hidden = before.looked_up.contains(id) && before.version == Some(version);
        let visible = if known_visible || known_hidden {
            known_visible
        } else {
            let app_id = lake::redrive::txn_app_id(id);
            table
                .transaction_version(&app_id)
                .await
                .with_context(|| {
                    format!("cannot look up the txn {app_id} of {view} at version {version}")
                })?
                .is_some()
        };
        redriven.looked_up.insert(id.clone());
        if visible {
            redriven.visible.insert(id.clone());
        }
    }
    if !ids.is_empty() {
        redriven.version = Some(version);
    }
    let files = table
        .files()
        .await
        .with_context(|| format!("cannot read the files of {view} at version {version}"))?;
    Ok((Snapshot::Files { version, files }, redriven))
}

/// The table under `prefix` at `as_of`, or the snapshot it is instead
/// (no log, or no such snapshot).
async fn open(
    lake: &Lake,
    prefix: &str,
    view: &str,
    as_of: AsOf,
) -> anyhow::Result<Result<Table, Snapshot>> {
    if !has_log(lake, prefix)
        .await
        .with_context(|| format!("cannot read the Delta log of {view}"))?
    {
        return Ok(Err(match as_of {
            AsOf::Latest => Snapshot::NoLog,
            _ => Snapshot::Unavailable(format!(
                "{view} has no snapshot at {}: it has no Delta log (nothing committed yet)",
                describe(as_of)
            )),
        }));
    }
    let opened = Table::open(lake, prefix, as_of).await;
    let table = match (opened, as_of) {
        (Ok(Some(table)), _) => table,
        (Ok(None), AsOf::Latest) => return Ok(Err(Snapshot::NoLog)),
        (Err(e), AsOf::Latest) => {
            return Err(e.context(format!("cannot read the Delta log of {view}")))
        }
        (Ok(None), _) => {
            return Ok(Err(Snapshot::Unavailable(format!(
                "{view} has no snapshot at {}: it has no Delta log (nothing committed yet)",
                describe(as_of)
            ))))
        }
        // Past the newest version, or before the oldest the log still has:
        // say which versions there are.
        (Err(e), _) => {
            let latest = Table::open(lake, prefix, AsOf::Latest)
                .await
                .with_context(|| format!("cannot read the Delta log of {view}"))?;
            let Some(latest) = latest else {
                return Ok(Err(Snapshot::Unavailable(format!(
                    "{view} has no snapshot at {}: it has no Delta log (nothing committed yet)",
                    describe(as_of)
                ))));
            };
            let newest = latest.version();
            let why = match as_of {
                AsOf::Version(v) if v > newest => String::new(),
                _ => format!(" ({})", crate::session::first_line(&format!("{e:#}"))),
            };
            return Ok(Err(Snapshot::Unavailable(format!(
                "{view} has no snapshot at {}{why}: its newest version is {newest}",
                describe(as_of)
            ))));
        }
    };
    let version = table.version();
    if let AsOf::Timestamp(at) = as_of {
        // Delta gives the oldest version when the instant is before all of
        // them: the table did not exist yet.
        let commit = table.history(1).await?;
        if let Some(created) = commit
            .first()
            .and_then(|c| c.timestamp)
            .filter(|ms| *ms > at.timestamp_millis())
        {
            let newest = Table::open(lake, prefix, AsOf::Latest)
                .await?
                .map_or(version, |t| t.version());
            return Ok(Err(Snapshot::Unavailable(format!(
                "{view} has no snapshot at {}: its version {version} was committed later, at {}; \
                 its newest version is {newest}",
                describe(as_of),
                rfc3339_millis(created)
            ))));
        }
    }
    Ok(Ok(table))
}

/// Whether the table under `prefix` has a `_delta_log/`, asked before
/// Delta is: it does not answer "no table" for a local directory that does
/// not exist, and logs an error of its own for an S3 prefix without a log.
pub(crate) async fn has_log(lake: &Lake, prefix: &str) -> anyhow::Result<bool> {
    match &lake.location {
        Location::Local { root } => Ok(root.join(prefix).join("_delta_log").is_dir()),
        Location::S3 { .. } => {
            let log = Lake::path(&format!("{prefix}/_delta_log/"));
            let first = lake.store.list(Some(&log)).next().await.transpose()?;
            Ok(first.is_some())
        }
    }
}

/// The columns of the table under `prefix` at `version`, as Arrow, in the
/// table's order (`event_date` included): what the views are typed with.
pub async fn schema(lake: &Lake, prefix: &str, version: u64) -> anyhow::Result<Arc<Schema>> {
    let url = lake.url_of(prefix);
    Table::open(lake, prefix, AsOf::Version(version))
        .await
        .and_then(|table| table.ok_or_else(|| anyhow::anyhow!("no Delta log")))
        .and_then(|table| table.schema())
        .with_context(|| format!("cannot read the schema of {url} at version {version}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_of_is_a_version_or_an_instant() {
        assert_eq!(parse_as_of("12"), Ok(AsOf::Version(12)));
        assert_eq!(
            parse_as_of("2026-12-01T15:00:00Z"),
            Ok(AsOf::Timestamp(
                DateTime::parse_from_rfc3339("2026-12-01T15:00:00Z")
                    .expect("valid")
                    .with_timezone(&Utc)
            ))
        );
        assert!(matches!(
            parse_as_of("2026-12-01T16:00:00.5+01:00"),
            Ok(AsOf::Timestamp(t)) if t.timestamp_millis() == 1_796_137_200_500
        ));
        for bad in [
            "",
            "-1",
            "yesterday",
            "2026-12-01",
            "99999999999999999999999",
        ] {
            assert!(parse_as_of(bad).is_err(), "{bad}");
        }
        assert_eq!(
            rfc3339_millis(1_767_312_005_000),
            "2026-01-02T00:00:05.000Z"
        );
    }
}
