//! Shared by the integration tests: a small lake written with the consumer's
//! schemas (the `events` table, and an `orders` table with nested columns),
//! each data file committed to its table's Delta log as the consumer commits
//! a micro-batch, and running the real `inspector` binary in a clean
//! environment (with DuckDB's delta extension from the pip wheel).

#![allow(dead_code)] // each test file uses its own part

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::sync::Arc;

use arrow::array::{
    new_null_array, ArrayRef, AsArray, BinaryArray, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimestampMicrosecondType};
use lake::checkpoint::{Checkpoint, Totals};
use lake::contract::Contract;
use lake::layout::{contract_key, default_raw_prefix, SourceId, EVENTS};
use lake::position::{Intent, Position, Range};
use lake::Lake;
use object_store::{ObjectStoreExt, PutPayload};
use serde_json::json;

pub const SECRET: &str = "s3cr3t-never-printed";

/// 2026-01-02T00:00:05Z: when the test rows were "ingested".
const INGESTED: i64 = 1_767_312_005_000_000;

fn ts(values: Vec<Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(values).with_timezone("UTC"))
}

fn strings(values: Vec<Option<&str>>) -> ArrayRef {
    Arc::new(StringArray::from(values))
}

/// A batch of `schema` from the named columns; the others are null.
fn batch(schema: SchemaRef, columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let rows = columns[0].1.len();
    let arrays = schema
        .fields()
        .iter()
        .map(|f| {
            columns
                .iter()
                .find(|(name, _)| name == f.name())
                .map(|(_, a)| a.clone())
                .unwrap_or_else(|| new_null_array(f.data_type(), rows))
        })
        .collect();
    RecordBatch::try_new(schema, arrays).expect("a valid batch")
}

/// (event_id, user_id, event_type, event_ts µs, page, country, amount, offset)
type Event = (
    &'static str,
    i64,
    &'static str,
    i64,
    &'static str,
    Option<&'static str>,
    Option<f64>,
    i64,
);

fn bronze(events: &[Event]) -> RecordBatch {
    let n = events.len();
    batch(
        lake::schema::bronze(&Contract::events()),
        vec![
            (
                "event_id",
                strings(events.iter().map(|e| Some(e.0)).collect()),
            ),
            (
                "user_id",
                Arc::new(Int64Array::from_iter_values(events.iter().map(|e| e.1))),
            ),
            (
                "event_type",
                strings(events.iter().map(|e| Some(e.2)).collect()),
            ),
            ("event_ts", ts(events.iter().map(|e| Some(e.3)).collect())),
            ("page", strings(events.iter().map(|e| Some(e.4)).collect())),
            ("country", strings(events.iter().map(|e| e.5).collect())),
            (
                "amount",
                Arc::new(Float64Array::from(
                    events.iter().map(|e| e.6).collect::<Vec<_>>(),
                )),
            ),
            ("source_kind", strings(vec![Some("kafka"); n])),
            ("source_topic", strings(vec![Some("events"); n])),
            ("source_partition", Arc::new(Int32Array::from(vec![0; n]))),
            (
                "source_offset",
                Arc::new(Int64Array::from_iter_values(events.iter().map(|e| e.7))),
            ),
            ("batch_id", strings(vec![Some("batch-1"); n])),
            ("ingested_at", ts(vec![Some(INGESTED); n])),
            ("contract_version", Arc::new(Int32Array::from(vec![1; n]))),
        ],
    )
}

fn dead_letters() -> RecordBatch {
    batch(
        lake::schema::dead_letters(),
        vec![
            ("source_kind", strings(vec![Some("kafka"), Some("kafka")])),
            (
                "source_topic",
                strings(vec![Some("events"), Some("events")]),
            ),
            ("source_partition", Arc::new(Int32Array::from(vec![0, 0]))),
            ("source_offset", Arc::new(Int64Array::from(vec![10, 11]))),
            (
                "record_index",
                Arc::new(Int32Array::from(vec![Some(3), None])),
            ),
            ("ingested_at", ts(vec![Some(INGESTED), Some(INGESTED)])),
            ("contract_version", Arc::new(Int32Array::from(vec![1, 1]))),
            (
                "error_kind",
                strings(vec![Some("invalid_record"), Some("corrupt_batch")]),
            ),
            (
                "error_code",
                strings(vec![Some("out_of_range"), Some("not_utf8")]),
            ),
            (
                "error_message",
                strings(vec![
                    Some("user_id: -1 is not > 0"),
                    Some("batch is not UTF-8"),
                ]),
            ),
            (
                "raw_payload",
                Arc::new(BinaryArray::from(vec![
                    &br#"{"user_id":-1}"#[..],
                    &[0xff, 0xfe][..],
                ])),
            ),
        ],
    )
}

