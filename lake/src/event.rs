//! Batches and their verdicts (docs/DESIGN.md §3): splitting a batch into its
//! records under the input limits, the stable error codes, and the built-in
//! events contract seen as a typed [`ValidEvent`].
//!
//! Records are judged by a contract's [`crate::decoder::Decoder`] on their raw
//! JSON text, so that a dead letter can keep it byte for byte, and so that
//! numbers are judged on their exact spelling (`1.0` is not an integer
//! `user_id`, `9223372036854775808` is out of range).

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use chrono::{DateTime, Datelike, Timelike};

use crate::decoder::{Datum, Decoder, Record};
use crate::json::{ScanError, Scanner, Shape};

/// The Kafka header (and S3 metadata key) that carries a batch's id.
pub const BATCH_ID_HEADER: &str = "batch-id";

/// The fields the built-in events contract names (contracts/events.schema.json,
/// held equal by a test); any other field is kept in `extra`.
pub const KNOWN_FIELDS: [&str; 7] = [
    "event_id",
    "user_id",
    "event_type",
    "event_ts",
    "page",
    "country",
    "amount",
];

/// The event types a valid record may carry.
pub const EVENT_TYPES: [&str; 4] = ["page_view", "click", "add_to_cart", "purchase"];

/// Whether a dead letter is a whole batch or one record of a readable batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    CorruptBatch,
    InvalidRecord,
}

impl ErrorKind {
    /// A rejection of a whole batch (no record index) or of one record: the
    /// same code, `oversized` say, can be either.
    pub fn at(record_index: Option<u32>) -> ErrorKind {
        match record_index {
            None => ErrorKind::CorruptBatch,
            Some(_) => ErrorKind::InvalidRecord,
        }
    }

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
    BadString,
    NotInEnum,
    TooShort,
    TooLong,
    PatternMismatch,
    BadFormat,
    /// A contract's own code (`x-error-code`), interned once at start.
    Custom(&'static str),
}

impl ErrorCode {
    /// The built-in codes (a contract may add its own, [`ErrorCode::Custom`]).
    pub const ALL: [ErrorCode; 22] = [
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
        ErrorCode::BadString,
        ErrorCode::NotInEnum,
        ErrorCode::TooShort,
        ErrorCode::TooLong,
        ErrorCode::PatternMismatch,
        ErrorCode::BadFormat,
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
            ErrorCode::BadString => "bad_string",
            ErrorCode::NotInEnum => "not_in_enum",
            ErrorCode::TooShort => "too_short",
            ErrorCode::TooLong => "too_long",
            ErrorCode::PatternMismatch => "pattern_mismatch",
            ErrorCode::BadFormat => "bad_format",
            ErrorCode::Custom(code) => code,
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

/// A record that passed the built-in events contract, as typed fields: what
/// tests and tools that know the events read (the consumer itself appends a
/// [`Record`]'s datums to its columns, for any contract).
#[derive(Debug, Clone, PartialEq)]
pub struct ValidEvent<'a> {
    pub event_id: Cow<'a, str>,
    pub user_id: i64,
    pub event_type: &'static str,
    /// Microseconds since the Unix epoch, UTC.
    pub event_ts_micros: i64,
    pub page: Cow<'a, str>,
    pub country: Option<Cow<'a, str>>,
    pub amount: Option<f64>,
    /// Unknown extra fields as a JSON object text, kept rather than dropped.
    pub extra: Option<String>,
}

impl<'a> ValidEvent<'a> {
    /// The verdict of the built-in events contract on one element of `batch`.
    pub fn decode(batch: &Batch<'a>, element: &Element<'a>) -> Result<ValidEvent<'a>, Rejection> {
        let mut record = Record::default();
        Decoder::events().decode(batch, element, &mut record)?;
        Ok(ValidEvent::from_record(&record))
    }

    /// The typed view of a record the events decoder accepted.
    pub fn from_record(record: &Record<'a>) -> ValidEvent<'a> {
        let text = |d: &Datum<'a>| match d {
            Datum::Str(s) => Some(s.clone()),
            _ => None,
        };
        let d = record.datums();
        let event_type = match &d[2] {
            Datum::Str(t) => EVENT_TYPES
                .iter()
                .copied()
                .find(|known| known == t)
                .expect("the contract's enum is EVENT_TYPES"),
            _ => unreachable!("event_type is a required string"),
        };
        ValidEvent {
            event_id: text(&d[0]).expect("required string"),
            user_id: match d[1] {
                Datum::Int(id) => id,
                _ => unreachable!("user_id is a required integer"),
            },
            event_type,
            event_ts_micros: match d[3] {
                Datum::Micros(ts) => ts,
                _ => unreachable!("event_ts is a required date-time"),
            },
            page: text(&d[4]).expect("required string"),
            country: text(&d[5]),
            amount: match d[6] {
                Datum::Float(a) => Some(a),
                _ => None,
            },
            extra: text(&d[7]).map(Cow::into_owned),
        }
    }

