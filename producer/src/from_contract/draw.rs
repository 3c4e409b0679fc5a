//! Drawing one value meant to satisfy every subschema that applies at its
//! place (a column's, plus constraints from `if`/`then`/`else` branches):
//! a guided draw for each keyword (enum, bounds, lengths, pattern, format,
//! members, items). For objects, the branch each `if` selects is applied
//! and the members it constrains drawn again. Nothing here judges: the
//! decoder does, on the whole record, and a record it refuses is drawn
//! again (`super::draw_record`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use lake::contract::{Conditional, Format, JsonType, Node};
use rand::rngs::SmallRng;
use rand::{Rng, RngCore};
use regex_syntax::hir::Hir;
use serde_json::Value;

use super::json::Json;
use super::pattern;
use crate::draw::pick;
use crate::generate::{format_ts, OFFSETS_SECS};

/// Draws of a pattern's string before giving up on one of a fitting length.
const ATTEMPTS: usize = 50;
/// Share of optional members present.
const PRESENT: f64 = 0.8;
/// Share of nullable values written as null.
const NULL: f64 = 0.1;
/// Width of a range with a missing bound.
const SPAN: i64 = 1000;
/// Integers stay within ±2^53, where f64 (bounds) is exact.
const LIMIT: i64 = 1 << 53;

const WORDS: [&str; 12] = [
    "alpha", "bravo", "cedar", "delta", "ember", "fjord", "grove", "harbor", "indigo", "juniper",
    "kepler", "lumen",
];
/// Mostly ASCII, with code points of 2, 3 and 4 UTF-8 bytes (the last two
/// UTF-16 units) so lengths are counted in code points.
const TEXT: [char; 16] = [
    'a', 'e', 'i', 'o', 'u', 'n', 'r', 's', 't', 'l', ' ', '0', '7', 'é', '日', '😀',
];
/// What may follow the match of a pattern with no `$`.
const TAIL: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789/-_";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Bool,
    Int,
    Num,
    Str,
    Obj,
    Arr,
}

const KINDS: [Kind; 6] = [
    Kind::Bool,
    Kind::Int,
    Kind::Num,
    Kind::Str,
    Kind::Obj,
    Kind::Arr,
];

/// The drawing state: the seeded generator, and what the current record
/// needs to know about time and its special fields.
pub struct Drawer {
    pub rng: SmallRng,
    /// The record's time (ms since the epoch) and the offset it is written in.
    pub record_ms: i64,
    pub offset_secs: i32,
    /// The top-level field that takes `record_ms` as it is.
    pub event_time: String,
    /// Top-level fields drawn from a fixed list (users, customers, devices).
    pub ids: Vec<(String, Vec<Json>)>,
    /// Parsed patterns, by their text.
    hirs: HashMap<String, Hir>,
    /// The branch chance chose for each `if` (by address) that [`selects`]
    /// cannot decide: one choice per record, which array items share, so
    /// that long arrays do not make a valid record unlikely. Cleared for
    /// each record.
    pub chosen: Vec<(usize, bool)>,
}

impl Drawer {
    pub fn new(rng: SmallRng, event_time: String) -> Drawer {
        Drawer {
            rng,
            record_ms: 0,
            offset_secs: 0,
            event_time,
            ids: Vec::new(),
            hirs: HashMap::new(),
            chosen: Vec::new(),
        }
    }

    /// A value meant for all of `nodes`; `path` names it in errors and
    /// `depth` is 0 for the record, 1 for its members.
    pub fn value(&mut self, nodes: &[&Node], path: &str, depth: usize) -> Result<Json, String> {
        if let Some(value) = self.listed(nodes, path)? {
            return Ok(value);
        }
        let allowed = |kind: Kind| nodes.iter().all(|n| admits(n, kind));
        let kinds: Vec<Kind> = KINDS.into_iter().filter(|k| allowed(*k)).collect();
        let null = allowed(Kind::Null);
        if kinds.is_empty() {
            return if null {
                Ok(Json::Null)
            } else {
                Err(format!(
                    "{}: no JSON type satisfies all its rules",
                    describe(path)
                ))
            };
        }
        if null && self.rng.random_bool(NULL) {
            return Ok(Json::Null);
        }
        let preferred = nodes.iter().find_map(|n| n.ty).map(|ty| match ty {
            JsonType::Boolean => Kind::Bool,
            JsonType::Integer => Kind::Int,
            JsonType::Number => Kind::Num,
            JsonType::Object => Kind::Obj,
            JsonType::Array => Kind::Arr,
            JsonType::String | JsonType::Null => Kind::Str,
        });
        let kind = preferred.filter(|k| kinds.contains(k)).unwrap_or(kinds[0]);
        match kind {
            Kind::Bool => Ok(Json::Bool(self.rng.random_bool(0.5))),
            Kind::Int => self.integer(nodes, path),
            Kind::Num => self.number(nodes, path),
            Kind::Str => self.string(nodes, path, depth),
            Kind::Obj => self.object(nodes, path, depth),
            Kind::Arr => self.array(nodes, path, depth),
            Kind::Null => Ok(Json::Null),
        }
    }

