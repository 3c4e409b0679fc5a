//! Breaking one rule of a valid contract record. Every rule that may apply
//! to the record (a keyword of a subschema at a place, `items[]` counting as
//! one place, both branches of an `if`) offers edits meant to break it; a
//! rule is chosen at random, then one of its edits, and the decoder judges
//! the edited record. The code it gives is the record's label; an edit it
//! accepts (a branch that does not apply) is passed over, and an edit whose
//! code is not the rule's own (a shortened string caught by minLength
//! before its pattern) is kept only if no rule gives its own, so that every
//! code a contract can produce keeps turning up.

use std::collections::{BTreeMap, BTreeSet};

use lake::contract::{Format, Node};
use lake::decoder::{error_code, Decoder};
use lake::event::ErrorCode;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;

use super::draw::{children, decimal};
use super::json::Json;
use super::judge;

/// One step from a value to a member or an item.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone)]
enum Edit {
    /// The value at the path becomes another.
    Replace(Vec<Step>, Json),
    /// The member at the path is removed.
    Remove(Vec<Step>),
    /// The object at the path gets a member.
    Add(Vec<Step>, String, Json),
    /// The member at the path is written twice.
    Duplicate(Vec<Step>),
}

/// One rule: the code the consumer gives when it alone is broken, and the
/// edits meant to break it.
struct Rule {
    code: ErrorCode,
    edits: Vec<Edit>,
}

/// `record` with a rule of `root` broken, and the code `decoder` gives it;
/// `None` if no edit gets it refused.
pub fn break_one(
    rng: &mut SmallRng,
    decoder: &Decoder,
    root: &Node,
    record: &Json,
) -> Option<(Json, String)> {
    let mut rules = BTreeMap::new();
    collect(&[root], record, &mut Vec::new(), &mut rules);
    let mut rules: Vec<Rule> = rules.into_values().collect();
    rules.shuffle(rng);
    let mut fallback = None;
    for mut rule in rules {
        rule.edits.shuffle(rng);
        for edit in rule.edits {
            let mut broken = record.clone();
            if !apply(&mut broken, &edit) {
                continue;
            }
            let Err(rejection) = judge(decoder, &broken) else {
                continue;
            };
            let labelled = (broken, rejection.code.as_str().to_string());
            if rejection.code == rule.code {
                return Some(labelled);
            }
            fallback.get_or_insert(labelled);
        }
    }
    fallback
}

/// Every code a breakage of the contract `root` means to produce, for the
/// summary to list with zero counts.
pub fn codes(root: &Node) -> BTreeSet<String> {
    let mut codes = BTreeSet::from([ErrorCode::DuplicateField.as_str().to_string()]);
    let mut nodes = vec![root];
    while let Some(node) = nodes.pop() {
        codes.extend(keywords(node).map(|k| code(node, k).as_str().to_string()));
        nodes.extend(node.properties.iter().map(|(_, child)| child));
        nodes.extend(node.items.as_deref());
        nodes.extend(branches(node));
    }
    codes
}

/// The keywords of `node` that a value can break.
fn keywords(node: &Node) -> impl Iterator<Item = &'static str> {
    [
        ("type", node.ty.is_some()),
        ("enum", node.enum_values.is_some()),
        ("const", node.const_value.is_some()),
        ("minimum", node.minimum.is_some()),
        ("exclusiveMinimum", node.exclusive_minimum.is_some()),
        ("maximum", node.maximum.is_some()),
        ("exclusiveMaximum", node.exclusive_maximum.is_some()),
        ("multipleOf", node.multiple_of.is_some()),
        ("minLength", node.min_length.is_some()),
        ("maxLength", node.max_length.is_some()),
        ("pattern", node.pattern.is_some()),
        ("format", node.format.is_some()),
        ("minItems", node.min_items.is_some()),
        ("maxItems", node.max_items.is_some()),
        ("required", !node.required.is_empty()),
        ("dependentRequired", !node.dependent_required.is_empty()),
        ("additionalProperties", !node.additional_properties),
    ]
    .into_iter()
    .filter_map(|(keyword, has)| has.then_some(keyword))
}

