//! Compaction: rewrites a partition's many small files into a few of about
//! `target_size` and swaps them in one commit (`OPTIMIZE` in the history).
//!
//! The inputs' `remove` and the outputs' `add` carry `dataChange = false`:
//! the rows do not change, only the files holding them, so a reader sees
//! the same rows before and after, and Delta rebases the commit over the
//! appends that land meanwhile (ingestion only appends). A commit that does
//! conflict (another compaction removed some of the same files) is
//! re-planned on the refreshed table.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{new_null_array, ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::datatypes::{Field, Schema, SchemaRef};
use chrono::Utc;
use deltalake_core::kernel::transaction::{CommitProperties, TransactionError};
use deltalake_core::kernel::{Action, Remove};
use deltalake_core::protocol::DeltaOperation;
use deltalake_core::DeltaTableError;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use lake::Lake;
use object_store::ObjectStoreExt;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStreamBuilder};
use parquet::arrow::async_writer::{AsyncArrowWriter, ParquetObjectWriter};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use serde::Deserialize;

use crate::{add, AsOf, DataFile, Table, PARTITION};

/// 128 MiB, the usual size of a Delta data file.
pub const DEFAULT_TARGET_SIZE: u64 = 128 * 1024 * 1024;

/// How many times a compaction whose commit conflicts is re-planned.
const ATTEMPTS: usize = 4;
/// Footers read at once while planning a group.
const FOOTER_CONCURRENCY: usize = 16;
/// Input files fetched ahead while a group is written.
const PREFETCH: usize = 8;
/// Inputs up to this size are fetched in one GET; larger ones are streamed
/// row group by row group.
const WHOLE_FILE_LIMIT: i64 = 16 * 1024 * 1024;
/// Read the footer of a small file in one request.
const FOOTER_HINT: usize = 64 * 1024;
/// Commits that land while ours is being written are checked for conflicts
/// this many times before the commit gives up.
const COMMIT_RETRIES: usize = 100;

/// What to compact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactOptions {
    /// The size an output file aims at, in bytes of input. A file is small,
    /// and a candidate, when it is under half of this.
    pub target_size: u64,
    /// A partition is compacted only when it has at least this many small
    /// files (and never for fewer than 2).
    pub min_files: usize,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            target_size: DEFAULT_TARGET_SIZE,
            min_files: 10,
        }
    }
}

/// What a compaction did. All zero, `version` `None`, when there was
/// nothing to compact (and nothing was committed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// The version of the `OPTIMIZE` commit.
    pub version: Option<u64>,
    /// The partitions (`event_date` values) rewritten, in order.
    pub partitions: Vec<Option<String>>,
    pub files_removed: usize,
    pub files_added: usize,
    pub rows_rewritten: u64,
    pub bytes_removed: u64,
    pub bytes_added: u64,
}

/// Compacts the Delta table under `prefix`: in every partition with at
/// least `options.min_files` small files (under `target_size / 2`), those
/// files are bin-packed in path order into groups of up to `target_size`
/// bytes, each group becomes one zstd Parquet file
/// `event_date=D/compacted-<uuid>.parquet` (the union of the group's
/// columns, a column a file lacks as nulls), and the whole run is one
/// commit. A group of one file is left alone.
pub async fn compact(
    lake: &Lake,
    prefix: &str,
    options: CompactOptions,
) -> anyhow::Result<CompactReport> {
    let prefix = prefix.trim_matches('/');
    let mut table = open_existing(lake, prefix).await?;
    compact_table(lake, prefix, &mut table, options).await
}

/// The latest snapshot of the table under `prefix`, or an error saying
/// there is none.
pub(crate) async fn open_existing(lake: &Lake, prefix: &str) -> anyhow::Result<Table> {
    Table::open(lake, prefix, AsOf::Latest)
        .await?
        .ok_or_else(|| anyhow::anyhow!("{}: not a Delta table", lake.url_of(prefix)))
}

/// [`compact`] on the snapshot in hand (re-planned on the refreshed table
/// if its commit conflicts).
async fn compact_table(
    lake: &Lake,
    prefix: &str,
    table: &mut Table,
    options: CompactOptions,
) -> anyhow::Result<CompactReport> {
    anyhow::ensure!(options.target_size > 0, "the target size must be positive");
    let mut attempt = 0;
    loop {
        attempt += 1;
        let groups = plan(table, &options).await?;
        if groups.is_empty() {
            return Ok(CompactReport::default());
        }
        let outputs = rewrite(lake, prefix, table, &groups).await?;
        match commit(table, &options, &groups, &outputs).await {
            Ok(report) => return Ok(report),
            Err(Failed::Conflict(_)) if attempt < ATTEMPTS => {
                // Nothing references the outputs: drop them and plan again.
                delete(lake, prefix, &outputs).await;
            }
            Err(Failed::Conflict(e)) => {
                delete(lake, prefix, &outputs).await;
                anyhow::bail!(
                    "{prefix}: compaction still conflicts after {ATTEMPTS} attempts: {e}"
                );
            }
            Err(Failed::Other(e)) => {
                return Err(e.context(format!(
                    "{prefix}: compaction commit failed; its {} new files are left for vacuum",
                    outputs.len()
                )))
            }
        }
    }
}

