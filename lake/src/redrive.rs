//! The record of one re-drive of dead letters (docs/DESIGN.md §15):
//! `_redrives/<table>/<id>.json`, written by `consumer redrive` before it
//! commits anything and closed with its summary after both tables' commits,
//! so that a run killed half-way is finished by the next one, and
//! `inspector redrives` can list them. Ids are consecutive per table
//! (`000001`, `000002`, …); each is created with a conditional write, so two
//! re-drives of one table never share an id.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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

/// The limits a re-drive decoded under, as the consumer's settings name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedLimits {
    pub max_message_bytes: usize,
    pub max_record_bytes: usize,
    pub max_depth: usize,
    pub max_string_bytes: usize,
}

impl From<crate::event::Limits> for RecordedLimits {
    fn from(l: crate::event::Limits) -> Self {
        RecordedLimits {
            max_message_bytes: l.max_message_bytes,
            max_record_bytes: l.max_record_bytes,
            max_depth: l.max_depth,
            max_string_bytes: l.max_string_bytes,
        }
    }
}

impl From<RecordedLimits> for crate::event::Limits {
    fn from(l: RecordedLimits) -> Self {
        crate::event::Limits {
            max_message_bytes: l.max_message_bytes,
            max_record_bytes: l.max_record_bytes,
            max_depth: l.max_depth,
            max_string_bytes: l.max_string_bytes,
        }
    }
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
    pub limits: RecordedLimits,
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
