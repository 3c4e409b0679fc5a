//! Contracts: the user's JSON Schema (draft 2020-12) for one event of one
//! table, plus `"x-lakehouse"`, compiled once at start into a typed tree
//! ([`Node`]) from which the table's columns follow.
//!
//! Only the keywords listed in [`VALIDATION_KEYWORDS`] and the annotations in
//! [`ANNOTATIONS`] are understood; any other keyword is refused with one line
//! naming the file, the JSON pointer and the keyword, never ignored, since an
//! ignored rule would let data the user meant to reject into bronze.
//!
//! This module compiles and checks contracts; the decoder does not run them
//! yet (the built-in event rules of [`crate::event`] still decide).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use serde_json::{Map, Value};

/// The keywords that validate, all compiled.
pub const VALIDATION_KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "items",
    "minItems",
    "maxItems",
    "if",
    "then",
    "else",
    "dependentRequired",
    "$ref",
    "$defs",
];

/// Keywords that validate nothing, accepted anywhere. `description` becomes
/// the column's comment.
pub const ANNOTATIONS: &[&str] = &[
    "description",
    "title",
    "$comment",
    "examples",
    "default",
    "deprecated",
    "x-error-code",
];

/// Accepted at the root only.
const ROOT_KEYWORDS: &[&str] = &["$schema", "$id", "x-lakehouse"];

const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// The `format` values the decoder checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Uuid,
    DateTime,
    Date,
    Email,
    Ipv4,
    Ipv6,
    Uri,
}

impl Format {
    fn parse(name: &str) -> Option<Format> {
        Some(match name {
            "uuid" => Format::Uuid,
            "date-time" => Format::DateTime,
            "date" => Format::Date,
            "email" => Format::Email,
            "ipv4" => Format::Ipv4,
            "ipv6" => Format::Ipv6,
            "uri" => Format::Uri,
            _ => return None,
        })
    }
}

/// The JSON type of a value a subschema allows, besides `null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonType {
    Boolean,
    Integer,
    Number,
    String,
    Object,
    Array,
    /// `"type": "null"` alone: the field may only be absent or null.
    Null,
}

impl JsonType {
    fn parse(name: &str) -> Option<JsonType> {
        Some(match name {
            "boolean" => JsonType::Boolean,
            "integer" => JsonType::Integer,
            "number" => JsonType::Number,
            "string" => JsonType::String,
            "object" => JsonType::Object,
            "array" => JsonType::Array,
            "null" => JsonType::Null,
            _ => return None,
        })
    }

    /// Whether `value` is of this type (an integral number is an integer).
    pub fn admits(self, value: &Value) -> bool {
        match (self, value) {
            (JsonType::Boolean, Value::Bool(_))
            | (JsonType::Number, Value::Number(_))
            | (JsonType::String, Value::String(_))
            | (JsonType::Object, Value::Object(_))
            | (JsonType::Array, Value::Array(_))
            | (JsonType::Null, Value::Null) => true,
            (JsonType::Integer, Value::Number(n)) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        }
    }
}

/// One compiled subschema.
#[derive(Debug, Clone, Default)]
pub struct Node {
    /// `None`: no `type` (allowed in `if`/`then`/`else` subschemas only).
    pub ty: Option<JsonType>,
    /// `null` is allowed besides `ty` (`"type": ["string", "null"]`).
    pub nullable: bool,
    pub enum_values: Option<Vec<Value>>,
    pub const_value: Option<Value>,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub exclusive_minimum: Option<f64>,
    pub exclusive_maximum: Option<f64>,
    pub multiple_of: Option<f64>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub pattern: Option<regex::Regex>,
    pub format: Option<Format>,
    /// In the order written: the order of the struct's columns.
    pub properties: Vec<(String, Node)>,
    pub required: Vec<String>,
    /// `true` (the default): unknown members are kept in an `extra` column.
    pub additional_properties: bool,
    pub items: Option<Box<Node>>,
    pub min_items: Option<u64>,
    pub max_items: Option<u64>,
    pub conditional: Option<Box<Conditional>>,
    pub dependent_required: Vec<(String, Vec<String>)>,
    pub description: Option<String>,
    /// The schema's own name for a violation of this subschema (`x-error-code`).
    pub error_code: Option<String>,
}

/// `if` / `then` / `else` of one subschema.
#[derive(Debug, Clone)]
pub struct Conditional {
    pub condition: Node,
    pub then: Option<Node>,
    pub otherwise: Option<Node>,
}

/// The `"x-lakehouse"` object, defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub table: String,
    pub topic: String,
    /// The required `date-time` field whose UTC date partitions the table.
    pub event_time: String,
    /// The field the silver layer deduplicates on.
    pub key: Option<String>,
    pub version: u32,
    pub raw_prefix: String,
}

/// A compiled contract.
#[derive(Debug, Clone)]
pub struct Contract {
    /// The file it came from, as given: errors and logs name it.
    pub file: String,
    /// The file's text, as stored in the lake (`_contracts/`).
    pub text: String,
    pub table: Table,
    pub root: Node,
}

/// A contract that cannot be used: one line naming the file, where in it,
/// and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("contract {file}: {}{message}", if pointer.is_empty() { String::new() } else { format!("at {pointer}: ") })]
pub struct ContractError {
    pub file: String,
    /// JSON pointer of the offending subschema or keyword ("" for the whole file).
    pub pointer: String,
    pub message: String,
}

/// The built-in contract: the clickstream event the lake was built for,
/// used when no contract is given.
pub const EVENTS_CONTRACT: &str = include_str!("../../contracts/events.schema.json");

impl Contract {
    /// The built-in events contract, compiled.
    pub fn events() -> Contract {
        Contract::parse("contracts/events.schema.json", EVENTS_CONTRACT.as_bytes())
            .expect("the built-in events contract compiles (a unit test holds it)")
    }

