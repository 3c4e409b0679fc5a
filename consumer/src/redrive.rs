//! `consumer redrive`: the dead letters of a table decoded again under the
//! contract and limits in force now, to bring back what a fix lets through
//! (docs/DESIGN.md §15).
//!
//! The tables stay append-only. A re-drive appends to bronze the records
//! that pass now, with their original lineage and its own `redrive_id` and
//! `redriven_at`, and to the dead letters the records that fail another way
//! than before; the views (lakedb) show each position on one side only. It
//! runs under an intent, `_redrives/<table>/<id>.json`, that records the
//! snapshots it read and the contract and limits it decoded under: a run
//! killed half-way is finished by the next `consumer redrive`, which
//! produces the same rows, and the `txn` `redrive-<id>` in each table's log
//! says which of the two commits landed. The dead letters are committed
//! first and bronze last, always (with no files if nothing moved): the
//! views count a re-drive's dead-letter rows only once bronze holds its
//! `txn`, so a reader never sees a record on both sides or on neither.
//!
//! `--dry-run` takes the same path up to the files and writes nothing.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{Int32Type, Int64Type, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::{StreamExt, TryStreamExt};
use lake::config::KafkaArgs;
use lake::decoder::{Decoder, Record};
use lake::event::{ErrorCode, Limits, Rejection, OVERSIZED_PREFIX_BYTES};
use lake::layout::{self, SourceId};
use lake::redrive::{self as intents, CodeSummary, Intent, Summary};
use lake::schema::{POSITION_COLUMNS, REDRIVEN_AT, REDRIVE_ID};
use lake::{Lake, StoreError};
use object_store::{ObjectStoreExt, PutMode, PutPayload};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStreamBuilder};
use parquet::arrow::ProjectionMask;
use tracing::info;

use crate::decode::{decode_batch, Lineage, Rows};
use crate::retry::{retry, Attempts};
use crate::write::{self, Encoded, Layer, MicroBatch, Redrive};

/// Which dead letters a re-drive takes: of one table, with one of `codes`
/// (all when empty), ingested in `[since, until)`.
#[derive(Debug, Clone)]
pub struct Selection {
    pub table: String,
    pub codes: Vec<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl Selection {
    fn takes(&self, dead: &DeadLetter) -> bool {
        let at = dead.ingested_at;
        (self.codes.is_empty() || self.codes.contains(&dead.code))
            && self
                .since
                .is_none_or(|since| at >= since.timestamp_micros())
            && self.until.is_none_or(|until| at < until.timestamp_micros())
    }

    fn recorded(&self) -> intents::Selection {
        let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        intents::Selection {
            codes: self.codes.clone(),
            since: self.since.as_ref().map(time),
            until: self.until.as_ref().map(time),
        }
    }

    fn from_recorded(table: &str, recorded: &intents::Selection) -> anyhow::Result<Selection> {
        let time = |t: &Option<String>| -> anyhow::Result<Option<DateTime<Utc>>> {
            t.as_deref()
                .map(|t| {
                    DateTime::parse_from_rfc3339(t)
                        .map(|t| t.with_timezone(&Utc))
                        .with_context(|| format!("the intent's time {t}"))
                })
                .transpose()
        };
        Ok(Selection {
            table: table.to_string(),
            codes: recorded.codes.clone(),
            since: time(&recorded.since)?,
            until: time(&recorded.until)?,
        })
    }
}

/// The message a row came from: its source and where in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Message {
    kind: String,
    topic: Option<String>,
    partition: Option<i32>,
    offset: Option<i64>,
    key: Option<String>,
}

/// A record's place: its message and its index there (`None`: the whole
/// batch, a corrupt one).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Position {
    message: Message,
    index: Option<i32>,
}

/// One dead-letter row, as much of it as a re-drive needs.
#[derive(Debug, Clone)]
struct DeadLetter {
    position: Position,
    batch_id: Option<String>,
    kafka_timestamp: Option<i64>,
    ingested_at: i64,
    code: String,
    message: String,
    raw: Vec<u8>,
    /// When a re-drive wrote it; `None` for normal ingestion.
    redriven_at: Option<i64>,
}

impl DeadLetter {
    fn source(&self, table: &str) -> SourceId {
        let m = &self.position.message;
        match (m.kind.as_str(), &m.topic, m.partition) {
            ("kafka", Some(topic), Some(partition)) => SourceId::kafka(table, topic, partition),
            // The files source's rows name no prefix; their key says it all.
            _ => SourceId::files(table, ""),
        }
    }