/// One input file of a group.
#[derive(Debug, Clone)]
struct Input {
    path: String,
    size: i64,
    /// `numRecords` of its stats, when the log has them.
    rows: Option<u64>,
    remove: Remove,
}

/// Small files of one partition that become one file.
#[derive(Debug, Clone)]
struct Group {
    event_date: Option<String>,
    inputs: Vec<Input>,
}

/// The file a group became.
#[derive(Debug, Clone)]
struct Output {
    file: DataFile,
}

/// The groups to rewrite, by partition then path.
async fn plan(table: &Table, options: &CompactOptions) -> anyhow::Result<Vec<Group>> {
    let views: Vec<_> = table
        .table
        .get_active_add_actions_by_partitions(&[])
        .try_collect()
        .await?;
    let mut partitions: BTreeMap<Option<String>, Vec<Input>> = BTreeMap::new();
    for view in views {
        // A file with a deletion vector is not all rows; leave it.
        if view.deletion_vector_descriptor().is_some() {
            continue;
        }
        let size = view.size();
        if size < 0 || size as u64 >= options.target_size / 2 {
            continue;
        }
        let remove = view.remove_action(false);
        let event_date = remove
            .partition_values
            .as_ref()
            .and_then(|values| values.get(PARTITION).cloned())
            .flatten();
        partitions.entry(event_date).or_default().push(Input {
            path: view.path().to_string(),
            size,
            rows: view.num_records().map(|n| n as u64),
            remove,
        });
    }
    let mut groups = Vec::new();
    for (event_date, mut files) in partitions {
        if files.len() < options.min_files.max(2) {
            continue;
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let mut current: Vec<Input> = Vec::new();
        let mut bytes = 0u64;
        for file in files {
            if !current.is_empty() && bytes + file.size as u64 > options.target_size {
                groups.push(Group {
                    event_date: event_date.clone(),
                    inputs: std::mem::take(&mut current),
                });
                bytes = 0;
            }
            bytes += file.size as u64;
            current.push(file);
        }
        groups.push(Group {
            event_date: event_date.clone(),
            inputs: current,
        });
    }
    groups.retain(|g| g.inputs.len() >= 2);
    Ok(groups)
}

/// Writes every group's file; on failure removes those already written.
async fn rewrite(
    lake: &Lake,
    prefix: &str,
    table: &Table,
    groups: &[Group],
) -> anyhow::Result<Vec<Output>> {
    let order: Vec<String> = table
        .table
        .snapshot()?
        .schema()
        .fields()
        .map(|f| f.name().to_string())
        .collect();
    let mut outputs = Vec::with_capacity(groups.len());
    for group in groups {
        match rewrite_group(lake, prefix, &order, group).await {
            Ok(output) => outputs.push(output),
            Err(e) => {
                delete(lake, prefix, &outputs).await;
                return Err(e);
            }
        }
    }
    Ok(outputs)
}

/// Streams a group's rows into one new file and uploads it.
async fn rewrite_group(
    lake: &Lake,
    prefix: &str,
    order: &[String],
    group: &Group,
) -> anyhow::Result<Output> {
    let metadata: Vec<ArrowReaderMetadata> = futures::stream::iter(&group.inputs)
        .map(|input| async move {
            let mut reader = reader(lake, prefix, input);
            ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::new())
                .await
                .map_err(|e| anyhow::anyhow!("{}: {e}", lake.url_of(&key(prefix, &input.path))))
        })
        .buffered(FOOTER_CONCURRENCY)
        .try_collect()
        .await?;
    let schema = union_schema(order, metadata.iter().map(|m| m.schema()))?;
    let properties = writer_properties(&metadata);

    let dir = match &group.event_date {
        Some(date) => format!("{PARTITION}={date}"),
        None => format!("{PARTITION}=__HIVE_DEFAULT_PARTITION__"),
    };
    let path = format!("{dir}/compacted-{}.parquet", uuid::Uuid::new_v4());
    let location = Lake::path(&key(prefix, &path));
    let mut writer = AsyncArrowWriter::try_new(
        ParquetObjectWriter::new(lake.store.clone(), location.clone()),
        schema.clone(),
        Some(properties),
    )?;
    let mut loaded = futures::stream::iter(group.inputs.iter().zip(metadata))
        .map(|(input, metadata)| async move {
            load(lake, prefix, input, metadata)
                .await
                .map(|batches| (input, batches))
        })
        .buffered(PREFETCH);
    let mut rows = 0u64;
    let written: anyhow::Result<()> = async {
        while let Some((input, mut batches)) = loaded.try_next().await? {
            let mut file_rows = 0u64;
            while let Some(batch) = batches.try_next().await? {
                file_rows += batch.num_rows() as u64;
                writer.write(&align(&schema, batch)?).await?;
            }
            if let Some(expected) = input.rows.filter(|n| *n != file_rows) {
                anyhow::bail!(
                    "{}: the file has {file_rows} rows and the log says {expected}; not compacting",
                    lake.url_of(&key(prefix, &input.path))
                );
            }
            rows += file_rows;
        }
        Ok(())
    }
    .await;
    if let Err(e) = written {
        // Abandon the upload: the object exists only once closed (an
        // unfinished multipart upload is left to the bucket's lifecycle
        // rules); delete it in case it does.
        drop(writer);
        let _ = lake.store.delete(&location).await;
        return Err(e);
    }
    writer.close().await?;
    let size = lake.store.head(&location).await?.size as i64;
    Ok(Output {
        file: DataFile {
            path,
            event_date: group.event_date.clone(),
            size,
            rows,
        },
    })
}

