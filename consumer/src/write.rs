//! The micro-batch of one table in memory (Arrow builders of its contract's
//! columns, one set per event date) and its conversion to Parquet objects
//! under keys derived from its source range.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, Int32Array, Int32Builder, Int64Builder, StringArray,
    StringBuilder, TimestampMicrosecondArray, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use lake::columns::Column;
use lake::decoder::{Decoder, Record};
use lake::event::Limits;
use lake::event::{ErrorKind, Rejection};
use lake::layout::{self, SourceId};
use lake::position::Range;
use lake::{schema, Lake, StoreError};
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnChunk, ArrowColumnWriter};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{WriterProperties, WriterPropertiesBuilder};
use parquet::schema::types::ColumnPath;

use crate::decode::{dead_batch, decode_batch, Counts, Lineage, Rows};

/// The lineage columns that differ row by row, shared by both tables. What
/// is the same for the whole micro-batch (source and ingestion time) is not
/// appended row by row but added when its rows are finished
/// ([`lineage_columns`]).
struct LineageColumns {
    source_offset: Int64Builder,
    source_key: StringBuilder,
    batch_id: StringBuilder,
    record_index: Int32Builder,
    kafka_timestamp: TimestampMicrosecondBuilder,
}

impl LineageColumns {
    fn new() -> Self {
        LineageColumns {
            source_offset: Int64Builder::new(),
            source_key: StringBuilder::new(),
            batch_id: StringBuilder::new(),
            record_index: Int32Builder::new(),
            kafka_timestamp: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
        }
    }

    /// Rows appended since the last `finish`.
    fn len(&self) -> usize {
        self.record_index.len()
    }

    fn append(&mut self, lineage: &Lineage, index: Option<u32>) {
        self.source_offset.append_option(lineage.offset);
        self.source_key.append_option(lineage.key.as_deref());
        self.batch_id.append_option(lineage.batch_id.as_deref());
        self.record_index.append_option(index.map(|i| i as i32));
        self.kafka_timestamp
            .append_option(lineage.kafka_timestamp_micros);
    }

    fn finish(&mut self) -> [ArrayRef; ROW_LINEAGE] {
        [
            Arc::new(self.source_offset.finish()),
            Arc::new(self.source_key.finish()),
            Arc::new(self.batch_id.finish()),
            Arc::new(self.record_index.finish()),
            Arc::new(self.kafka_timestamp.finish()),
        ]
    }
}

/// How many lineage columns [`LineageColumns`] holds.
const ROW_LINEAGE: usize = 5;

/// The lineage columns in schema order: those of the whole micro-batch
/// around the `per_row` ones.
fn lineage_columns(
    source: &SourceId,
    ingested_at: i64,
    version: u32,
    per_row: &[ArrayRef],
) -> Vec<ArrayRef> {
    let rows = per_row[0].len();
    let (kind, topic, partition): (ArrayRef, ArrayRef, ArrayRef) = match source {
        SourceId::Kafka {
            topic, partition, ..
        } => (
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                "kafka", rows,
            ))),
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                topic, rows,
            ))),
            Arc::new(Int32Array::from_value(*partition, rows)),
        ),
        SourceId::Files { .. } => (
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                "files", rows,
            ))),
            Arc::new(StringArray::new_null(rows)),
            Arc::new(Int32Array::new_null(rows)),
        ),
    };
    let mut columns = vec![kind, topic, partition];
    columns.extend_from_slice(per_row);
    columns.push(Arc::new(
        TimestampMicrosecondArray::from_value(ingested_at, rows).with_timezone("UTC"),
    ));
    columns.push(Arc::new(Int32Array::from_value(version as i32, rows)));
    columns
}

/// Which re-drive wrote a micro-batch's rows (docs/DESIGN.md §15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redrive {
    pub id: String,
    /// When it started (µs since the epoch): the same on every row it
    /// writes, also when a replay after a crash writes them again.
    pub at_micros: i64,
}

/// The `redrive_id` and `redriven_at` columns: NULL for normal ingestion.
fn redrive_columns(redrive: Option<&Redrive>, rows: usize) -> [ArrayRef; 2] {
    match redrive {
        None => [
            Arc::new(StringArray::new_null(rows)),
            Arc::new(TimestampMicrosecondArray::new_null(rows).with_timezone("UTC")),
        ],
        Some(r) => [
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                &r.id, rows,
            ))),
            Arc::new(TimestampMicrosecondArray::from_value(r.at_micros, rows).with_timezone("UTC")),
        ],
    }
}

/// One event date's rows of bronze: the contract's columns and lineage.
struct BronzeColumns {
    data: Vec<Column>,
    lineage: LineageColumns,
}

impl BronzeColumns {
    fn new(decoder: &Decoder) -> Self {
        let fields = &decoder.bronze.fields()[..decoder.data_columns];
        BronzeColumns {
            data: fields.iter().map(|f| Column::new(f.data_type())).collect(),
            lineage: LineageColumns::new(),
        }
    }

    /// The contract's columns, then the lineage that differs by row.
    fn finish(&mut self) -> Vec<ArrayRef> {
        let mut columns: Vec<ArrayRef> = self.data.iter_mut().map(Column::finish).collect();
        columns.extend(self.lineage.finish());
        columns
    }
}

struct DeadLetterColumns {
    lineage: LineageColumns,
    error_kind: StringBuilder,
    error_code: StringBuilder,
    error_message: StringBuilder,
    raw_payload: BinaryBuilder,
}

impl DeadLetterColumns {
    fn new() -> Self {
        DeadLetterColumns {
            lineage: LineageColumns::new(),
            error_kind: StringBuilder::new(),
            error_code: StringBuilder::new(),
            error_message: StringBuilder::new(),
            raw_payload: BinaryBuilder::new(),
        }
    }

    /// The lineage that differs by row, then the error and the payload.
    fn finish(&mut self) -> Vec<ArrayRef> {
        let mut columns: Vec<ArrayRef> = self.lineage.finish().into();
        columns.push(Arc::new(self.error_kind.finish()));
        columns.push(Arc::new(self.error_code.finish()));
        columns.push(Arc::new(self.error_message.finish()));
        columns.push(Arc::new(self.raw_payload.finish()));
        columns
    }
}

