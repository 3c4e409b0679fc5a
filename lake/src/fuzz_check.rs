//! The decoder's invariants, checked on arbitrary input bytes.
//!
//! One function, [`check_decoder_invariants`], shared by the property tests
//! (`lake/tests/decoder_properties.rs`), the replay of the fuzz corpus that
//! runs in `make test`, and the coverage-guided fuzz target (`fuzz/`), so the
//! three check the same things. Not part of the lake's contract.
//!
//! For any bytes, under no limits, the default limits and tight ones:
//! * [`parse_batch`] and [`validate_record`] (on every element, and on the
//!   whole input as one record) do not panic, and an element gets the same
//!   verdict in its batch as alone;
//! * accounting: the batch is either one corrupt-batch rejection (with a batch
//!   code) or one outcome per element (a valid event or a record code), and
//!   the elements are disjoint, ordered slices of the payload; `empty_batch`
//!   exactly when the batch is only JSON whitespace, `not_utf8` exactly when
//!   it is not UTF-8 (unless empty, oversized or behind a UTF-8 BOM);
//! * limits only turn elements into `oversized`: the same batch under no limits
//!   has the same elements and, for those within the limits, the same outcomes;
//!   an element is over a limit exactly when an independent measure says so;
//! * a valid event obeys every rule, and its fields equal what serde_json reads
//!   from the same record;
//! * differential: `parse_batch` accepts exactly what serde_json accepts as an
//!   array of values (`Vec<Box<RawValue>>`), with the same element texts, and a
//!   truncated array is `truncated_json` exactly when serde_json hits the end.
//!   A batch behind a UTF-8 byte order mark must be `not_json` (our documented
//!   choice; serde_json refuses it too), and past 128 levels of nesting, where
//!   serde_json gives up, nothing is compared.

use std::collections::BTreeMap;

use serde_json::value::RawValue;

use crate::event::{
    is_country_code, is_uuid, parse_batch, validate_record, ErrorCode, Limits, Rejection,
    ValidEvent, EVENT_TYPES, KNOWN_FIELDS,
};

/// Tight limits, so that small fuzz inputs reach every `oversized` branch.
pub const TIGHT: Limits = Limits {
    max_message_bytes: 2048,
    max_record_bytes: 64,
    max_depth: 3,
    max_string_bytes: 16,
};

/// Codes a whole batch may be refused with.
const BATCH_CODES: [ErrorCode; 6] = [
    ErrorCode::EmptyBatch,
    ErrorCode::NotUtf8,
    ErrorCode::TruncatedJson,
    ErrorCode::NotJson,
    ErrorCode::NotArray,
    ErrorCode::Oversized,
];

/// What the decoder makes of one batch, routed as the consumer's
/// `decode_batch` routes it: one corrupt batch, or one outcome per element.
#[derive(Debug)]
pub enum Decoded<'a> {
    Corrupt(Rejection),
    Elements(Vec<(&'a str, Result<ValidEvent<'a>, Rejection>)>),
}

/// Decodes `payload` under `limits` the way the consumer does.
pub fn decode<'a>(payload: &'a [u8], limits: &Limits) -> Decoded<'a> {
    match parse_batch(payload, limits) {
        Err(rejection) => Decoded::Corrupt(rejection),
        Ok(batch) => Decoded::Elements(
            batch
                .elements
                .iter()
                .map(|e| (e.text, ValidEvent::decode(&batch, e)))
                .collect(),
        ),
    }
}

/// Checks every invariant above on `payload`; the error says which one broke.
pub fn check_decoder_invariants(payload: &[u8]) -> Result<(), String> {
    // A record given alone, whatever its text, is judged without a panic too.
    if let Ok(text) = std::str::from_utf8(payload) {
        if let Err(r) = validate_record(text) {
            if BATCH_CODES.contains(&r.code) {
                return Err(format!("record rejected with a batch code: {r:?}"));
            }
        }
    }
    let free = decode(payload, &Limits::NONE);
    check_accounting(payload, &free, &Limits::NONE)?;
    check_alone_as_in_a_batch(&free)?;
    for limits in [Limits::default(), TIGHT] {
        let limited = decode(payload, &limits);
        check_accounting(payload, &limited, &limits)?;
        check_limits_only_add_oversized(payload, &free, &limited, &limits)?;
    }
    check_against_serde_json(payload, &free)
}

