//! The refiner's command line and environment.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use lake::config::{parse_duration, FromEnvironment};
use lake::LakeArgs;

#[derive(Parser, Debug)]
#[command(
    name = "refiner",
    version,
    about = "Keep silver.<model> and gold.<model> up to date from the SQL models, incrementally and exactly once."
)]
pub struct Args {
    #[command(flatten)]
    pub lake: LakeArgs,
    #[command(flatten)]
    pub metrics: lake::metrics::MetricsArgs,
    /// Catch up with what bronze committed, then exit.
    #[arg(long)]
    pub once: bool,
    /// Check every model (header, inputs, SQL) against the lake and exit:
    /// status 0 if every model can run.
    #[arg(long)]
    pub check: bool,
    /// The models: models/silver/*.sql and models/gold/*.sql.
    #[arg(long, env = "MODELS_DIR", default_value = "models")]
    pub models: PathBuf,
    /// Run only these models (e.g. gold.funnel_daily); repeatable.
    #[arg(long = "model", value_name = "LAYER.NAME")]
    pub models_only: Vec<String>,
    /// Recompute every model whole in the first round (after a model's SQL
    /// changed, or to apply events that arrived beyond the lookback).
    #[arg(long)]
    pub full_refresh: bool,
    /// How often to look for new input.
    #[arg(long, env = "REFINE_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub interval: Duration,
    /// A local httpfs.duckdb_extension for an s3:// lake.
    #[arg(long, env = "DUCKDB_HTTPFS_EXTENSION", value_name = "PATH")]
    pub httpfs_extension: Option<PathBuf>,
    /// Local scratch space: files before upload, mirrors of an s3:// lake
    /// when httpfs cannot load. [default: the system temporary directory]
    #[arg(long, env = "REFINER_SCRATCH_DIR", value_name = "DIR")]
    pub scratch: Option<PathBuf>,
}

impl Args {
    pub fn scratch_dir(&self) -> PathBuf {
        self.scratch.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("lakehouse-refiner-{}", std::process::id()))
        })
    }
}

impl FromEnvironment for Args {
    fn read_environment(&mut self, vars: &[(String, String)]) {
        self.lake.read_environment(vars);
    }
}
