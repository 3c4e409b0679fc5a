//! What the consumer and the refiner tell Prometheus and their orchestrator:
//! the metrics (one registry per process, in the Prometheus text format,
//! with the standard `process_*` metrics), the health a probe asks about,
//! and the endpoints serving both on `METRICS_ADDR`: `/metrics`,
//! `/healthz` (the process loop is alive) and `/readyz` (ready for work,
//! else 503 with the reasons). The list of metrics is in the README.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService, ReqwestConnector,
};
use object_store::ClientOptions;
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::http::{Handler, Reply, Request};
use crate::store::{Lake, Location};

/// The default of `METRICS_ADDR`.
pub const DEFAULT_ADDR: &str = "0.0.0.0:9464";

/// Where a long-running consumer or refiner serves its endpoints.
#[derive(clap::Args, Debug, Clone)]
pub struct MetricsArgs {
    /// Serve /metrics, /healthz and /readyz on this host:port (not with
    /// --once); empty: serve nothing.
    #[arg(long, env = "METRICS_ADDR", default_value = DEFAULT_ADDR)]
    pub metrics_addr: String,
}

/// A process whose loop has not beaten for this long is not alive: longer
/// than the longest wait between two retries (30 s) with room to spare.
const ALIVE_WITHIN: Duration = Duration::from_secs(120);

/// Every metric the binaries export. Each binary sets the ones it has.
pub struct Metrics {
    registry: Registry,
    /// `table`, `outcome` = `bronze` | `dead_letter`: records committed.
    pub records: IntCounterVec,
    /// `table`, `error_code`: dead letters committed.
    pub dead_letters: IntCounterVec,
    /// `table`: messages (Kafka messages or raw objects) committed.
    pub messages: IntCounterVec,
    /// `table`: micro-batches committed, one per source (partition or raw prefix).
    pub micro_batches: IntCounterVec,
    /// `table`, `stage` = `encode` | `upload` | `delta_commit` | `checkpoint`:
    /// the time each stage of a commit took.
    pub commit_seconds: HistogramVec,
    /// `table`, `layer` = `bronze` | `dead_letters`: Parquet bytes and files written.
    pub written_bytes: IntCounterVec,
    pub written_files: IntCounterVec,
    /// `operation`, `status` (the HTTP status, or `error` without a response).
    pub s3_requests: IntCounterVec,
    /// `operation`: retries after a transient failure of the store.
    pub retries: IntCounterVec,
    /// `topic`, `partition`: messages in the partition past the checkpoint.
    pub kafka_lag: IntGaugeVec,
    /// `table`: now − the newest committed event's Kafka timestamp.
    freshness: GaugeVec,
    newest_event_micros: Mutex<BTreeMap<String, i64>>,
    /// `topic`: partitions this consumer owns.
    pub owned_partitions: IntGaugeVec,
    /// `table`: micro-batches given up because another writer took the source.
    pub lost_ownership: IntCounterVec,
    /// `model`: input versions committed but not yet reflected in the model.
    pub model_version_lag: IntGaugeVec,
    /// `model`, `outcome` = `ok` | `failed`.
    pub model_runs: IntCounterVec,
    /// `model`: rows the model's commits wrote.
    pub model_rows_written: IntCounterVec,
}

