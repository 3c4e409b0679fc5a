//! The contract-driven decoder (docs/DESIGN.md §3): a [`Contract`] compiled
//! once into a [`Decoder`] that judges one record of a batch and, when it
//! passes, lists its column values in the order of the table's columns.
//!
//! Like the rest of the decoder it works on the record's raw JSON text: the
//! batch scanner already listed the record's members as (name, value) texts,
//! values are read straight from those texts, and no `serde_json::Value`
//! tree is built per record. Numbers are judged on their exact spelling (an
//! integer is written without fraction or exponent and fits 64 bits).
//!
//! A record is checked fully before anything reaches the table's builders,
//! so a record that fails leaves no trace but its dead letter: the values of
//! a valid record are collected as [`Datum`]s in pre-order (a struct is
//! followed by its fields, a list by its items), and [`crate::columns`]
//! appends them.
//!
//! The order of checks, and so which code a record with several faults gets:
//! member names (bad_string, duplicate_field), then each property in the
//! order written (missing_field, wrong_type, then the property's keywords;
//! an array's own keywords before its items), unknown members when
//! `additionalProperties` is false, `dependentRequired`, and last
//! `if`/`then`/`else`.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Mutex, OnceLock};

use arrow::datatypes::SchemaRef;
use serde_json::Value;

use crate::contract::{Conditional, Contract, Format, JsonType, Node};
use crate::event::{
    clip, days_from_civil, is_uuid, json_type, parse_timestamp, unquote, Batch, Element, ErrorCode,
    Rejection,
};
use crate::json::Scanner;

/// One column value of a valid record, in pre-order.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum<'a> {
    /// Absent or null; a null struct or list has no datums after it.
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    /// A `date-time`: microseconds since the Unix epoch, UTC.
    Micros(i64),
    /// A `date`: days since the Unix epoch.
    Day(i32),
    /// A present object: one datum (or subtree) per column of the struct follows.
    Struct,
    /// A present array: this many item subtrees follow.
    List(u32),
}

/// The values of one valid record, reused from record to record.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Record<'a> {
    datums: Vec<Datum<'a>>,
    event_day: i32,
}

impl<'a> Record<'a> {
    /// The record's column values in pre-order (see [`Datum`]).
    pub fn datums(&self) -> &[Datum<'a>] {
        &self.datums
    }

    /// Days since the Unix epoch of the contract's `event_time` in UTC: the
    /// bronze partition.
    pub fn event_day(&self) -> i32 {
        self.event_day
    }
}

/// A compiled contract, ready to judge records: one table.
#[derive(Debug)]
pub struct Decoder {
    pub contract: Contract,
    /// The table's bronze schema: the contract's columns, then lineage.
    pub bronze: SchemaRef,
    /// How many of `bronze`'s columns are the contract's (the datums of a record).
    pub data_columns: usize,
    /// [`Contract::fingerprint`], which every intent records.
    pub fingerprint: String,
    root: Plan,
    /// Where the `event_time` property is among the root's columns.
    event_time: usize,
    /// Where its datum is when every column before it is a scalar (one datum each).
    event_time_datum: Option<usize>,
}

impl Decoder {
    pub fn new(contract: Contract) -> Decoder {
        let root = Plan::new(&contract.root);
        let event_time = contract
            .root
            .properties
            .iter()
            .position(|(name, _)| *name == contract.table.event_time)
            .expect("the contract compiler checks that event_time is a property");
        let bronze = crate::schema::bronze(&contract);
        let before = &root.object.as_ref().expect("an object").properties[..event_time];
        let event_time_datum = before
            .iter()
            .all(|p| !matches!(p.kind, Kind::Object | Kind::Array | Kind::Any))
            .then_some(event_time);
        Decoder {
            data_columns: contract.columns().len(),
            fingerprint: contract.fingerprint(),
            bronze,
            contract,
            root,
            event_time,
            event_time_datum,
        }
    }

    /// The built-in events contract's decoder, compiled once per process.
    pub fn events() -> &'static Decoder {
        static EVENTS: OnceLock<Decoder> = OnceLock::new();
        EVENTS.get_or_init(|| Decoder::new(Contract::events()))
    }

    /// Judges one element of `batch`; on success `record` holds its values.
    pub fn decode<'a>(
        &self,
        batch: &Batch<'a>,
        element: &Element<'a>,
        record: &mut Record<'a>,
    ) -> Result<(), Rejection> {
        if let Some(rejection) = &element.over_limit {
            return Err(rejection.clone());
        }
        match element.members(batch) {
            Some(members) => self.decode_members(element.text, members, element.plain, record),
            None => Err(crate::event::not_an_object(element.text)),
        }
    }

    /// Judges one record given alone as its JSON text (already known to be
    /// JSON); gives the verdict [`Decoder::decode`] gives in a batch.
    pub fn decode_text<'a>(&self, text: &'a str, record: &mut Record<'a>) -> Result<(), Rejection> {
        if !text.starts_with('{') {
            return Err(crate::event::not_an_object(text));
        }
        let mut members = Vec::new();
        Scanner::new(text)
            .object(&mut members)
            .map_err(|_| Rejection::new(ErrorCode::NotObject, "record is not a JSON object"))?;
        self.decode_members(text, &members, !text.contains('\\'), record)
    }

    /// `plain`: the record has no backslash, so no string has escapes.
    #[inline]
    fn decode_members<'a>(
        &self,
        text: &'a str,
        members: &[(&'a str, &'a str)],
        plain: bool,
        record: &mut Record<'a>,
    ) -> Result<(), Rejection> {
        record.datums.clear();
        let object = self.root.object.as_deref().expect("the root is an object");
        object
            .decode(
                &self.root,
                text,
                members,
                None,
                Mode::decoding(&mut record.datums, plain),
            )
            .map_err(|fail| *fail.0.expect("a decoding check reports why it fails"))?;
        // The root's datums are its columns in order; nested ones before
        // event_time take several.
        let at = self.event_time_datum.unwrap_or_else(|| {
            object.properties[..self.event_time]
                .iter()
                .fold(0, |at, column| column.skip(&record.datums, at))
        });
        record.event_day = match record.datums[at] {
            Datum::Micros(micros) => micros.div_euclid(86_400_000_000) as i32,
            _ => unreachable!("event_time is a required date-time column"),
        };
        Ok(())
    }
}

/// A failed check: why, unless the check was only a test (an `if`), for
/// which nothing is built. Boxed, so that the `Ok` path stays small.
#[derive(Debug)]
struct Fail(Option<Box<Rejection>>);

/// How a check runs: whether it collects the record's values (decoding),
/// reports why it fails (decoding, and `then`/`else`) or only answers yes or
/// no (an `if`, for which no message is built); and whether the record has
/// no escapes at all, so its strings are their text between the quotes.
struct Mode<'m, 'a> {
    datums: Option<&'m mut Vec<Datum<'a>>>,
    reports: bool,
    plain: bool,
}

