//! Decoding one batch under its table's contract: message bytes → valid
//! records and dead letters.
//!
//! Bad data is a value here, never an error: every input ends as exactly one
//! dead letter (a corrupt batch) or as one row per element (valid or not).

use lake::decoder::{Decoder, Record};
use lake::event::{parse_batch, ErrorCode, Limits, Rejection, OVERSIZED_PREFIX_BYTES};

/// Where a batch came from; copied into every row it produces.
#[derive(Debug, Clone, Default)]
pub struct Lineage {
    pub offset: Option<i64>,
    pub key: Option<String>,
    pub batch_id: Option<String>,
    pub kafka_timestamp_micros: Option<i64>,
}

/// What decoding produces, row by row.
pub trait Rows {
    fn valid(&mut self, lineage: &Lineage, index: u32, record: &Record<'_>);
    /// `index` is `None` for a corrupt batch; `raw` is the record or the whole batch.
    fn dead(&mut self, lineage: &Lineage, index: Option<u32>, rejection: Rejection, raw: &[u8]);
}

/// Rows and dead letters one batch produced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub valid: u64,
    pub invalid: u64,
    pub corrupt: u64,
}

/// Decodes `payload` under `decoder` and hands every row to `rows`.
pub fn decode_batch(
    payload: &[u8],
    lineage: &Lineage,
    limits: &Limits,
    decoder: &Decoder,
    rows: &mut impl Rows,
) -> Counts {
    let mut counts = Counts::default();
    let batch = match parse_batch(payload, limits) {
        Ok(batch) => batch,
        Err(rejection) => return dead_batch(payload, lineage, rejection, rows),
    };
    let mut record = Record::default();
    for (index, element) in batch.elements.iter().enumerate() {
        let index = index as u32;
        match decoder.decode(&batch, element, &mut record) {
            Ok(()) => {
                rows.valid(lineage, index, &record);
                counts.valid += 1;
            }
            Err(rejection) => {
                rows.dead(lineage, Some(index), rejection, element.text.as_bytes());
                counts.invalid += 1;
            }
        }
    }
    counts
}

/// One dead letter for a whole batch: all of `payload`, or only its first
/// `OVERSIZED_PREFIX_BYTES` when the batch is `oversized` (the caller may
/// have read no more than that).
pub fn dead_batch(
    payload: &[u8],
    lineage: &Lineage,
    rejection: Rejection,
    rows: &mut impl Rows,
) -> Counts {
    let kept = if rejection.code == ErrorCode::Oversized {
        &payload[..payload.len().min(OVERSIZED_PREFIX_BYTES)]
    } else {
        payload
    };
    rows.dead(lineage, None, rejection, kept);
    Counts {
        corrupt: 1,
        ..Counts::default()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Collects rows as (index, code or "valid", raw text).
    #[derive(Default)]
    pub struct Collected(pub Vec<(Option<u32>, String, Vec<u8>)>);

    impl Rows for Collected {
        fn valid(&mut self, _: &Lineage, index: u32, record: &Record<'_>) {
            let id = match &record.datums()[0] {
                lake::decoder::Datum::Str(id) => id.as_bytes().to_vec(),
                other => panic!("event_id is a string, not {other:?}"),
            };
            self.0.push((Some(index), "valid".into(), id));
        }
        fn dead(&mut self, _: &Lineage, index: Option<u32>, rejection: Rejection, raw: &[u8]) {
            self.0
                .push((index, rejection.code.as_str().into(), raw.to_vec()));
        }
    }

    fn decode(payload: &[u8]) -> (Counts, Collected) {
        let mut rows = Collected::default();
        let counts = decode_batch(
            payload,
            &Lineage::default(),
            &Limits::default(),
            Decoder::events(),
            &mut rows,
        );
        (counts, rows)
    }

    fn corrupt_code(payload: &[u8]) -> String {
        let (counts, rows) = decode(payload);
        assert_eq!(
            counts,
            Counts {
                valid: 0,
                invalid: 0,
                corrupt: 1
            }
        );
        assert_eq!(rows.0[0].2, payload, "raw payload kept byte for byte");
        rows.0[0].1.clone()
    }

    const E1: &str = r#"{"event_id":"0b6f9a3e-2a7c-4c4e-9d8e-5d0b8a1f2c3d","user_id":1,"event_type":"click","event_ts":"2026-11-22T10:00:00Z","page":"/"}"#;

    #[test]
    fn corrupt_batches_have_codes() {
        assert_eq!(corrupt_code(b""), "empty_batch");
        assert_eq!(corrupt_code(b"  \n"), "empty_batch");
        assert_eq!(corrupt_code(b"[{\"a\":\"\xff\"}]"), "not_utf8");
        assert_eq!(corrupt_code(format!("[{E1}").as_bytes()), "truncated_json");
        assert_eq!(corrupt_code(b"[{\"event_id\":"), "truncated_json");
        assert_eq!(corrupt_code(b"hello"), "not_json");
        assert_eq!(corrupt_code(format!("[{E1}]x").as_bytes()), "not_json");
        assert_eq!(corrupt_code(E1.as_bytes()), "not_array");
        assert_eq!(corrupt_code(b"42"), "not_array");
        let mut rows = Collected::default();
        let big = format!("[{E1}]");
        let limits = Limits {
            max_message_bytes: 10,
            ..Limits::default()
        };
        decode_batch(
            big.as_bytes(),
            &Lineage::default(),
            &limits,
            Decoder::events(),
            &mut rows,
        );
        assert_eq!(rows.0[0].1, "oversized");
    }

    #[test]
    fn records_are_judged_one_by_one() {
        let bad = E1.replace("\"user_id\":1", "\"user_id\":0");
        let payload = format!("[{E1}, {bad} ,7]");
        let (counts, rows) = decode(payload.as_bytes());
        assert_eq!(
            counts,
            Counts {
                valid: 1,
                invalid: 2,
                corrupt: 0
            }
        );
        assert_eq!(
            rows.0[1],
            (Some(1), "out_of_range".into(), bad.into_bytes())
        );
        assert_eq!(rows.0[2], (Some(2), "not_object".into(), b"7".to_vec()));
    }

    #[test]
    fn empty_array_is_nothing_to_write() {
        assert_eq!(decode(b"[]").0, Counts::default());
        assert_eq!(decode(b" [ ] ").0, Counts::default());
    }
}