    fn lineage(&self) -> Lineage {
        Lineage {
            offset: self.position.message.offset,
            key: self.position.message.key.clone(),
            batch_id: self.batch_id.clone(),
            kafka_timestamp_micros: self.kafka_timestamp,
        }
    }

    /// Only the first 64 KiB of an `oversized` batch were kept.
    fn is_truncated(&self) -> bool {
        self.position.index.is_none()
            && self.code == ErrorCode::Oversized.as_str()
            && self.raw.len() >= OVERSIZED_PREFIX_BYTES
    }
}

/// Where the re-driven rows of bronze are: the positions, and the messages
/// (a corrupt batch one of whose records is in bronze has left).
#[derive(Debug, Default)]
struct Moved {
    positions: HashSet<Position>,
    messages: HashSet<Message>,
}

/// The dead letters as the view `dead_letters.<table>` shows them over
/// these snapshots: per position the newest row, unless bronze holds a
/// re-driven row of it; a corrupt batch whose records have rows of a
/// re-drive (either table) has left.
fn current(rows: Vec<DeadLetter>, moved: &Moved) -> Vec<DeadLetter> {
    let split: HashSet<Message> = rows
        .iter()
        .filter(|d| d.redriven_at.is_some() && d.position.index.is_some())
        .map(|d| d.position.message.clone())
        .chain(moved.messages.iter().cloned())
        .collect();
    let mut newest: BTreeMap<Position, DeadLetter> = BTreeMap::new();
    for row in rows {
        match newest.get(&row.position) {
            Some(kept) if kept.redriven_at >= row.redriven_at => {}
            _ => {
                newest.insert(row.position.clone(), row);
            }
        }
    }
    newest
        .into_values()
        .filter(|d| !moved.positions.contains(&d.position))
        .filter(|d| d.position.index.is_some() || !split.contains(&d.position.message))
        .collect()
}

/// Reads every dead-letter row of the table at `version`.
async fn read_dead_letters(
    lake: &Lake,
    table: &str,
    version: u64,
) -> anyhow::Result<Vec<DeadLetter>> {
    let prefix = layout::dead_letters_prefix(table);
    let snapshot = delta::Table::open(lake, &prefix, delta::AsOf::Version(version))
        .await?
        .ok_or_else(|| anyhow::anyhow!("{prefix}: no Delta log"))?;
    let mut out = Vec::new();
    for file in snapshot.files().await? {
        let key = format!("{prefix}/{}", file.path);
        let bytes = lake.store.get(&Lake::path(&key)).await?.bytes().await?;
        for batch in ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()? {
            dead_letter_rows(&batch?, &mut out)
                .map_err(|e| anyhow::anyhow!("{}: {e}", lake.url_of(&key)))?;
        }
    }
    Ok(out)
}

/// The position columns of a batch of either table.
struct PositionColumns<'a> {
    kind: &'a arrow::array::StringArray,
    topic: &'a arrow::array::StringArray,
    partition: &'a arrow::array::Int32Array,
    offset: &'a arrow::array::Int64Array,
    key: &'a arrow::array::StringArray,
    index: &'a arrow::array::Int32Array,
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, String> {
    batch
        .column_by_name(name)
        .ok_or_else(|| format!("no column {name}"))
}

impl<'a> PositionColumns<'a> {
    fn of(batch: &'a RecordBatch) -> Result<Self, String> {
        Ok(PositionColumns {
            kind: column(batch, "source_kind")?.as_string::<i32>(),
            topic: column(batch, "source_topic")?.as_string::<i32>(),
            partition: column(batch, "source_partition")?.as_primitive::<Int32Type>(),
            offset: column(batch, "source_offset")?.as_primitive::<Int64Type>(),
            key: column(batch, "source_key")?.as_string::<i32>(),
            index: column(batch, "record_index")?.as_primitive::<Int32Type>(),
        })
    }

    fn at(&self, row: usize) -> Position {
        let text =
            |a: &arrow::array::StringArray| a.is_valid(row).then(|| a.value(row).to_string());
        Position {
            message: Message {
                kind: self.kind.value(row).to_string(),
                topic: text(self.topic),
                partition: self
                    .partition
                    .is_valid(row)
                    .then(|| self.partition.value(row)),
                offset: self.offset.is_valid(row).then(|| self.offset.value(row)),
                key: text(self.key),
            },
            index: self.index.is_valid(row).then(|| self.index.value(row)),
        }
    }
}

fn timestamps(batch: &RecordBatch, name: &str) -> Option<Vec<Option<i64>>> {
    let array = batch.column_by_name(name)?;
    let array = array.as_primitive::<TimestampMicrosecondType>();
    Some(
        (0..array.len())
            .map(|i| array.is_valid(i).then(|| array.value(i)))
            .collect(),
    )
}