impl Metrics {
    fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let metric = IntCounterVec::new(Opts::new(name, help), labels)
                .expect("a valid counter definition");
            registry
                .register(Box::new(metric.clone()))
                .expect("each metric registered once");
            metric
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let metric =
                IntGaugeVec::new(Opts::new(name, help), labels).expect("a valid gauge definition");
            registry
                .register(Box::new(metric.clone()))
                .expect("each metric registered once");
            metric
        };
        let freshness = GaugeVec::new(
            Opts::new(
                "lakehouse_freshness_seconds",
                "Now minus the Kafka timestamp of the newest committed event.",
            ),
            &["table"],
        )
        .expect("a valid gauge definition");
        // From 1 ms to about 65 s: a commit to a local lake takes
        // milliseconds, one to a slow S3 seconds.
        let commit_seconds = HistogramVec::new(
            HistogramOpts::new(
                "lakehouse_commit_duration_seconds",
                "Time each stage of committing a micro-batch took.",
            )
            .buckets(prometheus::exponential_buckets(0.001, 2.0, 17).expect("valid buckets")),
            &["table", "stage"],
        )
        .expect("a valid histogram definition");
        let process = prometheus::process_collector::ProcessCollector::for_self();
        for collector in [
            Box::new(freshness.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(commit_seconds.clone()),
            Box::new(process),
        ] {
            registry
                .register(collector)
                .expect("each metric registered once");
        }
        Metrics {
            records: counter(
                "lakehouse_records_total",
                "Records committed, by table and outcome (bronze, dead_letter).",
                &["table", "outcome"],
            ),
            dead_letters: counter(
                "lakehouse_dead_letters_total",
                "Dead letters committed, by table and error code.",
                &["table", "error_code"],
            ),
            messages: counter(
                "lakehouse_messages_total",
                "Messages (Kafka messages, raw objects) committed.",
                &["table"],
            ),
            micro_batches: counter(
                "lakehouse_micro_batches_total",
                "Micro-batches committed, one per source (partition or raw prefix).",
                &["table"],
            ),
            commit_seconds,
            written_bytes: counter(
                "lakehouse_written_bytes_total",
                "Parquet bytes written, by table and layer.",
                &["table", "layer"],
            ),
            written_files: counter(
                "lakehouse_written_files_total",
                "Parquet files written, by table and layer.",
                &["table", "layer"],
            ),
            s3_requests: counter(
                "lakehouse_s3_requests_total",
                "Requests to the object store, by operation and HTTP status (error: no response).",
                &["operation", "status"],
            ),
            retries: counter(
                "lakehouse_retries_total",
                "Retries after a transient failure of the store, by operation.",
                &["operation"],
            ),
            kafka_lag: gauge(
                "lakehouse_kafka_lag_messages",
                "Messages in a partition past its checkpoint (high watermark minus next offset).",
                &["topic", "partition"],
            ),
            freshness,
            newest_event_micros: Mutex::new(BTreeMap::new()),
            owned_partitions: gauge(
                "lakehouse_owned_partitions",
                "Kafka partitions this consumer owns.",
                &["topic"],
            ),
            lost_ownership: counter(
                "lakehouse_lost_ownership_total",
                "Micro-batches given up because another writer took their source.",
                &["table"],
            ),
            model_version_lag: gauge(
                "lakehouse_model_version_lag",
                "Input table versions committed but not yet reflected in the model.",
                &["model"],
            ),
            model_runs: counter(
                "lakehouse_model_runs_total",
                "Model runs, by outcome (ok, failed).",
                &["model", "outcome"],
            ),
            model_rows_written: counter(
                "lakehouse_model_rows_written_total",
                "Rows written by a model's commits.",
                &["model"],
            ),
            registry,
        }
    }

    /// The counters of a table the consumer ingests, at zero: a series
    /// appears once it has a value, and a dashboard should show 0, not
    /// "no data", before the first commit or the first lost source.
    pub fn ingesting(&self, table: &str) {
        for outcome in ["bronze", "dead_letter"] {
            self.records.with_label_values(&[table, outcome]);
        }
        for layer in ["bronze", "dead_letters"] {
            self.written_bytes.with_label_values(&[table, layer]);
            self.written_files.with_label_values(&[table, layer]);
        }
        self.messages.with_label_values(&[table]);
        self.micro_batches.with_label_values(&[table]);
        self.lost_ownership.with_label_values(&[table]);
    }

    /// The counters of a model the refiner runs, at zero (see [`Metrics::ingesting`]).
    pub fn refining(&self, model: &str) {
        for outcome in ["ok", "failed"] {
            self.model_runs.with_label_values(&[model, outcome]);
        }
        self.model_rows_written.with_label_values(&[model]);
    }

    /// One request of the S3 client: its HTTP `status`, `None` without a response.
    pub fn count_s3_request(&self, operation: &str, status: Option<u16>) {
        let status = status.map_or("error".to_string(), |s| s.to_string());
        self.s3_requests
            .with_label_values(&[operation, status.as_str()])
            .inc();
    }

    /// A committed event of `table` had this Kafka timestamp (µs since the epoch).
    pub fn committed_event(&self, table: &str, kafka_timestamp_micros: i64) {
        let mut newest = self
            .newest_event_micros
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let entry = newest.entry(table.to_string()).or_insert(i64::MIN);
        *entry = (*entry).max(kafka_timestamp_micros);
    }

    /// Every metric in the Prometheus text format, freshness as of now.
    pub fn text(&self) -> String {
        let now = chrono::Utc::now().timestamp_micros();
        for (table, micros) in self
            .newest_event_micros
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            self.freshness
                .with_label_values(&[table.as_str()])
                .set((now - micros) as f64 / 1e6);
        }
        let mut out = Vec::new();
        // Writing into a Vec fails only on a metric the registry refused.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "encoding the metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