    /// Reads and compiles the contract in `path`.
    pub fn load(path: &Path) -> Result<Contract, ContractError> {
        let file = path.display().to_string();
        let fail = |message: String| ContractError {
            file: file.clone(),
            pointer: String::new(),
            message,
        };
        let text = std::fs::read(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
        Contract::parse(&file, &text)
    }

    /// Compiles the contract text `text`; `file` names it in errors.
    pub fn parse(file: &str, text: &[u8]) -> Result<Contract, ContractError> {
        let not_json = |e: serde_json::Error| ContractError {
            file: file.to_string(),
            pointer: String::new(),
            message: format!("not JSON: {e}"),
        };
        let schema: Value = serde_json::from_slice(text).map_err(not_json)?;
        let written: Ordered = serde_json::from_slice(text).map_err(not_json)?;
        let mut order = BTreeMap::new();
        written.key_orders(String::new(), &mut order);
        let compiler = Compiler {
            file,
            defs: schema.get("$defs").and_then(Value::as_object),
            order,
        };
        let Some(object) = schema.as_object() else {
            return Err(compiler.error("", "the contract is not a JSON Schema object".into()));
        };
        if let Some(draft) = object.get("$schema") {
            if draft.as_str() != Some(DRAFT_2020_12) {
                return Err(compiler.error(
                    "/$schema",
                    format!("only draft 2020-12 ({DRAFT_2020_12}) is supported, not {draft}"),
                ));
            }
        }
        let root = compiler.node(&schema, "", Place::Root, &mut Vec::new())?;
        if root.ty != Some(JsonType::Object) || root.nullable {
            return Err(compiler.error("", "an event must be \"type\": \"object\"".into()));
        }
        let table = compiler.table(object.get("x-lakehouse"), &root)?;
        Ok(Contract {
            file: file.to_string(),
            text: String::from_utf8_lossy(text).into_owned(),
            table,
            root,
        })
    }

    /// 16 hex digits naming this contract's text (FNV-1a, stable across
    /// builds): what an intent records, and the name of its stored copy.
    pub fn fingerprint(&self) -> String {
        let hash = self.text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        format!("{hash:016x}")
    }

    /// The table's columns, in the order of its `properties`, then `extra`
    /// when unknown members are kept. Lineage columns are not included.
    pub fn columns(&self) -> Vec<Field> {
        object_fields(&self.root)
    }
}

/// Why `new` cannot replace `old` under the same version, if it cannot: a
/// change to the table's shape that files already written would contradict
/// (a column removed or retyped, a field newly required, another
/// `event_time`). Compatible changes — a new optional field, a wider enum, a
/// looser or tighter bound — return `None`: they apply at the next start.
pub fn incompatible_change(old: &Contract, new: &Contract) -> Option<String> {
    if old.table.event_time != new.table.event_time {
        return Some(format!(
            "event_time changed from `{}` to `{}`",
            old.table.event_time, new.table.event_time
        ));
    }
    changed_fields(
        "",
        &Fields::from(old.columns()),
        &Fields::from(new.columns()),
    )
}

fn changed_fields(path: &str, old: &Fields, new: &Fields) -> Option<String> {
    let at = |name: &str| {
        if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        }
    };
    for before in old {
        let field = at(before.name());
        let Some(after) = new.iter().find(|f| f.name() == before.name()) else {
            return Some(format!("field `{field}` was removed"));
        };
        if let Some(change) = changed_type(&field, before.data_type(), after.data_type()) {
            return Some(change);
        }
        if before.is_nullable() && !after.is_nullable() {
            return Some(format!("field `{field}` is now required"));
        }
    }
    new.iter()
        .find(|f| !f.is_nullable() && !old.iter().any(|o| o.name() == f.name()))
        .map(|f| format!("field `{}` is new and required", at(f.name())))
}

fn changed_type(field: &str, before: &DataType, after: &DataType) -> Option<String> {
    match (before, after) {
        (DataType::Struct(old), DataType::Struct(new)) => changed_fields(field, old, new),
        (DataType::List(old), DataType::List(new)) => {
            changed_type(&format!("{field}[]"), old.data_type(), new.data_type())
        }
        _ if before == after => None,
        _ => Some(format!(
            "field `{field}` changed from {} to {}",
            json_name(before),
            json_name(after)
        )),
    }
}

/// The contract's words for a column type.
fn json_name(data_type: &DataType) -> &'static str {
    match data_type {
        DataType::Int64 => "integer",
        DataType::Float64 => "number",
        DataType::Boolean => "boolean",
        DataType::Utf8 => "string",
        DataType::Timestamp(..) => "string of format date-time",
        DataType::Date32 => "string of format date",
        DataType::Struct(_) => "object",
        DataType::List(_) => "array",
        _ => "null",
    }
}

/// Refuses a set of contracts that one consumer cannot ingest together: two
/// with the same table, or two reading one topic or raw prefix.
pub fn check_tables(contracts: &[Contract]) -> Result<(), ContractError> {
    let mut tables = BTreeMap::new();
    let mut topics = BTreeMap::new();
    let mut prefixes = BTreeMap::new();
    for c in contracts {
        let error = |pointer: &str, message: String| ContractError {
            file: c.file.clone(),
            pointer: pointer.into(),
            message,
        };
        if let Some(other) = tables.insert(&c.table.table, &c.file) {
            return Err(error(
                "/x-lakehouse/table",
                format!("table {:?} is also defined by {other}", c.table.table),
            ));
        }
        if let Some(other) = topics.insert(&c.table.topic, &c.file) {
            return Err(error(
                "/x-lakehouse/topic",
                format!("topic {:?} is also read for {other}", c.table.topic),
            ));
        }
        if let Some(other) = prefixes.insert(&c.table.raw_prefix, &c.file) {
            return Err(error(
                "/x-lakehouse/raw_prefix",
                format!(
                    "raw prefix {:?} is also read for {other}",
                    c.table.raw_prefix
                ),
            ));
        }
    }
    Ok(())
}

/// Where a subschema stands, which decides what it must say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Root,
    /// Defines a column (a property or array items): needs a `type`.
    Column,
    /// Inside `if`/`then`/`else`: constrains columns defined elsewhere.
    Constraint,
}

struct Compiler<'a> {
    file: &'a str,
    defs: Option<&'a Map<String, Value>>,
    /// Member names of every object in the order written, by JSON pointer.
    order: BTreeMap<String, Vec<String>>,
}