fn dead_letter_rows(batch: &RecordBatch, out: &mut Vec<DeadLetter>) -> Result<(), String> {
    let positions = PositionColumns::of(batch)?;
    let batch_id = column(batch, "batch_id")?.as_string::<i32>();
    let codes = column(batch, "error_code")?.as_string::<i32>();
    let messages = column(batch, "error_message")?.as_string::<i32>();
    let raw = column(batch, "raw_payload")?.as_binary::<i32>();
    let kafka_timestamp =
        timestamps(batch, "kafka_timestamp").ok_or("no column kafka_timestamp")?;
    let ingested = timestamps(batch, "ingested_at").ok_or("no column ingested_at")?;
    // Files written before re-drives existed lack the column: all NULL.
    let redriven = timestamps(batch, REDRIVEN_AT).unwrap_or_else(|| vec![None; batch.num_rows()]);
    for row in 0..batch.num_rows() {
        out.push(DeadLetter {
            position: positions.at(row),
            batch_id: batch_id
                .is_valid(row)
                .then(|| batch_id.value(row).to_string()),
            kafka_timestamp: kafka_timestamp[row],
            ingested_at: ingested[row].unwrap_or(i64::MIN),
            code: codes.value(row).to_string(),
            message: messages.value(row).to_string(),
            raw: raw.value(row).to_vec(),
            redriven_at: redriven[row],
        });
    }
    Ok(())
}

/// The re-driven rows of bronze at `version`. Only the files whose
/// `redrive_id` column is not all NULL (the footer's statistics say so)
/// are read, and of them only the position columns.
async fn read_moved(lake: &Lake, table: &str, version: Option<u64>) -> anyhow::Result<Moved> {
    let mut moved = Moved::default();
    let Some(version) = version else {
        return Ok(moved);
    };
    let prefix = layout::bronze_prefix(table);
    let snapshot = delta::Table::open(lake, &prefix, delta::AsOf::Version(version))
        .await?
        .ok_or_else(|| anyhow::anyhow!("{prefix}: no Delta log"))?;
    let files = snapshot.files().await?;
    let found: Vec<Vec<Position>> = futures::stream::iter(files.into_iter().map(|file| {
        let key = format!("{prefix}/{}", file.path);
        async move {
            redriven_positions(lake, &key)
                .await
                .with_context(|| format!("reading {}", lake.url_of(&key)))
        }
    }))
    .buffer_unordered(16)
    .try_collect()
    .await?;
    for position in found.into_iter().flatten() {
        moved.messages.insert(position.message.clone());
        moved.positions.insert(position);
    }
    Ok(moved)
}

async fn redriven_positions(lake: &Lake, key: &str) -> anyhow::Result<Vec<Position>> {
    let reader = ParquetObjectReader::new(lake.store.clone(), Lake::path(key));
    let builder = ParquetRecordBatchStreamBuilder::new(reader).await?;
    let metadata = builder.metadata().clone();
    let schema = metadata.file_metadata().schema_descr();
    let Some(redrive) = (0..schema.num_columns()).find(|i| schema.column(*i).name() == REDRIVE_ID)
    else {
        return Ok(Vec::new());
    };
    let row_groups: Vec<usize> = metadata
        .row_groups()
        .iter()
        .enumerate()
        .filter(|(_, group)| {
            let nulls = group
                .column(redrive)
                .statistics()
                .and_then(|s| s.null_count_opt());
            nulls.is_none_or(|n| n < group.num_rows() as u64)
        })
        .map(|(i, _)| i)
        .collect();
    if row_groups.is_empty() {
        return Ok(Vec::new());
    }
    let wanted = POSITION_COLUMNS.iter().copied().chain([REDRIVE_ID]);
    let mask = ProjectionMask::columns(schema, wanted);
    let mut stream = builder
        .with_row_groups(row_groups)
        .with_projection(mask)
        .build()?;
    let mut out = Vec::new();
    while let Some(batch) = stream.try_next().await? {
        let positions = PositionColumns::of(&batch).map_err(anyhow::Error::msg)?;
        let ids = column(&batch, REDRIVE_ID).map_err(anyhow::Error::msg)?;
        for row in (0..batch.num_rows()).filter(|r| ids.is_valid(*r)) {
            out.push(positions.at(row));
        }
    }
    Ok(out)
}

/// Where a whole batch is read again when its dead letter kept only its
/// first 64 KiB: the raw object, or the Kafka message at its offset.
struct Refetch<'a> {
    lake: &'a Lake,
    kafka: &'a KafkaArgs,
}

