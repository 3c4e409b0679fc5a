//! The generator against the shipped contracts, judged twice: by the
//! consumer's decoder, reading the batch as the consumer does, which must
//! give every record the verdict and code it is labelled with, and by an
//! independent JSON Schema validator (the `jsonschema` crate, formats on),
//! which must accept every valid record and refuse every broken one (except
//! a duplicated name, which it cannot see). The decoder is stricter in one
//! place: an integer written with a fraction or exponent (`1.0`) is a
//! `wrong_type`; valid records never write one.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::json;

use super::json::Json;
use super::ContractGenerator;
use crate::generate::{Batch, Content, Settings};
use crate::summary::Summary;
use lake::contract::Contract;
use lake::decoder::{Decoder, Record};
use lake::event::{parse_batch, Limits};

const SHIPPED: [&str; 4] = ["events", "clicks", "orders", "sensor_readings"];

fn path(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../contracts/{name}.schema.json"))
}

fn load(name: &str) -> Contract {
    Contract::load(&path(name)).unwrap_or_else(|e| panic!("{e}"))
}

fn settings(seed: u64) -> Settings {
    Settings {
        seed,
        users: 50,
        batch_size: 20,
        corrupt_ratio: 0.1,
        invalid_ratio: 0.3,
        duplicate_ratio: 0.0,
        late_ratio: 0.0,
        late_by: std::time::Duration::from_secs(600),
        start_time: DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
            .expect("valid")
            .with_timezone(&Utc),
        max_gap_ms: crate::generate::MAX_GAP_MS,
    }
}

fn generator(contract: Contract, settings: Settings) -> ContractGenerator {
    ContractGenerator::new(contract, settings).unwrap_or_else(|e| panic!("{e:#}"))
}

fn batches(name: &str, settings: Settings, n: usize) -> Vec<Batch> {
    let mut g = generator(load(name), settings);
    (0..n).map(|_| g.next_batch().expect("a batch")).collect()
}

fn jsonschema_for(contract: &Path) -> jsonschema::Validator {
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(contract).expect("contract")).expect("JSON");
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&schema)
        .expect("the reference validator compiles the contract")
}

