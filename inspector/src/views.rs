//! The SQL that defines the lake in DuckDB: the schemas `bronze` and
//! `dead_letters`, one view in each per table of the lake, and the S3 secret
//! httpfs needs. Pure text generation, so `init-sql` prints exactly what a
//! session runs.
//!
//! A view reads every Parquet file of its table. When there is none yet,
//! `read_parquet` would fail, so the view is a typed placeholder with zero
//! rows instead, derived from the consumer's Arrow schema (one definition).

use arrow::datatypes::{DataType, Schema, TimeUnit};
use lake::layout::{bronze_prefix, dead_letters_prefix, BRONZE, DEAD_LETTERS};
use lake::LakeArgs;

pub const SCHEMAS: &str = include_str!("../sql/schemas.sql");
const BRONZE_VIEW: &str = include_str!("../sql/bronze_view.sql");
const DEAD_LETTERS_VIEW: &str = include_str!("../sql/dead_letters_view.sql");

/// Stands in for the secret key in printed SQL.
pub const SECRET_PLACEHOLDER: &str = "<AWS_SECRET_ACCESS_KEY>";

/// One of the two layers the consumer writes for every table, each a DuckDB
/// schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Layer {
    Bronze,
    DeadLetters,
}

impl Layer {
    pub const ALL: [Layer; 2] = [Layer::Bronze, Layer::DeadLetters];

    /// `bronze.<table>` or `dead_letters.<table>`. Table names are
    /// identifiers (lower case, digits, `_`), and after the schema's dot
    /// even a keyword (`bronze.order`) parses, so they need no quoting.
    pub fn view(self, table: &str) -> String {
        let schema = match self {
            Layer::Bronze => BRONZE,
            Layer::DeadLetters => DEAD_LETTERS,
        };
        format!("{schema}.{table}")
    }

    /// The table's files relative to the lake root. Both layers keep exactly
    /// one directory level above their files: the `event_date=` partition
    /// for bronze, the source tag for dead letters.
    pub fn files_key(self, table: &str) -> String {
        let prefix = match self {
            Layer::Bronze => bronze_prefix(table),
            Layer::DeadLetters => dead_letters_prefix(table),
        };
        format!("{prefix}/*/*.parquet")
    }

    /// Columns the view has beyond those stored in the files, in view order.
    fn extra_columns(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Layer::Bronze => &[("event_date", "DATE")],
            Layer::DeadLetters => &[("raw_text", "VARCHAR")],
        }
    }

    /// `CREATE OR REPLACE VIEW` of `table` over the files matching `files`
    /// (a local glob or an s3:// URL glob).
    pub fn data_view(self, table: &str, files: &str) -> String {
        let template = match self {
            Layer::Bronze => BRONZE_VIEW,
            Layer::DeadLetters => DEAD_LETTERS_VIEW,
        };
        template
            .replace("{view}", &self.view(table))
            .replace("{files}", &literal(files))
    }

    /// The view of `table` with the columns of `schema` (the Arrow schema of
    /// its files) and no rows, for a table without files yet.
    pub fn empty_view(self, table: &str, schema: &Schema) -> Result<String, String> {
        let view = self.view(table);
        let mut columns = Vec::new();
        for field in schema.fields() {
            let ty = duckdb_type(field.data_type()).ok_or_else(|| {
                format!(
                    "{view}: column {} has Arrow type {} that the inspector cannot map to DuckDB",
                    field.name(),
                    field.data_type()
                )
            })?;
            columns.push((field.name().clone(), ty));
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
        ] {
            assert!(dead.contains(column), "{column} in {dead}");
        }
        assert!(dead.contains("CREATE OR REPLACE VIEW dead_letters.orders AS"));
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
    fn data_views_quote_their_glob() {
        let sql = Layer::Bronze.data_view("events", "/tmp/it's/bronze/events/*/*.parquet");
        assert!(
            sql.contains("read_parquet(\n    '/tmp/it''s/bronze/events/*/*.parquet',"),
            "{sql}"
        );
        assert!(sql.contains("hive_types = {'event_date': DATE}"), "{sql}");
        assert!(sql.contains("CREATE OR REPLACE VIEW bronze.events AS"));
        let sql =
            Layer::DeadLetters.data_view("orders", "s3://lake/dead_letters/orders/*/*.parquet");
        assert!(
            sql.contains("TRY(decode(raw_payload)) AS raw_text"),
            "{sql}"
        );
        assert!(sql.contains("CREATE OR REPLACE VIEW dead_letters.orders AS"));
        assert!(!sql.contains("{files}") && !sql.contains("{view}"));
        assert_eq!(
            Layer::DeadLetters.files_key("events"),
            "dead_letters/events/*/*.parquet"
        );
        assert_eq!(
            Layer::Bronze.files_key("orders"),
            "bronze/orders/*/*.parquet"
        );
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