    /// The same event owning its strings.
    pub fn into_owned(self) -> ValidEvent<'static> {
        ValidEvent {
            event_id: Cow::Owned(self.event_id.into_owned()),
            page: Cow::Owned(self.page.into_owned()),
            country: self.country.map(|c| Cow::Owned(c.into_owned())),
            ..self
        }
    }

    /// Days since the Unix epoch of `event_ts` in UTC: the bronze partition.
    pub fn event_day(&self) -> i32 {
        self.event_ts_micros.div_euclid(86_400_000_000) as i32
    }
}

/// How large one input may be. Anything over a limit is an `oversized` dead
/// letter: a whole batch over `max_message_bytes`, or one record over any of
/// the others (its valid siblings still reach bronze).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    pub max_message_bytes: usize,
    pub max_record_bytes: usize,
    /// Nesting levels of one record; the record object itself is level 1.
    pub max_depth: usize,
    /// Longest string or field name, in bytes as written.
    pub max_string_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 16 << 20,
            max_record_bytes: 1 << 20,
            max_depth: 32,
            max_string_bytes: 64 << 10,
        }
    }
}

impl Limits {
    /// No limits: for tools that only check whether a batch parses.
    pub const NONE: Limits = Limits {
        max_message_bytes: usize::MAX,
        max_record_bytes: usize::MAX,
        max_depth: usize::MAX,
        max_string_bytes: usize::MAX,
    };

    fn check_record(&self, text: &str, shape: Shape) -> Option<Rejection> {
        let over = |what: String| Some(Rejection::new(ErrorCode::Oversized, what));
        if text.len() > self.max_record_bytes {
            return over(format!(
                "record is {} bytes, over the limit of {} (MAX_RECORD_BYTES)",
                text.len(),
                self.max_record_bytes
            ));
        }
        if shape.depth > self.max_depth {
            return over(format!(
                "record nests {} levels deep, over the limit of {} (MAX_NESTING_DEPTH)",
                shape.depth, self.max_depth
            ));
        }
        if shape.longest_string > self.max_string_bytes {
            return over(format!(
                "record has a string of {} bytes, over the limit of {} (MAX_STRING_BYTES)",
                shape.longest_string, self.max_string_bytes
            ));
        }
        None
    }
}

/// One element of a readable batch: its exact JSON text, and the limit it
/// breaks if any (then it is not validated further).
#[derive(Debug, Clone, PartialEq)]
pub struct Element<'a> {
    pub text: &'a str,
    pub over_limit: Option<Rejection>,
    /// Where its members are in the batch's member list, if it is an object.
    members: Option<Range<usize>>,
    /// It has no escape anywhere, so each of its strings is the text between
    /// its quotes (the scanner saw no backslash): no string needs decoding.
    pub(crate) plain: bool,
}

impl<'a> Element<'a> {
    /// Its members as (name, value) texts, if it is an object.
    pub(crate) fn members<'b>(&self, batch: &'b Batch<'a>) -> Option<&'b [(&'a str, &'a str)]> {
        self.members.clone().map(|range| &batch.members[range])
    }
}

/// A readable batch: its elements, and every object element's members as
/// (name, value) texts, listed once while splitting the batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch<'a> {
    pub elements: Vec<Element<'a>>,
    members: Vec<(&'a str, &'a str)>,
}

/// How much of a batch over `MAX_MESSAGE_BYTES` its dead letter keeps: enough
/// to recognise it, while memory stays bounded. The whole batch stays at its
/// source (Kafka offset or raw object key), which the lineage names.
pub const OVERSIZED_PREFIX_BYTES: usize = 64 << 10;

/// Why a batch of `size` bytes is refused without being read.
pub fn oversized_batch(size: u64, max_message_bytes: usize) -> Rejection {
    Rejection::new(
        ErrorCode::Oversized,
        format!("batch is {size} bytes, over the limit of {max_message_bytes} (MAX_MESSAGE_BYTES)"),
    )
}

