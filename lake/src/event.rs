//! The event contract (DESIGN §3): field rules, the stable error codes, and the
//! validation of one record of a batch.
//!
//! Validation works on the record's raw JSON text so that a dead letter can keep
//! it byte for byte, and so that numbers are judged on their exact spelling
//! (`1.0` is not an integer `user_id`, `9223372036854775808` is out of range).

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Datelike, Timelike};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The Kafka header (and S3 metadata key) that carries a batch's id.
pub const BATCH_ID_HEADER: &str = "batch-id";

/// The event types a valid record may carry.
pub const EVENT_TYPES: [&str; 4] = ["page_view", "click", "add_to_cart", "purchase"];

/// Whether a dead letter is a whole batch or one record of a readable batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    CorruptBatch,
    InvalidRecord,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::CorruptBatch => "corrupt_batch",
            ErrorKind::InvalidRecord => "invalid_record",
        }
    }
}

/// Stable, machine-readable reasons for a dead letter. The strings are part of
/// the lake's contract: dashboards and alerts group by them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorCode {
    // corrupt batches
    EmptyBatch,
    NotUtf8,
    TruncatedJson,
    NotJson,
    NotArray,
    Oversized,
    // invalid records
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
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 16] = [
        ErrorCode::EmptyBatch,
        ErrorCode::NotUtf8,
        ErrorCode::TruncatedJson,
        ErrorCode::NotJson,
        ErrorCode::NotArray,
        ErrorCode::Oversized,
        ErrorCode::NotObject,
        ErrorCode::MissingField,
        ErrorCode::WrongType,
        ErrorCode::DuplicateField,
        ErrorCode::BadUuid,
        ErrorCode::BadTimestamp,
        ErrorCode::UnknownEventType,
        ErrorCode::OutOfRange,
        ErrorCode::BadCountry,
        ErrorCode::UnexpectedField,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::EmptyBatch => "empty_batch",
            ErrorCode::NotUtf8 => "not_utf8",
            ErrorCode::TruncatedJson => "truncated_json",
            ErrorCode::NotJson => "not_json",
            ErrorCode::NotArray => "not_array",
            ErrorCode::Oversized => "oversized",
            ErrorCode::NotObject => "not_object",
            ErrorCode::MissingField => "missing_field",
            ErrorCode::WrongType => "wrong_type",
            ErrorCode::DuplicateField => "duplicate_field",
            ErrorCode::BadUuid => "bad_uuid",
            ErrorCode::BadTimestamp => "bad_timestamp",
            ErrorCode::UnknownEventType => "unknown_event_type",
            ErrorCode::OutOfRange => "out_of_range",
            ErrorCode::BadCountry => "bad_country",
            ErrorCode::UnexpectedField => "unexpected_field",
        }
    }

    pub fn kind(self) -> ErrorKind {
        match self {
            ErrorCode::EmptyBatch
            | ErrorCode::NotUtf8
            | ErrorCode::TruncatedJson
            | ErrorCode::NotJson
            | ErrorCode::NotArray
            | ErrorCode::Oversized => ErrorKind::CorruptBatch,
            _ => ErrorKind::InvalidRecord,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a record or batch was rejected: a stable code and a message naming the
/// field and the problem.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub code: ErrorCode,
    pub message: String,
}

impl Rejection {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Rejection {
            code,
            message: message.into(),
        }
    }
}

/// A record that passed every rule, ready to become a bronze row.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidEvent {
    pub event_id: String,
    pub user_id: i64,
    pub event_type: &'static str,
    /// Microseconds since the Unix epoch, UTC.
    pub event_ts_micros: i64,
    pub page: String,
    pub country: Option<String>,
    pub amount: Option<f64>,
    /// Unknown extra fields as a JSON object text, kept rather than dropped.
    pub extra: Option<String>,
}

impl ValidEvent {
    /// Days since the Unix epoch of `event_ts` in UTC: the bronze partition.
    pub fn event_day(&self) -> i32 {
        self.event_ts_micros.div_euclid(86_400_000_000) as i32
    }
}

