//! Property tests of the decoder (`lake::json`, `lake::event`), and the replay of
//! the fuzz corpus (`fuzz/corpus/decode/`, `fuzz/regressions/`).
//!
//! The invariants themselves live in `lake::fuzz_check`, shared with the
//! coverage-guided fuzz target in `fuzz/`: no panic, every element accounted for,
//! limits only add `oversized`, and the same verdict and element texts as
//! serde_json. Here proptest feeds them arbitrary bytes and mutated batches, and
//! checks generated well-formed batches and valid events against what was
//! generated. Case counts keep the whole file to a few seconds in release.

use std::fmt::Write as _;
use std::path::Path;

use lake::event::{parse_batch, ErrorCode, Limits, ValidEvent, EVENT_TYPES, KNOWN_FIELDS};
use lake::fuzz_check::check_decoder_invariants;
use lake::json::Scanner;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use serde_json::Value;

// ---------------------------------------------------------------- strategies

/// Any string: every `char`, control characters and quotes included.
fn any_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..max).prop_map(String::from_iter)
}

/// A scalar JSON value of any type.
fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        any_text(12).prop_map(Value::String),
    ]
}

/// Any JSON value: up to 6 levels of arrays and objects.
fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any_text(6), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A value wrapped in up to `max` arrays and single-member objects.
fn deep_json_value(max: usize) -> impl Strategy<Value = Value> {
    (json_value(), prop::collection::vec(any::<bool>(), 0..max)).prop_map(|(mut v, wraps)| {
        for object in wraps {
            v = if object {
                Value::Object([("k".to_string(), v)].into_iter().collect())
            } else {
                Value::Array(vec![v])
            };
        }
        v
    })
}

/// Nesting depth as `Shape::depth` counts it: 0 for a scalar, 1 for `[]`.
fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Longest string or key, in bytes as serde_json writes it, quotes excluded.
fn longest_string(v: &Value) -> usize {
    let written = |s: &str| serde_json::to_string(s).expect("a string serializes").len() - 2;
    match v {
        Value::String(s) => written(s),
        Value::Array(a) => a.iter().map(longest_string).max().unwrap_or(0),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| written(k).max(longest_string(v)))
            .max()
            .unwrap_or(0),
        _ => 0,
    }
}

/// JSON whitespace, 0 to 2 characters.
fn ws() -> impl Strategy<Value = String> {
    prop::collection::vec(select(vec![' ', '\t', '\n', '\r']), 0..3).prop_map(String::from_iter)
}

/// A valid event's JSON text and the event it must decode to.
#[derive(Debug, Clone)]
struct GeneratedEvent {
    text: String,
    expected: ValidEvent<'static>,
}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm),
/// so expected timestamps do not come from the parser under test.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// An RFC 3339 timestamp with offset, and its microseconds since the epoch.
fn timestamp() -> impl Strategy<Value = (String, i64)> {
    (
        (
            1i64..=9999,
            1i64..=12,
            1i64..=31,
            0i64..24,
            0i64..60,
            0i64..60,
        ),
        prop::collection::vec(0u8..10, 0..10),
        prop_oneof![
            Just(None),
            (any::<bool>(), 0i64..24, 0i64..60).prop_map(Some)
        ],
        (select(vec!['T', 't']), select(vec!['Z', 'z'])),
    )
        .prop_map(|((y, mo, d, h, mi, s), fraction, offset, (t, z))| {
            let d = d.min(days_in_month(y, mo));
            let mut text = format!("{y:04}-{mo:02}-{d:02}{t}{h:02}:{mi:02}:{s:02}");
            let mut micros = 0;
            if !fraction.is_empty() {
                text.push('.');
                for (i, digit) in fraction.iter().enumerate() {
                    text.push(char::from(b'0' + digit));
                    if i < 6 {
                        micros = micros * 10 + i64::from(*digit);
                    }
                }
                for _ in fraction.len()..6 {
                    micros *= 10;
                }
            }
            let offset_seconds = match offset {
                None => {
                    text.push(z);
                    0
                }
                Some((negative, oh, om)) => {
                    let sign = if negative { '-' } else { '+' };
                    write!(text, "{sign}{oh:02}:{om:02}").expect("write to a String");
                    (oh * 3600 + om * 60) * if negative { -1 } else { 1 }
                }
            };
            let seconds =
                days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset_seconds;
            (text, seconds * 1_000_000 + micros)
        })
}

