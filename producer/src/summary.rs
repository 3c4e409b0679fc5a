//! What a run sent, counted the way the consumer will count it: records only
//! in readable batches, so that once the consumer has caught up
//! `bronze rows = valid_records` and
//! `dead letters = invalid_records + corrupt_batches`. Bronze keeps every
//! re-sent copy (`--duplicate-ratio`); the silver layer, which deduplicates
//! on the contract's key (`event_id` for the built-in events), keeps each
//! key once: `count(silver.<table>) = unique_valid_records`, of which
//! `late_records` have an event time `--late-by` in the past. That holds as
//! long as fresh records do not share a key by chance: uuid keys never do,
//! but a key drawn from a small set can (orders' `^ord_[0-9]{8}$` has 10^8
//! values: about n²/(2·10^8) repeats in n records, 0.5 in 10,000).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::corrupt::{BatchFault, RecordFault};
use crate::generate::{Batch, Content};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub batches: u64,
    pub corrupt_batches: u64,
    /// Records in readable batches: always `valid_records + invalid_records`.
    pub records: u64,
    /// Every valid record sent, re-sent copies included.
    pub valid_records: u64,
    pub invalid_records: u64,
    /// Valid records that re-send an earlier valid record unchanged.
    pub duplicate_records: u64,
    /// Valid records counting each key once: `valid_records - duplicate_records`.
    pub unique_valid_records: u64,
    /// Unique valid records whose event time is `--late-by` in the past.
    pub late_records: u64,
    pub corrupt_modes: BTreeMap<&'static str, u64>,
    /// By record fault for the built-in events, by expected error code for a contract.
    pub invalid_modes: BTreeMap<String, u64>,
    pub seed: u64,
    pub sink: &'static str,
    pub first_batch_id: Option<String>,
    pub last_batch_id: Option<String>,
    /// Stopped by SIGINT or SIGTERM before `--batches` was reached.
    pub interrupted: bool,
}

impl Summary {
    /// For the built-in events: invalid records counted by [`RecordFault`].
    pub fn new(seed: u64, sink: &'static str) -> Self {
        Summary::with_modes(
            seed,
            sink,
            RecordFault::ALL.iter().map(|f| f.as_str().into()),
        )
    }

    /// Invalid records counted by `modes`: for a contract, every error code
    /// its breakage can produce.
    pub fn with_modes(
        seed: u64,
        sink: &'static str,
        modes: impl IntoIterator<Item = String>,
    ) -> Self {
        Summary {
            batches: 0,
            corrupt_batches: 0,
            records: 0,
            valid_records: 0,
            invalid_records: 0,
            duplicate_records: 0,
            unique_valid_records: 0,
            late_records: 0,
            // Every mode is listed, zero or not, so readers need no defaults.
            corrupt_modes: BatchFault::ALL.iter().map(|f| (f.as_str(), 0)).collect(),
            invalid_modes: modes.into_iter().map(|m| (m, 0)).collect(),
            seed,
            sink,
            first_batch_id: None,
            last_batch_id: None,
            interrupted: false,
        }
    }

    pub fn add(&mut self, batch_id: &str, batch: &Batch) {
        self.batches += 1;
        if self.first_batch_id.is_none() {
            self.first_batch_id = Some(batch_id.to_string());
        }
        self.last_batch_id = Some(batch_id.to_string());
        match &batch.content {
            Content::Corrupt(fault) => {
                self.corrupt_batches += 1;
                *self.corrupt_modes.entry(fault.as_str()).or_default() += 1;
            }
            Content::Records(faults) => {
                self.add_records(faults.iter().map(|f| f.map(RecordFault::as_str)))
            }
            Content::Contract(codes) => self.add_records(codes.iter().map(Option::as_deref)),
        }
        self.duplicate_records += batch.arrivals.duplicates.len() as u64;
        self.late_records += batch.arrivals.late.len() as u64;
        self.unique_valid_records = self.valid_records - self.duplicate_records;
    }

    /// Counts records, each `None` if valid or `Some(mode)`.
    fn add_records<'a>(&mut self, records: impl Iterator<Item = Option<&'a str>>) {
        for mode in records {
            self.records += 1;
            match mode {
                None => self.valid_records += 1,
                Some(mode) => {
                    self.invalid_records += 1;
                    *self.invalid_modes.entry(mode.to_string()).or_default() += 1;
                }
            }
        }
    }

    /// Writes the summary as JSON: to a temporary file beside `path`, then
    /// renamed over it, so a reader never sees half a summary.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_vec_pretty(self).context("cannot serialize the summary")?;
        text.push(b'\n');
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create directory {}", dir.display()))?;
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        std::fs::write(&tmp, &text)
            .with_context(|| format!("cannot write summary {}", Path::new(&tmp).display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot write summary {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrival::Arrivals;

    #[test]
    fn counts_add_up_and_file_is_replaced_whole() {
        let batch = |content, duplicates: &[usize], late: &[usize]| Batch {
            payload: Vec::new(),
            content,
            arrivals: Arrivals {
                duplicates: duplicates.to_vec(),
                late: late.to_vec(),
            },
        };
        let mut s = Summary::new(9, "files");
        s.add(
            "a",
            &batch(
                Content::Records(vec![None, Some(RecordFault::BadUuid), None, None]),
                &[3],
                &[0],
            ),
        );
        s.add("b", &batch(Content::Corrupt(BatchFault::Empty), &[], &[]));
        s.add(
            "c",
            &batch(Content::Records(vec![Some(RecordFault::BadUuid)]), &[], &[]),
        );
        assert_eq!((s.batches, s.corrupt_batches, s.records), (3, 1, 5));
        assert_eq!((s.valid_records, s.invalid_records), (3, 2));
        assert_eq!(
            (s.duplicate_records, s.unique_valid_records, s.late_records),
            (1, 2, 1)
        );
        assert_eq!(s.invalid_modes["bad_uuid"], 2);
        assert_eq!(s.invalid_modes["wrong_type"], 0);
        assert_eq!(s.corrupt_modes["empty"], 1);
        assert_eq!(
            (s.first_batch_id.as_deref(), s.last_batch_id.as_deref()),
            (Some("a"), Some("c"))
        );

        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sub/summary.json");
        std::fs::create_dir_all(dir.path().join("sub")).expect("mkdir");
        std::fs::write(&path, "old").expect("write");
        s.write(&path).expect("summary written");
        let read: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("JSON");
        assert_eq!(read["records"], 5);
        assert_eq!(read["valid_records"], 3);
        assert_eq!(read["duplicate_records"], 1);
        assert_eq!(read["unique_valid_records"], 2);
        assert_eq!(read["late_records"], 1);
        assert_eq!(read["corrupt_modes"]["empty"], 1);
        assert_eq!(read["sink"], "files");
        assert_eq!(read["first_batch_id"], "a");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .expect("list")
            .collect();
        assert_eq!(names.len(), 1, "no temporary file left behind");
    }
}