    /// A value of the first `const` or `enum` among `nodes` that the others
    /// list too and whose type they all admit; `None` if none lists values.
    fn listed(&mut self, nodes: &[&Node], path: &str) -> Result<Option<Json>, String> {
        let Some(values) = nodes.iter().find_map(|n| listed(n)) else {
            return Ok(None);
        };
        let fits = |v: &Json| {
            nodes.iter().all(|n| {
                admits(n, kind(v)) && listed(n).is_none_or(|vs| vs.iter().any(|w| v.same_as(w)))
            })
        };
        // Mostly any value fits: try a few before filtering them all (each
        // test scans the enums, so that costs their size squared).
        for _ in 0..8 {
            let value = Json::from_value(&values[self.rng.random_range(0..values.len())]);
            if fits(&value) {
                return Ok(Some(value));
            }
        }
        let fit: Vec<Json> = values.iter().map(Json::from_value).filter(fits).collect();
        if fit.is_empty() {
            return Err(format!(
                "{}: no value of its enum satisfies its other rules",
                describe(path)
            ));
        }
        Ok(Some(fit[self.rng.random_range(0..fit.len())].clone()))
    }

    /// A number in `[lo, hi]` of the grid `k * step`, now and then on an end
    /// of the range so that bounds are exercised.
    fn pick_k(&mut self, lo: i64, hi: i64) -> i64 {
        match self.rng.random_range(0..20) {
            0 => lo,
            1 => hi,
            _ => self.rng.random_range(lo..=hi),
        }
    }

    fn integer(&mut self, nodes: &[&Node], path: &str) -> Result<Json, String> {
        let b = Bounds::of(nodes);
        // The integers that are multiples of p/10^d are those of p/gcd(p, 10^d).
        let step = match nodes.iter().find_map(|n| n.multiple_of) {
            Some(m) => {
                let (p, d) = decimal(m).filter(|(_, d)| *d <= 18).ok_or_else(|| {
                    format!("{}: multipleOf {m} is too fine to draw", describe(path))
                })?;
                let scale = 10i128.pow(d);
                i64::try_from(p / gcd(p, scale)).unwrap_or(LIMIT)
            }
            None => 1,
        };
        let lo =
            b.lo.map(|(m, ex)| if ex { m.floor() + 1.0 } else { m.ceil() });
        let hi =
            b.hi.map(|(m, ex)| if ex { m.ceil() - 1.0 } else { m.floor() });
        let (lo, hi) = span(lo.map(clamp), hi.map(clamp));
        let (kmin, kmax) = (
            lo.div_euclid(step) + i64::from(lo.rem_euclid(step) != 0),
            hi.div_euclid(step),
        );
        if kmin > kmax {
            return Err(format!(
                "{}: no integer between {lo} and {hi} that is a multiple of {step}",
                describe(path)
            ));
        }
        Ok(Json::Int(self.pick_k(kmin, kmax) * step))
    }

