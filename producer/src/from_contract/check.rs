//! The contract's rules applied to a generated record, each violation with
//! the error code the consumer reports for it. The generator uses this to
//! keep valid records valid and to keep only breakages that break exactly one
//! rule, so the code the summary counts is the one the consumer must give
//! whatever order it checks rules in.
//!
//! Codes: required absent, or required and non-nullable but null →
//! `missing_field`; type → `wrong_type`; bounds and multipleOf →
//! `out_of_range`; enum and const → `not_in_enum`; minLength/minItems →
//! `too_short`; maxLength/maxItems → `too_long`; pattern →
//! `pattern_mismatch`; format date-time → `bad_timestamp`, other formats →
//! `bad_format`; additionalProperties false → `unexpected_field`;
//! dependentRequired → `missing_field`; a name twice → `duplicate_field`. A
//! subschema's `x-error-code` replaces the code of its own keywords, not of
//! its children's.

use std::collections::BTreeSet;

use lake::contract::{Format, JsonType, Node};

use super::json::Json;

pub const MISSING_FIELD: &str = "missing_field";
pub const WRONG_TYPE: &str = "wrong_type";
pub const OUT_OF_RANGE: &str = "out_of_range";
pub const NOT_IN_ENUM: &str = "not_in_enum";
pub const TOO_SHORT: &str = "too_short";
pub const TOO_LONG: &str = "too_long";
pub const PATTERN_MISMATCH: &str = "pattern_mismatch";
pub const BAD_TIMESTAMP: &str = "bad_timestamp";
pub const BAD_FORMAT: &str = "bad_format";
pub const UNEXPECTED_FIELD: &str = "unexpected_field";
pub const DUPLICATE_FIELD: &str = "duplicate_field";

/// One broken rule: where (`items[2].qty`, "" for the record) and its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub path: String,
    pub code: String,
}

/// Every violation of `value` against all of `nodes` (the subschemas that
/// apply at its place).
pub fn violations(nodes: &[&Node], value: &Json) -> Vec<Violation> {
    let mut out = Vec::new();
    check(nodes, value, "", &mut out);
    out
}

pub fn is_valid(nodes: &[&Node], value: &Json) -> bool {
    violations(nodes, value).is_empty()
}

/// `nodes` plus the `then` or `else` branch each one's `if` selects for
/// `value`, recursively; each node once.
pub fn expand<'n>(nodes: &[&'n Node], value: &Json) -> Vec<&'n Node> {
    let mut out = Vec::new();
    for node in nodes {
        push_applied(node, value, &mut out);
    }
    out
}

fn push_applied<'n>(node: &'n Node, value: &Json, out: &mut Vec<&'n Node>) {
    if out.iter().any(|n| std::ptr::eq(*n, node)) {
        return;
    }
    out.push(node);
    if let Some(c) = &node.conditional {
        let branch = if is_valid(&[&c.condition], value) {
            c.then.as_ref()
        } else {
            c.otherwise.as_ref()
        };
        if let Some(branch) = branch {
            push_applied(branch, value, out);
        }
    }
}