/// An element of a batch and the same text given alone get the same verdict
/// (the batch lists members while splitting, a record alone is scanned anew).
fn check_alone_as_in_a_batch(decoded: &Decoded) -> Result<(), String> {
    if let Decoded::Elements(elements) = decoded {
        for (text, outcome) in elements {
            let alone = validate_record(text);
            if &alone != outcome {
                return Err(format!(
                    "{text:?} in a batch: {outcome:?}, alone: {alone:?}"
                ));
            }
        }
    }
    Ok(())
}

fn check_accounting(payload: &[u8], decoded: &Decoded, limits: &Limits) -> Result<(), String> {
    let elements = match decoded {
        Decoded::Corrupt(r) => {
            if !BATCH_CODES.contains(&r.code) || r.message.is_empty() {
                return Err(format!(
                    "corrupt batch with a record code or no message: {r:?}"
                ));
            }
            if r.code == ErrorCode::Oversized {
                return Ok(());
            }
            // Empty means only JSON whitespace, which is all the scanner skips.
            let empty = payload.iter().all(|b| b" \t\n\r".contains(b));
            if empty != (r.code == ErrorCode::EmptyBatch) {
                return Err(format!("{} for a batch that is empty: {empty}", r.code));
            }
            let utf8 = std::str::from_utf8(payload).is_ok();
            let bom = payload.starts_with(b"\xEF\xBB\xBF");
            if !empty && !bom && utf8 == (r.code == ErrorCode::NotUtf8) {
                return Err(format!("{} for a batch that is UTF-8: {utf8}", r.code));
            }
            return Ok(());
        }
        Decoded::Elements(elements) => elements,
    };
    let base = payload.as_ptr() as usize;
    let mut end = 0;
    let (mut valid, mut invalid) = (0, 0);
    for (i, (text, outcome)) in elements.iter().enumerate() {
        let start = (text.as_ptr() as usize).wrapping_sub(base);
        if start < end || start + text.len() > payload.len() {
            return Err(format!(
                "element {i} is not after its predecessor in the payload"
            ));
        }
        end = start + text.len();
        let trimmed = text.trim_matches([' ', '\t', '\n', '\r']);
        if text.is_empty() || trimmed.len() != text.len() {
            return Err(format!(
                "element {i} is empty or has whitespace around it: {text:?}"
            ));
        }
        match outcome {
            Ok(event) => {
                check_valid_event(text, event).map_err(|e| format!("element {i}: {e}"))?;
                valid += 1;
            }
            Err(r) => {
                let record_code = r.code == ErrorCode::Oversized
                    || (!BATCH_CODES.contains(&r.code) && ErrorCode::ALL.contains(&r.code));
                if !record_code || r.message.is_empty() {
                    return Err(format!("element {i} rejected with a batch code: {r:?}"));
                }
                if r.code == ErrorCode::Oversized && *limits == Limits::NONE {
                    return Err(format!("element {i} oversized under no limits"));
                }
                invalid += 1;
            }
        }
    }
    if valid + invalid != elements.len() {
        return Err(format!(
            "{valid} valid + {invalid} invalid for {} elements",
            elements.len()
        ));
    }
    Ok(())
}

