//! The SQL that defines the lake in DuckDB: the schemas `bronze`,
//! `dead_letters`, `silver` and `gold`, one view in each per table of the
//! lake, and the S3 secret httpfs needs. Pure text generation, so
//! `inspector init-sql` prints exactly what a session runs.
//!
//! Every table is a Delta table, and a view reads one snapshot of it, in one
//! of two forms with the same columns in the same order (the table's columns,
//! `event_date` last, and for dead letters `raw_text`; a silver or gold view
//! has the table's columns only, `event_date` last if the table has it):
//!
//! * [`Layer::delta_view`]: `delta_scan` of the table's URL, by DuckDB's
//!   `delta` extension, which reads the log itself;
//! * [`Layer::file_list_view`]: `read_parquet` of the exact files of the
//!   snapshot, as the inspector read them from the log.
//!
//! A table with no files in its snapshot, or no log yet, is a typed
//! placeholder with zero rows instead ([`Layer::empty_view`]), derived from
//! the table's Delta schema or the consumer's Arrow schema (one definition).
//! A snapshot that does not exist (`--as-of` before the table, or past its
//! newest version) is a view that raises the reason when it is read
//! ([`Layer::unavailable_view`]).
//!
//! The view over a dead-letter table itself is `dead_letters."<t>__written"`
//! ([`Layer::raw_view`]): every row as written, re-driven ones included
//! (docs/DESIGN.md §15). Two views are derived from it
//! ([`dead_letter_views`]), so that a record is in exactly one of
//! `bronze.<t>` and `dead_letters.<t>`:
//!
//! * `dead_letters.<t>_history`: the written rows of normal ingestion and of
//!   the re-drives visible in the bronze snapshot, with `left_at`,
//!   `left_by`, `left_to`: when, by which re-drive and to which table the
//!   row left (a later re-driven row of its position, or of its message for
//!   a corrupt batch, in bronze or the dead letters), NULL while current;
//! * `dead_letters.<t>`: the current rows of the history, with the columns
//!   of the written view.

use arrow::datatypes::{DataType, Schema, TimeUnit};
use lake::layout::{
    bronze_prefix, dead_letters_prefix, gold_prefix, silver_prefix, BRONZE, DEAD_LETTERS, GOLD,
    SILVER,
};
use lake::LakeArgs;

pub const SCHEMAS: &str = include_str!("../sql/schemas.sql");
const DELTA_VIEW: &str = include_str!("../sql/delta_view.sql");
const FILE_LIST_VIEW: &str = include_str!("../sql/file_list_view.sql");
const DEAD_LETTER_HISTORY: &str = include_str!("../sql/dead_letter_history.sql");

/// Stands in for the secret key in printed SQL.
pub const SECRET_PLACEHOLDER: &str = "<AWS_SECRET_ACCESS_KEY>";

/// The partition column of every table: last in every view.
pub const PARTITION: &str = delta::PARTITION;

/// What dead-letter views add after `event_date`.
const RAW_TEXT: &str = "TRY(decode(raw_payload)) AS raw_text";

/// A layer of the lake, each a DuckDB schema and a top-level folder: the two
/// the consumer writes for every table, and the refiner's two, whose tables
/// (one per model) are a separate set of names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    Bronze,
    DeadLetters,
    Silver,
    Gold,
}

impl Layer {
    /// The consumer's layers: every table of the lake has a view in both.
    pub const ALL: [Layer; 2] = [Layer::Bronze, Layer::DeadLetters];

    /// The refiner's layers: a view per Delta table found under `silver/`
    /// and `gold/`.
    pub const MODELS: [Layer; 2] = [Layer::Silver, Layer::Gold];

    /// Whether this is one of the refiner's layers ([`Layer::MODELS`]).
    pub fn is_model(self) -> bool {
        matches!(self, Layer::Silver | Layer::Gold)
    }

    /// `bronze.<table>`, `dead_letters.<table>`, `silver.<table>` or
    /// `gold.<table>`. Table names are
    /// identifiers (lower case, digits, `_`), and after the schema's dot
    /// even a keyword (`bronze.order`) parses, so they need no quoting.
    pub fn view(self, table: &str) -> String {
        format!("{}.{table}", self.schema())
    }

    /// The view over the table's Delta snapshot itself: [`Layer::view`],
    /// except for dead letters, whose `dead_letters.<table>` is derived
    /// ([`dead_letter_views`]) from `dead_letters."<table>__written"`, every
    /// dead-letter row as written.
    pub fn raw_view(self, table: &str) -> String {
        match self {
            Layer::DeadLetters => format!(
                "{}.{}",
                self.schema(),
                identifier(&format!("{table}{WRITTEN}"))
            ),
            Layer::Bronze | Layer::Silver | Layer::Gold => self.view(table),
        }
    }