/// The code of `keyword` of `node` broken alone: the keyword's, replaced by
/// the subschema's `x-error-code` for the rules on values (the structure,
/// types and members, keeps its generic codes).
fn code(node: &Node, keyword: &str) -> ErrorCode {
    let (code, on_value) = match keyword {
        "type" => (ErrorCode::WrongType, false),
        "required" | "dependentRequired" => (ErrorCode::MissingField, false),
        "additionalProperties" => (ErrorCode::UnexpectedField, false),
        "enum" | "const" => (ErrorCode::NotInEnum, true),
        "minLength" | "minItems" => (ErrorCode::TooShort, true),
        "maxLength" | "maxItems" => (ErrorCode::TooLong, true),
        "pattern" => (ErrorCode::PatternMismatch, true),
        "format" if node.format == Some(Format::DateTime) => (ErrorCode::BadTimestamp, true),
        "format" => (ErrorCode::BadFormat, true),
        _ => (ErrorCode::OutOfRange, true),
    };
    match &node.error_code {
        Some(own) if on_value => error_code(own),
        _ => code,
    }
}

/// The `then` and `else` of a node's `if`.
fn branches(node: &Node) -> impl Iterator<Item = &Node> {
    node.conditional
        .iter()
        .flat_map(|c| c.then.iter().chain(&c.otherwise))
}

/// The rule's place with item indices left out: `items[].qty`.
fn place(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) if out.is_empty() => out.push_str(k),
            Step::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Step::Index(_) => out.push_str("[]"),
        }
    }
    out
}

fn with(path: &[Step], step: Step) -> Vec<Step> {
    let mut path = path.to_vec();
    path.push(step);
    path
}