/// Rows in Arrow builders, as decoding appends them: the newest rows of a
/// micro-batch, or those of messages decoded together apart from it
/// ([`Decoding`]).
struct Builders {
    decoder: Arc<Decoder>,
    /// Keyed by days since the epoch of `event_ts`: one bronze object per date.
    bronze: BTreeMap<i32, BronzeColumns>,
    dead: DeadLetterColumns,
    dead_codes: BTreeMap<&'static str, u64>,
}

impl Builders {
    fn new(decoder: Arc<Decoder>) -> Self {
        Builders {
            decoder,
            bronze: BTreeMap::new(),
            dead: DeadLetterColumns::new(),
            dead_codes: BTreeMap::new(),
        }
    }

    fn bronze_rows(&self) -> u64 {
        self.bronze.values().map(|c| c.lineage.len() as u64).sum()
    }

    fn dead_letter_rows(&self) -> u64 {
        self.dead.lineage.len() as u64
    }

    /// The rows as arrays; the builders are left empty.
    fn finish(&mut self) -> Sealed {
        let dead_letter_rows = self.dead_letter_rows();
        Sealed {
            bronze: std::mem::take(&mut self.bronze)
                .into_iter()
                .filter(|(_, c)| c.lineage.len() > 0)
                .map(|(day, mut c)| (day, c.finish()))
                .collect(),
            dead: (dead_letter_rows > 0).then(|| self.dead.finish()),
            dead_codes: std::mem::take(&mut self.dead_codes),
        }
    }
}

impl Rows for Builders {
    fn valid(&mut self, lineage: &Lineage, index: u32, record: &Record<'_>) {
        let decoder = &self.decoder;
        let columns = self
            .bronze
            .entry(record.event_day())
            .or_insert_with(|| BronzeColumns::new(decoder));
        let datums = record.datums();
        columns
            .data
            .iter_mut()
            .fold(0, |at, column| column.append(datums, at));
        columns.lineage.append(lineage, Some(index));
    }

    fn dead(&mut self, lineage: &Lineage, index: Option<u32>, rejection: Rejection, raw: &[u8]) {
        *self.dead_codes.entry(rejection.code.as_str()).or_default() += 1;
        let d = &mut self.dead;
        d.lineage.append(lineage, index);
        d.error_kind.append_value(ErrorKind::at(index).as_str());
        d.error_code.append_value(rejection.code.as_str());
        d.error_message.append_value(&rejection.message);
        d.raw_payload.append_value(raw);
    }
}

/// Finished rows, without the columns that are the same for a whole
/// micro-batch.
struct Sealed {
    /// By event date: [`BronzeColumns::finish`].
    bronze: Vec<(i32, Vec<ArrayRef>)>,
    /// [`DeadLetterColumns::finish`], if there are dead letters.
    dead: Option<Vec<ArrayRef>>,
    dead_codes: BTreeMap<&'static str, u64>,
}

/// Where the rows of a message end among those decoded with it: the rows
/// of each event date and the dead letters up to and including it.
#[derive(Debug, Clone, Default, PartialEq)]
struct Ends {
    bronze: Vec<(i32, usize)>,
    dead: usize,
    dead_codes: BTreeMap<&'static str, u64>,
}

impl Ends {
    fn of(builders: &Builders) -> Ends {
        Ends {
            bronze: builders
                .bronze
                .iter()
                .map(|(day, c)| (*day, c.lineage.len()))
                .collect(),
            dead: builders.dead.lineage.len(),
            dead_codes: builders.dead_codes.clone(),
        }
    }

    fn bronze_rows(&self, day: i32) -> usize {
        self.bronze
            .iter()
            .find(|(d, _)| *d == day)
            .map_or(0, |(_, rows)| *rows)
    }

    fn rows(&self) -> u64 {
        (self.bronze.iter().map(|(_, rows)| rows).sum::<usize>() + self.dead) as u64
    }
}

impl Sealed {
    fn bronze_rows(&self) -> u64 {
        self.bronze.iter().map(|(_, c)| c[0].len() as u64).sum()
    }

    fn dead_letter_rows(&self) -> u64 {
        self.dead.as_ref().map_or(0, |c| c[0].len() as u64)
    }

    /// The rows between two messages' ends (zero-copy slices).
    fn between(&self, from: &Ends, to: &Ends) -> Sealed {
        let slice = |columns: &[ArrayRef], start: usize, end: usize| -> Vec<ArrayRef> {
            columns
                .iter()
                .map(|c| c.slice(start, end - start))
                .collect()
        };
        let bronze: Vec<(i32, Vec<ArrayRef>)> = self
            .bronze
            .iter()
            .filter_map(|(day, columns)| {
                let (start, end) = (from.bronze_rows(*day), to.bronze_rows(*day));
                (end > start).then(|| (*day, slice(columns, start, end)))
            })
            .collect();
        let dead = self
            .dead
            .as_ref()
            .filter(|_| to.dead > from.dead)
            .map(|columns| slice(columns, from.dead, to.dead));
        let mut dead_codes = to.dead_codes.clone();
        for (code, n) in &from.dead_codes {
            *dead_codes.entry(code).or_default() -= n;
        }
        dead_codes.retain(|_, n| *n > 0);
        Sealed {
            bronze,
            dead,
            dead_codes,
        }
    }
}

/// Consecutive messages of one source decoded together apart from any
/// micro-batch (on a worker thread, ahead of the source): their rows in one
/// set of builders, and where each message's rows end.
pub struct Decoding {
    builders: Builders,
    ends: Vec<Ends>,
    counts: Vec<Counts>,
    started: Instant,
}

impl Decoding {
    pub fn new(decoder: Arc<Decoder>) -> Decoding {
        Decoding {
            builders: Builders::new(decoder),
            ends: Vec::new(),
            counts: Vec::new(),
            started: Instant::now(),
        }
    }

    /// Decodes the next message's `payload`.
    pub fn decode(&mut self, payload: &[u8], lineage: &Lineage, limits: &Limits) {
        let decoder = self.builders.decoder.clone();
        let counts = decode_batch(payload, lineage, limits, &decoder, &mut self.builders);
        self.ended(counts);
    }

    /// The next message as one dead letter of all of it ([`dead_batch`]).
    pub fn dead(&mut self, payload: &[u8], lineage: &Lineage, rejection: Rejection) {
        let counts = dead_batch(payload, lineage, rejection, &mut self.builders);
        self.ended(counts);
    }

    fn ended(&mut self, counts: Counts) {
        self.ends.push(Ends::of(&self.builders));
        self.counts.push(counts);
    }

