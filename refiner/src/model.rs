//! Models: SQL files under `models/silver/` and `models/gold/`, each with a
//! header of `-- key: value` lines that says how its table is kept up to
//! date (docs/DESIGN.md §13). A model reads other tables by their qualified
//! names (`bronze.events`, `silver.events`, ...); those names are its
//! inputs, and they order the models. Every contract gets a silver model by
//! default (deduplicated on its key), which a file of the same name replaces.
//!
//! Everything here is checked without DuckDB; the SQL itself is checked
//! when the refiner starts ([`crate::refine`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

pub use lakedb::views::Layer;

/// A table by layer and name: `silver.events`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableRef {
    pub layer: Layer,
    pub name: String,
}

impl TableRef {
    pub fn new(layer: Layer, name: &str) -> TableRef {
        TableRef {
            layer,
            name: name.to_string(),
        }
    }

    /// The table's root, relative to the lake root: `silver/events`.
    pub fn prefix(&self) -> String {
        self.layer.prefix(&self.name)
    }
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.layer.view(&self.name))
    }
}

/// How a model's table is kept up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Materialized {
    /// Only the time buckets that new input touches are recomputed.
    Incremental,
    /// The whole table is recomputed whenever an input changes.
    Table,
}

/// A model's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub materialized: Materialized,
    /// Keep one row per key: the first by `time_column`, then by source
    /// position (the lineage columns the output has).
    pub unique_key: Option<String>,
    /// The output column whose buckets are recomputed, and whose UTC date
    /// partitions the table.
    pub time_column: String,
    /// Bucket width in seconds; divides a day.
    pub bucket_seconds: u64,
    /// How far behind the newest bucket a late row may land and still be
    /// applied, in seconds.
    pub lookback_seconds: u64,
}

/// A model, ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    /// The table it writes: `silver.events`, `gold.events_per_minute`.
    pub output: TableRef,
    /// Where it came from: a file, or `default silver model of contract <table>`.
    pub origin: String,
    pub header: Header,
    /// The SQL: one SELECT, without the header.
    pub sql: String,
    /// The tables it reads, found by name in the SQL.
    pub inputs: BTreeSet<TableRef>,
}

/// A model that cannot run: one line naming the file and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelError {
    pub origin: String,
    pub message: String,
    /// Not an error in the model: an input table does not exist yet, and
    /// the model runs once it does.
    pub waiting: bool,
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "model {}: {}", self.origin, self.message)
    }
}

/// The lineage columns that order copies of a key after the time column:
/// the source position, so the first copy ingested wins a tie.
pub const POSITION_COLUMNS: &[&str] = &[
    "source_topic",
    "source_partition",
    "source_offset",
    "source_key",
    "record_index",
];

/// Silver defaults: hourly buckets, a day of lookback for duplicates and
/// late events.
const DEFAULT_SILVER_BUCKET: u64 = 3600;
const DEFAULT_SILVER_LOOKBACK: u64 = 24 * 3600;

/// What a contract gives its default silver model.
#[derive(Debug, Clone)]
pub struct ContractInfo {
    pub table: String,
    pub event_time: String,
    pub key: Option<String>,
}

/// Reads every `*.sql` under `dir/silver` and `dir/gold`, adds the default
/// silver model of each contract without a file, and orders them so every
/// model runs after the models it reads. A model with an error, or one that
/// reads a model with an error, is left out and reported; the others run.
pub fn load(dir: &Path, contracts: &[ContractInfo]) -> (Vec<Model>, Vec<ModelError>) {
    let mut models = BTreeMap::new();
    let mut errors = Vec::new();
    for layer in [Layer::Silver, Layer::Gold] {
        let folder = dir.join(layer.schema());
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&folder) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "sql"))
                .collect(),
            Err(_) => Vec::new(),
        };
        files.sort();
        for file in files {
            let origin = file.display().to_string();
            let parsed = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read it: {e}"))
                .and_then(|text| {
                    let name = file
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .ok_or_else(|| "the file name is not UTF-8".to_string())?;
                    parse(TableRef::new(layer, name), &origin, &text)
                });
            match parsed {
                Ok(model) => {
                    models.insert(model.output.clone(), model);
                }
                Err(message) => errors.push(ModelError {
                    origin,
                    message,
                    waiting: false,
                }),
            }
        }
    }
    for contract in contracts {
        let output = TableRef::new(Layer::Silver, &contract.table);
        if models.contains_key(&output) || errors.iter().any(|e| e.origin_is(&output, dir)) {
            continue;
        }
        models.insert(output.clone(), default_silver(contract));
    }
    let (ordered, mut more) = order(models);
    errors.append(&mut more);
    (ordered, errors)
}