/// Adds, by rule, the edits that may break each rule of `nodes` and of
/// their branches, whichever applies, on `value` and inside it.
fn collect(
    nodes: &[&Node],
    value: &Json,
    path: &mut Vec<Step>,
    rules: &mut BTreeMap<String, Rule>,
) {
    let mut applied = nodes.to_vec();
    let mut i = 0;
    while i < applied.len() {
        applied.extend(branches(applied[i]));
        i += 1;
    }
    let here = place(path);
    for (i, node) in applied.iter().enumerate() {
        for keyword in keywords(node) {
            // The node's index tells apart one keyword of two subschemas (a
            // column's type and an `else` branch's).
            let mut add = |at: &str, edits: Vec<Edit>| {
                if !edits.is_empty() {
                    let rule = rules.entry(format!("{at}:{keyword}#{i}"));
                    rule.or_insert_with(|| Rule {
                        code: code(node, keyword),
                        edits: Vec::new(),
                    })
                    .edits
                    .extend(edits);
                }
            };
            let replace = |values: Vec<Json>| -> Vec<Edit> {
                values
                    .into_iter()
                    .map(|v| Edit::Replace(path.clone(), v))
                    .collect()
            };
            let number = matches!(value, Json::Int(_) | Json::Num(_));
            let int = matches!(value, Json::Int(_));
            let step = node.multiple_of.unwrap_or(1.0);
            let past = |bound: Option<f64>, exclusive, above| match bound {
                Some(m) if number => replace(vec![beyond(m, exclusive, above, int, step)]),
                _ => vec![],
            };
            let edits = match (keyword, value) {
                // A record that is no object is `not_object`, a rule of the batch.
                ("type", _) if path.is_empty() => vec![],
                ("type", _) => replace(wrong_types(value)),
                ("enum" | "const", _) => replace(others(value)),
                ("minimum", _) => past(node.minimum, false, false),
                ("exclusiveMinimum", _) => past(node.exclusive_minimum, true, false),
                ("maximum", _) => past(node.maximum, false, true),
                ("exclusiveMaximum", _) => past(node.exclusive_maximum, true, true),
                ("multipleOf", _) => replace(off_grid(value, step)),
                ("minLength", Json::Str(s)) => {
                    let chars: Vec<char> = s.chars().collect();
                    match node.min_length {
                        Some(min) if (1..=chars.len() as u64).contains(&min) => {
                            replace(vec![Json::Str(chars[..min as usize - 1].iter().collect())])
                        }
                        _ => vec![],
                    }
                }
                ("maxLength", Json::Str(s)) => match node.max_length.filter(|m| *m < 100_000) {
                    Some(max) => {
                        let grow = (max as usize + 1).saturating_sub(s.chars().count());
                        let last = s.chars().last().unwrap_or('a').to_string();
                        let first = s.chars().next().unwrap_or('a').to_string();
                        replace(vec![
                            Json::Str(format!("{s}{}", last.repeat(grow))),
                            Json::Str(format!("{}{s}", first.repeat(grow))),
                        ])
                    }
                    None => vec![],
                },
                ("pattern", Json::Str(s)) => replace(mismatches(&s.chars().collect::<Vec<char>>())),
                ("format", Json::Str(s)) => match node.format {
                    Some(format) => replace(bad_formats(format, s)),
                    None => vec![],
                },
                ("minItems", Json::Array(items)) => match node.min_items {
                    Some(min) if (1..=items.len() as u64).contains(&min) => {
                        replace(vec![Json::Array(items[..min as usize - 1].to_vec())])
                    }
                    _ => vec![],
                },
                ("maxItems", Json::Array(items)) => {
                    match node.max_items.filter(|m| *m < 1000 && !items.is_empty()) {
                        Some(max) => {
                            let more = items.iter().cycle().take(max as usize + 1);
                            replace(vec![Json::Array(more.cloned().collect())])
                        }
                        None => vec![],
                    }
                }
                ("required", Json::Object(members)) => {
                    // Absent, or null (which a type admitting null lets through).
                    for name in node.required.iter().filter(|n| has(members, n)) {
                        let at = with(path, Step::Key(name.clone()));
                        let edits = vec![
                            Edit::Remove(at.clone()),
                            Edit::Replace(at.clone(), Json::Null),
                        ];
                        add(&place(&at), edits);
                    }
                    vec![]
                }
                ("dependentRequired", Json::Object(members)) => {
                    for (name, needs) in &node.dependent_required {
                        if has(members, name) {
                            for need in needs.iter().filter(|n| has(members, n)) {
                                let at = with(path, Step::Key(need.clone()));
                                add(&place(&at), vec![Edit::Remove(at)]);
                            }
                        }
                    }
                    vec![]
                }
                ("additionalProperties", Json::Object(_)) => {
                    let mut name = "unexpected".to_string();
                    while node.properties.iter().any(|(p, _)| *p == name) {
                        name.push('_');
                    }
                    vec![Edit::Add(path.clone(), name, Json::Str("surprise".into()))]
                }
                _ => vec![],
            };
            add(&here, edits);
        }
    }
    match value {
        Json::Object(members) => {
            // Duplicates are checked on the record's own members.
            if path.is_empty() {
                let edits = members
                    .iter()
                    .map(|(k, _)| Edit::Duplicate(vec![Step::Key(k.clone())]))
                    .collect();
                let code = ErrorCode::DuplicateField;
                rules.insert(":duplicate".into(), Rule { code, edits });
            }
            for (name, member) in members {
                let kids = children(&applied, name);
                if !kids.is_empty() {
                    path.push(Step::Key(name.clone()));
                    collect(&kids, member, path, rules);
                    path.pop();
                }
            }
        }
        Json::Array(items) => {
            let kids: Vec<&Node> = applied.iter().filter_map(|n| n.items.as_deref()).collect();
            if !kids.is_empty() {
                for (i, item) in items.iter().enumerate() {
                    path.push(Step::Index(i));
                    collect(&kids, item, path, rules);
                    path.pop();
                }
            }
        }
        _ => {}
    }
}

fn has(members: &[(String, Json)], name: &str) -> bool {
    members.iter().any(|(k, _)| k == name)
}