impl Compiler<'_> {
    fn error(&self, pointer: &str, message: String) -> ContractError {
        ContractError {
            file: self.file.to_string(),
            pointer: pointer.to_string(),
            message,
        }
    }

    /// Compiles the subschema `value` at `pointer`; `refs` are the `$ref`s
    /// being expanded (a cycle would be an endless column type).
    fn node(
        &self,
        value: &Value,
        pointer: &str,
        place: Place,
        refs: &mut Vec<String>,
    ) -> Result<Node, ContractError> {
        let Some(schema) = value.as_object() else {
            return Err(self.error(
                pointer,
                format!("a subschema must be an object, not {value}"),
            ));
        };
        for keyword in schema.keys() {
            let known = VALIDATION_KEYWORDS.contains(&keyword.as_str())
                || ANNOTATIONS.contains(&keyword.as_str())
                || (place == Place::Root && ROOT_KEYWORDS.contains(&keyword.as_str()));
            if !known {
                return Err(self.error(
                    &format!("{pointer}/{}", escape(keyword)),
                    format!("keyword {keyword:?} is not supported"),
                ));
            }
        }
        if schema.contains_key("$defs") && place != Place::Root {
            return Err(self.error(
                &format!("{pointer}/$defs"),
                "\"$defs\" is supported at the root only".into(),
            ));
        }
        if let Some(reference) = schema.get("$ref") {
            return self.reference(schema, reference, pointer, place, refs);
        }
        let mut node = Node {
            additional_properties: true,
            ..Node::default()
        };
        self.annotations(schema, pointer, &mut node)?;
        self.types(schema, pointer, &mut node)?;
        if place != Place::Constraint && node.ty.is_none() {
            return Err(self.error(pointer, "a column needs a \"type\"".into()));
        }
        self.keywords_fit_type(schema, pointer, node.ty)?;
        self.values(schema, pointer, &mut node)?;
        self.numbers(schema, pointer, &mut node)?;
        self.strings(schema, pointer, &mut node)?;
        self.objects(schema, pointer, place, &mut node, refs)?;
        self.arrays(schema, pointer, &mut node, refs)?;
        self.conditional(schema, pointer, &mut node, refs)?;
        Ok(node)
    }

    /// `$ref` to `#/$defs/<name>`; beside it only annotations.
    fn reference(
        &self,
        schema: &Map<String, Value>,
        reference: &Value,
        pointer: &str,
        place: Place,
        refs: &mut Vec<String>,
    ) -> Result<Node, ContractError> {
        let at = format!("{pointer}/$ref");
        let target = reference
            .as_str()
            .ok_or_else(|| self.error(&at, "\"$ref\" must be a string".into()))?;
        let name = target.strip_prefix("#/$defs/").ok_or_else(|| {
            self.error(
                &at,
                format!("only local references #/$defs/<name> are supported, not {target:?}"),
            )
        })?;
        if let Some(other) = schema
            .keys()
            .find(|k| *k != "$ref" && !ANNOTATIONS.contains(&k.as_str()))
        {
            return Err(self.error(
                &format!("{pointer}/{}", escape(other)),
                format!("keyword {other:?} beside \"$ref\" is not supported"),
            ));
        }
        let Some(def) = self.defs.and_then(|defs| defs.get(name)) else {
            return Err(self.error(&at, format!("{target:?} is not defined")));
        };
        if refs.iter().any(|r| r == name) {
            return Err(self.error(
                &at,
                format!("{target:?} refers to itself: a column cannot nest endlessly"),
            ));
        }
        refs.push(name.to_string());
        let mut node = self.node(def, &format!("/$defs/{}", escape(name)), place, refs)?;
        refs.pop();
        self.annotations(schema, pointer, &mut node)?;
        Ok(node)
    }

    fn annotations(
        &self,
        schema: &Map<String, Value>,
        pointer: &str,
        node: &mut Node,
    ) -> Result<(), ContractError> {
        if let Some(d) = schema.get("description") {
            node.description = Some(
                self.string(d, &format!("{pointer}/description"))?
                    .to_string(),
            );
        }
        if let Some(code) = schema.get("x-error-code") {
            let at = format!("{pointer}/x-error-code");
            let code = self.string(code, &at)?;
            if !is_identifier(code) {
                return Err(self.error(
                    &at,
                    format!("{code:?} is not a code of a-z, 0-9 and _ starting with a letter"),
                ));
            }
            node.error_code = Some(code.to_string());
        }
        Ok(())
    }

    fn types(
        &self,
        schema: &Map<String, Value>,
        pointer: &str,
        node: &mut Node,
    ) -> Result<(), ContractError> {
        let Some(ty) = schema.get("type") else {
            return Ok(());
        };
        let at = format!("{pointer}/type");
        let names: Vec<&Value> = match ty {
            Value::Array(names) => names.iter().collect(),
            one => vec![one],
        };
        let mut types = Vec::new();
        for name in names {
            let parsed = name
                .as_str()
                .and_then(JsonType::parse)
                .ok_or_else(|| self.error(&at, format!("{name} is not a JSON Schema type")))?;
            if types.contains(&parsed) {
                return Err(self.error(&at, format!("{name} is listed twice")));
            }
            types.push(parsed);
        }
        node.nullable = types.len() > 1 && types.contains(&JsonType::Null);
        let others: Vec<JsonType> = types
            .iter()
            .copied()
            .filter(|t| *t != JsonType::Null || types.len() == 1)
            .collect();
        match others.as_slice() {
            [one] => node.ty = Some(*one),
            _ => {
                return Err(self.error(
                    &at,
                    format!(
                        "{ty} has no single column type: give one type, optionally with \"null\""
                    ),
                ))
            }
        }
        Ok(())
    }

    /// JSON Schema ignores a keyword of another type (`minLength` on an
    /// integer); in a contract that is a mistake, so it is refused. Subschemas
    /// without a `type` (in `if`/`then`/`else`) may use any keyword.
    fn keywords_fit_type(
        &self,
        schema: &Map<String, Value>,
        pointer: &str,
        ty: Option<JsonType>,
    ) -> Result<(), ContractError> {
        let Some(ty) = ty else {
            return Ok(());
        };
        for keyword in schema.keys() {
            let (kind, types): (&str, &[JsonType]) = match keyword.as_str() {
                "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" | "multipleOf" => {
                    ("numbers", &[JsonType::Integer, JsonType::Number])
                }
                "minLength" | "maxLength" | "pattern" | "format" => {
                    ("strings", &[JsonType::String])
                }
                "properties" | "required" | "additionalProperties" | "dependentRequired" => {
                    ("objects", &[JsonType::Object])
                }
                "items" | "minItems" | "maxItems" => ("arrays", &[JsonType::Array]),
                _ => continue,
            };
            if !types.contains(&ty) {
                return Err(self.error(
                    &format!("{pointer}/{keyword}"),
                    format!(
                        "{keyword:?} applies to {kind}, not to {}",
                        format!("{ty:?}").to_lowercase()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `enum` and `const`: every value must be of the subschema's type.
    fn values(
        &self,
        schema: &Map<String, Value>,
        pointer: &str,
        node: &mut Node,
    ) -> Result<(), ContractError> {
        let admitted = |value: &Value| {
            node.ty.is_none_or(|t| t.admits(value)) || (node.nullable && value.is_null())
        };
        if let Some(values) = schema.get("enum") {
            let at = format!("{pointer}/enum");
            let values = values
                .as_array()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| self.error(&at, "\"enum\" must be a non-empty array".into()))?;
            if let Some(bad) = values.iter().find(|v| !admitted(v)) {
                return Err(self.error(&at, format!("{bad} is not of the subschema's type")));
            }
            node.enum_values = Some(values.clone());
        }
        if let Some(value) = schema.get("const") {
            if !admitted(value) {
                return Err(self.error(
                    &format!("{pointer}/const"),
                    format!("{value} is not of the subschema's type"),
                ));
            }
            node.const_value = Some(value.clone());
        }
        Ok(())
    }

    fn numbers(
        &self,
        schema: &Map<String, Value>,
        pointer: &str,
        node: &mut Node,
    ) -> Result<(), ContractError> {
        let bound = |keyword: &str| -> Result<Option<f64>, ContractError> {
            let Some(value) = schema.get(keyword) else {
                return Ok(None);
            };
            value.as_f64().map(Some).ok_or_else(|| {
                let at = format!("{pointer}/{keyword}");
                self.error(&at, format!("{keyword:?} must be a number, not {value}"))
            })
        };
        node.minimum = bound("minimum")?;
        node.maximum = bound("maximum")?;
        node.exclusive_minimum = bound("exclusiveMinimum")?;
        node.exclusive_maximum = bound("exclusiveMaximum")?;
        node.multiple_of = bound("multipleOf")?;
        if node.multiple_of.is_some_and(|m| m <= 0.0) {
            return Err(self.error(
                &format!("{pointer}/multipleOf"),
                "\"multipleOf\" must be > 0".into(),
            ));
        }
        Ok(())
    }

    fn strings(
        &self,
        schema: &Map<String, Value>,
        pointer: &str,
        node: &mut Node,
    ) -> Result<(), ContractError> {
        if let Some(n) = schema.get("minLength") {
            node.min_length = Some(self.count(n, &format!("{pointer}/minLength"))?);
        }
        if let Some(n) = schema.get("maxLength") {
            node.max_length = Some(self.count(n, &format!("{pointer}/maxLength"))?);
        }
        if let Some(pattern) = schema.get("pattern") {
            let at = format!("{pointer}/pattern");
            let pattern = self.string(pattern, &at)?;
            node.pattern = Some(regex::Regex::new(&ecma_classes(pattern)).map_err(|e| {
                self.error(
                    &at,
                    format!(
                        "pattern {pattern:?} does not compile: {}",
                        crate::error::one_line(&e.to_string())
                    ),
                )
            })?);
        }
        if let Some(name) = schema.get("format") {
            let at = format!("{pointer}/format");
            let name = self.string(name, &at)?;
            node.format = Some(Format::parse(name).ok_or_else(|| {
                self.error(&at, format!("format {name:?} is not supported (uuid, date-time, date, email, ipv4, ipv6, uri)"))
            })?);
        }
        Ok(())
    }

    fn objects(
        &self,
        schema: &Map<String, Value>,
        pointer: &str,
        place: Place,
        node: &mut Node,
        refs: &mut Vec<String>,
    ) -> Result<(), ContractError> {
        let member_place = if place == Place::Constraint {
            Place::Constraint
        } else {
            Place::Column
        };
        if let Some(properties) = schema.get("properties") {
            let at = format!("{pointer}/properties");
            let properties = properties
                .as_object()
                .ok_or_else(|| self.error(&at, "\"properties\" must be an object".into()))?;
            let written = self.order.get(&at);
            let mut names: Vec<&String> = properties.keys().collect();
            names.sort_by_key(|n| written.and_then(|w| w.iter().position(|k| k == *n)));
            for name in names {
                let at = format!("{at}/{}", escape(name));
                let child = self.node(&properties[name], &at, member_place, refs)?;
                node.properties.push((name.clone(), child));
            }
        }
        if let Some(required) = schema.get("required") {
            node.required = self.names(required, &format!("{pointer}/required"))?;
        }
        if let Some(additional) = schema.get("additionalProperties") {
            node.additional_properties = additional.as_bool().ok_or_else(|| {
                self.error(
                    &format!("{pointer}/additionalProperties"),
                    "only true or false is supported for \"additionalProperties\"".into(),
                )
            })?;
        }
        if let Some(dependent) = schema.get("dependentRequired") {
            let at = format!("{pointer}/dependentRequired");
            let dependent = dependent
                .as_object()
                .ok_or_else(|| self.error(&at, "\"dependentRequired\" must be an object".into()))?;
            for (name, needs) in dependent {
                let needs = self.names(needs, &format!("{at}/{}", escape(name)))?;
                node.dependent_required.push((name.clone(), needs));
            }
        }
        if place != Place::Constraint && node.ty == Some(JsonType::Object) {
            if let Some(missing) = node
                .required
                .iter()
                .find(|r| !node.properties.iter().any(|(n, _)| n == *r))
            {
                return Err(self.error(
                    &format!("{pointer}/required"),
                    format!(
                        "{missing:?} is required but not among the properties, so it has no column"
                    ),
                ));
            }
            if node.additional_properties && node.properties.iter().any(|(n, _)| n == EXTRA) {
                return Err(self.error(
                    &format!("{pointer}/properties/{EXTRA}"),
                    format!("{EXTRA:?} holds the unknown members: rename the property or set \"additionalProperties\": false"),
                ));
            }
        }
        Ok(())
    }

    fn arrays(
        &self,
        schema: &Map<String, Value>,
        pointer: &str,
        node: &mut Node,
        refs: &mut Vec<String>,
    ) -> Result<(), ContractError> {
        if let Some(items) = schema.get("items") {
            let place = if node.ty.is_none() {
                Place::Constraint
            } else {
                Place::Column
            };
            node.items = Some(Box::new(self.node(
                items,
                &format!("{pointer}/items"),
                place,
                refs,
            )?));
        } else if node.ty == Some(JsonType::Array) {
            return Err(self.error(
                pointer,
                "an array column needs \"items\" (its element type)".into(),
            ));
        }
        if let Some(n) = schema.get("minItems") {
            node.min_items = Some(self.count(n, &format!("{pointer}/minItems"))?);
        }
        if let Some(n) = schema.get("maxItems") {
            node.max_items = Some(self.count(n, &format!("{pointer}/maxItems"))?);
        }
        Ok(())
    }

    fn conditional(
        &self,
        schema: &Map<String, Value>,
        pointer: &str,
        node: &mut Node,
        refs: &mut Vec<String>,
    ) -> Result<(), ContractError> {
        let branch =
            |keyword: &str, refs: &mut Vec<String>| -> Result<Option<Node>, ContractError> {
                schema
                    .get(keyword)
                    .map(|s| self.node(s, &format!("{pointer}/{keyword}"), Place::Constraint, refs))
                    .transpose()
            };
        let condition = branch("if", refs)?;
        let then = branch("then", refs)?;
        let otherwise = branch("else", refs)?;
        match condition {
            Some(condition) => {
                node.conditional = Some(Box::new(Conditional {
                    condition,
                    then,
                    otherwise,
                }))
            }
            None if then.is_some() || otherwise.is_some() => {
                let keyword = if then.is_some() { "then" } else { "else" };
                return Err(self.error(
                    &format!("{pointer}/{keyword}"),
                    format!("\"{keyword}\" without \"if\""),
                ));
            }
            None => {}
        }
        Ok(())
    }

    /// The `"x-lakehouse"` object, checked against the compiled root.
    fn table(&self, extension: Option<&Value>, root: &Node) -> Result<Table, ContractError> {
        let at = "/x-lakehouse";
        let Some(extension) = extension else {
            return Err(self.error(
                "",
                "\"x-lakehouse\" is missing (it names the table and its event_time)".into(),
            ));
        };
        let extension = extension
            .as_object()
            .ok_or_else(|| self.error(at, "\"x-lakehouse\" must be an object".into()))?;
        const KEYS: &[&str] = &[
            "table",
            "topic",
            "event_time",
            "key",
            "version",
            "raw_prefix",
        ];
        if let Some(unknown) = extension.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(self.error(
                &format!("{at}/{}", escape(unknown)),
                format!(
                    "{unknown:?} is not a setting of x-lakehouse ({})",
                    KEYS.join(", ")
                ),
            ));
        }
        let text = |key: &str| -> Result<Option<String>, ContractError> {
            extension
                .get(key)
                .map(|v| self.string(v, &format!("{at}/{key}")).map(str::to_string))
                .transpose()
        };
        let table = text("table")?.ok_or_else(|| self.error(at, "\"table\" is missing".into()))?;
        if !is_identifier(&table) {
            return Err(self.error(
                &format!("{at}/table"),
                format!("{table:?} is not a table name of a-z, 0-9 and _ starting with a letter"),
            ));
        }
        let topic = text("topic")?.unwrap_or_else(|| table.clone());
        let event_time = text("event_time")?
            .ok_or_else(|| self.error(at, "\"event_time\" is missing".into()))?;
        let field = root
            .properties
            .iter()
            .find(|(n, _)| *n == event_time)
            .map(|(_, f)| f);
        let is_timestamp = field
            .is_some_and(|f| f.ty == Some(JsonType::String) && f.format == Some(Format::DateTime));
        if !is_timestamp
            || !root.required.contains(&event_time)
            || field.is_some_and(|f| f.nullable)
        {
            return Err(self.error(
                &format!("{at}/event_time"),
                format!("{event_time:?} must be a required, non-null top-level property of \"type\": \"string\", \"format\": \"date-time\""),
            ));
        }
        let key = text("key")?;
        if let Some(key) = &key {
            if !root.properties.iter().any(|(n, _)| n == key) {
                return Err(self.error(
                    &format!("{at}/key"),
                    format!("{key:?} is not a top-level property"),
                ));
            }
        }
        let version = match extension.get("version") {
            None => 1,
            Some(v) => v
                .as_u64()
                .filter(|v| (1..=u64::from(u32::MAX)).contains(v))
                .map(|v| v as u32)
                .ok_or_else(|| {
                    self.error(
                        &format!("{at}/version"),
                        format!("the version must be a whole number >= 1, not {v}"),
                    )
                })?,
        };
        let raw_prefix =
            text("raw_prefix")?.unwrap_or_else(|| crate::layout::default_raw_prefix(&table));
        let raw_prefix = format!("{}/", raw_prefix.trim_matches('/'));
        Ok(Table {
            table,
            topic,
            event_time,
            key,
            version,
            raw_prefix,
        })
    }

    fn string<'v>(&self, value: &'v Value, pointer: &str) -> Result<&'v str, ContractError> {
        value
            .as_str()
            .ok_or_else(|| self.error(pointer, format!("must be a string, not {value}")))
    }

    fn count(&self, value: &Value, pointer: &str) -> Result<u64, ContractError> {
        value
            .as_u64()
            .ok_or_else(|| self.error(pointer, format!("must be a whole number >= 0, not {value}")))
    }

    fn names(&self, value: &Value, pointer: &str) -> Result<Vec<String>, ContractError> {
        let array = value
            .as_array()
            .ok_or_else(|| self.error(pointer, "must be an array of field names".into()))?;
        array
            .iter()
            .map(|v| self.string(v, pointer).map(str::to_string))
            .collect()
    }
}

/// A JSON document with its object members in the order written:
/// `serde_json::Value` sorts them, and a table's columns follow the order of
/// its `properties`.
enum Ordered {
    Object(Vec<(String, Ordered)>),
    Array(Vec<Ordered>),
    Scalar,
}

impl Ordered {
    /// Every object's member names, by the object's JSON pointer.
    fn key_orders(&self, pointer: String, out: &mut BTreeMap<String, Vec<String>>) {
        match self {
            Ordered::Object(members) => {
                for (key, value) in members {
                    value.key_orders(format!("{pointer}/{}", escape(key)), out);
                }
                out.insert(pointer, members.iter().map(|(k, _)| k.clone()).collect());
            }
            Ordered::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    item.key_orders(format!("{pointer}/{i}"), out);
                }
            }
            Ordered::Scalar => {}
        }
    }
}

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OrderedVisitor)
    }
}

