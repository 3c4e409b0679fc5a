//! The inspector: opens the lake in DuckDB through [`lakedb`] (the schemas
//! `bronze`, `dead_letters`, `silver` and `gold`, the views
//! `bronze.<table>` and `dead_letters.<table>` for every table the consumer
//! writes and `silver.<model>` / `gold.<model>` for every table the refiner
//! writes; docs/DESIGN.md §6), then offers a shell, one-shot queries, a
//! status report, a self-refreshing status page, the commits of a table,
//! the re-drives of dead letters, and the same SQL for the official `duckdb`
//! CLI.
//!
//! [`lakedb::session`] opens DuckDB over the lake's Delta snapshots (in
//! place, through httpfs, or through a local mirror); here, [`output`]
//! prints results, and [`shell`], [`status`], [`serve`], [`history`] and
//! [`redrives`] are the interactive and reporting front ends. The inspector alone links
//! librdkafka, for the Kafka lag in `status`.

pub mod history;
pub mod output;
pub mod redrives;
pub mod serve;
pub mod shell;
pub mod status;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{anyhow, Context};
use clap::{Args, Parser, Subcommand};
use delta::AsOf;
use lake::config::KafkaArgs;
use lake::{Lake, LakeArgs};
use lakedb::session::{Options, Session};
use lakedb::snapshot;

use crate::output::Format;
use crate::redrives::RedrivesFormat;
use crate::status::StatusFormat;