/// The value in another JSON type; for an integer also a fraction. A null
/// gets values, for a rule that allows only null (an `else` saying "absent").
fn wrong_types(value: &Json) -> Vec<Json> {
    match value {
        Json::Null => vec![Json::Int(1), Json::Str("null".into()), Json::Bool(false)],
        Json::Bool(b) => vec![Json::Str(b.to_string()), Json::Int(i64::from(*b))],
        Json::Int(i) => vec![
            Json::Str(i.to_string()),
            Json::Num(*i as f64 + 0.5),
            Json::Bool(true),
        ],
        Json::Num(f) => vec![Json::Str(f.to_string()), Json::Bool(false)],
        Json::Str(s) => vec![
            Json::Int(s.chars().count() as i64),
            Json::Bool(true),
            Json::Array(vec![Json::Str(s.clone())]),
        ],
        Json::Array(_) => vec![Json::Object(vec![]), Json::Str("[]".into())],
        Json::Object(_) => vec![Json::Array(vec![]), Json::Str("{}".into())],
    }
}

/// Values of the same type that are not this one (for enum and const); for
/// a null, values (for `"const": null`).
fn others(value: &Json) -> Vec<Json> {
    match value {
        Json::Str(s) => vec![
            Json::Str(format!("{s}_x")),
            Json::Str(s.to_lowercase()),
            Json::Str(s.to_uppercase()),
            Json::Str("unknown".into()),
            Json::Str(String::new()),
        ],
        Json::Int(i) => vec![Json::Int(i + 1), Json::Int(i - 1), Json::Int(i + 1000)],
        Json::Num(f) => vec![Json::Num(f + 0.5), Json::Num(f + 1000.0)],
        Json::Bool(b) => vec![Json::Bool(!b)],
        Json::Null => vec![Json::Int(1), Json::Str("null".into())],
        _ => vec![],
    }
}

/// Just past a bound: below a minimum, above a maximum, on an exclusive one.
fn beyond(m: f64, exclusive: bool, above: bool, int: bool, step: f64) -> Json {
    if int {
        let past = match (exclusive, above) {
            (true, false) => m.floor(),
            (true, true) => m.ceil(),
            (false, false) if m.fract() == 0.0 => m - 1.0,
            (false, false) => m.floor(),
            (false, true) if m.fract() == 0.0 => m + 1.0,
            (false, true) => m.ceil(),
        };
        return Json::Int(past.clamp(i64::MIN as f64, i64::MAX as f64) as i64);
    }
    match (exclusive, above) {
        (true, _) => Json::Num(m),
        (false, false) => Json::Num(shift(m, -step)),
        (false, true) => Json::Num(shift(m, step)),
    }
}

/// Off the grid of `multipleOf m`: half a step away.
fn off_grid(value: &Json, m: f64) -> Vec<Json> {
    match value {
        // Every integer is a multiple of 1 or 0.5: only a coarser grid breaks.
        Json::Int(i) if m > 1.0 => vec![Json::Int(i + 1)],
        Json::Num(f) => vec![Json::Num(shift(*f, m / 2.0))],
        _ => vec![],
    }
}

/// `x + delta`, computed in decimal so `0 - 0.01` is `-0.01`.
fn shift(x: f64, delta: f64) -> f64 {
    let places = |v: f64| decimal(v).map_or(0, |(_, d)| d.min(15));
    let scale = 10f64.powi(places(x).max(places(delta)) as i32);
    ((x * scale).round() + (delta * scale).round()) / scale
}

