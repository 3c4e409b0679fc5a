//! The bad-input corpus: named batches, each with where it must land.
//!
//! A corrupt batch becomes one dead letter holding the whole payload (or, over
//! `MAX_MESSAGE_BYTES`, its first 64 KiB). A record case is sent as
//! `[valid, record, valid]`: the record is a dead letter with the expected code
//! and its exact text, or (for the tricky-but-valid ones) a bronze row, and its
//! two valid siblings reach bronze either way. The limits are the consumer's
//! defaults: 16 MiB per message, 1 MiB per record, 32 levels, 64 KiB strings.

use lake::event::OVERSIZED_PREFIX_BYTES;

/// One named input and its expected outcome.
#[derive(Debug, Clone)]
pub struct Case {
    /// Stable and unique; used as the batch id.
    pub name: String,
    pub payload: Vec<u8>,
    pub expect: Expect,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// One `corrupt_batch` dead letter with this `error_code`.
    CorruptBatch(&'static str),
    /// The middle element of three is an `invalid_record` dead letter with this
    /// `error_code` and `record` as its raw payload.
    InvalidRecord { code: &'static str, record: String },
    /// All three elements load; the middle one has this `page` and `extra`.
    Valid { page: String, extra: Option<String> },
    /// An empty array: nothing is written anywhere.
    Nothing,
}

impl Case {
    /// The raw payload its dead letter must hold, if it has one.
    pub fn dead_letter_raw(&self) -> Option<&[u8]> {
        match &self.expect {
            Expect::CorruptBatch("oversized") => {
                Some(&self.payload[..self.payload.len().min(OVERSIZED_PREFIX_BYTES)])
            }
            Expect::CorruptBatch(_) => Some(&self.payload),
            Expect::InvalidRecord { record, .. } => Some(record.as_bytes()),
            Expect::Valid { .. } | Expect::Nothing => None,
        }
    }

    /// Rows the batch puts in bronze.
    pub fn bronze_rows(&self) -> usize {
        match self.expect {
            Expect::InvalidRecord { .. } => 2,
            Expect::Valid { .. } => 3,
            Expect::CorruptBatch(_) | Expect::Nothing => 0,
        }
    }
}

/// A valid click whose event_id is unique to `case` and `slot`.
fn sibling(case: usize, slot: usize) -> String {
    format!(
        r#"{{"event_id":"00000000-0000-4000-8000-{case:08}{slot:04}","user_id":7,"event_type":"click","event_ts":"2026-11-22T10:00:00Z","page":"/sibling"}}"#
    )
}

/// The fields of a valid purchase, as JSON texts, in order.
const PURCHASE: [(&str, &str); 7] = [
    ("event_id", r#""3f2c6a1e-8b4d-4f1a-9c2e-7d5b0a9e4c11""#),
    ("user_id", "42"),
    ("event_type", r#""purchase""#),
    ("event_ts", r#""2026-11-22T10:00:00.123456+01:00""#),
    ("page", r#""/checkout""#),
    ("country", r#""DE""#),
    ("amount", "19.99"),
];

/// The purchase with `field` set to the JSON text `value`, or removed (`None`);
/// a field not in the purchase is appended.
fn purchase_with(field: &str, value: Option<&str>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut seen = false;
    for (name, json) in PURCHASE {
        if name == field {
            seen = true;
            if let Some(value) = value {
                parts.push(format!("\"{name}\":{value}"));
            }
        } else {
            parts.push(format!("\"{name}\":{json}"));
        }
    }
    if let (false, Some(value)) = (seen, value) {
        parts.push(format!("\"{field}\":{value}"));
    }
    format!("{{{}}}", parts.join(","))
}

fn with(field: &str, value: &str) -> String {
    purchase_with(field, Some(value))
}

fn without(field: &str) -> String {
    purchase_with(field, None)
}

fn purchase() -> String {
    purchase_with("", None)
}

/// Every case. Sizes are real: the largest payload is 99 MB.
pub fn cases() -> Vec<Case> {
    let mut corpus = Corpus::default();
    corrupt_batches(&mut corpus);
    invalid_records(&mut corpus);
    valid_edges(&mut corpus);
    corpus.cases
}

#[derive(Default)]
struct Corpus {
    cases: Vec<Case>,
}

impl Corpus {
    fn corrupt(&mut self, name: &str, payload: impl Into<Vec<u8>>, code: &'static str) {
        self.push(name, payload.into(), Expect::CorruptBatch(code));
    }

    fn invalid(&mut self, name: &str, record: impl Into<String>, code: &'static str) {
        let record = record.into();
        let payload = self.between_siblings(&record);
        self.push(name, payload, Expect::InvalidRecord { code, record });
    }

    fn valid(&mut self, name: &str, record: impl Into<String>, page: &str, extra: Option<&str>) {
        let payload = self.between_siblings(&record.into());
        let expect = Expect::Valid {
            page: page.into(),
            extra: extra.map(String::from),
        };
        self.push(name, payload, expect);
    }

    fn between_siblings(&self, record: &str) -> Vec<u8> {
        let n = self.cases.len();
        format!("[{},{record},{}]", sibling(n, 0), sibling(n, 2)).into_bytes()
    }

    fn push(&mut self, name: &str, payload: Vec<u8>, expect: Expect) {
        assert!(
            self.cases.iter().all(|c| c.name != name),
            "case {name} twice"
        );
        self.cases.push(Case {
            name: name.into(),
            payload,
            expect,
        });
    }
}

fn corrupt_batches(c: &mut Corpus) {
    let good = format!("[{}]", purchase());
    // Truncated at every structural position of a batch.
    let cuts = [
        ("after-open-bracket", "["),
        ("after-open-brace", "[{"),
        ("inside-field-name", "[{\"event_"),
        ("after-field-name", "[{\"event_id\""),
        ("after-colon", "[{\"event_id\":"),
        ("inside-string", "[{\"event_id\":\"3f2c"),
        ("inside-escape", "[{\"page\":\"a\\"),
        ("inside-unicode-escape", "[{\"page\":\"\\u00"),
        ("inside-number", "[{\"user_id\":12"),
        ("inside-fraction", "[{\"amount\":1."),
        ("inside-exponent", "[{\"amount\":1e"),
        ("inside-literal", "[{\"country\":nu"),
        ("after-value", "[{\"user_id\":1"),
        ("after-comma", "[{\"user_id\":1,"),
        ("after-first-element", "[{}"),
        ("after-element-comma", "[{},"),
        ("inside-nested-array", "[{\"tags\":[1,2"),
    ];
    for (name, text) in cuts {
        c.corrupt(&format!("truncated-{name}"), text, "truncated_json");
    }
    c.corrupt(
        "truncated-last-byte",
        &good.as_bytes()[..good.len() - 1],
        "truncated_json",
    );
    c.corrupt(
        "truncated-10000-open-brackets",
        "[".repeat(10_000),
        "truncated_json",
    );

    c.corrupt("empty-payload", "", "empty_batch");
    c.corrupt("whitespace-only", " \n\t\r ", "empty_batch");

    c.corrupt("trailing-garbage", format!("{good}xyz"), "not_json");
    c.corrupt("two-arrays", format!("{good}{good}"), "not_json");
    c.corrupt("trailing-comma", format!("[{},]", purchase()), "not_json");
    c.corrupt("leading-comma", format!("[,{}]", purchase()), "not_json");
    c.corrupt(
        "missing-comma",
        format!("[{} {}]", purchase(), purchase()),
        "not_json",
    );
    c.corrupt(
        "json-lines",
        format!("{}\n{}\n", purchase(), purchase()),
        "not_json",
    );
    c.corrupt("nan", good.replace("19.99", "NaN"), "not_json");
    c.corrupt("infinity", good.replace("19.99", "Infinity"), "not_json");
    c.corrupt(
        "negative-infinity",
        good.replace("19.99", "-Infinity"),
        "not_json",
    );
    c.corrupt("leading-zero", good.replace("42", "042"), "not_json");
    c.corrupt("plus-sign", good.replace("42", "+42"), "not_json");
    c.corrupt("bare-fraction", good.replace("19.99", ".99"), "not_json");
    c.corrupt("hex-number", good.replace("42", "0x2A"), "not_json");
    c.corrupt("single-quotes", good.replace('"', "'"), "not_json");
    c.corrupt(
        "unquoted-names",
        good.replace("\"page\"", "page"),
        "not_json",
    );
    c.corrupt(
        "comment",
        format!("[/* events */{}]", purchase()),
        "not_json",
    );
    c.corrupt("bad-escape", good.replace("/checkout", "\\x41"), "not_json");
    c.corrupt(
        "short-unicode-escape",
        good.replace("/checkout", "\\u12\""),
        "not_json",
    );
    c.corrupt(
        "raw-newline-in-string",
        good.replace("/checkout", "a\nb"),
        "not_json",
    );
    c.corrupt(
        "raw-tab-in-string",
        good.replace("/checkout", "a\tb"),
        "not_json",
    );
    c.corrupt(
        "raw-nul-in-string",
        good.replace("/checkout", "a\0b"),
        "not_json",
    );
    c.corrupt(
        "nul-between-elements",
        format!("[{},\0{}]", purchase(), purchase()),
        "not_json",
    );
    c.corrupt("trailing-nul", format!("{good}\0"), "not_json");
    c.corrupt(
        "python-repr",
        "[{'event_id': None, 'amount': 1.5}]",
        "not_json",
    );
    c.corrupt(
        "utf8-bom",
        [&b"\xEF\xBB\xBF"[..], good.as_bytes()].concat(),
        "not_json",
    );

    c.corrupt("utf16le-bom", utf16(&good, true, true), "not_utf8");
    c.corrupt("utf16be-bom", utf16(&good, false, true), "not_utf8");
    c.corrupt("utf16le-no-bom", utf16(&good, true, false), "not_json");
    c.corrupt(
        "invalid-utf8-in-string",
        splice(&good, "/checkout", b"/\xFF"),
        "not_utf8",
    );
    c.corrupt(
        "latin1-text",
        splice(&good, "/checkout", b"/caf\xE9"),
        "not_utf8",
    );
    c.corrupt(
        "invalid-utf8-outside-strings",
        [good.as_bytes(), b"\xC3"].concat(),
        "not_utf8",
    );
    c.corrupt("overlong-utf8", &b"[\"\xC0\xAF\"]"[..], "not_utf8");
    c.corrupt(
        "utf8-encoded-surrogate",
        &b"[\"\xED\xA0\x80\"]"[..],
        "not_utf8",
    );
    c.corrupt("gzip", gzip_like(&good), "not_utf8");
    c.corrupt(
        "zstd-magic",
        [&b"\x28\xB5\x2F\xFD"[..], good.as_bytes()].concat(),
        "not_utf8",
    );
    c.corrupt("random-bytes", pseudo_random(512, 7), "not_utf8");

    c.corrupt("object-not-array", purchase(), "not_array");
    c.corrupt("string-not-array", "\"events\"", "not_array");
    c.corrupt("number-not-array", "42", "not_array");
    c.corrupt("true-not-array", "true", "not_array");
    c.corrupt("null-not-array", "null", "not_array");

    // 99 MB of valid-looking events (the mock broker, like Kafka's
    // socket.request.max.bytes, refuses a request of 100 MB or more), and a
    // batch just over the 16 MiB limit.
    c.corrupt("99-mb-message", big_batch(99_000_000), "oversized");
    c.corrupt("just-over-limit", big_batch((16 << 20) + 1), "oversized");
}

fn invalid_records(c: &mut Corpus) {
    c.invalid("number-element", "12", "not_object");
    c.invalid("string-element", "\"event\"", "not_object");
    c.invalid("null-element", "null", "not_object");
    c.invalid("true-element", "true", "not_object");
    c.invalid(
        "nested-array-element",
        format!("[{}]", purchase()),
        "not_object",
    );

    for field in [
        "event_id",
        "user_id",
        "event_type",
        "event_ts",
        "page",
        "amount",
    ] {
        c.invalid(&format!("missing-{field}"), without(field), "missing_field");
        c.invalid(
            &format!("null-{field}"),
            with(field, "null"),
            "missing_field",
        );
    }
    c.invalid("empty-object", "{}", "missing_field");

    // Wrong JSON types for every field.
    let wrong_for_strings = [
        ("number", "17"),
        ("bool", "true"),
        ("object", "{\"a\":1}"),
        ("array", "[\"x\"]"),
    ];
    for field in ["event_id", "event_type", "event_ts", "page", "country"] {
        for (kind, value) in wrong_for_strings {
            c.invalid(
                &format!("{field}-as-{kind}"),
                with(field, value),
                "wrong_type",
            );
        }
    }
    let wrong_for_numbers = [
        ("string", "\"42\""),
        ("bool", "false"),
        ("object", "{}"),
        ("array", "[42]"),
    ];
    for field in ["user_id", "amount"] {
        for (kind, value) in wrong_for_numbers {
            c.invalid(
                &format!("{field}-as-{kind}"),
                with(field, value),
                "wrong_type",
            );
        }
    }
    c.invalid("user-id-fraction", with("user_id", "4.5"), "wrong_type");
    c.invalid(
        "user-id-integral-fraction",
        with("user_id", "42.0"),
        "wrong_type",
    );
    c.invalid("user-id-exponent", with("user_id", "1e3"), "wrong_type");
    c.invalid(
        "user-id-above-i64",
        with("user_id", "9223372036854775808"),
        "out_of_range",
    );
    c.invalid(
        "user-id-below-i64",
        with("user_id", "-9223372036854775809"),
        "out_of_range",
    );
    c.invalid("user-id-zero", with("user_id", "0"), "out_of_range");
    c.invalid("user-id-negative", with("user_id", "-5"), "out_of_range");
    c.invalid("amount-negative", with("amount", "-0.01"), "out_of_range");
    c.invalid(
        "amount-overflows-double",
        with("amount", "1e999"),
        "out_of_range",
    );
    c.invalid(
        "amount-on-click",
        with("event_type", "\"click\""),
        "unexpected_field",
    );

    c.invalid(
        "event-id-not-uuid",
        with("event_id", "\"not-a-uuid\""),
        "bad_uuid",
    );
    c.invalid(
        "event-id-no-dashes",
        with("event_id", "\"3f2c6a1e8b4d4f1a9c2e7d5b0a9e4c11\""),
        "bad_uuid",
    );
    c.invalid(
        "event-id-braces",
        with("event_id", "\"{3f2c6a1e-8b4d-4f1a-9c2e-7d5b0a9e4c11}\""),
        "bad_uuid",
    );
    c.invalid("event-id-empty", with("event_id", "\"\""), "bad_uuid");
    c.invalid(
        "event-id-non-hex",
        with("event_id", "\"3f2c6a1e-8b4d-4f1a-9c2e-7d5b0a9e4c1g\""),
        "bad_uuid",
    );

    for (name, ts) in [
        ("ts-without-offset", "2026-11-22T10:00:00"),
        ("ts-date-only", "2026-11-22"),
        ("ts-epoch-string", "1795338000"),
        ("ts-february-30", "2026-02-30T10:00:00Z"),
        ("ts-hour-25", "2026-11-22T25:00:00Z"),
        ("ts-month-13", "2026-13-01T00:00:00Z"),
        ("ts-leap-second", "2016-12-31T23:59:60Z"),
        ("ts-year-zero", "0000-01-01T00:00:00Z"),
        ("ts-offset-out-of-range", "2026-11-22T10:00:00+25:00"),
        ("ts-empty", ""),
    ] {
        c.invalid(
            name,
            with("event_ts", &format!("\"{ts}\"")),
            "bad_timestamp",
        );
    }

    c.invalid(
        "event-type-unknown",
        with("event_type", "\"refund\""),
        "unknown_event_type",
    );
    c.invalid(
        "event-type-wrong-case",
        with("event_type", "\"Purchase\""),
        "unknown_event_type",
    );
    c.invalid(
        "country-unassigned",
        with("country", "\"XX\""),
        "bad_country",
    );
    c.invalid(
        "country-lowercase",
        with("country", "\"de\""),
        "bad_country",
    );
    c.invalid("country-alpha3", with("country", "\"DEU\""), "bad_country");

    let duplicated = purchase().replace("\"page\"", "\"user_id\":43,\"page\"");
    c.invalid("duplicate-known-field", duplicated, "duplicate_field");
    let escaped_duplicate = purchase().replace("\"page\"", "\"\\u0075ser_id\":43,\"page\"");
    c.invalid(
        "duplicate-via-escaped-name",
        escaped_duplicate,
        "duplicate_field",
    );
    let extra_twice = with("utm", "1").replace('}', ",\"utm\":2}");
    c.invalid("duplicate-unknown-field", extra_twice, "duplicate_field");

    c.invalid(
        "lone-surrogate-in-page",
        with("page", "\"\\ud800\""),
        "bad_string",
    );
    c.invalid(
        "lone-low-surrogate-in-name",
        with("\\udc00", "1"),
        "bad_string",
    );

    // Limits: 10 MB string, 10,000 levels, a record over 1 MiB, a 100 KiB string.
    let ten_mb = format!("\"{}\"", "x".repeat(10_000_000));
    c.invalid("10-mb-string-field", with("page", &ten_mb), "oversized");
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    c.invalid(
        "10000-levels-in-a-field",
        with("nested", &deep),
        "oversized",
    );
    c.invalid("10000-levels-element", deep, "oversized");
    let many = (0..90_000)
        .map(|i| format!("\"f{i}\":{i}"))
        .collect::<Vec<_>>()
        .join(",");
    c.invalid(
        "record-over-1-mib",
        with("many", &format!("{{{many}}}")),
        "oversized",
    );
    let long = format!("\"{}\"", "y".repeat(100 << 10));
    c.invalid("string-over-64-kib", with("note", &long), "oversized");
    let long_name = format!("\"{}\"", "k".repeat(100 << 10));
    c.invalid(
        "field-name-over-64-kib",
        purchase().replacen('{', &format!("{{{long_name}:1,"), 1),
        "oversized",
    );
}

fn valid_edges(c: &mut Corpus) {
    c.valid(
        "unknown-fields-kept",
        with("utm", "{\"src\":\"ad\",\"n\":[1,2.5e3,null]}"),
        "/checkout",
        Some("{\"utm\":{\"src\":\"ad\",\"n\":[1,2.5e3,null]}}"),
    );
    c.valid(
        "escaped-nul-in-page",
        with("page", "\"a\\u0000b\""),
        "a\0b",
        None,
    );
    c.valid(
        "unicode-escapes-in-page",
        with("page", "\"/caf\\u00e9/\\ud83d\\ude00\""),
        "/caf\u{e9}/\u{1F600}",
        None,
    );
    c.valid(
        "raw-utf8-in-page",
        with("page", "\"/straße/日本\""),
        "/straße/日本",
        None,
    );
    c.valid(
        "escaped-known-name",
        purchase().replace("\"page\"", "\"\\u0070age\""),
        "/checkout",
        None,
    );
    c.valid(
        "whitespace-everywhere",
        purchase()
            .replace(",\"", " ,\n\t\"")
            .replace("\":", "\"\r\n: "),
        "/checkout",
        None,
    );
    c.valid("null-country", with("country", "null"), "/checkout", None);
    c.valid("no-country", without("country"), "/checkout", None);
    c.valid(
        "max-user-id",
        with("user_id", "9223372036854775807"),
        "/checkout",
        None,
    );
    c.valid("zero-amount", with("amount", "0"), "/checkout", None);
    c.valid(
        "integer-amount-with-exponent",
        with("amount", "1E2"),
        "/checkout",
        None,
    );
    c.valid(
        "nanosecond-timestamp",
        with("event_ts", "\"2026-11-22T10:00:00.123456789Z\""),
        "/checkout",
        None,
    );
    c.valid(
        "lowercase-t-and-z",
        with("event_ts", "\"2026-11-22t10:00:00z\""),
        "/checkout",
        None,
    );
    c.valid("empty-page", with("page", "\"\""), "", None);
    c.valid(
        "depth-32-extra",
        with("nested", &format!("{}{}", "[".repeat(31), "]".repeat(31))),
        "/checkout",
        Some(&format!(
            "{{\"nested\":{}{}}}",
            "[".repeat(31),
            "]".repeat(31)
        )),
    );
    c.push("empty-array", b"[]".to_vec(), Expect::Nothing);
    c.push(
        "empty-array-with-whitespace",
        b" [ \n ] ".to_vec(),
        Expect::Nothing,
    );
}

/// `text` with its first `needle` replaced by raw `bytes`.
fn splice(text: &str, needle: &str, bytes: &[u8]) -> Vec<u8> {
    let at = text.find(needle).expect("needle in text");
    [
        &text.as_bytes()[..at],
        bytes,
        &text.as_bytes()[at + needle.len()..],
    ]
    .concat()
}

/// `text` as UTF-16, optionally with its byte order mark.
fn utf16(text: &str, little_endian: bool, bom: bool) -> Vec<u8> {
    let units = bom
        .then_some(0xFEFF_u16)
        .into_iter()
        .chain(text.encode_utf16());
    units
        .flat_map(|u| {
            if little_endian {
                u.to_le_bytes()
            } else {
                u.to_be_bytes()
            }
        })
        .collect()
}

/// A gzip member header followed by the text stored uncompressed: enough to
/// look exactly like what a producer with compression turned on sends.
fn gzip_like(text: &str) -> Vec<u8> {
    let mut bytes = vec![0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff];
    bytes.extend_from_slice(text.as_bytes());
    bytes
}

/// Deterministic noise (xorshift) with the top bit set on every byte, so it
/// is never UTF-8.
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.max(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state as u8) | 0x80
        })
        .collect()
}

/// A batch of valid clicks of at least `size` bytes.
fn big_batch(size: usize) -> Vec<u8> {
    let record = sibling(999_999, 1);
    let mut bytes = Vec::with_capacity(size + record.len() + 2);
    bytes.push(b'[');
    while bytes.len() < size {
        if bytes.len() > 1 {
            bytes.push(b',');
        }
        bytes.extend_from_slice(record.as_bytes());
    }
    bytes.push(b']');
    bytes
}