    fn number(&mut self, nodes: &[&Node], path: &str) -> Result<Json, String> {
        let b = Bounds::of(nodes);
        // Values k * p / 10^d: multiples of multipleOf, else of 0.01.
        let (p, d) = match nodes.iter().find_map(|n| n.multiple_of) {
            Some(m) => decimal(m)
                .filter(|(p, d)| *d <= 15 && *p > 0 && *p < i128::from(LIMIT))
                .ok_or_else(|| format!("{}: multipleOf {m} is too fine to draw", describe(path)))?,
            None => (1, 2),
        };
        let (p, unit) = (p as f64, 10f64.powi(d as i32));
        let value = |k: i64| k as f64 * p / unit;
        let step = p / unit;
        let (lo, hi) = match (b.lo.map(|l| l.0), b.hi.map(|h| h.0)) {
            (Some(l), Some(h)) => (l, h),
            (Some(l), None) => (l, l + SPAN as f64 * step.max(1.0)),
            (None, Some(h)) => (h - SPAN as f64 * step.max(1.0), h),
            (None, None) => (0.0, SPAN as f64),
        };
        let limit = (LIMIT as f64 / p).floor();
        let mut kmin = (lo / step).ceil().clamp(-limit, limit) as i64;
        let mut kmax = (hi / step).floor().clamp(-limit, limit) as i64;
        // Division rounds: settle each end on the grid point next to its bound.
        for _ in 0..3 {
            if !b.holds(value(kmin)) {
                kmin += 1;
            }
            if !b.holds(value(kmax)) {
                kmax -= 1;
            }
        }
        if kmin > kmax {
            return Err(format!(
                "{}: no number between {lo} and {hi} on a grid of {step}",
                describe(path)
            ));
        }
        Ok(Json::Num(value(self.pick_k(kmin, kmax))))
    }

    fn string(&mut self, nodes: &[&Node], path: &str, depth: usize) -> Result<Json, String> {
        let min = nodes.iter().filter_map(|n| n.min_length).max().unwrap_or(0);
        let max = nodes.iter().filter_map(|n| n.max_length).min();
        if max.is_some_and(|max| max < min) {
            return Err(format!(
                "{}: minLength {min} is above maxLength {}",
                describe(path),
                max.unwrap_or_default()
            ));
        }
        if let Some(format) = nodes.iter().find_map(|n| n.format) {
            return Ok(Json::Str(self.formatted(format, path, depth)));
        }
        if let Some(regex) = nodes.iter().find_map(|n| n.pattern.as_ref()) {
            let source = regex.as_str();
            if !self.hirs.contains_key(source) {
                let hir = pattern::parse(source).map_err(|e| format!("{}: {e}", describe(path)))?;
                self.hirs.insert(source.to_string(), hir);
            }
            let hir = &self.hirs[source];
            for attempt in 0..ATTEMPTS {
                // Later draws let unbounded repetitions grow, for long minLengths.
                let spread = 3u32 << (attempt / 8).min(9);
                let mut text = pattern::generate(hir, &mut self.rng, spread)
                    .map_err(|e| format!("{}: {e}", describe(path)))?;
                let have = text.chars().count() as u64;
                if !pattern::anchored_end(hir) {
                    let room = max.map_or(u64::MAX, |m| m.saturating_sub(have));
                    let free = if self.rng.random_bool(0.7) {
                        self.rng.random_range(0..=12)
                    } else {
                        0
                    };
                    for _ in 0..free.max(min.saturating_sub(have)).min(room) {
                        text.push(char::from(pick(&mut self.rng, TAIL)));
                    }
                }
                let have = text.chars().count() as u64;
                if have >= min && max.is_none_or(|m| have <= m) {
                    return Ok(Json::Str(text));
                }
            }
            let most = max.map_or("any".into(), |m| m.to_string());
            return Err(format!(
                "{}: no string of the pattern {source:?} in {ATTEMPTS} draws has \
                 {min} to {most} characters",
                describe(path)
            ));
        }
        let lo = min.max(1).min(max.unwrap_or(u64::MAX));
        let hi = max.unwrap_or(u64::MAX).min(lo + 24).max(lo);
        let len = self.rng.random_range(lo..=hi);
        let text = (0..len)
            .map(|_| {
                if self.rng.random_bool(0.9) {
                    char::from(b'a' + self.rng.random_range(0..26u8))
                } else {
                    pick(&mut self.rng, &TEXT)
                }
            })
            .collect();
        Ok(Json::Str(text))
    }

