//! `inspector serve`: a status page of the lake that refreshes itself, and
//! the JSON behind it (README "The status page").
//!
//! One page at `/` (HTML, JS and CSS from `inspector/assets/`, compiled into
//! the binary: nothing is fetched from the internet) polls `/api/all` and
//! draws every panel from it; each panel is also its own endpoint under
//! `/api/...` (listed at `/api`). The numbers come from the same places as
//! `inspector status` ([`status::gather`], counted through the views, so
//! committed rows only) plus a few queries of their own: freshness, dead
//! letters over time and the newest of them, the bronze logs' newest commits,
//! and the two gold tables the page charts.
//!
//! Threads: the HTTP server ([`lake::http::spawn`]) runs on a thread of its
//! own; the DuckDB session is not `Sync` and its queries block, so it lives
//! on the calling thread, which answers snapshot requests sent over a
//! channel. Each snapshot starts with [`Session::refresh`], so it sees the
//! newest committed versions; a snapshot younger than [`CACHE_FOR`] is
//! reused, so several tabs (and the slice endpoints) cost one computation.
//! The `--metrics-url` endpoints are fetched on the HTTP thread, in parallel,
//! with a short timeout, since they have nothing to do with DuckDB.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context};
use delta::AsOf;
use lake::config::KafkaArgs;
use lake::http::{Handler, Reply, Request};
use lakedb::session::Session;
use lakedb::snapshot::rfc3339_millis;
use lakedb::views::Layer;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use crate::output::{self, Format};
use crate::status;

/// The default of `STATUS_ADDR`: loopback, since the page shows the lake to
/// whoever can reach it (the Compose service sets `0.0.0.0:8080`).
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";

/// How long a snapshot of the lake is reused.
const CACHE_FOR: Duration = Duration::from_secs(2);
/// How long each `--metrics-url` gets to answer.
const METRICS_TIMEOUT: Duration = Duration::from_secs(2);
/// The newest dead letters shown, per table.
const DEAD_LETTER_SAMPLE: usize = 12;
/// The newest bronze commits shown, over all tables.
const BATCHES: usize = 10;
/// The charts' windows, ending at the newest bucket of their data (not at
/// now, so a lake that stopped yesterday still shows its last hour).
const MINUTES: u32 = 60;
const HOURS: u32 = 48;
const GOLD_MINUTES: u32 = 120;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE_CSS: &str = include_str!("../assets/style.css");

/// The panel endpoints: path → the key of `/api/all` it serves.
const PANELS: &[(&str, &str)] = &[
    ("/api/tables", "tables"),
    ("/api/kafka-lag", "kafka_lag"),
    ("/api/dead-letters", "dead_letters"),
    ("/api/batches", "batches"),
    ("/api/models", "models"),
    ("/api/gold", "gold"),
];

#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Serve the page on this host:port (0.0.0.0:8080 to reach it from
    /// other machines or containers).
    #[arg(long, env = "STATUS_ADDR", default_value = DEFAULT_ADDR, value_name = "HOST:PORT")]
    pub addr: String,
    /// A Prometheus endpoint to show, e.g. http://consumer:9464/metrics
    /// (repeatable; METRICS_URLS is comma-separated).
    #[arg(
        long = "metrics-url",
        env = "METRICS_URLS",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub metrics_urls: Vec<String>,
}

/// A snapshot of the lake, or why there is none; shared by every request
/// that asked for it.
type Snapshot = Arc<Result<Value, String>>;

struct State {
    /// To the thread that owns the session: where to send the snapshot.
    jobs: mpsc::UnboundedSender<oneshot::Sender<Snapshot>>,
    metrics_urls: Vec<String>,
    client: reqwest::Client,
}