pub fn parquet(batch: &RecordBatch) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), None).expect("writer");
    writer.write(batch).expect("write");
    writer.close().expect("close");
    bytes
}

fn checkpoints() -> Vec<(String, Vec<u8>)> {
    let kafka = SourceId::kafka(EVENTS, "events", 0);
    let mut k = Checkpoint::initial(kafka.clone());
    k.position = Position::Kafka { next_offset: 42 };
    k.totals = Totals {
        micro_batches: 2,
        messages: 42,
        bronze_rows: 3,
        dead_letter_rows: 2,
    };
    k.updated_at = "2026-01-02T00:00:05.000Z".into();
    k.writer = "consumer-test".into();
    let files = SourceId::files(EVENTS, &default_raw_prefix(EVENTS));
    let mut f = Checkpoint::initial(files.clone());
    f.position = Position::Files {
        after_key: Some("raw/events/r/000000004.json".into()),
    };
    f.intent = Some(Intent {
        seq: 5,
        range: Range::key("raw/events/r/000000005.json")
            .through(Range::key("raw/events/r/000000006.json")),
        messages: 2,
        contract: None,
    });
    f.updated_at = "2026-01-02T00:00:06.000Z".into();
    f.writer = "consumer-files".into();
    [(kafka, k), (files, f)]
        .into_iter()
        .map(|(source, c)| {
            (
                source.checkpoint_key(),
                serde_json::to_vec_pretty(&c).expect("json"),
            )
        })
        .collect()
}

/// The objects of the test lake, keyed relative to the lake root: three
/// events over two days, two dead letters, two checkpoints.
pub fn lake_objects() -> Vec<(String, Vec<u8>)> {
    const DAY1: i64 = 1_767_261_600_000_000; // 2026-01-01T10:00:00Z
    let mut objects = vec![
        (
            "bronze/events/event_date=2026-01-01/kafka-events-p0-00000000000000000000-00000000000000000019.parquet"
                .to_string(),
            parquet(&bronze(&[
                ("00000000-0000-4000-8000-000000000001", 1, "page_view", DAY1, "/home", Some("NL"), None, 0),
                // 2026-01-01T23:59:59.5Z: still the first day in UTC.
                ("00000000-0000-4000-8000-000000000002", 2, "purchase", 1_767_311_999_500_000, "/checkout", None, Some(9.5), 1),
            ])),
        ),
        (
            "bronze/events/event_date=2026-01-02/kafka-events-p0-00000000000000000020-00000000000000000041.parquet"
                .to_string(),
            parquet(&bronze(&[(
                "00000000-0000-4000-8000-000000000003",
                1,
                "click",
                1_767_312_001_000_000,
                "/product/7",
                Some("DE"),
                None,
                20,
            )])),
        ),
        (
            "dead_letters/events/event_date=2026-01-02/kafka-events-p0-00000000000000000000-00000000000000000019.parquet".to_string(),
            parquet(&dead_letters()),
        ),
    ];
    objects.extend(checkpoints());
    objects
}

pub fn write_local_lake(root: &Path) {
    write_objects(root, lake_objects());
}

/// The local lake at `root`.
pub fn local_lake(root: &Path) -> Lake {
    Lake::open(&lake::LakeArgs {
        lake_url: root.display().to_string(),
        ..Default::default()
    })
    .expect("local lake")
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Writes `objects` into the local lake at `root` and commits its data files.
pub fn write_objects(root: &Path, objects: Vec<(String, Vec<u8>)>) {
    runtime().block_on(store_objects(&local_lake(root), objects));
}

/// Uploads `objects`, then commits every Parquet object under `bronze/<t>/`
/// or `dead_letters/<t>/` to that table's Delta log, one commit per object in
/// key order (created with the first object's schema, as the consumer
/// creates it), like micro-batches of the source `fixture`.
pub async fn store_objects(lake: &Lake, objects: Vec<(String, Vec<u8>)>) {
    lake.ensure_bucket(true).await.expect("bucket");
    let mut tables: std::collections::BTreeMap<String, Vec<(String, Vec<u8>)>> = Default::default();
    for (key, bytes) in objects {
        lake.store
            .put(&Lake::path(&key), PutPayload::from(bytes.clone()))
            .await
            .expect("put");
        let mut parts = key.splitn(3, '/');
        if let (Some(layer @ ("bronze" | "dead_letters")), Some(table), Some(file)) =
            (parts.next(), parts.next(), parts.next())
        {
            if file.ends_with(".parquet") && !file.starts_with("_delta_log/") {
                tables
                    .entry(format!("{layer}/{table}"))
                    .or_default()
                    .push((file.to_string(), bytes));
            }
        }
    }
    for (prefix, mut files) in tables {
        files.sort();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            bytes::Bytes::from(files[0].1.clone()),
        )
        .expect("parquet");
        let mut table = delta::Table::open_or_create(lake, &prefix, reader.schema())
            .await
            .expect("Delta table");
        for (path, bytes) in files {
            commit(&mut table, &path, &bytes).await;
        }
    }
}

