//! Strings for a `pattern`, drawn from the regex's syntax tree as
//! `regex-syntax` (the regex crate's own parser) reads it: literals as
//! written, one character of each class, a count within each repetition,
//! one branch of each alternation; anchors and other look-arounds produce
//! nothing. Callers check the result against the compiled regex and draw
//! again if it fails (word boundaries, say).
//!
//! Characters are taken from printable ASCII whenever a class has some:
//! `\d` is then `0-9` and `\w` `[A-Za-z0-9_]`, as ECMA-262 regexes (which
//! JSON Schema validators use) read them, rather than every Unicode digit.

use rand::rngs::SmallRng;
use rand::Rng;
use regex_syntax::hir::{Class, Hir, HirKind, Look};

pub fn parse(pattern: &str) -> Result<Hir, String> {
    regex_syntax::parse(pattern).map_err(|e| {
        let text = e.to_string();
        format!(
            "pattern {pattern:?} cannot be read: {}",
            text.lines().last().unwrap_or_default()
        )
    })
}

/// A string of the language of `hir`; an unbounded repetition repeats at
/// most `spread` times more than its minimum.
pub fn generate(hir: &Hir, rng: &mut SmallRng, spread: u32) -> Result<String, String> {
    let mut out = String::new();
    push(hir, rng, spread, &mut out)?;
    Ok(out)
}

fn push(hir: &Hir, rng: &mut SmallRng, spread: u32, out: &mut String) -> Result<(), String> {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(literal) => out.push_str(
            std::str::from_utf8(&literal.0)
                .map_err(|_| "the pattern matches bytes that are not UTF-8".to_string())?,
        ),
        HirKind::Class(Class::Unicode(class)) => out.push(pick(
            rng,
            class
                .ranges()
                .iter()
                .map(|r| (u32::from(r.start()), u32::from(r.end()))),
        )?),
        HirKind::Class(Class::Bytes(class)) => out.push(pick(
            rng,
            // Bytes above 0x7F are not characters on their own.
            class
                .ranges()
                .iter()
                .filter(|r| r.start() < 0x80)
                .map(|r| (u32::from(r.start()), u32::from(r.end().min(0x7F)))),
        )?),
        HirKind::Repetition(rep) => {
            let most = rep.min.saturating_add(spread);
            let max = rep.max.map_or(most, |m| m.min(most));
            for _ in 0..rng.random_range(rep.min..=max.max(rep.min)) {
                push(&rep.sub, rng, spread, out)?;
            }
        }
        HirKind::Capture(capture) => push(&capture.sub, rng, spread, out)?,
        HirKind::Concat(parts) => {
            for part in parts {
                push(part, rng, spread, out)?;
            }
        }
        HirKind::Alternation(branches) => push(
            &branches[rng.random_range(0..branches.len())],
            rng,
            spread,
            out,
        )?,
    }
    Ok(())
}

/// One character of the class made of these inclusive code point ranges,
/// printable ASCII when it has any.
fn pick(rng: &mut SmallRng, ranges: impl Iterator<Item = (u32, u32)>) -> Result<char, String> {
    let ranges: Vec<(u32, u32)> = ranges.collect();
    let ascii: Vec<(u32, u32)> = ranges
        .iter()
        .filter_map(|&(a, b)| {
            let (a, b) = (a.max(0x20), b.min(0x7E));
            (a <= b).then_some((a, b))
        })
        .collect();
    let from = if ascii.is_empty() { &ranges } else { &ascii };
    let total: u64 = from.iter().map(|(a, b)| u64::from(b - a) + 1).sum();
    if total == 0 {
        return Err("the pattern has a character class that matches nothing".into());
    }
    // Ranges may span the surrogates, which are no characters: draw again.
    for _ in 0..16 {
        let mut n = rng.random_range(0..total);
        for (a, b) in from {
            let size = u64::from(b - a) + 1;
            if n < size {
                if let Some(c) = char::from_u32(a + n as u32) {
                    return Ok(c);
                }
                break;
            }
            n -= size;
        }
    }
    Err("the pattern has a character class of surrogates only".into())
}

/// Whether every match must end at the end of the text (`$`, `\z`), so
/// nothing may be appended to a generated string.
pub fn anchored_end(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Look(look) => matches!(look, Look::End | Look::EndLF | Look::EndCRLF),
        HirKind::Concat(parts) => parts.last().is_some_and(anchored_end),
        HirKind::Capture(capture) => anchored_end(&capture.sub),
        HirKind::Alternation(branches) => branches.iter().all(anchored_end),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn generated_strings_match_their_pattern() {
        let mut rng = SmallRng::seed_from_u64(1);
        for pattern in [
            r"^ord_[0-9]{8}$",
            r"^dev-[a-z]{2}-[0-9]{4}$",
            r"^[0-9]+\.[0-9]+\.[0-9]+$",
            r"^\d{3}-\w{2,5}$",
            r"^(EUR|USD|GBP)?x*$",
            r"^/",
            r"(?i)^ab[^c-z]$",
            r"^[é-ü]{3}$",
            r"^.{0,4}$",
        ] {
            let regex = regex::Regex::new(pattern).expect("compiles");
            let hir = parse(pattern).expect("parses");
            for _ in 0..200 {
                let s = generate(&hir, &mut rng, 8).expect("generates");
                assert!(regex.is_match(&s), "{pattern}: {s:?}");
                if pattern.contains(r"\d") {
                    assert!(s.is_ascii(), "{s}");
                }
            }
        }
        assert!(anchored_end(&parse(r"^a$|^b$").expect("parses")));
        assert!(!anchored_end(&parse(r"^/").expect("parses")));
        assert!(parse(r"(unclosed").is_err());
        let empty = parse(r"[^\s\S]").expect("parses");
        assert!(generate(&empty, &mut rng, 8).is_err());
    }
}
