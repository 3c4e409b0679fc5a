//! A strict JSON scanner (RFC 8259) over text already known to be UTF-8.
//!
//! It finds where values start and end without building them, with an explicit
//! stack instead of recursion, so 10,000 levels of nesting cost a few bytes of
//! memory rather than the thread's stack. While it scans it measures what the
//! limits bound: nesting depth and the longest string.
//!
//! The decoder uses it twice: to split a batch into its elements, and to list
//! the members of one record, with the values kept as their exact JSON text.

/// The bytes that end a run of ordinary string content: the closing quote,
/// an escape, or a control character (which JSON requires to be escaped).
static ENDS_PLAIN_RUN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// The first byte at or after `pos` that ends a run of ordinary string
/// content (see `ENDS_PLAIN_RUN`), or the end of `bytes`. It tests eight
/// bytes at once with a few integer operations ("SWAR"): a byte-by-byte loop
/// mispredicted its exit on every short string, and strings are most of an
/// event.
fn end_of_plain_run(bytes: &[u8], mut pos: usize) -> usize {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    // The high bit of a byte is set where `word` has a byte below `n` (for
    // n <= 0x80). A borrow can also set it in a later byte, never an earlier
    // one, so the lowest set bit is exact.
    let below = |word: u64, n: u8| word.wrapping_sub(ONES * n as u64) & !word & HIGHS;
    while let Some(chunk) = bytes.get(pos..pos + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let special = below(word, 0x20)
            | below(word ^ (ONES * b'"' as u64), 1)
            | below(word ^ (ONES * b'\\' as u64), 1);
        if special != 0 {
            return pos + special.trailing_zeros() as usize / 8;
        }
        pos += 8;
    }
    while pos < bytes.len() && !ENDS_PLAIN_RUN[bytes[pos] as usize] {
        pos += 1;
    }
    pos
}

/// Why scanning stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanError {
    /// The text ended inside a value.
    Eof,
    /// The byte at this position cannot appear there.
    Unexpected(usize),
}

/// What a scanned value measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    /// Deepest nesting: 0 for a scalar, 1 for `{}` or `[1]`, 2 for `[[1]]`.
    pub depth: usize,
    /// Longest string (keys included), in bytes as written, quotes excluded.
    pub longest_string: usize,
}

/// The containers open around a value being scanned, innermost last, one bit
/// each (set for an object). The first 64 levels are one word, so a record's
/// usual nesting allocates nothing (a vector here was an allocation per
/// nested value); deeper levels spill to `deeper`.
#[derive(Default)]
struct Open {
    depth: usize,
    near: u64,
    deeper: Vec<bool>,
}

impl Open {
    fn push(&mut self, is_object: bool) {
        if self.depth < 64 {
            let bit = 1 << self.depth;
            self.near = if is_object {
                self.near | bit
            } else {
                self.near & !bit
            };
        } else {
            self.deeper.push(is_object);
        }
        self.depth += 1;
    }

    /// Whether the innermost open container is an object; `None` when none is open.
    fn innermost(&self) -> Option<bool> {
        match self.depth {
            0 => None,
            1..=64 => Some(self.near >> (self.depth - 1) & 1 == 1),
            _ => self.deeper.last().copied(),
        }
    }

    fn pop(&mut self) {
        if self.depth > 64 {
            self.deeper.pop();
        }
        self.depth -= 1;
    }
}

pub struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pub pos: usize,
    /// Set when a string with an escape was scanned (the caller resets it):
    /// strings scanned without one are their text between the quotes.
    pub escaped: bool,
}

impl<'a> Scanner<'a> {
    pub fn new(text: &'a str) -> Self {
        Scanner {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            escaped: false,
        }
    }

    pub fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    pub fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Consumes `byte` (after whitespace) or fails.
    pub fn expect(&mut self, byte: u8) -> Result<(), ScanError> {
        self.skip_whitespace();
        match self.peek() {
            Some(b) if b == byte => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(ScanError::Unexpected(self.pos)),
            None => Err(ScanError::Eof),
        }
    }