impl<'a> Mode<'_, 'a> {
    fn decoding<'m>(datums: &'m mut Vec<Datum<'a>>, plain: bool) -> Mode<'m, 'a> {
        Mode {
            datums: Some(datums),
            reports: true,
            plain,
        }
    }

    #[inline(always)]
    fn push(&mut self, datum: Datum<'a>) {
        if let Some(datums) = &mut self.datums {
            datums.push(datum);
        }
    }

    fn reports(&self) -> bool {
        self.reports
    }

    /// The mode of a constraint inside this check: reporting, or testing
    /// inside an `if`; collecting nothing.
    fn checking<'m>(&self) -> Mode<'m, 'a> {
        Mode {
            datums: None,
            ..*self
        }
    }

    /// The mode of an `if`.
    fn testing<'m>(&self) -> Mode<'m, 'a> {
        Mode {
            datums: None,
            reports: false,
            plain: self.plain,
        }
    }

    fn reborrow(&mut self) -> Mode<'_, 'a> {
        Mode {
            datums: self.datums.as_deref_mut(),
            reports: self.reports,
            plain: self.plain,
        }
    }

    /// The text of the JSON string `raw` (quotes included): borrowed unless
    /// it has escapes, which a plain record has none of.
    #[inline]
    fn text(&self, raw: &'a str) -> Result<Cow<'a, str>, String> {
        if self.plain {
            Ok(Cow::Borrowed(&raw[1..raw.len() - 1]))
        } else {
            unquote(raw)
        }
    }
}

