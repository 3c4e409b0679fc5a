//! Where a source stands and which part of it a micro-batch covers (and the
//! intent that records it), one type each for both kinds of source: Kafka partitions count offsets, the files
//! source orders raw object keys (docs/DESIGN.md §5).
//!
//! Both are written into checkpoints flattened, with the field names of
//! checkpoint format 1 (`next_offset` | `after_key`, `first_offset` and
//! `last_offset` | `first_key` and `last_key`), so existing checkpoints load
//! unchanged.

use serde::{Deserialize, Serialize};

/// The position of a source: everything before it is committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Position {
    /// The offset the next micro-batch starts at (one past the last committed message).
    Kafka { next_offset: i64 },
    /// The last raw object key committed; the next micro-batch starts after
    /// it. `None` before the first commit.
    Files {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after_key: Option<String>,
    },
}

/// The exact input of one micro-batch, recorded in the checkpoint before any
/// of its data, so that it can be replayed over the same range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    /// Sequence number of the micro-batch within its source: the number of
    /// micro-batches committed before it.
    pub seq: u64,
    #[serde(flatten)]
    pub range: Range,
    /// Messages (or raw objects) in the range.
    pub messages: u64,
    /// The fingerprint of the contract the micro-batch is decoded under
    /// ([`crate::contract::Contract::fingerprint`]), so that a replay applies
    /// the same rules even if the contract changed since. Absent in
    /// checkpoints written before contracts: the built-in events contract.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<String>,
}

/// The messages (or raw objects) of one micro-batch, first and last included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Range {
    Kafka { first_offset: i64, last_offset: i64 },
    Files { first_key: String, last_key: String },
}

impl Range {
    /// The range of the one message at `offset`.
    pub fn offset(offset: i64) -> Range {
        Range::Kafka {
            first_offset: offset,
            last_offset: offset,
        }
    }

    /// The range of the one raw object `key`.
    pub fn key(key: &str) -> Range {
        Range::Files {
            first_key: key.to_string(),
            last_key: key.to_string(),
        }
    }

    /// This range extended to the end of `next`, which follows it in the
    /// same source.
    ///
    /// # Panics
    /// If the two come from different kinds of source: one source yields
    /// one kind of position, so that is a bug, not bad data.
    pub fn through(self, next: Range) -> Range {
        match (self, next) {
            (Range::Kafka { first_offset, .. }, Range::Kafka { last_offset, .. }) => Range::Kafka {
                first_offset,
                last_offset,
            },
            (Range::Files { first_key, .. }, Range::Files { last_key, .. }) => Range::Files {
                first_key,
                last_key,
            },
            (first, next) => panic!("a range of one source cannot run from {first:?} to {next:?}"),
        }
    }

    /// The position after this range is committed.
    pub fn end(&self) -> Position {
        match self {
            Range::Kafka { last_offset, .. } => Position::Kafka {
                next_offset: last_offset + 1,
            },
            Range::Files { last_key, .. } => Position::Files {
                after_key: Some(last_key.clone()),
            },
        }
    }
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Range::Kafka {
                first_offset,
                last_offset,
            } => write!(f, "offsets {first_offset}..={last_offset}"),
            Range::Files {
                first_key,
                last_key,
            } => write!(f, "keys {first_key}..={last_key}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_grow_and_end_where_the_next_one_starts() {
        let range = Range::offset(10)
            .through(Range::offset(11))
            .through(Range::offset(19));
        assert_eq!(
            range,
            Range::Kafka {
                first_offset: 10,
                last_offset: 19
            }
        );
        assert_eq!(range.end(), Position::Kafka { next_offset: 20 });
        let keys = Range::key("raw/events/r/1.json").through(Range::key("raw/events/r/2.json"));
        assert_eq!(
            keys.end(),
            Position::Files {
                after_key: Some("raw/events/r/2.json".into())
            }
        );
        assert_eq!(
            keys.to_string(),
            "keys raw/events/r/1.json..=raw/events/r/2.json"
        );
    }

    #[test]
    #[should_panic(expected = "cannot run from")]
    fn one_range_never_mixes_offsets_and_keys() {
        let _ = Range::offset(1).through(Range::key("k"));
    }
}