    /// Scans one value starting at the next non-whitespace byte; returns its
    /// exact text and shape.
    pub fn value(&mut self) -> Result<(&'a str, Shape), ScanError> {
        self.skip_whitespace();
        let start = self.pos;
        let mut shape = Shape::default();
        // Strings and numbers, most of a record's values, need no container stack.
        match self.peek() {
            Some(b'"') => {
                shape.longest_string = self.string()?;
                return Ok((&self.text[start..self.pos], shape));
            }
            Some(b'-' | b'0'..=b'9') => {
                self.number()?;
                return Ok((&self.text[start..self.pos], shape));
            }
            _ => {}
        }
        let mut open = Open::default();
        'value: loop {
            self.skip_whitespace();
            match self.peek().ok_or(ScanError::Eof)? {
                b'{' | b'[' => {
                    let is_object = self.bytes[self.pos] == b'{';
                    self.pos += 1;
                    open.push(is_object);
                    shape.depth = shape.depth.max(open.depth);
                    self.skip_whitespace();
                    let close = if is_object { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.pos += 1;
                        open.pop();
                    } else {
                        if is_object {
                            self.member_name(&mut shape)?;
                        }
                        continue 'value;
                    }
                }
                b'"' => {
                    let len = self.string()?;
                    shape.longest_string = shape.longest_string.max(len);
                }
                b'-' | b'0'..=b'9' => self.number()?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                _ => return Err(ScanError::Unexpected(self.pos)),
            }
            // A value ended: close containers until one wants another element.
            while let Some(is_object) = open.innermost() {
                self.skip_whitespace();
                match self.peek().ok_or(ScanError::Eof)? {
                    b',' => {
                        self.pos += 1;
                        if is_object {
                            self.member_name(&mut shape)?;
                        }
                        continue 'value;
                    }
                    b'}' if is_object => {}
                    b']' if !is_object => {}
                    _ => return Err(ScanError::Unexpected(self.pos)),
                }
                self.pos += 1;
                open.pop();
            }
            return Ok((&self.text[start..self.pos], shape));
        }
    }

    /// Scans one object starting at the next non-whitespace byte, appending
    /// its members to `members` as (name, value), each as written (the name
    /// with its quotes); returns the object's exact text and shape. The
    /// decoder lists a record's members while it splits the batch, so
    /// validation does not scan the record a second time.
    pub fn object(
        &mut self,
        members: &mut Vec<(&'a str, &'a str)>,
    ) -> Result<(&'a str, Shape), ScanError> {
        self.expect(b'{')?;
        let start = self.pos - 1;
        let mut shape = Shape {
            depth: 1,
            longest_string: 0,
        };
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok((&self.text[start..self.pos], shape));
        }
        loop {
            self.skip_whitespace();
            let name_start = self.pos;
            let name_len = self.string()?;
            let name = &self.text[name_start..self.pos];
            self.expect(b':')?;
            let (value, value_shape) = self.value()?;
            members.push((name, value));
            shape.depth = shape.depth.max(1 + value_shape.depth);
            shape.longest_string = shape
                .longest_string
                .max(name_len)
                .max(value_shape.longest_string);
            self.skip_whitespace();
            match self.peek().ok_or(ScanError::Eof)? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return Ok((&self.text[start..self.pos], shape));
                }
                _ => return Err(ScanError::Unexpected(self.pos)),
            }
        }
    }

    /// `"name" :` inside an object.
    fn member_name(&mut self, shape: &mut Shape) -> Result<(), ScanError> {
        self.skip_whitespace();
        match self.peek() {
            Some(b'"') => {}
            Some(_) => return Err(ScanError::Unexpected(self.pos)),
            None => return Err(ScanError::Eof),
        }
        let len = self.string()?;
        shape.longest_string = shape.longest_string.max(len);
        self.expect(b':')
    }

    /// A string starting at the opening quote; returns its length between the quotes.
    pub fn string(&mut self) -> Result<usize, ScanError> {
        match self.peek().ok_or(ScanError::Eof)? {
            b'"' => self.pos += 1,
            _ => return Err(ScanError::Unexpected(self.pos)),
        }
        let start = self.pos;
        loop {
            self.pos = end_of_plain_run(self.bytes, self.pos);
            let b = self.peek().ok_or(ScanError::Eof)?;
            match b {
                b'"' => {
                    self.pos += 1;
                    return Ok(self.pos - 1 - start);
                }
                b'\\' => {
                    self.pos += 1;
                    self.escaped = true;
                    match self.peek().ok_or(ScanError::Eof)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.pos += 1,
                        b'u' => {
                            self.pos += 1;
                            for _ in 0..4 {
                                match self.peek().ok_or(ScanError::Eof)? {
                                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => self.pos += 1,
                                    _ => return Err(ScanError::Unexpected(self.pos)),
                                }
                            }
                        }
                        _ => return Err(ScanError::Unexpected(self.pos)),
                    }
                }
                // Control characters must be escaped inside strings.
                0x00..=0x1f => return Err(ScanError::Unexpected(self.pos)),
                _ => self.pos += 1,
            }
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Result<(), ScanError> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek().ok_or(ScanError::Eof)? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => self.digits(),
            _ => return Err(ScanError::Unexpected(self.pos)),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.at_least_one_digit()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.at_least_one_digit()?;
        }
        Ok(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    fn at_least_one_digit(&mut self) -> Result<(), ScanError> {
        match self.peek().ok_or(ScanError::Eof)? {
            b'0'..=b'9' => {
                self.digits();
                Ok(())
            }
            _ => Err(ScanError::Unexpected(self.pos)),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), ScanError> {
        for &expected in word {
            match self.peek().ok_or(ScanError::Eof)? {
                b if b == expected => self.pos += 1,
                _ => return Err(ScanError::Unexpected(self.pos)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str) -> Result<(&str, Shape), ScanError> {
        let mut s = Scanner::new(text);
        let value = s.value()?;
        s.skip_whitespace();
        if !s.at_end() {
            return Err(ScanError::Unexpected(s.pos));
        }
        Ok(value)
    }

    #[test]
    fn accepts_exactly_what_serde_json_accepts() {
        let cases = [
            "0",
            "-0",
            "1.5e+3",
            "-12E-2",
            "01",
            "1.",
            ".5",
            "+1",
            "1e",
            "-",
            "0x1",
            "\"a\\u00e9\\n\"",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\t\"",
            "true",
            "tru",
            "nul",
            "[]",
            "[1,]",
            "[,1]",
            "{}",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{a:1}",
            "{\"a\":[1,{\"b\":null}]}",
            "[1 2]",
            "NaN",
            "Infinity",
            "[1]]",
            "{\"a\":1}}",
            " [ 1 , \"x\" ] ",
        ];
        for text in cases {
            let ours = scan(text).is_ok();
            let serde = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
            assert_eq!(ours, serde, "{text:?}");
        }
    }

    #[test]
    fn eof_is_told_apart_from_a_bad_byte() {
        for text in [
            "[", "{\"a\"", "{\"a\":", "\"abc", "\"\\u00", "12.", "[1,", "tr", "[{}",
        ] {
            assert_eq!(scan(text), Err(ScanError::Eof), "{text:?}");
        }
        assert_eq!(scan("[1;"), Err(ScanError::Unexpected(2)));
    }

    #[test]
    fn a_string_needs_its_opening_quote() {
        // It used to skip whatever byte it started on, even inside a
        // multi-byte character (found by the fuzz target via `validate_record`).
        for (text, error) in [
            ("é\"", ScanError::Unexpected(0)),
            ("a\"", ScanError::Unexpected(0)),
            ("", ScanError::Eof),
        ] {
            assert_eq!(Scanner::new(text).string(), Err(error), "{text:?}");
        }
        assert_eq!(Scanner::new("\"é\"").string(), Ok(2));
    }

    #[test]
    fn word_skipping_stops_at_every_byte_that_ends_a_run() {
        for byte in 0..=255u8 {
            for at in 0..20 {
                let mut bytes = [b'a'; 20];
                bytes[at] = byte;
                let stop = end_of_plain_run(&bytes, 0);
                let expected = if ENDS_PLAIN_RUN[byte as usize] {
                    at
                } else {
                    20
                };
                assert_eq!(stop, expected, "byte {byte:#x} at {at}");
            }
        }
    }

    #[test]
    fn an_object_lists_its_members_and_measures_like_a_value() {
        let text = r#" { "a" : [1,{"bc":"xyz1"}] , "\u0064":null,"e":{}} "#;
        let mut members = Vec::new();
        let object = Scanner::new(text).object(&mut members);
        assert_eq!(object, Scanner::new(text).value());
        assert_eq!(
            members,
            [
                (r#""a""#, r#"[1,{"bc":"xyz1"}]"#),
                (r#""\u0064""#, "null"),
                (r#""e""#, "{}")
            ]
        );
        for broken in ["{", r#"{"a""#, r#"{"a":1"#, r#"{"a":1,}"#, "{1:2}", "[]"] {
            let mut members = Vec::new();
            assert!(
                Scanner::new(broken).object(&mut members).is_err(),
                "{broken}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_measured_not_recursed() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(scan(&deep).map(|(_, s)| s.depth), Ok(100_000));
        // Objects and arrays alternate across the 64 levels kept in one word:
        // each must close with its own bracket, below and beyond that word.
        let opening = r#"{"a":["#.repeat(50);
        let closing = "]}".repeat(50);
        let mixed = format!("{opening}1{closing}");
        assert_eq!(scan(&mixed).map(|(_, s)| s.depth), Ok(100));
        for k in [0, 30, 90] {
            // The k-th closing bracket closes level 100 - k: swap it for the other kind.
            let mut wrong = closing.clone().into_bytes();
            wrong[k] = if wrong[k] == b']' { b'}' } else { b']' };
            let text = format!("{opening}1{}", String::from_utf8(wrong).expect("ASCII"));
            let at = opening.len() + 1 + k;
            assert_eq!(scan(&text), Err(ScanError::Unexpected(at)), "closing {k}");
        }
        let shape = scan(r#"{"ab":[{"c":"xyz1"}]}"#).expect("valid").1;
        assert_eq!(
            shape,
            Shape {
                depth: 3,
                longest_string: 4
            }
        );
    }
}
