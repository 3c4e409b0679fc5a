//! The consumer's command line; every flag also reads an environment variable.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use lake::config::{parse_bytes, parse_duration, FromEnvironment, KafkaArgs};
use lake::event::Limits;
use lake::LakeArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Source {
    /// The Kafka topic, as a member of the consumer group.
    Kafka,
    /// Raw batch objects under each table's raw prefix (raw/<table>/) in the lake, in key order.
    Files,
}

/// Reads JSON event batches from Kafka or raw files and writes them to the
/// lake as Parquet: valid events to bronze/, everything else to dead_letters/,
/// exactly once, with checkpoints in the bucket.
#[derive(Debug, Clone, Parser)]
#[command(name = "consumer", version)]
pub struct Args {
    /// Without one, ingest; with one, maintain the tables and exit.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Where batches come from.
    #[arg(long, env = "CONSUMER_SOURCE", value_enum, default_value = "kafka")]
    pub source: Source,
    /// Process what is available at start, commit, and exit 0.
    #[arg(long, env = "CONSUMER_ONCE")]
    pub once: bool,
    /// A table's contract (JSON Schema with x-lakehouse), or a directory of
    /// *.schema.json; repeatable, or comma-separated in CONTRACTS. Default:
    /// the built-in events contract, read from KAFKA_TOPIC.
    #[arg(long = "contract", env = "CONTRACTS", value_delimiter = ',')]
    pub contracts: Vec<PathBuf>,
    #[command(flatten)]
    pub lake: LakeArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub metrics: lake::metrics::MetricsArgs,
    /// Consumer group; offsets committed to it are advisory (for lag tools).
    #[arg(long, env = "KAFKA_GROUP_ID", default_value = "lake-consumer")]
    pub kafka_group_id: String,
    /// Flush a micro-batch once this many records are buffered.
    #[arg(long, env = "FLUSH_RECORDS", default_value = "500000")]
    pub flush_records: u64,
    /// Flush once this many input bytes are buffered (e.g. 64MiB).
    #[arg(long, env = "FLUSH_BYTES", default_value = "64MiB", value_parser = parse_bytes)]
    pub flush_bytes: u64,
    /// Flush once the oldest buffered batch is this old (e.g. 5s).
    #[arg(long, env = "FLUSH_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub flush_interval: Duration,
    /// Batches larger than this become `oversized` dead letters (keeping their first 64 KiB).
    #[arg(long, env = "MAX_MESSAGE_BYTES", default_value = "16MiB", value_parser = parse_bytes)]
    pub max_message_bytes: u64,
    /// Records larger than this become `oversized` dead letters; their siblings still load.
    #[arg(long, env = "MAX_RECORD_BYTES", default_value = "1MiB", value_parser = parse_bytes)]
    pub max_record_bytes: u64,
    /// Records nested deeper than this (the record itself is level 1) are `oversized`.
    #[arg(long, env = "MAX_NESTING_DEPTH", default_value = "32")]
    pub max_nesting_depth: usize,
    /// Records with a longer string or field name (bytes as written) are `oversized`.
    #[arg(long, env = "MAX_STRING_BYTES", default_value = "64KiB", value_parser = parse_bytes)]
    pub max_string_bytes: u64,
    /// Parallel object uploads per micro-batch.
    #[arg(long, env = "UPLOAD_CONCURRENCY", default_value = "8")]
    pub upload_concurrency: usize,
    /// Threads that decode raw objects ahead and encode a Parquet file's
    /// columns at once (default: the number of cores).
    #[arg(long, env = "WORKER_THREADS")]
    pub worker_threads: Option<usize>,
    /// Files source: how often to look for new raw objects.
    #[arg(long, env = "FILES_POLL_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub files_poll_interval: Duration,
    /// Skip the startup check that the S3 endpoint honours conditional writes.
    /// Unsafe: only correct while exactly one consumer ever runs against the lake.
    #[arg(long, env = "UNSAFE_SINGLE_WRITER", default_value = "false", action = clap::ArgAction::Set)]
    pub unsafe_single_writer: bool,
    /// Create the bucket if it does not exist.
    #[arg(long, env = "CREATE_BUCKET", default_value = "true", action = clap::ArgAction::Set)]
    pub create_bucket: bool,
    /// Compact a partition once it has this many small files (under half of
    /// COMPACT_TARGET_SIZE); 0 turns the consumer's own compaction off.
    #[arg(long, env = "COMPACT_MIN_FILES", default_value = "50")]
    pub compact_min_files: usize,
    /// The size compaction writes files of.
    #[arg(long, env = "COMPACT_TARGET_SIZE", default_value = "128MiB", value_parser = parse_bytes)]
    pub compact_target_size: u64,
    /// How often the continuous consumer looks for partitions to compact.
    #[arg(long, env = "COMPACT_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub compact_interval: Duration,
    /// Names this host in checkpoints when /etc/hostname cannot be read.
    #[arg(long, hide = true, env = "HOSTNAME")]
    pub hostname: Option<String>,
}