    /// The DuckDB schema, which is also the lake's top-level folder.
    pub fn schema(self) -> &'static str {
        match self {
            Layer::Bronze => BRONZE,
            Layer::DeadLetters => DEAD_LETTERS,
            Layer::Silver => SILVER,
            Layer::Gold => GOLD,
        }
    }

    /// `bronze.events` → (Bronze, `events`), `gold.x` → (Gold, `x`); a bare
    /// `events` is bronze.
    pub fn parse_view(name: &str) -> Option<(Layer, &str)> {
        match name.split_once('.') {
            None => Some((Layer::Bronze, name)),
            Some((BRONZE, table)) => Some((Layer::Bronze, table)),
            Some((DEAD_LETTERS, table)) => Some((Layer::DeadLetters, table)),
            Some((SILVER, table)) => Some((Layer::Silver, table)),
            Some((GOLD, table)) => Some((Layer::Gold, table)),
            Some(_) => None,
        }
    }

    /// The root of the table's Delta table, relative to the lake root.
    pub fn prefix(self, table: &str) -> String {
        match self {
            Layer::Bronze => bronze_prefix(table),
            Layer::DeadLetters => dead_letters_prefix(table),
            Layer::Silver => silver_prefix(table),
            Layer::Gold => gold_prefix(table),
        }
    }

    /// Columns the view has beyond those of the table's schema (without
    /// `event_date`), in view order. A silver or gold view has none: its
    /// `event_date`, when the table has one, is the table's own.
    fn extra_columns(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Layer::Bronze => &[(PARTITION, "DATE")],
            Layer::DeadLetters => &[(PARTITION, "DATE"), ("raw_text", "VARCHAR")],
            Layer::Silver | Layer::Gold => &[],
        }
    }

    /// What follows `event_date` in a data view's select list.
    fn after_partition(self) -> &'static str {
        match self {
            Layer::Bronze | Layer::Silver | Layer::Gold => "",
            Layer::DeadLetters => RAW_TEXT,
        }
    }

    /// `CREATE OR REPLACE VIEW` of `table` over `delta_scan` of the Delta
    /// table at `url` (an s3:// URL or a local absolute directory), at
    /// `version` or, without one, at whatever is newest when it is read.
    /// Every table of the lake has `event_date` (the partition column of
    /// [`delta::Table`]); see [`Layer::delta_view_of`] for one that may not.
    pub fn delta_view(self, table: &str, url: &str, version: Option<u64>) -> String {
        self.delta_view_of(table, url, version, true)
    }

    /// [`Layer::delta_view`] of a table that has `event_date` (moved last)
    /// or not (`partitioned` false: a silver or gold table written by
    /// another tool; its columns as they are).
    pub fn delta_view_of(
        self,
        table: &str,
        url: &str,
        version: Option<u64>,
        partitioned: bool,
    ) -> String {
        let mut select = if partitioned || !self.is_model() {
            format!("* EXCLUDE ({PARTITION}), {PARTITION}")
        } else {
            "*".to_string()
        };
        match self.after_partition() {
            "" => {}
            more => select.push_str(&format!(", {more}")),
        }
        fill(
            DELTA_VIEW,
            &[
                ("view", &self.raw_view(table)),
                ("select", &select),
                ("url", url),
                ("table", &literal(url)),
                (
                    "at",
                    &version.map_or(String::new(), |v| format!(" at version {v}")),
                ),
                (
                    "version",
                    &version.map_or(String::new(), |v| format!(", version => {v}")),
                ),
            ],
        )
    }

    /// `CREATE OR REPLACE VIEW` of `table` over `files` (local paths or
    /// s3:// URLs, each with its `event_date` from the log), the snapshot at
    /// `version` of the Delta table at `url`, selecting `columns` (see
    /// [`file_list_columns`]).
    pub fn file_list_view(
        self,
        table: &str,
        url: &str,
        version: u64,
        columns: &[String],
        files: &[(String, Option<String>)],
    ) -> String {
        file_list_view_named(&self.raw_view(table), url, version, columns, files)
    }

    /// The view of `table` with the columns of `schema` (the Arrow schema of
    /// its files, `event_date` optional) and no rows, for a table without
    /// files yet.
    pub fn empty_view(self, table: &str, schema: &Schema) -> Result<String, String> {
        self.empty_view_named(&self.raw_view(table), schema)
    }

    /// [`Layer::empty_view`] named `view` (any qualified name) instead of
    /// `<schema>.<table>`.
    pub fn empty_view_named(self, view: &str, schema: &Schema) -> Result<String, String> {
        let mut columns = Vec::new();
        let typed = |field: &arrow::datatypes::Field| {
            duckdb_type(field.data_type()).ok_or_else(|| {
                format!(
                    "{view}: column {} has Arrow type {} that cannot be mapped to DuckDB",
                    field.name(),
                    field.data_type()
                )
            })
        };
        for field in schema.fields().iter().filter(|f| f.name() != PARTITION) {
            columns.push((field.name().clone(), typed(field)?));
        }
        if self.is_model() {
            if let Ok(field) = schema.field_with_name(PARTITION) {
                columns.push((PARTITION.to_string(), typed(field)?));
            }
        }
        columns.extend(
            self.extra_columns()
                .iter()
                .map(|(name, ty)| (name.to_string(), ty.to_string())),
        );
        let list: Vec<String> = columns
            .iter()
            .map(|(name, ty)| format!("    CAST(NULL AS {ty}) AS {}", identifier(name)))
            .collect();
        Ok(format!(
            "-- No files yet: an empty placeholder with the table's columns.\n\
             CREATE OR REPLACE VIEW {view} AS\nSELECT\n{}\nWHERE false;\n",
            list.join(",\n")
        ))
    }

    /// A view that raises `message` whenever it is read (`DESCRIBE` still
    /// works), for a snapshot that does not exist, so the other views stay
    /// usable.
    pub fn unavailable_view(self, table: &str, message: &str) -> String {
        let view = self.raw_view(table);
        format!(
            "-- {message}\nCREATE OR REPLACE VIEW {view} AS\n\
             SELECT * FROM (SELECT CAST(NULL AS VARCHAR) AS unavailable)\n\
             WHERE error({}) IS NULL;\n",
            literal(message)
        )
    }
}