    /// A value of `format`; date-times follow the record's time.
    fn formatted(&mut self, format: Format, path: &str, depth: usize) -> String {
        let rng = &mut self.rng;
        match format {
            Format::Uuid => {
                let mut bytes = [0u8; 16];
                rng.fill_bytes(&mut bytes);
                uuid::Builder::from_random_bytes(bytes)
                    .into_uuid()
                    .hyphenated()
                    .to_string()
            }
            Format::DateTime if depth == 1 && path == self.event_time => {
                format_ts(self.record_ms, self.offset_secs)
            }
            Format::DateTime => {
                let later = rng.random_range(0..=3_600_000);
                format_ts(self.record_ms + later, pick(rng, &OFFSETS_SECS))
            }
            Format::Date => {
                let earlier = rng.random_range(0..=3 * 86_400_000);
                DateTime::<Utc>::from_timestamp_millis(self.record_ms - earlier)
                    .map(|d| d.format("%Y-%m-%d").to_string())
                    .unwrap_or_else(|| "2026-11-01".into())
            }
            Format::Email => format!(
                "{}{}@example.com",
                pick(rng, &WORDS),
                rng.random_range(1..=9999)
            ),
            Format::Ipv4 => format!(
                "{}.{}.{}.{}",
                rng.random_range(1..=223),
                rng.random_range(0..=255),
                rng.random_range(0..=255),
                rng.random_range(1..=254)
            ),
            Format::Ipv6 => {
                let groups: Vec<String> = (0..6)
                    .map(|_| format!("{:x}", rng.random::<u16>()))
                    .collect();
                format!("2001:db8:{}", groups.join(":"))
            }
            Format::Uri => format!(
                "https://example.com/{}/{}",
                pick(rng, &WORDS),
                rng.random_range(1..=9999)
            ),
        }
    }

    fn object(&mut self, nodes: &[&Node], path: &str, depth: usize) -> Result<Json, String> {
        let mut applied: Vec<&Node> = nodes.to_vec();
        let mut members = Vec::new();
        self.fill(&applied, &[], &mut members, path, depth)?;
        // Apply the branch each `if` selects; the members drawn again for it
        // may select further branches, of the branches' own `if`s.
        let mut decided = 0;
        for _ in 0..4 {
            let mut branches = Vec::new();
            for node in &applied[decided..] {
                if let Some(c) = &node.conditional {
                    let holds = match selects(&c.condition, &members) {
                        Some(holds) => holds,
                        // Chance chose `then`: the members are drawn again
                        // to satisfy the `if` as well.
                        None => {
                            let holds = self.chance(c);
                            branches.extend(holds.then_some(&c.condition));
                            holds
                        }
                    };
                    branches.extend(if holds { &c.then } else { &c.otherwise });
                }
            }
            decided = applied.len();
            if branches.is_empty() {
                break;
            }
            applied.extend(&branches);
            self.fill(&applied, &branches, &mut members, path, depth)?;
        }
        Ok(Json::Object(members))
    }

    /// Whether `then` applies for an `if` left to chance.
    fn chance(&mut self, conditional: &Conditional) -> bool {
        let id = std::ptr::from_ref(conditional) as usize;
        if let Some((_, holds)) = self.chosen.iter().find(|(c, _)| *c == id) {
            return *holds;
        }
        let holds = self.rng.random_bool(0.5);
        self.chosen.push((id, holds));
        holds
    }