/// A field name as written: plain, or with its first letter as a `\u` escape.
fn name_as_written(name: &str, escaped: bool) -> String {
    let json = serde_json::to_string(name).expect("a string serializes");
    match name.chars().next() {
        Some(c) if escaped && c.is_ascii_alphanumeric() => {
            format!("\"\\u{:04x}{}", c as u32, &json[1 + c.len_utf8()..])
        }
        _ => json,
    }
}

/// An event satisfying every rule, with random values, unknown extra fields,
/// members in random order and random whitespace.
fn valid_event() -> impl Strategy<Value = GeneratedEvent> {
    let uuid = prop::collection::vec(
        select("0123456789abcdefABCDEF".chars().collect::<Vec<_>>()),
        32,
    )
    .prop_map(|hex| {
        let hex: String = hex.into_iter().collect();
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    });
    let country = prop_oneof![
        Just(None),
        Just(Some(None)),
        select(vec!["DE", "US", "FR", "JP", "BR", "ZA", "NZ", "AX", "GB"])
            .prop_map(|c| Some(Some(c))),
    ];
    let amount = prop_oneof![
        (0u64..1_000_000).prop_map(|a| a as f64),
        (0.0f64..1e9),
        any::<f64>().prop_filter("finite, >= 0", |a| a.is_finite() && *a >= 0.0),
    ];
    let extra = prop::collection::btree_map(
        any_text(8).prop_filter("unknown", |k| !KNOWN_FIELDS.contains(&k.as_str())),
        json_value(),
        0..4,
    );
    (
        (
            uuid,
            1i64..=i64::MAX,
            select(EVENT_TYPES.to_vec()),
            timestamp(),
        ),
        (any_text(16), country, amount, any::<bool>(), extra),
        (
            any::<u64>(),
            prop::collection::vec((ws(), ws(), ws(), ws()), 16),
        ),
        any::<u64>(),
    )
        .prop_map(
            |(
                (event_id, user_id, event_type, (ts, micros)),
                (page, country, amount, amount_null, extra),
                (escape_bits, spaces),
                order,
            )| {
                let purchase = event_type == "purchase";
                let mut members: Vec<(String, String)> = vec![
                    ("event_id".into(), format!("{event_id:?}")),
                    ("user_id".into(), user_id.to_string()),
                    ("event_type".into(), format!("{event_type:?}")),
                    ("event_ts".into(), format!("{ts:?}")),
                    (
                        "page".into(),
                        serde_json::to_string(&page).expect("serializes"),
                    ),
                ];
                match country {
                    None => {}
                    Some(None) => members.push(("country".into(), "null".into())),
                    Some(Some(c)) => members.push(("country".into(), format!("{c:?}"))),
                }
                if purchase {
                    members.push((
                        "amount".into(),
                        serde_json::to_string(&amount).expect("serializes"),
                    ));
                } else if amount_null {
                    members.push(("amount".into(), "null".into()));
                }
                for (name, value) in &extra {
                    members.push((
                        name.clone(),
                        serde_json::to_string(value).expect("serializes"),
                    ));
                }
                // A deterministic shuffle from `order`.
                let mut seed = order;
                for i in (1..members.len()).rev() {
                    seed = seed
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    members.swap(i, (seed >> 33) as usize % (i + 1));
                }
                let mut text = String::from("{");
                let mut extra_text = Vec::new();
                for (i, (name, value)) in members.iter().enumerate() {
                    let (a, b, c, d) = &spaces[i % spaces.len()];
                    if i > 0 {
                        text.push(',');
                    }
                    let written = name_as_written(name, escape_bits >> (i % 64) & 1 == 1);
                    write!(text, "{a}{written}{b}:{c}{value}{d}").expect("write to a String");
                    if !KNOWN_FIELDS.contains(&name.as_str()) {
                        extra_text.push(format!("{written}:{value}"));
                    }
                }
                text.push('}');
                let expected = ValidEvent {
                    event_id: event_id.into(),
                    user_id,
                    event_type,
                    event_ts_micros: micros,
                    page: page.into(),
                    country: country.flatten().map(|c| c.to_string().into()),
                    amount: purchase.then_some(amount),
                    extra: (!extra_text.is_empty())
                        .then(|| format!("{{{}}}", extra_text.join(","))),
                };
                GeneratedEvent { text, expected }
            },
        )
}