/// Where a value is in the record, for messages: `items[3].qty`. Built on
/// the stack while descending, rendered only when a check fails.
#[derive(Clone, Copy)]
enum Path<'p> {
    Root,
    Field(&'p Path<'p>, &'p str),
    Index(&'p Path<'p>, usize),
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Field(Path::Root, name) => write!(f, "{name}"),
            Path::Field(parent, name) => write!(f, "{parent}.{name}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// What a subschema checks, resolved for speed: its kind from `type` and
/// `format`, enums as a set of strings, the object's members by position.
#[derive(Debug)]
struct Plan {
    kind: Kind,
    /// A string with no rules but its type: decoded on a short path.
    plain_string: bool,
    nullable: bool,
    /// `x-error-code`: replaces the code of this subschema's own violations.
    code: Option<ErrorCode>,
    enumeration: Option<Enumeration>,
    constant: Option<Enumeration>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    exclusive_minimum: Option<f64>,
    exclusive_maximum: Option<f64>,
    multiple_of: Option<f64>,
    /// `multiple_of` as digits × 10^exponent, from its shortest decimal form.
    multiple_of_digits: Option<(u128, i32)>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    pattern: Option<regex::Regex>,
    format: Option<Format>,
    object: Option<Box<ObjectPlan>>,
    items: Option<Box<Plan>>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    conditional: Option<Box<ConditionalPlan>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Boolean,
    Integer,
    Number,
    String,
    /// A string of `format: date-time`: a TIMESTAMP column.
    Timestamp,
    /// A string of `format: date`: a DATE column.
    Date,
    Object,
    Array,
    /// `"type": "null"`: only absent or null.
    Null,
    /// No `type` (a constraint): the keywords that fit the value's type apply.
    Any,
}

#[derive(Debug)]
struct ObjectPlan {
    names: Vec<Name>,
    properties: Vec<Plan>,
    required: Vec<bool>,
    /// Required names that are not properties (constraints only).
    required_elsewhere: Vec<Name>,
    /// `additionalProperties`: unknown members are allowed (and kept in
    /// `extra` when the object is a column).
    additional: bool,
    /// The object has an `extra` column (a column object allowing unknown members).
    keeps_extra: bool,
    dependent_required: Vec<(Name, Vec<Name>)>,
}

#[derive(Debug)]
struct ConditionalPlan {
    condition: Plan,
    /// The same condition judged on the members' raw text, when it only
    /// lists string values (`"if": {"properties": {"event_type": {"const":
    /// "purchase"}}}`): the common "a purchase needs an amount" rule costs
    /// a comparison per record instead of a walk through the checks.
    raw_condition: Option<Vec<RawValues>>,
    then: Option<Plan>,
    otherwise: Option<Plan>,
}

/// One member of a [`ConditionalPlan::raw_condition`]: the JSON texts it may have.
#[derive(Debug)]
struct RawValues {
    name: Name,
    texts: Enumeration,
    required: bool,
}

impl RawValues {
    /// The members of an `if` that lists only string values of members, or
    /// `None` when it says anything else.
    fn of(condition: &Node, constrained: &[&str]) -> Option<Vec<RawValues>> {
        let plain = condition.ty.is_none()
            && condition.conditional.is_none()
            && condition.dependent_required.is_empty()
            && condition.additional_properties
            && condition
                .required
                .iter()
                .all(|r| condition.properties.iter().any(|(n, _)| n == r));
        if !plain || condition.properties.is_empty() {
            return None;
        }
        condition
            .properties
            .iter()
            .map(|(name, node)| {
                let values = match (&node.enum_values, &node.const_value) {
                    (Some(values), None) => values.clone(),
                    (None, Some(value)) => vec![value.clone()],
                    _ => return None,
                };
                let texts: Vec<Value> = values
                    .iter()
                    .map(|v| v.as_str().map(|_| Value::String(v.to_string())))
                    .collect::<Option<_>>()?;
                only_values(node).then(|| RawValues {
                    name: Name {
                        hint: constrained.iter().position(|c| c == name),
                        ..Name::new(name)
                    },
                    texts: Enumeration::new(&texts),
                    required: condition.required.contains(name),
                })
            })
            .collect()
    }
}

/// Whether `node` says nothing but `enum` or `const` (and `"type": "string"`).
fn only_values(node: &Node) -> bool {
    matches!(node.ty, None | Some(JsonType::String))
        && !node.nullable
        && node.minimum.is_none()
        && node.maximum.is_none()
        && node.exclusive_minimum.is_none()
        && node.exclusive_maximum.is_none()
        && node.multiple_of.is_none()
        && node.min_length.is_none()
        && node.max_length.is_none()
        && node.pattern.is_none()
        && node.format.is_none()
        && node.properties.is_empty()
        && node.required.is_empty()
        && node.additional_properties
        && node.items.is_none()
        && node.min_items.is_none()
        && node.max_items.is_none()
        && node.conditional.is_none()
        && node.dependent_required.is_empty()
}

/// A string of at most 16 bytes as one integer (and its length): field
/// names and enum values compared without a call to `memcmp`, which was a
/// tenth of decoding when names were compared as strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Short(u64, u64, usize);

impl Short {
    /// Its place in a table of `size` (a power of two) slots.
    #[inline]
    fn slot(&self, size: usize) -> usize {
        let mixed =
            (self.0 ^ self.1.rotate_left(23) ^ self.2 as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (mixed >> 32) as usize & (size - 1)
    }

    /// Loads that overlap rather than a copy into a padded buffer: the copy
    /// and the wide load after it stalled on store forwarding. For a given
    /// length the words determine the bytes, so equal keys mean equal text.
    #[inline]
    fn of(text: &str) -> Option<Short> {
        let b = text.as_bytes();
        let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        let half = |at: usize| {
            u64::from(u32::from_le_bytes(
                b[at..at + 4].try_into().expect("4 bytes"),
            ))
        };
        let n = b.len();
        match n {
            8..=16 => Some(Short(word(0), word(n - 8), n)),
            4..=7 => Some(Short(half(0) | half(n - 4) << 32, 0, n)),
            _ if n < 4 => Some(Short(b.iter().fold(0, |v, &c| v << 8 | u64::from(c)), 0, n)),
            _ => None,
        }
    }
}

/// A field name of a contract, with its [`Short`] form.
#[derive(Debug)]
struct Name {
    text: Box<str>,
    short: Option<Short>,
    /// In a constraint (`if`/`then`/`else`): where the name is among the
    /// properties of the object it constrains, tried first when looking it up.
    hint: Option<usize>,
}

impl Name {
    fn new(text: &str) -> Name {
        Name {
            text: text.into(),
            short: Short::of(text),
            hint: None,
        }
    }

    /// Whether this is `text`, whose short form the caller computed once.
    fn is(&self, text: &str, short: Option<Short>) -> bool {
        match (self.short, short) {
            (Some(a), Some(b)) => a == b,
            (None, None) => *self.text == *text,
            _ => false,
        }
    }
}

impl std::ops::Deref for Name {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

/// `enum` or `const` values: strings in a set, anything else compared as JSON.
#[derive(Debug)]
struct Enumeration {
    /// The string values of at most 16 bytes, open-addressed (linear
    /// probing, at most half full): one comparison for most lookups, where a
    /// binary search over the 250 country codes mispredicted its way down.
    short: Vec<Option<Short>>,
    /// The longer ones.
    long: HashSet<Box<str>, BuildHasherDefault<Fnv>>,
    others: Vec<Value>,
    /// The values as JSON text, for messages.
    listed: String,
    allows_null: bool,
}

impl Enumeration {
    fn new(values: &[Value]) -> Enumeration {
        const SHOWN: usize = 10;
        let mut listed: Vec<String> = values.iter().take(SHOWN).map(Value::to_string).collect();
        if values.len() > SHOWN {
            listed.push(format!("… ({} values in all)", values.len()));
        }
        let strings = values.iter().filter_map(Value::as_str);
        let mut short = vec![None; (2 * values.len()).next_power_of_two().max(2)];
        for key in strings.clone().filter_map(Short::of) {
            let mut at = key.slot(short.len());
            while short[at].is_some_and(|k| k != key) {
                at = (at + 1) & (short.len() - 1);
            }
            short[at] = Some(key);
        }
        Enumeration {
            short,
            long: strings.filter(|s| s.len() > 16).map(Box::from).collect(),
            others: values.iter().filter(|v| !v.is_string()).cloned().collect(),
            listed: listed.join(", "),
            allows_null: values.iter().any(Value::is_null),
        }
    }

    fn has_string(&self, text: &str) -> bool {
        let Some(key) = Short::of(text) else {
            return self.long.contains(text);
        };
        let mut at = key.slot(self.short.len());
        loop {
            match self.short[at] {
                None => return false,
                Some(k) if k == key => return true,
                Some(_) => at = (at + 1) & (self.short.len() - 1),
            }
        }
    }

    /// Whether the non-string JSON value `raw` is listed (rare: parsed).
    fn has_other(&self, raw: &str) -> bool {
        let Ok(value) = serde_json::from_str::<Value>(raw) else {
            return false;
        };
        self.others.iter().any(|v| same_json(v, &value))
    }
}

/// JSON equality, with numbers equal by value (`1` and `1.0`).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_json(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// FNV-1a: enum values are short strings, for which SipHash's setup costs
/// more than the hashing.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            hash = (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }
}

/// A contract's own error code (`x-error-code`) as an [`ErrorCode`]: a
/// built-in one by name, else an interned custom one (compiled once per
/// contract, so the interned strings are few).
pub fn error_code(name: &str) -> ErrorCode {
    if let Some(code) = ErrorCode::ALL.iter().find(|c| c.as_str() == name) {
        return *code;
    }
    static INTERNED: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut interned = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
    let name = match interned.get(name) {
        Some(name) => *name,
        None => {
            let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
            interned.insert(leaked);
            leaked
        }
    };
    ErrorCode::Custom(name)
}

impl Plan {
    fn new(node: &Node) -> Plan {
        let kind = match (node.ty, node.format) {
            (Some(JsonType::String), Some(Format::DateTime)) => Kind::Timestamp,
            (Some(JsonType::String), Some(Format::Date)) => Kind::Date,
            (Some(JsonType::String), _) => Kind::String,
            (Some(JsonType::Integer), _) => Kind::Integer,
            (Some(JsonType::Number), _) => Kind::Number,
            (Some(JsonType::Boolean), _) => Kind::Boolean,
            (Some(JsonType::Object), _) => Kind::Object,
            (Some(JsonType::Array), _) => Kind::Array,
            (Some(JsonType::Null), _) => Kind::Null,
            (None, _) => Kind::Any,
        };
        let has_object_keywords = !node.properties.is_empty()
            || !node.required.is_empty()
            || !node.additional_properties
            || !node.dependent_required.is_empty();
        let object =
            (kind == Kind::Object || (kind == Kind::Any && has_object_keywords)).then(|| {
                let names: Vec<&str> = node.properties.iter().map(|(n, _)| n.as_str()).collect();
                Box::new(ObjectPlan {
                    names: names.iter().map(|n| Name::new(n)).collect(),
                    properties: node
                        .properties
                        .iter()
                        .map(|(_, child)| Plan::new(child))
                        .collect(),
                    required: names
                        .iter()
                        .map(|n| node.required.iter().any(|r| r == n))
                        .collect(),
                    required_elsewhere: node
                        .required
                        .iter()
                        .filter(|r| !names.contains(&r.as_str()))
                        .map(|r| Name::new(r))
                        .collect(),
                    additional: node.additional_properties,
                    keeps_extra: kind == Kind::Object && node.additional_properties,
                    dependent_required: node
                        .dependent_required
                        .iter()
                        .map(|(name, needs)| {
                            (
                                Name::new(name),
                                needs.iter().map(|n| Name::new(n)).collect(),
                            )
                        })
                        .collect(),
                })
            });
        let mut plan = Plan {
            kind,
            plain_string: false,
            nullable: node.nullable,
            code: node.error_code.as_deref().map(error_code),
            enumeration: node.enum_values.as_deref().map(Enumeration::new),
            constant: node
                .const_value
                .as_ref()
                .map(|v| Enumeration::new(std::slice::from_ref(v))),
            minimum: node.minimum,
            maximum: node.maximum,
            exclusive_minimum: node.exclusive_minimum,
            exclusive_maximum: node.exclusive_maximum,
            multiple_of: node.multiple_of,
            multiple_of_digits: node.multiple_of.and_then(|m| decimal(&m.to_string())),
            min_length: node.min_length,
            max_length: node.max_length,
            pattern: node.pattern.clone(),
            format: node.format,
            object,
            items: node.items.as_deref().map(|i| Box::new(Plan::new(i))),
            min_items: node.min_items,
            max_items: node.max_items,
            conditional: node.conditional.as_deref().map(|c: &Conditional| {
                let constrained: Vec<&str> =
                    node.properties.iter().map(|(n, _)| n.as_str()).collect();
                let branch = |n: &Node| {
                    let mut plan = Plan::new(n);
                    plan.hint_names(&constrained);
                    plan
                };
                Box::new(ConditionalPlan {
                    condition: branch(&c.condition),
                    raw_condition: RawValues::of(&c.condition, &constrained),
                    then: c.then.as_ref().map(branch),
                    otherwise: c.otherwise.as_ref().map(branch),
                })
            }),
        };
        plan.plain_string = plan.kind == Kind::String
            && plan.enumeration.is_none()
            && plan.constant.is_none()
            && plan.min_length.is_none()
            && plan.max_length.is_none()
            && plan.pattern.is_none()
            && plan.format.is_none()
            && plan.conditional.is_none();
        plan
    }

    /// Points the names of a constraint at the properties (`constrained`) of
    /// the object it applies to.
    fn hint_names(&mut self, constrained: &[&str]) {
        let hint = |name: &mut Name| name.hint = constrained.iter().position(|c| *c == &*name.text);
        if let Some(object) = &mut self.object {
            object.names.iter_mut().for_each(hint);
            object.required_elsewhere.iter_mut().for_each(hint);
            for (name, needs) in &mut object.dependent_required {
                hint(name);
                needs.iter_mut().for_each(hint);
            }
        }
        if let Some(conditional) = &mut self.conditional {
            for branch in [
                Some(&mut conditional.condition),
                conditional.then.as_mut(),
                conditional.otherwise.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                branch.hint_names(constrained);
            }
        }
    }

    /// The index after the datums of this column's value starting at `at`.
    fn skip(&self, datums: &[Datum], at: usize) -> usize {
        match (&datums[at], &self.object, &self.items) {
            (Datum::Struct, Some(object), _) => {
                let at = object
                    .properties
                    .iter()
                    .fold(at + 1, |at, field| field.skip(datums, at));
                at + usize::from(object.keeps_extra)
            }
            (Datum::List(n), _, Some(items)) => {
                (0..*n).fold(at + 1, |at, _| items.skip(datums, at))
            }
            _ => at + 1,
        }
    }

    /// Whether `null` satisfies the type of this subschema.
    fn admits_null(&self) -> bool {
        self.nullable || matches!(self.kind, Kind::Null | Kind::Any)
    }

    /// A violation of this subschema's own keyword. Its `x-error-code`
    /// names violations of the rules on the value (enum, const, bounds,
    /// lengths, pattern, format); the structure (a missing field, a wrong
    /// type, a duplicate or unexpected member, a broken escape) keeps its
    /// generic code everywhere.
    fn fail(&self, mode: &Mode, code: ErrorCode, message: impl FnOnce() -> String) -> Fail {
        let value_rule = matches!(
            code,
            ErrorCode::NotInEnum
                | ErrorCode::OutOfRange
                | ErrorCode::TooShort
                | ErrorCode::TooLong
                | ErrorCode::PatternMismatch
                | ErrorCode::BadFormat
                | ErrorCode::BadTimestamp
        );
        let code = match self.code {
            Some(own) if value_rule => own,
            _ => code,
        };
        Fail(
            mode.reports()
                .then(|| Box::new(Rejection::new(code, message()))),
        )
    }

    fn expected(&self) -> &'static str {
        let base = match self.kind {
            Kind::Boolean => "a boolean",
            Kind::Integer => "an integer",
            Kind::Number => "a number",
            Kind::String | Kind::Timestamp | Kind::Date => "a string",
            Kind::Object => "an object",
            Kind::Array => "an array",
            Kind::Null | Kind::Any => "null",
        };
        match (self.nullable, base) {
            (false, _) => base,
            (true, "a boolean") => "a boolean or null",
            (true, "an integer") => "an integer or null",
            (true, "a number") => "a number or null",
            (true, "a string") => "a string or null",
            (true, "an object") => "an object or null",
            (true, "an array") => "an array or null",
            _ => base,
        }
    }

    /// Checks one present value (its exact JSON text) at `path` and, when
    /// decoding, pushes its datums.
    #[inline]
    fn value<'a>(&self, raw: &'a str, path: &Path, mut mode: Mode<'_, 'a>) -> Result<(), Fail> {
        self.typed_value(raw, path, mode.reborrow())?;
        // An object's conditional sees its members (in `ObjectPlan::decode`).
        match &self.conditional {
            Some(conditional) if self.object.is_none() || !raw.starts_with('{') => {
                conditional.check(raw, path, &mode)
            }
            _ => Ok(()),
        }
    }

    #[inline]
    fn typed_value<'a>(
        &self,
        raw: &'a str,
        path: &Path,
        mut mode: Mode<'_, 'a>,
    ) -> Result<(), Fail> {
        if raw == "null" {
            if !self.admits_null() {
                return Err(self.wrong_type(raw, path, &mode));
            }
            self.enumerated_null(path, &mode)?;
            mode.push(Datum::Null);
            return Ok(());
        }
        let first = raw.as_bytes()[0];
        match self.kind {
            Kind::String | Kind::Timestamp | Kind::Date => {
                if first != b'"' {
                    return Err(self.wrong_type(raw, path, &mode));
                }
                if self.plain_string {
                    let text = mode.text(raw).map_err(|e| {
                        self.fail(&mode, ErrorCode::BadString, || {
                            format!("field `{path}` {e}")
                        })
                    })?;
                    mode.push(Datum::Str(text));
                    return Ok(());
                }
                self.string(raw, path, mode)
            }
            Kind::Integer => {
                if !(first == b'-' || first.is_ascii_digit()) {
                    return Err(self.wrong_type(raw, path, &mode));
                }
                let value = self.integer(raw, path, &mode)?;
                mode.push(Datum::Int(value));
                Ok(())
            }
            Kind::Number => {
                if !(first == b'-' || first.is_ascii_digit()) {
                    return Err(self.wrong_type(raw, path, &mode));
                }
                let value = self.number(raw, path, &mode)?;
                mode.push(Datum::Float(value));
                Ok(())
            }
            Kind::Boolean => {
                let value = match raw {
                    "true" => true,
                    "false" => false,
                    _ => return Err(self.wrong_type(raw, path, &mode)),
                };
                self.enumerated_other(raw, path, &mode)?;
                mode.push(Datum::Bool(value));
                Ok(())
            }
            Kind::Object => {
                if first != b'{' {
                    return Err(self.wrong_type(raw, path, &mode));
                }
                self.object_value(raw, path, mode)
            }
            Kind::Array => {
                if first != b'[' {
                    return Err(self.wrong_type(raw, path, &mode));
                }
                self.array(raw, path, mode)
            }
            Kind::Null => Err(self.wrong_type(raw, path, &mode)),
            Kind::Any => self.any(raw, path, mode),
        }
    }

    fn wrong_type(&self, raw: &str, path: &Path, mode: &Mode) -> Fail {
        self.fail(mode, ErrorCode::WrongType, || {
            format!(
                "field `{path}` must be {}, got a {}",
                self.expected(),
                json_type(raw)
            )
        })
    }

    /// `enum`/`const` on a null value that the type admits.
    fn enumerated_null(&self, path: &Path, mode: &Mode) -> Result<(), Fail> {
        for (values, keyword) in [(&self.enumeration, "one of"), (&self.constant, "")] {
            if let Some(values) = values {
                if !values.allows_null {
                    return Err(self.not_listed(values, keyword, "null", path, mode));
                }
            }
        }
        Ok(())
    }

    fn enumerated_string(
        &self,
        text: &str,
        raw: &str,
        path: &Path,
        mode: &Mode,
    ) -> Result<(), Fail> {
        for (values, keyword) in [(&self.enumeration, "one of"), (&self.constant, "")] {
            if let Some(values) = values {
                if !values.has_string(text) {
                    return Err(self.not_listed(values, keyword, raw, path, mode));
                }
            }
        }
        Ok(())
    }

    fn enumerated_other(&self, raw: &str, path: &Path, mode: &Mode) -> Result<(), Fail> {
        for (values, keyword) in [(&self.enumeration, "one of"), (&self.constant, "")] {
            if let Some(values) = values {
                if !values.has_other(raw) {
                    return Err(self.not_listed(values, keyword, raw, path, mode));
                }
            }
        }
        Ok(())
    }

    fn not_listed(
        &self,
        values: &Enumeration,
        keyword: &str,
        raw: &str,
        path: &Path,
        mode: &Mode,
    ) -> Fail {
        self.fail(mode, ErrorCode::NotInEnum, || {
            if keyword.is_empty() {
                format!(
                    "field `{path}` must be {}, got {}",
                    values.listed,
                    clip(raw)
                )
            } else {
                format!(
                    "field `{path}` {} is not one of {}",
                    clip(raw),
                    values.listed
                )
            }
        })
    }

    fn string<'a>(&self, raw: &'a str, path: &Path, mut mode: Mode<'_, 'a>) -> Result<(), Fail> {
        let text = mode.text(raw).map_err(|e| {
            self.fail(&mode, ErrorCode::BadString, || {
                format!("field `{path}` {e}")
            })
        })?;
        self.enumerated_string(&text, raw, path, &mode)?;
        if self.min_length.is_some() || self.max_length.is_some() {
            let length = text.chars().count() as u64;
            if let Some(min) = self.min_length.filter(|m| length < *m) {
                return Err(self.fail(&mode, ErrorCode::TooShort, || {
                    format!("field `{path}` has {length} characters, fewer than minLength {min}")
                }));
            }
            if let Some(max) = self.max_length.filter(|m| length > *m) {
                return Err(self.fail(&mode, ErrorCode::TooLong, || {
                    format!("field `{path}` has {length} characters, more than maxLength {max}")
                }));
            }
        }
        if let Some(pattern) = &self.pattern {
            if !pattern.is_match(&text) {
                return Err(self.fail(&mode, ErrorCode::PatternMismatch, || {
                    format!(
                        "field `{path}` {} does not match the pattern {:?}",
                        clip(raw),
                        pattern.as_str()
                    )
                }));
            }
        }
        match self.format {
            Some(Format::DateTime) => {
                let micros = parse_timestamp(&text).map_err(|why| {
                    self.fail(&mode, ErrorCode::BadTimestamp, || {
                        format!("field `{path}` {:?} {why}", clip(&text))
                    })
                })?;
                if self.kind == Kind::Timestamp {
                    mode.push(Datum::Micros(micros));
                    return Ok(());
                }
            }
            Some(Format::Date) => {
                let day = parse_date(&text).ok_or_else(|| {
                    self.fail(&mode, ErrorCode::BadFormat, || {
                        format!("field `{path}` {} is not a date (YYYY-MM-DD)", clip(raw))
                    })
                })?;
                if self.kind == Kind::Date {
                    mode.push(Datum::Day(day));
                    return Ok(());
                }
            }
            Some(format) if !format_holds(format, &text) => {
                return Err(self.fail(&mode, ErrorCode::BadFormat, || {
                    format!(
                        "field `{path}` {} is not {}",
                        clip(raw),
                        format_name(format)
                    )
                }));
            }
            Some(_) | None => {}
        }
        mode.push(Datum::Str(text));
        Ok(())
    }

    fn integer(&self, raw: &str, path: &Path, mode: &Mode) -> Result<i64, Fail> {
        if raw.contains(['.', 'e', 'E']) {
            return Err(self.fail(mode, ErrorCode::WrongType, || {
                format!("field `{path}` must be an integer, got {}", clip(raw))
            }));
        }
        let value: i64 = raw.parse().map_err(|_| {
            self.fail(mode, ErrorCode::OutOfRange, || {
                format!(
                    "field `{path}` {} does not fit in a 64-bit integer",
                    clip(raw)
                )
            })
        })?;
        self.enumerated_other_if_listed(raw, path, mode)?;
        self.bounds(value as f64, Some(value), raw, path, mode)?;
        Ok(value)
    }

    fn number(&self, raw: &str, path: &Path, mode: &Mode) -> Result<f64, Fail> {
        let value: f64 = raw.parse().map_err(|_| {
            self.fail(mode, ErrorCode::WrongType, || {
                format!("field `{path}` {} is not a number", clip(raw))
            })
        })?;
        if !value.is_finite() {
            return Err(self.fail(mode, ErrorCode::OutOfRange, || {
                format!(
                    "field `{path}` {} does not fit in a 64-bit float",
                    clip(raw)
                )
            }));
        }
        self.enumerated_other_if_listed(raw, path, mode)?;
        self.bounds(value, None, raw, path, mode)?;
        Ok(value)
    }

    fn enumerated_other_if_listed(&self, raw: &str, path: &Path, mode: &Mode) -> Result<(), Fail> {
        if self.enumeration.is_some() || self.constant.is_some() {
            self.enumerated_other(raw, path, mode)?;
        }
        Ok(())
    }

    /// `integer`: the value exactly, when it is one, so that bounds beyond
    /// 2^53 are compared without rounding.
    fn bounds(
        &self,
        value: f64,
        integer: Option<i64>,
        raw: &str,
        path: &Path,
        mode: &Mode,
    ) -> Result<(), Fail> {
        use std::cmp::Ordering::{Equal, Greater, Less};
        let against = |bound: f64| match integer {
            Some(v) if bound.fract() == 0.0 && bound.abs() < 9.2e18 => Some(v.cmp(&(bound as i64))),
            _ => value.partial_cmp(&bound),
        };
        let out = |rule: &str, bound: f64| {
            self.fail(mode, ErrorCode::OutOfRange, || {
                format!(
                    "field `{path}` must be {rule} {}, got {}",
                    number_text(bound),
                    clip(raw)
                )
            })
        };
        if let Some(b) = self.minimum.filter(|b| against(*b) == Some(Less)) {
            return Err(out(">=", b));
        }
        if let Some(b) = self.maximum.filter(|b| against(*b) == Some(Greater)) {
            return Err(out("<=", b));
        }
        if let Some(b) = self
            .exclusive_minimum
            .filter(|b| matches!(against(*b), Some(Less | Equal)))
        {
            return Err(out(">", b));
        }
        if let Some(b) = self
            .exclusive_maximum
            .filter(|b| matches!(against(*b), Some(Greater | Equal)))
        {
            return Err(out("<", b));
        }
        if let Some(m) = self
            .multiple_of
            .filter(|m| !is_multiple(raw, value, *m, self.multiple_of_digits))
        {
            return Err(out("a multiple of", m));
        }
        Ok(())
    }

    fn object_value<'a>(&self, raw: &'a str, path: &Path, mode: Mode<'_, 'a>) -> Result<(), Fail> {
        let mut members = Vec::new();
        Scanner::new(raw)
            .object(&mut members)
            .expect("the batch scanner read this value as JSON");
        self.object_members(raw, &members, path, mode)
    }

    /// An object value given as its members, (name, value) as written: its
    /// own `enum` and `const`, then its members.
    fn object_members<'a>(
        &self,
        raw: &'a str,
        members: &[(&'a str, &'a str)],
        path: &Path,
        mode: Mode<'_, 'a>,
    ) -> Result<(), Fail> {
        self.enumerated_other_if_listed(raw, path, &mode)?;
        let object = self.object.as_deref().expect("an object plan has members");
        object.decode(self, raw, members, Some(path), mode)
    }

    /// Decodes the items in the one pass that finds where each ends (an
    /// object item's members are listed in that pass too), instead of
    /// splitting the array first and scanning every item again: that second
    /// scan was about a tenth of the orders contract's instructions. The
    /// array's own keywords are still judged first: an item's failure is held
    /// until the array is counted.
    fn array<'a>(&self, raw: &'a str, path: &Path, mut mode: Mode<'_, 'a>) -> Result<(), Fail> {
        let list_at = mode.datums.as_ref().map(|datums| datums.len());
        mode.push(Datum::List(0));
        let mut scanner = Scanner::new(raw);
        scanner.pos = 1;
        scanner.skip_whitespace();
        let mut count: u64 = 0;
        let mut failed_item = None;
        let mut members = Vec::new();
        if scanner.peek() != Some(b']') {
            loop {
                scanner.skip_whitespace();
                // Past a failed item or past maxItems the rest is only counted.
                let decodes = failed_item.is_none() && self.max_items.is_none_or(|m| count < m);
                match self.items.as_deref().filter(|_| decodes) {
                    Some(item_plan) => {
                        let item_path = Path::Index(path, count as usize);
                        if let Err(fail) =
                            item_plan.item(&mut scanner, &mut members, &item_path, mode.reborrow())
                        {
                            failed_item = Some(fail);
                        }
                    }
                    None => {
                        scanner
                            .value()
                            .expect("the batch scanner read this value as JSON");
                    }
                }
                count += 1;
                scanner.skip_whitespace();
                match scanner.peek() {
                    Some(b',') => scanner.pos += 1,
                    _ => break,
                }
            }
        }
        if let Some(min) = self.min_items.filter(|m| count < *m) {
            return Err(self.fail(&mode, ErrorCode::TooShort, || {
                format!("field `{path}` has {count} items, fewer than minItems {min}")
            }));
        }
        if let Some(max) = self.max_items.filter(|m| count > *m) {
            return Err(self.fail(&mode, ErrorCode::TooLong, || {
                format!("field `{path}` has {count} items, more than maxItems {max}")
            }));
        }
        if self.enumeration.is_some() || self.constant.is_some() {
            self.enumerated_other(raw, path, &mode)?;
        }
        if let Some(fail) = failed_item {
            return Err(fail);
        }
        if let (Some(at), Some(datums)) = (list_at, &mut mode.datums) {
            datums[at] = Datum::List(count as u32);
        }
        Ok(())
    }

    /// One array item at the scanner's position, judged as [`Plan::value`]
    /// judges it; an object item on the members listed while scanning it.
    fn item<'a>(
        &self,
        scanner: &mut Scanner<'a>,
        members: &mut Vec<(&'a str, &'a str)>,
        path: &Path,
        mode: Mode<'_, 'a>,
    ) -> Result<(), Fail> {
        if self.kind == Kind::Object && scanner.peek() == Some(b'{') {
            members.clear();
            let (text, _) = scanner
                .object(members)
                .expect("the batch scanner read this value as JSON");
            return self.object_members(text, members, path, mode);
        }
        let (text, _) = scanner
            .value()
            .expect("the batch scanner read this value as JSON");
        self.value(text, path, mode)
    }

    /// A constraint without `type` (never decoding): the keywords that fit
    /// the value's type.
    fn any<'a>(&self, raw: &'a str, path: &Path, mode: Mode<'_, 'a>) -> Result<(), Fail> {
        match raw.as_bytes()[0] {
            b'"' => self.string(raw, path, mode),
            b'-' | b'0'..=b'9' => self.number(raw, path, &mode).map(|_| ()),
            b'{' => match &self.object {
                Some(_) => self.object_value(raw, path, mode),
                None => self.enumerated_other_if_listed(raw, path, &mode),
            },
            b'[' => self.array(raw, path, mode),
            _ => self.enumerated_other_if_listed(raw, path, &mode),
        }
    }
}