/// [`Layer::file_list_view`] named `view` (any qualified name, such as
/// `changes.bronze__events`): the file-list view does not depend on the
/// layer beyond its columns.
pub fn file_list_view_named(
    view: &str,
    url: &str,
    version: u64,
    columns: &[String],
    files: &[(String, Option<String>)],
) -> String {
    let partitions: Vec<String> = files
        .iter()
        .map(|(f, date)| {
            let date = date
                .as_deref()
                .map_or("NULL".to_string(), |d| format!("DATE {}", literal(d)));
            format!("    ({}, {date})", literal(f))
        })
        .collect();
    let files: Vec<String> = files
        .iter()
        .map(|(f, _)| format!("        {}", literal(f)))
        .collect();
    let columns: Vec<String> = columns.iter().map(|c| format!("    {c}")).collect();
    fill(
        FILE_LIST_VIEW,
        &[
            ("view", view),
            ("table", url),
            ("version", &version.to_string()),
            ("columns", &columns.join(",\n")),
            ("files", &files.join(",\n")),
            ("partitions", &partitions.join(",\n")),
        ],
    )
}

/// What names `dead_letters."<table>__written"` after the table.
pub const WRITTEN: &str = "__written";

/// The two columns a re-drive sets (docs/DESIGN.md §15), last in both
/// tables; NULL in rows of normal ingestion.
pub const REDRIVE_COLUMNS: [&str; 2] = [lake::schema::REDRIVE_ID, lake::schema::REDRIVEN_AT];

pub use lake::schema::POSITION_COLUMNS;

/// What `dead_letters.<table>_history` adds after the written columns.
pub const LEFT_COLUMNS: [(&str, &str); 3] = [
    ("left_at", "TIMESTAMPTZ"),
    ("left_by", "VARCHAR"),
    ("left_to", "VARCHAR"),
];

/// `dead_letters.<table>_history`: every dead-letter row a session shows,
/// and when it left.
pub fn history_view(table: &str) -> String {
    format!("{DEAD_LETTERS}.{table}_history")
}

/// What the dead-letter views derived from `dead_letters."<t>__written"`
/// read besides it ([`dead_letter_views`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redriven {
    /// The re-drives visible to the session: listed under `_redrives/<t>/`,
    /// with their `txn` in the bronze snapshot it reads. The dead-letter rows
    /// of the others are not shown (their bronze commit is not in it).
    pub visible: std::collections::BTreeSet<String>,
    /// Whether the written view has [`REDRIVE_COLUMNS`] (a table created
    /// before re-drives, or one without that snapshot, has not: all its
    /// rows are of normal ingestion).
    pub written_columns: bool,
    /// Whether to read the re-driven rows of `bronze.<t>` (`redrive_id` not
    /// NULL): when it is readable, has files and the columns, and may hold
    /// such rows.
    pub bronze: bool,
    /// Whether the views read the newest snapshots when queried (no
    /// `--as-of`): a `delta_scan` view may then see a bronze commit made
    /// since [`Redriven::visible`] was read, so a re-drive with rows in
    /// bronze counts as visible too (in a pinned snapshot it is anyway).
    pub newest: bool,
}