/// One element of a generated batch.
#[derive(Debug, Clone)]
enum Generated {
    Event(GeneratedEvent),
    Any(Value),
}

impl Generated {
    fn text(&self) -> String {
        match self {
            Generated::Event(e) => e.text.clone(),
            Generated::Any(v) => serde_json::to_string(v).expect("serializes"),
        }
    }
}

/// A well-formed batch: its elements, and its text (no whitespace after `]`).
fn batch() -> impl Strategy<Value = (Vec<Generated>, String)> {
    let element = prop_oneof![
        2 => valid_event().prop_map(Generated::Event),
        1 => json_value().prop_map(Generated::Any),
        1 => deep_json_value(140).prop_map(Generated::Any),
    ];
    (
        prop::collection::vec((element, ws(), ws()), 0..6),
        ws(),
        ws(),
    )
        .prop_map(|(elements, lead, inner)| {
            let mut text = format!("{lead}[{inner}");
            for (i, (e, a, b)) in elements.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                write!(text, "{a}{}{b}", e.text()).expect("write to a String");
            }
            text.push(']');
            (elements.into_iter().map(|(e, _, _)| e).collect(), text)
        })
}

/// One edit of a batch's bytes.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(Index),
    Flip(Index, u8),
    Insert(Index, &'static [u8]),
    Delete(Index),
}

const INSERTS: [&[u8]; 22] = [
    b"[",
    b"]",
    b"{",
    b"}",
    b"\"",
    b",",
    b":",
    b"\\",
    b" ",
    b"\n",
    b"\x00",
    b"-",
    b"0",
    b"e",
    b"\\u",
    b"\\ud800",
    "é".as_bytes(),
    "€".as_bytes(),
    "𝄞".as_bytes(),
    b"\xc3",
    b"\xff",
    b"\xef\xbb\xbf",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => any::<Index>().prop_map(Mutation::Truncate),
        3 => (any::<Index>(), 1u8..).prop_map(|(i, m)| Mutation::Flip(i, m)),
        4 => (any::<Index>(), select(INSERTS.to_vec())).prop_map(|(i, s)| Mutation::Insert(i, s)),
        2 => any::<Index>().prop_map(Mutation::Delete),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len();
        match m {
            Mutation::Truncate(i) => bytes.truncate(i.index(len + 1)),
            Mutation::Flip(i, mask) if len > 0 => bytes[i.index(len)] ^= mask,
            Mutation::Insert(i, s) => {
                let at = i.index(len + 1);
                bytes.splice(at..at, s.iter().copied());
            }
            Mutation::Delete(i) if len > 0 => {
                bytes.remove(i.index(len));
            }
            _ => {}
        }
    }
    bytes
}

fn holds(bytes: &[u8]) -> Result<(), TestCaseError> {
    check_decoder_invariants(bytes).map_err(|e| {
        TestCaseError::fail(format!("{e}\ninput: {:?}", String::from_utf8_lossy(bytes)))
    })
}

// ---------------------------------------------------------------- properties

/// `cases` cases; failures are reported with their shrunk input, not saved
/// (a reproducer worth keeping goes to `fuzz/regressions/`).
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(50_000))]

    /// Any bytes at all: no panic, accounting, same verdict as serde_json.
    #[test]
    fn any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        holds(&bytes)?;
    }

    /// Bytes from JSON's alphabet, which reach deeper into the scanner.
    #[test]
    fn json_alphabet(bytes in prop::collection::vec(select(b"[]{}\",:\\ \t\n\r\x0c0123456789-+.eEtrufalsn\xc3\xa9".to_vec()), 0..64)) {
        holds(&bytes)?;
    }
}