struct OrderedVisitor;

impl<'de> serde::de::Visitor<'de> for OrderedVisitor {
    type Value = Ordered;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Ordered, E> {
        Ok(Ordered::Scalar)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Ordered, E> {
        Ok(Ordered::Scalar)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Ordered, E> {
        Ok(Ordered::Scalar)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Ordered, E> {
        Ok(Ordered::Scalar)
    }

    fn visit_str<E>(self, _: &str) -> Result<Ordered, E> {
        Ok(Ordered::Scalar)
    }

    fn visit_unit<E>(self) -> Result<Ordered, E> {
        Ok(Ordered::Scalar)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Ordered::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
        let mut members = Vec::new();
        while let Some(member) = map.next_entry::<String, Ordered>()? {
            members.push(member);
        }
        Ok(Ordered::Object(members))
    }
}

/// The column of unknown members of an object, as JSON object text.
pub const EXTRA: &str = "extra";

fn object_fields(node: &Node) -> Vec<Field> {
    let mut fields: Vec<Field> = node
        .properties
        .iter()
        .map(|(name, child)| {
            // A `"type": "null"` column holds only nulls, required or not.
            let nullable = child.nullable
                || !node.required.contains(name)
                || matches!(child.ty, Some(JsonType::Null) | None);
            let field = Field::new(name, column_type(child), nullable);
            match &child.description {
                Some(d) => field.with_metadata([("description".to_string(), d.clone())].into()),
                None => field,
            }
        })
        .collect();
    if node.additional_properties {
        fields.push(Field::new(EXTRA, DataType::Utf8, true));
    }
    fields
}

/// The Arrow type of a column subschema (one with a `type`).
fn column_type(node: &Node) -> DataType {
    match (node.ty, node.format) {
        (Some(JsonType::String), Some(Format::DateTime)) => {
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        }
        (Some(JsonType::String), Some(Format::Date)) => DataType::Date32,
        (Some(JsonType::String), _) => DataType::Utf8,
        (Some(JsonType::Integer), _) => DataType::Int64,
        (Some(JsonType::Number), _) => DataType::Float64,
        (Some(JsonType::Boolean), _) => DataType::Boolean,
        (Some(JsonType::Object), _) => DataType::Struct(Fields::from(object_fields(node))),
        (Some(JsonType::Array), _) => {
            let items = node
                .items
                .as_deref()
                .map(column_type)
                .unwrap_or(DataType::Null);
            DataType::List(Arc::new(Field::new("item", items, true)))
        }
        // Only absent or null: a column that is always null.
        (Some(JsonType::Null), _) | (None, _) => DataType::Null,
    }
}

/// `pattern` with the classes JSON Schema's ECMA 262 regular expressions
/// define over ASCII (`\d`, `\w`, `\b` and their negations) spelled so, since
/// Rust's `regex` makes them Unicode-aware (`\d` would match `٣`).
fn ecma_classes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(next) = chars.next() else {
                    out.push(c);
                    break;
                };
                let ascii = match (next, in_class) {
                    ('d', false) => "[0-9]",
                    ('d', true) => "0-9",
                    ('D', _) => "[^0-9]",
                    ('w', false) => "[0-9A-Za-z_]",
                    ('w', true) => "0-9A-Za-z_",
                    ('W', _) => "[^0-9A-Za-z_]",
                    ('b', false) => "(?-u:\\b)",
                    ('B', false) => "(?-u:\\B)",
                    _ => {
                        out.push(c);
                        out.push(next);
                        continue;
                    }
                };
                out.push_str(ascii);
            }
            '[' => {
                in_class = true;
                out.push(c);
            }
            ']' => {
                in_class = false;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// `~` and `/` escaped as a JSON pointer token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn events() -> Contract {
        Contract::events()
    }

    /// A minimal valid contract with `properties` added to an `at` timestamp.
    fn contract(properties: Value) -> Value {
        let mut all = json!({"at": {"type": "string", "format": "date-time"}});
        all.as_object_mut()
            .expect("object")
            .extend(properties.as_object().expect("object").clone());
        json!({
            "x-lakehouse": {"table": "t", "event_time": "at"},
            "type": "object",
            "properties": all,
            "required": ["at"],
        })
    }

    fn compile(file: &str, schema: &Value) -> Result<Contract, ContractError> {
        Contract::parse(file, schema.to_string().as_bytes())
    }

    fn refused(schema: Value) -> String {
        compile("t.schema.json", &schema)
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn the_events_contract_has_the_columns_of_todays_bronze_table() {
        let events = events();
        let columns: Vec<(String, DataType, bool)> = events
            .columns()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone(), f.is_nullable()))
            .collect();
        // The bronze columns of the lake before contracts, as they were written.
        let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let today: Vec<(String, DataType, bool)> = [
            ("event_id", DataType::Utf8, false),
            ("user_id", DataType::Int64, false),
            ("event_type", DataType::Utf8, false),
            ("event_ts", ts, false),
            ("page", DataType::Utf8, false),
            ("country", DataType::Utf8, true),
            ("amount", DataType::Float64, true),
            ("extra", DataType::Utf8, true),
        ]
        .into_iter()
        .map(|(n, t, null)| (n.to_string(), t, null))
        .collect();
        assert_eq!(columns, today);
        let bronze = crate::schema::bronze(&events);
        assert_eq!(
            bronze.field(columns.len()).name(),
            "source_kind",
            "lineage follows"
        );
        assert_eq!(
            events.table,
            Table {
                table: "events".into(),
                topic: "events".into(),
                event_time: "event_ts".into(),
                key: Some("event_id".into()),
                version: 1,
                raw_prefix: "raw/events/".into(),
            }
        );
        let country = &events
            .root
            .properties
            .iter()
            .find(|(n, _)| n == "country")
            .expect("country")
            .1;
        // Every assigned code, and null (the same as absent).
        let codes: Vec<Value> = crate::event::COUNTRY_CODES
            .split_whitespace()
            .map(|c| json!(c))
            .chain([Value::Null])
            .collect();
        assert_eq!(country.enum_values.as_ref(), Some(&codes));
        assert_eq!(country.error_code.as_deref(), Some("bad_country"));
        let rule = events.root.conditional.as_ref().expect("purchase rule");
        assert_eq!(
            rule.then.as_ref().map(|t| t.required.clone()),
            Some(vec!["amount".to_string()])
        );
    }