impl ModelError {
    fn origin_is(&self, table: &TableRef, dir: &Path) -> bool {
        Path::new(&self.origin)
            == dir
                .join(table.layer.schema())
                .join(format!("{}.sql", table.name))
    }
}

/// The silver model a contract gets unless a file replaces it: every bronze
/// row, one per key.
pub fn default_silver(contract: &ContractInfo) -> Model {
    Model {
        output: TableRef::new(Layer::Silver, &contract.table),
        origin: format!("default silver model of contract {}", contract.table),
        header: Header {
            materialized: Materialized::Incremental,
            unique_key: contract.key.clone(),
            time_column: contract.event_time.clone(),
            bucket_seconds: DEFAULT_SILVER_BUCKET,
            lookback_seconds: DEFAULT_SILVER_LOOKBACK,
        },
        sql: format!("SELECT * FROM bronze.{}", contract.table),
        inputs: BTreeSet::from([TableRef::new(Layer::Bronze, &contract.table)]),
    }
}

/// Parses one model file: the header lines (`-- key: value`, before the
/// first line that is not a comment), then the SQL.
pub fn parse(output: TableRef, origin: &str, text: &str) -> Result<Model, String> {
    if !is_identifier(&output.name) {
        return Err(format!(
            "`{}` is not a table name (lower case letters, digits and _, starting with a letter)",
            output.name
        ));
    }
    let mut fields = BTreeMap::new();
    let mut body = Vec::new();
    let mut in_header = true;
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if in_header {
            if let Some(comment) = trimmed.strip_prefix("--") {
                // The part after a second `--` or `(` is a remark.
                let comment = comment.split(" (").next().unwrap_or(comment);
                // `-- key: value` with a lower-case key is a field (so a
                // misspelt one is reported); other comments are prose.
                let field = comment
                    .split_once(':')
                    .filter(|(key, _)| is_identifier(key.trim()));
                if let Some((key, value)) = field {
                    let key = key.trim().to_string();
                    if fields
                        .insert(key.clone(), (number + 1, value.trim().to_string()))
                        .is_some()
                    {
                        return Err(format!("line {}: `{key}` is given twice", number + 1));
                    }
                }
                continue;
            }
            if trimmed.is_empty() {
                continue;
            }
            in_header = false;
        }
        body.push(line);
    }
    let sql = body
        .join("\n")
        .trim()
        .trim_end_matches(';')
        .trim()
        .to_string();
    if sql.is_empty() {
        return Err("no SQL after the header".into());
    }
    const KNOWN: [&str; 5] = [
        "materialized",
        "unique_key",
        "time_column",
        "bucket",
        "lookback",
    ];
    if let Some((key, (line, _))) = fields.iter().find(|(k, _)| !KNOWN.contains(&k.as_str())) {
        return Err(format!(
            "line {line}: unknown header field `{key}` (known: {})",
            KNOWN.join(", ")
        ));
    }
    let header = header(&mut fields)?;
    let inputs = inputs_of(&sql);
    if inputs.is_empty() {
        return Err("it reads no table (name its inputs as bronze.<t>, dead_letters.<t>, silver.<t> or gold.<t>)".into());
    }
    if inputs.contains(&output) {
        return Err(format!("it reads its own table {output}"));
    }
    Ok(Model {
        origin: origin.to_string(),
        output,
        header,
        sql,
        inputs,
    })
}

fn header(fields: &mut BTreeMap<String, (usize, String)>) -> Result<Header, String> {
    let mut take = |key: &str| fields.remove(key).map(|(_, v)| v);
    let materialized = match take("materialized").as_deref() {
        Some("incremental") => Materialized::Incremental,
        Some("table") => Materialized::Table,
        Some(other) => {
            return Err(format!(
                "header `materialized: {other}`: use incremental or table"
            ))
        }
        None => return Err("the header has no `materialized:` (incremental or table)".into()),
    };
    let unique_key = take("unique_key");
    let time_column = take("time_column").ok_or(
        "the header has no `time_column:` (the output column whose buckets are recomputed)",
    )?;
    if !is_identifier(&time_column) {
        return Err(format!(
            "header `time_column: {time_column}` is not a column name"
        ));
    }
    if let Some(key) = &unique_key {
        if !is_identifier(key) {
            return Err(format!("header `unique_key: {key}` is not a column name"));
        }
    }
    let bucket_seconds = match take("bucket") {
        Some(text) => duration(&text).map_err(|e| format!("header `bucket: {text}`: {e}"))?,
        None => return Err("the header has no `bucket:` (for example 1 minute)".into()),
    };
    if bucket_seconds == 0 || 86_400 % bucket_seconds != 0 {
        return Err(format!(
            "header `bucket`: {bucket_seconds} s does not divide a day (buckets must not straddle a date partition)"
        ));
    }
    let lookback_seconds = match take("lookback") {
        Some(text) => duration(&text).map_err(|e| format!("header `lookback: {text}`: {e}"))?,
        None => 0,
    };
    Ok(Header {
        materialized,
        unique_key,
        time_column,
        bucket_seconds,
        lookback_seconds,
    })
}