/// A member that is not a property: its decoded name, the name as written,
/// its value, and the short form of its name.
type Unknown<'a> = (Cow<'a, str>, &'a str, &'a str, Option<Short>);

/// One object's members found by name: the declared properties by position
/// (`slots`), the others in order as written.
struct Members<'m, 'a> {
    /// The object's JSON text.
    text: &'a str,
    slots: &'m [Option<&'a str>],
    names: &'m [Name],
    unknown: &'m [Unknown<'a>],
}

impl<'a> Members<'_, 'a> {
    /// The names of the members present, properties first.
    fn present(&self) -> impl Iterator<Item = &str> {
        let declared = self
            .names
            .iter()
            .zip(self.slots)
            .filter(|(_, slot)| slot.is_some())
            .map(|(name, _)| &**name);
        declared.chain(self.unknown.iter().map(|(name, ..)| &**name))
    }

    fn get(&self, name: &Name) -> Option<&'a str> {
        if let Some(i) = name.hint {
            if self.names.get(i).is_some_and(|n| n.is(name, name.short)) {
                return self.slots[i];
            }
        }
        if let Some(i) = self.names.iter().position(|n| n.is(name, name.short)) {
            return self.slots[i];
        }
        self.unknown
            .iter()
            .find(|(n, _, _, short)| name.is(n, *short))
            .map(|(_, _, value, _)| *value)
    }
}

