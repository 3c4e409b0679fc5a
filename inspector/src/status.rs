//! `inspector status`: per table, where each source's checkpoint stands, how
//! many rows the views hold (counted through them, so only committed files),
//! which version of its Delta table each view reads, and why records were
//! dead-lettered; the same rows and versions for the silver and gold tables;
//! and how far the consumer lags behind Kafka. Kafka being unreachable is
//! reported, not fatal: the lake can be inspected without a broker.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::TryStreamExt;
use kafka_client::SilentContext;
use lake::checkpoint::{self, Checkpoint};
use lake::config::KafkaArgs;
use lake::layout::{checkpoints_prefix, SourceId, CHECKPOINTS, EVENTS};
use lake::position::{Position, Range};
use lake::Lake;
use object_store::{ObjectMeta, ObjectStoreExt};
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::json;

use lakedb::session::Session;
use lakedb::tables::is_table_name;
use lakedb::views::Layer;

/// How long the brokers get to answer, in total.
const KAFKA_DEADLINE: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFormat {
    Text,
    Json,
}

/// Checkpoint key → the checkpoint, or why it cannot be read.
type Checkpoints = Vec<(String, Result<Checkpoint, String>)>;

pub struct Report {
    lake: String,
    /// Every table of the lake or of its checkpoints, by name.
    tables: BTreeMap<String, TableReport>,
    /// The silver and gold views: (view, rows, version).
    models: Vec<(String, i64, Option<u64>)>,
    /// What the refiner last wrote about each model, by view.
    refiner: BTreeMap<String, ModelStatus>,
    lag: Result<Vec<PartitionLag>, String>,
    brokers: String,
}

#[derive(Default)]
pub struct TableReport {
    /// Those under `_checkpoints/<table>/`, by key.
    checkpoints: Checkpoints,
    /// View → rows; 0 for a view that does not exist (it has no files).
    counts: Vec<(String, i64)>,
    /// View → the version of its Delta table; `None`: no log yet.
    versions: Vec<(String, Option<u64>)>,
    error_codes: Vec<(String, i64)>,
}

/// A model as the refiner last reported it (`_checkpoints/_refiner/<view>.json`).
pub struct ModelStatus {
    /// Input view, the version the model's table reflects, the version the
    /// input is at now.
    inputs: Vec<(String, u64, Option<u64>)>,
    error: Option<String>,
    waiting: Option<String>,
    late_rows: u64,
    updated_at: String,
}

impl ModelStatus {
    /// `inputs bronze.events v12 (lag 0)`, then the error or why it waits.
    fn text(&self) -> String {
        let inputs: Vec<String> = self
            .inputs
            .iter()
            .map(|(input, reflected, now)| match now {
                Some(now) => format!(
                    "{input} v{reflected} (lag {})",
                    now.saturating_sub(*reflected)
                ),
                None => format!("{input} v{reflected}"),
            })
            .collect();
        let mut text = if inputs.is_empty() {
            String::new()
        } else {
            format!("inputs {}", inputs.join(", "))
        };
        if self.late_rows > 0 {
            text.push_str(&format!("; {} late rows", self.late_rows));
        }
        if let Some(error) = &self.error {
            text.push_str(&format!("; error: {error}"));
        } else if let Some(waiting) = &self.waiting {
            text.push_str(&format!("; waiting: {waiting}"));
        }
        text.trim_start_matches("; ").to_string()
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "inputs": self.inputs.iter().map(|(input, reflected, now)| (input.clone(), json!({
                "version": reflected,
                "input_version": now,
                "lag": now.map(|n| n.saturating_sub(*reflected)),
            }))).collect::<serde_json::Map<_, _>>(),
            "error": self.error,
            "waiting": self.waiting,
            "late_rows_since_start": self.late_rows,
            "updated_at": self.updated_at,
        })
    }
}

pub struct PartitionLag {
    topic: String,
    partition: i32,
    /// From the checkpoint; `None`: nothing committed yet (lag counts from the low watermark).
    next_offset: Option<i64>,
    low: i64,
    high: i64,
}

impl PartitionLag {
    fn lag(&self) -> i64 {
        (self.high - self.next_offset.unwrap_or(self.low).max(self.low)).max(0)
    }
}

