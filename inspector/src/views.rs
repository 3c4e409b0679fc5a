//! The SQL that defines the lake in DuckDB: the schemas `bronze` and
//! `dead_letters`, their `events` views, and the S3 secret httpfs needs.
//! Pure text generation, so `init-sql` prints exactly what a session runs.
//!
//! A view reads every Parquet file of its table. When there is none yet,
//! `read_parquet` would fail, so the view is a typed placeholder with zero
//! rows instead, derived from the consumer's Arrow schema (one definition).

use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use lake::layout::{BRONZE_EVENTS, DEAD_LETTERS_EVENTS};
use lake::LakeArgs;

pub const SCHEMAS: &str = include_str!("../sql/schemas.sql");
const BRONZE_VIEW: &str = include_str!("../sql/bronze_view.sql");
const DEAD_LETTERS_VIEW: &str = include_str!("../sql/dead_letters_view.sql");

/// Stands in for the secret key in printed SQL.
pub const SECRET_PLACEHOLDER: &str = "<AWS_SECRET_ACCESS_KEY>";

/// One of the two tables the consumer writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Bronze,
    DeadLetters,
}

impl Table {
    pub const ALL: [Table; 2] = [Table::Bronze, Table::DeadLetters];

    pub fn view(self) -> &'static str {
        match self {
            Table::Bronze => "bronze.events",
            Table::DeadLetters => "dead_letters.events",
        }
    }

    /// The table's files relative to the lake root. Both tables keep exactly
    /// one directory level above their files: the `event_date=` partition
    /// for bronze, the source tag for dead letters.
    pub fn files_key(self) -> String {
        let prefix = match self {
            Table::Bronze => BRONZE_EVENTS,
            Table::DeadLetters => DEAD_LETTERS_EVENTS,
        };
        format!("{prefix}/*/*.parquet")
    }

    fn schema(self) -> SchemaRef {
        match self {
            Table::Bronze => lake::schema::bronze(),
            Table::DeadLetters => lake::schema::dead_letters(),
        }
    }

    /// Columns the view has beyond those stored in the files, in view order.
    fn extra_columns(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Table::Bronze => &[("event_date", "DATE")],
            Table::DeadLetters => &[("raw_text", "VARCHAR")],
        }
    }

    /// `CREATE OR REPLACE VIEW` over the files matching `files` (a local glob or an s3:// URL glob).
    pub fn data_view(self, files: &str) -> String {
        let template = match self {
            Table::Bronze => BRONZE_VIEW,
            Table::DeadLetters => DEAD_LETTERS_VIEW,
        };
        template.replace("{files}", &literal(files))
    }

    /// The view with the table's typed columns and no rows, for a lake
    /// without files yet.
    pub fn empty_view(self) -> Result<String, String> {
        let schema = self.schema();
        let mut columns = Vec::new();
        for field in schema.fields() {
            let ty = duckdb_type(field.data_type()).ok_or_else(|| {
                format!(
                    "{}: column {} has Arrow type {} that the inspector cannot map to DuckDB",
                    self.view(),
                    field.name(),
                    field.data_type()
                )
            })?;
            columns.push((field.name().as_str(), ty));
        }
        columns.extend(self.extra_columns().iter().copied());
        let list: Vec<String> = columns
            .iter()
            .map(|(name, ty)| format!("    CAST(NULL AS {ty}) AS {}", identifier(name)))
            .collect();
        Ok(format!(
            "-- No files yet: an empty placeholder with the table's columns.\n\
             CREATE OR REPLACE VIEW {} AS\nSELECT\n{}\nWHERE false;\n",
            self.view(),
            list.join(",\n")
        ))
    }
}

/// The DuckDB type of an Arrow column type of the lake schemas.
pub fn duckdb_type(data_type: &DataType) -> Option<&'static str> {
    Some(match data_type {
        DataType::Utf8 => "VARCHAR",
        DataType::Int32 => "INTEGER",
        DataType::Int64 => "BIGINT",
        DataType::Float64 => "DOUBLE",
        DataType::Binary => "BLOB",
        DataType::Boolean => "BOOLEAN",
        DataType::Date32 => "DATE",
        DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) if &**tz == "UTC" => "TIMESTAMPTZ",
        DataType::Timestamp(TimeUnit::Microsecond, None) => "TIMESTAMP",
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

    #[test]
    fn every_lake_column_has_a_duckdb_type() {
        for table in Table::ALL {
            let sql = table.empty_view().expect("all types map");
            for field in table.schema().fields() {
                assert!(sql.contains(&format!("AS \"{}\"", field.name())), "{sql}");
            }
        }
        let bronze = Table::Bronze.empty_view().expect("maps");
        assert!(
            bronze.contains("CAST(NULL AS TIMESTAMPTZ) AS \"event_ts\""),
            "{bronze}"
        );
        assert!(
            bronze.contains("CAST(NULL AS BIGINT) AS \"user_id\""),
            "{bronze}"
        );
        assert!(
            bronze.contains("CAST(NULL AS DATE) AS \"event_date\""),
            "{bronze}"
        );
        assert!(bronze.trim_end().ends_with("WHERE false;"));
        let dead = Table::DeadLetters.empty_view().expect("maps");
        assert!(
            dead.contains("CAST(NULL AS BLOB) AS \"raw_payload\""),
            "{dead}"
        );
        assert!(
            dead.contains("CAST(NULL AS VARCHAR) AS \"raw_text\""),
            "{dead}"
        );
        assert!(
            dead.contains("CAST(NULL AS INTEGER) AS \"source_partition\""),
            "{dead}"
        );
    }

    #[test]
    fn data_views_quote_their_glob() {
        let sql = Table::Bronze.data_view("/tmp/it's/bronze/events/*/*.parquet");
        assert!(
            sql.contains("read_parquet(\n    '/tmp/it''s/bronze/events/*/*.parquet',"),
            "{sql}"
        );
        assert!(sql.contains("hive_types = {'event_date': DATE}"), "{sql}");
        assert!(sql.contains("CREATE OR REPLACE VIEW bronze.events AS"));
        let sql = Table::DeadLetters.data_view("s3://lake/dead_letters/events/*/*.parquet");
        assert!(
            sql.contains("TRY(decode(raw_payload)) AS raw_text"),
            "{sql}"
        );
        assert!(!sql.contains("{files}"));
        assert_eq!(
            Table::DeadLetters.files_key(),
            "dead_letters/events/*/*.parquet"
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