/// The batch as its elements, or why it is corrupt.
pub fn parse_batch<'a>(payload: &'a [u8], limits: &Limits) -> Result<Batch<'a>, Rejection> {
    if payload.len() > limits.max_message_bytes {
        return Err(oversized_batch(
            payload.len() as u64,
            limits.max_message_bytes,
        ));
    }
    // JSON whitespace only: a form feed is not whitespace to the scanner either.
    if payload
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        return Err(Rejection::new(
            ErrorCode::EmptyBatch,
            format!("batch is empty ({} bytes of whitespace)", payload.len()),
        ));
    }
    if payload.starts_with(b"\xEF\xBB\xBF") {
        return Err(Rejection::new(
            ErrorCode::NotJson,
            "batch starts with a UTF-8 byte order mark, which JSON text must not have",
        ));
    }
    if payload.starts_with(b"\xFF\xFE") || payload.starts_with(b"\xFE\xFF") {
        return Err(Rejection::new(
            ErrorCode::NotUtf8,
            "batch starts with a UTF-16 byte order mark: it is UTF-16, not UTF-8",
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
    let broken = |e: ScanError| match e {
        ScanError::Eof => Rejection::new(
            ErrorCode::TruncatedJson,
            format!(
                "batch ends before its JSON is complete (after {} bytes)",
                text.len()
            ),
        ),
        ScanError::Unexpected(at) => Rejection::new(
            ErrorCode::NotJson,
            format!(
                "batch is not valid JSON: unexpected {} at byte {at}",
                describe_byte(text, at)
            ),
        ),
    };
    let mut scanner = Scanner::new(text);
    scanner.skip_whitespace();
    if scanner.peek() != Some(b'[') {
        // A complete value of another type is the wrong shape; anything else is broken JSON.
        scanner.value().map_err(broken)?;
        end_of_text(&mut scanner).map_err(broken)?;
        return Err(Rejection::new(
            ErrorCode::NotArray,
            format!(
                "batch is a JSON {}, not an array of events",
                json_type(text.trim_start())
            ),
        ));
    }
    scanner.pos += 1;
    let mut batch = Batch {
        elements: Vec::new(),
        members: Vec::new(),
    };
    scanner.skip_whitespace();
    if scanner.peek() == Some(b']') {
        scanner.pos += 1;
    } else {
        loop {
            scanner.skip_whitespace();
            let first_member = batch.members.len();
            scanner.escaped = false;
            let ((text, shape), members) = if scanner.peek() == Some(b'{') {
                let object = scanner.object(&mut batch.members).map_err(broken)?;
                (object, Some(first_member..batch.members.len()))
            } else {
                (scanner.value().map_err(broken)?, None)
            };
            let over_limit = limits.check_record(text, shape);
            if batch.elements.is_empty() {
                reserve_like_first(&mut batch, payload.len(), text.len());
            }
            batch.elements.push(Element {
                text,
                over_limit,
                members,
                plain: !scanner.escaped,
            });
            scanner.skip_whitespace();
            match scanner.peek() {
                Some(b',') => scanner.pos += 1,
                Some(b']') => {
                    scanner.pos += 1;
                    break;
                }
                Some(_) => return Err(broken(ScanError::Unexpected(scanner.pos))),
                None => return Err(broken(ScanError::Eof)),
            }
        }
    }
    end_of_text(&mut scanner).map_err(broken)?;
    Ok(batch)
}

/// Reserves room for a whole batch of elements like its first one (and its
/// comma), members included, with a quarter to spare for longer records.
/// Growing the two lists by doubling from empty, batch after batch, was 2 %
/// of the files path's instructions (callgrind), most of it copying them.
/// A tiny first record cannot make it reserve more than five elements per
/// 64 bytes of a payload that `MAX_MESSAGE_BYTES` already bounds.
fn reserve_like_first(batch: &mut Batch, payload_bytes: usize, first_bytes: usize) {
    let elements = payload_bytes / (first_bytes + 1).max(16) * 5 / 4 + 1;
    batch.elements.reserve(elements);
    batch.members.reserve(elements * batch.members.len());
}

/// Only whitespace may follow the batch's value.
fn end_of_text(scanner: &mut Scanner) -> Result<(), ScanError> {
    scanner.skip_whitespace();
    if scanner.at_end() {
        Ok(())
    } else {
        Err(ScanError::Unexpected(scanner.pos))
    }
}

/// The character at byte `at`, quoted, or its hex value when it is a control byte.
fn describe_byte(text: &str, at: usize) -> String {
    match text[at..].chars().next() {
        Some(c) if !c.is_control() => format!("{c:?}"),
        Some(c) => format!("control character U+{:04X}", c as u32),
        None => "end".into(),
    }
}

/// Judges one record given alone as its exact JSON text under the built-in
/// events contract.
pub fn validate_record(text: &str) -> Result<ValidEvent<'_>, Rejection> {
    let mut record = Record::default();
    Decoder::events().decode_text(text, &mut record)?;
    Ok(ValidEvent::from_record(&record))
}

pub(crate) fn not_an_object(text: &str) -> Rejection {
    Rejection::new(
        ErrorCode::NotObject,
        format!("record is a JSON {}, not an object", json_type(text)),
    )
}

/// The content of a JSON string given with its quotes; borrowed unless it has
/// escapes. Fails only on a `\u` escape that is half of a surrogate pair.
pub(crate) fn unquote(raw: &str) -> Result<Cow<'_, str>, String> {
    let inner = &raw[1..raw.len() - 1];
    // A fold rather than `contains`: no call and no early exit for the short
    // names and values of an event (`contains` was 7 % of decoding).
    if !inner.bytes().fold(false, |seen, b| seen | (b == b'\\')) {
        return Ok(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(raw)
        .map(Cow::Owned)
        .map_err(|e| format!("is not valid Unicode ({e})"))
}

pub(crate) fn json_type(text: &str) -> &'static str {
    match text.as_bytes().first() {
        Some(b'{') => "object",
        Some(b'[') => "array",
        Some(b'"') => "string",
        Some(b't') | Some(b'f') => "boolean",
        Some(b'n') => "null",
        _ => "number",
    }
}

/// RFC 3339 with an explicit offset, years 1..=9999, no leap second; returns
/// microseconds since the epoch in UTC, or why the text is not one.
pub fn parse_timestamp(text: &str) -> Result<i64, String> {
    match common_timestamp(text) {
        Some(micros) => Ok(micros),
        None => parse_any_timestamp(text),
    }
}

/// The shape producers write, `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`
/// with every part in range, read directly; `None` for anything else, which
/// chrono then judges (and explains). chrono's general parser was 5 % of the
/// consumer's time; a property test holds the two to the same results.
fn common_timestamp(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let number = |range: Range<usize>| -> Option<i64> {
        b.get(range)?.iter().try_fold(0i64, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    };
    if b.len() < 20 || [b[4], b[7], b[10], b[13], b[16]] != *b"--T::" {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let mut end = 19;
    let mut micros = 0;
    if b[end] == b'.' {
        end += 1;
        let digits = b[end..].iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=9).contains(&digits) {
            return None;
        }
        let nanos = number(end..end + digits)? * 10i64.pow(9 - digits as u32);
        micros = nanos / 1000;
        end += digits;
    }
    let offset_seconds = match &b[end..] {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (hours, minutes) = (number(end + 1..end + 3)?, number(end + 4..end + 6)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = hours * 3600 + minutes * 60;
            if *sign == b'-' {
                -seconds
            } else {
                seconds
            }
        }
        _ => return None,
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if year < 1
        || !(1..=12).contains(&month)
        || day < 1
        || day > month_days[month as usize - 1]
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_seconds;
    Some(seconds * 1_000_000 + micros)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Any RFC 3339 timestamp chrono reads, with the contract's extra rules.
fn parse_any_timestamp(text: &str) -> Result<i64, String> {
    // RFC 3339 lets applications use a space for the `T`; JSON Schema's
    // `date-time` (and so a contract) does not.
    if !matches!(text.as_bytes().get(10), Some(b'T' | b't')) {
        return Err(
            "is not an RFC 3339 timestamp with offset (no `T` between date and time)".into(),
        );
    }
    let parsed = DateTime::parse_from_rfc3339(text)
        .map_err(|e| format!("is not an RFC 3339 timestamp with offset ({e})"))?;
    if parsed.year() < 1 {
        return Err("has a year before 0001".into());
    }
    if parsed.nanosecond() >= 1_000_000_000 {
        return Err("is a leap second, which UTC timestamps cannot hold".into());
    }
    Ok(parsed.timestamp_micros())
}

/// `8-4-4-4-12` hexadecimal digits, any case.
pub fn is_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    // Each group checked without an early exit, so the loop has no branch per
    // byte (the per-byte version was half of `validate_record`'s own time).
    let hex = |group: &[u8]| group.iter().fold(true, |ok, b| ok & b.is_ascii_hexdigit());
    bytes.len() == 36
        && bytes[8] == b'-'
        && bytes[13] == b'-'
        && bytes[18] == b'-'
        && bytes[23] == b'-'
        && hex(&bytes[..8]) & hex(&bytes[9..13]) & hex(&bytes[14..18])
        && hex(&bytes[19..23]) & hex(&bytes[24..])
}

/// Officially assigned ISO 3166-1 alpha-2 codes.
pub const COUNTRY_CODES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// `COUNTRY_CODES` as a table indexed by the two letters: a lookup per record
/// instead of a scan of the list (it showed up at 6 % of the consumer's time).
static IS_COUNTRY: [bool; 26 * 26] = country_table();

const fn country_table() -> [bool; 26 * 26] {
    let codes = COUNTRY_CODES.as_bytes();
    let mut table = [false; 26 * 26];
    let mut i = 0;
    while i + 1 < codes.len() {
        table[(codes[i] - b'A') as usize * 26 + (codes[i + 1] - b'A') as usize] = true;
        i += 3;
    }
    table
}

pub fn is_country_code(text: &str) -> bool {
    match text.as_bytes() {
        [a @ b'A'..=b'Z', b @ b'A'..=b'Z'] => {
            IS_COUNTRY[(a - b'A') as usize * 26 + (b - b'A') as usize]
        }
        _ => false,
    }
}

/// Keeps messages short when they quote user data.
pub(crate) fn clip(text: &str) -> Cow<'_, str> {
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

    fn check(json: &str) -> Result<ValidEvent<'_>, Rejection> {
        serde_json::from_str::<serde::de::IgnoredAny>(json).expect("test JSON parses");
        validate_record(json)
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
        let good = good();
        let e = check(&good).expect("valid");
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
        let record = with("utm", r#"{"src":"ad","n":[1,2]}"#);
        let e = check(&record).expect("valid");
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
    fn only_json_whitespace_makes_an_empty_batch() {
        // Found by the fuzz target: `\x0c` (form feed) alone was `empty_batch`,
        // while `\x0c[]` is `not_json`; RFC 8259 whitespace has no form feed.
        let code = |p: &[u8]| {
            parse_batch(p, &Limits::NONE)
                .map(|_| ())
                .map_err(|r| r.code)
        };
        assert_eq!(code(b" \t\r\n"), Err(ErrorCode::EmptyBatch));
        assert_eq!(code(b"\x0c"), Err(ErrorCode::NotJson));
        assert_eq!(code(b" \x0c[]"), Err(ErrorCode::NotJson));
    }

    #[test]
    fn a_record_that_is_not_json_is_rejected_without_a_panic() {
        // Found by the fuzz target: a member name without its opening quote
        // made the name's slicing split a multi-byte character.
        for text in ["{é\":1}", "{a\":1}", "{", "{é"] {
            assert_eq!(
                validate_record(text).map_err(|r| r.code),
                Err(ErrorCode::NotObject),
                "{text}"
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(20_000))]

        /// The direct reading of the common shape gives chrono's result, and
        /// takes every well-formed timestamp of that shape. Parts run past
        /// their ranges (day 31 of every month, hour 24, offset 24:00, second
        /// 60, year 0) so the edges are exercised.
        #[test]
        fn common_timestamps_read_as_chrono_reads_them(
            year in 0i64..=9999, month in 0i64..=13, day in 0i64..=32,
            hour in 0i64..=24, minute in 0i64..=60, second in 0i64..=60,
            fraction in proptest::option::of("[0-9]{1,10}"),
            offset in proptest::option::of((proptest::bool::ANY, 0i64..=25, 0i64..=60)),
        ) {
            let mut text = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}");
            if let Some(fraction) = &fraction {
                text.push_str(&format!(".{fraction}"));
            }
            match offset {
                None => text.push('Z'),
                Some((east, h, m)) => text.push_str(&format!("{}{h:02}:{m:02}", if east { '+' } else { '-' })),
            }
            let chrono = parse_any_timestamp(&text).ok();
            let direct = common_timestamp(&text);
            if direct.is_some() {
                proptest::prop_assert_eq!(direct, chrono, "{}", text);
            }
            let in_shape = fraction.as_ref().is_none_or(|f| f.len() <= 9)
                && offset.is_none_or(|(_, h, m)| h <= 23 && m <= 59);
            if chrono.is_some() && in_shape && second < 60 {
                proptest::prop_assert!(direct.is_some(), "{} not read directly", text);
            }
        }
    }

    #[test]
    fn country_table_holds_exactly_the_list() {
        let listed: Vec<&str> = COUNTRY_CODES.split(' ').collect();
        assert_eq!(listed.len(), 249);
        for a in b'A'..=b'Z' {
            for b in b'A'..=b'Z' {
                let code = String::from_utf8(vec![a, b]).expect("ascii");
                assert_eq!(
                    is_country_code(&code),
                    listed.contains(&code.as_str()),
                    "{code}"
                );
            }
        }
        assert!(!is_country_code("de") && !is_country_code("DEU") && !is_country_code("D"));
    }

    #[test]
    fn codes_are_unique() {
        let mut names: Vec<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::ALL.len());
    }
}