pub fn gather(session: &Session, kafka: &KafkaArgs) -> anyhow::Result<Report> {
    let checkpoints = session.block_on(read_checkpoints(&session.lake))?;
    let readable: Vec<&Checkpoint> = checkpoints
        .values()
        .flatten()
        .filter_map(|(_, c)| c.as_ref().ok())
        .collect();
    let lag = if !readable.is_empty()
        && readable
            .iter()
            .all(|c| matches!(c.source, SourceId::Files { .. }))
    {
        Err("no Kafka checkpoints: the lake is fed by the files source".to_string())
    } else {
        kafka_lag(kafka, &readable)
    };
    let mut tables: BTreeMap<String, TableReport> = session
        .tables()
        .map(|t| (t.to_string(), TableReport::default()))
        .collect();
    for (table, checkpoints) in checkpoints {
        tables.entry(table).or_default().checkpoints = checkpoints;
    }
    for (table, report) in &mut tables {
        for layer in Layer::ALL {
            let view = layer.view(table);
            report
                .versions
                .push((view.clone(), session.version(table, layer)));
            report.counts.push((view, count(session, table, layer)?));
        }
        if session.is_readable(table, Layer::DeadLetters) {
            report.error_codes = error_codes(session, &Layer::DeadLetters.view(table))?;
        }
    }
    let mut models = Vec::new();
    for layer in Layer::MODELS {
        for model in session.models(layer) {
            let rows = count(session, model, layer)?;
            models.push((layer.view(model), rows, session.version(model, layer)));
        }
    }
    let refiner = session.block_on(read_model_status(session))?;
    Ok(Report {
        lake: session.describe_access(),
        tables,
        models,
        refiner,
        lag,
        brokers: kafka.kafka_bootstrap_servers.clone(),
    })
}

/// The rows of the view of `table` in `layer`; 0 for a view that does not
/// exist (nothing to type it with yet).
fn count(session: &Session, table: &str, layer: Layer) -> anyhow::Result<i64> {
    if !session.is_readable(table, layer) {
        return Ok(0);
    }
    let view = layer.view(table);
    session
        .conn
        .query_row(&format!("SELECT count(*) FROM {view}"), [], |row| {
            row.get(0)
        })
        .with_context(|| format!("cannot count {view}"))
}

/// The ten most frequent error codes of the dead-letter view `view`.
fn error_codes(session: &Session, view: &str) -> anyhow::Result<Vec<(String, i64)>> {
    let mut stmt = session.conn.prepare(&format!(
        "SELECT error_code, count(*) AS n FROM {view} \
         GROUP BY error_code ORDER BY n DESC, error_code LIMIT 10"
    ))?;
    let codes = stmt
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("cannot count {view} by error_code"))?;
    Ok(codes)
}

/// Every checkpoint of the lake, grouped by the table segment of its key
/// (`_checkpoints/<table>/...`); the consumer's probes are no table.
/// Every `_checkpoints/_refiner/<view>.json`, with each input's version now.
async fn read_model_status(session: &Session) -> anyhow::Result<BTreeMap<String, ModelStatus>> {
    let lake = &session.lake;
    let prefix = format!("{CHECKPOINTS}/_refiner");
    let listed: Vec<ObjectMeta> = lake
        .store
        .list(Some(&Lake::path(&prefix)))
        .try_collect()
        .await
        .with_context(|| format!("cannot list {}/", lake.url_of(&prefix)))?;
    let mut models = BTreeMap::new();
    for meta in listed {
        let Some(view) = meta
            .location
            .filename()
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        let bytes = lake.store.get(&meta.location).await?.bytes().await?;
        let Ok(status) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        let text = |field: &str| status[field].as_str().map(str::to_string);
        let inputs = status["inputs"]
            .as_object()
            .map(|inputs| {
                inputs
                    .iter()
                    .filter_map(|(input, version)| {
                        let now = Layer::parse_view(input)
                            .and_then(|(layer, table)| session.version(table, layer));
                        Some((input.clone(), version.as_u64()?, now))
                    })
                    .collect()
            })
            .unwrap_or_default();
        models.insert(
            view.to_string(),
            ModelStatus {
                inputs,
                error: text("error"),
                waiting: text("waiting"),
                late_rows: status["late_rows_since_start"].as_u64().unwrap_or(0),
                updated_at: text("updated_at").unwrap_or_default(),
            },
        );
    }
    Ok(models)
}