/// `a.b`, `a[1]`: a field's path as messages name it.
pub fn join(path: &str, name: &str) -> String {
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

pub fn requires(nodes: &[&Node], name: &str) -> bool {
    nodes.iter().any(|n| n.required.iter().any(|r| r == name))
}

fn check(nodes: &[&Node], value: &Json, path: &str, out: &mut Vec<Violation>) {
    let applied = expand(nodes, value);
    for node in &applied {
        own(node, value, path, out);
    }
    match value {
        Json::Object(members) => {
            let mut seen: Vec<&str> = Vec::new();
            for (name, member) in members {
                if seen.contains(&name.as_str()) {
                    out.push(Violation {
                        path: join(path, name),
                        code: DUPLICATE_FIELD.into(),
                    });
                    continue;
                }
                seen.push(name);
                let kids = children(&applied, name);
                if kids.is_empty() {
                    continue;
                }
                let at = join(path, name);
                // "Required" means present and not null: a null the type
                // refuses is a missing field, reported by the requiring node.
                if member.is_null() && kids.iter().any(|k| !admits(k, member)) {
                    if let Some(req) = applied
                        .iter()
                        .find(|n| n.required.iter().any(|r| r == name))
                    {
                        out.push(Violation {
                            path: at,
                            code: code(req, MISSING_FIELD),
                        });
                        continue;
                    }
                }
                check(&kids, member, &at, out);
            }
        }
        Json::Array(items) => {
            let kids: Vec<&Node> = applied.iter().filter_map(|n| n.items.as_deref()).collect();
            if !kids.is_empty() {
                for (i, item) in items.iter().enumerate() {
                    check(&kids, item, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// The node's `x-error-code`, else the keyword's own code.
fn code(node: &Node, default: &str) -> String {
    node.error_code
        .clone()
        .unwrap_or_else(|| default.to_string())
}

/// Whether `type` lets `value` through (JSON Schema: an integral number is
/// an integer).
pub fn admits(node: &Node, value: &Json) -> bool {
    if value.is_null() && node.nullable {
        return true;
    }
    match (node.ty, value) {
        (None, _)
        | (Some(JsonType::Null), Json::Null)
        | (Some(JsonType::Boolean), Json::Bool(_))
        | (Some(JsonType::String), Json::Str(_))
        | (Some(JsonType::Object), Json::Object(_))
        | (Some(JsonType::Array), Json::Array(_))
        | (Some(JsonType::Number), Json::Int(_) | Json::Num(_))
        | (Some(JsonType::Integer), Json::Int(_)) => true,
        (Some(JsonType::Integer), Json::Num(f)) => f.fract() == 0.0,
        _ => false,
    }
}

/// The node's own keywords, which apply to `value` itself (its members and
/// items are checked against the child subschemas).
fn own(node: &Node, value: &Json, path: &str, out: &mut Vec<Violation>) {
    let mut fail = |default: &str| {
        out.push(Violation {
            path: path.to_string(),
            code: code(node, default),
        })
    };
    if !admits(node, value) {
        fail(WRONG_TYPE);
    }
    if let Some(values) = &node.enum_values {
        if !values.iter().any(|v| value.same_as(v)) {
            fail(NOT_IN_ENUM);
        }
    }
    if let Some(c) = &node.const_value {
        if !value.same_as(c) {
            fail(NOT_IN_ENUM);
        }
    }
    let number = match value {
        Json::Int(i) => Some(*i as f64),
        Json::Num(f) => Some(*f),
        _ => None,
    };
    if let Some(x) = number {
        let out_of_range = node.minimum.is_some_and(|m| x < m)
            || node.maximum.is_some_and(|m| x > m)
            || node.exclusive_minimum.is_some_and(|m| x <= m)
            || node.exclusive_maximum.is_some_and(|m| x >= m);
        if out_of_range {
            fail(OUT_OF_RANGE);
        }
        if node.multiple_of.is_some_and(|m| !is_multiple(value, m)) {
            fail(OUT_OF_RANGE);
        }
    }
    match value {
        Json::Str(s) => {
            let len = s.chars().count() as u64;
            if node.min_length.is_some_and(|m| len < m) {
                fail(TOO_SHORT);
            }
            if node.max_length.is_some_and(|m| len > m) {
                fail(TOO_LONG);
            }
            if node.pattern.as_ref().is_some_and(|p| !p.is_match(s)) {
                fail(PATTERN_MISMATCH);
            }
            match node.format {
                Some(Format::DateTime) if !is_date_time(s) => fail(BAD_TIMESTAMP),
                Some(f) if f != Format::DateTime && !format_ok(f, s) => fail(BAD_FORMAT),
                _ => {}
            }
        }
        Json::Array(items) => {
            let len = items.len() as u64;
            if node.min_items.is_some_and(|m| len < m) {
                fail(TOO_SHORT);
            }
            if node.max_items.is_some_and(|m| len > m) {
                fail(TOO_LONG);
            }
        }
        Json::Object(members) => {
            let has = |name: &str| members.iter().any(|(k, _)| k == name);
            let mut missing = |name: &str| {
                out.push(Violation {
                    path: join(path, name),
                    code: code(node, MISSING_FIELD),
                })
            };
            for name in &node.required {
                if !has(name) {
                    missing(name);
                }
            }
            for (name, needs) in &node.dependent_required {
                if has(name) {
                    for need in needs.iter().filter(|n| !has(n)) {
                        missing(need);
                    }
                }
            }
            if !node.additional_properties {
                for (name, _) in members {
                    if !node.properties.iter().any(|(p, _)| p == name) {
                        out.push(Violation {
                            path: join(path, name),
                            code: code(node, UNEXPECTED_FIELD),
                        });
                    }
                }
            }
        }
        _ => {}
    }
}

/// `value / m` is an integer, judged on the decimal text both are written
/// as (`12.34` is a multiple of `0.01` although the binary values are not).
pub fn is_multiple(value: &Json, m: f64) -> bool {
    let exact = || {
        let (v, vd) = match value {
            Json::Int(i) => (i128::from(*i), 0),
            Json::Num(f) => decimal(*f)?,
            _ => return None,
        };
        let (m, md) = decimal(m)?;
        let scale = vd.max(md);
        let v = v.checked_mul(10i128.checked_pow(scale - vd)?)?;
        let m = m.checked_mul(10i128.checked_pow(scale - md)?)?;
        (m != 0).then(|| v % m == 0)
    };
    exact().unwrap_or_else(|| {
        let x = match value {
            Json::Int(i) => *i as f64,
            Json::Num(f) => *f,
            _ => return true,
        };
        let q = x / m;
        (q - q.round()).abs() < 1e-9
    })
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

fn format_ok(format: Format, s: &str) -> bool {
    match format {
        Format::Uuid => is_uuid(s),
        Format::DateTime => is_date_time(s),
        Format::Date => is_date(s),
        Format::Email => is_email(s),
        Format::Ipv4 => is_ipv4(s),
        Format::Ipv6 => is_ipv6(s),
        Format::Uri => is_uri(s),
    }
}

/// 8-4-4-4-12 hexadecimal digits, any case.
fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn digits(s: &str) -> Option<u32> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `YYYY-MM-DD`, a real date from year 1.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let (Some(y), Some(m), Some(d)) = (digits(&s[..4]), digits(&s[5..7]), digits(&s[8..])) else {
        return false;
    };
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    y >= 1 && (1..=days).contains(&d)
}

/// RFC 3339 with an explicit offset: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`,
/// a real date, no leap second (the lake cannot hold one).
fn is_date_time(s: &str) -> bool {
    let Some((date, rest)) = s.split_at_checked(10) else {
        return false;
    };
    let b = rest.as_bytes();
    if !is_date(date) || b.len() < 10 || b[0] != b'T' || b[3] != b':' || b[6] != b':' {
        return false;
    }
    let (Some(h), Some(m), Some(sec)) = (
        digits(&rest[1..3]),
        digits(&rest[4..6]),
        digits(&rest[7..9]),
    ) else {
        return false;
    };
    let mut offset = &rest[9..];
    if let Some(frac) = offset.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        offset = &frac[n..];
    }
    let offset_ok = offset == "Z"
        || (offset.len() == 6
            && (offset.starts_with('+') || offset.starts_with('-'))
            && offset.as_bytes()[3] == b':'
            && digits(&offset[1..3]).is_some_and(|h| h <= 23)
            && digits(&offset[4..]).is_some_and(|m| m <= 59));
    h <= 23 && m <= 59 && sec <= 59 && offset_ok
}

fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
    let dots_ok = |part: &str| !part.is_empty() && part.split('.').all(|w| !w.is_empty());
    dots_ok(local)
        && local.chars().all(|c| atext(c) || c == '.')
        && dots_ok(domain)
        && domain.split('.').all(|label| {
            label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Four decimal octets, no leading zeros.
fn is_ipv4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|p| {
            p.len() <= 3
                && (p.len() == 1 || !p.starts_with('0'))
                && digits(p).is_some_and(|n| n <= 255)
        })
}

/// Eight groups of 1-4 hex digits, `::` once for one or more zero groups,
/// optionally ending in an IPv4 address.
fn is_ipv6(s: &str) -> bool {
    let (parts, compressed): (Vec<&str>, bool) = match s.split_once("::") {
        Some((head, tail)) if !tail.contains("::") => {
            let mut parts: Vec<&str> = Vec::new();
            if !head.is_empty() {
                parts.extend(head.split(':'));
            }
            if !tail.is_empty() {
                parts.extend(tail.split(':'));
            }
            (parts, true)
        }
        Some(_) => return false,
        None => (s.split(':').collect(), false),
    };
    let mut groups = 0;
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() && part.contains('.') {
            if !is_ipv4(part) {
                return false;
            }
            groups += 2;
        } else if (1..=4).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_hexdigit()) {
            groups += 1;
        } else {
            return false;
        }
    }
    if compressed {
        groups < 8
    } else {
        groups == 8
    }
}

/// An absolute URI: a scheme, `:`, then only characters a URI may hold
/// (ASCII, no spaces, `%` followed by two hex digits).
fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut scheme_chars = scheme.chars();
    let scheme_ok = scheme_chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme_chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    let b = rest.as_bytes();
    let rest_ok = b.iter().enumerate().all(|(i, &c)| {
        if c == b'%' {
            b.get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
        } else {
            c.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=".contains(&c)
        }
    });
    scheme_ok && rest_ok
}

/// Every code a breakage of this contract can produce, for the summary to
/// list with zero counts.
pub fn possible_codes(root: &Node) -> BTreeSet<String> {
    let mut codes = BTreeSet::from([DUPLICATE_FIELD.to_string()]);
    collect_codes(root, &mut codes);
    codes
}

fn collect_codes(node: &Node, codes: &mut BTreeSet<String>) {
    let mut add = |default: &str| {
        codes.insert(code(node, default));
    };
    if node.ty.is_some() {
        add(WRONG_TYPE);
    }
    if node.enum_values.is_some() || node.const_value.is_some() {
        add(NOT_IN_ENUM);
    }
    let bounds = [
        node.minimum,
        node.maximum,
        node.exclusive_minimum,
        node.exclusive_maximum,
        node.multiple_of,
    ];
    if bounds.iter().any(Option::is_some) {
        add(OUT_OF_RANGE);
    }
    if node.min_length.is_some() || node.min_items.is_some() {
        add(TOO_SHORT);
    }
    if node.max_length.is_some() || node.max_items.is_some() {
        add(TOO_LONG);
    }
    if node.pattern.is_some() {
        add(PATTERN_MISMATCH);
    }
    match node.format {
        Some(Format::DateTime) => add(BAD_TIMESTAMP),
        Some(_) => add(BAD_FORMAT),
        None => {}
    }
    if !node.required.is_empty() || !node.dependent_required.is_empty() {
        add(MISSING_FIELD);
    }
    if !node.additional_properties {
        add(UNEXPECTED_FIELD);
    }
    for (_, child) in &node.properties {
        collect_codes(child, codes);
    }
    if let Some(items) = &node.items {
        collect_codes(items, codes);
    }
    if let Some(c) = &node.conditional {
        for branch in [&c.then, &c.otherwise].into_iter().flatten() {
            collect_codes(branch, codes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert!(is_uuid("0f8fad5b-d9cb-469f-a165-70867728950e"));
        assert!(!is_uuid("0f8fad5bd9cb469fa16570867728950e"));
        assert!(is_date_time("2026-11-01T00:00:00.000Z"));
        assert!(is_date_time("2026-11-01T05:30:00+05:30"));
        assert!(!is_date_time("2026-11-01T00:00:00.000"));
        assert!(!is_date_time("2026-02-30T00:00:00Z"));
        assert!(!is_date_time("2026-11-01T00:00:60Z"));
        assert!(is_date("2024-02-29") && !is_date("2026-02-29") && !is_date("2026/11/01"));
        assert!(is_email("ada7@example.com") && !is_email("ada7.example.com"));
        assert!(!is_email("@example.com") && !is_email("ada@"));
        assert!(is_ipv4("192.0.2.1") && !is_ipv4("256.0.2.1") && !is_ipv4("1.2.3"));
        assert!(!is_ipv4("01.2.3.4"));
        assert!(is_ipv6("2001:db8:0:0:1:ffff:7:a") && is_ipv6("2001:db8::1") && is_ipv6("::"));
        assert!(is_ipv6("::ffff:192.0.2.1"));
        assert!(!is_ipv6("2001:db8::1::2") && !is_ipv6("12345::1") && !is_ipv6("1:2:3:4:5:6:7"));
        assert!(is_uri("https://example.com/a/1?x=%20") && !is_uri("example.com/a"));
        assert!(!is_uri("https://exa mple.com/"));
    }

    #[test]
    fn multiples_are_judged_on_the_decimal_text() {
        assert!(is_multiple(&Json::Num(12.34), 0.01));
        assert!(is_multiple(&Json::Num(0.3), 0.1));
        assert!(!is_multiple(&Json::Num(12.345), 0.01));
        assert!(is_multiple(&Json::Int(15), 5.0) && !is_multiple(&Json::Int(16), 5.0));
        assert_eq!(decimal(-0.05), Some((-5, 2)));
    }
}