#[derive(Parser, Debug)]
#[command(
    name = "inspector",
    version,
    about = "Look at the lake with DuckDB: bronze.<table> and dead_letters.<table> for every table, silver.<model> and gold.<model> for every model."
)]
pub struct Cli {
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the shell history and the mirrors go. clap reads the variables
/// while parsing, so the library never looks at the process environment.
#[derive(Args, Debug, Clone)]
pub struct CacheArgs {
    /// Where the inspector keeps its shell history and, without --mirror-dir,
    /// its mirrors. [default: $XDG_CACHE_HOME/lakehouse, else ~/.cache/lakehouse]
    #[arg(long, global = true, env = "INSPECTOR_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    // OsString, not PathBuf: an empty variable means unset, which PathBuf's
    // parser would reject.
    #[arg(long, hide = true, env = "XDG_CACHE_HOME")]
    pub xdg_cache_home: Option<OsString>,
    #[arg(long, hide = true, env = "HOME")]
    pub home: Option<OsString>,
}

impl CacheArgs {
    /// `--cache-dir`, else `$XDG_CACHE_HOME/lakehouse`, else `~/.cache/lakehouse`.
    pub fn dir(&self) -> anyhow::Result<PathBuf> {
        if let Some(dir) = &self.cache_dir {
            return Ok(dir.clone());
        }
        let set = |value: &Option<OsString>| value.clone().filter(|v| !v.is_empty());
        if let Some(dir) = set(&self.xdg_cache_home) {
            return Ok(PathBuf::from(dir).join("lakehouse"));
        }
        let home = set(&self.home)
            .ok_or_else(|| anyhow!("neither XDG_CACHE_HOME nor HOME is set: pass --cache-dir"))?;
        Ok(PathBuf::from(home).join(".cache").join("lakehouse"))
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Interactive SQL shell over the views, with line editing and history.
    Shell {
        #[command(flatten)]
        time_travel: TimeTravel,
        #[command(flatten)]
        common: Common,
    },
    /// Run one SQL statement and print its result.
    Query {
        /// The SQL, e.g. "SELECT count(*) AS n FROM bronze.events".
        sql: String,
        /// Output format; json is an array of row objects.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        #[command(flatten)]
        time_travel: TimeTravel,
        #[command(flatten)]
        common: Common,
    },
    /// The commits of one Delta table, newest first.
    ///
    /// TABLE is bronze.<table>, dead_letters.<table>, silver.<model>,
    /// gold.<model>, or <table> for bronze.
    History {
        /// e.g. bronze.events, dead_letters.orders, gold.events_per_minute, events.
        table: String,
        /// How many commits, newest first.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
        limit: u64,
        /// Output format; json is an array of commit objects.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        #[command(flatten)]
        lake: LakeArgs,
    },
    /// The re-drives of dead letters recorded in the lake, by table then id.
    ///
    /// One row per `_redrives/<table>/<id>.json`: its state (`open` while it
    /// has no summary: interrupted or running, the next `consumer redrive`
    /// finishes it; `done`; `unreadable`, with the reason), the selection,
    /// and what it did: selected, moved, still failing, rewritten, by code.
    Redrives {
        /// Only this table's re-drives, e.g. events; default: every table.
        #[arg(long, value_name = "TABLE")]
        table: Option<String>,
        /// Output format; json is an array of row objects, with `by_code` an object.
        #[arg(long, value_enum, default_value = "table")]
        format: RedrivesFormat,
        #[command(flatten)]
        lake: LakeArgs,
    },
    /// Per table: checkpoints, row counts and dead-letter reasons; the silver
    /// and gold tables; Kafka lag.
    Status {
        /// Output format; json has the same content.
        #[arg(long, value_enum, default_value = "text")]
        format: StatusFormat,
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Serve a status page that refreshes itself, and its panels as JSON.
    ///
    /// The page (/) shows per table the rows, dead letters, freshness and
    /// Delta versions, the Kafka lag, dead letters by error_code over time
    /// and the newest of them, the last micro-batches, the silver and gold
    /// tables, charts of gold.events_per_minute and gold.dead_letter_rate,
    /// and the --metrics-url endpoints; /api lists the JSON endpoints.
    Serve {
        #[command(flatten)]
        serve: serve::ServeArgs,
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Print the SQL that defines the schemas and views, for the duckdb CLI.
    ///
    /// For example `inspector init-sql > lake.sql; duckdb -init lake.sql`.
    /// The views are delta_scan()s of the Delta tables (LOAD delta); for an
    /// s3:// lake it includes LOAD httpfs and the S3 secret (its key only
    /// with --with-secrets); with --mirror or --file-list the views list the
    /// snapshot's files instead.
    InitSql {
        /// Print the S3 secret key instead of a placeholder.
        #[arg(long)]
        with_secrets: bool,
        #[command(flatten)]
        time_travel: TimeTravel,
        #[command(flatten)]
        common: Common,
    },
}

impl Cli {
    /// Values that must never be printed, for [`lake::config::redact`].
    pub fn secret_values(&self) -> Vec<String> {
        match &self.command {
            Command::Status { kafka, common, .. } | Command::Serve { kafka, common, .. } => {
                [common.lake.secret_values(), kafka.secret_values()].concat()
            }
            Command::Shell { common, .. }
            | Command::Query { common, .. }
            | Command::InitSql { common, .. } => common.lake.secret_values(),
            Command::History { lake, .. } | Command::Redrives { lake, .. } => lake.secret_values(),
        }
    }
}

impl lake::config::FromEnvironment for Cli {
    fn read_environment(&mut self, vars: &[(String, String)]) {
        match &mut self.command {
            Command::Status { kafka, common, .. } | Command::Serve { kafka, common, .. } => {
                kafka.read_environment(vars);
                common.lake.read_environment(vars);
            }
            Command::Shell { common, .. }
            | Command::Query { common, .. }
            | Command::InitSql { common, .. } => common.lake.read_environment(vars),
            Command::History { lake, .. } | Command::Redrives { lake, .. } => {
                lake.read_environment(vars)
            }
        }
    }
}

/// Settings every subcommand takes.
#[derive(Args, Debug, Clone)]
pub struct Common {
    #[command(flatten)]
    pub lake: LakeArgs,
    /// A local httpfs.duckdb_extension file to LOAD for s3:// lakes, tried
    /// before the installed extension (for machines that cannot download it).
    #[arg(long, env = "DUCKDB_HTTPFS_EXTENSION", value_name = "PATH")]
    pub httpfs_extension: Option<PathBuf>,
    /// A local delta.duckdb_extension file to LOAD for the delta_scan views,
    /// tried before the installed extension (for machines that cannot
    /// download it). Without the extension the views read the files the
    /// Delta logs list, with the same rows.
    #[arg(long, env = "DUCKDB_DELTA_EXTENSION", value_name = "PATH")]
    pub delta_extension: Option<PathBuf>,
    /// Where local mirrors of s3:// lakes are kept (used when httpfs cannot
    /// be loaded, or with --mirror). [default: mirror/ in the --cache-dir]
    #[arg(long, env = "INSPECTOR_MIRROR_DIR", value_name = "DIR")]
    pub mirror_dir: Option<PathBuf>,
    /// Read an s3:// lake through the local mirror even if httpfs loads.
    #[arg(long)]
    pub mirror: bool,
    /// Build every view from the file list of its Delta snapshot, read by the
    /// inspector, instead of DuckDB's delta_scan (same rows; for debugging).
    #[arg(long)]
    pub file_list: bool,
}

/// `--as-of`: which snapshot of every table the views read.
#[derive(Args, Debug, Clone, Default)]
pub struct TimeTravel {
    /// Read every table as of a Delta version (e.g. 12) or an instant
    /// (RFC 3339, e.g. 2026-12-01T15:00:00Z: the newest version committed
    /// then). A table without that snapshot raises an error when read.
    #[arg(long, value_name = "VERSION|TIMESTAMP", value_parser = snapshot::parse_as_of)]
    pub as_of: Option<AsOf>,
}

fn open(common: &Common, cache: &CacheArgs, time_travel: &TimeTravel) -> anyhow::Result<Session> {
    let lake = Lake::open(&common.lake).map_err(|e| anyhow!(e))?;
    let mirror_dir = match &common.mirror_dir {
        Some(dir) => dir.clone(),
        None => cache.dir()?.join("mirror"),
    };
    tracing::debug!(settings = %common.lake.masked(), mirror_dir = %mirror_dir.display(), "opening the lake");
    let options = Options {
        httpfs_extension: common.httpfs_extension.clone(),
        delta_extension: common.delta_extension.clone(),
        mirror: common.mirror,
        file_list: common.file_list,
        as_of: time_travel.as_of.unwrap_or(AsOf::Latest),
        program: "inspector",
        ..Options::new(mirror_dir)
    };
    Session::open(lake, &options)
}

/// For the commands that read the store without a DuckDB session: an S3
/// lake's bucket must exist, or the listing would just be empty.
pub(crate) async fn ensure_bucket(lake: &Lake) -> anyhow::Result<()> {
    if let lake::store::Location::S3 { bucket, .. } = &lake.location {
        let exists = lake.bucket_exists().await.map_err(|e| anyhow!(e))?;
        anyhow::ensure!(
            exists,
            "bucket {bucket:?} (LAKE_URL {}) does not exist at {}",
            lake.args.lake_url,
            lake.endpoint()
        );
    }
    Ok(())
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    let cache = &cli.cache;
    let secrets = cli.secret_values();
    match cli.command {
        Command::Shell {
            time_travel,
            common,
        } => {
            let mut session = open(&common, cache, &time_travel)?;
            drop(stdout); // the shell prints as it goes
            let history = cache.dir()?.join("inspector_history");
            shell::run(&mut session, &history)
        }
        Command::Query {
            sql,
            format,
            time_travel,
            common,
        } => {
            let session = open(&common, cache, &time_travel)?;
            let result = output::query(&session.conn, &sql)?;
            output::write(&result, format, &mut stdout)
        }
        Command::Status {
            format,
            kafka,
            common,
        } => {
            let session = open(&common, cache, &TimeTravel::default())?;
            let report = status::gather(&session, &kafka)?;
            match format {
                StatusFormat::Text => write!(stdout, "{}", report.text())?,
                StatusFormat::Json => {
                    writeln!(stdout, "{}", serde_json::to_string_pretty(&report.json())?)?
                }
            }
            stdout.flush().context("cannot write the report")
        }
        Command::Serve {
            serve,
            kafka,
            common,
        } => {
            drop(stdout); // serve prints its URL, then runs until stopped
            serve::run(&serve, &kafka, &secrets, || {
                open(&common, cache, &TimeTravel::default())
            })
        }
        Command::InitSql {
            with_secrets,
            time_travel,
            common,
        } => {
            let session = open(&common, cache, &time_travel)?;
            write!(stdout, "{}", session.init_sql(with_secrets))?;
            stdout.flush().context("cannot write the SQL")
        }
        Command::History {
            table,
            limit,
            format,
            lake,
        } => {
            let lake = Lake::open(&lake).map_err(|e| anyhow!(e))?;
            let commits = history::history(&lake, &table, limit as usize)?;
            output::write(&commits, format, &mut stdout)
        }
        Command::Redrives {
            table,
            format,
            lake,
        } => {
            let lake = Lake::open(&lake).map_err(|e| anyhow!(e))?;
            let listed = redrives::redrives(&lake, table.as_deref())?;
            redrives::write(&listed, format, &mut stdout)
        }
    }
}
