//! The dead-letter error codes the decoder can emit are exactly the codes the
//! documentation lists, in both places that list them: the error-code table
//! of `README.md` and the one of `docs/DESIGN.md` §9 (each the table under the
//! header `| error_code | kind | meaning |`).
//!
//! Checked both ways: no code missing from a document, no documented code the
//! decoder cannot emit. Each code is also produced by a sample input through
//! the real decoder, and the `kind` column must say which kind of dead letter
//! carries it (`corrupt_batch`, `invalid_record`, or `either`). Codes of the
//! events contract are produced under it; the generic keyword codes it does
//! not use (`not_in_enum`, `too_short`, …) under a small contract here.

use std::collections::{BTreeMap, BTreeSet};

use lake::contract::Contract;
use lake::decoder::{Decoder, Record};
use lake::event::{parse_batch, validate_record, ErrorCode, ErrorKind, Limits};

/// Lists every variant of `ErrorCode` once, for both a `match` and a slice:
/// the match must be exhaustive, so a variant added to the enum does not
/// compile here until it is listed, and once listed
/// `all_lists_every_variant` fails until `ErrorCode::ALL` holds it too.
macro_rules! every_variant {
    ($($variant:ident),* $(,)?) => {
        #[allow(dead_code)]
        fn exhaustive(code: ErrorCode) {
            match code {
                $(ErrorCode::$variant => {})*
                // A contract's own codes are documented by the contract.
                ErrorCode::Custom(_) => {}
            }
        }
        const VARIANTS: &[ErrorCode] = &[$(ErrorCode::$variant),*];
    };
}

every_variant!(
    EmptyBatch,
    NotUtf8,
    TruncatedJson,
    NotJson,
    NotArray,
    Oversized,
    NotObject,
    MissingField,
    WrongType,
    DuplicateField,
    BadUuid,
    BadTimestamp,
    UnknownEventType,
    OutOfRange,
    BadCountry,
    UnexpectedField,
    BadString,
    NotInEnum,
    TooShort,
    TooLong,
    PatternMismatch,
    BadFormat,
);

/// The wire names of every code the decoder has, from `ErrorCode::ALL`.
fn codes_in_code() -> BTreeSet<&'static str> {
    ErrorCode::ALL.iter().map(|c| c.as_str()).collect()
}

#[test]
fn all_lists_every_variant() {
    let all: BTreeSet<ErrorCode> = ErrorCode::ALL.iter().copied().collect();
    let variants: BTreeSet<ErrorCode> = VARIANTS.iter().copied().collect();
    assert_eq!(
        all.len(),
        ErrorCode::ALL.len(),
        "ErrorCode::ALL repeats a code"
    );
    assert_eq!(all, variants, "ErrorCode::ALL must list every variant once");
    assert_eq!(
        codes_in_code().len(),
        ErrorCode::ALL.len(),
        "two codes share one as_str name"
    );
}

const VALID: &str = r#"{"event_id":"0b6f9a3e-2a7c-4c4e-9d8e-5d0b8a1f2c3d","user_id":42,"event_type":"purchase","event_ts":"2026-11-22T10:00:00Z","page":"/cart","country":"DE","amount":19.5}"#;

/// The valid record with one member's `"name":value` text replaced.
fn edited(from: &str, to: &str) -> String {
    assert!(VALID.contains(from), "{from}");
    VALID.replacen(from, to, 1)
}

/// A contract that uses the keywords the events contract does not.
const KEYWORDS: &str = r#"{
    "x-lakehouse": {"table": "keywords", "event_time": "at"},
    "type": "object",
    "properties": {
        "at": {"type": "string", "format": "date-time"},
        "size": {"type": "string", "enum": ["S", "M", "L"]},
        "code": {"type": "string", "minLength": 2, "maxLength": 4, "pattern": "^[A-Z]+$"},
        "mail": {"type": "string", "format": "email"}
    },
    "required": ["at"]
}"#;

fn keywords_decoder() -> &'static Decoder {
    static DECODER: std::sync::OnceLock<Decoder> = std::sync::OnceLock::new();
    DECODER.get_or_init(|| {
        Decoder::new(Contract::parse("keywords", KEYWORDS.as_bytes()).expect("compiles"))
    })
}