    #[test]
    fn only_changes_to_the_tables_shape_need_a_new_version() {
        let base = contract(json!({
            "n": {"type": "integer"},
            "kind": {"type": "string", "enum": ["a", "b"]},
            "box": {"type": "object", "properties": {"w": {"type": "number"}}}
        }));
        let compiled =
            |v: &Value| Contract::parse("c.json", v.to_string().as_bytes()).expect("compiles");
        let edit = |f: &dyn Fn(&mut Value)| {
            let mut v = base.clone();
            f(&mut v);
            incompatible_change(&compiled(&base), &compiled(&v))
        };
        // Compatible: a new optional field, a wider enum, a tighter bound.
        assert_eq!(
            edit(&|v| v["properties"]["x"] = json!({"type": "string"})),
            None
        );
        assert_eq!(
            edit(&|v| v["properties"]["kind"]["enum"] = json!(["a", "b", "c"])),
            None
        );
        assert_eq!(edit(&|v| v["properties"]["n"]["minimum"] = json!(3)), None);
        // Incompatible, each named.
        assert_eq!(
            edit(&|v| v["properties"]["n"] = json!({"type": "string"})).as_deref(),
            Some("field `n` changed from integer to string")
        );
        assert_eq!(
            edit(&|v| v["properties"]["box"]["properties"]["w"] = json!({"type": "boolean"}))
                .as_deref(),
            Some("field `box.w` changed from number to boolean")
        );
        assert_eq!(
            edit(&|v| {
                v["properties"]
                    .as_object_mut()
                    .expect("object")
                    .remove("kind");
            })
            .as_deref(),
            Some("field `kind` was removed")
        );
        assert_eq!(
            edit(&|v| v["required"] = json!(["at", "n"])).as_deref(),
            Some("field `n` is now required")
        );
        assert_eq!(
            edit(&|v| {
                v["properties"]["y"] = json!({"type": "string"});
                v["required"] = json!(["at", "y"]);
            })
            .as_deref(),
            Some("field `y` is new and required")
        );
    }