impl ObjectPlan {
    /// Judges one object given as its members, (name, value) as written.
    /// `path` is `None` for the record itself.
    fn decode<'a>(
        &self,
        plan: &Plan,
        text: &'a str,
        members: &[(&'a str, &'a str)],
        path: Option<&Path>,
        mut mode: Mode<'_, 'a>,
    ) -> Result<(), Fail> {
        let here = path.copied().unwrap_or(Path::Root);
        let mut slots: [Option<&'a str>; 16] = [None; 16];
        let mut many_slots: Vec<Option<&'a str>> = Vec::new();
        let slots: &mut [Option<&'a str>] = if self.names.len() <= slots.len() {
            &mut slots[..self.names.len()]
        } else {
            many_slots.resize(self.names.len(), None);
            &mut many_slots
        };
        let mut unknown: Vec<Unknown<'a>> = Vec::new();
        let mut next = 0;
        for &(raw_name, value) in members {
            let name = mode.text(raw_name).map_err(|e| {
                plan.fail(&mode, ErrorCode::BadString, || {
                    format!("a field name{} {e}", in_object(&here))
                })
            })?;
            // Members usually come in the order of the properties: try the
            // next one first.
            let short = Short::of(&name);
            let index = if self.names.get(next).is_some_and(|n| n.is(&name, short)) {
                Some(next)
            } else {
                self.names.iter().position(|n| n.is(&name, short))
            };
            match index {
                Some(i) => {
                    if slots[i].is_some() {
                        return Err(duplicate(plan, &mode, &here, &name));
                    }
                    slots[i] = Some(value);
                    next = i + 1;
                }
                None => {
                    if unknown.iter().any(|(n, ..)| *n == name) {
                        return Err(duplicate(plan, &mode, &here, &name));
                    }
                    unknown.push((name, raw_name, value, short));
                }
            }
        }
        if path.is_some() {
            mode.push(Datum::Struct);
        }
        for (i, property) in self.properties.iter().enumerate() {
            let field = Path::Field(&here, &self.names[i]);
            self.required_present(plan, i, slots[i], &field, &mode)?;
            match slots[i] {
                None => mode.push(Datum::Null),
                Some(value) => property.value(value, &field, mode.reborrow())?,
            }
        }
        let found = Members {
            text,
            slots,
            names: &self.names,
            unknown: &unknown,
        };
        self.member_rules(plan, &found, &here, &mode)?;
        if let Some(conditional) = &plan.conditional {
            conditional.check_members(&found, &here, &mode)?;
        }
        if self.keeps_extra {
            mode.push(match unknown.is_empty() {
                true => Datum::Null,
                false => Datum::Str(Cow::Owned(extra_object(&unknown))),
            });
        }
        Ok(())
    }
}