impl Refetch<'_> {
    async fn batch(&self, dead: &DeadLetter) -> Result<Vec<u8>, String> {
        let m = &dead.position.message;
        match (m.kind.as_str(), &m.topic, m.partition, m.offset, &m.key) {
            ("files", _, _, _, Some(key)) => {
                let got = self.lake.store.get(&Lake::path(key)).await;
                match got {
                    Ok(object) => object.bytes().await.map(|b| b.to_vec()),
                    Err(e) => Err(e),
                }
                .map_err(|e| {
                    format!(
                        "the raw object {} cannot be read: {e}",
                        self.lake.url_of(key)
                    )
                })
            }
            ("kafka", Some(topic), Some(partition), Some(offset), _) => {
                let (kafka, topic) = (self.kafka.clone(), topic.clone());
                tokio::task::spawn_blocking(move || {
                    kafka_message(&kafka, &topic, partition, offset)
                })
                .await
                .map_err(|e| format!("reading from Kafka: {e}"))?
            }
            _ => Err("its lineage names no source to read it from".into()),
        }
    }
}

/// The payload of one Kafka message, read by offset (no group, no commit).
fn kafka_message(
    kafka: &KafkaArgs,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<Vec<u8>, String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Message as _, Offset, TopicPartitionList};
    let at = format!("{topic}/{partition} offset {offset}");
    let consumer: BaseConsumer = kafka_client::client_config(
        kafka,
        &[
            ("group.id", "lake-redrive"),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "error"),
            ("receive.message.max.bytes", "1000000000"),
            ("client.id", "lake-redrive"),
        ],
    )
    .create()
    .map_err(|e| format!("creating a Kafka client for {at}: {e}"))?;
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Offset(offset))
        .map_err(|e| format!("{at}: {e}"))?;
    consumer
        .assign(&assignment)
        .map_err(|e| format!("{at}: {e}"))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(message)) if message.offset() == offset => {
                return Ok(message.payload().unwrap_or_default().to_vec())
            }
            Some(Ok(_)) => return Err(format!("Kafka no longer keeps {at}")),
            Some(Err(e)) => return Err(format!("reading {at} from Kafka: {e}")),
            None => {}
        }
    }
    Err(format!("{at} was not read from Kafka within 30 s"))
}

/// What decoding the selected dead letters again gives: the rows to write
/// and the report.
#[derive(Default)]
struct Judged {
    /// Per source and original ingestion time: the rows to write.
    batches: BTreeMap<(SourceId, i64), MicroBatch>,
    by_code: BTreeMap<String, CodeSummary>,
    rewritten: u64,
    /// Per original code: a few messages of those still failing.
    samples: BTreeMap<String, Vec<String>>,
}

/// Messages kept per code for the report.
const SAMPLES: usize = 3;

impl Judged {
    fn sample(&mut self, code: &str, message: String) {
        let samples = self.samples.entry(code.to_string()).or_default();
        if samples.len() < SAMPLES && !samples.contains(&message) {
            samples.push(message);
        }
    }
}

/// Hands one dead letter's rows to its micro-batch: a record decoded alone
/// keeps its original index, and a failure the same as the dead letter's
/// own is only counted.
struct Rejudge<'a> {
    dead: &'a DeadLetter,
    batch: &'a mut MicroBatch,
    tally: &'a mut CodeSummary,
    rewritten: &'a mut u64,
    failures: Vec<String>,
}

impl Rejudge<'_> {
    fn index(&self, index: Option<u32>) -> Option<u32> {
        match self.dead.position.index {
            Some(original) => Some(original as u32),
            None => index,
        }
    }
}

impl Rows for Rejudge<'_> {
    fn valid(&mut self, lineage: &Lineage, index: u32, record: &Record<'_>) {
        let index = self.index(Some(index)).expect("a record has an index");
        self.batch.valid(lineage, index, record);
        self.tally.moved += 1;
    }

    fn dead(&mut self, lineage: &Lineage, index: Option<u32>, rejection: Rejection, raw: &[u8]) {
        let index = self.index(index);
        let code = rejection.code.as_str();
        *self
            .tally
            .still_failing
            .entry(code.to_string())
            .or_default() += 1;
        self.failures.push(rejection.message.clone());
        let unchanged = index.map(|i| i as i32) == self.dead.position.index
            && code == self.dead.code
            && rejection.message == self.dead.message;
        if !unchanged {
            *self.rewritten += 1;
            self.batch.dead(lineage, index, rejection, raw);
        }
    }
}

