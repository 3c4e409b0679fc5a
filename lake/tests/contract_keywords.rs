//! Every keyword a contract may use (`lake::contract::VALIDATION_KEYWORDS`),
//! run through the contract decoder (`lake::decoder::Decoder`): for each, a
//! small table of values it accepts and of violations it refuses, each with
//! the error code it must get and the field path (`items[3].qty`: 0-based
//! indexes, dots between fields) its message must name. Then the datums a
//! valid record of a nested contract decodes to, and what `x-error-code`
//! renames and what it does not.
//!
//! Tables, not one test per case: a case is one line, and a failure names
//! the keyword, the record and what came out.

use std::borrow::Cow;

use lake::contract::Contract;
use lake::decoder::{Datum, Decoder, Record};
use lake::event::{parse_batch, Limits};
use serde_json::{json, Value};

/// A timestamp every record carries as its `event_time`.
const AT: &str = "2024-05-01T12:00:00Z";

/// The contract of table `t`: `at` (the event time) plus `properties`, with
/// `root` merged into the root schema (`required`, `if`, `$defs`, ...).
fn contract(properties: Value, root: Value) -> Decoder {
    let mut all = json!({"at": {"type": "string", "format": "date-time"}});
    all.as_object_mut()
        .expect("object")
        .extend(properties.as_object().expect("properties").clone());
    let mut schema = json!({
        "x-lakehouse": {"table": "t", "event_time": "at"},
        "type": "object",
        "properties": all,
        "required": ["at"],
    });
    for (keyword, value) in root.as_object().expect("root keywords") {
        if keyword == "required" {
            let required = schema["required"].as_array_mut().expect("array");
            required.extend(value.as_array().expect("names").iter().cloned());
        } else {
            schema[keyword] = value.clone();
        }
    }
    let text = schema.to_string();
    let compiled =
        Contract::parse("t.schema.json", text.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{text}"));
    Decoder::new(compiled)
}

/// A record of `members` (JSON text without braces) and the event time.
fn record(members: &str) -> String {
    match members {
        "" => format!(r#"{{"at":"{AT}"}}"#),
        _ => format!(r#"{{"at":"{AT}",{members}}}"#),
    }
}

/// Decodes `members` and checks the verdict: `None` accepted, or refused
/// with `code` and a message naming `path`.
fn judge(what: &str, decoder: &Decoder, members: &str, expected: Option<(&str, &str)>) {
    let text = record(members);
    let mut out = Record::default();
    let got = decoder.decode_text(&text, &mut out);
    match (expected, got) {
        (None, Ok(())) => {}
        (None, Err(e)) => panic!(
            "{what}: {text} must be accepted, got {} ({})",
            e.code, e.message
        ),
        (Some((code, _)), Ok(())) => panic!("{what}: {text} must be refused with {code}"),
        (Some((code, path)), Err(e)) => {
            assert_eq!(e.code.as_str(), code, "{what}: {text}: {}", e.message);
            assert!(
                path.is_empty() || e.message.contains(&format!("`{path}`")),
                "{what}: {text}: the message must name `{path}`: {}",
                e.message
            );
        }
    }
}

/// One keyword on a single field `v`: its subschema, values (JSON text)
/// it accepts, and values it refuses as (value, code, path in the message).
struct Field {
    keyword: &'static str,
    schema: Value,
    accepts: &'static [&'static str],
    refuses: &'static [(&'static str, &'static str, &'static str)],
}

fn field(
    keyword: &'static str,
    schema: Value,
    accepts: &'static [&'static str],
    refuses: &'static [(&'static str, &'static str, &'static str)],
) -> Field {
    Field {
        keyword,
        schema,
        accepts,
        refuses,
    }
}