/// The batch as its elements' exact JSON texts, or why it is corrupt.
pub fn parse_batch(payload: &[u8], max_message_bytes: usize) -> Result<Vec<&RawValue>, Rejection> {
    if payload.len() > max_message_bytes {
        return Err(Rejection::new(
            ErrorCode::Oversized,
            format!(
                "batch is {} bytes, over the limit of {max_message_bytes} (MAX_MESSAGE_BYTES)",
                payload.len()
            ),
        ));
    }
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Err(Rejection::new(
            ErrorCode::EmptyBatch,
            format!("batch is empty ({} bytes of whitespace)", payload.len()),
        ));
    }
    let text = std::str::from_utf8(payload).map_err(|e| {
        Rejection::new(
            ErrorCode::NotUtf8,
            format!(
                "batch is not valid UTF-8: invalid byte at position {}",
                e.valid_up_to()
            ),
        )
    })?;
    serde_json::from_str::<Vec<&RawValue>>(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Eof => Rejection::new(
            ErrorCode::TruncatedJson,
            format!("batch ends before its JSON is complete ({e})"),
        ),
        serde_json::error::Category::Data => {
            let first = text.trim_start().as_bytes().first().copied();
            let what = match first {
                Some(b'{') => "an object",
                Some(b'"') => "a string",
                Some(b't') | Some(b'f') => "a boolean",
                Some(b'n') => "null",
                _ => "a number",
            };
            Rejection::new(
                ErrorCode::NotArray,
                format!("batch is {what}, not a JSON array of events"),
            )
        }
        _ => Rejection::new(ErrorCode::NotJson, format!("batch is not valid JSON ({e})")),
    })
}

/// Validates one element of a batch, given its exact JSON text.
pub fn validate_record(raw: &RawValue) -> Result<ValidEvent, Rejection> {
    let text = raw.get();
    if !text.starts_with('{') {
        return Err(Rejection::new(
            ErrorCode::NotObject,
            format!("record is a JSON {}, not an object", json_type(text)),
        ));
    }
    let fields: Fields = serde_json::from_str(text).map_err(|e| {
        // The batch parsed, so the element is well-formed JSON; the only
        // failure left is the duplicate-key check done while reading it.
        Rejection::new(ErrorCode::DuplicateField, e.to_string())
    })?;

    let event_id = required_string(&fields.event_id, "event_id")?;
    if !is_uuid(&event_id) {
        return Err(Rejection::new(
            ErrorCode::BadUuid,
            format!("event_id {:?} is not a UUID", clip(&event_id)),
        ));
    }
    let user_id = user_id(&fields.user_id)?;
    let event_type_text = required_string(&fields.event_type, "event_type")?;
    let event_type = EVENT_TYPES
        .iter()
        .copied()
        .find(|t| *t == event_type_text)
        .ok_or_else(|| {
            Rejection::new(
                ErrorCode::UnknownEventType,
                format!(
                    "event_type {:?} is not one of {}",
                    clip(&event_type_text),
                    EVENT_TYPES.join(", ")
                ),
            )
        })?;
    let event_ts = required_string(&fields.event_ts, "event_ts")?;
    let event_ts_micros = parse_timestamp(&event_ts)?;
    let page = required_string(&fields.page, "page")?;
    let country = optional_string(&fields.country, "country")?;
    if let Some(c) = &country {
        if !is_country_code(c) {
            return Err(Rejection::new(
                ErrorCode::BadCountry,
                format!("country {:?} is not an ISO 3166-1 alpha-2 code", clip(c)),
            ));
        }
    }
    let amount = amount(&fields.amount, event_type)?;
    let extra = if fields.extra.is_empty() {
        None
    } else {
        let mut object = String::from("{");
        for (i, (key, value)) in fields.extra.iter().enumerate() {
            if i > 0 {
                object.push(',');
            }
            object.push_str(&serde_json::to_string(key.as_ref()).unwrap_or_default());
            object.push(':');
            object.push_str(value.get());
        }
        object.push('}');
        Some(object)
    };
    Ok(ValidEvent {
        event_id,
        user_id,
        event_type,
        event_ts_micros,
        page,
        country,
        amount,
        extra,
    })
}