impl ObjectPlan {
    /// Property `i`'s `required`, given its value as written (`None`: absent).
    fn required_present(
        &self,
        plan: &Plan,
        i: usize,
        value: Option<&str>,
        field: &Path,
        mode: &Mode,
    ) -> Result<(), Fail> {
        match value {
            None if self.required[i] => Err(plan.fail(mode, ErrorCode::MissingField, || {
                format!("required field `{field}` is missing")
            })),
            Some("null") if self.required[i] && !self.properties[i].admits_null() => Err(plan
                .fail(mode, ErrorCode::MissingField, || {
                    format!("required field `{field}` is null")
                })),
            _ => Ok(()),
        }
    }

    /// The rules on the members as a whole, after the properties: required
    /// names that are not properties, unknown members when
    /// `additionalProperties` is false, `dependentRequired`. `members` are
    /// the object's own (a column object) or those of the object a
    /// constraint applies to.
    fn member_rules(
        &self,
        plan: &Plan,
        members: &Members,
        path: &Path,
        mode: &Mode,
    ) -> Result<(), Fail> {
        if let Some(name) = self
            .required_elsewhere
            .iter()
            .find(|n| members.get(n).is_none())
        {
            return Err(plan.fail(mode, ErrorCode::MissingField, || {
                format!("required field `{}` is missing", Path::Field(path, name))
            }));
        }
        if !self.additional {
            // An object's own unknown members are those outside its
            // properties; a constraint's are the members outside its own.
            let unexpected = if std::ptr::eq(members.names, self.names.as_slice()) {
                members.unknown.first().map(|(name, ..)| &**name)
            } else {
                members
                    .present()
                    .find(|n| !self.names.iter().any(|m| m.is(n, Short::of(n))))
            };
            if let Some(name) = unexpected {
                return Err(plan.fail(mode, ErrorCode::UnexpectedField, || {
                    format!(
                        "field `{}` is not in the contract, which does not allow other fields",
                        Path::Field(path, &clip(name))
                    )
                }));
            }
        }
        for (name, needs) in &self.dependent_required {
            if members.get(name).is_some() {
                if let Some(need) = needs.iter().find(|n| members.get(n).is_none()) {
                    return Err(plan.fail(mode, ErrorCode::MissingField, || {
                        format!(
                            "field `{}` is required when `{}` is present",
                            Path::Field(path, need),
                            Path::Field(path, name)
                        )
                    }));
                }
            }
        }
        Ok(())
    }
}