/// Maintenance of the lake's Delta tables (README, "Delta tables").
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Rewrite the small files of each partition into files of about
    /// --target-size, in one commit per table (dataChange=false: readers'
    /// counts never change); safe while ingestion runs.
    Compact {
        /// Only this table (default: every table under bronze/).
        #[arg(long)]
        table: Option<String>,
        #[arg(long, default_value = "128MiB", value_parser = parse_bytes)]
        target_size: u64,
        /// Compact a partition once it has this many small files.
        #[arg(long, default_value = "2")]
        min_files: usize,
    },
    /// Delete the files no snapshot of the last --retain needs: those
    /// compaction replaced longer ago, and those of attempts that never
    /// committed. Time travel keeps working inside the retention.
    Vacuum {
        #[arg(long)]
        table: Option<String>,
        #[arg(long, default_value = "7d", value_parser = parse_duration)]
        retain: Duration,
        /// List what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Decode the selected dead letters of a table again under the
    /// contract and limits in force now (the flags before the subcommand):
    /// records that pass go to bronze, those that fail another way are
    /// written again as dead letters, exactly once; a re-drive left open by
    /// a crash is finished first. With --dry-run, how many would move and
    /// how many would still fail, per code, with a sample of the messages.
    Redrive {
        /// The table whose dead letters to take.
        #[arg(long)]
        table: String,
        /// Only dead letters of this error code; repeatable (default: all).
        #[arg(long = "code", value_name = "CODE")]
        codes: Vec<String>,
        /// Only dead letters ingested at or after this time (RFC 3339).
        #[arg(long, value_parser = parse_time)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// Only dead letters ingested before this time (RFC 3339).
        #[arg(long, value_parser = parse_time)]
        until: Option<chrono::DateTime<chrono::Utc>>,
        /// Report what would move and what would still fail; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Make the tables of a lake of the previous layout (plain Parquet, no
    /// _delta_log) Delta tables in place, without rewriting a file. The
    /// consumer also does this on its first start.
    Convert,
}

/// An RFC 3339 time such as 2026-11-01T00:00:00Z.
fn parse_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{e}: expected an RFC 3339 time such as 2026-11-01T00:00:00Z"))
}

impl FromEnvironment for Args {
    fn read_environment(&mut self, vars: &[(String, String)]) {
        self.lake.read_environment(vars);
        self.kafka.read_environment(vars);
    }
}

impl Args {
    /// `WORKER_THREADS`, or the cores this process may run on.
    pub fn worker_threads(&self) -> usize {
        self.worker_threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }

    /// The size limits on input, as the decoder takes them.
    pub fn input_limits(&self) -> Limits {
        let size = |bytes: u64| usize::try_from(bytes).unwrap_or(usize::MAX);
        Limits {
            max_message_bytes: size(self.max_message_bytes),
            max_record_bytes: size(self.max_record_bytes),
            max_depth: self.max_nesting_depth,
            max_string_bytes: size(self.max_string_bytes),
        }
    }

    /// Checks the values clap cannot; the error names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.flush_records == 0 {
            return Err("FLUSH_RECORDS (--flush-records) must be > 0".into());
        }
        if self.flush_bytes == 0 {
            return Err("FLUSH_BYTES (--flush-bytes) must be > 0".into());
        }
        if self.flush_interval.is_zero() {
            return Err("FLUSH_INTERVAL (--flush-interval) must be > 0".into());
        }
        for (value, setting) in [
            (
                self.max_message_bytes,
                "MAX_MESSAGE_BYTES (--max-message-bytes)",
            ),
            (
                self.max_record_bytes,
                "MAX_RECORD_BYTES (--max-record-bytes)",
            ),
            (
                self.max_nesting_depth as u64,
                "MAX_NESTING_DEPTH (--max-nesting-depth)",
            ),
            (
                self.max_string_bytes,
                "MAX_STRING_BYTES (--max-string-bytes)",
            ),
        ] {
            if value == 0 {
                return Err(format!("{setting} must be > 0"));
            }
        }
        if self.files_poll_interval.is_zero() {
            return Err("FILES_POLL_INTERVAL (--files-poll-interval) must be > 0".into());
        }
        if self.worker_threads == Some(0) {
            return Err("WORKER_THREADS (--worker-threads) must be > 0".into());
        }
        if self.upload_concurrency == 0 {
            return Err("UPLOAD_CONCURRENCY (--upload-concurrency) must be > 0".into());
        }
        if self.compact_target_size == 0 {
            return Err("COMPACT_TARGET_SIZE (--compact-target-size) must be > 0".into());
        }
        if self.compact_interval.is_zero() {
            return Err("COMPACT_INTERVAL (--compact-interval) must be > 0".into());
        }
        if let Some(Command::Compact { target_size: 0, .. }) = self.command {
            return Err("compact --target-size must be > 0".into());
        }
        if self.kafka.kafka_topic.trim().is_empty() {
            return Err("KAFKA_TOPIC (--kafka-topic) is empty".into());
        }
        Ok(())
    }
}