/// What `/healthz` and `/readyz` answer from.
pub struct Health {
    /// When the process loop last showed it is alive (ms since the epoch).
    beat: AtomicI64,
    /// Conditions not met yet, by name: why the process is not ready.
    not_ready: Mutex<BTreeMap<String, String>>,
}

impl Health {
    /// The process loop is alive: call it from every turn of the loop and
    /// between retries.
    pub fn beat(&self) {
        self.beat
            .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    /// Condition `name` is not met, because of `why`.
    pub fn not_ready(&self, name: impl Into<String>, why: impl Into<String>) {
        self.lock().insert(name.into(), why.into());
    }

    /// Condition `name` is met.
    pub fn ready(&self, name: &str) {
        self.lock().remove(name);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.not_ready.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Seconds since the last beat.
    fn silent_for(&self) -> Duration {
        let since = chrono::Utc::now().timestamp_millis() - self.beat.load(Ordering::Relaxed);
        Duration::from_millis(since.max(0) as u64)
    }
}

/// The condition every process starts with: it clears it once it works.
pub const STARTING: &str = "starting";

/// The process's health. Until the process says otherwise it is alive and
/// not ready: "starting".
pub fn health() -> &'static Health {
    static HEALTH: LazyLock<Health> = LazyLock::new(|| Health {
        beat: AtomicI64::new(chrono::Utc::now().timestamp_millis()),
        not_ready: Mutex::new(BTreeMap::from([(
            STARTING.to_string(),
            "starting".to_string(),
        )])),
    });
    &HEALTH
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `addr` (`METRICS_ADDR`;
/// empty: nothing is served) on a thread of its own. `/readyz` also checks
/// that the lake's bucket answers.
pub fn serve(addr: &str, lake: &Lake) -> Result<Option<std::net::SocketAddr>, String> {
    if addr.is_empty() {
        return Ok(None);
    }
    let lake = lake.clone();
    let handler: Handler = Arc::new(move |request: Request| {
        let lake = lake.clone();
        Box::pin(async move { endpoint(&request, &lake).await })
    });
    let bound = crate::http::spawn(addr, "METRICS_ADDR", handler)?;
    tracing::info!(address = %bound, "serving /metrics, /healthz and /readyz");
    Ok(Some(bound))
}

async fn endpoint(request: &Request, lake: &Lake) -> Reply {
    match request.path.as_str() {
        "/metrics" => Reply::new(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics().text(),
        ),
        "/healthz" => {
            let silent = health().silent_for();
            if silent > ALIVE_WITHIN {
                Reply::text(
                    503,
                    format!("the process loop has not run for {} s\n", silent.as_secs()),
                )
            } else {
                Reply::text(200, "alive\n")
            }
        }
        "/readyz" => {
            let mut reasons: Vec<String> = health().lock().values().cloned().collect();
            if let Err(why) = bucket_answers(lake).await {
                reasons.push(why);
            }
            if reasons.is_empty() {
                Reply::text(200, "ready\n")
            } else {
                Reply::text(503, format!("not ready: {}\n", reasons.join("; ")))
            }
        }
        _ => Reply::not_found(),
    }
}

/// Whether the lake's bucket (or directory) answers, within a few seconds.
async fn bucket_answers(lake: &Lake) -> Result<(), String> {
    if let Location::Local { root } = &lake.location {
        return match root.is_dir() {
            true => Ok(()),
            false => Err(format!("lake directory {} is missing", root.display())),
        };
    }
    match tokio::time::timeout(Duration::from_secs(3), lake.bucket_exists()).await {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => Err(format!("bucket of {} does not exist", lake.args.lake_url)),
        Ok(Err(e)) => Err(format!("bucket unreachable: {e}")),
        Err(_) => Err(format!(
            "bucket unreachable: no answer from {} within 3 s",
            lake.endpoint()
        )),
    }
}

/// The S3 client's connector, counting every request it makes (retries
/// included) in `lakehouse_s3_requests_total`.
#[derive(Debug, Default)]
pub struct CountingConnector;

impl HttpConnector for CountingConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let client = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(Counting(client)))
    }
}