/// Decodes every dead letter of `selected` again.
async fn judge(
    selected: &[DeadLetter],
    decoder: &Arc<Decoder>,
    limits: &Limits,
    redrive: &Redrive,
    refetch: &Refetch<'_>,
) -> Judged {
    let table = decoder.contract.table.table.clone();
    let mut judged = Judged::default();
    for dead in selected {
        let source = dead.source(&table);
        let batch = judged
            .batches
            .entry((source.clone(), dead.ingested_at))
            .or_insert_with(|| {
                MicroBatch::redriven(source, decoder.clone(), dead.ingested_at, redrive.clone())
            });
        let tally = judged.by_code.entry(dead.code.clone()).or_default();
        tally.selected += 1;
        let payload = if dead.is_truncated() {
            match refetch.batch(dead).await {
                Ok(whole) => whole,
                Err(why) => {
                    // It stays as it is; the report says why.
                    *tally.still_failing.entry(dead.code.clone()).or_default() += 1;
                    let message = format!("the whole batch cannot be read again: {why}");
                    judged.sample(&dead.code.clone(), message);
                    continue;
                }
            }
        } else if dead.position.index.is_none() {
            dead.raw.clone()
        } else {
            [b"[".as_slice(), &dead.raw, b"]"].concat()
        };
        let mut rows = Rejudge {
            dead,
            batch,
            tally,
            rewritten: &mut judged.rewritten,
            failures: Vec::new(),
        };
        decode_batch(&payload, &dead.lineage(), limits, decoder, &mut rows);
        for message in std::mem::take(&mut rows.failures) {
            judged.sample(&dead.code.clone(), message);
        }
    }
    judged
}

/// What `consumer redrive` was asked to do.
pub struct Request<'a> {
    pub lake: &'a Lake,
    pub kafka: &'a KafkaArgs,
    /// The table's decoder under the contract in force now.
    pub decoder: Arc<Decoder>,
    pub limits: Limits,
    pub selection: Selection,
    pub upload_concurrency: usize,
    pub worker_threads: usize,
}

/// `--dry-run`: judges the selection over the newest snapshots, prints the
/// report and writes nothing.
pub async fn dry_run(request: &Request<'_>) -> anyhow::Result<Summary> {
    let table = &request.selection.table;
    let redrive = Redrive {
        id: "dry-run".into(),
        at_micros: Utc::now().timestamp_micros(),
    };
    let dead_letters_version =
        latest_version(request.lake, &layout::dead_letters_prefix(table)).await?;
    let bronze_version = latest_version(request.lake, &layout::bronze_prefix(table)).await?;
    let selected = select(
        request.lake,
        table,
        dead_letters_version,
        bronze_version,
        &request.selection,
    )
    .await?;
    let refetch = Refetch {
        lake: request.lake,
        kafka: request.kafka,
    };
    let judged = judge(
        &selected,
        &request.decoder,
        &request.limits,
        &redrive,
        &refetch,
    )
    .await;
    let summary = summarise(&judged, None, None);
    println!(
        "dry run: {} dead letter(s) of table {table} selected; nothing was written",
        summary.selected
    );
    print_codes(&summary, &judged.samples);
    Ok(summary)
}

async fn latest_version(lake: &Lake, prefix: &str) -> anyhow::Result<Option<u64>> {
    Ok(delta::Table::open(lake, prefix, delta::AsOf::Latest)
        .await?
        .map(|t| t.version()))
}

/// The dead letters of the view over these snapshots that `selection` takes.
async fn select(
    lake: &Lake,
    table: &str,
    dead_letters_version: Option<u64>,
    bronze_version: Option<u64>,
    selection: &Selection,
) -> anyhow::Result<Vec<DeadLetter>> {
    let Some(version) = dead_letters_version else {
        return Ok(Vec::new());
    };
    let (rows, moved) = tokio::try_join!(
        read_dead_letters(lake, table, version),
        read_moved(lake, table, bronze_version)
    )?;
    Ok(current(rows, &moved)
        .into_iter()
        .filter(|d| selection.takes(d))
        .collect())
}