proptest! {
    #![proptest_config(config(20_000))]

    /// Mutations of well-formed batches: truncations, byte flips, insertions of
    /// structural characters and (partial) multi-byte UTF-8, deletions.
    #[test]
    fn mutated_batches((_, text) in batch(), mutations in prop::collection::vec(mutation(), 1..5)) {
        holds(&mutate(text.into_bytes(), &mutations))?;
    }
}

proptest! {
    #![proptest_config(config(5000))]

    /// Every strict prefix of a batch is corrupt: truncated, empty, or cut inside a character.
    #[test]
    fn truncation_anywhere((_, text) in batch(), at in any::<Index>()) {
        let bytes = &text.as_bytes()[..at.index(text.len())];
        holds(bytes)?;
        let code = parse_batch(bytes, &Limits::NONE).expect_err("a strict prefix is corrupt").code;
        let expected = if std::str::from_utf8(bytes).is_err() {
            ErrorCode::NotUtf8
        } else if bytes.iter().all(|b| b" \t\n\r".contains(b)) {
            ErrorCode::EmptyBatch
        } else {
            ErrorCode::TruncatedJson
        };
        prop_assert_eq!(code, expected);
    }

    /// A well-formed batch: its elements exactly, one outcome each, every
    /// generated valid event accepted with its field values, and a record that
    /// is not an object rejected as `not_object`.
    #[test]
    fn well_formed_batches((elements, text) in batch()) {
        holds(text.as_bytes())?;
        let parsed = parse_batch(text.as_bytes(), &Limits::NONE).expect("a well-formed batch parses");
        prop_assert_eq!(parsed.elements.len(), elements.len());
        let (mut valid, mut invalid) = (0, 0);
        for (element, generated) in parsed.elements.iter().zip(&elements) {
            prop_assert_eq!(element.text, generated.text());
            prop_assert!(element.over_limit.is_none());
            match (ValidEvent::decode(&parsed, element), generated) {
                (Ok(event), Generated::Event(g)) => {
                    prop_assert_eq!(&event, &g.expected);
                    valid += 1;
                }
                (Err(r), Generated::Event(_)) => {
                    return Err(TestCaseError::fail(format!("valid event rejected: {r:?}\n{}", element.text)));
                }
                (outcome, Generated::Any(v)) => {
                    if !v.is_object() {
                        prop_assert_eq!(outcome.as_ref().map_err(|r| r.code).err(), Some(ErrorCode::NotObject));
                    }
                    if outcome.is_ok() { valid += 1 } else { invalid += 1 }
                }
            }
        }
        prop_assert_eq!(valid + invalid, elements.len());
        // A byte order mark in front is refused, as documented.
        let bom = [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat();
        prop_assert_eq!(parse_batch(&bom, &Limits::NONE).map(|_| ()).map_err(|r| r.code), Err(ErrorCode::NotJson));
    }

    /// The scanner consumes exactly serde_json's output of any value, and
    /// measures its real depth and longest string.
    #[test]
    fn scanner_measures_serde_json_output(value in prop_oneof![json_value(), deep_json_value(300)], pretty in any::<bool>()) {
        let text = if pretty {
            serde_json::to_string_pretty(&value)
        } else {
            serde_json::to_string(&value)
        }.expect("serializes");
        let mut scanner = Scanner::new(&text);
        let (scanned, shape) = scanner.value().expect("serde_json's output scans");
        prop_assert_eq!(scanned, text.as_str());
        prop_assert!(scanner.at_end());
        prop_assert_eq!(shape.depth, depth(&value));
        prop_assert_eq!(shape.longest_string, longest_string(&value));
    }
}

// ---------------------------------------------------------------- fuzz corpus

/// Every file of the fuzz corpus and every saved crash reproducer passes the
/// invariants: the CI smoke of the fuzz target, which needs no instrumentation.
#[test]
fn fuzz_corpus_replays() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut replayed = 0;
    for dir in ["corpus/decode", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_file() {
                let bytes = std::fs::read(&path).expect("a corpus file reads");
                if let Err(e) = check_decoder_invariants(&bytes) {
                    panic!("{}: {e}", path.display());
                }
                replayed += 1;
            }
        }
    }
    assert!(
        replayed >= 10,
        "only {replayed} corpus files under {}",
        fuzz.display()
    );
}