    /// The rows, without the room their builders had grown (up to half of
    /// them): rows decoded ahead wait in memory until their micro-batch is
    /// encoded. 10 MiB less at 1,000,000 events, for a copy.
    pub fn finish(mut self) -> Decoded {
        let mut rows = self.builders.finish();
        for column in rows.bronze.iter_mut().flat_map(|(_, columns)| columns) {
            if let Some(column) = Arc::get_mut(column) {
                column.shrink_to_fit();
            }
        }
        Decoded {
            rows,
            ends: self.ends,
            counts: self.counts,
            taken: Ends::default(),
            time: Some(self.started.elapsed()),
        }
    }
}

/// Messages decoded together ([`Decoding`]), to be added to the
/// micro-batches they fall in, in source order: each takes exactly the rows
/// of its messages ([`MicroBatch::take`]).
pub struct Decoded {
    rows: Sealed,
    ends: Vec<Ends>,
    /// Each message's counts, in order.
    pub counts: Vec<Counts>,
    /// The rows already taken by micro-batches.
    taken: Ends,
    /// The time spent decoding, until a micro-batch takes rows.
    time: Option<std::time::Duration>,
}

impl Decoded {
    /// The rows of messages `..=message` not yet taken by a micro-batch.
    pub fn rows_through(&self, message: usize) -> u64 {
        self.ends[message].rows() - self.taken.rows()
    }
}

/// Everything buffered for one source since its last commit.
pub struct MicroBatch {
    pub source: SourceId,
    /// The source's table: its contract, columns and rules.
    pub decoder: Arc<Decoder>,
    /// The messages decoded into it; `None` while empty.
    pub range: Option<Range>,
    pub messages: u64,
    pub input_bytes: u64,
    pub started: Instant,
    /// Time spent decoding messages into the batch, for the progress log
    /// (on any thread).
    pub decode_time: std::time::Duration,
    /// The newest Kafka timestamp among the messages (µs), for freshness.
    pub newest_kafka_timestamp_micros: Option<i64>,
    /// Messages of the source after this batch, as far as the source knew
    /// when it flushed (Kafka: the high watermark of librdkafka's latest
    /// statistics; files: objects listed and not yet read).
    pub backlog: Option<u64>,
    ingested_at: i64,
    /// Set when a re-drive writes the batch.
    redrive: Option<Redrive>,
    /// The rows finished so far, in source order: those taken from
    /// messages decoded together, and the builders' rows before each.
    sealed: Vec<Sealed>,
    /// The rows decoded into the batch since the last of `sealed`.
    builders: Builders,
}

impl MicroBatch {
    pub fn new(source: SourceId, decoder: Arc<Decoder>) -> Self {
        MicroBatch {
            source,
            builders: Builders::new(decoder.clone()),
            decoder,
            range: None,
            messages: 0,
            input_bytes: 0,
            started: Instant::now(),
            decode_time: std::time::Duration::ZERO,
            newest_kafka_timestamp_micros: None,
            backlog: None,
            ingested_at: chrono::Utc::now().timestamp_micros(),
            redrive: None,
            sealed: Vec::new(),
        }
    }

    /// A batch of rows that `redrive` brings back from the dead letters,
    /// keeping their original ingestion time (`ingested_at`, µs).
    pub fn redriven(
        source: SourceId,
        decoder: Arc<Decoder>,
        ingested_at: i64,
        redrive: Redrive,
    ) -> Self {
        MicroBatch {
            ingested_at,
            redrive: Some(redrive),
            ..MicroBatch::new(source, decoder)
        }
    }

    /// Records the position (`at`: the range of that one message) of a
    /// message about to be decoded into this batch.
    pub fn add_message(&mut self, at: Range, bytes: usize) {
        self.range = Some(match self.range.take() {
            Some(range) => range.through(at),
            None => at,
        });
        self.messages += 1;
        self.input_bytes += bytes as u64;
    }

    pub fn is_empty(&self) -> bool {
        self.messages == 0
    }

    /// An empty batch of the same source and table.
    pub fn next(&self) -> MicroBatch {
        MicroBatch::new(self.source.clone(), self.decoder.clone())
    }

    /// Decodes one message's payload into the batch (its position already
    /// added with [`MicroBatch::add_message`]).
    pub fn decode(&mut self, payload: &[u8], lineage: &Lineage, limits: &Limits) -> Counts {
        let decoding = Instant::now();
        if let Some(at) = lineage.kafka_timestamp_micros {
            self.newest_kafka_timestamp_micros = self.newest_kafka_timestamp_micros.max(Some(at));
        }
        let decoder = self.decoder.clone();
        let counts = decode_batch(payload, lineage, limits, &decoder, self);
        self.decode_time += decoding.elapsed();
        counts
    }

    /// Takes the rows of `decoded`'s messages through `message` not taken
    /// yet (their positions already added with [`MicroBatch::add_message`]):
    /// they follow the rows before them.
    pub fn take(&mut self, decoded: &mut Decoded, message: usize) {
        let ends = &decoded.ends[message];
        let rows = decoded.rows.between(&decoded.taken, ends);
        decoded.taken = ends.clone();
        if self.builders.bronze_rows() + self.builders.dead_letter_rows() > 0 {
            let before = self.builders.finish();
            self.sealed.push(before);
        }
        self.decode_time += decoded.time.take().unwrap_or_default();
        self.sealed.push(rows);
    }

    pub fn bronze_rows(&self) -> u64 {
        self.sealed.iter().map(Sealed::bronze_rows).sum::<u64>() + self.builders.bronze_rows()
    }

    pub fn dead_letter_rows(&self) -> u64 {
        self.sealed
            .iter()
            .map(Sealed::dead_letter_rows)
            .sum::<u64>()
            + self.builders.dead_letter_rows()
    }

    pub fn records(&self) -> u64 {
        self.bronze_rows() + self.dead_letter_rows()
    }