/// Binds the address, opens the lake with `open`, prints the URL and serves
/// until the process is stopped. Binding comes first so that a busy port
/// fails at once, before the lake is opened. `secrets` never appear in an
/// error the page shows.
pub fn run(
    args: &ServeArgs,
    kafka: &KafkaArgs,
    secrets: &[String],
    open: impl FnOnce() -> anyhow::Result<Session>,
) -> anyhow::Result<()> {
    let (jobs, mut requests) = mpsc::unbounded_channel::<oneshot::Sender<Snapshot>>();
    let client = reqwest::Client::builder()
        .timeout(METRICS_TIMEOUT)
        .build()
        .context("cannot build the HTTP client for --metrics-url")?;
    let state = Arc::new(State {
        jobs,
        metrics_urls: args
            .metrics_urls
            .iter()
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .collect(),
        client,
    });
    let handler: Handler = Arc::new(move |request| {
        let state = state.clone();
        Box::pin(async move { route(&state, request).await })
    });
    let bound = lake::http::spawn(&args.addr, "STATUS_ADDR", handler).map_err(|e| anyhow!(e))?;
    let mut session = open()?;
    // 0.0.0.0 is where it listens, not an address a browser can open.
    let host = if bound.ip().is_unspecified() {
        "localhost".to_string()
    } else {
        bound.ip().to_string()
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "inspector: the status page of {} is at http://{host}:{}/",
        session.lake.args.lake_url,
        bound.port()
    )?;
    stdout.flush()?;
    drop(stdout);

    let mut cached: Option<(Instant, Snapshot)> = None;
    while let Some(reply) = requests.blocking_recv() {
        let snapshot = match &cached {
            Some((at, snapshot)) if at.elapsed() < CACHE_FOR => snapshot.clone(),
            _ => {
                let snapshot = Arc::new(lake_snapshot(&mut session, kafka, secrets).map_err(|e| {
                    let e = error_line(&e, secrets);
                    tracing::warn!(error = %e, "cannot read the lake for the status page");
                    e
                }));
                cached = Some((Instant::now(), snapshot.clone()));
                snapshot
            }
        };
        // The client may have gone away meanwhile.
        let _ = reply.send(snapshot);
    }
    Ok(())
}

async fn route(state: &State, request: Request) -> Reply {
    let path = request.path.as_str();
    match path {
        "/" | "/index.html" => Reply::new(200, "text/html; charset=utf-8", INDEX_HTML),
        "/assets/app.js" => Reply::new(200, "text/javascript; charset=utf-8", APP_JS),
        "/assets/style.css" => Reply::new(200, "text/css; charset=utf-8", STYLE_CSS),
        "/healthz" => Reply::text(200, "ok\n"),
        "/api" | "/api/" => Reply::json(&endpoints()),
        "/api/metrics" => Reply::json(&json!({ "metrics": metrics(state).await })),
        "/api/all" => {
            let (lake, metrics) = tokio::join!(snapshot(state), metrics(state));
            match lake.as_ref() {
                Ok(lake) => {
                    let mut all = lake.clone();
                    all["metrics"] = metrics;
                    Reply::json(&all)
                }
                // The processes may say why the lake is unreadable.
                Err(e) => unavailable(json!({ "error": e, "metrics": metrics })),
            }
        }
        _ => match PANELS.iter().find(|(p, _)| *p == path) {
            Some((_, key)) => match snapshot(state).await.as_ref() {
                Ok(lake) => Reply::json(&json!({
                    "generated_at": lake["generated_at"],
                    "lake": lake["lake"],
                    *key: lake[*key],
                })),
                Err(e) => unavailable(json!({ "error": e })),
            },
            None => Reply::not_found(),
        },
    }
}

/// The lake cannot be read right now (S3 down, a log unreadable): 503 with
/// the reason, which the page shows above its last good numbers.
fn unavailable(body: Value) -> Reply {
    Reply::new(503, "application/json", body.to_string())
}