async fn read_checkpoints(lake: &Lake) -> anyhow::Result<BTreeMap<String, Checkpoints>> {
    let listed: Vec<ObjectMeta> = lake
        .store
        .list(Some(&Lake::path(CHECKPOINTS)))
        .try_collect()
        .await
        .with_context(|| {
            format!(
                "cannot list the checkpoints under {}/",
                lake.url_of(CHECKPOINTS)
            )
        })?;
    let mut checkpoints: BTreeMap<String, Checkpoints> = BTreeMap::new();
    for meta in listed {
        let key = meta.location.to_string();
        // Lock files and half-written temporaries of a local lake are not checkpoints.
        if !key.ends_with(".json") {
            continue;
        }
        // `_probes` is not a table name, nor is a file right under `_checkpoints/`.
        let Some(table) = key.split('/').nth(1).filter(|t| is_table_name(t)) else {
            continue;
        };
        let parsed = match lake.store.get(&meta.location).await {
            Ok(result) => match result.bytes().await {
                Ok(bytes) => checkpoint::parse(&key, &bytes).map_err(|e| e.to_string()),
                Err(e) => Err(format!("cannot read {}: {e}", lake.url_of(&key))),
            },
            Err(e) => Err(format!("cannot read {}: {e}", lake.url_of(&key))),
        };
        checkpoints
            .entry(table.to_string())
            .or_default()
            .push((key, parsed));
    }
    for list in checkpoints.values_mut() {
        list.sort_by(|a, b| a.0.cmp(&b.0));
    }
    Ok(checkpoints)
}

/// Watermarks of every partition of the configured topic and of the topics
/// checkpoints mention, within [`KAFKA_DEADLINE`] in total.
fn kafka_lag(kafka: &KafkaArgs, checkpoints: &[&Checkpoint]) -> Result<Vec<PartitionLag>, String> {
    let deadline = Instant::now() + KAFKA_DEADLINE;
    let left = || deadline.saturating_duration_since(Instant::now());
    let brokers = &kafka.kafka_bootstrap_servers;
    // Silent: librdkafka logs every failed connection attempt; the report
    // gives the outcome in one line instead.
    let consumer: BaseConsumer<SilentContext> = kafka_client::client_config(kafka, &[])
        .create_with_context(SilentContext)
        // A refused setting is quoted in the error, and the report is printed.
        .map_err(|e| {
            lake::config::redact(&format!("brokers {brokers}: {e}"), &kafka.secret_values())
        })?;
    let mut topics = vec![kafka.kafka_topic.clone()];
    for c in checkpoints {
        if let SourceId::Kafka { topic, .. } = &c.source {
            if !topics.contains(topic) {
                topics.push(topic.clone());
            }
        }
    }
    let mut lags = Vec::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic.as_str()), left())
            .map_err(|e| {
                format!(
                    "brokers {brokers} (KAFKA_BOOTSTRAP_SERVERS) gave no metadata within {}s: {e}",
                    KAFKA_DEADLINE.as_secs()
                )
            })?;
        for t in metadata.topics() {
            if let Some(error) = t.error() {
                return Err(format!("topic {topic} at {brokers}: {error:?}"));
            }
            for p in t.partitions() {
                let (low, high) =
                    consumer
                        .fetch_watermarks(&topic, p.id(), left())
                        .map_err(|e| {
                            format!(
                                "watermarks of {topic} partition {} at {brokers}: {e}",
                                p.id()
                            )
                        })?;
                let next_offset = checkpoints.iter().find_map(|c| match &c.source {
                    SourceId::Kafka {
                        topic: t,
                        partition,
                        ..
                    } if *t == topic && *partition == p.id() => c.next_offset(),
                    _ => None,
                });
                lags.push(PartitionLag {
                    topic: topic.clone(),
                    partition: p.id(),
                    next_offset,
                    low,
                    high,
                });
            }
        }
    }
    lags.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(lags)
}