/// Finishes the open re-drives of the table (a run killed half-way), then
/// runs this one; prints its summary.
pub async fn run(request: &Request<'_>) -> anyhow::Result<Summary> {
    let lake = request.lake;
    let table = request.selection.table.clone();
    // Both tables gain the re-drive columns before a file has them, and
    // exist, so the intent can name their versions.
    let tables = crate::commit::Tables::open(lake, &request.decoder).await?;
    let listed = list_intents(lake, &table).await?;
    for intent in listed.iter().filter(|i| i.is_open()) {
        info!(table, id = %intent.id, "finishing a re-drive left open (interrupted)");
        let decoder =
            crate::tables::decoder_of(lake, &request.decoder, &intent.contract_fingerprint).await?;
        let (summary, samples) = execute(request, &tables, intent, &decoder).await?;
        println!(
            "finished re-drive {} of table {table}, left open before: {} moved, {} still failing",
            intent.id, summary.moved, summary.still_failing
        );
        print_codes(&summary, &samples);
    }
    let next = listed
        .iter()
        .filter_map(|i| i.id.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
        + 1;
    let started = Utc::now();
    let intent = Intent {
        id: intents::id(next),
        table: table.clone(),
        started_at: started.to_rfc3339_opts(SecondsFormat::Micros, true),
        redriven_at_micros: started.timestamp_micros(),
        selection: request.selection.recorded(),
        read_dead_letters_version: Some(tables.dead_letters.lock().await.refresh().await?),
        read_bronze_version: Some(tables.bronze.lock().await.refresh().await?),
        contract_fingerprint: request.decoder.fingerprint.clone(),
        contract_version: request.decoder.contract.table.version,
        limits: request.limits,
        summary: None,
    };
    create_intent(lake, &intent).await?;
    let (summary, samples) = execute(request, &tables, &intent, &request.decoder).await?;
    println!(
        "re-drive {} of table {table}: {} dead letter(s) selected, {} record(s) moved to bronze, \
         {} still failing ({} written again with a new code or message)",
        intent.id, summary.selected, summary.moved, summary.still_failing, summary.rewritten
    );
    print_codes(&summary, &samples);
    Ok(summary)
}

/// Judges the intent's selection over the snapshots it names, commits the
/// dead letters and then bronze under its `txn` (each skipped if its log
/// has it already), and closes the intent with the summary. Also returns a
/// few messages per code of what still fails, for the report.
async fn execute(
    request: &Request<'_>,
    tables: &crate::commit::Tables,
    intent: &Intent,
    decoder: &Arc<Decoder>,
) -> anyhow::Result<(Summary, BTreeMap<String, Vec<String>>)> {
    let lake = request.lake;
    let selection = Selection::from_recorded(&intent.table, &intent.selection)?;
    let selected = select(
        lake,
        &intent.table,
        intent.read_dead_letters_version,
        intent.read_bronze_version,
        &selection,
    )
    .await?;
    let redrive = Redrive {
        id: intent.id.clone(),
        at_micros: intent.redriven_at_micros,
    };
    let refetch = Refetch {
        lake,
        kafka: request.kafka,
    };
    let mut judged = judge(&selected, decoder, &intent.limits, &redrive, &refetch).await;
    let mut finished = Vec::new();
    for batch in judged.batches.values_mut() {
        finished.push((batch.decoder.clone(), batch.finish()?));
    }
    let parts: Vec<(&Decoder, &[write::Finished])> = finished
        .iter()
        .map(|(d, f)| (d.as_ref(), f.as_slice()))
        .collect();
    let app = intents::txn_app_id(&intent.id);
    let attempt = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let mut versions = [None, None];
    // Dead letters first: the views count them once bronze has the txn.
    for (i, layer) in [Layer::DeadLetters, Layer::Bronze].into_iter().enumerate() {
        let mut delta = match layer {
            Layer::Bronze => tables.bronze.lock().await,
            Layer::DeadLetters => tables.dead_letters.lock().await,
        };
        if delta.committed_through(&app).await?.is_some() {
            continue;
        }
        let files = write::encode(
            &intent.table,
            layer,
            &parts,
            (&app, &attempt),
            request.worker_threads,
        )?;
        if files.is_empty() && layer == Layer::DeadLetters {
            continue;
        }
        let refs: Vec<&Encoded> = files.iter().collect();
        retry("uploading re-driven rows", Attempts::AtMost(8), || {
            write::upload(lake, &refs, request.upload_concurrency)
        })
        .await?;
        let data: Vec<delta::DataFile> = files.iter().map(|f| f.file.clone()).collect();
        versions[i] = match delta.append(&app, 1, &data).await? {
            delta::Committed::Version(v) => Some(v),
            delta::Committed::Already => None,
            delta::Committed::Lost { .. } => {
                anyhow::bail!("{app}: another commit took this re-drive's txn")
            }
        };
    }
    let mut summary = summarise(&judged, versions[1], versions[0]);
    summary.finished_at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let closed = Intent {
        summary: Some(summary.clone()),
        ..intent.clone()
    };
    put_intent(lake, &closed, PutMode::Overwrite).await?;
    Ok((summary, judged.samples))
}

fn summarise(judged: &Judged, bronze: Option<u64>, dead_letters: Option<u64>) -> Summary {
    let by_code = judged.by_code.clone();
    Summary {
        finished_at: String::new(),
        selected: by_code.values().map(|c| c.selected).sum(),
        moved: by_code.values().map(|c| c.moved).sum(),
        still_failing: by_code
            .values()
            .flat_map(|c| c.still_failing.values())
            .sum(),
        rewritten: judged.rewritten,
        by_code,
        bronze_version: bronze,
        dead_letters_version: dead_letters,
    }
}

/// Every intent of the table, by id; one that cannot be read is an error
/// naming it (a re-drive must not guess what an unreadable one did).
async fn list_intents(lake: &Lake, table: &str) -> anyhow::Result<Vec<Intent>> {
    let mut out = Vec::new();
    for id in intents::ids(lake, table).await? {
        out.push(
            intents::read(lake, table, &id)
                .await
                .map_err(|why| anyhow::anyhow!("re-drive {id} of table {table}: {why}"))?,
        );
    }
    Ok(out)
}

/// Creates the intent under its id, refused if another re-drive took it.
async fn create_intent(lake: &Lake, intent: &Intent) -> anyhow::Result<()> {
    put_intent(lake, intent, PutMode::Create)
        .await
        .map_err(|e| match e.downcast_ref::<object_store::Error>() {
            Some(object_store::Error::AlreadyExists { .. }) => anyhow::anyhow!(
                "another re-drive of table {} took id {} at the same time; run again",
                intent.table,
                intent.id
            ),
            _ => e,
        })
}

async fn put_intent(lake: &Lake, intent: &Intent, mode: PutMode) -> anyhow::Result<()> {
    let key = intents::intent_key(&intent.table, &intent.id);
    let body = serde_json::to_vec_pretty(intent)?;
    retry(
        "writing the re-drive intent",
        Attempts::AtMost(5),
        || async {
            match lake
                .store
                .put_opts(
                    &Lake::path(&key),
                    PutPayload::from(body.clone()),
                    mode.clone().into(),
                )
                .await
            {
                Ok(_) => Ok(Ok(())),
                Err(e @ object_store::Error::AlreadyExists { .. }) => Ok(Err(e)),
                Err(e) => Err(StoreError::request(
                    format!("writing {}", lake.url_of(&key)),
                    e,
                )),
            }
        },
    )
    .await?
    .map_err(anyhow::Error::from)
}

/// The per-code table of a summary, with a few messages of what still fails.
fn print_codes(summary: &Summary, samples: &BTreeMap<String, Vec<String>>) {
    println!(
        "{:<24} {:>10} {:>10} {:>14}  still failing as",
        "error_code", "selected", "moved", "still failing"
    );
    for (code, c) in &summary.by_code {
        let failing: u64 = c.still_failing.values().sum();
        let codes: Vec<String> = c
            .still_failing
            .iter()
            .map(|(code, n)| format!("{code} {n}"))
            .collect();
        println!(
            "{code:<24} {:>10} {:>10} {failing:>14}  {}",
            c.selected,
            c.moved,
            codes.join(", ")
        );
        for sample in samples.get(code).into_iter().flatten() {
            println!("    e.g. {sample}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lake::contract::Contract;

    const VALID: &str = r#"{"event_id":"6d10eec2-dd31-4cbb-9b6c-1c4b2f1e0a11","user_id":7,"event_type":"click","event_ts":"2026-11-01T00:00:00Z","page":"/","country":"DE"}"#;

    fn message(offset: i64) -> Message {
        Message {
            kind: "kafka".into(),
            topic: Some("events".into()),
            partition: Some(0),
            offset: Some(offset),
            key: None,
        }
    }

    fn dead(offset: i64, index: Option<i32>, code: &str, raw: &str, at: Option<i64>) -> DeadLetter {
        DeadLetter {
            position: Position {
                message: message(offset),
                index,
            },
            batch_id: None,
            kafka_timestamp: None,
            ingested_at: 1,
            code: code.into(),
            message: format!("{code} message"),
            raw: raw.as_bytes().to_vec(),
            redriven_at: at,
        }
    }

    async fn judge_one(dead: &DeadLetter) -> Judged {
        let decoder = Arc::new(Decoder::new(Contract::events()));
        let dir = tempfile::tempdir().expect("tempdir");
        let lake = Lake::open(&lake::LakeArgs {
            lake_url: dir.path().display().to_string(),
            ..lake::LakeArgs::default()
        })
        .expect("lake");
        let kafka = KafkaArgs {
            kafka_bootstrap_servers: "127.0.0.1:1".into(),
            kafka_topic: "events".into(),
            kafka_settings: Vec::new(),
            env_settings: Vec::new(),
        };
        let refetch = Refetch {
            lake: &lake,
            kafka: &kafka,
        };
        let redrive = Redrive {
            id: "000001".into(),
            at_micros: 2,
        };
        judge(
            std::slice::from_ref(dead),
            &decoder,
            &Limits::default(),
            &redrive,
            &refetch,
        )
        .await
    }

    #[tokio::test]
    async fn a_record_that_passes_now_moves_with_its_index() {
        let judged = judge_one(&dead(5, Some(3), "unknown_event_type", VALID, None)).await;
        let tally = &judged.by_code["unknown_event_type"];
        assert_eq!((tally.selected, tally.moved), (1, 1));
        let mut batch = judged.batches.into_values().next().expect("a batch");
        assert_eq!((batch.bronze_rows(), batch.dead_letter_rows()), (1, 0));
        let finished = batch.finish().expect("finish");
        let rows = &finished[0].rows;
        let index = rows.column_by_name("record_index").expect("index");
        assert_eq!(index.as_primitive::<Int32Type>().value(0), 3);
        let ingested = rows.column_by_name("ingested_at").expect("ingested_at");
        assert_eq!(
            ingested.as_primitive::<TimestampMicrosecondType>().value(0),
            1
        );
        let id = rows.column_by_name(REDRIVE_ID).expect("redrive_id");
        assert_eq!(id.as_string::<i32>().value(0), "000001");
    }

    #[tokio::test]
    async fn a_failure_like_the_old_one_is_only_counted() {
        let bad = VALID.replace("\"click\"", "\"refund\"");
        let mut old = dead(5, Some(0), "unknown_event_type", &bad, None);
        let judged = judge_one(&old).await;
        let batch = judged.batches.values().next().expect("a batch");
        // The message differs from the made-up one: written again.
        assert_eq!((batch.dead_letter_rows(), judged.rewritten), (1, 1));
        old.message = judged.samples["unknown_event_type"][0].clone();
        let judged = judge_one(&old).await;
        let tally = &judged.by_code["unknown_event_type"];
        assert_eq!(tally.still_failing["unknown_event_type"], 1);
        assert_eq!(judged.rewritten, 0);
        assert_eq!(judged.batches.values().next().expect("batch").records(), 0);
    }

    #[tokio::test]
    async fn a_corrupt_batch_that_parses_now_is_split_into_its_records() {
        let bad = VALID.replace("\"user_id\":7", "\"user_id\":-1");
        let judged = judge_one(&dead(
            9,
            None,
            "not_json",
            &format!("[{VALID},{bad}]"),
            None,
        ))
        .await;
        let tally = &judged.by_code["not_json"];
        assert_eq!(tally.moved, 1);
        assert_eq!(tally.still_failing["out_of_range"], 1);
        let batch = judged.batches.values().next().expect("a batch");
        assert_eq!((batch.bronze_rows(), batch.dead_letter_rows()), (1, 1));
    }

    #[tokio::test]
    async fn the_kept_prefix_of_an_oversized_batch_needs_its_source() {
        let prefix = "x".repeat(OVERSIZED_PREFIX_BYTES);
        let mut row = dead(9, None, "oversized", &prefix, None);
        row.position.message = Message {
            kind: "files".into(),
            topic: None,
            partition: None,
            offset: None,
            key: Some("raw/events/gone.json".into()),
        };
        let judged = judge_one(&row).await;
        assert_eq!(judged.by_code["oversized"].still_failing["oversized"], 1);
        assert!(judged.samples["oversized"][0].contains("cannot be read again"));
        assert_eq!(judged.rewritten, 0);
    }

    #[test]
    fn the_current_dead_letters_are_the_newest_not_moved() {
        let rows = vec![
            dead(1, Some(0), "a", "x", None),
            // Rewritten by a re-drive: the newer row is current.
            dead(1, Some(1), "a", "x", None),
            dead(1, Some(1), "b", "x", Some(10)),
            // Moved to bronze.
            dead(2, Some(0), "a", "x", None),
            // A corrupt batch split by a re-drive: its record rows stand for it.
            dead(3, None, "not_json", "x", None),
            dead(3, Some(0), "c", "x", Some(10)),
        ];
        let mut moved = Moved::default();
        let gone = Position {
            message: message(2),
            index: Some(0),
        };
        moved.messages.insert(gone.message.clone());
        moved.positions.insert(gone);
        let kept: Vec<(i64, Option<i32>, String)> = current(rows, &moved)
            .into_iter()
            .map(|d| {
                (
                    d.position.message.offset.expect("an offset"),
                    d.position.index,
                    d.code,
                )
            })
            .collect();
        assert_eq!(
            kept,
            [
                (1, Some(0), "a".to_string()),
                (1, Some(1), "b".to_string()),
                (3, Some(0), "c".to_string())
            ]
        );
    }
}