/// The fields of one record, each still as raw JSON; unknown ones in order.
#[derive(Default)]
struct Fields<'a> {
    event_id: Option<&'a RawValue>,
    user_id: Option<&'a RawValue>,
    event_type: Option<&'a RawValue>,
    event_ts: Option<&'a RawValue>,
    page: Option<&'a RawValue>,
    country: Option<&'a RawValue>,
    amount: Option<&'a RawValue>,
    extra: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
                let mut fields = Fields::default();
                while let Some(Key(key)) = map.next_key()? {
                    let value: &'de RawValue = map.next_value()?;
                    let slot = match key.as_ref() {
                        "event_id" => &mut fields.event_id,
                        "user_id" => &mut fields.user_id,
                        "event_type" => &mut fields.event_type,
                        "event_ts" => &mut fields.event_ts,
                        "page" => &mut fields.page,
                        "country" => &mut fields.country,
                        "amount" => &mut fields.amount,
                        _ => {
                            if fields.extra.iter().any(|(k, _)| *k == key) {
                                return Err(de::Error::custom(format!(
                                    "field `{}` appears more than once",
                                    clip(&key)
                                )));
                            }
                            fields.extra.push((key, value));
                            continue;
                        }
                    };
                    if slot.is_some() {
                        return Err(de::Error::custom(format!(
                            "field `{key}` appears more than once"
                        )));
                    }
                    *slot = Some(value);
                }
                Ok(fields)
            }
        }
        deserializer.deserialize_map(FieldsVisitor)
    }
}

/// An object key, borrowed from the input when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

fn json_type(text: &str) -> &'static str {
    match text.as_bytes().first() {
        Some(b'{') => "object",
        Some(b'[') => "array",
        Some(b'"') => "string",
        Some(b't') | Some(b'f') => "boolean",
        Some(b'n') => "null",
        _ => "number",
    }
}

fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

fn required<'a>(raw: &Option<&'a RawValue>, field: &str) -> Result<&'a RawValue, Rejection> {
    match raw {
        None => Err(Rejection::new(
            ErrorCode::MissingField,
            format!("required field `{field}` is missing"),
        )),
        Some(r) if is_null(r) => Err(Rejection::new(
            ErrorCode::MissingField,
            format!("required field `{field}` is null"),
        )),
        Some(r) => Ok(r),
    }
}

fn string_value(raw: &RawValue, field: &str) -> Result<String, Rejection> {
    if !raw.get().starts_with('"') {
        return Err(Rejection::new(
            ErrorCode::WrongType,
            format!(
                "field `{field}` must be a string, got a {}",
                json_type(raw.get())
            ),
        ));
    }
    serde_json::from_str(raw.get())
        .map_err(|e| Rejection::new(ErrorCode::WrongType, format!("field `{field}`: {e}")))
}

fn required_string(raw: &Option<&RawValue>, field: &str) -> Result<String, Rejection> {
    string_value(required(raw, field)?, field)
}

fn optional_string(raw: &Option<&RawValue>, field: &str) -> Result<Option<String>, Rejection> {
    match raw {
        Some(r) if !is_null(r) => string_value(r, field).map(Some),
        _ => Ok(None),
    }
}

fn user_id(raw: &Option<&RawValue>) -> Result<i64, Rejection> {
    let text = required(raw, "user_id")?.get();
    let first = text.as_bytes().first().copied().unwrap_or(b' ');
    if !(first == b'-' || first.is_ascii_digit()) {
        return Err(Rejection::new(
            ErrorCode::WrongType,
            format!(
                "field `user_id` must be an integer, got a {}",
                json_type(text)
            ),
        ));
    }
    if text.contains(['.', 'e', 'E']) {
        return Err(Rejection::new(
            ErrorCode::WrongType,
            format!("field `user_id` must be an integer, got {}", clip(text)),
        ));
    }
    let value: i64 = text.parse().map_err(|_| {
        Rejection::new(
            ErrorCode::OutOfRange,
            format!(
                "field `user_id` {} does not fit in a 64-bit integer",
                clip(text)
            ),
        )
    })?;
    if value <= 0 {
        return Err(Rejection::new(
            ErrorCode::OutOfRange,
            format!("field `user_id` must be > 0, got {value}"),
        ));
    }
    Ok(value)
}