impl Report {
    pub fn text(&self) -> String {
        let mut out = format!("lake: {}\n", self.lake);
        for (table, report) in &self.tables {
            out.push_str(&format!("\ntable {table}\n\n"));
            out.push_str(&report.text(table));
        }
        out.push_str("\nsilver and gold tables\n");
        if self.models.is_empty() {
            out.push_str("  none yet\n");
        }
        let mut rows: Vec<Vec<String>> = self
            .models
            .iter()
            .map(|(view, rows, version)| {
                let mut row = vec![
                    view.clone(),
                    format!("{rows} rows"),
                    version.map_or("no log".into(), |n| format!("version {n}")),
                ];
                if let Some(status) = self.refiner.get(view) {
                    row.push(status.text());
                }
                row
            })
            .collect();
        // Models the refiner reports that have no table (yet).
        for (view, status) in &self.refiner {
            if !self.models.iter().any(|(v, _, _)| v == view) {
                rows.push(vec![
                    view.clone(),
                    "no table".into(),
                    String::new(),
                    status.text(),
                ]);
            }
        }
        out.push_str(&aligned(&rows, "  "));
        out.push_str(&format!("\nkafka lag ({})\n", self.brokers));
        match &self.lag {
            Err(why) => out.push_str(&format!("  lag: n/a ({why})\n")),
            Ok(lags) if lags.is_empty() => out.push_str("  no partitions\n"),
            Ok(lags) => {
                let mut rows = vec![
                    ["topic", "partition", "next_offset", "high_watermark", "lag"]
                        .map(String::from)
                        .to_vec(),
                ];
                for l in lags {
                    rows.push(vec![
                        l.topic.clone(),
                        l.partition.to_string(),
                        l.next_offset
                            .map(|o| o.to_string())
                            .unwrap_or_else(|| "-".into()),
                        l.high.to_string(),
                        l.lag().to_string(),
                    ]);
                }
                out.push_str(&aligned(&rows, "  "));
            }
        }
        out
    }

    /// Every table under `tables`; the `events` table's fields also at the
    /// top level, where they were before the lake had several tables.
    pub fn json(&self) -> serde_json::Value {
        let lag = match &self.lag {
            Ok(lags) => json!(lags
                .iter()
                .map(|l| json!({
                    "topic": l.topic, "partition": l.partition, "next_offset": l.next_offset,
                    "low_watermark": l.low, "high_watermark": l.high, "lag": l.lag(),
                }))
                .collect::<Vec<_>>()),
            Err(why) => json!({ "error": why }),
        };
        let tables: serde_json::Map<String, serde_json::Value> = self
            .tables
            .iter()
            .map(|(table, report)| (table.clone(), report.json()))
            .collect();
        let mut out = tables.get(EVENTS).cloned().unwrap_or_else(|| json!({}));
        out["lake"] = json!(self.lake);
        out["kafka_lag"] = lag;
        out["tables"] = json!(tables);
        out["models"] = json!({
            "rows": self.models.iter()
                .map(|(v, n, _)| (v.clone(), json!(n)))
                .collect::<serde_json::Map<_, _>>(),
            "versions": self.models.iter()
                .map(|(v, _, version)| (v.clone(), json!(version)))
                .collect::<serde_json::Map<_, _>>(),
            "refiner": self.refiner.iter()
                .map(|(v, status)| (v.clone(), status.json()))
                .collect::<serde_json::Map<_, _>>(),
        });
        out
    }
}