impl ConditionalPlan {
    /// `if`/`then`/`else` on an object, given its members.
    fn check_members<'a>(
        &self,
        members: &Members<'_, 'a>,
        path: &Path,
        mode: &Mode<'_, 'a>,
    ) -> Result<(), Fail> {
        let raw = self.raw_condition.as_ref().and_then(|values| {
            values
                .iter()
                .try_fold(true, |holds, v| match members.get(&v.name) {
                    None => Some(holds && !v.required),
                    // Escapes would need decoding: the general check decides.
                    Some(raw) if !mode.plain && raw.contains('\\') => None,
                    Some(raw) => Some(holds && v.texts.has_string(raw)),
                })
        });
        let holds = match raw {
            Some(holds) => holds,
            None => self
                .condition
                .members_hold(members, path, mode.testing())
                .is_ok(),
        };
        let (branch, name) = match holds {
            true => (&self.then, "then"),
            false => (&self.otherwise, "else"),
        };
        match branch {
            Some(branch) => branch
                .members_hold(members, path, mode.checking())
                .map_err(|f| in_branch(f, name)),
            None => Ok(()),
        }
    }

    /// `if`/`then`/`else` on a value that is not an object.
    fn check<'a>(&self, raw: &'a str, path: &Path, mode: &Mode<'_, 'a>) -> Result<(), Fail> {
        let holds = self.condition.value(raw, path, mode.testing()).is_ok();
        let (branch, name) = match holds {
            true => (&self.then, "then"),
            false => (&self.otherwise, "else"),
        };
        match branch {
            Some(branch) => branch
                .value(raw, path, mode.checking())
                .map_err(|f| in_branch(f, name)),
            None => Ok(()),
        }
    }
}