/// `CREATE OR REPLACE VIEW` of `dead_letters.<table>_history` and of
/// `dead_letters.<table>`, both over `dead_letters."<table>__written"`
/// (and `bronze.<table>` when [`Redriven::bronze`]).
///
/// The history holds the written rows whose `redrive_id` is NULL or visible,
/// then [`LEFT_COLUMNS`]: a row left when a re-driven row of its message
/// with a later `redriven_at` (a row of normal ingestion is older than every
/// re-driven one) is in bronze (`left_to` `bronze`) or is a visible dead
/// letter (`dead_letters`), at the row's position, or anywhere in the
/// message when the row is a corrupt batch (it was split); `left_*` describe
/// the earliest such row (at one instant, bronze first). `dead_letters.<t>`
/// is the history without them, of the rows that have not left: the columns
/// of the written view. Without any re-driven row to read, the history is a
/// plain filter of the written rows, with NULL `left_*`.
pub fn dead_letter_views(table: &str, redriven: &Redriven) -> String {
    let written = Layer::DeadLetters.raw_view(table);
    let history = history_view(table);
    let position = POSITION_COLUMNS.join(", ");
    let re_driven = "redrive_id IS NOT NULL AND redriven_at IS NOT NULL";
    let visible = if redriven.written_columns {
        let mut visible = vec!["redrive_id IS NULL".to_string()];
        if !redriven.visible.is_empty() {
            let ids: Vec<String> = redriven.visible.iter().map(|id| literal(id)).collect();
            visible.push(format!("redrive_id IN ({})", ids.join(", ")));
        }
        if redriven.bronze && redriven.newest {
            visible.push("redrive_id IN (SELECT redrive_id FROM redriven)".to_string());
        }
        visible.join(" OR ")
    } else {
        "true".to_string()
    };
    let ids = if redriven.visible.is_empty() {
        "none".to_string()
    } else {
        redriven
            .visible
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    };
    let dead_letter_leavers = redriven.written_columns
        && (!redriven.visible.is_empty() || (redriven.bronze && redriven.newest));
    let mut out = if !redriven.bronze && !dead_letter_leavers {
        let left_nulls: Vec<String> = LEFT_COLUMNS
            .iter()
            .map(|(name, ty)| format!("CAST(NULL AS {ty}) AS {name}"))
            .collect();
        format!(
            "-- {history}: the rows of {written} of normal ingestion and of the re-drives\n\
             -- visible in bronze ({ids}); none has left: there is no re-driven row to leave by.\n\
             CREATE OR REPLACE VIEW {history} AS\n\
             SELECT *, {}\nFROM {written}\nWHERE {visible};\n",
            left_nulls.join(", ")
        )
    } else {
        let mut ctes = Vec::new();
        let mut leavers = Vec::new();
        if redriven.bronze {
            // Read once: the leavers and, reading the newest, the visible ids.
            ctes.push(format!(
                "redriven AS MATERIALIZED (\n    SELECT {position}, redriven_at, redrive_id\n    \
                 FROM {}\n    WHERE {re_driven}\n),",
                Layer::Bronze.view(table)
            ));
            leavers.push(format!(
                "    SELECT {position}, redriven_at, redrive_id, '{BRONZE}' AS left_to\n    FROM redriven"
            ));
        }
        // Read three times, each reading only the columns it needs.
        ctes.push(format!(
            "written AS NOT MATERIALIZED (\n    SELECT * FROM {written}\n    WHERE {visible}\n),"
        ));
        if dead_letter_leavers {
            leavers.push(format!(
                "    SELECT {position}, redriven_at, redrive_id, '{DEAD_LETTERS}' AS left_to\n    \
                 FROM written\n    WHERE {re_driven}"
            ));
        }
        ctes.push(format!(
            "leavers AS (\n{}\n),",
            leavers.join("\n    UNION ALL\n")
        ));
        let (w_redriven_at, same_time) = if redriven.written_columns {
            (
                "w.redriven_at",
                "\n AND written.redriven_at IS NOT DISTINCT FROM left_of.redriven_at",
            )
        } else {
            ("CAST(NULL AS TIMESTAMPTZ)", "")
        };
        fill(
            DEAD_LETTER_HISTORY,
            &[
                ("history", &history),
                ("written", &written),
                ("ids", &ids),
                ("ctes", &ctes.join("\n")),
                ("w_redriven_at", w_redriven_at),
                ("same_time", same_time),
            ],
        )
    };
    let left: Vec<&str> = LEFT_COLUMNS.iter().map(|(name, _)| *name).collect();
    out.push_str(&format!(
        "\n-- {current}: the dead letters as they are now, the rows of {history} that\n\
         -- have not left, with the columns of {written}.\n\
         CREATE OR REPLACE VIEW {current} AS\n\
         SELECT * EXCLUDE ({})\nFROM {history}\nWHERE left_by IS NULL;\n",
        left.join(", "),
        current = Layer::DeadLetters.view(table),
    ));
    out
}

/// The select list of a file-list view: every column of the table's schema
/// (`table`, name and DuckDB type, `event_date` skipped) in its order, then
/// `event_date` (and `raw_text`); a silver or gold view has `event_date`
/// only if the table has it. `files` are the columns the files have (from
/// DuckDB's `DESCRIBE`; both lists spell types as DuckDB does): a column no
/// file has yet is a typed NULL, one of another type is cast, as
/// `delta_scan` does. Columns only the files have are left out, as
/// `delta_scan` leaves them out.
pub fn file_list_columns(
    layer: Layer,
    table: &[(String, String)],
    files: &[(String, String)],
) -> Vec<String> {
    let mut columns = Vec::new();
    for (name, ty) in table.iter().filter(|(name, _)| name != PARTITION) {
        let column = identifier(name);
        match files.iter().find(|(file_name, _)| file_name == name) {
            Some((_, file_ty)) if file_ty == ty => columns.push(column),
            Some(_) => columns.push(format!("CAST({column} AS {ty}) AS {column}")),
            None => columns.push(format!("CAST(NULL AS {ty}) AS {column}")),
        }
    }
    if !layer.is_model() || table.iter().any(|(name, _)| name == PARTITION) {
        columns.push(format!("partition_of.{PARTITION}"));
    }
    match layer.after_partition() {
        "" => {}
        more => columns.push(more.to_string()),
    }
    columns
}

