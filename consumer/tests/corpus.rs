//! Every case of the bad-input corpus (`testkit::corpus`) through the decoder
//! at the consumer's default limits: where it lands, with which code, and the
//! raw payload its dead letter keeps. The end-to-end suite sends the same
//! cases through Kafka and the files source.

use consumer::decode::{decode_batch, Counts, Lineage, Rows};
use lake::decoder::{Decoder, Record};
use lake::event::{ErrorKind, Limits, Rejection, ValidEvent};
use testkit::corpus::{cases, Expect};

#[derive(Default)]
struct Collected {
    valid: Vec<(u32, ValidEvent<'static>)>,
    dead: Vec<(Option<u32>, Rejection, Vec<u8>)>,
}

impl Rows for Collected {
    fn valid(&mut self, _: &Lineage, index: u32, record: &Record<'_>) {
        let event = ValidEvent::from_record(record).into_owned();
        self.valid.push((index, event));
    }
    fn dead(&mut self, _: &Lineage, index: Option<u32>, rejection: Rejection, raw: &[u8]) {
        self.dead.push((index, rejection, raw.to_vec()));
    }
}

#[test]
fn every_case_lands_where_the_corpus_says() {
    let corpus = cases();
    let mut failures = Vec::new();
    for case in &corpus {
        let mut rows = Collected::default();
        let counts = decode_batch(
            &case.payload,
            &Lineage::default(),
            &Limits::default(),
            Decoder::events(),
            &mut rows,
        );
        let dead: Vec<(Option<u32>, &str, ErrorKind)> = rows
            .dead
            .iter()
            .map(|(i, r, _)| (*i, r.code.as_str(), ErrorKind::at(*i)))
            .collect();
        let valid_indexes: Vec<u32> = rows.valid.iter().map(|(i, _)| *i).collect();
        let landed = match &case.expect {
            Expect::CorruptBatch(code) => {
                dead == [(None, *code, ErrorKind::CorruptBatch)] && valid_indexes.is_empty()
            }
            Expect::InvalidRecord { code, .. } => {
                dead == [(Some(1), *code, ErrorKind::InvalidRecord)] && valid_indexes == [0, 2]
            }
            Expect::Valid { page, extra } => {
                dead.is_empty()
                    && valid_indexes == [0, 1, 2]
                    && rows.valid[1].1.page == *page
                    && rows.valid[1].1.extra == *extra
            }
            Expect::Nothing => counts == Counts::default(),
        };
        let raw_kept = match case.dead_letter_raw() {
            Some(raw) => rows.dead.first().is_some_and(|(_, _, kept)| kept == raw),
            None => rows.dead.is_empty(),
        };
        if !landed || !raw_kept {
            let got: Vec<String> = rows
                .dead
                .iter()
                .map(|(i, r, _)| format!("{i:?} {}: {}", r.code, r.message))
                .collect();
            failures.push(format!(
                "{}: expected {}, got valid {valid_indexes:?} dead {got:?} (raw kept as sent: {raw_kept})",
                case.name,
                describe(&case.expect),
            ));
        }
        for (_, rejection, _) in &rows.dead {
            assert!(
                !rejection.message.is_empty(),
                "{}: empty message",
                case.name
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        corpus.len(),
        failures.join("\n")
    );
}

#[test]
fn the_corpus_covers_every_code_and_enough_kinds() {
    let corpus = cases();
    let code_of = |expect: &Expect| match expect {
        Expect::CorruptBatch(code) | Expect::InvalidRecord { code, .. } => Some(*code),
        _ => None,
    };
    let corrupt = corpus
        .iter()
        .filter(|c| matches!(c.expect, Expect::CorruptBatch(_)))
        .count();
    let invalid = corpus
        .iter()
        .filter(|c| matches!(c.expect, Expect::InvalidRecord { .. }))
        .count();
    eprintln!(
        "corpus: {} cases, {corrupt} corrupt batches, {invalid} invalid records, {} valid or empty",
        corpus.len(),
        corpus.len() - corrupt - invalid
    );
    assert!(corrupt >= 30, "{corrupt} corrupt-batch cases");
    assert!(invalid >= 20, "{invalid} invalid-record cases");
    // The corpus is of the events contract, which names its own codes for
    // its enums and uses no lengths, patterns or other formats; those codes
    // are covered with other contracts in lake's tests.
    use lake::event::ErrorCode;
    let not_in_events = [
        ErrorCode::NotInEnum,
        ErrorCode::TooShort,
        ErrorCode::TooLong,
        ErrorCode::PatternMismatch,
        ErrorCode::BadFormat,
    ];
    for code in ErrorCode::ALL
        .into_iter()
        .filter(|c| !not_in_events.contains(c))
    {
        assert!(
            corpus
                .iter()
                .any(|c| code_of(&c.expect) == Some(code.as_str())),
            "no corpus case gives {code}"
        );
    }
}

fn describe(expect: &Expect) -> String {
    match expect {
        Expect::CorruptBatch(code) => format!("corrupt {code}"),
        Expect::InvalidRecord { code, .. } => format!("invalid {code}"),
        Expect::Valid { page, extra } => format!("valid page={page:?} extra={extra:?}"),
        Expect::Nothing => "nothing".into(),
    }
}
