//! The record of one re-drive of dead letters (docs/DESIGN.md §15):
//! `_redrives/<table>/<id>.json`, written by `consumer redrive` before it
//! commits anything and closed with its summary after both tables' commits,
//! so that a run killed half-way is finished by the next one, and
//! `inspector redrives` can list them. Ids are consecutive per table
//! (`000001`, `000002`, …); each is created with a conditional write, so two
//! re-drives of one table never share an id.

use std::collections::BTreeMap;

use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};

use crate::{Lake, StoreError};

/// `_redrives`
pub const REDRIVES: &str = "_redrives";

/// `_redrives/<table>`
pub fn prefix(table: &str) -> String {
    format!("{REDRIVES}/{table}")
}

/// `_redrives/<table>/<id>.json`
pub fn intent_key(table: &str, id: &str) -> String {
    format!("{REDRIVES}/{table}/{id}.json")
}

/// The id of the `number`th re-drive of a table: fixed width, so the keys
/// list in order.
pub fn id(number: u64) -> String {
    format!("{number:06}")
}

/// The id of an intent's key, if it is one (`…/000007.json` → `000007`).
pub fn id_of_key(key: &str) -> Option<&str> {
    let name = key.rsplit('/').next()?.strip_suffix(".json")?;
    (name.len() >= 6 && name.bytes().all(|b| b.is_ascii_digit())).then_some(name)
}

/// The ids of the intents under `_redrives/<table>/`, in order (by number:
/// one past 999999 is longer). One LIST, no reads.
pub async fn ids(lake: &Lake, table: &str) -> Result<Vec<String>, StoreError> {
    let prefix = prefix(table);
    let listed = lake
        .store
        .list_with_delimiter(Some(&Lake::path(&prefix)))
        .await
        .map_err(|e| StoreError::request(format!("listing {}/", lake.url_of(&prefix)), e))?;
    let mut ids: Vec<String> = listed
        .objects
        .iter()
        .filter_map(|meta| id_of_key(meta.location.as_ref()).map(String::from))
        .collect();
    ids.sort_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
    Ok(ids)
}

/// The tables that have a folder under `_redrives/`.
pub async fn tables(lake: &Lake) -> Result<Vec<String>, StoreError> {
    lake.folders(REDRIVES).await
}

/// The intent `id` of `table`; why not, in one line, when it cannot be read
/// or is not an intent.
pub async fn read(lake: &Lake, table: &str, id: &str) -> Result<Intent, String> {
    let key = intent_key(table, id);
    let cannot = |e: object_store::Error| format!("cannot read {}: {e}", lake.url_of(&key));
    let bytes = lake
        .store
        .get(&Lake::path(&key))
        .await
        .map_err(cannot)?
        .bytes()
        .await
        .map_err(cannot)?;
    serde_json::from_slice(&bytes).map_err(|e| format!("not a re-drive intent: {e}"))
}

/// The `appId` of a re-drive's `txn` in both tables' Delta logs: a replay
/// finds there which of its commits landed.
pub fn txn_app_id(id: &str) -> String {
    format!("redrive-{id}")
}

/// Which dead letters a re-drive took.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// Error codes; empty: every code.
    #[serde(default)]
    pub codes: Vec<String>,
    /// Ingested at or after (RFC 3339).
    #[serde(default)]
    pub since: Option<String>,
    /// Ingested before (RFC 3339).
    #[serde(default)]
    pub until: Option<String>,
}

/// What a re-drive did with the dead letters of one error code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeSummary {
    /// Dead-letter rows selected with this code.
    pub selected: u64,
    /// Records that passed and went to bronze.
    pub moved: u64,
    /// Records (or batches) that still fail, by their code now.
    pub still_failing: BTreeMap<String, u64>,
}

/// The outcome of a finished re-drive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub finished_at: String,
    pub selected: u64,
    pub moved: u64,
    pub still_failing: u64,
    /// Of those still failing, how many failed another way than before and
    /// were written again as new dead letters.
    pub rewritten: u64,
    /// By the code the dead letters had.
    pub by_code: BTreeMap<String, CodeSummary>,
    /// The Delta versions the re-drive committed, if it committed there.
    pub bronze_version: Option<u64>,
    pub dead_letters_version: Option<u64>,
}

/// `_redrives/<table>/<id>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub id: String,
    pub table: String,
    /// RFC 3339, and the same instant in µs: the `redriven_at` of its rows.
    pub started_at: String,
    pub redriven_at_micros: i64,
    pub selection: Selection,
    /// The snapshots it read: the dead letters it judged, and bronze (whose
    /// re-driven rows say which dead letters had left already). `None`: the
    /// table had no log.
    pub read_dead_letters_version: Option<u64>,
    pub read_bronze_version: Option<u64>,
    /// The contract it decoded under (its copy is kept under
    /// `_contracts/<table>/history/`), and the limits.
    pub contract_fingerprint: String,
    pub contract_version: u32,
    pub limits: crate::event::Limits,
    /// `None` while open: the re-drive has not finished.
    pub summary: Option<Summary>,
}

impl Intent {
    pub fn is_open(&self) -> bool {
        self.summary.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_fixed_width_and_read_back_from_keys() {
        assert_eq!(id(7), "000007");
        assert_eq!(intent_key("events", &id(7)), "_redrives/events/000007.json");
        assert_eq!(id_of_key("_redrives/events/000007.json"), Some("000007"));
        assert_eq!(id_of_key("_redrives/events/notes.json"), None);
        assert_eq!(id_of_key("_redrives/events/000007.tmp"), None);
        assert_eq!(txn_app_id("000007"), "redrive-000007");
    }
}