    #[test]
    fn pattern_classes_are_ascii_as_in_json_schema() {
        assert_eq!(
            ecma_classes(r"^\d{2}[\w-]+\\d\b$"),
            r"^[0-9]{2}[0-9A-Za-z_-]+\\d(?-u:\b)$"
        );
        let re = regex::Regex::new(&ecma_classes(r"^\d+$")).expect("compiles");
        assert!(re.is_match("42") && !re.is_match("٣"));
    }

    #[test]
    fn nested_objects_and_arrays_become_structs_and_lists() {
        let missing_def =
            contract(json!({"items": {"type": "array", "items": {"$ref": "#/$defs/item"}}}));
        assert!(refused(missing_def).contains("is not defined"));
        // As written, not as serde_json would sort it: columns keep this order.
        let written = br##"{
            "x-lakehouse": {"table": "orders", "event_time": "order_ts"},
            "type": "object",
            "properties": {
                "order_ts": {"type": "string", "format": "date-time"},
                "note": {"type": ["string", "null"], "maxLength": 200},
                "items": {"type": "array", "minItems": 1, "description": "the order lines", "items": {"$ref": "#/$defs/item"}},
                "day": {"type": "string", "format": "date"}
            },
            "required": ["order_ts", "items"],
            "$defs": {"item": {
                "type": "object",
                "additionalProperties": false,
                "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}},
                "required": ["sku", "qty"]
            }}
        }"##;
        let orders = Contract::parse("orders.schema.json", written).expect("compiles");
        let columns = orders.columns();
        let names: Vec<&str> = columns.iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["order_ts", "note", "items", "day", "extra"]);
        assert!(columns[1].is_nullable() && !columns[2].is_nullable());
        let item = Field::new(
            "item",
            DataType::Struct(Fields::from(vec![
                Field::new("sku", DataType::Utf8, false),
                Field::new("qty", DataType::Int64, false),
            ])),
            true,
        );
        assert_eq!(columns[2].data_type(), &DataType::List(Arc::new(item)));
        assert_eq!(
            columns[2].metadata().get("description").map(String::as_str),
            Some("the order lines")
        );
        assert_eq!(columns[3].data_type(), &DataType::Date32);
        assert_eq!(orders.table.raw_prefix, "raw/orders/");
        assert_eq!(orders.table.topic, "orders");
    }

    #[test]
    fn unsupported_keywords_are_refused_naming_file_pointer_and_keyword() {
        assert_eq!(
            refused(contract(json!({"a": {"type": "string", "oneOf": []}}))),
            "contract t.schema.json: at /properties/a/oneOf: keyword \"oneOf\" is not supported"
        );
        let mut schema = contract(json!({}));
        schema["patternProperties"] = json!({});
        assert!(refused(schema).contains("at /patternProperties: keyword \"patternProperties\""));
        assert!(refused(contract(
            json!({"a/b": {"type": "string", "unevaluatedItems": 1}})
        ))
        .contains("at /properties/a~1b/unevaluatedItems"));
    }

    #[test]
    fn bad_contracts_are_one_line_errors() {
        let cases: Vec<(Value, &str)> = vec![
            (json!([1]), "not a JSON Schema object"),
            (
                json!({"type": "array", "items": {"type": "string"}, "x-lakehouse": {"table": "t", "event_time": "at"}}),
                "must be \"type\": \"object\"",
            ),
            (
                contract(json!({"a": {"$ref": "#/$defs/nope"}})),
                "at /properties/a/$ref: \"#/$defs/nope\" is not defined",
            ),
            (
                contract(json!({"a": {"$ref": "other.json#/x"}})),
                "only local references",
            ),
            (
                contract(json!({"a": {"type": "integer", "minLength": 1}})),
                "at /properties/a/minLength: \"minLength\" applies to strings",
            ),
            (
                contract(json!({"a": {"type": "string", "pattern": "(unclosed"}})),
                "does not compile",
            ),
            (
                contract(json!({"a": {"type": ["string", "integer"]}})),
                "no single column type",
            ),
            (
                contract(json!({"a": {"type": "string", "format": "hostname"}})),
                "format \"hostname\" is not supported",
            ),
            (
                contract(json!({"a": {"type": "string", "enum": ["x", 1]}})),
                "1 is not of the subschema's type",
            ),
            (
                contract(json!({"a": {"enum": ["x"]}})),
                "at /properties/a: a column needs a \"type\"",
            ),
            (contract(json!({"a": {"type": "array"}})), "needs \"items\""),
            (
                contract(json!({"extra": {"type": "string"}})),
                "holds the unknown members",
            ),
        ];
        for (schema, expected) in cases {
            let line = refused(schema.clone());
            assert!(line.contains(expected), "{schema}: {line}");
            assert!(
                line.starts_with("contract t.schema.json: ") && !line.contains('\n'),
                "{line}"
            );
        }
        let mut cyclic = contract(json!({"a": {"$ref": "#/$defs/node"}}));
        cyclic["$defs"] =
            json!({"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}}});
        assert!(refused(cyclic).contains("refers to itself"));
    }

    #[test]
    fn the_extension_is_checked_against_the_schema() {
        let with = |extension: Value| {
            let mut schema = contract(
                json!({"n": {"type": "integer"}, "day": {"type": "string", "format": "date"}}),
            );
            schema["x-lakehouse"] = extension;
            refused(schema)
        };
        assert!(
            with(json!({"table": "t", "event_time": "day"})).contains("at /x-lakehouse/event_time")
        );
        assert!(
            with(json!({"table": "t", "event_time": "n"})).contains("\"format\": \"date-time\"")
        );
        assert!(
            with(json!({"table": "t", "event_time": "at", "key": "missing"}))
                .contains("at /x-lakehouse/key")
        );
        assert!(with(json!({"table": "T", "event_time": "at"})).contains("not a table name"));
        assert!(
            with(json!({"table": "t", "event_time": "at", "partition": "x"}))
                .contains("\"partition\" is not a setting")
        );
        assert!(with(json!({"table": "t", "event_time": "at", "version": 0})).contains("version"));
        let mut schema = contract(json!({}));
        schema
            .as_object_mut()
            .expect("object")
            .remove("x-lakehouse");
        assert!(refused(schema).contains("\"x-lakehouse\" is missing"));
    }

    #[test]
    fn files_that_are_not_json_and_tables_that_collide() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("broken.schema.json");
        std::fs::write(&path, b"{\"type\": ").expect("write");
        let err = Contract::load(&path).expect_err("not JSON").to_string();
        assert!(
            err.contains("broken.schema.json") && err.contains("not JSON"),
            "{err}"
        );

        let a = compile("a.json", &contract(json!({}))).expect("a");
        let mut other = contract(json!({}));
        other["x-lakehouse"] = json!({"table": "u", "topic": "t", "event_time": "at"});
        let b = compile("b.json", &other).expect("b");
        let err = check_tables(&[a.clone(), b])
            .expect_err("one topic, two tables")
            .to_string();
        assert_eq!(
            err,
            "contract b.json: at /x-lakehouse/topic: topic \"t\" is also read for a.json"
        );
        let err = check_tables(&[a.clone(), a.clone()])
            .expect_err("one table twice")
            .to_string();
        assert!(
            err.contains("table \"t\" is also defined by a.json"),
            "{err}"
        );
        check_tables(&[a, events()]).expect("distinct tables");
    }
}