impl TableReport {
    fn text(&self, table: &str) -> String {
        let mut out = format!("checkpoints ({}/)\n", checkpoints_prefix(table));
        if self.checkpoints.is_empty() {
            out.push_str("  none yet: the consumer has not committed anything\n");
        }
        for (key, checkpoint) in &self.checkpoints {
            match checkpoint {
                Err(e) => out.push_str(&format!("  {key}: unreadable: {e}\n")),
                Ok(c) => {
                    out.push_str(&format!("  {}\n", c.source));
                    let totals = &c.totals;
                    let rows = vec![
                        vec!["position".into(), position(c)],
                        vec!["intent".into(), intent(c)],
                        vec![
                            "totals".into(),
                            format!(
                                "{} micro-batches, {} messages, {} bronze rows, {} dead-letter rows",
                                totals.micro_batches, totals.messages, totals.bronze_rows, totals.dead_letter_rows
                            ),
                        ],
                        vec!["updated_at".into(), c.updated_at.clone()],
                        vec!["writer".into(), c.writer.clone()],
                    ];
                    out.push_str(&aligned(&rows, "    "));
                }
            }
        }
        out.push_str("\nrows\n");
        let rows: Vec<Vec<String>> = self
            .counts
            .iter()
            .map(|(v, n)| vec![v.clone(), n.to_string()])
            .collect();
        out.push_str(&aligned(&rows, "  "));
        out.push_str("\ndelta tables\n");
        let rows: Vec<Vec<String>> = self
            .versions
            .iter()
            .map(|(v, version)| {
                vec![
                    v.clone(),
                    version.map_or("no log yet".into(), |n| format!("version {n}")),
                ]
            })
            .collect();
        out.push_str(&aligned(&rows, "  "));
        out.push_str("\ndead letters by error_code (top 10)\n");
        if self.error_codes.is_empty() {
            out.push_str("  none\n");
        }
        let rows: Vec<Vec<String>> = self
            .error_codes
            .iter()
            .map(|(c, n)| vec![c.clone(), n.to_string()])
            .collect();
        out.push_str(&aligned(&rows, "  "));
        out
    }

    fn json(&self) -> serde_json::Value {
        let checkpoints: Vec<serde_json::Value> = self
            .checkpoints
            .iter()
            .map(|(key, c)| match c {
                Ok(c) => json!({ "key": key, "checkpoint": c }),
                Err(e) => json!({ "key": key, "error": e }),
            })
            .collect();
        json!({
            "checkpoints": checkpoints,
            "rows": self.counts.iter().map(|(v, n)| (v.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "versions": self.versions.iter().map(|(v, n)| (v.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "dead_letter_error_codes": self.error_codes.iter()
                .map(|(c, n)| json!({ "error_code": c, "count": n }))
                .collect::<Vec<_>>(),
        })
    }
}

fn position(c: &Checkpoint) -> String {
    match &c.position {
        Position::Kafka { next_offset } => format!("next_offset {next_offset}"),
        Position::Files {
            after_key: Some(key),
        } => format!("after_key {key}"),
        Position::Files { after_key: None } => "at the start".into(),
    }
}

fn intent(c: &Checkpoint) -> String {
    let Some(i) = &c.intent else {
        return "none".into();
    };
    let range = match &i.range {
        Range::Kafka {
            first_offset,
            last_offset,
        } => format!("offsets {first_offset}..={last_offset}"),
        Range::Files {
            first_key,
            last_key,
        } => format!("keys {first_key} ..= {last_key}"),
    };
    format!(
        "open: micro-batch {} over {range} ({} messages)",
        i.seq, i.messages
    )
}

/// Rows as columns padded to their widest cell.
fn aligned(rows: &[Vec<String>], indent: &str) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| format!("{cell:<width$}", width = widths[i]))
            .collect();
        out.push_str(indent);
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns() {
        let rows = vec![
            vec!["bronze.events".to_string(), "12".to_string()],
            vec!["dead_letters.events".to_string(), "3".to_string()],
        ];
        assert_eq!(
            aligned(&rows, "  "),
            "  bronze.events        12\n  dead_letters.events  3\n"
        );
    }

    #[test]
    fn lag_counts_from_the_checkpoint_or_the_low_watermark() {
        let lag = |next_offset, low, high| {
            PartitionLag {
                topic: "t".into(),
                partition: 0,
                next_offset,
                low,
                high,
            }
            .lag()
        };
        assert_eq!(lag(Some(1200), 0, 1300), 100);
        assert_eq!(lag(None, 50, 80), 30);
        // Retention deleted past the checkpoint: what is left is the lag.
        assert_eq!(lag(Some(10), 50, 80), 30);
        assert_eq!(lag(Some(80), 0, 80), 0);
    }
}