/// Why a commit did not land.
enum Failed {
    /// Another commit removed files this one removes: plan again.
    Conflict(DeltaTableError),
    Other(anyhow::Error),
}

/// One commit: the inputs' `remove`, the outputs' `add`, all without data
/// change. A commit that failed but landed anyway (a lost response) is
/// recognised from the log.
async fn commit(
    table: &mut Table,
    options: &CompactOptions,
    groups: &[Group],
    outputs: &[Output],
) -> Result<CompactReport, Failed> {
    let now = Utc::now().timestamp_millis();
    let mut report = CompactReport::default();
    let mut actions = Vec::new();
    for group in groups {
        if report.partitions.last() != Some(&group.event_date) {
            report.partitions.push(group.event_date.clone());
        }
        for input in &group.inputs {
            let mut remove = input.remove.clone();
            remove.data_change = false;
            remove.deletion_timestamp = Some(now);
            report.files_removed += 1;
            report.bytes_removed += input.size as u64;
            actions.push(Action::Remove(remove));
        }
    }
    for output in outputs {
        report.files_added += 1;
        report.bytes_added += output.file.size as u64;
        report.rows_rewritten += output.file.rows;
        actions.push(Action::Add(add(&output.file, now, false)));
    }
    let metrics = serde_json::json!({
        "numFilesRemoved": report.files_removed,
        "numFilesAdded": report.files_added,
        "numBytesRemoved": report.bytes_removed,
        "numBytesAdded": report.bytes_added,
        "numRowsRewritten": report.rows_rewritten,
        "numPartitionsOptimized": report.partitions.len(),
    });
    let properties = CommitProperties::default()
        .with_max_retries(COMMIT_RETRIES)
        .with_metadata([("operationMetrics".to_string(), metrics)]);
    let operation = DeltaOperation::Optimize {
        predicate: None,
        target_size: options.target_size as i64,
    };
    let read_version = table.version();
    match table.commit_actions(properties, actions, operation).await {
        Ok(version) => {
            report.version = Some(version);
            Ok(report)
        }
        Err(e) => {
            let first = outputs.first().map(|o| o.file.path.as_str());
            match landed(table, read_version, first).await {
                Ok(Some(version)) => {
                    report.version = Some(version);
                    Ok(report)
                }
                Ok(None) if is_conflict(&e) => Err(Failed::Conflict(e)),
                Ok(None) => Err(Failed::Other(e.into())),
                Err(refresh) => Err(Failed::Other(
                    anyhow::Error::from(e).context(format!("then reading the log: {refresh}")),
                )),
            }
        }
    }
}

fn is_conflict(e: &DeltaTableError) -> bool {
    matches!(
        e,
        DeltaTableError::Transaction {
            source: TransactionError::CommitConflict(_) | TransactionError::MaxCommitAttempts(_)
        }
    )
}

/// The version after `read_version` whose commit adds `path`, if any.
async fn landed(
    table: &mut Table,
    read_version: u64,
    path: Option<&str>,
) -> anyhow::Result<Option<u64>> {
    #[derive(Deserialize)]
    struct Line {
        add: Option<AddPath>,
    }
    #[derive(Deserialize)]
    struct AddPath {
        path: String,
    }
    let latest = table.refresh().await?;
    let Some(path) = path else { return Ok(None) };
    for version in read_version + 1..=latest {
        let Some(bytes) = table
            .table
            .log_store()
            .read_commit_entry(version as _)
            .await?
        else {
            continue;
        };
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            if let Ok(Line { add: Some(add) }) = serde_json::from_slice::<Line>(line) {
                if add.path == path {
                    return Ok(Some(version));
                }
            }
        }
    }
    Ok(None)
}

/// Best effort: outputs no commit references.
async fn delete(lake: &Lake, prefix: &str, outputs: &[Output]) {
    for output in outputs {
        let _ = lake
            .store
            .delete(&Lake::path(&key(prefix, &output.file.path)))
            .await;
    }
}

fn key(prefix: &str, path: &str) -> String {
    format!("{prefix}/{path}")
}

fn reader(lake: &Lake, prefix: &str, input: &Input) -> ParquetObjectReader {
    ParquetObjectReader::new(lake.store.clone(), Lake::path(&key(prefix, &input.path)))
        .with_file_size(input.size as u64)
        .with_footer_size_hint(FOOTER_HINT)
}