#[cfg(test)]
mod shipped {
    use super::*;

    fn load(name: &str) -> Contract {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../contracts/{name}.schema.json"));
        Contract::load(&path).unwrap_or_else(|e| panic!("{e}"))
    }

    fn column_names(contract: &Contract) -> Vec<String> {
        contract
            .columns()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    #[test]
    fn every_shipped_contract_compiles_and_they_ingest_together() {
        let all: Vec<Contract> = ["events", "clicks", "orders", "sensor_readings"]
            .map(load)
            .into();
        check_tables(&all).expect("distinct tables, topics and prefixes");
        assert_eq!(
            column_names(&all[1]),
            ["event_id", "user_id", "page", "country", "event_ts", "extra"]
        );
        let orders = &all[2];
        assert_eq!(
            column_names(orders),
            [
                "order_id",
                "customer_id",
                "order_ts",
                "status",
                "currency",
                "items",
                "total",
                "coupon",
                "paid_at"
            ],
            "additionalProperties false: no extra column"
        );
        let DataType::List(item) = orders.columns()[5].data_type().clone() else {
            panic!("items is a list");
        };
        let DataType::Struct(members) = item.data_type() else {
            panic!("of structs");
        };
        let members: Vec<&str> = members.iter().map(|f| f.name().as_str()).collect();
        assert_eq!(members, ["sku", "category", "qty", "unit_price"]);
        let sensors = &all[3];
        assert_eq!(sensors.table.topic, "sensors");
        assert_eq!(sensors.table.raw_prefix, "raw/sensor_readings/");
        let battery = &sensors.columns()[5];
        assert_eq!(
            (
                battery.name().as_str(),
                battery.data_type(),
                battery.is_nullable()
            ),
            ("battery_pct", &DataType::Int64, true)
        );
    }
}