/// Commits the removal of the file `path` from the table under `prefix`
/// (as a compaction or vacuum would, without deleting the object): the
/// next version's snapshot no longer has it.
pub async fn remove_file(lake: &Lake, prefix: &str, path: &str) -> u64 {
    let table = delta::Table::open(lake, prefix, delta::AsOf::Latest)
        .await
        .expect("open")
        .expect("a table");
    let version = table.version() + 1;
    let now = chrono::Utc::now().timestamp_millis();
    let lines = [
        json!({"commitInfo": {"timestamp": now, "operation": "DELETE", "operationParameters": {}}}),
        json!({"remove": {"path": path, "deletionTimestamp": now, "dataChange": true,
                          "extendedFileMetadata": false}}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    lake.store
        .put_opts(
            &Lake::path(&format!("{prefix}/_delta_log/{version:020}.json")),
            PutPayload::from(text.into_bytes()),
            object_store::PutMode::Create.into(),
        )
        .await
        .expect("commit the removal");
    version
}

/// Commits the uploaded file `path` (relative to the table) of `bytes`.
pub async fn commit(table: &mut delta::Table, path: &str, bytes: &[u8]) -> u64 {
    let rows = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(bytes.to_vec()),
    )
    .expect("parquet")
    .metadata()
    .file_metadata()
    .num_rows() as u64;
    let file = delta::DataFile {
        path: path.to_string(),
        event_date: path
            .split('/')
            .find_map(|p| p.strip_prefix("event_date="))
            .map(String::from),
        size: bytes.len() as i64,
        rows,
    };
    let through = table.version() as i64 + 1;
    match table
        .append("fixture", through, &[file])
        .await
        .expect("commit")
    {
        delta::Committed::Version(v) => v,
        other => panic!("{path}: {other:?}"),
    }
}

pub fn contract_file(name: &str) -> String {
    format!("{}/../contracts/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub fn contract(name: &str) -> Contract {
    Contract::load(Path::new(&contract_file(name))).expect("the contract compiles")
}

pub fn put(root: &Path, key: &str, bytes: &[u8]) {
    let path = root.join(key);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, bytes).expect("write");
}

/// A batch of `schema` from JSON rows: arrow's JSON reader builds nested
/// columns and parses timestamps. It cannot resolve the zone name `UTC`
/// (that needs chrono-tz), so timestamp columns are read as naive UTC and
/// given their zone afterwards.
fn json_batch(schema: SchemaRef, rows: &[serde_json::Value]) -> RecordBatch {
    let naive = |f: &Arc<Field>| match f.data_type() {
        DataType::Timestamp(unit, Some(_)) => Arc::new(
            f.as_ref()
                .clone()
                .with_data_type(DataType::Timestamp(*unit, None)),
        ),
        _ => f.clone(),
    };
    let read_as = Arc::new(Schema::new(
        schema.fields().iter().map(naive).collect::<Vec<_>>(),
    ));
    let text: String = rows.iter().map(|row| format!("{row}\n")).collect();
    let batch = arrow::json::ReaderBuilder::new(read_as)
        .build(std::io::Cursor::new(text))
        .expect("reader")
        .next()
        .expect("one batch")
        .expect("valid rows");
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| match field.data_type() {
            DataType::Timestamp(_, Some(tz)) => Arc::new(
                column
                    .as_primitive::<TimestampMicrosecondType>()
                    .clone()
                    .with_timezone(tz.clone()),
            ) as ArrayRef,
            _ => column.clone(),
        })
        .collect();
    RecordBatch::try_new(schema, columns).expect("the schema's batch")
}

/// Rows of `bronze.orders`, with the same lineage each.
fn orders(rows: &[serde_json::Value]) -> RecordBatch {
    let lineage = json!({
        "source_kind": "files", "batch_id": "r-000000001", "record_index": 0,
        "ingested_at": "2026-01-02T00:00:05Z", "contract_version": 1,
    });
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            let mut row = row.clone();
            for (k, v) in lineage.as_object().expect("object") {
                row[k] = v.clone();
            }
            row
        })
        .collect();
    json_batch(lake::schema::bronze(&contract("orders.schema.json")), &rows)
}