impl Plan {
    /// A constraint applied to an object already split into members.
    fn members_hold<'a>(
        &self,
        members: &Members<'_, 'a>,
        path: &Path,
        mode: Mode<'_, 'a>,
    ) -> Result<(), Fail> {
        // The constraint's own type, enum and const, on the object as a whole.
        if !matches!(self.kind, Kind::Any | Kind::Object) {
            return Err(self.wrong_type(members.text, path, &mode));
        }
        self.enumerated_other_if_listed(members.text, path, &mode)?;
        if let Some(object) = &self.object {
            for (i, property) in object.properties.iter().enumerate() {
                let field = Path::Field(path, &object.names[i]);
                let value = members.get(&object.names[i]);
                object.required_present(self, i, value, &field, &mode)?;
                if let Some(value) = value {
                    property.value(value, &field, mode.checking())?;
                }
            }
            object.member_rules(self, members, path, &mode)?;
        }
        if let Some(conditional) = &self.conditional {
            conditional.check_members(members, path, &mode)?;
        }
        Ok(())
    }
}

/// Says which branch of a conditional a violation comes from.
fn in_branch(mut fail: Fail, branch: &str) -> Fail {
    if let Some(rejection) = &mut fail.0 {
        let _ = write!(rejection.message, " (the contract's `{branch}` applies)");
    }
    fail
}

fn duplicate(plan: &Plan, mode: &Mode, here: &Path, name: &str) -> Fail {
    plan.fail(mode, ErrorCode::DuplicateField, || {
        format!(
            "field `{}` appears more than once",
            Path::Field(here, &clip(name))
        )
    })
}

fn in_object(path: &Path) -> String {
    match path {
        Path::Root => String::new(),
        path => format!(" in `{path}`"),
    }
}

/// Unknown members as one JSON object text, names and values as written.
fn extra_object(unknown: &[Unknown]) -> String {
    let mut object = String::from("{");
    for (i, (_, raw_name, value, _)) in unknown.iter().enumerate() {
        if i > 0 {
            object.push(',');
        }
        object.push_str(raw_name);
        object.push(':');
        object.push_str(value);
    }
    object.push('}');
    object
}

/// Whether the number written `raw` is an integral multiple of `m`, decided
/// in decimal on the digits as written (`158.01` is a multiple of `0.01`,
/// which binary floating point says it is not); in floating point only when
/// the digits do not fit 128 bits.
fn is_multiple(raw: &str, value: f64, m: f64, step: Option<(u128, i32)>) -> bool {
    if let (Some((a, ea)), Some((b, eb))) = (decimal(raw), step) {
        if b == 0 {
            return false;
        }
        let e = ea.min(eb);
        let scale = |n: u128, by: i32| 10u128.checked_pow(by as u32).and_then(|p| n.checked_mul(p));
        if let (Some(a), Some(b)) = (scale(a, ea - e), scale(b, eb - e)) {
            // In 64 bits when they fit: a 128-bit remainder is a library call.
            return match (u64::try_from(a), u64::try_from(b)) {
                (Ok(a64), Ok(b64)) => a64 % b64 == 0,
                _ => a % b == 0,
            };
        }
    }
    let quotient = value / m;
    quotient.is_finite() && quotient.fract() == 0.0
}

/// A JSON number's magnitude as digits × 10^exponent, if the digits fit;
/// one pass over its bytes (a `multipleOf` column calls it on every value).
fn decimal(text: &str) -> Option<(u128, i32)> {
    let magnitude = text.strip_prefix('-').unwrap_or(text);
    let mut value: u128 = 0;
    let mut fraction_digits: i32 = 0;
    let mut in_fraction = false;
    for (at, byte) in magnitude.bytes().enumerate() {
        match byte {
            b'.' => in_fraction = true,
            b'e' | b'E' => {
                let exponent: i32 = magnitude[at + 1..].parse().ok()?;
                return Some((value, exponent.checked_sub(fraction_digits)?));
            }
            digit => {
                value = value
                    .checked_mul(10)?
                    .checked_add(u128::from(digit.wrapping_sub(b'0')))?;
                fraction_digits += i32::from(in_fraction);
            }
        }
    }
    Some((value, -fraction_digits))
}

/// A bound as a person writes it: `0`, not `0.0`.
fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{n:.0}")
    } else {
        n.to_string()
    }
}

/// `YYYY-MM-DD` with a real day, years 0001..=9999.
fn parse_date(text: &str) -> Option<i32> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        b[range].iter().try_fold(0i64, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    if year < 1 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day) as i32)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Uuid => "a UUID",
        Format::DateTime => "an RFC 3339 timestamp",
        Format::Date => "a date",
        Format::Email => "an email address",
        Format::Ipv4 => "an IPv4 address",
        Format::Ipv6 => "an IPv6 address",
        Format::Uri => "an absolute URI",
    }
}

/// The string formats other than dates and times.
fn format_holds(format: Format, text: &str) -> bool {
    match format {
        Format::Uuid => is_uuid(text),
        Format::Email => is_email(text),
        Format::Ipv4 => text.parse::<std::net::Ipv4Addr>().is_ok(),
        Format::Ipv6 => text.parse::<std::net::Ipv6Addr>().is_ok(),
        Format::Uri => is_uri(text),
        Format::DateTime | Format::Date => unreachable!("dates are parsed, not matched"),
    }
}

/// `local@domain`: a non-empty local part without spaces, and a domain of
/// dot-separated labels of letters, digits and hyphens.
fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let domain_ok = domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    local_ok && domain_ok
}

/// An absolute URI: `scheme:rest`, the scheme a letter then letters, digits,
/// `+`, `-` or `.`, and no spaces or control characters.
fn is_uri(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty()
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiples_are_judged_on_the_decimal_digits() {
        for (raw, m, holds) in [
            ("158.01", 0.01, true),
            ("16.33", 0.01, true),
            ("0.3", 0.1, true),
            ("1.005", 0.01, false),
            ("15", 5.0, true),
            ("-15", 5.0, true),
            ("16", 5.0, false),
            ("1.5e2", 0.5, true),
            ("2.5E-1", 0.05, true),
            ("0", 0.25, true),
            ("1e+2", 0.5, true),
            // Digits beyond 64 bits.
            ("123456789012345678901234567", 1.0, true),
            ("12345678901234567890123456.5", 1.0, false),
        ] {
            let value: f64 = raw.parse().expect("a number");
            let step = decimal(&m.to_string());
            assert_eq!(is_multiple(raw, value, m, step), holds, "{raw} of {m}");
        }
        assert_eq!(decimal("-12.50e3"), Some((1250, 1)));
        assert_eq!(decimal("0.001"), Some((1, -3)));
        assert_eq!(decimal("7E+2"), Some((7, 2)));
    }
}
