//! Every object key of the lake (docs/DESIGN.md §4). A data file's name says
//! which source range it holds and which attempt wrote it: a replay writes
//! new files and never overwrites one a Delta commit may already reference
//! (its size is in the log); the files of an attempt that did not commit are
//! in no snapshot, and `consumer vacuum` removes them.
//!
//! Every table (one per contract) has the same shape: `bronze/<table>/`,
//! `dead_letters/<table>/`, `_checkpoints/<table>/`, `_contracts/<table>/`,
//! and raw input under its raw prefix (`raw/<table>/` by default).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::position::{Intent, Range};

/// The built-in table, whose keys are those of the lake before contracts.
pub const EVENTS: &str = "events";
pub const BRONZE: &str = "bronze";
pub const DEAD_LETTERS: &str = "dead_letters";
/// The refiner's layers (docs/DESIGN.md §6): one Delta table per model.
pub const SILVER: &str = "silver";
pub const GOLD: &str = "gold";
pub const CHECKPOINTS: &str = "_checkpoints";
/// The contract in force for each table and version (docs/DESIGN.md §12).
pub const CONTRACTS: &str = "_contracts";
/// Short-lived objects of the consumer's startup check, outside the checkpoints.
/// (A table name starts with a letter, so no table is called `_probes`.)
pub const PROBES: &str = "_checkpoints/_probes";

/// `bronze/<table>`
pub fn bronze_prefix(table: &str) -> String {
    format!("{BRONZE}/{table}")
}

/// `dead_letters/<table>`
pub fn dead_letters_prefix(table: &str) -> String {
    format!("{DEAD_LETTERS}/{table}")
}

/// `silver/<model>`
pub fn silver_prefix(model: &str) -> String {
    format!("{SILVER}/{model}")
}

/// `gold/<model>`
pub fn gold_prefix(model: &str) -> String {
    format!("{GOLD}/{model}")
}

/// The refiner's status of one model (`silver.events`): what its table
/// reflects and its last error, for people and `inspector status`.
pub fn refiner_status_key(view: &str) -> String {
    format!("{CHECKPOINTS}/_refiner/{view}.json")
}

/// `_checkpoints/<table>`
pub fn checkpoints_prefix(table: &str) -> String {
    format!("{CHECKPOINTS}/{table}")
}

/// `raw/<table>/`: where the files source reads a table's batches unless
/// its contract names another prefix.
pub fn default_raw_prefix(table: &str) -> String {
    format!("raw/{table}/")
}

/// `_contracts/<table>/v<version>.schema.json`: the contract in force for a version.
pub fn contract_key(table: &str, version: u32) -> String {
    format!("{CONTRACTS}/{table}/v{version}.schema.json")
}

/// `_contracts/<table>/history/<fingerprint>.schema.json`: every contract a
/// micro-batch was decoded under, kept for the replay of its intent.
pub fn contract_history_key(table: &str, fingerprint: &str) -> String {
    format!("{CONTRACTS}/{table}/history/{fingerprint}.schema.json")
}

fn events_table() -> String {
    EVENTS.to_string()
}

/// One ordered stream of batches of one table, owned by one consumer at a
/// time, with one checkpoint: a Kafka partition, or a whole raw prefix.
/// (Checkpoints written before tables existed have no `table`: `events`.)
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceId {
    Kafka {
        #[serde(default = "events_table")]
        table: String,
        topic: String,
        partition: i32,
    },
    Files {
        #[serde(default = "events_table")]
        table: String,
        prefix: String,
    },
}

impl SourceId {
    pub fn kafka(table: &str, topic: &str, partition: i32) -> Self {
        SourceId::Kafka {
            table: table.into(),
            topic: topic.into(),
            partition,
        }
    }

    /// `prefix` ends with `/`, as [`default_raw_prefix`] gives it.
    pub fn files(table: &str, prefix: &str) -> Self {
        SourceId::Files {
            table: table.into(),
            prefix: prefix.into(),
        }
    }

    /// The table the source's batches are decoded into.
    pub fn table(&self) -> &str {
        match self {
            SourceId::Kafka { table, .. } | SourceId::Files { table, .. } => table,
        }
    }

    /// A short name used in data keys: `kafka-events-p0`, `files-raw-events`.
    pub fn tag(&self) -> String {
        match self {
            SourceId::Kafka {
                topic, partition, ..
            } => format!("kafka-{topic}-p{partition}"),
            SourceId::Files { prefix, .. } => {
                format!("files-{}", prefix.trim_end_matches('/').replace('/', "-"))
            }
        }
    }

    pub fn checkpoint_key(&self) -> String {
        let checkpoints = checkpoints_prefix(self.table());
        match self {
            SourceId::Kafka {
                topic, partition, ..
            } => format!("{checkpoints}/kafka/{topic}/partition-{partition}.json"),
            SourceId::Files { prefix, .. } => format!(
                "{checkpoints}/files/{}.json",
                prefix.trim_end_matches('/').replace('/', "-")
            ),
        }
    }
}