    /// Dead letters by error code, for the metrics.
    pub fn dead_codes(&self) -> BTreeMap<&'static str, u64> {
        let mut codes = self.builders.dead_codes.clone();
        for sealed in &self.sealed {
            for (code, n) in &sealed.dead_codes {
                *codes.entry(code).or_default() += n;
            }
        }
        codes
    }

    /// Finishes the rows: bronze batches by event date, and the dead
    /// letters under the ingestion date; a date may have several batches,
    /// in source order, which [`encode`] writes to one file.
    pub fn finish(&mut self) -> anyhow::Result<Vec<Finished>> {
        let last = self.builders.finish();
        self.sealed.push(last);
        let version = self.decoder.contract.table.version;
        let redrive = self.redrive.as_ref();
        let data = self.decoder.data_columns;
        let mut bronze: BTreeMap<i32, Vec<RecordBatch>> = BTreeMap::new();
        let mut dead = Vec::new();
        for sealed in std::mem::take(&mut self.sealed) {
            for (day, columns) in sealed.bronze {
                let mut all = columns[..data].to_vec();
                all.extend(lineage_columns(
                    &self.source,
                    self.ingested_at,
                    version,
                    &columns[data..],
                ));
                all.extend(redrive_columns(redrive, columns[0].len()));
                bronze
                    .entry(day)
                    .or_default()
                    .push(RecordBatch::try_new(self.decoder.bronze.clone(), all)?);
            }
            if let Some(columns) = sealed.dead {
                let rows = columns[0].len();
                let mut all = lineage_columns(
                    &self.source,
                    self.ingested_at,
                    version,
                    &columns[..ROW_LINEAGE],
                );
                all.extend_from_slice(&columns[ROW_LINEAGE..]);
                all.extend(redrive_columns(redrive, rows));
                dead.push(RecordBatch::try_new(schema::dead_letters(), all)?);
            }
        }
        let mut finished: Vec<Finished> = bronze
            .into_iter()
            .flat_map(|(day, batches)| {
                batches.into_iter().map(move |rows| Finished {
                    layer: Layer::Bronze,
                    day,
                    rows,
                })
            })
            .collect();
        let today = self.ingested_at.div_euclid(86_400_000_000) as i32;
        finished.extend(dead.into_iter().map(|rows| Finished {
            layer: Layer::DeadLetters,
            day: today,
            rows,
        }));
        Ok(finished)
    }
}

/// A micro-batch's rows of one table and event date, finished.
pub struct Finished {
    pub layer: Layer,
    /// Days since the epoch: the `event_date` partition.
    pub day: i32,
    pub rows: RecordBatch,
}

/// Encodes the `layer` rows of the micro-batches of `table` (each with the
/// decoder that judged it) as Parquet: one file per event date, holding
/// every micro-batch's rows of that date, so a commit of many partitions
/// writes few, large files. Bronze rows of different contract versions go
/// to separate files. Named by `batch_tag` and `attempt`. Each file's
/// columns are encoded on up to `threads` threads.
pub fn encode(
    table: &str,
    layer: Layer,
    batches: &[(&Decoder, &[Finished])],
    (batch_tag, attempt): (&str, &str),
    threads: usize,
) -> anyhow::Result<Vec<Encoded>> {
    type Group<'a> = (&'a Decoder, Vec<&'a RecordBatch>);
    let mut groups: BTreeMap<(i32, &str), Group> = BTreeMap::new();
    for (decoder, finished) in batches {
        let contract = match layer {
            Layer::Bronze => decoder.fingerprint.as_str(),
            Layer::DeadLetters => "",
        };
        for f in finished.iter().filter(|f| f.layer == layer) {
            groups
                .entry((f.day, contract))
                .or_insert_with(|| (decoder, Vec::new()))
                .1
                .push(&f.rows);
        }
    }
    let inputs: Vec<(Vec<&RecordBatch>, WriterProperties)> = groups
        .values()
        .map(|(decoder, rows)| (rows.clone(), writer_properties(decoder)))
        .collect();
    let encoded = to_parquet(&inputs, threads)?;
    let mut files: Vec<Encoded> = Vec::with_capacity(groups.len());
    for (((day, _), (_, rows)), bytes) in groups.into_iter().zip(encoded) {
        // A second contract on one date: a name of its own.
        let same_day = files.iter().filter(|f| f.day == day).count();
        let name = match same_day {
            0 => attempt.to_string(),
            n => format!("{attempt}-{n}"),
        };
        let count = rows.iter().map(|r| r.num_rows() as u64).sum();
        files.push(Encoded::new(
            table,
            layer,
            day,
            count,
            (batch_tag, &name),
            bytes,
        ));
    }
    Ok(files)
}

/// The two Delta tables every lake table has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    Bronze,
    DeadLetters,
}

impl Layer {
    /// The layer's name in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Bronze => "bronze",
            Layer::DeadLetters => "dead_letters",
        }
    }
}

/// One encoded Parquet file of a commit and its entry in the log.
pub struct Encoded {
    pub layer: Layer,
    /// Days since the epoch: the `event_date` partition.
    pub day: i32,
    /// The object key, from the lake root.
    pub key: String,
    pub file: delta::DataFile,
    pub bytes: Bytes,
}

impl Encoded {
    fn new(
        table: &str,
        layer: Layer,
        day: i32,
        rows: u64,
        (batch_tag, attempt): (&str, &str),
        bytes: Bytes,
    ) -> Encoded {
        let path = layout::data_file_path(day, batch_tag, attempt);
        let prefix = match layer {
            Layer::Bronze => layout::bronze_prefix(table),
            Layer::DeadLetters => layout::dead_letters_prefix(table),
        };
        Encoded {
            layer,
            day,
            key: format!("{prefix}/{path}"),
            file: delta::DataFile {
                path,
                event_date: Some(layout::day_to_date(day)),
                size: bytes.len() as i64,
                rows,
            },
            bytes,
        }
    }
}

impl Rows for MicroBatch {
    fn valid(&mut self, lineage: &Lineage, index: u32, record: &Record<'_>) {
        self.builders.valid(lineage, index, record);
    }

    fn dead(&mut self, lineage: &Lineage, index: Option<u32>, rejection: Rejection, raw: &[u8]) {
        self.builders.dead(lineage, index, rejection, raw);
    }
}

