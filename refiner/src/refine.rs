//! One refiner round (docs/DESIGN.md §13): every model in dependency order,
//! each brought up to date with its inputs in one Delta commit.
//!
//! A model's progress is in its own Delta log: one `txn` per input
//! (`appId` = the input's name, `version` = the input's Delta version its
//! rows reflect), committed with the data, so a replay after `kill -9` at
//! any instant redoes only uncommitted work and a second refiner's commit
//! conflicts instead of doubling anything. A run:
//!
//! 1. reads each input's snapshot (the session's views are pinned to one
//!    version per table) and the files its commits added since the version
//!    in the model's log;
//! 2. runs the model over those new rows alone (the other inputs whole) to
//!    find the time buckets they touch; a bucket further behind the newest
//!    bucket of the model's table than the lookback is late: it is counted
//!    and left as it is;
//! 3. recomputes the touched buckets over the whole inputs, deduplicated on
//!    `unique_key`, keeps the other buckets of the same date partitions as
//!    they are, writes the partitions' new files, and commits them in place
//!    of the old ones with the inputs' versions.
//!
//! A model without a table, without progress for an input, materialized as
//! `table`, or refreshed with `--full-refresh` is recomputed whole.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use arrow::datatypes::Schema;
use delta::{AsOf, DataFile, Replaced};
use lake::Lake;
use lakedb::session::Session;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::file::metadata::ParquetMetaDataReader;
use serde_json::json;
use tracing::{info, warn};

use crate::model::{ContractInfo, Materialized, Model, ModelError, TableRef, POSITION_COLUMNS};

/// What one run of a model did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// The model's new Delta version; `None` when it was up to date.
    pub version: Option<u64>,
    /// Input name and the version now reflected.
    pub inputs: Vec<(String, u64)>,
    pub full: bool,
    pub buckets: u64,
    pub partitions: u64,
    pub rows_written: u64,
    /// Rows of new input whose bucket was beyond the lookback.
    pub late_rows: u64,
    /// Why the model did not run: an input table does not exist yet.
    pub waiting: Option<String>,
}

/// Whether a model can run now.
enum Check {
    Ready,
    Waiting(String),
    Broken(String),
}

pub struct Refiner {
    pub session: Session,
    pub models: Vec<Model>,
    /// Models that cannot run, with why (one line).
    pub broken: BTreeMap<TableRef, String>,
    /// Models whose inputs exist and whose SQL compiled.
    checked: BTreeSet<TableRef>,
    /// The tables whose contracts were seen: a contract stored later (the
    /// consumer started after the refiner) adds its default silver model.
    contracts: BTreeSet<String>,
    /// `--model`: run only these.
    only: Vec<String>,
    /// Local directory for the files DuckDB writes before they are uploaded.
    scratch: PathBuf,
    /// Late rows counted by this process, per model.
    pub late_rows: BTreeMap<TableRef, u64>,
}

