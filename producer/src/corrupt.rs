//! The named ways a batch or a record is deliberately broken. Each mode is
//! chosen so the consumer must reject it: a broken batch can never be read as
//! a JSON array, and a broken record breaks exactly one rule of docs/DESIGN.md §3
//! while every other field stays valid.

use rand::rngs::SmallRng;
use rand::{Rng, RngCore};
use serde::Serialize;
use serde_json::Value;

use crate::draw::pick;
use crate::record::{to_json, Record};
use lake::event::ErrorCode;

/// How a whole batch is corrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BatchFault {
    Truncated,
    NotUtf8,
    NotJson,
    ObjectInsteadOfArray,
    Empty,
    RandomBytes,
}

impl BatchFault {
    pub const ALL: [BatchFault; 6] = [
        BatchFault::Truncated,
        BatchFault::NotUtf8,
        BatchFault::NotJson,
        BatchFault::ObjectInsteadOfArray,
        BatchFault::Empty,
        BatchFault::RandomBytes,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BatchFault::Truncated => "truncated",
            BatchFault::NotUtf8 => "not_utf8",
            BatchFault::NotJson => "not_json",
            BatchFault::ObjectInsteadOfArray => "object_instead_of_array",
            BatchFault::Empty => "empty",
            BatchFault::RandomBytes => "random_bytes",
        }
    }
}

/// How one record of a readable batch is made invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordFault {
    MissingField,
    WrongType,
    BadTimestamp,
    UnknownEventType,
    NonPositiveUserId,
    PurchaseWithoutAmount,
    BadUuid,
    BadCountry,
    NegativeAmount,
}

impl RecordFault {
    pub const ALL: [RecordFault; 9] = [
        RecordFault::MissingField,
        RecordFault::WrongType,
        RecordFault::BadTimestamp,
        RecordFault::UnknownEventType,
        RecordFault::NonPositiveUserId,
        RecordFault::PurchaseWithoutAmount,
        RecordFault::BadUuid,
        RecordFault::BadCountry,
        RecordFault::NegativeAmount,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordFault::MissingField => "missing_field",
            RecordFault::WrongType => "wrong_type",
            RecordFault::BadTimestamp => "bad_timestamp",
            RecordFault::UnknownEventType => "unknown_event_type",
            RecordFault::NonPositiveUserId => "non_positive_user_id",
            RecordFault::PurchaseWithoutAmount => "purchase_without_amount",
            RecordFault::BadUuid => "bad_uuid",
            RecordFault::BadCountry => "bad_country",
            RecordFault::NegativeAmount => "negative_amount",
        }
    }

    /// The consumer's error code for a record broken this way.
    pub fn expected_code(self) -> ErrorCode {
        match self {
            RecordFault::MissingField | RecordFault::PurchaseWithoutAmount => {
                ErrorCode::MissingField
            }
            RecordFault::WrongType => ErrorCode::WrongType,
            RecordFault::BadTimestamp => ErrorCode::BadTimestamp,
            RecordFault::UnknownEventType => ErrorCode::UnknownEventType,
            RecordFault::NonPositiveUserId | RecordFault::NegativeAmount => ErrorCode::OutOfRange,
            RecordFault::BadUuid => ErrorCode::BadUuid,
            RecordFault::BadCountry => ErrorCode::BadCountry,
        }
    }
}

/// The bytes of a corrupt batch made from `records` (at least one, all valid):
/// built-in events or contract records.
pub fn break_batch<R: Serialize>(rng: &mut SmallRng, fault: BatchFault, records: &[R]) -> Vec<u8> {
    let whole = to_json(records);
    match fault {
        // Every strict prefix of an array lacks its closing bracket.
        BatchFault::Truncated => whole[..rng.random_range(1..whole.len())].to_vec(),
        BatchFault::NotUtf8 => {
            // Inside a `page` value, so the text would be JSON if it were UTF-8;
            // records without a page (contracts) take any string value.
            let mut starts = value_starts(&whole, b"\"page\":\"");
            if starts.is_empty() {
                starts = value_starts(&whole, b"\":\"");
            }
            let at = starts
                .get(rng.random_range(0..starts.len().max(1)))
                .copied()
                .unwrap_or(0);
            let mut bytes = whole;
            bytes.splice(at..at, [0xFF, 0xFE]);
            bytes
        }
        BatchFault::NotJson => match rng.random_range(0..2) {
            // What a misconfigured proxy returns.
            0 => b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
                .to_vec(),
            // A Python repr instead of JSON: single-quoted strings.
            _ => whole
                .iter()
                .map(|&b| if b == b'"' { b'\'' } else { b })
                .collect(),
        },
        BatchFault::ObjectInsteadOfArray => to_json(&records[0]),
        BatchFault::Empty => Vec::new(),
        BatchFault::RandomBytes => loop {
            let mut bytes = vec![0u8; rng.random_range(64..=1024)];
            rng.fill_bytes(&mut bytes);
            // Redraw in the (astronomically unlikely) case it reads as a batch.
            if lake::event::parse_batch(&bytes, &lake::event::Limits::NONE).is_err() {
                break bytes;
            }
        },
    }
}