/// zstd at level 1 (the parquet crate's default), and a dictionary only
/// where values repeat across rows of the micro-batch. Without one:
/// * values (nearly) all distinct: the table's key and event time, its
///   top-level floats, `extra`, and the dead letters' message and payload.
///   A dictionary of unique values is built, outgrows its page and is
///   thrown away (with dictionaries everywhere and level 3, encoding took
///   1.6x as long and the files were 13 % larger). These, and
///   `record_index` and `source_offset`, which count up, are written in
///   their type's delta encoding ([`delta_encoded`]);
/// * the lineage columns that hold one value for a whole micro-batch:
///   hashing every row into a one-entry dictionary costs more than PLAIN
///   pages of a repeated value, which zstd folds to a few bytes.
///
/// Against dictionaries on the lineage columns and PLAIN pages for the
/// rest, this takes 12.5 % fewer instructions on the `make bench` dataset
/// (callgrind, one core, 100,000 events) and the bronze files are 7 %
/// smaller: DELTA_LENGTH_BYTE_ARRAY writes a UUID key's lengths apart from
/// its text, so zstd sees only hex digits, and DELTA_BINARY_PACKED stores
/// event times as differences. DuckDB, Spark (3.3 on), Trino, pyarrow and
/// Polars read both encodings.
fn writer_properties(decoder: &Decoder) -> WriterProperties {
    let table = &decoder.contract.table;
    let data = &decoder.bronze.fields()[..decoder.data_columns];
    let distinct = data.iter().filter(|f| {
        Some(f.name()) == table.key.as_ref()
            || *f.name() == table.event_time
            || *f.name() == lake::contract::EXTRA
            || *f.data_type() == DataType::Float64
    });
    let dead_letters = schema::dead_letters();
    let lineage = dead_letters
        .fields()
        .iter()
        .filter(|f| DELTA_LINEAGE.contains(&f.name().as_str()));
    let mut builder =
        WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default()));
    for field in distinct.chain(lineage) {
        builder = delta_encoded(builder, field);
    }
    for column in MICRO_BATCH_CONSTANTS {
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(column), false);
    }
    builder.build()
}

/// The lineage columns (of both tables) written in a delta encoding: those
/// that count up along a partition, and the dead letters' own text.
const DELTA_LINEAGE: [&str; 4] = [
    "source_offset",
    "record_index",
    "error_message",
    "raw_payload",
];

/// The lineage columns that [`lineage_columns`] and [`redrive_columns`]
/// fill with one value for a whole micro-batch.
const MICRO_BATCH_CONSTANTS: [&str; 6] = [
    "source_kind",
    "source_topic",
    "ingested_at",
    schema::CONTRACT_VERSION,
    schema::REDRIVE_ID,
    schema::REDRIVEN_AT,
];

/// `field` (top-level) without a dictionary, in the delta encoding of its
/// Parquet type: DELTA_LENGTH_BYTE_ARRAY for strings and bytes,
/// DELTA_BINARY_PACKED for integers, dates and timestamps; PLAIN otherwise.
fn delta_encoded(builder: WriterPropertiesBuilder, field: &Field) -> WriterPropertiesBuilder {
    let column = ColumnPath::from(field.name().as_str());
    let builder = builder.set_column_dictionary_enabled(column.clone(), false);
    match field.data_type() {
        DataType::Utf8 | DataType::Binary => {
            builder.set_column_encoding(column, Encoding::DELTA_LENGTH_BYTE_ARRAY)
        }
        DataType::Int32 | DataType::Int64 | DataType::Date32 | DataType::Timestamp(..) => {
            builder.set_column_encoding(column, Encoding::DELTA_BINARY_PACKED)
        }
        _ => builder,
    }
}

/// Column writers alive at a time per encoding thread. Each holds its own
/// zstd contexts (about 100 KiB before it writes a byte): a commit of 400
/// partitions spanning many event dates has thousands of column chunks,
/// and creating every writer up front took 1 GiB at a backlog of 400
/// partitions.
const COLUMN_WRITERS_PER_THREAD: usize = 64;

/// One Parquet file per input (batches that share a schema, and its
/// properties), each the file `ArrowWriter` writes (the same schema,
/// metadata and row groups): only who encodes what differs. Every column
/// chunk of every file is one task for `threads` threads, so a commit of
/// many small files and one of a single large file both keep them busy.
/// The files are encoded in waves of at most [`COLUMN_WRITERS_PER_THREAD`]
/// column chunks per thread (at least one file each), so memory does not
/// grow with the number of files. Encoding (Arrow → pages → zstd) is about
/// half of the consumer's CPU time on one core.
fn to_parquet(
    inputs: &[(Vec<&RecordBatch>, WriterProperties)],
    threads: usize,
) -> anyhow::Result<Vec<Bytes>> {
    let most = COLUMN_WRITERS_PER_THREAD * threads.max(1);
    let mut out = Vec::with_capacity(inputs.len());
    let mut rest = inputs;
    while !rest.is_empty() {
        let mut chunks = 0;
        let wave = rest
            .iter()
            .position(|(batches, properties)| {
                chunks += column_chunks(batches, properties);
                chunks > most
            })
            .unwrap_or(rest.len())
            .max(1);
        out.extend(encode_wave(&rest[..wave], threads)?);
        rest = &rest[wave..];
    }
    Ok(out)
}

/// The column chunks of one file: its row groups times its columns (a
/// nested column counts once, as it is one task).
fn column_chunks(batches: &[&RecordBatch], properties: &WriterProperties) -> usize {
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let columns = batches.first().map_or(0, |b| b.num_columns());
    rows.div_ceil(row_group_rows(properties)).max(1) * columns
}

/// The most rows a row group of a file written with `properties` holds.
fn row_group_rows(properties: &WriterProperties) -> usize {
    properties
        .max_row_group_row_count()
        .unwrap_or(1 << 20)
        .max(1)
}