#[derive(Debug)]
struct Counting(HttpClient);

#[async_trait::async_trait]
impl HttpService for Counting {
    async fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let operation = s3_operation(request.method().as_str(), request.uri().query());
        let response = self.0.execute(request).await;
        metrics().count_s3_request(
            operation,
            response.as_ref().ok().map(|r| r.status().as_u16()),
        );
        response
    }
}

/// The S3 operation a request is, from its method and query string.
pub fn s3_operation(method: &str, query: Option<&str>) -> &'static str {
    let has = |name: &str| {
        query.is_some_and(|q| {
            q.split('&')
                .any(|pair| pair.split('=').next() == Some(name))
        })
    };
    match method {
        "GET" if has("list-type") => "list",
        "GET" => "get",
        "HEAD" => "head",
        "PUT" if has("partNumber") => "upload_part",
        "PUT" => "put",
        "POST" if has("uploads") => "create_multipart",
        "POST" if has("uploadId") => "complete_multipart",
        "POST" if has("delete") => "delete_many",
        "DELETE" => "delete",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_named_from_method_and_query() {
        assert_eq!(s3_operation("GET", Some("list-type=2&prefix=a")), "list");
        assert_eq!(s3_operation("GET", None), "get");
        assert_eq!(
            s3_operation("PUT", Some("partNumber=2&uploadId=x")),
            "upload_part"
        );
        assert_eq!(s3_operation("PUT", None), "put");
        assert_eq!(s3_operation("POST", Some("uploads")), "create_multipart");
        assert_eq!(
            s3_operation("POST", Some("uploadId=x")),
            "complete_multipart"
        );
        assert_eq!(s3_operation("POST", Some("delete")), "delete_many");
        assert_eq!(s3_operation("DELETE", None), "delete");
    }

    #[test]
    fn text_holds_counters_freshness_and_process_metrics() {
        let m = metrics();
        m.records.with_label_values(&["t", "bronze"]).inc_by(7);
        m.committed_event("t", chrono::Utc::now().timestamp_micros() - 2_000_000);
        let text = m.text();
        assert!(
            text.contains("lakehouse_records_total{outcome=\"bronze\",table=\"t\"} 7"),
            "{text}"
        );
        let freshness: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("lakehouse_freshness_seconds{table=\"t\"} "))
            .expect("a freshness line")
            .parse()
            .expect("a number");
        assert!((2.0..60.0).contains(&freshness), "{freshness}");
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
    }
}