/// The record batches of one input: a small file fetched whole, a large one
/// streamed.
async fn load(
    lake: &Lake,
    prefix: &str,
    input: &Input,
    metadata: ArrowReaderMetadata,
) -> anyhow::Result<BoxStream<'static, anyhow::Result<RecordBatch>>> {
    let name = lake.url_of(&key(prefix, &input.path));
    if input.size <= WHOLE_FILE_LIMIT {
        let bytes = lake
            .store
            .get(&Lake::path(&key(prefix, &input.path)))
            .await?
            .bytes()
            .await?;
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, metadata).build()?;
        Ok(futures::stream::iter(
            reader.map(move |batch| batch.map_err(|e| anyhow::anyhow!("{name}: {e}"))),
        )
        .boxed())
    } else {
        let stream = ParquetRecordBatchStreamBuilder::new_with_metadata(
            reader(lake, prefix, input),
            metadata,
        )
        .build()?;
        Ok(stream
            .map(move |batch| batch.map_err(|e| anyhow::anyhow!("{name}: {e}")))
            .boxed())
    }
}

/// The union of the inputs' columns by name: in the table's column order
/// (columns the table does not know after them, as first seen), nullable
/// where any input lacks it or has it nullable, of the type it has where
/// first seen (another type is cast to it). Schema metadata all inputs
/// agree on is kept.
fn union_schema<'a>(
    order: &[String],
    schemas: impl Iterator<Item = &'a SchemaRef>,
) -> anyhow::Result<SchemaRef> {
    let mut fields: Vec<Field> = Vec::new();
    let mut seen: Vec<usize> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut metadata: Option<HashMap<String, String>> = None;
    let mut count = 0;
    for schema in schemas {
        count += 1;
        metadata = Some(match metadata {
            None => schema.metadata().clone(),
            Some(mut agreed) => {
                agreed.retain(|k, v| schema.metadata().get(k) == Some(v));
                agreed
            }
        });
        for field in schema.fields() {
            match index.get(field.name()) {
                Some(&i) => {
                    let have = &fields[i];
                    if have.data_type() != field.data_type()
                        && !arrow::compute::can_cast_types(field.data_type(), have.data_type())
                    {
                        anyhow::bail!(
                            "column `{}` is {} in one file and {} in another",
                            field.name(),
                            have.data_type(),
                            field.data_type()
                        );
                    }
                    if field.is_nullable() {
                        fields[i].set_nullable(true);
                    }
                    seen[i] += 1;
                }
                None => {
                    index.insert(field.name().clone(), fields.len());
                    fields.push(field.as_ref().clone());
                    seen.push(1);
                }
            }
        }
    }
    for (field, seen) in fields.iter_mut().zip(seen) {
        if seen < count {
            field.set_nullable(true);
        }
    }
    fields.sort_by_key(|f| {
        order
            .iter()
            .position(|name| name == f.name())
            .unwrap_or(usize::MAX)
    });
    Ok(Arc::new(Schema::new_with_metadata(
        fields,
        metadata.unwrap_or_default(),
    )))
}