/// The rules of a valid event hold, and serde_json reads the same fields.
fn check_valid_event(text: &str, event: &ValidEvent) -> Result<(), String> {
    let rules = is_uuid(&event.event_id)
        && event.user_id > 0
        && EVENT_TYPES.contains(&event.event_type)
        && event.country.as_deref().is_none_or(is_country_code)
        && (event.event_type == "purchase")
            == event.amount.is_some_and(|a| a.is_finite() && a >= 0.0);
    if !rules {
        return Err(format!("accepted an event that breaks a rule: {event:?}"));
    }
    let members = match serde_json::from_str::<BTreeMap<String, Box<RawValue>>>(text) {
        Ok(members) => members,
        Err(e) if e.to_string().contains("recursion limit") => return Ok(()),
        Err(e) => return Err(format!("accepted a record serde_json cannot read: {e}")),
    };
    let string = |name: &str| -> Option<String> {
        let raw = members.get(name)?;
        serde_json::from_str::<Option<String>>(raw.get()).ok()?
    };
    let raw = |name: &str| members.get(name).map(|r| r.get());
    let same = string("event_id").as_deref() == Some(&*event.event_id)
        && raw("user_id").and_then(|r| r.parse::<i64>().ok()) == Some(event.user_id)
        && string("event_type").as_deref() == Some(event.event_type)
        && string("page").as_deref() == Some(&*event.page)
        && string("country").as_deref() == event.country.as_deref()
        && match event.amount {
            Some(a) => raw("amount").and_then(|r| r.parse::<f64>().ok()) == Some(a),
            None => raw("amount").is_none_or(|r| r == "null"),
        };
    if !same {
        return Err(format!(
            "fields differ from serde_json's reading: {event:?}"
        ));
    }
    let expected: BTreeMap<&str, &str> = members
        .iter()
        .filter(|(k, _)| !KNOWN_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v.get()))
        .collect();
    let extra = match &event.extra {
        None => BTreeMap::new(),
        Some(extra) => serde_json::from_str::<BTreeMap<String, Box<RawValue>>>(extra)
            .map_err(|e| format!("extra {extra:?} is not a JSON object: {e}"))?,
    };
    let got: BTreeMap<&str, &str> = extra.iter().map(|(k, v)| (k.as_str(), v.get())).collect();
    if got != expected {
        return Err(format!(
            "extra fields {got:?} are not the unknown members {expected:?}"
        ));
    }
    Ok(())
}

fn check_limits_only_add_oversized(
    payload: &[u8],
    free: &Decoded,
    limited: &Decoded,
    limits: &Limits,
) -> Result<(), String> {
    match (free, limited) {
        (_, Decoded::Corrupt(r)) if r.code == ErrorCode::Oversized => {
            if payload.len() <= limits.max_message_bytes {
                return Err(format!(
                    "batch of {} bytes refused as oversized",
                    payload.len()
                ));
            }
        }
        _ if payload.len() > limits.max_message_bytes => {
            return Err(format!(
                "batch of {} bytes not refused as oversized",
                payload.len()
            ));
        }
        (Decoded::Corrupt(a), Decoded::Corrupt(b)) => {
            if a != b {
                return Err(format!(
                    "limits changed the batch's rejection: {a:?} vs {b:?}"
                ));
            }
        }
        (Decoded::Elements(a), Decoded::Elements(b)) => {
            if a.len() != b.len() {
                return Err("limits changed the number of elements".into());
            }
            for (i, ((text_a, out_a), (text_b, out_b))) in a.iter().zip(b).enumerate() {
                if text_a != text_b {
                    return Err(format!("limits changed element {i}'s text"));
                }
                let (depth, longest) = measure(text_a);
                let over = text_a.len() > limits.max_record_bytes
                    || depth > limits.max_depth
                    || longest > limits.max_string_bytes;
                let oversized = matches!(out_b, Err(r) if r.code == ErrorCode::Oversized);
                if over != oversized {
                    return Err(format!(
                        "element {i} (bytes {}, depth {depth}, longest string {longest}) \
                         oversized: {oversized}, expected {over}",
                        text_a.len()
                    ));
                }
                if !over && out_a != out_b {
                    return Err(format!("limits changed element {i}'s outcome"));
                }
            }
        }
        _ => return Err("limits changed whether the batch is corrupt".into()),
    }
    Ok(())
}