/// The files of one wave of [`to_parquet`].
fn encode_wave(
    inputs: &[(Vec<&RecordBatch>, WriterProperties)],
    threads: usize,
) -> anyhow::Result<Vec<Bytes>> {
    let mut files = Vec::with_capacity(inputs.len());
    let mut tasks = Vec::new();
    for (file, (batches, properties)) in inputs.iter().enumerate() {
        let Some(first) = batches.first() else {
            anyhow::bail!("a Parquet file needs at least one batch");
        };
        let schema = first.schema();
        let writer = ArrowWriter::try_new(
            Vec::with_capacity(1 << 16),
            schema.clone(),
            Some(properties.clone()),
        )?;
        let (writer, columns) = writer.into_serialized_writer()?;
        let groups = row_groups(batches, row_group_rows(properties));
        for (group, rows) in groups.iter().enumerate() {
            let mut writers = columns.create_column_writers(group)?.into_iter();
            // A nested column is several leaf writers, one task.
            for (column, field) in schema.fields().iter().enumerate() {
                // Counted on no rows: the levels of the rows are the task's.
                let leaves = compute_leaves(field, &rows[0].column(column).slice(0, 0))?.len();
                tasks.push(ColumnTask {
                    at: (file, group, column),
                    field: field.clone(),
                    writers: writers.by_ref().take(leaves).collect(),
                });
            }
        }
        files.push((writer, groups));
    }
    let mut chunks = run_tasks(tasks, threads, |task| {
        let rows = &files[task.at.0].1[task.at.1];
        task.encode(rows)
    })?;
    chunks.sort_by_key(|(at, _)| *at);
    let mut chunks = chunks.into_iter().peekable();
    let mut out = Vec::with_capacity(files.len());
    for (file, (mut writer, groups)) in files.into_iter().enumerate() {
        for group in 0..groups.len() {
            let mut row_group = writer.next_row_group()?;
            while let Some((_, leaves)) = chunks.next_if(|((f, g, _), _)| (*f, *g) == (file, group))
            {
                for chunk in leaves {
                    chunk.append_to_row_group(&mut row_group)?;
                }
            }
            row_group.close()?;
        }
        out.push(Bytes::from(writer.into_inner()?));
    }
    Ok(out)
}

/// One column chunk to encode: of which file, row group and column.
struct ColumnTask {
    at: (usize, usize, usize),
    field: arrow::datatypes::FieldRef,
    writers: Vec<ArrowColumnWriter>,
}

/// A task's column chunks (one per leaf), with where they go.
type EncodedColumn = ((usize, usize, usize), Vec<ArrowColumnChunk>);

impl ColumnTask {
    fn encode(mut self, rows: &[RecordBatch]) -> parquet::errors::Result<EncodedColumn> {
        let column = self.at.2;
        for batch in rows {
            let leaves = compute_leaves(&self.field, batch.column(column))?;
            for (writer, leaf) in self.writers.iter_mut().zip(&leaves) {
                writer.write(leaf)?;
            }
        }
        let chunks = self
            .writers
            .into_iter()
            .map(ArrowColumnWriter::close)
            .collect::<parquet::errors::Result<Vec<_>>>()?;
        Ok((self.at, chunks))
    }
}

/// Runs every task on up to `threads` threads, each taking the next task
/// when it is done with one; the results in no particular order.
fn run_tasks<T: Send, R: Send>(
    tasks: Vec<T>,
    threads: usize,
    run: impl Fn(T) -> parquet::errors::Result<R> + Sync,
) -> parquet::errors::Result<Vec<R>> {
    let threads = threads.clamp(1, tasks.len().max(1));
    if threads == 1 {
        return tasks.into_iter().map(run).collect();
    }
    let queue = std::sync::Mutex::new(tasks.into_iter());
    let next = || queue.lock().expect("the task queue").next();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    while let Some(task) = next() {
                        done.push(run(task)?);
                    }
                    Ok::<_, parquet::errors::ParquetError>(done)
                })
            })
            .collect();
        let mut all = Vec::new();
        for worker in workers {
            all.extend(worker.join().expect("an encoding thread panicked")?);
        }
        Ok(all)
    })
}

/// `batches` cut into row groups of at most `max_rows` rows.
fn row_groups(batches: &[&RecordBatch], max_rows: usize) -> Vec<Vec<RecordBatch>> {
    let mut groups: Vec<Vec<RecordBatch>> = vec![Vec::new()];
    let mut rows = 0;
    for batch in batches {
        let mut offset = 0;
        while offset < batch.num_rows() {
            if rows == max_rows {
                groups.push(Vec::new());
                rows = 0;
            }
            let take = (batch.num_rows() - offset).min(max_rows - rows);
            groups
                .last_mut()
                .expect("a group")
                .push(batch.slice(offset, take));
            offset += take;
            rows += take;
        }
    }
    groups.retain(|g| !g.is_empty());
    groups
}

