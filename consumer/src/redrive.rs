//! `consumer redrive`: the dead letters of a table decoded again under the
//! contract and limits in force now, to bring back what a fix lets through
//! (docs/DESIGN.md §15). This version judges and reports (`--dry-run`): per
//! error code, how many selected dead letters would move to bronze and how
//! many would still fail, with what; it reads the dead-letter table's
//! current snapshot and writes nothing. Moving them comes next.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int32Type, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use lake::decoder::{Decoder, Record};
use lake::event::{ErrorCode, Limits, Rejection, OVERSIZED_PREFIX_BYTES};
use lake::{layout, Lake};
use object_store::ObjectStoreExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::decode::{decode_batch, Lineage, Rows};

/// Which dead letters a re-drive takes: of one table, with one of `codes`
/// (all when empty), ingested in `[since, until)`.
#[derive(Debug, Clone)]
pub struct Selection {
    pub table: String,
    pub codes: Vec<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl Selection {
    fn takes(&self, code: &str, ingested_at_micros: Option<i64>) -> bool {
        let at = ingested_at_micros.unwrap_or(i64::MIN);
        (self.codes.is_empty() || self.codes.iter().any(|c| c == code))
            && self
                .since
                .is_none_or(|since| at >= since.timestamp_micros())
            && self.until.is_none_or(|until| at < until.timestamp_micros())
    }
}

/// One selected dead letter: its code and what to decode again.
struct DeadLetter {
    code: String,
    /// `record_index` is NULL: the row holds a whole batch.
    corrupt_batch: bool,
    raw: Vec<u8>,
}

/// What decoding a dead letter again gives.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Records that pass now.
    pub passes: u64,
    /// Records (or the batch) that still fail: code and message.
    pub fails: Vec<(String, String)>,
}

/// Counts valid records and keeps the rejections.
#[derive(Default)]
struct Judged(Verdict);

impl Rows for Judged {
    fn valid(&mut self, _: &Lineage, _: u32, _: &Record<'_>) {
        self.0.passes += 1;
    }

    fn dead(&mut self, _: &Lineage, _: Option<u32>, rejection: Rejection, _: &[u8]) {
        self.0
            .fails
            .push((rejection.code.as_str().to_string(), rejection.message));
    }
}

/// Decodes a dead letter's payload again: a record alone as a batch of one,
/// a corrupt batch as the batch it was, split into its records if it parses
/// now. The 64 KiB kept of an `oversized` batch cannot be judged.
fn judge(dead: &DeadLetter, decoder: &Decoder, limits: &Limits) -> Verdict {
    let truncated = dead.code == ErrorCode::Oversized.as_str()
        && dead.corrupt_batch
        && dead.raw.len() >= OVERSIZED_PREFIX_BYTES;
    if truncated {
        return Verdict {
            passes: 0,
            fails: vec![(
                dead.code.clone(),
                "only the first 64 KiB of this oversized batch were kept; reading it again from the source is not built yet".into(),
            )],
        };
    }
    let payload = if dead.corrupt_batch {
        dead.raw.clone()
    } else {
        [b"[".as_slice(), &dead.raw, b"]"].concat()
    };
    let mut judged = Judged::default();
    decode_batch(&payload, &Lineage::default(), limits, decoder, &mut judged);
    judged.0
}

/// Per error code of the selected dead letters: how many were selected,
/// how many records would move, and the codes of those still failing, with
/// a sample of their messages.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CodeReport {
    pub selected: u64,
    pub would_move: u64,
    pub still_failing: BTreeMap<String, u64>,
    pub samples: Vec<String>,
}

/// Messages kept per code for the report.
const SAMPLES: usize = 3;

/// Judges every selected dead letter of `decoder`'s table under `decoder`
/// and `limits`; reads the current snapshot of the dead-letter table and
/// writes nothing.
pub async fn dry_run(
    lake: &Lake,
    decoder: &Decoder,
    limits: &Limits,
    selection: &Selection,
) -> anyhow::Result<BTreeMap<String, CodeReport>> {
    let mut report: BTreeMap<String, CodeReport> = BTreeMap::new();
    for dead in selected(lake, selection).await? {
        let verdict = judge(&dead, decoder, limits);
        let entry = report.entry(dead.code.clone()).or_default();
        entry.selected += 1;
        entry.would_move += verdict.passes;
        for (code, message) in verdict.fails {
            *entry.still_failing.entry(code).or_default() += 1;
            if entry.samples.len() < SAMPLES && !entry.samples.contains(&message) {
                entry.samples.push(message);
            }
        }
    }
    Ok(report)
}