fn order(id: u32, day: &str, skus: &[&str]) -> serde_json::Value {
    let items: Vec<serde_json::Value> = skus
        .iter()
        .map(|sku| json!({"sku": sku, "category": "books", "qty": 2, "unit_price": 5.5}))
        .collect();
    json!({
        "order_id": format!("ord_{id:08}"), "customer_id": "cus_000001",
        "order_ts": format!("{day}T09:00:00Z"), "status": "PLACED", "currency": "EUR",
        "items": items, "total": 11.0 * skus.len() as f64, "coupon": null,
    })
}

/// The dead letters of `orders`: one invalid record.
fn order_dead_letters() -> RecordBatch {
    let row = json!({
        "source_kind": "files", "source_key": "raw/orders/r/000000001.json", "record_index": 1,
        "ingested_at": "2026-01-02T00:00:05Z", "contract_version": 1,
        "error_kind": "invalid_record", "error_code": "not_in_enum",
        "error_message": "field `status` must be one of the enum values",
        // arrow's JSON reader takes BLOBs as hex.
        "raw_payload": "7b7d",
    });
    json_batch(lake::schema::dead_letters(), &[row])
}

/// The `orders` table: three rows over two days with nested `items`, one
/// dead letter, its stored contract v1 and its files checkpoint.
pub fn orders_objects() -> Vec<(String, Vec<u8>)> {
    let source = SourceId::files("orders", "raw/orders/");
    let mut checkpoint = Checkpoint::initial(source.clone());
    checkpoint.position = Position::Files {
        after_key: Some("raw/orders/r/000000002.json".into()),
    };
    checkpoint.totals = Totals {
        micro_batches: 2,
        messages: 2,
        bronze_rows: 3,
        dead_letter_rows: 1,
    };
    vec![
        (
            "bronze/orders/event_date=2026-01-01/files-raw-orders-000000000000.parquet".into(),
            parquet(&orders(&[
                order(1, "2026-01-01", &["sku_00001", "sku_00002"]),
                order(2, "2026-01-01", &["sku_00003"]),
            ])),
        ),
        (
            "bronze/orders/event_date=2026-01-02/files-raw-orders-000000000001.parquet".into(),
            parquet(&orders(&[order(3, "2026-01-02", &["sku_00004"])])),
        ),
        (
            "dead_letters/orders/event_date=2026-01-02/files-raw-orders-000000000000.parquet"
                .into(),
            parquet(&order_dead_letters()),
        ),
        (
            contract_key("orders", 1),
            std::fs::read(contract_file("orders.schema.json")).expect("orders contract"),
        ),
        (
            source.checkpoint_key(),
            serde_json::to_vec_pretty(&checkpoint).expect("json"),
        ),
    ]
}

/// The binary with only the environment a test gives it, run in `dir` so
/// no `.env` of the developer is picked up.
pub fn inspector(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_inspector"));
    command
        .env_clear()
        .current_dir(dir)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::var_os("HOME").unwrap_or_default())
        .env("XDG_CACHE_HOME", dir.join("cache"))
        // A closed port: status must report the lag as n/a, not fail.
        .env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
        // delta_scan views, as where the extension is installed; tests of
        // the file-list views pass --file-list.
        .env("DUCKDB_DELTA_EXTENSION", testkit::delta_extension())
        .args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("inspector runs")
}

/// stdout of a run that must succeed.
pub fn ok(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "the secret was printed"
    );
    stdout
}

pub fn json(output: &Output) -> serde_json::Value {
    let stdout = ok(output);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// An interactive `inspector shell` over the local lake at `root`.
pub struct Shell {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Shell {
    pub fn start(root: &Path) -> Shell {
        Shell::start_with(root, &[])
    }

    /// `inspector shell ARGS`.
    pub fn start_with(root: &Path, args: &[&str]) -> Shell {
        let mut child = Command::new(env!("CARGO_BIN_EXE_inspector"))
            .env_clear()
            .current_dir(root)
            .env("HOME", root)
            .env("LAKE_URL", root)
            .env("DUCKDB_DELTA_EXTENSION", testkit::delta_extension())
            .arg("shell")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("shell starts");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Shell {
            child,
            stdin,
            stdout,
        }
    }

    /// Types `input` and reads up to the row-count line that ends every result.
    pub fn send(&mut self, input: &str) -> String {
        writeln!(self.stdin, "{input}").expect("write");
        let mut text = String::new();
        loop {
            let mut line = String::new();
            if self.stdout.read_line(&mut line).expect("read") == 0 {
                panic!("the shell ended early: {text}");
            }
            text.push_str(&line);
            if line.starts_with('(') && line.contains("row") {
                return text;
            }
        }
    }

    /// `.quit`; the shell must exit 0. Returns its output.
    pub fn quit(mut self) -> Output {
        writeln!(self.stdin, ".quit").expect("write");
        drop(self.stdin);
        let out = self.child.wait_with_output().expect("shell ends");
        assert!(out.status.success());
        out
    }
}