fn amount(raw: &Option<&RawValue>, event_type: &str) -> Result<Option<f64>, Rejection> {
    if event_type != "purchase" {
        return match raw {
            Some(r) if !is_null(r) => Err(Rejection::new(
                ErrorCode::UnexpectedField,
                format!("field `amount` is only allowed on purchase events, not on {event_type}"),
            )),
            _ => Ok(None),
        };
    }
    let text = required(raw, "amount")?.get();
    let value: f64 = match text.as_bytes().first() {
        Some(b'-') | Some(b'0'..=b'9') => text.parse().map_err(|_| {
            Rejection::new(
                ErrorCode::WrongType,
                format!("field `amount` {} is not a number", clip(text)),
            )
        })?,
        _ => {
            return Err(Rejection::new(
                ErrorCode::WrongType,
                format!("field `amount` must be a number, got a {}", json_type(text)),
            ))
        }
    };
    if !value.is_finite() || value < 0.0 {
        return Err(Rejection::new(
            ErrorCode::OutOfRange,
            format!(
                "field `amount` must be a finite number >= 0, got {}",
                clip(text)
            ),
        ));
    }
    Ok(Some(value))
}

/// RFC 3339 with an explicit offset, years 1..=9999, no leap second; returns
/// microseconds since the epoch in UTC.
pub fn parse_timestamp(text: &str) -> Result<i64, Rejection> {
    let bad = |why: &str| {
        Rejection::new(
            ErrorCode::BadTimestamp,
            format!("field `event_ts` {:?} {why}", clip(text)),
        )
    };
    let parsed = DateTime::parse_from_rfc3339(text)
        .map_err(|e| bad(&format!("is not an RFC 3339 timestamp with offset ({e})")))?;
    if parsed.year() < 1 {
        return Err(bad("has a year before 0001"));
    }
    if parsed.nanosecond() >= 1_000_000_000 {
        return Err(bad("is a leap second, which UTC timestamps cannot hold"));
    }
    Ok(parsed.timestamp_micros())
}

/// `8-4-4-4-12` hexadecimal digits, any case.
pub fn is_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Officially assigned ISO 3166-1 alpha-2 codes.
const COUNTRY_CODES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

pub fn is_country_code(text: &str) -> bool {
    text.len() == 2 && COUNTRY_CODES.split(' ').any(|c| c == text)
}

