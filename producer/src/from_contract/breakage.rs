//! Breaking exactly one rule of a valid contract record. Every rule that
//! applies to the record (a keyword of a subschema at a place, `items[]`
//! counting as one place) offers edits that should break it; a rule is
//! chosen at random, then one of its edits, and the edit is kept only if
//! [`check`] then finds violations of that one rule alone (one place, one
//! code). An edit that also breaks another rule (an `if` switching branch,
//! a shortened string no longer matching its pattern) is passed over, so the
//! consumer reports the recorded code whatever order it checks rules in.

use std::collections::BTreeMap;

use lake::contract::{Format, Node};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;

use super::check::{self, admits, children};
use super::json::Json;

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

/// `record` with one rule of `root` broken, and the code of that violation;
/// `None` if no edit breaks a single rule.
pub fn break_one(rng: &mut SmallRng, root: &Node, record: &Json) -> Option<(Json, String)> {
    let mut rules = BTreeMap::new();
    collect(&[root], record, &mut Vec::new(), &mut rules);
    let mut rules: Vec<(String, Vec<Edit>)> = rules.into_iter().collect();
    rules.shuffle(rng);
    for (_, mut edits) in rules {
        edits.shuffle(rng);
        for edit in edits {
            let mut broken = record.clone();
            if !apply(&mut broken, &edit) {
                continue;
            }
            let found = check::violations(&[root], &broken);
            let Some(first) = found.first() else {
                continue;
            };
            if found.iter().all(|v| v == first) {
                return Some((broken, first.code.clone()));
            }
        }
    }
    None
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

/// Adds, by rule, the edits that may break each rule applying to `value`.
fn collect(
    nodes: &[&Node],
    value: &Json,
    path: &mut Vec<Step>,
    rules: &mut BTreeMap<String, Vec<Edit>>,
) {
    let applied = check::expand(nodes, value);
    let here = place(path);
    for (i, node) in applied.iter().enumerate() {
        // The node's index tells apart one keyword of two subschemas (a
        // column's type and an `else` branch's).
        let mut add = |at: &str, keyword: &str, edits: Vec<Edit>| {
            if !edits.is_empty() {
                rules
                    .entry(format!("{at}:{keyword}#{i}"))
                    .or_default()
                    .extend(edits);
            }
        };
        let replace = |values: Vec<Json>| -> Vec<Edit> {
            values
                .into_iter()
                .map(|v| Edit::Replace(path.clone(), v))
                .collect()
        };
        // A record that is no object is `not_object`, a rule of the batch.
        if node.ty.is_some() && !path.is_empty() {
            add(&here, "type", replace(wrong_types(value)));
        }
        if node.enum_values.is_some() {
            add(&here, "enum", replace(others(value)));
        }
        if node.const_value.is_some() {
            add(&here, "const", replace(others(value)));
        }
        if matches!(value, Json::Int(_) | Json::Num(_)) {
            let step = node.multiple_of.unwrap_or(1.0);
            let int = matches!(value, Json::Int(_));
            let bounds = [
                ("minimum", node.minimum, false, false),
                ("exclusiveMinimum", node.exclusive_minimum, true, false),
                ("maximum", node.maximum, false, true),
                ("exclusiveMaximum", node.exclusive_maximum, true, true),
            ];
            for (keyword, bound, exclusive, above) in bounds {
                if let Some(m) = bound {
                    add(
                        &here,
                        keyword,
                        replace(vec![beyond(m, exclusive, above, int, step)]),
                    );
                }
            }
            if let Some(m) = node.multiple_of {
                add(&here, "multipleOf", replace(off_grid(value, m)));
            }
        }
        if let Json::Str(s) = value {
            let chars: Vec<char> = s.chars().collect();
            if let Some(min) = node
                .min_length
                .filter(|m| (1..=chars.len() as u64).contains(m))
            {
                let short: String = chars[..min as usize - 1].iter().collect();
                add(&here, "minLength", replace(vec![Json::Str(short)]));
            }
            if let Some(max) = node.max_length.filter(|m| *m < 100_000) {
                let grow = (max as usize + 1).saturating_sub(chars.len());
                let last = chars.last().copied().unwrap_or('a');
                let first = chars.first().copied().unwrap_or('a');
                add(
                    &here,
                    "maxLength",
                    replace(vec![
                        Json::Str(format!("{s}{}", last.to_string().repeat(grow))),
                        Json::Str(format!("{}{s}", first.to_string().repeat(grow))),
                    ]),
                );
            }
            if node.pattern.is_some() {
                add(&here, "pattern", replace(mismatches(&chars)));
            }
            if let Some(format) = node.format {
                add(&here, "format", replace(bad_formats(format, s)));
            }
        }
        if let Json::Array(items) = value {
            if let Some(min) = node
                .min_items
                .filter(|m| (1..=items.len() as u64).contains(m))
            {
                let fewer = items[..min as usize - 1].to_vec();
                add(&here, "minItems", replace(vec![Json::Array(fewer)]));
            }
            if let Some(max) = node.max_items.filter(|m| *m < 1000 && !items.is_empty()) {
                let more = items
                    .iter()
                    .cycle()
                    .take(max as usize + 1)
                    .cloned()
                    .collect();
                add(&here, "maxItems", replace(vec![Json::Array(more)]));
            }
        }
        if let Json::Object(members) = value {
            let present = |name: &str| members.iter().any(|(k, _)| k == name);
            for name in node.required.iter().filter(|n| present(n)) {
                let at = with(path, Step::Key(name.clone()));
                let mut edits = vec![Edit::Remove(at.clone())];
                if children(&applied, name)
                    .iter()
                    .any(|c| !admits(c, &Json::Null))
                {
                    edits.push(Edit::Replace(at, Json::Null));
                }
                add(
                    &place(&with(path, Step::Key(name.clone()))),
                    "required",
                    edits,
                );
            }
            for (name, needs) in &node.dependent_required {
                if present(name) {
                    for need in needs.iter().filter(|n| present(n)) {
                        let at = with(path, Step::Key(need.clone()));
                        add(&place(&at), "dependentRequired", vec![Edit::Remove(at)]);
                    }
                }
            }
            if !node.additional_properties {
                let mut name = "unexpected".to_string();
                while node.properties.iter().any(|(p, _)| *p == name) {
                    name.push('_');
                }
                let edit = Edit::Add(path.clone(), name, Json::Str("surprise".into()));
                add(&here, "additionalProperties", vec![edit]);
            }
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
                rules.insert(":duplicate".into(), edits);
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
    let places = |v: f64| check::decimal(v).map_or(0, |(_, d)| d.min(15));
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