/// Where the text after each `needle` starts.
fn value_starts(whole: &[u8], needle: &[u8]) -> Vec<usize> {
    whole
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i + needle.len())
        .collect()
}

/// Breaks one rule in `record` (a valid event); `users` is the user count.
pub fn break_record(rng: &mut SmallRng, fault: RecordFault, record: &mut Record, users: i64) {
    match fault {
        RecordFault::MissingField => remove_required_field(rng, record),
        RecordFault::WrongType => give_wrong_type(rng, record, users),
        RecordFault::BadTimestamp => break_timestamp(rng, record),
        RecordFault::UnknownEventType => set_unknown_event_type(rng, record),
        RecordFault::NonPositiveUserId => set_non_positive_user_id(rng, record, users),
        RecordFault::PurchaseWithoutAmount => make_purchase_without_amount(record),
        RecordFault::BadUuid => break_uuid(rng, record),
        RecordFault::BadCountry => set_bad_country(rng, record),
        RecordFault::NegativeAmount => make_negative_amount(rng, record),
    }
}

/// A string field's value, empty if absent or not a string.
fn text(record: &Record, key: &str) -> String {
    record
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn remove_required_field(rng: &mut SmallRng, record: &mut Record) {
    record.remove(pick(
        rng,
        &["event_id", "user_id", "event_type", "event_ts", "page"],
    ));
}

/// A right value in the wrong JSON type: a string or fractional user_id, a
/// numeric event_ts, an array for page.
fn give_wrong_type(rng: &mut SmallRng, record: &mut Record, users: i64) {
    match rng.random_range(0..4) {
        0 => {
            let id = record.get("user_id").cloned().unwrap_or(Value::from(1));
            record.set("user_id", Value::from(id.to_string()));
        }
        1 => record.set(
            "user_id",
            Value::from(rng.random_range(1..=users) as f64 + 0.5),
        ),
        2 => record.set(
            "event_ts",
            Value::from(rng.random_range(1_700_000_000..1_900_000_000i64)),
        ),
        _ => {
            let page = text(record, "page");
            record.set("page", Value::from(vec![page]));
        }
    }
}

/// No offset, or a date that does not exist (30 February, month 13).
fn break_timestamp(rng: &mut SmallRng, record: &mut Record) {
    // Ours are `YYYY-MM-DDTHH:MM:SS.mmm` then `Z` or `±HH:MM`, all ASCII.
    let ts = text(record, "event_ts");
    let (date_time, offset) = ts.split_at(23.min(ts.len()));
    let (year, rest) = date_time.split_at(5.min(date_time.len()));
    let time = rest.get(5..).unwrap_or_default();
    let bad = match rng.random_range(0..3) {
        0 => date_time.to_string(),
        1 => format!("{year}02-30{time}{offset}"),
        _ => format!("{year}13-01{time}{offset}"),
    };
    record.set("event_ts", Value::from(bad));
}

fn set_unknown_event_type(rng: &mut SmallRng, record: &mut Record) {
    record.set(
        "event_type",
        Value::from(pick(
            rng,
            &["refund", "PageView", "page-view", "signup", ""],
        )),
    );
}

fn set_non_positive_user_id(rng: &mut SmallRng, record: &mut Record, users: i64) {
    record.set("user_id", Value::from(-rng.random_range(0..=users)))
}

fn make_purchase_without_amount(record: &mut Record) {
    record.set("event_type", Value::from("purchase"));
    record.remove("amount");
}

/// Close to a UUID but not one (no hyphens, a non-hex digit, one digit
/// short), or nothing like one.
fn break_uuid(rng: &mut SmallRng, record: &mut Record) {
    let mut id = text(record, "event_id");
    match rng.random_range(0..4) {
        0 => id.retain(|c| c != '-'),
        1 => {
            // A hex digit replaced by a letter that is not one.
            let at = pick(rng, &[0, 9, 14, 19, 24, 35]).min(id.len().saturating_sub(1));
            id.replace_range(at..at + 1, "g");
        }
        2 => {
            id.pop();
        }
        _ => id = "not-a-uuid".to_string(),
    }
    record.set("event_id", Value::from(id));
}

/// Codes that look like countries but are not ISO 3166-1 alpha-2 ones.
fn set_bad_country(rng: &mut SmallRng, record: &mut Record) {
    record.set(
        "country",
        Value::from(pick(rng, &["XX", "ZZ", "UK", "de", "USA", ""])),
    );
}

fn make_negative_amount(rng: &mut SmallRng, record: &mut Record) {
    record.set("event_type", Value::from("purchase"));
    let cents: u32 = rng.random_range(1..=10_000);
    record.set("amount", Value::from(-f64::from(cents) / 100.0));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::tests::settings;
    use crate::generate::Generator;
    use rand::SeedableRng;

    /// Valid records to corrupt.
    fn records(seed: u64) -> Vec<Record> {
        let mut g = Generator::new(settings(seed));
        (0..20).map(|_| g.event(0)).collect()
    }

    /// What the consumer does first with a message: read it as an array.
    fn readable(bytes: &[u8]) -> bool {
        lake::event::parse_batch(bytes, &lake::event::Limits::NONE).is_ok()
    }

    #[test]
    fn every_corrupt_batch_is_unreadable() {
        for seed in 0..200 {
            let records = records(seed);
            let whole = to_json(&records);
            assert!(readable(&whole));
            let mut rng = SmallRng::seed_from_u64(seed);
            for fault in BatchFault::ALL {
                let bytes = break_batch(&mut rng, fault, &records);
                assert!(
                    !readable(&bytes),
                    "{fault:?} seed {seed}: {}",
                    String::from_utf8_lossy(&bytes)
                );
                match fault {
                    BatchFault::Truncated => {
                        assert!(
                            !bytes.is_empty()
                                && bytes.len() < whole.len()
                                && whole.starts_with(&bytes)
                        );
                    }
                    BatchFault::NotUtf8 => {
                        assert!(std::str::from_utf8(&bytes).is_err());
                        let cleaned: Vec<u8> =
                            bytes.iter().copied().filter(|b| *b < 0x80).collect();
                        assert!(readable(&cleaned), "JSON apart from the inserted bytes");
                    }
                    BatchFault::NotJson => {
                        assert!(std::str::from_utf8(&bytes).is_ok());
                        assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_err());
                    }
                    BatchFault::ObjectInsteadOfArray => {
                        let object: serde_json::Map<String, Value> =
                            serde_json::from_slice(&bytes).expect("an object");
                        assert!(object.contains_key("event_id"));
                    }
                    BatchFault::Empty => assert!(bytes.is_empty()),
                    BatchFault::RandomBytes => assert!((64..=1024).contains(&bytes.len())),
                }
            }
        }
    }

    #[test]
    fn each_record_fault_breaks_its_rule() {
        for seed in 0..100 {
            let mut rng = SmallRng::seed_from_u64(seed);
            for (i, record) in records(seed).into_iter().enumerate() {
                let fault = RecordFault::ALL[i % RecordFault::ALL.len()];
                let mut broken = record.clone();
                break_record(&mut rng, fault, &mut broken, 50);
                let raw: Box<serde_json::value::RawValue> =
                    serde_json::from_slice(&broken.to_json()).expect("still JSON");
                let rejection = lake::event::validate_record(raw.get()).expect_err(fault.as_str());
                assert_eq!(
                    rejection.code,
                    fault.expected_code(),
                    "{fault:?}: {}",
                    raw.get()
                );
            }
        }
    }

    #[test]
    fn mode_names_are_distinct() {
        let mut names: Vec<&str> = BatchFault::ALL.iter().map(|f| f.as_str()).collect();
        names.extend(RecordFault::ALL.iter().map(|f| f.as_str()));
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count);
    }
}