impl std::fmt::Display for SourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceId::Kafka {
                topic, partition, ..
            } => {
                write!(f, "kafka topic {topic} partition {partition}")
            }
            SourceId::Files { prefix, .. } => write!(f, "files under {prefix}"),
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

/// Names what one commit's files hold: `<source>-<range>` for one source's
/// micro-batch, `<first source>-and-<n>-more` for the micro-batches of
/// several sources committed together (the log's `txn` actions say which).
pub fn batch_tag(parts: &[(&SourceId, &Intent)]) -> String {
    match parts {
        [] => "empty".to_string(),
        [(source, intent)] => format!("{}-{}", source.tag(), range_tag(intent)),
        [(first, _), more @ ..] => format!("{}-and-{}-more", first.tag(), more.len()),
    }
}

/// `event_date=YYYY-MM-DD/<batch tag>-<attempt>.parquet`: a data file's
/// path inside its table (bronze or dead letters), which is also what the
/// Delta log records.
pub fn data_file_path(event_day: i32, batch_tag: &str, attempt: &str) -> String {
    format!(
        "event_date={}/{batch_tag}-{attempt}.parquet",
        day_to_date(event_day)
    )
}

/// The `txn` version a micro-batch commits under its source's `appId`: the
/// last Kafka offset of its range, or the files source's micro-batch
/// sequence number (raw keys are not numbers). Both only grow.
pub fn txn_version(intent: &Intent) -> i64 {
    match &intent.range {
        Range::Kafka { last_offset, .. } => *last_offset,
        Range::Files { .. } => intent.seq as i64,
    }
}

/// `<raw prefix><run>/<seq>.json`: runs sort by their start, batches by number.
pub fn raw_key(raw_prefix: &str, run: &str, seq: u64) -> String {
    format!("{raw_prefix}{run}/{seq:09}.json")
}

/// The batch id a raw object carries when it has no metadata: its key below
/// the raw prefix without `.json`, slashes as dashes, e.g.
/// `20261122T101500Z-s42-000000017`.
pub fn batch_id_from_raw_key(raw_prefix: &str, key: &str) -> String {
    let rest = key.strip_prefix(raw_prefix).unwrap_or(key);
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
    fn keys_name_their_range_and_sort() {
        let p0 = SourceId::kafka(EVENTS, "events", 0);
        let kafka = |seq, first, last| Intent {
            seq,
            range: Range::offset(first).through(Range::offset(last)),
            messages: 1,
            contract: None,
        };
        let range = range_tag(&kafka(7, 1234, 1500));
        assert_eq!(range, "00000000000000001234-00000000000000001500");
        let one = batch_tag(&[(&p0, &kafka(7, 1234, 1500))]);
        assert_eq!(
            data_file_path(20_779, &one, "a1b2c3d4"),
            "event_date=2026-11-22/kafka-events-p0-00000000000000001234-00000000000000001500-a1b2c3d4.parquet"
        );
        let p3 = SourceId::kafka(EVENTS, "events", 3);
        let p9 = SourceId::kafka(EVENTS, "events", 9);
        let intent = kafka(1, 0, 9);
        assert_eq!(
            batch_tag(&[(&p3, &intent), (&p9, &intent), (&p0, &intent)]),
            "kafka-events-p3-and-2-more"
        );
        assert_eq!(txn_version(&kafka(7, 1234, 1500)), 1500);
        assert_eq!(
            p0.checkpoint_key(),
            "_checkpoints/events/kafka/events/partition-0.json"
        );
        assert!(range_tag(&kafka(0, 99, 99)) < range_tag(&kafka(0, 100, 100)));
    }

    #[test]
    fn files_source_keys() {
        let f = SourceId::files(EVENTS, &default_raw_prefix(EVENTS));
        assert_eq!(f.tag(), "files-raw-events");
        assert_eq!(
            f.checkpoint_key(),
            "_checkpoints/events/files/raw-events.json"
        );
        let intent = Intent {
            seq: 42,
            range: Range::key("raw/events/r/000000001.json"),
            messages: 1,
            contract: None,
        };
        assert_eq!(range_tag(&intent), "000000000042");
        assert_eq!(txn_version(&intent), 42);
        let key = raw_key("raw/events/", "20261122T101500Z-s42", 17);
        assert_eq!(key, "raw/events/20261122T101500Z-s42/000000017.json");
        assert_eq!(
            batch_id_from_raw_key("raw/events/", &key),
            "20261122T101500Z-s42-000000017"
        );
        assert!(raw_key("raw/events/", "r", 9) < raw_key("raw/events/", "r", 10));
    }

    #[test]
    fn days_format_as_dates() {
        assert_eq!(day_to_date(0), "1970-01-01");
        assert_eq!(day_to_date(-1), "1969-12-31");
    }
}