/// Reads JSON text into [`Json`], keeping member order and duplicate names,
/// so records are judged from the bytes the sink sends.
struct Text(Json);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        d.deserialize_any(TextVisitor).map(Text)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Json;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
        Ok(Json::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Json, E> {
        Ok(Json::Int(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Json, E> {
        Ok(i64::try_from(u).map_or(Json::Num(u as f64), Json::Int))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Json, E> {
        Ok(Json::Num(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<Json, E> {
        Ok(Json::Str(s.to_string()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(Text(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Vec::new();
        while let Some((k, Text(v))) = map.next_entry::<String, Text>()? {
            members.push((k, v));
        }
        Ok(Json::Object(members))
    }
}

/// What the reference validator refuses in `value`, for failure messages.
fn refusals(reference: &jsonschema::Validator, value: &serde_json::Value) -> Vec<String> {
    reference
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn records(payload: &[u8]) -> Vec<Json> {
    let Text(Json::Array(records)) = serde_json::from_slice(payload).expect("readable batch")
    else {
        panic!("not an array");
    };
    records
}

/// The consumer's verdict on each record of a readable batch: `None` if it
/// accepts it, else the error code it gives.
fn verdicts(decoder: &Decoder, payload: &[u8]) -> Vec<Option<String>> {
    let batch = parse_batch(payload, &Limits::default()).expect("a readable batch");
    batch
        .elements
        .iter()
        .map(|element| {
            let verdict = decoder.decode(&batch, element, &mut Record::default());
            verdict.err().map(|r| r.code.as_str().to_string())
        })
        .collect()
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    for name in SHIPPED {
        let payloads = |seed, n| -> Vec<Vec<u8>> {
            batches(name, settings(seed), n)
                .into_iter()
                .map(|b| b.payload)
                .collect()
        };
        let a = payloads(7, 30);
        assert_eq!(a, payloads(7, 30), "{name}");
        assert_ne!(a[0], payloads(8, 1)[0], "{name}");
        // A shorter run is a prefix of a longer one.
        assert_eq!(payloads(7, 5)[..], a[..5], "{name}");
    }
}

/// Every valid record passes both judges; every broken one the reference
/// validator refuses too, and the decoder gives it the code it is labelled
/// with (which is never `not_object`, a rule of the batch).
#[test]
fn shipped_contracts_give_records_both_judges_agree_on() {
    for name in SHIPPED {
        let decoder = Decoder::new(load(name));
        let reference = jsonschema_for(&path(name));
        let (mut valid, mut broken) = (0, 0);
        for seed in 0..12 {
            for batch in batches(name, settings(seed), 25) {
                let Content::Contract(codes) = batch.content else {
                    continue;
                };
                let records = records(&batch.payload);
                assert_eq!(records.len(), codes.len());
                let verdicts = verdicts(&decoder, &batch.payload);
                for ((record, code), verdict) in records.iter().zip(&codes).zip(&verdicts) {
                    let value = record.to_value();
                    assert_eq!(verdict, code, "{name}: {value}");
                    match code {
                        None => {
                            valid += 1;
                            let refused = refusals(&reference, &value);
                            assert_eq!(refused, Vec::<String>::new(), "{name}: {value}");
                        }
                        Some(code) => {
                            broken += 1;
                            assert_ne!(code, "not_object", "{name}: {value}");
                            if code != "duplicate_field" {
                                assert!(!reference.is_valid(&value), "{name} {code}: {value}");
                            }
                        }
                    }
                }
            }
        }
        assert!(valid > 3000 && broken > 1000, "{name}: {valid} {broken}");
    }
}

/// Over a few thousand records, the decoder gives every broken record
/// exactly the code the summary counted it under, and the summary covers
/// every code the contract's rules can produce (and lists them all).
#[test]
fn the_summary_counts_each_broken_record_under_the_decoders_code() {
    let expected: BTreeMap<&str, &[&str]> = BTreeMap::from([
        (
            "events",
            &[
                "bad_uuid",
                "missing_field",
                "wrong_type",
                "out_of_range",
                "unknown_event_type",
                "bad_timestamp",
                "bad_country",
                "unexpected_field",
                "duplicate_field",
            ][..],
        ),
        (
            "clicks",
            &[
                "bad_uuid",
                "missing_field",
                "wrong_type",
                "out_of_range",
                "too_short",
                "too_long",
                "pattern_mismatch",
                "bad_country",
                "bad_timestamp",
                "duplicate_field",
            ][..],
        ),
        (
            "orders",
            &[
                "missing_field",
                "wrong_type",
                "pattern_mismatch",
                "bad_timestamp",
                "not_in_enum",
                "too_short",
                "too_long",
                "out_of_range",
                "unexpected_field",
                "duplicate_field",
            ][..],
        ),
        (
            "sensor_readings",
            &[
                "bad_format",
                "bad_device_id",
                "bad_timestamp",
                "out_of_range",
                "pattern_mismatch",
                "missing_field",
                "wrong_type",
                "duplicate_field",
            ][..],
        ),
    ]);
    for name in SHIPPED {
        let decoder = Decoder::new(load(name));
        let mut g = generator(load(name), settings(5));
        let listed = g.codes();
        let mut summary = Summary::with_modes(5, "files", listed.clone());
        let mut broken = 0;
        for seq in 0..250 {
            let batch = g.next_batch().expect("batch");
            summary.add(&format!("b{seq}"), &batch);
            let Content::Contract(codes) = &batch.content else {
                continue;
            };
            let verdicts = verdicts(&decoder, &batch.payload);
            assert_eq!(&verdicts, codes, "{name} b{seq}");
            broken += codes.iter().flatten().count();
        }
        assert!(broken > 1000, "{name}: {broken}");
        let covered: HashSet<&str> = summary
            .invalid_modes
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(code, _)| code.as_str())
            .collect();
        let want: HashSet<&str> = expected[name].iter().copied().collect();
        assert!(
            covered.is_superset(&want),
            "{name}: missing {:?}",
            want.difference(&covered)
        );
        let listed: HashSet<&str> = listed.iter().map(String::as_str).collect();
        assert!(
            listed.is_superset(&covered),
            "{name}: not listed {:?}",
            covered.difference(&listed)
        );
    }
}

#[test]
fn summary_counts_what_was_broken_by_code() {
    for name in SHIPPED {
        let contract = load(name);
        let decoder = Decoder::new(contract.clone());
        let mut g = generator(contract, settings(3));
        let mut summary = Summary::with_modes(3, "files", g.codes());
        let mut recount: BTreeMap<String, u64> = BTreeMap::new();
        let (mut corrupt, mut valid) = (0, 0);
        for seq in 0..60 {
            let batch = g.next_batch().expect("batch");
            summary.add(&format!("b{seq}"), &batch);
            if matches!(batch.content, Content::Corrupt(_)) {
                corrupt += 1;
                assert!(serde_json::from_slice::<Vec<serde_json::Value>>(&batch.payload).is_err());
                continue;
            }
            // Counted again from the bytes, by the code the consumer gives.
            for verdict in verdicts(&decoder, &batch.payload) {
                match verdict {
                    None => valid += 1,
                    Some(code) => *recount.entry(code).or_default() += 1,
                }
            }
        }
        let counted: BTreeMap<String, u64> = summary
            .invalid_modes
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (k.clone(), *n))
            .collect();
        assert_eq!(counted, recount, "{name}");
        assert_eq!(summary.valid_records, valid, "{name}");
        assert_eq!(summary.corrupt_batches, corrupt, "{name}");
        assert_eq!(
            summary.records,
            summary.valid_records + summary.invalid_records
        );
        assert!(!recount.is_empty(), "{name}");
    }
}

#[test]
fn event_time_advances_over_days_ids_repeat_and_keys_are_unique() {
    let contract = load("orders");
    let mut g = generator(
        contract,
        Settings {
            batch_size: 100,
            corrupt_ratio: 0.0,
            invalid_ratio: 0.0,
            ..settings(1)
        },
    );
    let (mut last, mut days, mut customers) = (i64::MIN, HashSet::new(), HashSet::new());
    for _ in 0..300 {
        for record in records(&g.next_batch().expect("batch").payload) {
            let Some(Json::Str(ts)) = record.get("order_ts") else {
                panic!("order_ts");
            };
            let micros = lake::event::parse_timestamp(ts).expect("RFC 3339");
            assert!(micros >= last, "order_ts goes forward");
            last = micros;
            days.insert(micros.div_euclid(86_400_000_000));
            customers.insert(format!("{:?}", record.get("customer_id")));
        }
    }
    assert!(days.len() >= 2, "{days:?}");
    assert_eq!(customers.len(), 50, "drawn from the --users list");

    let mut ids = HashSet::new();
    let mut users = HashSet::new();
    for batch in batches(
        "events",
        Settings {
            invalid_ratio: 0.0,
            ..settings(2)
        },
        100,
    ) {
        if let Content::Contract(_) = batch.content {
            for record in records(&batch.payload) {
                let Some(Json::Str(id)) = record.get("event_id") else {
                    panic!("event_id");
                };
                assert!(ids.insert(id.clone()), "duplicate key {id}");
                let Some(Json::Int(user)) = record.get("user_id") else {
                    panic!("user_id");
                };
                users.insert(*user);
            }
        }
    }
    assert_eq!(
        users,
        (1..=50).collect(),
        "user_id 1..=--users, as for events"
    );
}

/// For every shipped contract, with duplicates and late records, a run is
/// the run of the same seed without them but for those records: a duplicate
/// is the text of an earlier valid record, a late record's event time is
/// exactly `late_by` earlier (and every other date-time drawn from it moves
/// with it, nothing else changes), the decoder still accepts it, and the
/// summary's unique records are the distinct keys.
#[test]
fn duplicates_resend_earlier_records_and_late_records_are_late_by_exactly() {
    const LATE_BY_MICROS: i64 = 90 * 60 * 1_000_000;
    let timestamp = |v: &serde_json::Value| {
        v.as_str()
            .and_then(|t| lake::event::parse_timestamp(t).ok())
    };
    for name in SHIPPED {
        let contract = load(name);
        let decoder = Decoder::new(contract.clone());
        let key = contract
            .table
            .key
            .clone()
            .expect("shipped contracts have a key");
        let event_time = contract.table.event_time.clone();
        let plain = Settings {
            batch_size: 25,
            ..settings(21)
        };
        let mixed = Settings {
            duplicate_ratio: 0.2,
            late_ratio: 0.1,
            late_by: std::time::Duration::from_secs(90 * 60),
            ..plain.clone()
        };
        let mut p = generator(contract.clone(), plain);
        let mut m = generator(contract, mixed);
        let mut summary = Summary::with_modes(21, "files", m.codes());
        // Texts of the valid records sent so far, and the keys among them.
        let (mut sent, mut keys) = (HashSet::new(), HashSet::new());
        let mut late = 0;
        for seq in 0..160 {
            let (p, m) = (
                p.next_batch().expect("batch"),
                m.next_batch().expect("batch"),
            );
            summary.add(&format!("b{seq}"), &m);
            assert_eq!(
                p.content, m.content,
                "{name} b{seq}: the same records broken"
            );
            let Content::Contract(codes) = &m.content else {
                continue;
            };
            assert_eq!(&verdicts(&decoder, &m.payload), codes, "{name} b{seq}");
            let ps: Vec<&serde_json::value::RawValue> =
                serde_json::from_slice(&p.payload).expect("parses");
            let ms: Vec<&serde_json::value::RawValue> =
                serde_json::from_slice(&m.payload).expect("parses");
            for (i, code) in codes.iter().enumerate() {
                let (text, normal) = (ms[i].get(), ps[i].get());
                if code.is_some() {
                    continue;
                }
                let value: serde_json::Value = serde_json::from_str(text).expect("parses");
                keys.insert(value[&key].to_string());
                if m.arrivals.duplicates.contains(&i) {
                    assert!(sent.contains(text), "{name}: not sent before: {text}");
                    continue;
                }
                assert!(sent.insert(text.to_string()), "{name}: fresh twice: {text}");
                if !m.arrivals.late.contains(&i) {
                    assert_eq!(text, normal, "{name}");
                    continue;
                }
                late += 1;
                let on_time: serde_json::Value = serde_json::from_str(normal).expect("parses");
                let (Some(now), Some(then)) = (value.as_object(), on_time.as_object()) else {
                    panic!("{name}: not objects: {text}");
                };
                assert_eq!(
                    now.keys().collect::<Vec<_>>(),
                    then.keys().collect::<Vec<_>>()
                );
                for (field, was) in then {
                    let is = &now[field];
                    if field == &event_time || is != was {
                        let shift = timestamp(was).zip(timestamp(is)).map(|(a, b)| a - b);
                        assert_eq!(shift, Some(LATE_BY_MICROS), "{name} {field}: {text}");
                    }
                }
            }
        }
        assert_eq!(keys.len() as u64, summary.unique_valid_records, "{name}");
        assert_eq!(late, summary.late_records, "{name}");
        assert_eq!(
            summary.unique_valid_records + summary.duplicate_records,
            summary.valid_records
        );
        let share = |n: u64, of: u64| n as f64 / of as f64;
        let duplicates = share(summary.duplicate_records, summary.valid_records);
        let late = share(summary.late_records, summary.unique_valid_records);
        assert!((0.17..0.23).contains(&duplicates), "{name}: {duplicates}");
        assert!((0.08..0.12).contains(&late), "{name}: {late}");
    }
}

/// Keywords the shipped contracts do not use, on a contract of their own.
#[test]
fn every_keyword_is_satisfied_and_broken_alone() {
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "x-lakehouse": {"table": "kitchen_sink", "event_time": "at", "key": "id"},
        "type": "object",
        "properties": {
            "at": {"type": "string", "format": "date-time"},
            "id": {"type": "string", "format": "uuid"},
            "day": {"type": "string", "format": "date"},
            "mail": {"type": "string", "format": "email", "x-error-code": "bad_email"},
            "v4": {"type": "string", "format": "ipv4"},
            "v6": {"type": "string", "format": "ipv6"},
            "link": {"type": "string", "format": "uri"},
            "short": {"type": "string", "minLength": 2, "maxLength": 3},
            "code": {"type": "string", "pattern": "^[A-F]{2}-\\d{3}(-[a-z]+)?$", "maxLength": 12},
            "kind": {"const": "fixed", "type": "string"},
            "level": {"type": "integer", "exclusiveMinimum": -3, "exclusiveMaximum": 7},
            "fives": {"type": "integer", "minimum": 10, "maximum": 100, "multipleOf": 5},
            "ratio": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "multipleOf": 0.25},
            "flag": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "minItems": 2, "maxItems": 3},
            "nothing": {"type": "null"},
            "account_id": {"type": "integer", "minimum": 1000},
            // An `if` the drawer cannot decide, on every item: left to chance.
            "lines": {"type": "array", "minItems": 3, "maxItems": 6, "items": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "qty": {"type": "integer", "minimum": 1, "maximum": 20},
                    "kind": {"type": "string", "enum": ["a", "b"]},
                    "discount": {"type": "number", "minimum": 0, "maximum": 1, "multipleOf": 0.05},
                    "note": {"type": ["string", "null"], "maxLength": 5}
                },
                "required": ["qty", "kind"],
                "if": {"properties": {"qty": {"minimum": 10}}},
                "then": {"required": ["discount"]},
                "else": {
                    "properties": {"discount": {"type": "null"}},
                    "if": {"properties": {"kind": {"const": "a"}}},
                    "then": {"required": ["note"]}
                }
            }},
            "shipping": {
                "type": ["object", "null"],
                "properties": {
                    "method": {"type": "string", "enum": ["post", "courier"]},
                    "tracking": {"type": "string", "pattern": "^T[0-9]{6}$"},
                    "signed": {"type": "boolean"}
                },
                "required": ["method"],
                "dependentRequired": {"signed": ["tracking"]},
                "if": {"properties": {"method": {"const": "courier"}}},
                "then": {"required": ["tracking"]},
                "else": {"properties": {"tracking": {"type": "null"}}}
            }
        },
        "required": ["at", "id", "level", "short"]
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("kitchen_sink.schema.json");
    std::fs::write(&file, schema.to_string()).expect("write");
    let contract = Contract::load(&file).unwrap_or_else(|e| panic!("{e}"));
    let reference = jsonschema_for(&file);
    let decoder = Decoder::new(contract.clone());
    let mut g = generator(
        contract,
        Settings {
            users: 7,
            ..settings(11)
        },
    );
    let (mut seen, mut accounts, mut couriers, mut long) = (HashSet::new(), HashSet::new(), 0, 0);
    for _ in 0..150 {
        let batch = g.next_batch().expect("batch");
        let Content::Contract(codes) = batch.content else {
            continue;
        };
        let verdicts = verdicts(&decoder, &batch.payload);
        assert_eq!(verdicts, codes);
        for (record, code) in records(&batch.payload).iter().zip(&codes) {
            let value = record.to_value();
            match code {
                None => {
                    assert_eq!(
                        refusals(&reference, &value),
                        Vec::<String>::new(),
                        "{value}"
                    );
                    accounts.insert(value["account_id"].to_string());
                    couriers += usize::from(value["shipping"]["method"] == "courier");
                    let short = value["short"].as_str().expect("short");
                    long += usize::from(short.len() > short.chars().count());
                }
                Some(code) => {
                    if code != "duplicate_field" {
                        assert!(!reference.is_valid(&value), "{code}: {value}");
                    }
                    seen.insert(code.clone());
                }
            }
        }
    }
    for code in [
        "bad_timestamp",
        "bad_format",
        "bad_email",
        "too_short",
        "too_long",
        "pattern_mismatch",
        "not_in_enum",
        "out_of_range",
        "wrong_type",
        "missing_field",
        "duplicate_field",
    ] {
        assert!(seen.contains(code), "{code} never broken: {seen:?}");
    }
    assert!(accounts.len() <= 8, "7 accounts, or absent: {accounts:?}");
    assert!(couriers > 0, "both branches are drawn");
    assert!(
        long > 0,
        "non-ASCII strings, lengths counted in code points"
    );
}

/// The drawer finds no value for `code` (required or not), or draws values
/// the decoder always refuses (an email the drawer does not fit to a pattern).
#[test]
fn a_contract_no_record_can_satisfy_fails_at_start_naming_the_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("impossible.schema.json");
    let code = json!({"type": "string", "pattern": "^a{5}$", "maxLength": 3});
    let mail = json!({"type": "string", "format": "email", "pattern": "^x"});
    for (field, node, required) in [
        ("code", &code, true),
        ("code", &code, false),
        ("mail", &mail, true),
    ] {
        let mut required_fields = vec!["at"];
        if required {
            required_fields.push(field);
        }
        let schema = json!({
            "x-lakehouse": {"table": "impossible", "event_time": "at"},
            "type": "object",
            "properties": {"at": {"type": "string", "format": "date-time"}, field: node},
            "required": required_fields
        });
        std::fs::write(&file, schema.to_string()).expect("write");
        let contract = Contract::load(&file).expect("compiles");
        let error = format!(
            "{:#}",
            ContractGenerator::new(contract, settings(1))
                .err()
                .expect("refused")
        );
        let named = format!("field `{field}`");
        assert!(
            error.contains("impossible.schema.json") && error.contains(&named),
            "{error}"
        );
    }
}

#[test]
fn corrupt_batches_of_contract_records_are_unreadable() {
    for name in SHIPPED {
        let all = batches(
            name,
            Settings {
                corrupt_ratio: 1.0,
                ..settings(4)
            },
            60,
        );
        for batch in all {
            let Content::Corrupt(fault) = batch.content else {
                panic!("all corrupt");
            };
            assert!(
                lake::event::parse_batch(&batch.payload, &lake::event::Limits::NONE).is_err(),
                "{name} {fault:?}"
            );
            if fault == crate::corrupt::BatchFault::NotUtf8 {
                let cleaned: Vec<u8> = batch
                    .payload
                    .iter()
                    .copied()
                    .filter(|b| *b < 0x80)
                    .collect();
                assert!(
                    serde_json::from_slice::<IgnoredAny>(&cleaned).is_ok(),
                    "{name}"
                );
            }
        }
    }
}
