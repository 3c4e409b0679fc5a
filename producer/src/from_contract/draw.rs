//! Drawing one value that satisfies every subschema that applies at its
//! place (a column's, plus constraints from `if`/`then`/`else` branches):
//! a guided draw for each keyword (enum, bounds, lengths, pattern, format,
//! members, items), then [`check`] as the judge, drawing again when it
//! refuses. For objects, the branches the record's own `if`s select are
//! applied and the members they constrain drawn again.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use lake::contract::{Format, JsonType, Node};
use rand::rngs::SmallRng;
use rand::{Rng, RngCore};
use regex_syntax::hir::Hir;

use super::check::{self, children, join, requires};
use super::json::Json;
use super::pattern;
use crate::draw::pick;
use crate::generate::{format_ts, OFFSETS_SECS};

/// Draws of one value before giving up on it.
const ATTEMPTS: usize = 50;
/// Share of optional members present.
const PRESENT: f64 = 0.8;
/// Share of nullable values written as null.
const NULL: f64 = 0.1;
/// Width of a range with a missing bound.
const SPAN: i64 = 1000;
/// Integers stay within ±2^53, where f64 (bounds, checks) is exact.
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
        }
    }

    /// A value valid against all of `nodes`; `path` names it in errors and
    /// `depth` is 0 for the record, 1 for its members.
    pub fn value(&mut self, nodes: &[&Node], path: &str, depth: usize) -> Result<Json, String> {
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            let value = self.once(nodes, path, depth, attempt)?;
            match check::violations(nodes, &value).first() {
                None => return Ok(value),
                Some(v) => last = format!("{} at `{}`", v.code, v.path),
            }
        }
        Err(format!(
            "{}: no value satisfying every rule in {ATTEMPTS} draws (the last broke {last})",
            describe(path)
        ))
    }

    fn once(
        &mut self,
        nodes: &[&Node],
        path: &str,
        depth: usize,
        attempt: usize,
    ) -> Result<Json, String> {
        // enum and const name the values outright.
        if let Some(value) = nodes.iter().find_map(|n| n.const_value.as_ref()) {
            return Ok(Json::from_value(value));
        }
        if let Some(values) = nodes.iter().find_map(|n| n.enum_values.as_ref()) {
            // Mostly any value fits: try a few before filtering them all
            // (each check scans the enum, so that costs its size squared).
            for _ in 0..8 {
                let value = Json::from_value(&values[self.rng.random_range(0..values.len())]);
                if check::is_valid(nodes, &value) {
                    return Ok(value);
                }
            }
            let fit: Vec<Json> = values
                .iter()
                .map(Json::from_value)
                .filter(|v| check::is_valid(nodes, v))
                .collect();
            if fit.is_empty() {
                return Err(format!(
                    "{}: no value of its enum satisfies its other rules",
                    describe(path)
                ));
            }
            return Ok(fit[self.rng.random_range(0..fit.len())].clone());
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
            Kind::Str => self.string(nodes, path, depth, attempt),
            Kind::Obj => self.object(nodes, path, depth),
            Kind::Arr => self.array(nodes, path, depth),
            Kind::Null => Ok(Json::Null),
        }
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
                let (p, d) = check::decimal(m).filter(|(_, d)| *d <= 18).ok_or_else(|| {
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
            Some(m) => check::decimal(m)
                .filter(|(p, d)| *d <= 15 && *p > 0 && *p < i128::from(LIMIT))
                .ok_or_else(|| format!("{}: multipleOf {m} is too fine to draw", describe(path)))?,
            None => (1, 2),
        };
        let (p, unit) = (p as f64, 10f64.powi(d as i32));
        let value = |k: i64| k as f64 * p / unit;
        let step = p / unit;
        let low_ok = |x: f64| b.lo.is_none_or(|(m, ex)| if ex { x > m } else { x >= m });
        let high_ok = |x: f64| b.hi.is_none_or(|(m, ex)| if ex { x < m } else { x <= m });
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
            if !low_ok(value(kmin)) {
                kmin += 1;
            }
            if !high_ok(value(kmax)) {
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

    fn string(
        &mut self,
        nodes: &[&Node],
        path: &str,
        depth: usize,
        attempt: usize,
    ) -> Result<Json, String> {
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
            // Later draws let unbounded repetitions grow, for long minLengths.
            let spread = 3u32 << (attempt / 8).min(9);
            let mut text = pattern::generate(hir, &mut self.rng, spread)
                .map_err(|e| format!("{}: {e}", describe(path)))?;
            if !pattern::anchored_end(hir) {
                let have = text.chars().count() as u64;
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
            return Ok(Json::Str(text));
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
        self.fill(&applied, &mut members, path, depth, false)?;
        // Apply the branches the members select; drawing members again can
        // select others, which the caller's check refuses.
        for _ in 0..4 {
            let now = check::expand(&applied, &Json::Object(members.clone()));
            if now.len() == applied.len() {
                break;
            }
            applied = now;
            // A branch may ask what the members drawn so far cannot give (a
            // member it allows only as null that another one requires): the
            // caller's check then refuses the object and draws it anew.
            if self
                .fill(&applied, &mut members, path, depth, true)
                .is_err()
            {
                break;
            }
        }
        Ok(Json::Object(members))
    }

    /// Draws the members `applied` asks for: required ones, optional ones
    /// with probability [`PRESENT`], those `dependentRequired` needs. With
    /// `repair`, draws again members that break a rule of `applied` instead
    /// of adding optional ones.
    fn fill(
        &mut self,
        applied: &[&Node],
        members: &mut Vec<(String, Json)>,
        path: &str,
        depth: usize,
        repair: bool,
    ) -> Result<(), String> {
        let mut names: Vec<&str> = Vec::new();
        for node in applied {
            for (name, _) in &node.properties {
                if !names.contains(&name.as_str()) {
                    names.push(name);
                }
            }
        }
        for name in &names {
            let kids = children(applied, name);
            let required = requires(applied, name);
            match members.iter().position(|(k, _)| k == name) {
                None if required || (!repair && self.rng.random_bool(PRESENT)) => {
                    let value = self.member(name, &kids, path, depth)?;
                    members.push((name.to_string(), value));
                }
                Some(i) if repair && !check::is_valid(&kids, &members[i].1) => {
                    // An optional member a branch allows only as null is
                    // mostly left out.
                    if !required && only_null(&kids) && self.rng.random_bool(PRESENT) {
                        members.remove(i);
                    } else {
                        members[i].1 = self.member(name, &kids, path, depth)?;
                    }
                }
                _ => {}
            }
        }
        for node in applied {
            for (name, needs) in &node.dependent_required {
                if !members.iter().any(|(k, _)| k == name) {
                    continue;
                }
                for need in needs {
                    if !members.iter().any(|(k, _)| k == need) {
                        let value = self.member(need, &children(applied, need), path, depth)?;
                        members.push((need.clone(), value));
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
        if depth == 0 {
            if let Some((_, list)) = self.ids.iter().find(|(n, _)| n == name) {
                let value = list[self.rng.random_range(0..list.len())].clone();
                if check::is_valid(kids, &value) {
                    return Ok(value);
                }
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
        if node.ty == Some(JsonType::Integer) {
            let first = Bounds::of(&[node]).lo.map_or(1, |(m, ex)| {
                clamp(if ex { m.floor() + 1.0 } else { m.ceil() })
            });
            let list: Vec<Json> = (0..users as i64)
                .map(|i| Json::Int(first.saturating_add(i)))
                .take_while(|v| check::is_valid(&[node], v))
                .collect();
            if list.len() as u64 == users {
                return Ok(list);
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

/// Whether `nodes` together allow nothing but null (`"type": "null"`,
/// `"const": null`, an enum of null).
fn only_null(nodes: &[&Node]) -> bool {
    let null = |v: &serde_json::Value| v.is_null();
    KINDS.iter().all(|k| !nodes.iter().all(|n| admits(n, *k)))
        || nodes.iter().any(|n| {
            n.const_value.as_ref().is_some_and(null)
                || n.enum_values.as_ref().is_some_and(|vs| vs.iter().all(null))
        })
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