impl Refiner {
    /// Loads the models of `dir` (and the default silver model of every
    /// contract in the lake) and checks each against the lake: its inputs
    /// exist and its SQL compiles. The problems are returned, one line each;
    /// the models without problems run, and a model waiting for an input
    /// table runs once the table exists.
    pub fn new(
        mut session: Session,
        dir: &Path,
        only: &[String],
        scratch: PathBuf,
    ) -> anyhow::Result<(Refiner, Vec<ModelError>)> {
        session.refresh()?;
        let contracts = contracts(&session, &BTreeSet::new())?;
        let (mut models, mut errors) = crate::model::load(dir, &contracts);
        if !only.is_empty() {
            let unknown: Vec<&str> = only
                .iter()
                .filter(|name| !models.iter().any(|m| &m.output.to_string() == *name))
                .map(String::as_str)
                .collect();
            if !unknown.is_empty() {
                let known: Vec<String> = models.iter().map(|m| m.output.to_string()).collect();
                bail!(
                    "--model {}: no such model (models: {})",
                    unknown.join(", "),
                    known.join(", ")
                );
            }
            models.retain(|m| only.contains(&m.output.to_string()));
        }
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("cannot create {}", scratch.display()))?;
        let mut refiner = Refiner {
            session,
            contracts: contracts.iter().map(|c| c.table.clone()).collect(),
            only: only.to_vec(),
            models,
            broken: BTreeMap::new(),
            checked: BTreeSet::new(),
            scratch,
            late_rows: BTreeMap::new(),
        };
        refiner.execute("CREATE SCHEMA IF NOT EXISTS __changes")?;
        for index in 0..refiner.models.len() {
            let model = refiner.models[index].clone();
            match refiner.check(&model) {
                Check::Ready => {}
                Check::Waiting(message) => errors.push(ModelError {
                    origin: model.origin.clone(),
                    message,
                    waiting: true,
                }),
                Check::Broken(message) => errors.push(ModelError {
                    origin: model.origin.clone(),
                    message,
                    waiting: false,
                }),
            }
        }
        Ok((refiner, errors))
    }

    /// Whether `model` can run: its inputs are tables of the lake or models
    /// that run before it, and its SQL compiles to a table with its time
    /// column (and key). A model without a table yet gets a typed view with
    /// no rows, so the models after it can be checked too. A broken model
    /// stays broken; a waiting one is checked again next round.
    fn check(&mut self, model: &Model) -> Check {
        if let Some(why) = self.broken.get(&model.output) {
            return Check::Broken(why.clone());
        }
        if self.checked.contains(&model.output) {
            return Check::Ready;
        }
        for input in &model.inputs {
            if self.broken.contains_key(input) {
                return Check::Waiting(format!("it reads {input}, which cannot run"));
            }
            // A model that runs before this one has a view (a typed
            // placeholder until its first commit).
            if !self.session.has_view(&input.name, input.layer) && !self.checked.contains(input) {
                return Check::Waiting(format!(
                    "unknown input table {input} (the model runs once it exists)"
                ));
            }
        }
        match self.check_sql(model) {
            Ok(()) => {
                self.checked.insert(model.output.clone());
                Check::Ready
            }
            Err(message) => {
                self.broken.insert(model.output.clone(), message.clone());
                Check::Broken(message)
            }
        }
    }

    fn check_sql(&self, model: &Model) -> Result<(), String> {
        let columns = self
            .describe(&model.sql)
            .map_err(|e| format!("the SQL does not compile: {}", one_line(&e)))?;
        let type_of = |name: &str| columns.iter().find(|(c, _)| c == name).map(|(_, t)| t);
        let time_column = &model.header.time_column;
        match type_of(time_column) {
            None => {
                return Err(format!(
                    "time_column `{time_column}` is not a column of its result"
                ))
            }
            Some(t) if !(t.starts_with("TIMESTAMP") || t == "DATE") => {
                return Err(format!(
                    "time_column `{time_column}` is {t}, not a TIMESTAMP or DATE"
                ))
            }
            Some(_) => {}
        }
        if let Some(key) = &model.header.unique_key {
            if type_of(key).is_none() {
                return Err(format!("unique_key `{key}` is not a column of its result"));
            }
        }
        if !self
            .session
            .has_view(&model.output.name, model.output.layer)
        {
            let sql = self
                .output_sql(model, &model.sql)
                .map_err(|e| format!("the SQL does not compile: {}", one_line(&e)))?;
            self.execute(&format!(
                "CREATE OR REPLACE VIEW {} AS SELECT * FROM ({sql}) LIMIT 0",
                model.output
            ))
            .map_err(|e| format!("the SQL does not compile: {}", one_line(&e)))?;
        }
        Ok(())
    }

    /// Runs every model that can run, in order; the result of each.
    pub fn round(&mut self, full_refresh: bool) -> Vec<(TableRef, anyhow::Result<Report>)> {
        let mut results = Vec::new();
        if let Err(e) = self.session.refresh() {
            let e = e.context("reading the lake's Delta logs");
            return vec![(TableRef::new(lakedb::views::Layer::Silver, "*"), Err(e))];
        }
        if let Err(e) = self.add_new_contracts() {
            warn!(error = %e, "reading the lake's contracts");
        }
        for index in 0..self.models.len() {
            let model = self.models[index].clone();
            let outcome = match self.check(&model) {
                Check::Ready => self.run(&model, full_refresh),
                Check::Waiting(why) => Ok(Report {
                    waiting: Some(why),
                    ..Report::default()
                }),
                Check::Broken(why) => Err(anyhow!("{why}")),
            };
            // The next models read what this one committed.
            if let Err(e) = self.session.refresh() {
                warn!(error = %e, "reading the lake's Delta logs again");
            }
            self.write_status(&model, &outcome);
            results.push((model.output.clone(), outcome));
        }
        results
    }

    /// The default silver model of every contract stored since the last
    /// look, unless a model of that name exists. They read bronze only, so
    /// they run first.
    fn add_new_contracts(&mut self) -> anyhow::Result<()> {
        for contract in contracts(&self.session, &self.contracts)? {
            if !self.contracts.insert(contract.table.clone()) {
                continue;
            }
            let model = crate::model::default_silver(&contract);
            let wanted = self.only.is_empty() || self.only.contains(&model.output.to_string());
            if wanted && !self.models.iter().any(|m| m.output == model.output) {
                info!(model = %model.output, "a new contract: its default silver model runs from now on");
                self.models.insert(0, model);
            }
        }
        Ok(())
    }

    /// One model, brought up to date with its inputs.
    pub fn run(&mut self, model: &Model, full_refresh: bool) -> anyhow::Result<Report> {
        let lake = self.session.lake.clone();
        let mut inputs = Vec::new();
        for input in &model.inputs {
            let Some(version) = self.session.version(&input.name, input.layer) else {
                return Ok(Report {
                    waiting: Some(format!("its input {input} has no Delta table yet")),
                    ..Report::default()
                });
            };
            inputs.push((input.clone(), version));
        }
        let prefix = model.output.prefix();
        let mut existing =
            self.session
                .block_on(delta::Table::open(&lake, &prefix, AsOf::Latest))?;
        let mut progress = Vec::new();
        if let Some(table) = existing.as_mut() {
            for (input, _) in &inputs {
                progress.push(
                    self.session
                        .block_on(table.committed_through(&input.to_string()))?,
                );
            }
        }
        let mut report = Report {
            inputs: inputs.iter().map(|(i, v)| (i.to_string(), *v)).collect(),
            ..Report::default()
        };
        // Versions 0..=v of an input, of which 0..=p are reflected.
        let behind: i64 = inputs
            .iter()
            .enumerate()
            .map(|(i, (_, v))| *v as i64 - progress.get(i).copied().flatten().unwrap_or(-1))
            .sum();
        let lag = lake::metrics::metrics()
            .model_version_lag
            .with_label_values(&[model.output.to_string().as_str()]);
        lag.set(behind.max(0));
        let caught_up = existing.is_some()
            && progress
                .iter()
                .zip(&inputs)
                .all(|(p, (_, v))| *p == Some(*v as i64));
        if caught_up && !full_refresh {
            return Ok(report);
        }
        report.full = full_refresh
            || existing.is_none()
            || progress.iter().any(Option::is_none)
            || model.header.materialized == Materialized::Table;

        let bucket = bucket_expr(model, &model.header.time_column);
        let output_sql = self.output_sql(model, &model.sql)?;
        let content = if report.full {
            output_sql.clone()
        } else {
            let late = self.touched_buckets(model, &inputs, &progress)?;
            report.late_rows = late;
            report.buckets = self.count("SELECT count(*) FROM __buckets")?;
            format!(
                "SELECT * FROM {view} \
                 WHERE {partition} IN (SELECT DISTINCT CAST(b AS DATE) FROM __buckets) \
                 AND {bucket} NOT IN (SELECT b FROM __buckets) \
                 UNION ALL BY NAME \
                 SELECT * FROM ({output_sql}) WHERE {bucket} IN (SELECT b FROM __buckets)",
                view = model.output,
                partition = delta::PARTITION,
            )
        };
        if report.late_rows > 0 {
            *self.late_rows.entry(model.output.clone()).or_default() += report.late_rows;
            warn!(model = %model.output, late_rows = report.late_rows, lookback_s = model.header.lookback_seconds,
                "new rows beyond the lookback: left out of their buckets");
        }
        let replaced: BTreeSet<Option<String>> = if report.full {
            let mut all = BTreeSet::new();
            if let Some(table) = &existing {
                for file in self.session.block_on(table.files())? {
                    all.insert(file.event_date);
                }
            }
            all
        } else {
            self.strings("SELECT DISTINCT strftime(CAST(b AS DATE), '%Y-%m-%d') FROM __buckets")?
                .into_iter()
                .map(Some)
                .collect()
        };

        let attempt = format!("{:012x}", rand_u64() & 0xffff_ffff_ffff);
        let tag = inputs
            .iter()
            .map(|(_, v)| format!("v{v}"))
            .collect::<Vec<_>>()
            .join("-");
        let (schema, written) = self.write(&content, &prefix, &format!("{tag}-{attempt}"))?;
        let mut replaced = replaced;
        replaced.extend(written.iter().map(|f| f.event_date.clone()));
        report.partitions = replaced.len() as u64;
        report.rows_written = written.iter().map(|f| f.rows).sum();

        let mut table = match existing {
            Some(table) => table,
            None => self
                .session
                .block_on(delta::Table::open_or_create(&lake, &prefix, &schema))?,
        };
        let txns: Vec<(String, i64)> = inputs
            .iter()
            .map(|(i, v)| (i.to_string(), *v as i64))
            .collect();
        match self
            .session
            .block_on(table.replace(&txns, &replaced, &written, !full_refresh))?
        {
            Replaced::Version(version) => {
                report.version = Some(version);
                lag.set(0);
            }
            Replaced::Already => {
                self.delete(&prefix, &written);
            }
            Replaced::Conflict(why) => {
                self.delete(&prefix, &written);
                bail!(
                    "another writer changed {} meanwhile ({why}); the next round plans again",
                    model.output
                );
            }
        }
        info!(
            model = %model.output,
            version = report.version,
            inputs = %report.inputs.iter().map(|(i, v)| format!("{i}@{v}")).collect::<Vec<_>>().join(","),
            full = report.full,
            buckets = report.buckets,
            partitions = report.partitions,
            rows_written = report.rows_written,
            late_rows = report.late_rows,
            "model refreshed"
        );
        Ok(report)
    }

    /// Fills the temporary table `__buckets(b)` with the buckets the new
    /// rows of each input touch, minus those beyond the lookback; returns the
    /// number of new output rows in the latter.
    fn touched_buckets(
        &self,
        model: &Model,
        inputs: &[(TableRef, u64)],
        progress: &[Option<i64>],
    ) -> anyhow::Result<u64> {
        let bucket = bucket_expr(model, &model.header.time_column);
        let mut parts = Vec::new();
        for ((input, version), done) in inputs.iter().zip(progress) {
            let done = done.expect("an incremental run has progress for every input") as u64;
            if done >= *version {
                continue;
            }
            let table = self
                .session
                .block_on(delta::Table::open(
                    &self.session.lake,
                    &input.prefix(),
                    AsOf::Version(*version),
                ))?
                .ok_or_else(|| anyhow!("its input {input} has no Delta table"))?;
            let files = self.session.block_on(table.added_since(done))?;
            if files.is_empty() {
                continue;
            }
            let view = format!("__changes.{}__{}", input.layer.schema(), input.name);
            self.session
                .define_files_view(&view, input.layer, &input.name, *version, &files)?;
            let sql = crate::model::rename_input(&model.sql, input, &view);
            parts.push(format!("SELECT {bucket} AS b FROM ({sql}) AS __m"));
        }
        let new_rows = if parts.is_empty() {
            "SELECT CAST(NULL AS TIMESTAMP) AS b WHERE false".to_string()
        } else {
            parts.join(" UNION ALL ")
        };
        self.execute(&format!(
            "CREATE OR REPLACE TEMP TABLE __new_rows AS {new_rows}"
        ))?;
        // The newest bucket the table holds; a new row further behind it
        // than the lookback is late.
        let limit = format!(
            "(SELECT max({bucket}) - INTERVAL '{} seconds' FROM {})",
            model.header.lookback_seconds, model.output
        );
        let late = self.count(&format!(
            "SELECT count(*) FROM __new_rows WHERE b < coalesce({limit}, b)"
        ))?;
        self.execute(&format!(
            "CREATE OR REPLACE TEMP TABLE __buckets AS \
             SELECT DISTINCT b FROM __new_rows WHERE b IS NOT NULL AND b >= coalesce({limit}, b)"
        ))?;
        Ok(late)
    }

    /// The model's rows as they are stored: deduplicated on `unique_key`
    /// (the first copy by time, then source position), `event_date` the UTC
    /// date of the time column's bucket, HUGEINT sums as BIGINT.
    fn output_sql(&self, model: &Model, sql: &str) -> anyhow::Result<String> {
        let columns = self.describe(sql)?;
        let has = |name: &str| columns.iter().any(|(c, _)| c == name);
        let mut replace: Vec<String> = columns
            .iter()
            .filter(|(_, t)| t == "HUGEINT" || t == "UHUGEINT")
            .map(|(c, _)| format!("CAST({} AS BIGINT) AS {}", quote(c), quote(c)))
            .collect();
        let bucket = bucket_expr(model, &model.header.time_column);
        let partition = delta::PARTITION;
        let mut select = String::from("SELECT *");
        if has(partition) {
            replace.push(format!("CAST({bucket} AS DATE) AS {partition}"));
        }
        if !replace.is_empty() {
            select.push_str(&format!(" REPLACE ({})", replace.join(", ")));
        }
        if !has(partition) {
            select.push_str(&format!(", CAST({bucket} AS DATE) AS {partition}"));
        }
        let mut out = format!("{select} FROM ({sql}) AS __model");
        if let Some(key) = &model.header.unique_key {
            let mut order = vec![quote(&model.header.time_column)];
            order.extend(POSITION_COLUMNS.iter().filter(|c| has(c)).map(|c| quote(c)));
            out.push_str(&format!(
                " QUALIFY row_number() OVER (PARTITION BY {} ORDER BY {}) = 1",
                quote(key),
                order.join(", ")
            ));
        }
        Ok(out)
    }

    /// Writes `content` as zstd Parquet, one file per date partition, under
    /// the table's root; the Arrow schema and the files.
    fn write(
        &self,
        content: &str,
        prefix: &str,
        name: &str,
    ) -> anyhow::Result<(Arc<Schema>, Vec<DataFile>)> {
        let local = self.scratch.join(name);
        let _ = std::fs::remove_dir_all(&local);
        let schema = self
            .session
            .conn
            .prepare(&format!("SELECT * FROM ({content}) LIMIT 0"))?
            .query_arrow([])?
            .get_schema();
        self.execute(&format!(
            "COPY ({content}) TO {} (FORMAT parquet, COMPRESSION zstd, PARTITION_BY ({}), \
             FILENAME_PATTERN '{name}-{{i}}', OVERWRITE_OR_IGNORE true)",
            lakedb::views::literal(&local.display().to_string()),
            delta::PARTITION
        ))?;
        let mut files = Vec::new();
        if local.is_dir() {
            for dir in std::fs::read_dir(&local)? {
                let dir = dir?.path();
                let Some(date) = dir
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_prefix(&format!("{}=", delta::PARTITION)))
                    .map(str::to_string)
                else {
                    continue;
                };
                for file in std::fs::read_dir(&dir)? {
                    let file = file?.path();
                    let bytes = bytes::Bytes::from(std::fs::read(&file)?);
                    // The row count from the file's own footer.
                    let rows = ParquetMetaDataReader::new()
                        .parse_and_finish(&bytes)
                        .with_context(|| format!("reading the footer of {}", file.display()))?
                        .file_metadata()
                        .num_rows() as u64;
                    let path = format!(
                        "{}={date}/{}",
                        delta::PARTITION,
                        file.file_name()
                            .and_then(|n| n.to_str())
                            .unwrap_or("part.parquet")
                    );
                    let size = bytes.len() as i64;
                    let key = format!("{prefix}/{path}");
                    self.session
                        .block_on(
                            self.session
                                .lake
                                .store
                                .put(&Lake::path(&key), PutPayload::from(bytes)),
                        )
                        .with_context(|| {
                            format!("cannot write {}", self.session.lake.url_of(&key))
                        })?;
                    files.push(DataFile {
                        path,
                        event_date: Some(date.clone()),
                        size,
                        rows,
                    });
                }
            }
        }
        let _ = std::fs::remove_dir_all(&local);
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok((schema, files))
    }

    /// Removes files a commit did not take (best effort: vacuum removes
    /// what is left).
    fn delete(&self, prefix: &str, files: &[DataFile]) {
        for file in files {
            let key = format!("{prefix}/{}", file.path);
            let _ = self
                .session
                .block_on(self.session.lake.store.delete(&Lake::path(&key)));
        }
    }

    /// `_checkpoints/_refiner/<model>.json`: what the model reflects and its
    /// last error, for `inspector status` and people; never read back for
    /// correctness (the model's Delta log is the truth).
    fn write_status(&self, model: &Model, outcome: &anyhow::Result<Report>) {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut status = json!({
            "model": model.output.to_string(),
            "origin": model.origin,
            "updated_at": now,
            "late_rows_since_start": self.late_rows.get(&model.output).copied().unwrap_or(0),
        });
        match outcome {
            Ok(report) => {
                status["version"] =
                    json!(self.session.version(&model.output.name, model.output.layer));
                status["inputs"] = json!(report
                    .inputs
                    .iter()
                    .map(|(i, v)| (i.clone(), *v))
                    .collect::<BTreeMap<_, _>>());
                status["error"] = serde_json::Value::Null;
                status["waiting"] = json!(report.waiting);
            }
            Err(e) => status["error"] = json!(one_line(e)),
        }
        let key = lake::layout::refiner_status_key(&model.output.to_string());
        let bytes = serde_json::to_vec_pretty(&status).unwrap_or_default();
        if let Err(e) = self.session.block_on(
            self.session
                .lake
                .store
                .put(&Lake::path(&key), PutPayload::from(bytes)),
        ) {
            warn!(key, error = %e, "cannot write the model's status");
        }
    }

    fn describe(&self, sql: &str) -> anyhow::Result<Vec<(String, String)>> {
        let mut statement = self.session.conn.prepare(&format!("DESCRIBE {sql}"))?;
        let rows = statement.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn execute(&self, sql: &str) -> anyhow::Result<()> {
        self.session
            .conn
            .execute_batch(sql)
            .with_context(|| one_line_sql(sql))
    }

    fn count(&self, sql: &str) -> anyhow::Result<u64> {
        let n: i64 = self
            .session
            .conn
            .query_row(sql, [], |row| row.get(0))
            .with_context(|| one_line_sql(sql))?;
        Ok(n as u64)
    }

    fn strings(&self, sql: &str) -> anyhow::Result<Vec<String>> {
        let mut statement = self.session.conn.prepare(sql)?;
        let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// The contracts of the lake's tables not in `known` (their newest stored
/// version), for the default silver models.
fn contracts(session: &Session, known: &BTreeSet<String>) -> anyhow::Result<Vec<ContractInfo>> {
    let lake = &session.lake;
    let tables = session.block_on(lakedb::tables::discover(lake))?;
    let mut found = Vec::new();
    for (_, key) in tables.into_iter().filter(|(t, _)| !known.contains(t)) {
        let Some(key) = key else { continue };
        match session.block_on(lakedb::tables::read_contract(lake, &key))? {
            Ok(contract) => found.push(ContractInfo {
                table: contract.table.table.clone(),
                event_time: contract.table.event_time.clone(),
                key: contract.table.key.clone(),
            }),
            Err(why) => warn!(key, "no default silver model: {why}"),
        }
    }
    Ok(found)
}

/// The bucket of a row: its time column, as a UTC TIMESTAMP, floored to the
/// model's bucket.
fn bucket_expr(model: &Model, column: &str) -> String {
    format!(
        "time_bucket(INTERVAL '{} seconds', CAST({} AS TIMESTAMP))",
        model.header.bucket_seconds,
        quote(column)
    )
}

fn quote(name: &str) -> String {
    lakedb::views::identifier(name)
}

fn one_line(e: &anyhow::Error) -> String {
    lakedb::session::first_line(&format!("{e:#}"))
}

fn one_line_sql(sql: &str) -> String {
    let sql: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let short: String = sql.chars().take(160).collect();
    format!("running {short}")
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}