/// `batch` with `schema`'s columns: by name, cast where the type differs,
/// nulls where it has none.
fn align(schema: &SchemaRef, batch: RecordBatch) -> anyhow::Result<RecordBatch> {
    let rows = batch.num_rows();
    let columns = schema
        .fields()
        .iter()
        .map(|field| -> anyhow::Result<ArrayRef> {
            Ok(match batch.column_by_name(field.name()) {
                Some(column) if column.data_type() == field.data_type() => column.clone(),
                Some(column) => arrow::compute::cast(column, field.data_type())?,
                None => new_null_array(field.data_type(), rows),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}

/// zstd (the parquet crate's default level, as the consumer writes), no
/// dictionary for a column no input has a dictionary for (the consumer
/// turns them off for nearly unique columns and for those constant over a
/// micro-batch), and a delta encoding for a column every input wrote in it
/// (the consumer's choice for nearly unique and counting columns).
fn writer_properties(inputs: &[ArrowReaderMetadata]) -> WriterProperties {
    let mut dictionary: HashSet<ColumnPath> = HashSet::new();
    // Every column, with the delta encoding of its chunks while all agree
    // (None once two differ, or if none has one).
    let mut delta: HashMap<ColumnPath, Option<Encoding>> = HashMap::new();
    for input in inputs {
        let metadata = input.metadata();
        for row_group in metadata.row_groups() {
            for column in row_group.columns() {
                let path = column.column_path();
                if column.dictionary_page_offset().is_some() {
                    dictionary.insert(path.clone());
                }
                let encoding = column.encodings().find(|e| DELTA_ENCODINGS.contains(e));
                delta
                    .entry(path.clone())
                    .and_modify(|agreed| {
                        if *agreed != encoding {
                            *agreed = None;
                        }
                    })
                    .or_insert(encoding);
            }
        }
    }
    let mut builder =
        WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default()));
    for (column, encoding) in delta {
        if dictionary.contains(&column) {
            continue;
        }
        builder = builder.set_column_dictionary_enabled(column.clone(), false);
        if let Some(encoding) = encoding {
            builder = builder.set_column_encoding(column, encoding);
        }
    }
    builder.build()
}

/// The encodings the consumer chooses for columns without a dictionary.
const DELTA_ENCODINGS: [Encoding; 2] = [
    Encoding::DELTA_BINARY_PACKED,
    Encoding::DELTA_LENGTH_BYTE_ARRAY,
];

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::Committed;

    /// `event_date=2026-11-22/x.parquet` → `2026-11-22`.
    fn partition_of(path: &str) -> Option<String> {
        path.split('/')
            .find_map(|part| part.strip_prefix("event_date="))
            .map(String::from)
    }
    use arrow::array::{Array, AsArray, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Int64Type};
    use object_store::PutPayload;
    use std::ops::Range;

    /// `id`, `name`, and with `extra` the column a newer contract added.
    pub(crate) fn schema(extra: bool) -> SchemaRef {
        let mut fields = vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ];
        if extra {
            fields.push(Field::new("extra", DataType::Utf8, true));
        }
        Arc::new(Schema::new(fields))
    }

    /// A row as read back: id, name, extra (null where a file lacks it).
    pub(crate) type Row = (i64, Option<String>, Option<String>);

    pub(crate) fn local(dir: &std::path::Path) -> Lake {
        Lake::open(&lake::LakeArgs {
            lake_url: dir.display().to_string(),
            ..Default::default()
        })
        .expect("local lake")
    }

    pub(crate) async fn s3(moto: &testkit::Moto, bucket: &str) -> Lake {
        let lake = Lake::open(&lake::LakeArgs {
            lake_url: format!("s3://{bucket}/lake"),
            aws_endpoint_url: Some(moto.endpoint.clone()),
            aws_access_key_id: Some("testing-key".into()),
            aws_secret_access_key: Some("testing-secret".into()),
            aws_region: "us-east-1".into(),
            ..Default::default()
        })
        .expect("S3 lake");
        lake.ensure_bucket(true).await.expect("bucket");
        lake
    }

    /// Writes a Parquet file of the rows `ids` at `prefix/path` (not committed).
    pub(crate) async fn put(
        lake: &Lake,
        prefix: &str,
        path: &str,
        ids: Range<i64>,
        extra: bool,
    ) -> DataFile {
        let schema = schema(extra);
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(ids.clone())),
            Arc::new(StringArray::from_iter_values(
                ids.clone().map(|i| format!("name-{i:08}")),
            )),
        ];
        if extra {
            columns.push(Arc::new(StringArray::from(
                ids.clone()
                    .map(|i| (i % 3 != 0).then(|| format!("x{i:08}")))
                    .collect::<Vec<_>>(),
            )));
        }
        let batch = RecordBatch::try_new(schema.clone(), columns).expect("batch");
        let mut bytes = Vec::new();
        // As the consumer writes a unique key and text: without a
        // dictionary, in delta encodings (`extra` keeps the default).
        let properties = WriterProperties::builder()
            .set_column_dictionary_enabled("id".into(), false)
            .set_column_encoding("id".into(), Encoding::DELTA_BINARY_PACKED)
            .set_column_dictionary_enabled("name".into(), false)
            .set_column_encoding("name".into(), Encoding::DELTA_LENGTH_BYTE_ARRAY)
            .build();
        let mut writer = parquet::arrow::ArrowWriter::try_new(&mut bytes, schema, Some(properties))
            .expect("writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
        let size = bytes.len() as i64;
        lake.store
            .put(
                &Lake::path(&key(prefix, path)),
                PutPayload::from(bytes::Bytes::from(bytes)),
            )
            .await
            .expect("put");
        DataFile {
            path: path.into(),
            event_date: partition_of(path),
            size,
            rows: (ids.end - ids.start) as u64,
        }
    }

    /// `per_date` small files of `rows` rows in each of `dates` (the first
    /// half of the older contract, without `extra`), appended by `source`
    /// ten files per commit. Ids from `first_id` on, each once.
    pub(crate) async fn seed(
        lake: &Lake,
        prefix: &str,
        dates: &[&str],
        per_date: usize,
        rows: i64,
        first_id: i64,
        source: &str,
    ) -> Vec<DataFile> {
        let mut table = Table::open_or_create(lake, prefix, &schema(true))
            .await
            .expect("table");
        let count = per_date * dates.len();
        let files: Vec<DataFile> = futures::stream::iter(0..count)
            .map(|i| {
                let date = dates[i % dates.len()];
                let path = format!("event_date={date}/{source}-{i:06}.parquet");
                let start = first_id + i as i64 * rows;
                async move { put(lake, prefix, &path, start..start + rows, i >= count / 2).await }
            })
            .buffered(16)
            .collect()
            .await;
        let through = table
            .committed_through(source)
            .await
            .expect("txn")
            .unwrap_or(-1);
        for (k, chunk) in files.chunks(10).enumerate() {
            let committed = table
                .append(source, through + 1 + k as i64, chunk)
                .await
                .expect("append");
            assert!(matches!(committed, Committed::Version(_)), "{committed:?}");
        }
        files
    }

    /// Every row of `files`, sorted; checks each file's row count.
    pub(crate) async fn read_rows(
        lake: &Lake,
        prefix: &str,
        files: &[DataFile],
    ) -> anyhow::Result<Vec<Row>> {
        let mut rows = Vec::new();
        for file in files {
            let bytes = lake
                .store
                .get(&Lake::path(&key(prefix, &file.path)))
                .await?
                .bytes()
                .await?;
            let mut count = 0;
            for batch in ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()? {
                let batch = batch?;
                count += batch.num_rows() as u64;
                let ids = batch
                    .column_by_name("id")
                    .expect("id")
                    .as_primitive::<Int64Type>();
                let names = batch
                    .column_by_name("name")
                    .expect("name")
                    .as_string::<i32>();
                let extra = batch.column_by_name("extra").map(|c| c.as_string::<i32>());
                for i in 0..batch.num_rows() {
                    rows.push((
                        ids.value(i),
                        names.is_valid(i).then(|| names.value(i).to_string()),
                        extra.and_then(|e| e.is_valid(i).then(|| e.value(i).to_string())),
                    ));
                }
            }
            anyhow::ensure!(
                count == file.rows,
                "{}: {count} rows, log says {}",
                file.path,
                file.rows
            );
        }
        rows.sort();
        Ok(rows)
    }

    /// The rows of the table's snapshot.
    pub(crate) async fn table_rows(
        lake: &Lake,
        prefix: &str,
        table: &Table,
    ) -> anyhow::Result<Vec<Row>> {
        read_rows(lake, prefix, &table.files().await?).await
    }

    /// Path and partition value as the log has them, sorted by path.
    pub(crate) async fn log_partitions(table: &Table) -> Vec<(String, Option<String>)> {
        let views: Vec<_> = table
            .table
            .get_active_add_actions_by_partitions(&[])
            .try_collect()
            .await
            .expect("files");
        let mut files: Vec<_> = views
            .iter()
            .map(|v| {
                let values = v.remove_action(false).partition_values.unwrap_or_default();
                (
                    v.path().to_string(),
                    values.get(PARTITION).cloned().flatten(),
                )
            })
            .collect();
        files.sort();
        files
    }

    /// The paths a commit removes.
    async fn removed_in(table: &Table, version: u64) -> HashSet<String> {
        #[derive(Deserialize)]
        struct Line {
            remove: Option<Path>,
        }
        #[derive(Deserialize)]
        struct Path {
            path: String,
        }
        let bytes = table
            .table
            .log_store()
            .read_commit_entry(version as _)
            .await
            .expect("read")
            .expect("commit");
        bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(|l| serde_json::from_slice::<Line>(l).ok()?.remove)
            .map(|p| p.path)
            .collect()
    }

    /// The `compacted-*` objects under `prefix`.
    pub(crate) async fn compacted_objects(lake: &Lake, prefix: &str) -> Vec<String> {
        let mut found: Vec<String> = lake
            .store
            .list(Some(&Lake::path(prefix)))
            .map_ok(|m| m.location.to_string())
            .try_filter(|p| futures::future::ready(p.contains("/compacted-")))
            .try_collect()
            .await
            .expect("list");
        found.sort();
        found
    }

    const DATES: [&str; 2] = ["2026-11-21", "2026-11-22"];

    /// (a) 400 small files in 2 partitions become 2 per partition, every
    /// row kept; (c) a second run commits nothing; (d) the version before
    /// is still readable.
    async fn compaction_keeps_every_row(lake: &Lake) {
        let prefix = "bronze/t";
        let files = seed(lake, prefix, &DATES, 200, 3, 0, "p0").await;
        assert_eq!(files.len(), 400);
        let mut table = Table::open(lake, prefix, AsOf::Latest)
            .await
            .expect("open")
            .expect("table");
        let before_version = table.version();
        let before = table_rows(lake, prefix, &table).await.expect("rows");
        assert_eq!(before.len(), 1200);
        assert!(before.iter().any(|r| r.2.is_none()) && before.iter().any(|r| r.2.is_some()));

        // A target that packs each partition into exactly two files.
        let mut totals: BTreeMap<String, u64> = BTreeMap::new();
        for f in &files {
            *totals
                .entry(f.event_date.clone().expect("date"))
                .or_default() += f.size as u64;
        }
        let largest = files.iter().map(|f| f.size as u64).max().expect("files");
        let most = *totals.values().max().expect("totals");
        let target = (most + largest) / 2 + 1;
        assert!(totals.values().all(|t| *t > target), "{totals:?} {target}");
        assert!(largest < target / 2);
        let options = CompactOptions {
            target_size: target,
            min_files: 10,
        };

        let report = compact(lake, prefix, options).await.expect("compact");
        assert_eq!(
            report.partitions,
            DATES
                .iter()
                .map(|d| Some(d.to_string()))
                .collect::<Vec<_>>()
        );
        assert_eq!(report.files_removed, 400);
        assert_eq!(report.files_added, 4);
        assert_eq!(report.rows_rewritten, 1200);
        assert_eq!(report.bytes_removed, totals.values().sum::<u64>());
        assert_eq!(report.version, Some(before_version + 1));

        table.refresh().await.expect("refresh");
        let after = table.files().await.expect("files");
        assert_eq!(after.len(), 4);
        for date in DATES {
            let in_date: Vec<_> = after
                .iter()
                .filter(|f| f.event_date.as_deref() == Some(date))
                .collect();
            assert_eq!(in_date.len(), 2, "{after:?}");
            assert!(in_date
                .iter()
                .all(|f| f.path.starts_with(&format!("event_date={date}/compacted-"))));
        }
        assert_eq!(after.iter().map(|f| f.rows).sum::<u64>(), 1200);
        assert_eq!(
            report.bytes_added,
            after.iter().map(|f| f.size as u64).sum::<u64>()
        );
        // Each column as the inputs wrote it: `id` and `name` in their
        // delta encodings, `extra` with a dictionary.
        for file in &after {
            let bytes = lake
                .store
                .get(&Lake::path(&key(prefix, &file.path)))
                .await
                .expect("get")
                .bytes()
                .await
                .expect("bytes");
            let metadata = parquet::file::metadata::ParquetMetaDataReader::new()
                .parse_and_finish(&bytes)
                .expect("metadata");
            for column in metadata.row_group(0).columns() {
                let encodings: Vec<Encoding> = column.encodings().collect();
                let name = column.column_path().string();
                let expected = match name.as_str() {
                    "id" => Encoding::DELTA_BINARY_PACKED,
                    "name" => Encoding::DELTA_LENGTH_BYTE_ARRAY,
                    _ => Encoding::RLE_DICTIONARY,
                };
                assert!(encodings.contains(&expected), "{name}: {encodings:?}");
            }
        }
        // The partition values in the log are the inputs'.
        for (path, value) in log_partitions(&table).await {
            assert_eq!(value, partition_of(&path), "{path}");
        }
        // The same rows: ids, names, and `extra` null for the older files.
        let rows = table_rows(lake, prefix, &table).await.expect("rows");
        assert_eq!(rows, before);

        let history = table.history(1).await.expect("history");
        assert_eq!(history[0].operation, "OPTIMIZE");
        assert_eq!(
            (
                history[0].files_removed,
                history[0].files_added,
                history[0].rows_added
            ),
            (400, 4, 0)
        );

        // (c) Nothing left to do: no commit.
        let again = compact(lake, prefix, options).await.expect("compact again");
        assert_eq!(again, CompactReport::default());
        assert_eq!(table.refresh().await.expect("refresh"), before_version + 1);

        // (d) The version before is still there, with its files.
        let old = Table::open(lake, prefix, AsOf::Version(before_version))
            .await
            .expect("open")
            .expect("table");
        let old_files = old.files().await.expect("files");
        assert_eq!(old_files.len(), 400);
        assert_eq!(
            read_rows(lake, prefix, &old_files).await.expect("old rows"),
            before
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn compaction_on_a_local_lake() {
        let dir = tempfile::tempdir().expect("tempdir");
        compaction_keeps_every_row(&local(dir.path())).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn compaction_on_s3() {
        let moto = testkit::Moto::start();
        compaction_keeps_every_row(&s3(&moto, "compact-test").await).await;
    }

    fn everything() -> CompactOptions {
        CompactOptions {
            target_size: DEFAULT_TARGET_SIZE,
            min_files: 2,
        }
    }

    /// (b) Appends that land between the plan and the commit: the commit
    /// is rebased over them, and keeps them.
    #[tokio::test]
    async fn appends_between_plan_and_commit_are_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lake = local(dir.path());
        let prefix = "bronze/t";
        seed(&lake, prefix, &DATES[..1], 30, 2, 0, "p0").await;
        let mut table = Table::open(&lake, prefix, AsOf::Latest)
            .await
            .expect("open")
            .expect("table");
        let version = table.version();
        let groups = plan(&table, &everything()).await.expect("plan");
        assert_eq!(groups.len(), 1);
        let outputs = rewrite(&lake, prefix, &table, &groups)
            .await
            .expect("rewrite");

        let mut other = Table::open(&lake, prefix, AsOf::Latest)
            .await
            .expect("open")
            .expect("table");
        let mut appended = Vec::new();
        for k in 0..5 {
            let path = format!("event_date={}/late-{k}.parquet", DATES[0]);
            let file = put(
                &lake,
                prefix,
                &path,
                1000 + k * 10..1000 + k * 10 + 10,
                true,
            )
            .await;
            other
                .append("p1", k, std::slice::from_ref(&file))
                .await
                .expect("append");
            appended.push(file);
        }
        let report = commit(&mut table, &everything(), &groups, &outputs)
            .await
            .map_err(|e| match e {
                Failed::Conflict(e) => anyhow::anyhow!("conflict: {e}"),
                Failed::Other(e) => e,
            })
            .expect("the commit is rebased over the appends");
        assert_eq!(report.version, Some(version + 6));
        let files = table.files().await.expect("files");
        assert_eq!(files.len(), 6);
        for file in &appended {
            assert!(files.contains(file), "{file:?} in {files:?}");
        }
        let rows = table_rows(&lake, prefix, &table).await.expect("rows");
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let mut expected: Vec<i64> = (0..60).chain(1000..1050).collect();
        expected.sort();
        assert_eq!(ids, expected);
    }

    /// (b) A compaction while another task appends: no row lost or doubled,
    /// and every appended file is in the snapshot unless this compaction
    /// rewrote it.
    #[tokio::test(flavor = "multi_thread")]
    async fn compaction_while_appending() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lake = local(dir.path());
        let prefix = "bronze/t";
        seed(&lake, prefix, &DATES[..1], 100, 2, 0, "p0").await;

        let appender = {
            let lake = lake.clone();
            tokio::spawn(async move {
                let mut table = Table::open(&lake, prefix, AsOf::Latest)
                    .await
                    .expect("open")
                    .expect("table");
                let mut files = Vec::new();
                for k in 0..8 {
                    let path = format!("event_date={}/late-{k}.parquet", DATES[0]);
                    let ids = 10_000 + k * 10..10_000 + k * 10 + 10;
                    let file = put(&lake, prefix, &path, ids, true).await;
                    let committed = table
                        .append("p1", k, std::slice::from_ref(&file))
                        .await
                        .expect("append");
                    assert!(matches!(committed, Committed::Version(_)), "{committed:?}");
                    files.push(file);
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                files
            })
        };
        let report = compact(&lake, prefix, everything()).await.expect("compact");
        let appended = appender.await.expect("appender");
        let version = report.version.expect("a commit");

        let table = Table::open(&lake, prefix, AsOf::Latest)
            .await
            .expect("open")
            .expect("table");
        let files = table.files().await.expect("files");
        let removed = removed_in(&table, version).await;
        assert_eq!(removed.len(), report.files_removed);
        for file in &appended {
            assert!(
                files.contains(file) || removed.contains(&file.path),
                "{} was lost",
                file.path
            );
        }
        let ids: Vec<i64> = table_rows(&lake, prefix, &table)
            .await
            .expect("rows")
            .iter()
            .map(|r| r.0)
            .collect();
        let mut expected: Vec<i64> = (0..200).chain(10_000..10_080).collect();
        expected.sort();
        assert_eq!(ids, expected);
    }

    /// A compaction whose commit conflicts with another's (the same files
    /// removed) is re-planned on the refreshed table, and its outputs are
    /// deleted.
    #[tokio::test]
    async fn a_conflicting_compaction_replans() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lake = local(dir.path());
        let prefix = "bronze/t";
        seed(&lake, prefix, &DATES, 20, 2, 0, "p0").await;
        let mut stale = Table::open(&lake, prefix, AsOf::Latest)
            .await
            .expect("open")
            .expect("table");
        let before = table_rows(&lake, prefix, &stale).await.expect("rows");
        let first = compact(&lake, prefix, everything()).await.expect("compact");
        assert_eq!((first.files_removed, first.files_added), (40, 2));

        // The stale handle plans the same 40 files; its commit conflicts.
        let second = compact_table(&lake, prefix, &mut stale, everything())
            .await
            .expect("replanned");
        assert_eq!(second, CompactReport::default());
        assert_eq!(stale.version(), first.version.expect("version"));
        let files = stale.files().await.expect("files");
        assert_eq!(files.len(), 2);
        // Only the winner's outputs exist.
        let mut expected: Vec<String> = files.iter().map(|f| key(prefix, &f.path)).collect();
        expected.sort();
        assert_eq!(compacted_objects(&lake, prefix).await, expected);
        assert_eq!(
            table_rows(&lake, prefix, &stale).await.expect("rows"),
            before
        );
    }

    /// Two runs at once: one wins, the other re-plans or finds nothing.
    #[tokio::test(flavor = "multi_thread")]
    async fn two_compactions_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lake = local(dir.path());
        let prefix = "bronze/t";
        seed(&lake, prefix, &DATES, 50, 2, 0, "p0").await;
        let (a, b) = tokio::join!(
            compact(&lake, prefix, everything()),
            compact(&lake, prefix, everything())
        );
        let (a, b) = (a.expect("a"), b.expect("b"));
        assert_eq!(a.files_removed + b.files_removed, 100, "{a:?} {b:?}");
        let table = Table::open(&lake, prefix, AsOf::Latest)
            .await
            .expect("open")
            .expect("table");
        let files = table.files().await.expect("files");
        assert_eq!(files.len(), 2);
        let mut expected: Vec<String> = files.iter().map(|f| key(prefix, &f.path)).collect();
        expected.sort();
        assert_eq!(compacted_objects(&lake, prefix).await, expected);
        let ids: Vec<i64> = table_rows(&lake, prefix, &table)
            .await
            .expect("rows")
            .iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(ids, (0..200).collect::<Vec<i64>>());
    }

    #[test]
    fn the_union_of_schemas_is_by_name() {
        let schemas = [schema(false), schema(true)];
        let union =
            union_schema(&["extra".to_string(), "id".to_string()], schemas.iter()).expect("union");
        let names: Vec<&str> = union.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["extra", "id", "name"]);
        assert!(union.field_with_name("extra").expect("extra").is_nullable());
        assert!(!union.field_with_name("id").expect("id").is_nullable());
        let retyped = Arc::new(Schema::new(vec![Field::new(
            "id",
            DataType::Struct(vec![Field::new("a", DataType::Int64, true)].into()),
            true,
        )]));
        assert!(union_schema(&[], [schema(false), retyped].iter()).is_err());
    }
}