/// A batch of one record of the keywords contract with `member` added.
fn keywords(member: &str) -> Vec<u8> {
    format!(r#"[{{"at":"2026-11-22T10:00:00Z",{member}}}]"#).into_bytes()
}

/// One input per code, as a whole batch, with the limits and the contract to
/// decode it under.
fn samples() -> Vec<(&'static str, Vec<u8>, Limits, &'static Decoder)> {
    let events = Decoder::events();
    let keyworded = keywords_decoder();
    let with = |code, payload, limits| (code, payload, limits, events);
    let defaults = Limits::default();
    let small = Limits {
        max_message_bytes: 64,
        ..Limits::default()
    };
    let shallow = Limits {
        max_depth: 1,
        ..Limits::default()
    };
    let record = |text: String| format!("[{text}]").into_bytes();
    vec![
        with("empty_batch", b" \n".to_vec(), defaults),
        with("not_utf8", b"[\"\xff\"]".to_vec(), defaults),
        with("truncated_json", format!("[{VALID}").into_bytes(), defaults),
        with("not_json", b"[1,]".to_vec(), defaults),
        with("not_array", VALID.as_bytes().to_vec(), defaults),
        // Both kinds: a batch over MAX_MESSAGE_BYTES, a record over MAX_NESTING_DEPTH.
        with("oversized", record(VALID.to_string()), small),
        with(
            "oversized",
            record(edited(r#""page":"/cart""#, r#""page":"/cart","x":{"y":1}"#)),
            shallow,
        ),
        with("not_object", b"[7]".to_vec(), defaults),
        with(
            "missing_field",
            record(edited(r#","page":"/cart""#, "")),
            defaults,
        ),
        with(
            "wrong_type",
            record(edited(r#""user_id":42"#, r#""user_id":"42""#)),
            defaults,
        ),
        with(
            "duplicate_field",
            record(edited(
                r#""page":"/cart""#,
                r##""page":"/cart","page":"/""##,
            )),
            defaults,
        ),
        with(
            "bad_uuid",
            record(edited(
                r#""0b6f9a3e-2a7c-4c4e-9d8e-5d0b8a1f2c3d""#,
                r#""nope""#,
            )),
            defaults,
        ),
        with(
            "bad_timestamp",
            record(edited("2026-11-22T10:00:00Z", "2026-02-30T10:00:00Z")),
            defaults,
        ),
        with(
            "unknown_event_type",
            record(edited(r#""purchase""#, r#""refund""#)),
            defaults,
        ),
        with(
            "out_of_range",
            record(edited(r#""user_id":42"#, r#""user_id":0"#)),
            defaults,
        ),
        with(
            "bad_country",
            record(edited(r#""DE""#, r#""XX""#)),
            defaults,
        ),
        with(
            "unexpected_field",
            record(edited(r#""purchase""#, r#""click""#)),
            defaults,
        ),
        with(
            "bad_string",
            record(edited(r#""/cart""#, r#""\ud800""#)),
            defaults,
        ),
        (
            "not_in_enum",
            keywords(r#""size":"XL""#),
            defaults,
            keyworded,
        ),
        ("too_short", keywords(r#""code":"A""#), defaults, keyworded),
        (
            "too_long",
            keywords(r#""code":"ABCDE""#),
            defaults,
            keyworded,
        ),
        (
            "pattern_mismatch",
            keywords(r#""code":"ab""#),
            defaults,
            keyworded,
        ),
        (
            "bad_format",
            keywords(r#""mail":"not-an-address""#),
            defaults,
            keyworded,
        ),
    ]
}

/// Decodes one batch: the code and kind of each dead letter it produces.
fn dead_letters(
    payload: &[u8],
    limits: &Limits,
    decoder: &Decoder,
) -> Vec<(&'static str, ErrorKind)> {
    match parse_batch(payload, limits) {
        Err(rejection) => vec![(rejection.code.as_str(), ErrorKind::at(None))],
        Ok(batch) => batch
            .elements
            .iter()
            .enumerate()
            .filter_map(|(index, element)| {
                let mut record = Record::default();
                let verdict = decoder.decode(&batch, element, &mut record);
                verdict.err().map(|r| (r, index))
            })
            .map(|(r, index)| (r.code.as_str(), ErrorKind::at(Some(index as u32))))
            .collect(),
    }
}

/// Code → the kinds of dead letter the decoder was seen to give it.
fn emitted() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    assert!(validate_record(VALID).is_ok(), "the sample record is valid");
    let mut seen: BTreeMap<&'static str, BTreeSet<&'static str>> = BTreeMap::new();
    for (code, payload, limits, decoder) in samples() {
        let got = dead_letters(&payload, &limits, decoder);
        assert_eq!(
            got.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
            [code],
            "sample for {code}: {}",
            String::from_utf8_lossy(&payload)
        );
        for (c, kind) in got {
            seen.entry(c).or_default().insert(kind.as_str());
        }
    }
    seen
}

#[test]
fn the_decoder_emits_every_code() {
    let seen: BTreeSet<&str> = emitted().keys().copied().collect();
    assert_eq!(
        seen,
        codes_in_code(),
        "every code needs a sample input that produces it"
    );
}

/// The documented kind of a code, from the kinds the decoder gives it.
fn kind_name(kinds: &BTreeSet<&str>) -> &'static str {
    match kinds.iter().copied().collect::<Vec<_>>().as_slice() {
        ["corrupt_batch"] => "corrupt_batch",
        ["invalid_record"] => "invalid_record",
        _ => "either",
    }
}

const HEADER: &str = "| error_code | kind | meaning |";

/// The rows of the error-code table in `text`: code → kind, without the
/// backticks. The table is the one under `HEADER`, which must occur once.
fn documented(name: &str, text: &str) -> BTreeMap<String, String> {
    let lines: Vec<&str> = text.lines().collect();
    let headers: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].trim() == HEADER)
        .collect();
    assert_eq!(
        headers.len(),
        1,
        "{name} must have exactly one table headed {HEADER:?}"
    );
    let start = headers[0] + 1;
    assert!(
        lines.get(start).is_some_and(
            |l| l.trim_start().starts_with("|--") || l.trim_start().starts_with("| --")
        ),
        "{name}: the line after {HEADER:?} must be the table's separator"
    );
    let mut rows = BTreeMap::new();
    for line in lines[start + 1..]
        .iter()
        .take_while(|l| l.trim_start().starts_with('|'))
    {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        assert!(
            cells.len() >= 3,
            "{name}: row {line:?} has fewer than 3 cells"
        );
        let code = cells[0]
            .strip_prefix('`')
            .and_then(|c| c.strip_suffix('`'))
            .unwrap_or_else(|| panic!("{name}: code {:?} is not in backticks", cells[0]));
        let kind = cells[1].trim_matches('`');
        assert!(
            !cells[2].is_empty(),
            "{name}: `{code}` has no meaning written"
        );
        let previous = rows.insert(code.to_string(), kind.to_string());
        assert!(previous.is_none(), "{name}: `{code}` is listed twice");
    }
    assert!(!rows.is_empty(), "{name}: the error-code table has no rows");
    rows
}

fn check_document(relative: &str) {
    let path = format!("{}/../{relative}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let rows = documented(relative, &text);
    let listed: BTreeSet<&str> = rows.keys().map(String::as_str).collect();
    let in_code = codes_in_code();
    let missing: Vec<&&str> = in_code.difference(&listed).collect();
    let unknown: Vec<&&str> = listed.difference(&in_code).collect();
    assert!(
        missing.is_empty(),
        "{relative}: codes the decoder emits but the table does not list: {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "{relative}: codes the table lists but the decoder cannot emit: {unknown:?}"
    );
    for (code, kinds) in emitted() {
        assert_eq!(
            rows[code],
            kind_name(&kinds),
            "{relative}: the kind of `{code}`"
        );
    }
}

#[test]
fn readme_lists_exactly_the_codes() {
    check_document("README.md");
}

#[test]
fn design_lists_exactly_the_codes() {
    check_document("docs/DESIGN.md");
}