    /// Draws the members `applied` asks for: required ones, optional ones
    /// with probability [`PRESENT`], those `dependentRequired` needs. Once
    /// `branches` apply, draws again the members they constrain and adds
    /// those they require; then an optional member no value fits (one a
    /// branch allows only as null where its type refuses null) is left out.
    fn fill(
        &mut self,
        applied: &[&Node],
        branches: &[&Node],
        members: &mut Vec<(String, Json)>,
        path: &str,
        depth: usize,
    ) -> Result<(), String> {
        let mut names: Vec<&str> = Vec::new();
        for node in applied {
            for (name, _) in &node.properties {
                if !names.contains(&name.as_str()) {
                    names.push(name);
                }
            }
        }
        let first = branches.is_empty();
        for name in &names {
            let required = requires(applied, name);
            let at = members.iter().position(|(k, _)| k == name);
            let draw = match at {
                None => required || (first && self.rng.random_bool(PRESENT)),
                Some(_) => !children(branches, name).is_empty(),
            };
            if !draw {
                continue;
            }
            match (self.member(name, &children(applied, name), path, depth), at) {
                (Ok(value), None) => members.push((name.to_string(), value)),
                (Ok(value), Some(i)) => members[i].1 = value,
                (Err(e), _) if required || first => return Err(e),
                (Err(_), None) => {}
                (Err(_), Some(i)) => {
                    members.remove(i);
                }
            }
        }
        for node in applied {
            for (name, needs) in &node.dependent_required {
                for need in needs {
                    let has = |n: &str| members.iter().any(|(k, _)| k == n);
                    if !has(name) || has(need) {
                        continue;
                    }
                    match self.member(need, &children(applied, need), path, depth) {
                        Ok(value) => members.push((need.clone(), value)),
                        // What needs a member no value fits goes too.
                        Err(_) if !first && !requires(applied, name) => {
                            members.retain(|(k, _)| k != name)
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        // Stable: members keep the order of the contract's properties.
        members.sort_by_key(|(k, _)| names.iter().position(|n| n == k).unwrap_or(usize::MAX));
        Ok(())
    }

    fn member(
        &mut self,
        name: &str,
        kids: &[&Node],
        path: &str,
        depth: usize,
    ) -> Result<Json, String> {
        // The list was drawn for the column alone.
        if let (0, [_]) = (depth, kids) {
            if let Some((_, list)) = self.ids.iter().find(|(n, _)| n == name) {
                return Ok(list[self.rng.random_range(0..list.len())].clone());
            }
        }
        self.value(kids, &join(path, name), depth + 1)
    }

    fn array(&mut self, nodes: &[&Node], path: &str, depth: usize) -> Result<Json, String> {
        let min = nodes.iter().filter_map(|n| n.min_items).max().unwrap_or(0);
        let max = nodes
            .iter()
            .filter_map(|n| n.max_items)
            .min()
            .unwrap_or(u64::MAX);
        if max < min {
            return Err(format!(
                "{}: minItems {min} is above maxItems {max}",
                describe(path)
            ));
        }
        let len = self.rng.random_range(min..=max.min(min.max(1) + 4));
        let kids: Vec<&Node> = nodes.iter().filter_map(|n| n.items.as_deref()).collect();
        let items = (0..len)
            .map(|i| self.value(&kids, &format!("{path}[{i}]"), depth + 1))
            .collect::<Result<_, _>>()?;
        Ok(Json::Array(items))
    }

    /// `--users` distinct values for the top-level field `name` (`node`):
    /// consecutive integers from its lower bound, like the events' user ids,
    /// else distinct draws.
    pub fn id_list(&mut self, name: &str, node: &Node, users: u64) -> Result<Vec<Json>, String> {
        let plain = node.enum_values.is_none() && node.const_value.is_none();
        if node.ty == Some(JsonType::Integer) && plain && node.multiple_of.is_none() {
            let b = Bounds::of(&[node]);
            let first = b.lo.map_or(1, |(m, ex)| {
                clamp(if ex { m.floor() + 1.0 } else { m.ceil() })
            });
            let last = first.saturating_add(users as i64 - 1);
            if b.holds(last as f64) {
                return Ok((first..=last).map(Json::Int).collect());
            }
        }
        let mut seen = std::collections::HashSet::new();
        let mut list = Vec::new();
        for _ in 0..users.saturating_mul(20) {
            if list.len() as u64 == users {
                break;
            }
            let value = self.value(&[node], name, 1)?;
            if !value.is_null() && seen.insert(crate::record::to_json(&value)) {
                list.push(value);
            }
        }
        if list.is_empty() {
            return Err(format!("field `{name}`: no non-null value to list"));
        }
        Ok(list)
    }
}

/// Whether a node's `type` lets values of `kind` through. A number column
/// admits integers too; an integer column is drawn as integers only.
fn admits(node: &Node, kind: Kind) -> bool {
    if kind == Kind::Null && node.nullable {
        return true;
    }
    match node.ty {
        None => true,
        Some(ty) => matches!(
            (ty, kind),
            (JsonType::Null, Kind::Null)
                | (JsonType::Boolean, Kind::Bool)
                | (JsonType::Integer, Kind::Int)
                | (JsonType::Number, Kind::Int | Kind::Num)
                | (JsonType::String, Kind::Str)
                | (JsonType::Object, Kind::Obj)
                | (JsonType::Array, Kind::Arr)
        ),
    }
}

/// The kind of a value, as [`admits`] takes it.
fn kind(value: &Json) -> Kind {
    match value {
        Json::Null => Kind::Null,
        Json::Bool(_) => Kind::Bool,
        Json::Int(_) => Kind::Int,
        Json::Num(_) => Kind::Num,
        Json::Str(_) => Kind::Str,
        Json::Object(_) => Kind::Obj,
        Json::Array(_) => Kind::Arr,
    }
}

/// The values a node's `const` or `enum` lists.
fn listed(node: &Node) -> Option<&[Value]> {
    match &node.const_value {
        Some(value) => Some(std::slice::from_ref(value)),
        None => node.enum_values.as_deref(),
    }
}

/// Which branch an `if` selects, when it only lists values of members
/// (`{"properties": {"status": {"const": "PAID"}}, "required": ["status"]}`);
/// `None` when it says more, and chance decides ([`Drawer::chance`]; the
/// decoder refuses the record if it chose wrong).
fn selects(condition: &Node, members: &[(String, Json)]) -> Option<bool> {
    let plain = condition.ty.is_none()
        && condition.conditional.is_none()
        && condition.dependent_required.is_empty()
        && condition.additional_properties;
    if !plain {
        return None;
    }
    let member = |name: &str| members.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let mut holds = condition.required.iter().all(|r| member(r).is_some());
    for (name, node) in &condition.properties {
        let values = listed(node)?;
        holds &= member(name).is_none_or(|v| values.iter().any(|w| v.same_as(w)));
    }
    Some(holds)
}

/// `a.b`: a member's path as messages name it.
fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// The subschemas of member `name` among `nodes`.
pub fn children<'n>(nodes: &[&'n Node], name: &str) -> Vec<&'n Node> {
    nodes
        .iter()
        .filter_map(|n| n.properties.iter().find(|(p, _)| p == name).map(|(_, c)| c))
        .collect()
}

fn requires(nodes: &[&Node], name: &str) -> bool {
    nodes.iter().any(|n| n.required.iter().any(|r| r == name))
}

/// `x` as `mantissa / 10^decimals`, from its shortest decimal text.
pub fn decimal(x: f64) -> Option<(i128, u32)> {
    if !x.is_finite() {
        return None;
    }
    // Display writes no exponent and the fewest digits that read back as x.
    let text = format!("{}", x.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mantissa: i128 = format!("{int}{frac}").parse().ok()?;
    let decimals = u32::try_from(frac.len()).ok()?;
    Some((if x < 0.0 { -mantissa } else { mantissa }, decimals))
}

/// The tightest numeric bounds of all nodes, each `(bound, exclusive)`.
struct Bounds {
    lo: Option<(f64, bool)>,
    hi: Option<(f64, bool)>,
}

impl Bounds {
    fn of(nodes: &[&Node]) -> Bounds {
        let mut b = Bounds { lo: None, hi: None };
        for n in nodes {
            for (bound, exclusive) in [(n.minimum, false), (n.exclusive_minimum, true)] {
                if let Some(m) = bound {
                    if b.lo
                        .is_none_or(|(l, ex)| m > l || (m == l && exclusive && !ex))
                    {
                        b.lo = Some((m, exclusive));
                    }
                }
            }
            for (bound, exclusive) in [(n.maximum, false), (n.exclusive_maximum, true)] {
                if let Some(m) = bound {
                    if b.hi
                        .is_none_or(|(h, ex)| m < h || (m == h && exclusive && !ex))
                    {
                        b.hi = Some((m, exclusive));
                    }
                }
            }
        }
        b
    }

    fn holds(&self, x: f64) -> bool {
        self.lo
            .is_none_or(|(m, ex)| if ex { x > m } else { x >= m })
            && self
                .hi
                .is_none_or(|(m, ex)| if ex { x < m } else { x <= m })
    }
}

fn clamp(x: f64) -> i64 {
    x.clamp(-(LIMIT as f64), LIMIT as f64) as i64
}

/// Fills a missing end of an integer range `SPAN` away from the other.
fn span(lo: Option<i64>, hi: Option<i64>) -> (i64, i64) {
    match (lo, hi) {
        (Some(l), Some(h)) => (l, h),
        (Some(l), None) => (l, l.saturating_add(SPAN).min(LIMIT)),
        (None, Some(h)) => (h.saturating_sub(SPAN).max(-LIMIT), h),
        (None, None) => (0, SPAN),
    }
}

fn gcd(a: i128, b: i128) -> i128 {
    if b == 0 {
        a.abs()
    } else {
        gcd(b, a % b)
    }
}

/// How errors name a place: "the record" or "field `items[0].qty`".
pub fn describe(path: &str) -> String {
    if path.is_empty() {
        "the record".into()
    } else {
        format!("field `{path}`")
    }
}