/// `template` with every `{name}` of `values` replaced, in one pass, so a
/// value that contains a `{name}` stays as it is.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    'scan: while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        rest = &rest[open..];
        for (name, value) in values {
            if let Some(after) = rest
                .strip_prefix('{')
                .and_then(|r| r.strip_prefix(name))
                .and_then(|r| r.strip_prefix('}'))
            {
                out.push_str(value);
                rest = after;
                continue 'scan;
            }
        }
        out.push('{');
        rest = &rest[1..];
    }
    out.push_str(rest);
    out
}

/// An always-null column (`"type": "null"`). Arrow writes it to Parquet as
/// INT32 of logical type UNKNOWN, which DuckDB reads as INTEGER, so the
/// placeholder says the same.
const NULL_TYPE: &str = "INTEGER";

/// The DuckDB type of an Arrow column type of the lake schemas; `None` for
/// one the consumer never writes.
pub fn duckdb_type(data_type: &DataType) -> Option<String> {
    Some(match data_type {
        DataType::Utf8 => "VARCHAR".into(),
        DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Binary => "BLOB".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Date32 => "DATE".into(),
        DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) if &**tz == "UTC" => {
            "TIMESTAMPTZ".into()
        }
        DataType::Timestamp(TimeUnit::Microsecond, None) => "TIMESTAMP".into(),
        DataType::Null => NULL_TYPE.into(),
        DataType::List(item) => format!("{}[]", duckdb_type(item.data_type())?),
        // DuckDB has no struct without fields.
        DataType::Struct(fields) if !fields.is_empty() => {
            let members = fields
                .iter()
                .map(|f| {
                    Some(format!(
                        "{} {}",
                        identifier(f.name()),
                        duckdb_type(f.data_type())?
                    ))
                })
                .collect::<Option<Vec<_>>>()?;
            format!("STRUCT({})", members.join(", "))
        }
        _ => return None,
    })
}

/// A SQL string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A SQL identifier, always quoted so no column name can clash with a keyword.
pub fn identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `CREATE SECRET` for httpfs from the same settings the consumer uses, so
/// one `.env` works against AWS, MinIO and moto. With `show_secret` false the
/// secret key is replaced by [`SECRET_PLACEHOLDER`] (for printing).
pub fn s3_secret(args: &LakeArgs, show_secret: bool) -> Result<String, String> {
    let mut options = vec!["TYPE s3".to_string()];
    match (&args.aws_access_key_id, &args.aws_secret_access_key) {
        (Some(key_id), Some(secret)) => {
            options.push(format!("KEY_ID {}", literal(key_id)));
            let secret = if show_secret {
                secret.as_str()
            } else {
                SECRET_PLACEHOLDER
            };
            options.push(format!("SECRET {}", literal(secret)));
        }
        (None, None) => {}
        (Some(_), None) => {
            return Err("AWS_SECRET_ACCESS_KEY is not set (AWS_ACCESS_KEY_ID is)".into())
        }
        (None, Some(_)) => {
            return Err("AWS_ACCESS_KEY_ID is not set (AWS_SECRET_ACCESS_KEY is)".into())
        }
    }
    options.push(format!("REGION {}", literal(&args.aws_region)));
    if let Some(endpoint) = &args.aws_endpoint_url {
        let (host, use_ssl) = endpoint_host(endpoint)?;
        options.push(format!("ENDPOINT {}", literal(host)));
        options.push("URL_STYLE 'path'".into());
        options.push(format!("USE_SSL {use_ssl}"));
    }
    Ok(format!(
        "CREATE OR REPLACE SECRET lake_s3 (\n    {}\n);\n",
        options.join(",\n    ")
    ))
}