/// Near misses of a pattern: a character replaced, added or dropped, the
/// letters' case swapped.
fn mismatches(chars: &[char]) -> Vec<Json> {
    let text = |cs: Vec<char>| Json::Str(cs.into_iter().collect());
    let mut out = Vec::new();
    for at in [0, chars.len() / 2, chars.len().saturating_sub(1)] {
        if at < chars.len() {
            let mut cs = chars.to_vec();
            cs[at] = '#';
            out.push(text(cs));
        }
    }
    out.push(text([&['#'], chars].concat()));
    out.push(text([chars, &['#']].concat()));
    if !chars.is_empty() {
        out.push(text(chars[1..].to_vec()));
        out.push(text(chars[..chars.len() - 1].to_vec()));
    }
    let swapped = chars
        .iter()
        .map(|c| {
            if c.is_ascii_uppercase() {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect();
    out.push(text(swapped));
    out
}

/// Values that are not of `format`, near the valid `s` where that is easy.
fn bad_formats(format: Format, s: &str) -> Vec<Json> {
    let strs = |v: Vec<String>| v.into_iter().map(Json::Str).collect();
    match format {
        Format::Uuid => {
            let mut g = s.to_string();
            if let Some((i, _)) = g.char_indices().find(|(_, c)| c.is_ascii_hexdigit()) {
                g.replace_range(i..i + 1, "g");
            }
            strs(vec![
                s.replace('-', ""),
                g,
                s.chars().take(35).collect(),
                "not-a-uuid".into(),
            ])
        }
        // Ours are `YYYY-MM-DDTHH:MM:SS.mmm` then `Z` or `±HH:MM`.
        Format::DateTime if s.len() > 23 && s.is_ascii() => {
            let (date_time, _) = s.split_at(23);
            let (year, rest) = s.split_at(5);
            strs(vec![
                date_time.to_string(),
                format!("{year}02-30{}", &rest[5..]),
                format!("{year}13-01{}", &rest[5..]),
            ])
        }
        Format::DateTime => strs(vec![
            "2026-11-01T00:00:00".into(),
            "2026-02-30T00:00:00Z".into(),
        ]),
        Format::Date if s.len() == 10 && s.is_ascii() => strs(vec![
            format!("{}02-30", &s[..5]),
            format!("{}13-01", &s[..5]),
            s.replace('-', "/"),
        ]),
        Format::Date => strs(vec!["2026-02-30".into()]),
        Format::Email => strs(vec![
            s.replace('@', "."),
            format!("{}@", s.split('@').next().unwrap_or("ada")),
            format!("@{}", s.split('@').nth(1).unwrap_or("example.com")),
        ]),
        Format::Ipv4 => {
            let parts: Vec<&str> = s.split('.').collect();
            strs(vec![
                format!("256.{}", parts[1..].join(".")),
                parts[..parts.len().saturating_sub(1)].join("."),
                format!("{s}.1"),
            ])
        }
        Format::Ipv6 => strs(vec![
            "2001:db8::1::2".into(),
            "12345::1".into(),
            "1:2:3:4:5:6:7".into(),
            format!("{s}:gggg"),
        ]),
        Format::Uri => strs(vec![
            s.split_once("://")
                .map_or("example.com/a".into(), |(_, rest)| rest.to_string()),
            s.replacen("example", "exa mple", 1),
        ]),
    }
}

fn at_mut<'a>(value: &'a mut Json, path: &[Step]) -> Option<&'a mut Json> {
    let Some((first, rest)) = path.split_first() else {
        return Some(value);
    };
    let next = match (first, value) {
        (Step::Key(k), Json::Object(members)) => {
            members.iter_mut().find(|(n, _)| n == k).map(|(_, v)| v)?
        }
        (Step::Index(i), Json::Array(items)) => items.get_mut(*i)?,
        _ => return None,
    };
    at_mut(next, rest)
}

/// Applies `edit`; false if its place is not in `value`.
fn apply(value: &mut Json, edit: &Edit) -> bool {
    match edit {
        Edit::Replace(path, new) => match at_mut(value, path) {
            Some(slot) => {
                *slot = new.clone();
                true
            }
            None => false,
        },
        Edit::Remove(path) | Edit::Duplicate(path) => {
            let Some((Step::Key(name), parent)) = path.split_last() else {
                return false;
            };
            let Some(Json::Object(members)) = at_mut(value, parent) else {
                return false;
            };
            let Some(i) = members.iter().position(|(k, _)| k == name) else {
                return false;
            };
            if matches!(edit, Edit::Remove(_)) {
                members.retain(|(k, _)| k != name);
            } else {
                let copy = members[i].clone();
                members.insert(i + 1, copy);
            }
            true
        }
        Edit::Add(path, name, new) => match at_mut(value, path) {
            Some(Json::Object(members)) => {
                members.push((name.clone(), new.clone()));
                true
            }
            _ => false,
        },
    }
}
