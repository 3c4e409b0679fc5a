//! Every object key of the lake (docs/DESIGN.md §4). Keys are a pure function of the
//! data and its source position, never of the clock, so replaying a
//! micro-batch rewrites exactly the objects its first attempt wrote.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::position::{Intent, Range};

pub const BRONZE_EVENTS: &str = "bronze/events";
pub const DEAD_LETTERS_EVENTS: &str = "dead_letters/events";
pub const RAW_EVENTS: &str = "raw/events";
pub const CHECKPOINTS: &str = "_checkpoints/events";
/// Short-lived objects of the consumer's startup check, outside the checkpoints.
pub const PROBES: &str = "_checkpoints/_probes";

/// One ordered stream of batches, owned by one consumer at a time, with one
/// checkpoint: a Kafka partition, or the whole `raw/events/` prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceId {
    Kafka { topic: String, partition: i32 },
    Files { prefix: String },
}

impl SourceId {
    pub fn files() -> Self {
        SourceId::Files {
            prefix: format!("{RAW_EVENTS}/"),
        }
    }

    /// A short name used in data keys: `kafka-events-p0`, `files-raw-events`.
    pub fn tag(&self) -> String {
        match self {
            SourceId::Kafka { topic, partition } => format!("kafka-{topic}-p{partition}"),
            SourceId::Files { prefix } => {
                format!("files-{}", prefix.trim_end_matches('/').replace('/', "-"))
            }
        }
    }

    pub fn checkpoint_key(&self) -> String {
        match self {
            SourceId::Kafka { topic, partition } => {
                format!("{CHECKPOINTS}/kafka/{topic}/partition-{partition}.json")
            }
            SourceId::Files { prefix } => format!(
                "{CHECKPOINTS}/files/{}.json",
                prefix.trim_end_matches('/').replace('/', "-")
            ),
        }
    }
}

impl std::fmt::Display for SourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceId::Kafka { topic, partition } => {
                write!(f, "kafka topic {topic} partition {partition}")
            }
            SourceId::Files { prefix } => write!(f, "files under {prefix}"),
        }
    }
}

/// Names one micro-batch within its source: the Kafka offset range, or the
/// sequence number of the files source's intent (raw keys are long and
/// contain slashes).
pub fn range_tag(intent: &Intent) -> String {
    match &intent.range {
        // Zero-padded so keys sort by offset.
        Range::Kafka {
            first_offset,
            last_offset,
        } => format!("{first_offset:020}-{last_offset:020}"),
        Range::Files { .. } => format!("{:012}", intent.seq),
    }
}

/// `bronze/events/event_date=YYYY-MM-DD/<source>-<range>.parquet`
pub fn bronze_key(source: &SourceId, event_day: i32, range: &str) -> String {
    format!(
        "{BRONZE_EVENTS}/event_date={}/{}-{range}.parquet",
        day_to_date(event_day),
        source.tag()
    )
}

/// `dead_letters/events/<source>/<range>.parquet`
pub fn dead_letter_key(source: &SourceId, range: &str) -> String {
    format!("{DEAD_LETTERS_EVENTS}/{}/{range}.parquet", source.tag())
}

/// `raw/events/<run>/<seq>.json`: runs sort by their start, batches by number.
pub fn raw_key(run: &str, seq: u64) -> String {
    format!("{RAW_EVENTS}/{run}/{seq:09}.json")
}

/// The batch id a raw object carries when it has no metadata: its file stem
/// prefixed by its run, e.g. `20261122T101500Z-s42-000000017`.
pub fn batch_id_from_raw_key(key: &str) -> String {
    let rest = key
        .strip_prefix(RAW_EVENTS)
        .unwrap_or(key)
        .trim_start_matches('/');
    let rest = rest.strip_suffix(".json").unwrap_or(rest);
    rest.replace('/', "-")
}

/// Days since 1970-01-01 as `YYYY-MM-DD`.
pub fn day_to_date(day: i32) -> String {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    epoch
        .checked_add_signed(chrono::Duration::days(day as i64))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| format!("day{day}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_deterministic_and_sortable() {
        let p0 = SourceId::Kafka {
            topic: "events".into(),
            partition: 0,
        };
        let kafka = |seq, first, last| Intent {
            seq,
            range: Range::offset(first).through(Range::offset(last)),
            messages: 1,
        };
        let range = range_tag(&kafka(7, 1234, 1500));
        assert_eq!(range, "00000000000000001234-00000000000000001500");
        assert_eq!(
            bronze_key(&p0, 20_779, &range),
            "bronze/events/event_date=2026-11-22/kafka-events-p0-00000000000000001234-00000000000000001500.parquet"
        );
        assert_eq!(
            dead_letter_key(&p0, &range),
            "dead_letters/events/kafka-events-p0/00000000000000001234-00000000000000001500.parquet"
        );
        assert_eq!(
            p0.checkpoint_key(),
            "_checkpoints/events/kafka/events/partition-0.json"
        );
        assert!(range_tag(&kafka(0, 99, 99)) < range_tag(&kafka(0, 100, 100)));
    }

    #[test]
    fn files_source_keys() {
        let f = SourceId::files();
        assert_eq!(f.tag(), "files-raw-events");
        assert_eq!(
            f.checkpoint_key(),
            "_checkpoints/events/files/raw-events.json"
        );
        let intent = Intent {
            seq: 42,
            range: Range::key("raw/events/r/000000001.json"),
            messages: 1,
        };
        assert_eq!(range_tag(&intent), "000000000042");
        let key = raw_key("20261122T101500Z-s42", 17);
        assert_eq!(key, "raw/events/20261122T101500Z-s42/000000017.json");
        assert_eq!(
            batch_id_from_raw_key(&key),
            "20261122T101500Z-s42-000000017"
        );
        assert!(raw_key("r", 9) < raw_key("r", 10));
    }

    #[test]
    fn days_format_as_dates() {
        assert_eq!(day_to_date(0), "1970-01-01");
        assert_eq!(day_to_date(-1), "1969-12-31");
    }
}