/// `1 minute`, `5 minutes`, `24 hours`, `1 day`, `30 seconds`, `90s`, `1h`.
pub fn duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| "not a duration such as `1 minute` or `24 hours`".to_string())?;
    let unit = match unit.trim() {
        "s" | "sec" | "second" | "seconds" => 1,
        "m" | "min" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        other => {
            return Err(format!(
                "unknown unit `{other}` (seconds, minutes, hours, days)"
            ))
        }
    };
    Ok(number * unit)
}

/// The qualified table names in `sql`: `layer.name` where layer is one of
/// the four and name an identifier, outside string literals and comments.
pub fn inputs_of(sql: &str) -> BTreeSet<TableRef> {
    let mut found = BTreeSet::new();
    for (start, word) in words(sql) {
        let Some((layer, name)) = word.split_once('.') else {
            continue;
        };
        let preceded_by_dot = sql[..start].ends_with('.');
        let layer = layer.to_ascii_lowercase();
        let known = Layer::ALL
            .iter()
            .chain(&Layer::MODELS)
            .find(|l| l.schema() == layer);
        if let (Some(layer), false) = (known, preceded_by_dot) {
            let name = name.to_ascii_lowercase();
            if is_identifier(&name) {
                found.insert(TableRef::new(*layer, &name));
            }
        }
    }
    found
}

/// `sql` with every reference to `from` replaced by `to` (a view name).
pub fn rename_input(sql: &str, from: &TableRef, to: &str) -> String {
    let wanted = from.to_string();
    let mut out = String::with_capacity(sql.len());
    let mut last = 0;
    for (start, word) in words(sql) {
        if word.eq_ignore_ascii_case(&wanted) && !sql[..start].ends_with('.') {
            out.push_str(&sql[last..start]);
            out.push_str(to);
            last = start + word.len();
        }
    }
    out.push_str(&sql[last..]);
    out
}

/// The dotted words of `sql` (identifier characters and dots) with their
/// byte offsets, skipping string literals, quoted identifiers and comments.
fn words(sql: &str) -> Vec<(usize, &str)> {
    let bytes = sql.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'\'' | b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != c {
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            c if c.is_ascii_alphanumeric() || c == b'_' => {
                let start = i;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.')
                {
                    i += 1;
                }
                words.push((start, sql[start..i].trim_end_matches('.')));
            }
            _ => i += 1,
        }
    }
    words
}

/// Lower case letters, digits and `_`, starting with a letter.
pub fn is_identifier(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The models in dependency order; models in a cycle, or reading a model
/// that is left out, are reported instead.
fn order(mut models: BTreeMap<TableRef, Model>) -> (Vec<Model>, Vec<ModelError>) {
    let mut ordered: Vec<Model> = Vec::new();
    let mut errors = Vec::new();
    loop {
        let done: BTreeSet<TableRef> = ordered.iter().map(|m| m.output.clone()).collect();
        let ready: Vec<TableRef> = models
            .values()
            .filter(|m| {
                m.inputs
                    .iter()
                    .filter(|i| matches!(i.layer, Layer::Silver | Layer::Gold))
                    .all(|i| done.contains(i) || !models.contains_key(i))
            })
            .map(|m| m.output.clone())
            .collect();
        if ready.is_empty() {
            break;
        }
        for name in ready {
            let model = models.remove(&name).expect("ready models are present");
            ordered.push(model);
        }
    }
    for model in models.values() {
        let waiting: Vec<String> = model
            .inputs
            .iter()
            .filter(|i| models.contains_key(i))
            .map(|i| i.to_string())
            .collect();
        errors.push(ModelError {
            origin: model.origin.clone(),
            message: format!(
                "a cycle between models: it reads {}, which read it back",
                waiting.join(", ")
            ),
            waiting: false,
        });
    }
    (ordered, errors)
}

#[cfg(test)]
mod tests;