/// The dead letters of the table's current snapshot that `selection` takes.
async fn selected(lake: &Lake, selection: &Selection) -> anyhow::Result<Vec<DeadLetter>> {
    let prefix = layout::dead_letters_prefix(&selection.table);
    let Some(table) = delta::Table::open(lake, &prefix, delta::AsOf::Latest).await? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for file in table.files().await? {
        let key = format!("{prefix}/{}", file.path);
        let bytes = lake.store.get(&Lake::path(&key)).await?.bytes().await?;
        for batch in ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()? {
            take_rows(&batch?, selection, &mut out).map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
        }
    }
    Ok(out)
}

/// The rows of one batch of a dead-letter file that `selection` takes.
fn take_rows(
    batch: &RecordBatch,
    selection: &Selection,
    out: &mut Vec<DeadLetter>,
) -> Result<(), String> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| format!("no column {name}"))
    };
    let codes = column("error_code")?.as_string::<i32>();
    let raw = column("raw_payload")?.as_binary::<i32>();
    let index = column("record_index")?.as_primitive::<Int32Type>();
    let ingested = column("ingested_at")?.as_primitive::<TimestampMicrosecondType>();
    for row in 0..batch.num_rows() {
        let code = codes.value(row);
        let at = ingested.is_valid(row).then(|| ingested.value(row));
        if selection.takes(code, at) {
            out.push(DeadLetter {
                code: code.to_string(),
                corrupt_batch: index.is_null(row),
                raw: raw.value(row).to_vec(),
            });
        }
    }
    Ok(())
}

/// The report as a person reads it.
pub fn print(selection: &Selection, report: &BTreeMap<String, CodeReport>) {
    let selected: u64 = report.values().map(|r| r.selected).sum();
    println!(
        "dry run: {selected} dead letter(s) of table {} selected; nothing was written",
        selection.table
    );
    println!(
        "{:<24} {:>10} {:>12} {:>14}  still failing as",
        "error_code", "selected", "would move", "still failing"
    );
    for (code, r) in report {
        let failing: u64 = r.still_failing.values().sum();
        let codes: Vec<String> = r
            .still_failing
            .iter()
            .map(|(code, n)| format!("{code} {n}"))
            .collect();
        println!(
            "{code:<24} {:>10} {:>12} {failing:>14}  {}",
            r.selected,
            r.would_move,
            codes.join(", ")
        );
        for sample in &r.samples {
            println!("    e.g. {sample}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lake::contract::Contract;

    fn judge_raw(raw: &str, corrupt_batch: bool, code: &str) -> Verdict {
        let decoder = Decoder::new(Contract::events());
        let dead = DeadLetter {
            code: code.into(),
            corrupt_batch,
            raw: raw.as_bytes().to_vec(),
        };
        judge(&dead, &decoder, &Limits::default())
    }

    const VALID: &str = r#"{"event_id":"6d10eec2-dd31-4cbb-9b6c-1c4b2f1e0a11","user_id":7,"event_type":"click","event_ts":"2026-11-01T00:00:00Z","page":"/","country":"DE"}"#;

    #[test]
    fn a_record_that_passes_now_would_move() {
        assert_eq!(
            judge_raw(VALID, false, "unknown_event_type"),
            Verdict {
                passes: 1,
                fails: vec![]
            }
        );
    }

    #[test]
    fn a_record_that_still_fails_keeps_its_rejection() {
        let bad = VALID.replace("\"click\"", "\"refund\"");
        let verdict = judge_raw(&bad, false, "unknown_event_type");
        assert_eq!(verdict.passes, 0);
        assert_eq!(verdict.fails.len(), 1);
        assert_eq!(verdict.fails[0].0, "unknown_event_type");
    }

    #[test]
    fn a_corrupt_batch_that_parses_now_is_split_into_its_records() {
        let bad = VALID.replace("\"user_id\":7", "\"user_id\":-1");
        let verdict = judge_raw(&format!("[{VALID},{bad}]"), true, "oversized");
        assert_eq!(verdict.passes, 1);
        assert_eq!(verdict.fails.len(), 1);
        assert_eq!(verdict.fails[0].0, "out_of_range");
    }

    #[test]
    fn the_kept_prefix_of_an_oversized_batch_is_not_judged() {
        let prefix = "x".repeat(OVERSIZED_PREFIX_BYTES);
        let verdict = judge_raw(&prefix, true, "oversized");
        assert_eq!(verdict.passes, 0);
        assert_eq!(verdict.fails[0].0, "oversized");
    }
}