/// `http://localhost:9000/` → (`localhost:9000`, false): httpfs wants the
/// host without scheme and the scheme as a separate flag.
pub fn endpoint_host(endpoint: &str) -> Result<(&str, bool), String> {
    let (rest, use_ssl) = if let Some(rest) = endpoint.strip_prefix("https://") {
        (rest, true)
    } else if let Some(rest) = endpoint.strip_prefix("http://") {
        (rest, false)
    } else {
        return Err(format!(
            "AWS_ENDPOINT_URL {endpoint:?}: expected http://host:port or https://host"
        ));
    };
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("AWS_ENDPOINT_URL {endpoint:?}: no host"));
    }
    Ok((host, use_ssl))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{Field, Fields, SchemaRef};
    use lake::contract::Contract;

    use super::*;

    fn args(endpoint: Option<&str>) -> LakeArgs {
        LakeArgs {
            lake_url: "s3://lake".into(),
            aws_endpoint_url: endpoint.map(String::from),
            aws_access_key_id: Some("minio".into()),
            aws_secret_access_key: Some("very-secret".into()),
            aws_region: "us-east-1".into(),
            ..Default::default()
        }
    }

    fn events_schemas() -> [(Layer, SchemaRef); 2] {
        [
            (Layer::Bronze, lake::schema::bronze(&Contract::events())),
            (Layer::DeadLetters, lake::schema::dead_letters()),
        ]
    }

    #[test]
    fn every_lake_column_has_a_duckdb_type() {
        for (layer, schema) in events_schemas() {
            let sql = layer.empty_view("events", &schema).expect("all types map");
            for field in schema.fields() {
                assert!(sql.contains(&format!("AS \"{}\"", field.name())), "{sql}");
            }
        }
        let [(_, bronze), (_, dead)] = events_schemas();
        let bronze = Layer::Bronze.empty_view("events", &bronze).expect("maps");
        for column in [
            "CAST(NULL AS TIMESTAMPTZ) AS \"event_ts\"",
            "CAST(NULL AS BIGINT) AS \"user_id\"",
            "CAST(NULL AS DATE) AS \"event_date\"",
            "CAST(NULL AS INTEGER) AS \"contract_version\"",
        ] {
            assert!(bronze.contains(column), "{column} in {bronze}");
        }
        assert!(bronze.contains("CREATE OR REPLACE VIEW bronze.events AS"));
        assert!(bronze.trim_end().ends_with("WHERE false;"));
        let dead = Layer::DeadLetters
            .empty_view("orders", &dead)
            .expect("maps");
        for column in [
            "CAST(NULL AS BLOB) AS \"raw_payload\"",
            "CAST(NULL AS VARCHAR) AS \"raw_text\"",
            "CAST(NULL AS INTEGER) AS \"source_partition\"",
            "CAST(NULL AS DATE) AS \"event_date\",\n    CAST(NULL AS VARCHAR) AS \"raw_text\"",
        ] {
            assert!(dead.contains(column), "{column} in {dead}");
        }
        assert!(dead.contains("CREATE OR REPLACE VIEW dead_letters.\"orders__written\" AS"));
        for column in ["redrive_id", "redriven_at"] {
            assert!(
                bronze.contains(&format!("AS \"{column}\"")),
                "{column} in {bronze}"
            );
        }
        assert!(
            dead.contains(
                "CAST(NULL AS VARCHAR) AS \"redrive_id\",\n    \
                 CAST(NULL AS TIMESTAMPTZ) AS \"redriven_at\",\n    \
                 CAST(NULL AS DATE) AS \"event_date\""
            ),
            "{dead}"
        );
    }

    #[test]
    fn nested_contract_columns_map_to_duckdb_types() {
        let item = Fields::from(vec![
            Field::new("sku", DataType::Utf8, false),
            Field::new("unit price", DataType::Float64, true),
        ]);
        let list = DataType::List(Arc::new(Field::new("item", DataType::Struct(item), true)));
        assert_eq!(
            duckdb_type(&list).as_deref(),
            Some("STRUCT(\"sku\" VARCHAR, \"unit price\" DOUBLE)[]")
        );
        let nested = DataType::Struct(Fields::from(vec![Field::new(
            "tags",
            DataType::List(Arc::new(Field::new("item", DataType::Date32, true))),
            true,
        )]));
        assert_eq!(
            duckdb_type(&nested).as_deref(),
            Some("STRUCT(\"tags\" DATE[])")
        );
        assert_eq!(duckdb_type(&DataType::Null).as_deref(), Some(NULL_TYPE));
        assert_eq!(duckdb_type(&DataType::Struct(Fields::empty())), None);
        assert_eq!(duckdb_type(&DataType::UInt8), None);
    }

    #[test]
    fn delta_views_put_event_date_last() {
        let sql = Layer::Bronze.delta_view("events", "/tmp/it's/bronze/events", None);
        assert!(
            sql.contains("SELECT * EXCLUDE (event_date), event_date\nFROM delta_scan('/tmp/it''s/bronze/events');"),
            "{sql}"
        );
        assert!(
            sql.contains("CREATE OR REPLACE VIEW bronze.events AS"),
            "{sql}"
        );
        let sql = Layer::DeadLetters.delta_view("orders", "s3://lake/dead_letters/orders", Some(7));
        assert!(
            sql.contains("event_date, TRY(decode(raw_payload)) AS raw_text\nFROM delta_scan('s3://lake/dead_letters/orders', version => 7);"),
            "{sql}"
        );
        assert!(sql.contains("at version 7"), "{sql}");
        assert!(
            sql.contains("CREATE OR REPLACE VIEW dead_letters.\"orders__written\" AS"),
            "{sql}"
        );
        assert!(!sql.contains('{') || sql.contains("{'"), "{sql}");
    }

    #[test]
    fn file_list_views_name_every_file_and_column() {
        let columns = file_list_columns(
            Layer::DeadLetters,
            &[
                ("a".into(), "BIGINT".into()),
                ("event_date".into(), "DATE".into()),
                ("late".into(), "VARCHAR".into()),
                ("n".into(), "BIGINT".into()),
            ],
            &[
                ("n".into(), "INTEGER".into()),
                ("a".into(), "BIGINT".into()),
                ("only_in_files".into(), "VARCHAR".into()),
                ("event_date".into(), "DATE".into()),
            ],
        );
        assert_eq!(
            columns,
            [
                "\"a\"",
                "CAST(NULL AS VARCHAR) AS \"late\"",
                "CAST(\"n\" AS BIGINT) AS \"n\"",
                "partition_of.event_date",
                "TRY(decode(raw_payload)) AS raw_text",
            ]
        );
        let sql = Layer::Bronze.file_list_view(
            "events",
            "/lake/bronze/events",
            3,
            &["\"a\"".into(), "partition_of.event_date".into()],
            &[
                ("/lake/it's/x.parquet".into(), Some("2026-11-22".into())),
                ("/lake/{columns}.parquet".into(), None),
            ],
        );
        assert!(
            sql.contains("    [\n        '/lake/it''s/x.parquet',\n        '/lake/{columns}.parquet'\n    ],"),
            "{sql}"
        );
        assert!(
            sql.contains("SELECT\n    \"a\",\n    partition_of.event_date\nFROM read_parquet("),
            "{sql}"
        );
        assert!(
            sql.contains("('/lake/it''s/x.parquet', DATE '2026-11-22'),\n    ('/lake/{columns}.parquet', NULL)"),
            "{sql}"
        );
        assert!(
            sql.contains("version 3 of the Delta table /lake/bronze/events"),
            "{sql}"
        );
    }

    #[test]
    fn unavailable_views_raise_their_reason() {
        let sql =
            Layer::Bronze.unavailable_view("events", "bronze.events has no version 9 (it's at 2)");
        assert!(
            sql.contains("error('bronze.events has no version 9 (it''s at 2)')"),
            "{sql}"
        );
        let sql = Layer::DeadLetters.unavailable_view("events", "no version 9");
        assert!(
            sql.contains("CREATE OR REPLACE VIEW dead_letters.\"events__written\" AS"),
            "{sql}"
        );
        assert_eq!(Layer::parse_view("events"), Some((Layer::Bronze, "events")));
        assert_eq!(
            Layer::parse_view("dead_letters.orders"),
            Some((Layer::DeadLetters, "orders"))
        );
        assert_eq!(
            Layer::parse_view("silver.orders"),
            Some((Layer::Silver, "orders"))
        );
        assert_eq!(
            Layer::parse_view("gold.events_per_minute"),
            Some((Layer::Gold, "events_per_minute"))
        );
        assert_eq!(Layer::parse_view("platinum.orders"), None);
        assert_eq!(Layer::DeadLetters.prefix("events"), "dead_letters/events");
        assert_eq!(Layer::Silver.prefix("sessions"), "silver/sessions");
        assert_eq!(
            Layer::Gold.view("events_per_minute"),
            "gold.events_per_minute"
        );
        assert!(Layer::MODELS.iter().all(|l| l.is_model()));
        assert!(!Layer::ALL.iter().any(|l| l.is_model()));
    }

    #[test]
    fn model_views_have_the_tables_columns_only() {
        let schema = Schema::new(vec![
            Field::new("event_date", DataType::Date32, true),
            Field::new(
                "minute",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("n", DataType::Int64, true),
        ]);
        let empty = Layer::Gold.empty_view("per_minute", &schema).expect("maps");
        assert!(
            empty.contains(
                "CAST(NULL AS TIMESTAMPTZ) AS \"minute\",\n    CAST(NULL AS BIGINT) AS \"n\",\n    \
                 CAST(NULL AS DATE) AS \"event_date\"\nWHERE false;"
            ),
            "{empty}"
        );
        assert!(empty.contains("CREATE OR REPLACE VIEW gold.per_minute AS"));
        assert!(!empty.contains("raw_text"));
        // No event_date in the table: none in the view.
        let flat = Schema::new(vec![Field::new("n", DataType::Int64, true)]);
        let empty = Layer::Silver.empty_view("flat", &flat).expect("maps");
        assert!(!empty.contains("event_date"), "{empty}");
        let named = Layer::Silver
            .empty_view_named("changes.silver__flat", &flat)
            .expect("maps");
        assert!(named.contains("CREATE OR REPLACE VIEW changes.silver__flat AS"));

        let delta = Layer::Gold.delta_view("per_minute", "/lake/gold/per_minute", Some(3));
        assert!(
            delta.contains("SELECT * EXCLUDE (event_date), event_date\nFROM delta_scan('/lake/gold/per_minute', version => 3);"),
            "{delta}"
        );
        let delta = Layer::Silver.delta_view_of("flat", "/lake/silver/flat", None, false);
        assert!(
            delta.contains("SELECT *\nFROM delta_scan('/lake/silver/flat');"),
            "{delta}"
        );

        let table = [
            ("n".to_string(), "BIGINT".to_string()),
            ("event_date".to_string(), "DATE".to_string()),
        ];
        let files = [("n".to_string(), "BIGINT".to_string())];
        assert_eq!(
            file_list_columns(Layer::Gold, &table, &files),
            ["\"n\"", "partition_of.event_date"]
        );
        assert_eq!(
            file_list_columns(Layer::Silver, &table[..1], &files),
            ["\"n\""]
        );
    }

    #[test]
    fn dead_letter_views_read_bronze_only_when_it_may_have_left_rows() {
        assert_eq!(
            Layer::DeadLetters.raw_view("events"),
            "dead_letters.\"events__written\""
        );
        assert_eq!(Layer::Bronze.raw_view("events"), "bronze.events");
        assert_eq!(history_view("events"), "dead_letters.events_history");
        let current = "CREATE OR REPLACE VIEW dead_letters.events AS\n\
                       SELECT * EXCLUDE (left_at, left_by, left_to)\n\
                       FROM dead_letters.events_history\nWHERE left_by IS NULL;\n";

        // No re-drive: a filter of the written rows.
        let plain = dead_letter_views(
            "events",
            &Redriven {
                written_columns: true,
                newest: true,
                ..Default::default()
            },
        );
        assert!(
            plain.contains(
                "CREATE OR REPLACE VIEW dead_letters.events_history AS\n\
                 SELECT *, CAST(NULL AS TIMESTAMPTZ) AS left_at, CAST(NULL AS VARCHAR) AS left_by, \
                 CAST(NULL AS VARCHAR) AS left_to\n\
                 FROM dead_letters.\"events__written\"\nWHERE redrive_id IS NULL;\n"
            ),
            "{plain}"
        );
        assert!(plain.ends_with(current), "{plain}");
        assert!(!plain.contains("bronze.events"), "{plain}");

        // Visible re-drives, bronze not read (it has no files): the dead
        // letters of those re-drives leave the older ones.
        let visible = Redriven {
            visible: ["000002".to_string(), "000007".to_string()].into(),
            written_columns: true,
            bronze: false,
            newest: false,
        };
        let sql = dead_letter_views("events", &visible);
        assert!(
            sql.contains("WHERE redrive_id IS NULL OR redrive_id IN ('000002', '000007')\n"),
            "{sql}"
        );
        assert!(
            sql.contains("'dead_letters' AS left_to\n    FROM written"),
            "{sql}"
        );
        assert!(!sql.contains("bronze.events"), "{sql}");
        assert!(sql.contains("visible in bronze (000002, 000007)"), "{sql}");
        assert!(
            sql.contains("AND written.redriven_at IS NOT DISTINCT FROM left_of.redriven_at;"),
            "{sql}"
        );
        assert!(sql.ends_with(current), "{sql}");

        // Reading the newest bronze: its re-driven rows, read once, also say
        // which re-drives are visible.
        let sql = dead_letter_views(
            "events",
            &Redriven {
                bronze: true,
                newest: true,
                ..visible.clone()
            },
        );
        assert!(
            sql.contains(
                "redriven AS MATERIALIZED (\n    SELECT source_kind, source_topic, source_partition, \
                 source_offset, source_key, record_index, redriven_at, redrive_id\n    \
                 FROM bronze.events\n    WHERE redrive_id IS NOT NULL AND redriven_at IS NOT NULL\n),"
            ),
            "{sql}"
        );
        assert!(
            sql.contains(
                "WHERE redrive_id IS NULL OR redrive_id IN ('000002', '000007') \
                 OR redrive_id IN (SELECT redrive_id FROM redriven)\n"
            ),
            "{sql}"
        );
        assert!(sql.contains("'bronze' AS left_to\n    FROM redriven\n    UNION ALL\n"));

        // A dead-letter table without the re-drive columns: all its rows are
        // of normal ingestion, and only bronze's rows leave them.
        let sql = dead_letter_views(
            "events",
            &Redriven {
                visible: Default::default(),
                written_columns: false,
                bronze: true,
                newest: true,
            },
        );
        assert!(sql.contains("    WHERE true\n"), "{sql}");
        assert!(!sql.contains("FROM written\n    WHERE redrive_id"), "{sql}");
        assert!(
            sql.contains("CAST(NULL AS TIMESTAMPTZ) AS redriven_at,"),
            "{sql}"
        );
        assert!(!sql.contains("written.redriven_at"), "{sql}");
        let unavailable = dead_letter_views("events", &Redriven::default());
        assert!(unavailable.contains("FROM dead_letters.\"events__written\"\nWHERE true;\n"));
    }

    #[test]
    fn secrets_follow_the_endpoint_and_hide_the_key() {
        let sql = s3_secret(&args(Some("http://localhost:9000/")), false).expect("valid");
        assert!(sql.contains("ENDPOINT 'localhost:9000'"), "{sql}");
        assert!(
            sql.contains("USE_SSL false") && sql.contains("URL_STYLE 'path'"),
            "{sql}"
        );
        assert!(
            sql.contains("KEY_ID 'minio'") && sql.contains("SECRET '<AWS_SECRET_ACCESS_KEY>'"),
            "{sql}"
        );
        assert!(!sql.contains("very-secret"));
        let shown = s3_secret(&args(Some("https://s3.example.com")), true).expect("valid");
        assert!(
            shown.contains("SECRET 'very-secret'") && shown.contains("USE_SSL true"),
            "{shown}"
        );
        // AWS itself: no endpoint, virtual-hosted addressing.
        let aws = s3_secret(&args(None), false).expect("valid");
        assert!(
            !aws.contains("ENDPOINT") && aws.contains("REGION 'us-east-1'"),
            "{aws}"
        );
        let err = s3_secret(&args(Some("localhost:9000")), false).expect_err("no scheme");
        assert!(err.starts_with("AWS_ENDPOINT_URL"), "{err}");
    }
}
