//! The refiner: keeps the silver and gold layers of the lake up to date
//! from SQL models (docs/DESIGN.md §13). A model is a DuckDB SELECT in
//! `models/silver/<name>.sql` or `models/gold/<name>.sql` with a short header
//! ([`model`]); each becomes a Delta table `silver/<name>/` or `gold/<name>/`
//! that [`refine`] brings up to date with its inputs, recomputing only the
//! time buckets new input touches, in one Delta commit per model that
//! records the input versions it reflects, so a crash at any instant is
//! repaired by the next run. It links DuckDB and the Delta library, not
//! Kafka: it reads only what bronze committed.

pub mod config;
pub mod model;
pub mod refine;

use std::time::{Duration, Instant};

use tracing::{error, info, warn};

use crate::config::Args;
use crate::refine::Refiner;

/// Runs the refiner: checks the models, then rounds until `--once` has
/// caught up (or forever). Fails when a model failed in a `--once` run, after
/// the others ran.
pub fn run(args: Args) -> anyhow::Result<()> {
    let lake = lake::Lake::open(&args.lake)?;
    if !args.once && !args.check {
        lake::metrics::serve(&args.metrics.metrics_addr, &lake).map_err(anyhow::Error::msg)?;
    }
    let mut options = lakedb::session::Options::new(args.scratch_dir().join("mirror"));
    options.httpfs_extension = args.httpfs_extension.clone();
    // Every view is the snapshot of one known version: the versions a
    // commit records are exactly the versions it read.
    options.file_list = true;
    let session = lakedb::session::Session::open(lake, &options)?;
    let (mut refiner, problems) = Refiner::new(
        session,
        &args.models,
        &args.models_only,
        args.scratch_dir().join("work"),
    )?;
    for problem in &problems {
        if problem.waiting {
            warn!("{problem}");
        } else {
            error!("{problem}");
        }
    }
    info!(
        models = %refiner.models.iter().map(|m| m.output.to_string()).collect::<Vec<_>>().join(", "),
        broken = problems.iter().filter(|p| !p.waiting).count(),
        waiting = problems.iter().filter(|p| p.waiting).count(),
        "models loaded"
    );
    if args.check {
        let broken = problems.iter().filter(|p| !p.waiting).count();
        anyhow::ensure!(broken == 0, "{broken} model(s) cannot run");
        return Ok(());
    }
    let mut full_refresh = args.full_refresh;
    lake::metrics::health().ready(lake::metrics::STARTING);
    loop {
        lake::metrics::health().beat();
        let started = Instant::now();
        for model in &refiner.models {
            lake::metrics::metrics().refining(&model.output.to_string());
        }
        let results = refiner.round(full_refresh);
        full_refresh = false;
        count_runs(&results);
        let failed: Vec<String> = results
            .iter()
            .filter_map(|(model, result)| result.as_ref().err().map(|e| format!("{model}: {e:#}")))
            .collect();
        for failure in &failed {
            error!("{failure}");
        }
        if args.once {
            anyhow::ensure!(
                failed.is_empty(),
                "{} model(s) failed: {}",
                failed.len(),
                failed.join("; ")
            );
            return Ok(());
        }
        let spent = started.elapsed();
        lake::metrics::health().beat();
        std::thread::sleep(
            args.interval
                .saturating_sub(spent)
                .max(Duration::from_millis(100)),
        );
    }
}

/// The metrics of one round: each model's run and the rows it wrote.
fn count_runs(results: &[(model::TableRef, anyhow::Result<refine::Report>)]) {
    let metrics = lake::metrics::metrics();
    for (model, result) in results {
        let name = model.to_string();
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        metrics
            .model_runs
            .with_label_values(&[name.as_str(), outcome])
            .inc();
        if let Ok(report) = result {
            metrics
                .model_rows_written
                .with_label_values(&[name.as_str()])
                .inc_by(report.rows_written);
        }
    }
}