/// An error with its causes, on one line, without secrets, and short
/// enough for a panel (with RUST_BACKTRACE set, the Delta kernel's errors
/// carry their backtrace).
fn error_line(e: &anyhow::Error, secrets: &[String]) -> String {
    const MAX_CHARS: usize = 600;
    let line = lake::config::redact(&lake::config::error_line(e), secrets);
    match line.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// What `/api` answers: every endpoint and what it holds.
fn endpoints() -> Value {
    json!({
        "/": "the status page (HTML; polls /api/all every 5 s)",
        "/api/all": "every panel below in one object, plus metrics",
        "/api/tables": "per table: bronze rows, dead letters, freshness, Delta versions, checkpoints",
        "/api/kafka-lag": "lag per topic partition, or why it is not available",
        "/api/dead-letters": "per table: dead letters by error_code, per minute and per hour of ingested_at, the newest ones",
        "/api/batches": "the newest commits of the bronze Delta logs (micro-batches)",
        "/api/models": "the silver and gold tables: rows, Delta version, the refiner's status",
        "/api/gold": "gold.events_per_minute and gold.dead_letter_rate, as charted",
        "/api/metrics": "each --metrics-url: whether it answered, and headline values",
        "/healthz": "ok while the server runs",
    })
}

/// Asks the session's thread for a snapshot.
async fn snapshot(state: &State) -> Snapshot {
    let (reply, answer) = oneshot::channel();
    if state.jobs.send(reply).is_err() {
        return Arc::new(Err("the lake is not open".into()));
    }
    answer
        .await
        .unwrap_or_else(|_| Arc::new(Err("the lake's thread stopped".into())))
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Every panel but the metrics, from the newest committed snapshots.
fn lake_snapshot(
    session: &mut Session,
    kafka: &KafkaArgs,
    secrets: &[String],
) -> anyhow::Result<Value> {
    let started = Instant::now();
    session.refresh()?;
    let now = now_millis();
    // What `inspector status` reports: counts, versions, checkpoints, lag,
    // models and the refiner's status; the panels take it apart.
    let report = status::gather(session, kafka)?.json();
    // A panel that failed shows its error; the other panels still show.
    let panel = |result: anyhow::Result<Value>| {
        result.unwrap_or_else(|e| json!({ "error": error_line(&e, secrets) }))
    };
    let mut snapshot = json!({
        "generated_at": rfc3339_millis(now),
        "lake": report["lake"],
        "tables": panel(tables(session, &report, now)),
        "kafka_lag": kafka_lag(&report, kafka),
        "dead_letters": panel(dead_letters(session)),
        "batches": panel(batches(session)),
        "models": models(&report),
        "gold": panel(gold(session)),
    });
    snapshot["took_ms"] = json!(started.elapsed().as_millis() as u64);
    Ok(snapshot)
}

/// The rows of `sql` as JSON objects, numbers as numbers and timestamps as
/// RFC 3339 text (the `query --format json` writer).
fn rows(session: &Session, sql: &str) -> anyhow::Result<Vec<Value>> {
    let result = output::query(&session.conn, sql)?;
    let mut out = Vec::new();
    output::write(&result, Format::Json, &mut out)?;
    match serde_json::from_slice(&out)? {
        Value::Array(rows) => Ok(rows),
        _ => Ok(Vec::new()),
    }
}

/// Per table: rows of both views, freshness, versions and checkpoints.
fn tables(session: &Session, report: &Value, now: i64) -> anyhow::Result<Value> {
    let mut out = serde_json::Map::new();
    let Some(tables) = report["tables"].as_object() else {
        return Ok(Value::Object(out));
    };
    for (table, t) in tables {
        let (bronze, dead) = (Layer::Bronze.view(table), Layer::DeadLetters.view(table));
        let checkpoints: Vec<&Value> = t["checkpoints"]
            .as_array()
            .map(|c| c.iter().filter_map(|c| c.get("checkpoint")).collect())
            .unwrap_or_default();
        let total = |field: &str| {
            checkpoints
                .iter()
                .filter_map(|c| c["totals"][field].as_u64())
                .sum::<u64>()
        };
        let mut entry = json!({
            "bronze_rows": t["rows"][&bronze],
            "dead_letters": t["rows"][&dead],
            "bronze_version": t["versions"][&bronze],
            "dead_letters_version": t["versions"][&dead],
            "checkpoints": checkpoints.len(),
            "open_intents": checkpoints.iter().filter(|c| !c["intent"].is_null()).count(),
            "checkpoint_updated_at": checkpoints.iter().filter_map(|c| c["updated_at"].as_str()).max(),
            "micro_batches": total("micro_batches"),
            "messages": total("messages"),
            "unreadable_checkpoints": t["checkpoints"].as_array()
                .map_or(0, |c| c.iter().filter(|c| c.get("error").is_some()).count()),
            "newest_event": null,
            "freshness_basis": null,
            "freshness_seconds": null,
        });
        if session.is_readable(table, Layer::Bronze) {
            // The Kafka timestamp is when the event reached the broker, the
            // lake's own clock for freshness (the consumer's metric uses it
            // too); the files source has none, so ingested_at stands in.
            let newest = rows(
                session,
                &format!(
                    "SELECT epoch_ms(CAST(max(kafka_timestamp) AS TIMESTAMP)) AS kafka, \
                     epoch_ms(CAST(max(ingested_at) AS TIMESTAMP)) AS ingested FROM {bronze}"
                ),
            )?;
            let newest = newest.first().cloned().unwrap_or_default();
            let basis = ["kafka", "ingested"]
                .into_iter()
                .find_map(|k| newest[k].as_i64().map(|ms| (k, ms)));
            if let Some((basis, ms)) = basis {
                entry["newest_event"] = json!(rfc3339_millis(ms));
                entry["freshness_basis"] = json!(if basis == "kafka" {
                    "kafka_timestamp"
                } else {
                    "ingested_at"
                });
                entry["freshness_seconds"] = json!((now - ms).max(0) as f64 / 1000.0);
            }
        }
        out.insert(table.clone(), entry);
    }
    Ok(Value::Object(out))
}

/// The lag `status` measured, or why there is none (no broker, or a lake
/// fed by files): shown as n/a, never an error of the page.
fn kafka_lag(report: &Value, kafka: &KafkaArgs) -> Value {
    let lag = &report["kafka_lag"];
    match lag.as_array() {
        Some(partitions) => json!({
            "brokers": kafka.kafka_bootstrap_servers,
            "available": true,
            "total": partitions.iter().filter_map(|p| p["lag"].as_i64()).sum::<i64>(),
            "partitions": partitions,
        }),
        None => json!({
            "brokers": kafka.kafka_bootstrap_servers,
            "available": false,
            "reason": lag["error"],
            "partitions": [],
        }),
    }
}

/// Per table: dead letters by error_code (all codes, where `status` lists
/// ten), per minute and per hour of ingested_at, and the newest ones.
fn dead_letters(session: &Session) -> anyhow::Result<Value> {
    let mut out = serde_json::Map::new();
    let tables: Vec<String> = session.tables().map(str::to_string).collect();
    for table in tables {
        if !session.is_readable(&table, Layer::DeadLetters) {
            continue;
        }
        let view = Layer::DeadLetters.view(&table);
        let by_code = rows(
            session,
            &format!(
                "SELECT error_code, any_value(error_kind) AS error_kind, count(*) AS count \
                 FROM {view} GROUP BY error_code ORDER BY count DESC, error_code"
            ),
        )?;
        // Bucketed on TIMESTAMP: the bundled DuckDB has no ICU for TIMESTAMPTZ.
        let series = |unit: &str, buckets: u32| {
            rows(
                session,
                &format!(
                    "WITH d AS (SELECT CAST(ingested_at AS TIMESTAMP) AS t, error_code FROM {view}) \
                     SELECT epoch_ms(time_bucket(INTERVAL 1 {unit}, t)) AS bucket, error_code, \
                     count(*) AS count FROM d \
                     WHERE t >= time_bucket(INTERVAL 1 {unit}, (SELECT max(t) FROM d)) - INTERVAL {} {unit} \
                     GROUP BY ALL ORDER BY bucket, error_code",
                    buckets - 1
                ),
            )
        };
        let newest = rows(
            session,
            &format!(
                "SELECT ingested_at, error_kind, error_code, error_message, source_topic, \
                 source_partition, source_offset, source_key, batch_id, record_index, \
                 left(raw_text, 160) AS raw_preview, octet_length(raw_payload) AS raw_bytes \
                 FROM {view} ORDER BY ingested_at DESC, source_offset DESC NULLS LAST, \
                 source_key DESC NULLS LAST, record_index DESC NULLS LAST LIMIT {DEAD_LETTER_SAMPLE}"
            ),
        )?;
        out.insert(
            table,
            json!({
                "by_code": by_code,
                "per_minute": { "buckets": MINUTES, "bucket_ms": 60_000, "rows": series("minute", MINUTES)? },
                "per_hour": { "buckets": HOURS, "bucket_ms": 3_600_000, "rows": series("hour", HOURS)? },
                "newest": newest,
            }),
        );
    }
    Ok(Value::Object(out))
}

/// The newest commits of every bronze table's log, newest first: each
/// micro-batch of the consumer is one, carrying its source's `txn`.
fn batches(session: &Session) -> anyhow::Result<Value> {
    let mut commits = Vec::new();
    for table in session.tables() {
        let prefix = Layer::Bronze.prefix(table);
        let history = session.block_on(async {
            match delta::Table::open(&session.lake, &prefix, AsOf::Latest).await? {
                Some(log) => log.history(BATCHES).await,
                None => Ok(Vec::new()),
            }
        });
        let history = history
            .with_context(|| format!("cannot read the log of {}", Layer::Bronze.view(table)))?;
        commits.extend(history.into_iter().map(|c| (table.to_string(), c)));
    }
    // Newest first over all tables; commits without a time go last.
    commits.sort_by_key(|(table, c)| {
        (
            std::cmp::Reverse(c.timestamp.unwrap_or(i64::MIN)),
            table.clone(),
            std::cmp::Reverse(c.version),
        )
    });
    let commits: Vec<Value> = commits
        .into_iter()
        .take(BATCHES)
        .map(|(table, c)| {
            json!({
                "table": table,
                "version": c.version,
                "time": c.timestamp.map(rfc3339_millis),
                "operation": c.operation,
                "rows_added": c.rows_added,
                "files_added": c.files_added,
                "files_removed": c.files_removed,
                "transactions": c.transactions.iter()
                    .map(|(app_id, version)| json!({ "app_id": app_id, "version": version }))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json!(commits))
}

/// The silver and gold tables with what the refiner last said of each; a
/// model the refiner reports without a table yet is listed too.
fn models(report: &Value) -> Value {
    let models = &report["models"];
    let refiner = models["refiner"].as_object().cloned().unwrap_or_default();
    let mut out = BTreeMap::new();
    if let Some(rows) = models["rows"].as_object() {
        for (view, rows) in rows {
            out.insert(
                view.clone(),
                json!({
                    "rows": rows,
                    "version": models["versions"][view],
                    "refiner": refiner.get(view),
                }),
            );
        }
    }
    for (view, status) in &refiner {
        out.entry(view.clone())
            .or_insert_with(|| json!({ "rows": null, "version": null, "refiner": status }));
    }
    json!(out)
}

/// The two gold tables the page charts, over their newest
/// [`GOLD_MINUTES`], with their totals over the whole table; null for a
/// table that does not exist (yet).
fn gold(session: &Session) -> anyhow::Result<Value> {
    let exists = |model: &str| {
        session.models(Layer::Gold).any(|m| m == model) && session.is_readable(model, Layer::Gold)
    };
    let window = |table: &str| {
        format!(
            "minute >= (SELECT max(minute) FROM gold.{table}) - INTERVAL {} minute",
            GOLD_MINUTES - 1
        )
    };
    let mut out = json!({ "window_minutes": GOLD_MINUTES, "events_per_minute": null, "dead_letter_rate": null });
    if exists("events_per_minute") {
        let total = rows(
            session,
            "SELECT count(*) AS rows, CAST(coalesce(sum(events), 0) AS BIGINT) AS events \
             FROM gold.events_per_minute",
        )?;
        let series = rows(
            session,
            &format!(
                "SELECT epoch_ms(CAST(minute AS TIMESTAMP)) AS minute, event_type, \
                 CAST(sum(events) AS BIGINT) AS events FROM gold.events_per_minute \
                 WHERE {} GROUP BY ALL ORDER BY minute, event_type",
                window("events_per_minute")
            ),
        )?;
        out["events_per_minute"] = json!({
            "rows": total.first().map(|t| t["rows"].clone()),
            "total_events": total.first().map(|t| t["events"].clone()),
            "series": series,
        });
    }
    if exists("dead_letter_rate") {
        let total = rows(
            session,
            "SELECT count(*) AS rows, CAST(coalesce(sum(dead_letters), 0) AS BIGINT) AS dead_letters \
             FROM gold.dead_letter_rate",
        )?;
        // share_of_records is per error_code; a minute's share is their sum.
        let series = rows(
            session,
            &format!(
                "SELECT epoch_ms(CAST(minute AS TIMESTAMP)) AS minute, \
                 CAST(sum(dead_letters) AS BIGINT) AS dead_letters, \
                 round(sum(share_of_records), 6) AS share FROM gold.dead_letter_rate \
                 WHERE {} GROUP BY ALL ORDER BY minute",
                window("dead_letter_rate")
            ),
        )?;
        out["dead_letter_rate"] = json!({
            "rows": total.first().map(|t| t["rows"].clone()),
            "total_dead_letters": total.first().map(|t| t["dead_letters"].clone()),
            "series": series,
        });
    }
    Ok(out)
}

/// Every `--metrics-url`, fetched in parallel.
async fn metrics(state: &State) -> Value {
    let fetches = state
        .metrics_urls
        .iter()
        .map(|url| scrape(&state.client, url));
    json!(futures::future::join_all(fetches).await)
}

/// One endpoint: whether it answered, and its headline values.
async fn scrape(client: &reqwest::Client, url: &str) -> Value {
    let started = Instant::now();
    let answer = async {
        let response = client.get(url).send().await?.error_for_status()?;
        response.text().await
    }
    .await;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match answer {
        Ok(text) => {
            let mut out = headline(&parse_prometheus(&text));
            out["url"] = json!(url);
            out["up"] = json!(true);
            out["elapsed_ms"] = json!(elapsed_ms);
            out
        }
        Err(e) => json!({
            "url": url,
            "up": false,
            "elapsed_ms": elapsed_ms,
            // reqwest's Display leaves out the cause (refused, timed out).
            "error": error_line(&anyhow::Error::new(e), &[]),
        }),
    }
}

/// One sample of the Prometheus text format.
#[derive(Debug, PartialEq)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

impl Sample {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The values the page shows of one endpoint: records by outcome (summed
/// over tables), the Kafka lag summed over partitions, the worst freshness
/// and the resident memory. A metric the process does not export is null
/// (the refiner has no Kafka lag, the consumer no model runs).
fn headline(samples: &[Sample]) -> Value {
    let named = |name: &'static str| samples.iter().filter(move |s| s.name == name);
    let sum = |name: &'static str| {
        let mut values = named(name).map(|s| s.value).peekable();
        values.peek().is_some().then(|| values.sum::<f64>())
    };
    let mut records = BTreeMap::new();
    for s in named("lakehouse_records_total") {
        *records
            .entry(s.label("outcome").unwrap_or("").to_string())
            .or_insert(0.0) += s.value;
    }
    json!({
        "records": records,
        "kafka_lag_messages": sum("lakehouse_kafka_lag_messages"),
        "freshness_seconds": named("lakehouse_freshness_seconds").map(|s| s.value).reduce(f64::max),
        "resident_memory_bytes": sum("process_resident_memory_bytes"),
        "samples": samples.len(),
    })
}

/// `name{label="value",...} value [timestamp]` lines; comments, blank and
/// unreadable lines are skipped.
fn parse_prometheus(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_sample).collect()
}

fn parse_sample(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(mut inner) = rest.strip_prefix('{') {
        // Label values are quoted, with \" \\ and \n escapes, and may hold
        // `,` and `}`: read them one by one rather than split.
        loop {
            inner = inner.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
            if let Some(after) = inner.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = inner.find('=')?;
            let label = inner[..eq].trim().to_string();
            let quoted = inner[eq + 1..].trim_start().strip_prefix('"')?;
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    (_, other) => value.push(other),
                }
            };
            labels.push((label, value));
            inner = &quoted[end + 1..];
        }
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_lines() {
        let text = "# HELP lakehouse_records_total Records.\n\
            # TYPE lakehouse_records_total counter\n\
            lakehouse_records_total{outcome=\"bronze\",table=\"events\"} 7\n\
            lakehouse_records_total{outcome=\"dead_letter\",table=\"events\"} 2\n\
            lakehouse_records_total{outcome=\"bronze\",table=\"orders\"} 3\n\
            lakehouse_kafka_lag_messages{partition=\"0\",topic=\"events\"} 5\n\
            lakehouse_kafka_lag_messages{partition=\"1\",topic=\"events\"} 6\n\
            lakehouse_freshness_seconds{table=\"events\"} 1.5\n\
            lakehouse_freshness_seconds{table=\"orders\"} 4.25\n\
            odd{note=\"a,b}\\\"c\"} +Inf\n\
            process_resident_memory_bytes 123456 1700000000000\n\
            garbage line\n";
        let samples = parse_prometheus(text);
        assert_eq!(samples.len(), 9, "{samples:?}");
        assert_eq!(
            samples[7],
            Sample {
                name: "odd".into(),
                labels: vec![("note".into(), "a,b}\"c".into())],
                value: f64::INFINITY,
            }
        );
        assert_eq!(
            headline(&samples),
            json!({
                "records": { "bronze": 10.0, "dead_letter": 2.0 },
                "kafka_lag_messages": 11.0,
                "freshness_seconds": 4.25,
                "resident_memory_bytes": 123456.0,
                "samples": 9,
            })
        );
    }

    #[test]
    fn missing_metrics_are_null() {
        let value = headline(&parse_prometheus("process_resident_memory_bytes 10\n"));
        assert_eq!(value["kafka_lag_messages"], Value::Null);
        assert_eq!(value["freshness_seconds"], Value::Null);
        assert_eq!(value["records"], json!({}));
    }

    #[test]
    fn every_panel_endpoint_is_listed() {
        let listed = endpoints();
        for (path, _) in PANELS {
            assert!(listed.get(*path).is_some(), "{path} is not in /api");
        }
    }
}