/// Puts every file, `concurrency` at a time. Each attempt has its own
/// names, so nothing a commit references is ever overwritten.
pub async fn upload(lake: &Lake, files: &[&Encoded], concurrency: usize) -> Result<(), StoreError> {
    futures::stream::iter(files.iter().map(|Encoded { key, bytes, .. }| async move {
        lake.store
            .put(&Lake::path(key), PutPayload::from(bytes.clone()))
            .await
            .map(|_| ())
            .map_err(|e| StoreError::request(format!("writing {}", lake.url_of(key)), e))
    }))
    .buffer_unordered(concurrency.max(1))
    .try_collect::<Vec<()>>()
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> Arc<Decoder> {
        Arc::new(Decoder::new(lake::contract::Contract::events()))
    }
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Int32Type, Int64Type, TimestampMicrosecondType};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    const EVENT: &str = r#"{"event_id":"0b6f9a3e-2a7c-4c4e-9d8e-5d0b8a1f2c3d","user_id":1,"event_type":"click","event_ts":"2026-11-22T10:00:00Z","page":"/"}"#;

    /// Both tables' files of the micro-batches of `micros`, encoded together.
    fn encode_all(micros: &mut [MicroBatch]) -> Vec<Encoded> {
        let finished: Vec<Vec<Finished>> = micros
            .iter_mut()
            .map(|m| m.finish().expect("finish"))
            .collect();
        let batches: Vec<(&Decoder, &[Finished])> = micros
            .iter()
            .zip(&finished)
            .map(|(m, f)| (m.decoder.as_ref(), f.as_slice()))
            .collect();
        [Layer::Bronze, Layer::DeadLetters]
            .into_iter()
            .flat_map(|layer| encode("events", layer, &batches, ("r", "a"), 2).expect("encode"))
            .collect()
    }

    fn read(bytes: &Bytes) -> RecordBatch {
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
            .expect("parquet")
            .build()
            .expect("reader");
        let batches: Vec<RecordBatch> = reader.map(|b| b.expect("batch")).collect();
        arrow::compute::concat_batches(&batches[0].schema(), &batches).expect("concat")
    }

    /// Lineage read back from the Parquet objects: the per-batch columns
    /// (filled in at the end) agree with the per-row ones, in both tables.
    #[test]
    fn lineage_columns_read_back() {
        let source = SourceId::kafka("events", "events", 2);
        let mut micro = MicroBatch::new(source, events());
        for (offset, payload) in [(7, format!("[{EVENT},{EVENT},1]")), (8, "[".into())] {
            micro.add_message(Range::offset(offset), payload.len());
            let lineage = Lineage {
                offset: Some(offset),
                batch_id: Some(format!("b{offset}")),
                ..Lineage::default()
            };
            micro.decode(payload.as_bytes(), &lineage, &Default::default());
        }
        let files = encode_all(std::slice::from_mut(&mut micro));
        assert_eq!(files.len(), 2, "one bronze day and the dead letters");
        for (
            Encoded {
                key, bytes, file, ..
            },
            (rows, offsets, indexes),
        ) in files.iter().zip([
            (2, vec![7, 7], vec![Some(0), Some(1)]),
            (2, vec![7, 8], vec![Some(2), None]),
        ]) {
            let batch = read(bytes);
            assert_eq!(batch.num_rows(), rows, "{key}");
            assert_eq!(file.rows, rows as u64, "{key}");
            assert_eq!(file.size, bytes.len() as i64, "{key}");
            let column = |name: &str| batch.column_by_name(name).expect(name).clone();
            let kind = column("source_kind");
            let kind = kind.as_string::<i32>();
            let topic = column("source_topic");
            let topic = topic.as_string::<i32>();
            let partition = column("source_partition");
            let partition = partition.as_primitive::<Int32Type>();
            let ingested = column("ingested_at");
            let ingested = ingested.as_primitive::<TimestampMicrosecondType>();
            let offset = column("source_offset");
            let offset = offset.as_primitive::<Int64Type>();
            let index = column("record_index");
            let index = index.as_primitive::<Int32Type>();
            for row in 0..rows {
                assert_eq!(kind.value(row), "kafka");
                assert_eq!(topic.value(row), "events");
                assert_eq!(partition.value(row), 2);
                assert_eq!(ingested.value(row), micro.ingested_at);
                assert_eq!(offset.value(row), offsets[row]);
                assert_eq!(index.is_valid(row).then(|| index.value(row)), indexes[row]);
            }
        }
        // The files source has no topic or partition.
        let mut micro = MicroBatch::new(SourceId::files("events", "raw/events/"), events());
        micro.add_message(Range::key("raw/events/a.json"), 1);
        micro.decode(
            format!("[{EVENT}]").as_bytes(),
            &Lineage::default(),
            &Default::default(),
        );
        let files = encode_all(std::slice::from_mut(&mut micro));
        assert_eq!(files[0].layer, Layer::Bronze);
        let batch = read(&files[0].bytes);
        let kind = batch.column_by_name("source_kind").expect("kind");
        assert_eq!(kind.as_string::<i32>().value(0), "files");
        assert_eq!(
            batch
                .column_by_name("source_topic")
                .expect("topic")
                .null_count(),
            1
        );
        assert_eq!(
            batch
                .column_by_name("source_partition")
                .expect("partition")
                .null_count(),
            1
        );
    }

    /// Each column's encodings as written: a dictionary where values
    /// repeat, delta encodings for unique and counting columns, PLAIN for
    /// the columns constant over a micro-batch; in both tables.
    #[test]
    fn columns_are_encoded_by_what_their_values_are_like() {
        let mut micro = MicroBatch::new(SourceId::kafka("events", "events", 2), events());
        let payload = format!("[{EVENT},{EVENT},1]");
        micro.add_message(Range::offset(7), payload.len());
        let lineage = Lineage {
            offset: Some(7),
            batch_id: Some("b7".into()),
            ..Lineage::default()
        };
        micro.decode(payload.as_bytes(), &lineage, &Default::default());
        let files = encode_all(std::slice::from_mut(&mut micro));
        let encodings = |layer: Layer| -> BTreeMap<String, String> {
            let file = files.iter().find(|f| f.layer == layer).expect("file");
            let metadata = parquet::file::metadata::ParquetMetaDataReader::new()
                .parse_and_finish(&file.bytes)
                .expect("metadata");
            metadata
                .row_group(0)
                .columns()
                .iter()
                .map(|c| {
                    let mut encodings: Vec<String> = c
                        .encodings()
                        .filter(|e| *e != Encoding::RLE)
                        .map(|e| e.to_string())
                        .collect();
                    encodings.sort();
                    (c.column_path().string(), encodings.join(" "))
                })
                .collect()
        };
        let (dictionary, plain) = ("PLAIN RLE_DICTIONARY", "PLAIN");
        let (bytes, integers) = ("DELTA_LENGTH_BYTE_ARRAY", "DELTA_BINARY_PACKED");
        let (bronze, dead) = (encodings(Layer::Bronze), encodings(Layer::DeadLetters));
        for (table, written, column, expected) in [
            ("bronze", &bronze, "event_id", bytes),
            ("bronze", &bronze, "event_ts", integers),
            ("bronze", &bronze, "amount", plain),
            ("bronze", &bronze, "user_id", dictionary),
            ("bronze", &bronze, "event_type", dictionary),
            ("bronze", &bronze, "source_kind", plain),
            ("bronze", &bronze, "source_topic", plain),
            ("bronze", &bronze, "source_partition", dictionary),
            ("bronze", &bronze, "source_offset", integers),
            ("bronze", &bronze, "batch_id", dictionary),
            ("bronze", &bronze, "record_index", integers),
            ("bronze", &bronze, "ingested_at", plain),
            ("bronze", &bronze, "contract_version", plain),
            ("dead letters", &dead, "error_code", dictionary),
            ("dead letters", &dead, "error_message", bytes),
            ("dead letters", &dead, "raw_payload", bytes),
            ("dead letters", &dead, "source_offset", integers),
            ("dead letters", &dead, "ingested_at", plain),
        ] {
            assert_eq!(written[column], expected, "{table} {column}");
        }
    }

    /// Messages decoded together (on the workers) and taken by micro-batches
    /// at any message give each batch the rows that decoding its messages
    /// into it gives, in the same files.
    #[test]
    fn messages_decoded_together_are_taken_message_by_message() {
        let other_day = EVENT.replace("2026-11-22", "2026-11-23");
        let payloads = [
            format!("[{EVENT},{other_day}]"),
            format!("[{EVENT},7,{other_day}]"),
            "[".to_string(),
            format!("[{other_day},{EVENT}]"),
            format!("[{EVENT}]"),
            "[2]".to_string(),
        ];
        let lineage = |offset: usize| Lineage {
            offset: Some(offset as i64),
            batch_id: Some(format!("b{offset}")),
            ..Lineage::default()
        };
        let limits = Limits::default();
        let mut together = Decoding::new(events());
        for (offset, payload) in payloads.iter().enumerate() {
            together.decode(payload.as_bytes(), &lineage(offset), &limits);
        }
        let mut together = together.finish();
        let corrupt: Vec<u64> = together.counts.iter().map(|c| c.corrupt).collect();
        assert_eq!(corrupt, [0, 0, 1, 0, 0, 0]);
        assert_eq!(together.rows_through(1), 5);
        // Three micro-batches: messages 0..=1 (one decoded into the batch
        // before), 2..=4, and 5 after one decoded into the batch.
        let source = SourceId::kafka("events", "events", 0);
        let cuts = [(0..2, 1), (2..5, 4), (5..6, 5)];
        let inline_first = [true, false, false];
        for ((range, through), first_inline) in cuts.into_iter().zip(inline_first) {
            let mut inline = MicroBatch::new(source.clone(), events());
            let mut apart = MicroBatch::new(source.clone(), events());
            apart.ingested_at = inline.ingested_at;
            let extra = format!("[{other_day}]");
            if first_inline || through == 5 {
                inline.add_message(Range::offset(100), extra.len());
                inline.decode(extra.as_bytes(), &lineage(100), &limits);
                apart.add_message(Range::offset(100), extra.len());
                apart.decode(extra.as_bytes(), &lineage(100), &limits);
            }
            for offset in range {
                let payload = &payloads[offset];
                inline.add_message(Range::offset(offset as i64), payload.len());
                inline.decode(payload.as_bytes(), &lineage(offset), &limits);
                apart.add_message(Range::offset(offset as i64), payload.len());
            }
            apart.take(&mut together, through);
            assert_eq!(
                (apart.bronze_rows(), apart.dead_letter_rows()),
                (inline.bronze_rows(), inline.dead_letter_rows()),
                "through {through}"
            );
            assert_eq!(apart.dead_codes(), inline.dead_codes(), "through {through}");
            let (inline, apart) = (
                encode_all(std::slice::from_mut(&mut inline)),
                encode_all(std::slice::from_mut(&mut apart)),
            );
            assert_eq!(apart.len(), inline.len(), "through {through}");
            for (a, b) in inline.iter().zip(&apart) {
                assert_eq!((&a.key, a.file.rows), (&b.key, b.file.rows));
                assert_eq!(read(&a.bytes), read(&b.bytes), "{}", a.key);
            }
        }
    }

    /// The columns encoded on several threads, in row groups and in waves
    /// of files, give the very file `ArrowWriter` writes.
    #[test]
    fn parallel_encoding_writes_the_arrow_writers_file() {
        let mut micro = MicroBatch::new(SourceId::kafka("events", "events", 0), events());
        for offset in 0..40 {
            let records: Vec<String> = (0..25)
                .map(|i| {
                    EVENT
                        .replace("0b6f9a3e", &format!("{:08x}", offset * 25 + i))
                        .replace("\"user_id\":1", &format!("\"user_id\":{}", i + 1))
                })
                .collect();
            let payload = format!("[{},7]", records.join(","));
            micro.add_message(Range::offset(offset), payload.len());
            let lineage = Lineage {
                offset: Some(offset),
                ..Lineage::default()
            };
            micro.decode(payload.as_bytes(), &lineage, &Default::default());
        }
        let finished = micro.finish().expect("finish");
        let rows: Vec<&RecordBatch> = finished.iter().map(|f| &f.rows).collect();
        assert_eq!(rows.len(), 2, "one bronze date and the dead letters");
        for batch in rows {
            for properties in [
                writer_properties(&micro.decoder),
                WriterProperties::builder()
                    .set_max_row_group_row_count(Some(300))
                    .build(),
            ] {
                let mut expected = Vec::new();
                let mut writer =
                    ArrowWriter::try_new(&mut expected, batch.schema(), Some(properties.clone()))
                        .expect("writer");
                writer.write(batch).expect("write");
                writer.close().expect("close");
                // Two slices, so that row groups span input batches.
                let halves = [batch.slice(0, 17), batch.slice(17, batch.num_rows() - 17)];
                // Ten files: more column chunks than one wave holds on 1 and 3 threads.
                for threads in [1, 3, 64] {
                    let input = (vec![&halves[0], &halves[1]], properties.clone());
                    let ours = to_parquet(&vec![input; 10], threads).expect("encode");
                    assert_eq!(ours.len(), 10);
                    for file in ours {
                        assert_eq!(file.as_ref(), expected.as_slice(), "{threads} threads");
                    }
                }
            }
        }
    }

    /// Two partitions' micro-batches encoded together: one bronze file per
    /// event date with both partitions' rows, one dead-letter file.
    #[test]
    fn micro_batches_share_files_per_date() {
        let other_day = EVENT.replace("2026-11-22", "2026-11-23");
        let mut micros: Vec<MicroBatch> = [
            (0, format!("[{EVENT},{other_day}]")),
            (1, format!("[{EVENT},2]")),
        ]
        .into_iter()
        .map(|(partition, payload)| {
            let mut micro =
                MicroBatch::new(SourceId::kafka("events", "events", partition), events());
            micro.add_message(Range::offset(5), payload.len());
            let lineage = Lineage {
                offset: Some(5),
                ..Lineage::default()
            };
            micro.decode(payload.as_bytes(), &lineage, &Default::default());
            micro
        })
        .collect();
        let files = encode_all(&mut micros);
        let summary: Vec<(Layer, &str, u64)> = files
            .iter()
            .map(|f| (f.layer, f.file.path.as_str(), f.file.rows))
            .collect();
        let today = layout::day_to_date(micros[0].ingested_at.div_euclid(86_400_000_000) as i32);
        let dead = format!("event_date={today}/r-a.parquet");
        assert_eq!(
            summary,
            [
                (Layer::Bronze, "event_date=2026-11-22/r-a.parquet", 2),
                (Layer::Bronze, "event_date=2026-11-23/r-a.parquet", 1),
                (Layer::DeadLetters, dead.as_str(), 1),
            ]
        );
        let partitions = read(&files[0].bytes);
        let partitions = partitions
            .column_by_name("source_partition")
            .expect("partition")
            .as_primitive::<Int32Type>()
            .clone();
        assert_eq!(partitions.values().to_vec(), [0, 1]);
    }
}