/// Nesting depth and longest string (bytes as written, without quotes) of
/// valid JSON text: a plain measure, independent of the scanner's.
fn measure(text: &str) -> (usize, usize) {
    let (mut depth, mut max_depth, mut longest) = (0usize, 0, 0);
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                max_depth = max_depth.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'"' => {
                let mut len = 0;
                while let Some(c) = bytes.next() {
                    match c {
                        b'"' => break,
                        b'\\' => {
                            bytes.next();
                            len += 2;
                        }
                        _ => len += 1,
                    }
                }
                longest = longest.max(len);
            }
            _ => {}
        }
    }
    (max_depth, longest)
}

fn check_against_serde_json(payload: &[u8], free: &Decoded) -> Result<(), String> {
    let theirs = serde_json::from_slice::<Vec<Box<RawValue>>>(payload);
    if let Err(e) = &theirs {
        if e.to_string().contains("recursion limit exceeded") {
            return Ok(());
        }
    }
    if payload.starts_with(b"\xEF\xBB\xBF") {
        // Our documented choice: RFC 8259 §8.1 says a JSON text must not begin
        // with a BOM (a parser *may* ignore one; we do not, nor does serde_json).
        return match free {
            Decoded::Corrupt(r) if r.code == ErrorCode::NotJson => Ok(()),
            _ => Err("a batch with a UTF-8 BOM was not refused as not_json".into()),
        };
    }
    match (free, &theirs) {
        (Decoded::Elements(ours), Ok(theirs)) => {
            let ours: Vec<&str> = ours.iter().map(|(text, _)| *text).collect();
            let theirs: Vec<&str> = theirs.iter().map(|r| r.get()).collect();
            if ours != theirs {
                return Err(format!(
                    "elements differ from serde_json's: {ours:?} vs {theirs:?}"
                ));
            }
        }
        (Decoded::Corrupt(r), Err(e)) => {
            let array = payload
                .iter()
                .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
                == Some(&b'[');
            let truncated = r.code == ErrorCode::TruncatedJson;
            let eof = e.classify() == serde_json::error::Category::Eof;
            // serde_json reports some truncations as a syntax error at the last
            // byte (`[1.` is an "invalid number"): that is the end too.
            let mut lines = payload.split(|b| *b == b'\n');
            let at_end = e.line() == lines.clone().count()
                && e.column() == lines.next_back().map_or(0, <[u8]>::len);
            // And it says "EOF" for a `\u` escape with fewer than four bytes
            // left, whatever they are (`"\u]` cannot be completed: not_json).
            let short_escape = payload[payload.len().saturating_sub(5)..]
                .windows(2)
                .any(|w| w == b"\\u");
            let agree = if truncated {
                eof || at_end
            } else {
                !eof || short_escape
            };
            if array && r.code != ErrorCode::NotUtf8 && !agree {
                return Err(format!(
                    "we say {} ({}), serde_json says {e}",
                    r.code, r.message
                ));
            }
        }
        (Decoded::Corrupt(r), Ok(_)) => {
            return Err(format!(
                "refused what serde_json accepts: {} ({})",
                r.code, r.message
            ))
        }
        (Decoded::Elements(_), Err(e)) => {
            return Err(format!("accepted what serde_json refuses: {e}"))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measure_counts_depth_and_strings_as_written() {
        assert_eq!(measure(r#"{"a\"b":[1,{"c":"]]"}]}"#), (3, 4));
        assert_eq!(measure("7"), (0, 0));
    }

    #[test]
    fn holds_on_a_few_batches() {
        let good = r#"{"event_id":"0b6f9a3e-2a7c-4c4e-9d8e-5d0b8a1f2c3d","user_id":1,"event_type":"click","event_ts":"2026-11-22T10:00:00Z","page":"/","x":[1e999,"\ud800"]}"#;
        for payload in [
            format!("[{good}, 7, {{}}]"),
            format!("[{good}"),
            format!("\u{feff}[{good}]"),
            "[[[[[[]]]]]]".into(),
            String::new(),
        ] {
            assert_eq!(
                check_decoder_invariants(payload.as_bytes()),
                Ok(()),
                "{payload}"
            );
        }
        assert!(matches!(
            decode(format!("[{good}]").as_bytes(), &Limits::NONE),
            Decoded::Elements(e) if e[0].1.is_ok()
        ));
    }
}