/// Each case's `v` is required, so that `null` and absence are judged too.
fn check_fields(cases: Vec<Field>) {
    for case in cases {
        let decoder = contract(json!({"v": case.schema}), json!({"required": ["v"]}));
        let what = format!("{} {}", case.keyword, case.schema);
        for value in case.accepts {
            judge(&what, &decoder, &format!(r#""v":{value}"#), None);
        }
        for (value, code, path) in case.refuses {
            judge(
                &what,
                &decoder,
                &format!(r#""v":{value}"#),
                Some((code, path)),
            );
        }
    }
}

#[test]
fn type_keyword_one_type_or_one_type_and_null() {
    check_fields(vec![
        field(
            "type string",
            json!({"type": "string"}),
            &[r#""""#, r#""a""#, r#""\u00e9\n""#],
            &[
                ("1", "wrong_type", "v"),
                ("true", "wrong_type", "v"),
                ("[]", "wrong_type", "v"),
                ("{}", "wrong_type", "v"),
                ("null", "missing_field", "v"),
                (r#""\ud800""#, "bad_string", "v"),
            ],
        ),
        field(
            "type integer",
            json!({"type": "integer"}),
            &["0", "-0", "-9223372036854775808", "9223372036854775807"],
            &[
                ("1.0", "wrong_type", "v"),
                ("1e3", "wrong_type", "v"),
                ("1.5", "wrong_type", "v"),
                (r#""1""#, "wrong_type", "v"),
                ("9223372036854775808", "out_of_range", "v"),
                ("-9223372036854775809", "out_of_range", "v"),
                ("null", "missing_field", "v"),
            ],
        ),
        field(
            "type number",
            json!({"type": "number"}),
            &["0", "-1.5", "1e3", "2.5E-3", "9223372036854775808"],
            &[
                ("1e999", "out_of_range", "v"),
                ("-1e999", "out_of_range", "v"),
                (r#""1.5""#, "wrong_type", "v"),
                ("false", "wrong_type", "v"),
            ],
        ),
        field(
            "type boolean",
            json!({"type": "boolean"}),
            &["true", "false"],
            &[("0", "wrong_type", "v"), (r#""true""#, "wrong_type", "v")],
        ),
        field(
            "type object",
            json!({"type": "object"}),
            &["{}", r#"{"a":1}"#],
            &[("[]", "wrong_type", "v"), (r#""{}""#, "wrong_type", "v")],
        ),
        field(
            "type array",
            json!({"type": "array", "items": {"type": "integer"}}),
            &["[]", "[1, 2]"],
            &[("{}", "wrong_type", "v"), ("1", "wrong_type", "v")],
        ),
        field(
            "type null",
            json!({"type": "null"}),
            &["null"],
            &[("0", "wrong_type", "v"), (r#""""#, "wrong_type", "v")],
        ),
        field(
            "type [string, null]",
            json!({"type": ["string", "null"]}),
            &["null", r#""a""#],
            &[("1", "wrong_type", "v")],
        ),
        field(
            "type [null, integer]",
            json!({"type": ["null", "integer"]}),
            &["null", "7"],
            &[("7.5", "wrong_type", "v"), (r#""7""#, "wrong_type", "v")],
        ),
    ]);
    // Optional and not nullable: absent is fine, null is a wrong type.
    let decoder = contract(json!({"v": {"type": "integer"}}), json!({}));
    judge("optional integer", &decoder, "", None);
    judge(
        "optional integer",
        &decoder,
        r#""v":null"#,
        Some(("wrong_type", "v")),
    );
    judge(
        "required integer",
        &contract(
            json!({"v": {"type": "integer"}}),
            json!({"required": ["v"]}),
        ),
        "",
        Some(("missing_field", "v")),
    );
}

#[test]
fn value_keywords_enum_const_and_numeric_bounds() {
    check_fields(vec![
        field(
            "enum strings",
            json!({"type": "string", "enum": ["PAID", "a_value_longer_than_16_bytes"]}),
            &[
                r#""PAID""#,
                r#""\u0050AID""#,
                r#""a_value_longer_than_16_bytes""#,
            ],
            &[
                (r#""paid""#, "not_in_enum", "v"),
                (r#""a_value_longer_than_16_bytez""#, "not_in_enum", "v"),
                ("1", "wrong_type", "v"),
            ],
        ),
        field(
            "enum integers",
            json!({"type": "integer", "enum": [1, 3]}),
            &["1", "3"],
            &[("2", "not_in_enum", "v"), ("1.0", "wrong_type", "v")],
        ),
        field(
            "enum numbers",
            json!({"type": "number", "enum": [1, 2.5]}),
            &["1", "1.0", "2.50", "25e-1"],
            &[("2", "not_in_enum", "v")],
        ),
        field(
            "enum with null",
            json!({"type": ["string", "null"], "enum": ["a", null]}),
            &["null", r#""a""#],
            &[(r#""b""#, "not_in_enum", "v")],
        ),
        field(
            "enum without null on a nullable field",
            json!({"type": ["string", "null"], "enum": ["a"]}),
            &[r#""a""#],
            &[("null", "not_in_enum", "v")],
        ),
        field(
            "enum of arrays",
            json!({"type": "array", "items": {"type": "integer"}, "enum": [[1, 2]]}),
            &["[1,2]", "[ 1 , 2 ]"],
            &[("[2,1]", "not_in_enum", "v"), ("[1]", "not_in_enum", "v")],
        ),
        field(
            "const string",
            json!({"type": "string", "const": "x"}),
            &[r#""x""#],
            &[(r#""y""#, "not_in_enum", "v")],
        ),
        field(
            "const boolean",
            json!({"type": "boolean", "const": true}),
            &["true"],
            &[("false", "not_in_enum", "v")],
        ),
        field(
            "const number",
            json!({"type": "number", "const": 0.5}),
            &["0.5", "5e-1"],
            &[("0.25", "not_in_enum", "v")],
        ),
        field(
            "minimum",
            json!({"type": "integer", "minimum": 1}),
            &["1", "2"],
            &[("0", "out_of_range", "v"), ("-5", "out_of_range", "v")],
        ),
        field(
            "maximum",
            json!({"type": "number", "maximum": 1.5}),
            &["1.5", "-3", "1"],
            &[
                ("1.5000001", "out_of_range", "v"),
                ("2", "out_of_range", "v"),
            ],
        ),
        field(
            "exclusiveMinimum",
            json!({"type": "number", "exclusiveMinimum": 0}),
            &["0.001", "1"],
            &[("0", "out_of_range", "v"), ("-0.0", "out_of_range", "v")],
        ),
        field(
            "exclusiveMaximum",
            json!({"type": "integer", "exclusiveMaximum": 10}),
            &["9", "-10"],
            &[("10", "out_of_range", "v"), ("11", "out_of_range", "v")],
        ),
        field(
            "multipleOf integer",
            json!({"type": "integer", "multipleOf": 3}),
            &["0", "9", "-3", "9000000000000000000"],
            &[("4", "out_of_range", "v"), ("-1", "out_of_range", "v")],
        ),
        field(
            "multipleOf fractional",
            json!({"type": "number", "multipleOf": 0.25}),
            &["0", "0.25", "1.5", "-2.75", "1e2"],
            &[("0.3", "out_of_range", "v"), ("1.1", "out_of_range", "v")],
        ),
        field(
            "multipleOf fractional on an integer",
            json!({"type": "integer", "multipleOf": 0.5}),
            &["1", "0", "-7"],
            &[("1.5", "wrong_type", "v")],
        ),
    ]);
}

#[test]
fn string_keywords_lengths_in_code_points_and_pattern() {
    check_fields(vec![
        field(
            "minLength",
            json!({"type": "string", "minLength": 2}),
            // é is 2 bytes, € 3, 😀 4 (a surrogate pair when escaped): one character each.
            &[r#""ab""#, r#""é€""#, r#""😀😀""#, r#""\ud83d\ude00x""#],
            &[
                (r#""a""#, "too_short", "v"),
                (r#""😀""#, "too_short", "v"),
                (r#""\ud83d\ude00""#, "too_short", "v"),
                (r#""""#, "too_short", "v"),
            ],
        ),
        field(
            "maxLength",
            json!({"type": "string", "maxLength": 2}),
            &[r#""""#, r#""é€""#, r#""😀😀""#, r#""\n\"""#],
            &[
                (r#""abc""#, "too_long", "v"),
                (r#""é€😀""#, "too_long", "v"),
                (r#""\u00e9\u00e9\u00e9""#, "too_long", "v"),
            ],
        ),
        field(
            "pattern",
            json!({"type": "string", "pattern": "^ord_[0-9]{3}$"}),
            &[r#""ord_123""#, r#""\u006frd_123""#],
            &[
                (r#""ord_12""#, "pattern_mismatch", "v"),
                (r#""xord_123""#, "pattern_mismatch", "v"),
                ("123", "wrong_type", "v"),
            ],
        ),
        field(
            "pattern unanchored",
            json!({"type": "string", "pattern": "b+"}),
            &[r#""abba""#, r#""b""#],
            &[(r#""aaa""#, "pattern_mismatch", "v")],
        ),
    ]);
}

#[test]
fn every_format() {
    check_fields(vec![
        field(
            "format date-time",
            json!({"type": "string", "format": "date-time"}),
            &[
                r#""2024-02-29T23:59:59.123456Z""#,
                r#""2024-01-01T00:00:00+05:30""#,
                r#""2024-01-01T00:00:00.5-08:00""#,
                r#""0001-01-01T00:00:00Z""#,
                r#""9999-12-31T23:59:59Z""#,
            ],
            &[
                (r#""2023-02-29T00:00:00Z""#, "bad_timestamp", "v"),
                (r#""2024-01-01T00:00:60Z""#, "bad_timestamp", "v"),
                (r#""2024-01-01T24:00:00Z""#, "bad_timestamp", "v"),
                (r#""2024-01-01T00:00:00""#, "bad_timestamp", "v"),
                (r#""0000-01-01T00:00:00Z""#, "bad_timestamp", "v"),
                (r#""2024-01-01""#, "bad_timestamp", "v"),
                (r#""yesterday""#, "bad_timestamp", "v"),
                ("1714564800", "wrong_type", "v"),
            ],
        ),
        field(
            "format date",
            json!({"type": "string", "format": "date"}),
            &[r#""2024-02-29""#, r#""0001-01-01""#],
            &[
                (r#""2023-02-29""#, "bad_format", "v"),
                (r#""2024-1-01""#, "bad_format", "v"),
                (r#""0000-01-01""#, "bad_format", "v"),
                (r#""2024-01-01T00:00:00Z""#, "bad_format", "v"),
            ],
        ),
        field(
            "format uuid",
            json!({"type": "string", "format": "uuid"}),
            &[
                r#""123e4567-e89b-12d3-a456-426614174000""#,
                r#""123E4567-E89B-12D3-A456-426614174000""#,
            ],
            &[
                (r#""123e4567e89b12d3a456426614174000""#, "bad_format", "v"),
                (
                    r#""123e4567-e89b-12d3-a456-42661417400g""#,
                    "bad_format",
                    "v",
                ),
                (r#""""#, "bad_format", "v"),
            ],
        ),
        field(
            "format email",
            json!({"type": "string", "format": "email"}),
            &[r#""a.b+c@example.com""#, r#""x@sub.example.org""#],
            &[
                (r#""example.com""#, "bad_format", "v"),
                (r#""@example.com""#, "bad_format", "v"),
                (r#""a b@example.com""#, "bad_format", "v"),
                (r#""a@-example.com""#, "bad_format", "v"),
            ],
        ),
        field(
            "format ipv4",
            json!({"type": "string", "format": "ipv4"}),
            &[r#""192.168.0.1""#, r#""0.0.0.0""#],
            &[
                (r#""256.1.1.1""#, "bad_format", "v"),
                (r#""1.2.3""#, "bad_format", "v"),
                (r#""::1""#, "bad_format", "v"),
            ],
        ),
        field(
            "format ipv6",
            json!({"type": "string", "format": "ipv6"}),
            &[r#""::1""#, r#""2001:db8::8a2e:370:7334""#],
            &[
                (r#""2001:db8:::1""#, "bad_format", "v"),
                (r#""1.2.3.4""#, "bad_format", "v"),
            ],
        ),
        field(
            "format uri",
            json!({"type": "string", "format": "uri"}),
            &[
                r#""https://example.com/a?b=1#c""#,
                r#""urn:isbn:0451450523""#,
            ],
            &[
                (r#""example.com/a""#, "bad_format", "v"),
                (r#""http://a b""#, "bad_format", "v"),
                (r#""1http://x""#, "bad_format", "v"),
            ],
        ),
    ]);
}

#[test]
fn arrays_items_min_items_max_items() {
    check_fields(vec![
        field(
            "items",
            json!({"type": "array", "items": {"type": "string", "maxLength": 1}}),
            &["[]", r#"["a", "b"]"#],
            &[
                (r#"["a", 1]"#, "wrong_type", "v[1]"),
                (r#"["a", "b", "cc"]"#, "too_long", "v[2]"),
                (r#"[null]"#, "wrong_type", "v[0]"),
            ],
        ),
        field(
            "nullable items",
            json!({"type": "array", "items": {"type": ["integer", "null"]}}),
            &["[null, 1]"],
            &[("[1, 1.5]", "wrong_type", "v[1]")],
        ),
        field(
            "minItems",
            json!({"type": "array", "items": {"type": "integer"}, "minItems": 2}),
            &["[1, 2]", "[1, 2, 3]"],
            // The array's own keywords are judged before its items.
            &[
                ("[1]", "too_short", "v"),
                ("[]", "too_short", "v"),
                ("[1.5]", "too_short", "v"),
            ],
        ),
        field(
            "maxItems",
            json!({"type": "array", "items": {"type": "integer"}, "maxItems": 1}),
            &["[]", "[1]"],
            &[("[1, 2]", "too_long", "v"), ("[1.5, 2]", "too_long", "v")],
        ),
        field(
            "arrays of arrays",
            json!({"type": "array", "items": {"type": "array", "items": {"type": "boolean"}}}),
            &["[[], [true]]"],
            &[("[[], [true, 0]]", "wrong_type", "v[1][1]")],
        ),
    ]);
}

/// A keyword on objects: properties, the root's own keywords, and records
/// (members besides `at`) accepted or refused as (members, code, path).
struct Object {
    keyword: &'static str,
    properties: Value,
    root: Value,
    accepts: &'static [&'static str],
    refuses: &'static [(&'static str, &'static str, &'static str)],
}

fn check_objects(cases: Vec<Object>) {
    for case in cases {
        let decoder = contract(case.properties.clone(), case.root.clone());
        let what = format!("{} {} {}", case.keyword, case.properties, case.root);
        for members in case.accepts {
            judge(&what, &decoder, members, None);
        }
        for (members, code, path) in case.refuses {
            judge(&what, &decoder, members, Some((code, path)));
        }
    }
}

/// An order line, referenced from `$defs`.
fn item() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}},
        "required": ["sku", "qty"],
    })
}

#[test]
fn object_keywords() {
    check_objects(vec![
        Object {
            keyword: "properties and required",
            properties: json!({"a": {"type": "string"}, "b": {"type": "integer"}}),
            root: json!({"required": ["a"]}),
            accepts: &[r#""a":"x""#, r#""b":1,"a":"x""#, r#""\u0061":"x""#],
            refuses: &[
                ("", "missing_field", "a"),
                (r#""b":1"#, "missing_field", "a"),
                (r#""a":null"#, "missing_field", "a"),
                (r#""a":"x","b":"1""#, "wrong_type", "b"),
            ],
        },
        Object {
            keyword: "duplicate members",
            properties: json!({"a": {"type": "string"}}),
            root: json!({}),
            accepts: &[r#""a":"x","u":1"#],
            refuses: &[
                (r#""a":"x","a":"y""#, "duplicate_field", "a"),
                (r#""a":"x","\u0061":"y""#, "duplicate_field", "a"),
                (r#""u":1,"u":1"#, "duplicate_field", "u"),
                (r#""at":"2024-01-01T00:00:00Z""#, "duplicate_field", "at"),
            ],
        },
        Object {
            keyword: "a broken escape in a name",
            properties: json!({"a": {"type": "string"}}),
            root: json!({}),
            accepts: &[],
            // At the root the message has no path to name.
            refuses: &[(r#""\udc00":1"#, "bad_string", "")],
        },
        Object {
            keyword: "a broken escape in a nested name",
            properties: json!({"o": {"type": "object"}}),
            root: json!({}),
            accepts: &[r#""o":{"\ud83d\ude00":1}"#],
            refuses: &[(r#""o":{"\udc00":1}"#, "bad_string", "o")],
        },
        Object {
            keyword: "additionalProperties true",
            properties: json!({"a": {"type": "string"}}),
            root: json!({"additionalProperties": true}),
            accepts: &[r#""a":"x","u":[1, {"v": null}]"#, r#""zz":1"#],
            refuses: &[],
        },
        Object {
            keyword: "additionalProperties false",
            properties: json!({"a": {"type": "string"}}),
            root: json!({"additionalProperties": false}),
            accepts: &[r#""a":"x""#, ""],
            refuses: &[
                (r#""a":"x","zz":1"#, "unexpected_field", "zz"),
                (r#""A":"x""#, "unexpected_field", "A"),
            ],
        },
        Object {
            keyword: "nested objects",
            properties: json!({"o": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "p": {"type": "integer"},
                    "q": {"type": "object", "properties": {"r": {"type": "boolean"}}, "required": ["r"]},
                },
                "required": ["p"],
            }}),
            root: json!({"required": ["o"]}),
            accepts: &[r#""o":{"p":1}"#, r#""o":{"p":1,"q":{"r":true,"s":1}}"#],
            refuses: &[
                ("", "missing_field", "o"),
                (r#""o":{}"#, "missing_field", "o.p"),
                (r#""o":{"p":1.5}"#, "wrong_type", "o.p"),
                (r#""o":{"p":1,"z":0}"#, "unexpected_field", "o.z"),
                (r#""o":{"p":1,"p":2}"#, "duplicate_field", "o.p"),
                (r#""o":{"p":1,"q":{}}"#, "missing_field", "o.q.r"),
                (r#""o":{"p":1,"q":{"r":"yes"}}"#, "wrong_type", "o.q.r"),
                (r#""o":[]"#, "wrong_type", "o"),
            ],
        },
        Object {
            keyword: "$ref into $defs, in an array",
            properties: json!({"items": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/item"}}}),
            root: json!({"required": ["items"], "$defs": {"item": item()}}),
            accepts: &[r#""items":[{"sku":"a","qty":1}]"#],
            refuses: &[
                (r#""items":[]"#, "too_short", "items"),
                (
                    r#""items":[{"sku":"a","qty":1},{"sku":"b","qty":2},{"sku":"c","qty":3},{"sku":"d","qty":0}]"#,
                    "out_of_range",
                    "items[3].qty",
                ),
                (
                    r#""items":[{"sku":"a","qty":1},{"qty":1}]"#,
                    "missing_field",
                    "items[1].sku",
                ),
                (
                    r#""items":[{"sku":"a","qty":1,"note":""}]"#,
                    "unexpected_field",
                    "items[0].note",
                ),
                (r#""items":[1]"#, "wrong_type", "items[0]"),
            ],
        },
        Object {
            keyword: "dependentRequired",
            properties: json!({"a": {"type": "string"}, "b": {"type": "string"}, "c": {"type": ["string", "null"]}}),
            root: json!({"dependentRequired": {"a": ["b", "c"]}}),
            accepts: &["", r#""b":"x""#, r#""a":"x","b":"y","c":null"#],
            refuses: &[
                (r#""a":"x""#, "missing_field", "b"),
                (r#""a":"x","b":"y""#, "missing_field", "c"),
            ],
        },
        Object {
            keyword: "dependentRequired in a nested object",
            properties: json!({"o": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "dependentRequired": {"a": ["b"]}}}),
            root: json!({}),
            accepts: &[r#""o":{"a":1,"b":2}"#],
            refuses: &[(r#""o":{"a":1}"#, "missing_field", "o.b")],
        },
        Object {
            keyword: "if/then/else",
            properties: json!({
                "status": {"type": "string", "enum": ["PAID", "OPEN"]},
                "paid_at": {"type": "string", "format": "date-time"},
                "note": {"type": "string"},
            }),
            root: json!({
                "required": ["status"],
                "if": {"properties": {"status": {"const": "PAID"}}},
                "then": {"required": ["paid_at"]},
                "else": {"properties": {"note": {"maxLength": 3}}},
            }),
            accepts: &[
                r#""status":"PAID","paid_at":"2024-01-01T00:00:00Z""#,
                r#""status":"\u0050AID","paid_at":"2024-01-01T00:00:00Z""#,
                r#""status":"OPEN""#,
                r#""status":"OPEN","note":"abc""#,
                r#""status":"PAID","paid_at":"2024-01-01T00:00:00Z","note":"a long note""#,
            ],
            refuses: &[
                (r#""status":"PAID""#, "missing_field", "paid_at"),
                (r#""status":"\u0050AID""#, "missing_field", "paid_at"),
                (r#""status":"OPEN","note":"abcd""#, "too_long", "note"),
            ],
        },
        Object {
            keyword: "if/then/else on a value",
            properties: json!({"n": {
                "type": "integer",
                "if": {"minimum": 100},
                "then": {"multipleOf": 10},
                "else": {"maximum": 50},
            }}),
            root: json!({}),
            accepts: &[r#""n":100"#, r#""n":50"#, r#""n":-3"#],
            refuses: &[
                (r#""n":105"#, "out_of_range", "n"),
                (r#""n":51"#, "out_of_range", "n"),
            ],
        },
        Object {
            keyword: "if/then in a nested object of an array",
            properties: json!({"lines": {"type": "array", "items": {
                "type": "object",
                "properties": {"kind": {"type": "string"}, "qty": {"type": "integer"}},
                "if": {"properties": {"kind": {"const": "bulk"}}, "required": ["kind"]},
                "then": {"properties": {"qty": {"minimum": 10}}, "required": ["qty"]},
            }}}),
            root: json!({}),
            accepts: &[r#""lines":[{"kind":"bulk","qty":10},{"kind":"one","qty":1},{}]"#],
            refuses: &[
                (
                    r#""lines":[{"kind":"one"},{"kind":"bulk","qty":9}]"#,
                    "out_of_range",
                    "lines[1].qty",
                ),
                (
                    r#""lines":[{"kind":"bulk"}]"#,
                    "missing_field",
                    "lines[0].qty",
                ),
            ],
        },
    ]);
}

#[test]
fn conditional_messages_name_the_branch() {
    let decoder = contract(
        json!({"kind": {"type": "string"}, "amount": {"type": ["number", "null"]}}),
        json!({
            "if": {"properties": {"kind": {"const": "purchase"}}, "required": ["kind"]},
            "then": {"properties": {"amount": {"type": "number", "minimum": 0}}, "required": ["amount"]},
            "else": {"properties": {"amount": {"type": "null"}}},
        }),
    );
    let message = |members: &str| {
        let text = record(members);
        let mut out = Record::default();
        let e = decoder.decode_text(&text, &mut out).expect_err("refused");
        (e.code.as_str(), e.message)
    };
    let (code, text) = message(r#""kind":"purchase""#);
    assert_eq!(code, "missing_field");
    assert!(
        text.contains("`amount`") && text.contains("the contract's `then` applies"),
        "{text}"
    );
    let (code, text) = message(r#""kind":"purchase","amount":null"#);
    assert_eq!(
        (code, text.contains("`then`")),
        ("missing_field", true),
        "{text}"
    );
    let (code, text) = message(r#""kind":"purchase","amount":-1"#);
    assert_eq!(code, "out_of_range", "{text}");
    let (code, text) = message(r#""kind":"view","amount":1"#);
    assert_eq!(code, "wrong_type", "{text}");
    assert!(text.contains("the contract's `else` applies"), "{text}");
}

#[test]
fn x_error_code_renames_value_rules_only() {
    let own = |schema: Value| {
        let mut schema = schema;
        schema["x-error-code"] = json!("bad_thing");
        schema
    };
    check_fields(vec![
        field(
            "x-error-code on enum",
            own(json!({"type": "string", "enum": ["a"]})),
            &[r#""a""#],
            &[
                (r#""b""#, "bad_thing", "v"),
                ("1", "wrong_type", "v"),
                ("null", "missing_field", "v"),
            ],
        ),
        field(
            "x-error-code on bounds and multipleOf",
            own(json!({"type": "integer", "minimum": 0, "multipleOf": 2})),
            &["4"],
            &[
                ("-2", "bad_thing", "v"),
                ("3", "bad_thing", "v"),
                ("2.0", "wrong_type", "v"),
            ],
        ),
        field(
            "x-error-code on lengths and pattern",
            own(json!({"type": "string", "minLength": 2, "maxLength": 3, "pattern": "^a"})),
            &[r#""ab""#],
            &[
                (r#""a""#, "bad_thing", "v"),
                (r#""abcd""#, "bad_thing", "v"),
                (r#""ba""#, "bad_thing", "v"),
                (r#""\udfff""#, "bad_string", "v"),
            ],
        ),
        field(
            "x-error-code on formats",
            own(json!({"type": "string", "format": "date-time"})),
            &[r#""2024-01-01T00:00:00Z""#],
            &[(r#""2024-13-01T00:00:00Z""#, "bad_thing", "v")],
        ),
        field(
            "x-error-code naming a built-in code",
            json!({"type": "string", "format": "uuid", "x-error-code": "bad_uuid"}),
            &[],
            &[(r#""nope""#, "bad_uuid", "v")],
        ),
        field(
            "x-error-code on an array",
            own(json!({"type": "array", "items": {"type": "integer"}, "maxItems": 1})),
            &["[1]"],
            &[
                ("[1, 2]", "bad_thing", "v"),
                ("[1.5]", "wrong_type", "v[0]"),
            ],
        ),
        field(
            "x-error-code on a parent does not rename its items' rules",
            own(json!({"type": "array", "items": {"type": "integer", "minimum": 0}})),
            &["[]"],
            &[("[-1]", "out_of_range", "v[0]")],
        ),
    ]);
    check_objects(vec![Object {
        keyword: "x-error-code on an object",
        properties: json!({"o": {
            "type": "object",
            "x-error-code": "bad_thing",
            "additionalProperties": false,
            "properties": {"a": {"type": "string"}},
            "required": ["a"],
        }}),
        root: json!({}),
        accepts: &[r#""o":{"a":""}"#],
        refuses: &[
            (r#""o":{}"#, "missing_field", "o.a"),
            (r#""o":{"a":"","b":1}"#, "unexpected_field", "o.b"),
            (r#""o":{"a":"","a":""}"#, "duplicate_field", "o.a"),
            (r#""o":1"#, "wrong_type", "o"),
        ],
    }]);
}

#[test]
fn unknown_members_are_kept_as_written() {
    let decoder = contract(json!({"a": {"type": "string"}}), json!({}));
    let text = record(r#""u" : [1, {"v": null}],"a":"x","\u00e9":"é" "#);
    let mut out = Record::default();
    decoder.decode_text(&text, &mut out).expect("accepted");
    assert_eq!(
        out.datums().last(),
        Some(&Datum::Str(Cow::Borrowed(
            r#"{"u":[1, {"v": null}],"\u00e9":"é"}"#
        )))
    );
    // None unknown: the extra column is null.
    let text = record(r#""a":"x""#);
    decoder.decode_text(&text, &mut out).expect("accepted");
    assert_eq!(out.datums().last(), Some(&Datum::Null));
    // Closed: no extra datum at all.
    let closed = contract(
        json!({"a": {"type": "string"}}),
        json!({"additionalProperties": false}),
    );
    let text = record(r#""a":"x""#);
    closed.decode_text(&text, &mut out).expect("accepted");
    assert_eq!(
        out.datums().len(),
        2,
        "a and at, no extra: {:?}",
        out.datums()
    );
}

#[test]
fn a_nested_record_decodes_to_its_datums_in_pre_order() {
    // Written out, not built with `json!`: columns follow the order written.
    let schema = r##"{
        "x-lakehouse": {"table": "t", "event_time": "at"},
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "at": {"type": "string", "format": "date-time"},
            "n": {"type": "integer"},
            "o": {"type": "object", "properties": {
                "s": {"type": "string"},
                "d": {"type": "string", "format": "date"},
                "f": {"type": ["number", "null"]}
            }},
            "items": {"type": "array", "items": {"$ref": "#/$defs/item"}},
            "tags": {"type": "array", "items": {"type": ["string", "null"]}},
            "flag": {"type": "boolean"},
            "gone": {"type": "object", "properties": {"x": {"type": "integer"}}}
        },
        "required": ["at"],
        "$defs": {"item": {
            "type": "object",
            "additionalProperties": false,
            "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}},
            "required": ["sku", "qty"]
        }}
    }"##;
    let decoder =
        Decoder::new(Contract::parse("t.schema.json", schema.as_bytes()).expect("compiles"));
    let text = record(concat!(
        r#""n":-7,"o":{"s":"a\"b","d":"1970-01-02","z":true},"#,
        r#""items":[{"qty":2,"sku":"k"},{"sku":"m","qty":1}],"tags":[null,"t"],"flag":false"#,
    ));
    let mut out = Record::default();
    decoder.decode_text(&text, &mut out).expect("accepted");
    let micros = 1_714_564_800_000_000; // 2024-05-01T12:00:00Z
    let s = |v: &'static str| Datum::Str(Cow::Borrowed(v));
    let expected = vec![
        Datum::Micros(micros),
        Datum::Int(-7),
        Datum::Struct,
        Datum::Str(Cow::Owned("a\"b".into())),
        Datum::Day(1),
        Datum::Null, // o.f absent
        s(r#"{"z":true}"#),
        Datum::List(2),
        Datum::Struct,
        s("k"),
        Datum::Int(2),
        Datum::Struct,
        s("m"),
        Datum::Int(1),
        Datum::List(2),
        Datum::Null,
        s("t"),
        Datum::Bool(false),
        Datum::Null, // gone: absent, no datums for its field
    ];
    assert_eq!(out.datums(), expected.as_slice());
    assert_eq!(out.event_day(), 19_844);
    // The same record inside a batch decodes to the same datums.
    let batch_text = format!("[{text}, 1]");
    let batch = parse_batch(batch_text.as_bytes(), &Limits::default()).expect("readable");
    let mut in_batch = Record::default();
    decoder
        .decode(&batch, &batch.elements[0], &mut in_batch)
        .expect("accepted in a batch");
    assert_eq!(in_batch.datums(), expected.as_slice());
    let not_object = decoder
        .decode(&batch, &batch.elements[1], &mut in_batch)
        .expect_err("not an object");
    assert_eq!(not_object.code.as_str(), "not_object");
}

#[test]
fn objects_with_more_properties_than_the_inline_slots() {
    // 20 properties: more than the decoder keeps on the stack, in any order.
    let names: Vec<String> = (0..20).map(|i| format!("p{i}")).collect();
    let properties: serde_json::Map<String, Value> = names
        .iter()
        .map(|n| (n.clone(), json!({"type": "integer", "maximum": 9})))
        .collect();
    let decoder = contract(
        json!({"o": {"type": "object", "properties": properties, "required": names}}),
        json!({"required": ["o"]}),
    );
    let members = |skip: Option<usize>, value: &str| {
        let inner: Vec<String> = (0..20)
            .rev()
            .filter(|i| Some(*i) != skip)
            .map(|i| format!(r#""p{i}":{}"#, if i == 17 { value } else { "1" }))
            .collect();
        format!(r#""o":{{{}}}"#, inner.join(","))
    };
    let what = "20 properties";
    judge(what, &decoder, &members(None, "1"), None);
    judge(
        what,
        &decoder,
        &members(Some(3), "1"),
        Some(("missing_field", "o.p3")),
    );
    judge(
        what,
        &decoder,
        &members(None, "10"),
        Some(("out_of_range", "o.p17")),
    );
    let duplicated = members(None, "1").replace(r#""p2":1"#, r#""p2":1,"p2":1"#);
    judge(
        what,
        &decoder,
        &duplicated,
        Some(("duplicate_field", "o.p2")),
    );
}