/// Keeps messages short when they quote user data.
fn clip(text: &str) -> Cow<'_, str> {
    const MAX: usize = 64;
    if text.len() <= MAX {
        return Cow::Borrowed(text);
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &text[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: &str) -> Result<ValidEvent, Rejection> {
        let raw: Box<RawValue> = serde_json::from_str(json).expect("test JSON parses");
        validate_record(&raw)
    }

    const FIELDS: [(&str, &str); 7] = [
        ("event_id", r#""0b6f9a3e-2a7c-4c4e-9d8e-5d0b8a1f2c3d""#),
        ("user_id", "42"),
        ("event_type", r#""purchase""#),
        ("event_ts", r#""2026-11-22T10:00:00.123456+01:00""#),
        ("page", r#""/cart""#),
        ("country", r#""DE""#),
        ("amount", "19.5"),
    ];

    /// The good record with `field` set to the JSON text `value` (`None`: removed),
    /// built as text so numbers like `1e999` stay as written.
    fn edit(field: &str, value: Option<&str>) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut seen = false;
        for (k, v) in FIELDS {
            if k == field {
                seen = true;
                if let Some(value) = value {
                    parts.push(format!("\"{k}\":{value}"));
                }
            } else {
                parts.push(format!("\"{k}\":{v}"));
            }
        }
        if !seen {
            if let Some(value) = value {
                parts.push(format!("\"{field}\":{value}"));
            }
        }
        format!("{{{}}}", parts.join(","))
    }

    fn good() -> String {
        edit("", None)
    }

    fn with(field: &str, value: &str) -> String {
        edit(field, Some(value))
    }

    fn without(field: &str) -> String {
        edit(field, None)
    }

    fn code(json: &str) -> ErrorCode {
        check(json).expect_err("record must be invalid").code
    }

    #[test]
    fn valid_record_converts_to_utc_micros() {
        let e = check(&good()).expect("valid");
        assert_eq!(e.user_id, 42);
        assert_eq!(e.event_type, "purchase");
        // 10:00 at +01:00 is 09:00 UTC.
        assert_eq!(e.event_ts_micros, 1_795_338_000_123_456);
        assert_eq!(e.amount, Some(19.5));
        assert_eq!(e.country.as_deref(), Some("DE"));
        assert_eq!(e.extra, None);
        assert_eq!(e.event_day(), 20_779);
    }

    #[test]
    fn unknown_fields_are_kept_verbatim() {
        let e = check(&with("utm", r#"{"src":"ad","n":[1,2]}"#)).expect("valid");
        assert_eq!(
            e.extra.as_deref(),
            Some(r#"{"utm":{"src":"ad","n":[1,2]}}"#)
        );
    }

    #[test]
    fn each_rule_has_its_code() {
        assert_eq!(code("[1]"), ErrorCode::NotObject);
        assert_eq!(code("3"), ErrorCode::NotObject);
        for f in [
            "event_id",
            "user_id",
            "event_type",
            "event_ts",
            "page",
            "amount",
        ] {
            assert_eq!(code(&without(f)), ErrorCode::MissingField, "{f}");
            assert_eq!(code(&with(f, "null")), ErrorCode::MissingField, "{f}");
        }
        assert_eq!(code(&with("event_id", "\"nope\"")), ErrorCode::BadUuid);
        assert_eq!(code(&with("event_id", "7")), ErrorCode::WrongType);
        assert_eq!(code(&with("user_id", "\"42\"")), ErrorCode::WrongType);
        assert_eq!(code(&with("user_id", "4.5")), ErrorCode::WrongType);
        assert_eq!(code(&with("user_id", "1e3")), ErrorCode::WrongType);
        assert_eq!(code(&with("user_id", "0")), ErrorCode::OutOfRange);
        assert_eq!(code(&with("user_id", "-3")), ErrorCode::OutOfRange);
        assert_eq!(
            code(&with("user_id", "9223372036854775808")),
            ErrorCode::OutOfRange
        );
        assert_eq!(
            code(&with("event_type", "\"refund\"")),
            ErrorCode::UnknownEventType
        );
        assert_eq!(code(&with("event_type", "true")), ErrorCode::WrongType);
        assert_eq!(
            code(&with("event_ts", "\"2026-11-22T10:00:00\"")),
            ErrorCode::BadTimestamp
        );
        assert_eq!(
            code(&with("event_ts", "\"2026-02-30T10:00:00Z\"")),
            ErrorCode::BadTimestamp
        );
        assert_eq!(
            code(&with("event_ts", "\"2016-12-31T23:59:60Z\"")),
            ErrorCode::BadTimestamp
        );
        assert_eq!(
            code(&with("event_ts", "\"0000-01-01T00:00:00Z\"")),
            ErrorCode::BadTimestamp
        );
        assert_eq!(code(&with("event_ts", "1700000000")), ErrorCode::WrongType);
        assert_eq!(code(&with("page", "[\"/\"]")), ErrorCode::WrongType);
        assert_eq!(code(&with("country", "\"XX\"")), ErrorCode::BadCountry);
        assert_eq!(code(&with("country", "\"de\"")), ErrorCode::BadCountry);
        assert_eq!(code(&with("amount", "-1")), ErrorCode::OutOfRange);
        assert_eq!(code(&with("amount", "\"9.99\"")), ErrorCode::WrongType);
        assert_eq!(code(&with("amount", "1e999")), ErrorCode::OutOfRange);
        let click = with("event_type", "\"click\"");
        assert_eq!(code(&click), ErrorCode::UnexpectedField);
        let click_no_amount = click.replace(",\"amount\":19.5", "");
        assert!(check(&click_no_amount).is_ok(), "{click_no_amount}");
        assert!(check(&click.replace("19.5", "null")).is_ok());
        assert_eq!(
            code(&good().replace("\"page\"", "\"user_id\":1,\"page\"")),
            ErrorCode::DuplicateField
        );
        assert_eq!(
            code(&with("x", "1").replace('}', ",\"x\":2}")),
            ErrorCode::DuplicateField
        );
    }

    #[test]
    fn messages_name_the_field() {
        let r = check(&with("user_id", "0")).expect_err("invalid");
        assert!(r.message.contains("user_id"), "{}", r.message);
        let r = check(&without("page")).expect_err("invalid");
        assert_eq!(r.message, "required field `page` is missing");
    }

    #[test]
    fn codes_are_unique_and_kinds_split() {
        let mut names: Vec<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        assert_eq!(ErrorCode::Oversized.kind(), ErrorKind::CorruptBatch);
        assert_eq!(ErrorCode::BadUuid.kind(), ErrorKind::InvalidRecord);
    }
}
