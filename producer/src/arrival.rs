//! Duplicate and late events, for the silver layer that deduplicates on the
//! contract's key and handles late data (`--duplicate-ratio`, `--late-ratio`,
//! `--late-by`). Shared by the built-in events and contract records.
//!
//! A duplicate is a client's retry: an unchanged re-send of a valid record
//! sent earlier (same text, so same key and event time), drawn from the last
//! [`WINDOW`] unique valid records so that memory stays bounded. A late event
//! is a fresh record whose event time is `--late-by` earlier than the time it
//! would otherwise have had; it stays valid.
//!
//! These choices draw from a generator of their own, seeded from `--seed`:
//! the main generator makes exactly the draws it makes without them, so the
//! records, their times and the broken ones are those of a run with both
//! ratios 0, which is byte for byte today's output. A duplicate takes the
//! place of the fresh record drawn for its slot, which is never sent.

use std::collections::VecDeque;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::generate::Settings;

/// How many of the most recent unique valid records a duplicate is drawn from.
pub const WINDOW: usize = 1000;

/// Mixed into `--seed` for this generator's own stream (not the probe's).
const STREAM: u64 = 0xD1B5_4A32_D192_ED03;

/// Where the duplicates and late events of a readable batch are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Arrivals {
    /// Positions of the valid records that re-send an earlier one.
    pub duplicates: Vec<usize>,
    /// Positions of the other valid records whose event time is late.
    pub late: Vec<usize>,
}

pub struct Arrival<T> {
    rng: SmallRng,
    duplicate_ratio: f64,
    late_ratio: f64,
    late_by_ms: i64,
    /// The last [`WINDOW`] unique valid records, oldest first; only kept
    /// when there are duplicates to draw.
    recent: VecDeque<T>,
}

impl<T: Clone> Arrival<T> {
    pub fn new(settings: &Settings) -> Self {
        Arrival {
            rng: SmallRng::seed_from_u64(settings.seed ^ STREAM),
            duplicate_ratio: settings.duplicate_ratio,
            late_ratio: settings.late_ratio,
            // The config bounds it to 100 years of whole milliseconds.
            late_by_ms: i64::try_from(settings.late_by.as_millis()).unwrap_or(i64::MAX),
            recent: VecDeque::new(),
        }
    }

    /// How much earlier than its place in time the next record's event time
    /// is: `--late-by` for a share `--late-ratio` of records, else 0. Called
    /// once per record drawn, before drawing it.
    pub fn lateness_ms(&mut self) -> i64 {
        // No draw at ratio 0, so that the stream stays as it was.
        if self.late_ratio > 0.0 && self.rng.random_bool(self.late_ratio) {
            self.late_by_ms
        } else {
            0
        }
    }

    /// Goes through the records of a readable batch in order: each valid one
    /// is, with probability `--duplicate-ratio`, replaced by a copy of one of
    /// the recent unique valid records (kept if there is none yet); every
    /// valid record kept joins them. `valid[i]` and `late[i]` say whether
    /// record `i` is valid and was drawn late.
    pub fn resend(&mut self, records: &mut [T], valid: &[bool], late: &[bool]) -> Arrivals {
        let mut arrivals = Arrivals::default();
        for (i, record) in records.iter_mut().enumerate() {
            if !valid[i] {
                continue;
            }
            if self.duplicate_ratio > 0.0 {
                if !self.recent.is_empty() && self.rng.random_bool(self.duplicate_ratio) {
                    let earlier = self.rng.random_range(0..self.recent.len());
                    *record = self.recent[earlier].clone();
                    arrivals.duplicates.push(i);
                    continue;
                }
                if self.recent.len() == WINDOW {
                    self.recent.pop_front();
                }
                self.recent.push_back(record.clone());
            }
            if late[i] {
                arrivals.late.push(i);
            }
        }
        arrivals
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::tests::settings;

    fn arrival(duplicate_ratio: f64) -> Arrival<u32> {
        Arrival::new(&Settings {
            duplicate_ratio,
            ..settings(1)
        })
    }

    #[test]
    fn duplicates_copy_recent_valid_records_only() {
        let mut a = arrival(0.5);
        let (mut sent, mut duplicates) = (Vec::new(), 0);
        let mut next = 0;
        for _ in 0..200 {
            // Odd positions invalid; values are unique, so a copy is visible.
            let mut records: Vec<u32> = (0..20).map(|i| next + i).collect();
            next += 20;
            let valid: Vec<bool> = (0..20).map(|i| i % 2 == 0).collect();
            let fresh = records.clone();
            let arrivals = a.resend(&mut records, &valid, &[false; 20]);
            assert!(arrivals.late.is_empty());
            for (i, record) in records.iter().enumerate() {
                if arrivals.duplicates.contains(&i) {
                    duplicates += 1;
                    // One of the last WINDOW unique valid records, sent before.
                    let window = &sent[sent.len().saturating_sub(WINDOW)..];
                    assert!(window.contains(record), "{record}");
                } else {
                    assert_eq!(*record, fresh[i]);
                    if valid[i] {
                        sent.push(*record);
                    }
                }
            }
        }
        // Half of 2,000 valid slots, roughly.
        assert!((900..1100).contains(&duplicates), "{duplicates}");
        assert_eq!(a.recent.len(), WINDOW);
    }

    #[test]
    fn no_duplicate_before_a_valid_record_and_none_at_ratio_0() {
        let mut a = arrival(1.0);
        let mut records = vec![1, 2, 3];
        let arrivals = a.resend(&mut records, &[false, true, true], &[true, true, false]);
        // The first valid record has nothing to copy; the second copies it.
        assert_eq!(records, [1, 2, 2]);
        assert_eq!(arrivals.duplicates, [2]);
        assert_eq!(arrivals.late, [1], "late counted among unique valid only");

        let mut a = arrival(0.0);
        let mut records = vec![1, 2, 3];
        let arrivals = a.resend(&mut records, &[true; 3], &[false; 3]);
        assert_eq!((records, arrivals), (vec![1, 2, 3], Arrivals::default()));
        assert!(a.recent.is_empty(), "nothing kept without duplicates");
        assert_eq!(a.lateness_ms(), 0);
    }
}
