//! The producer's command line (docs/DESIGN.md §8). Every value is checked while it is
//! parsed, so a bad flag or variable is reported by clap with the flag's name
//! before anything is generated or sent; nothing below this module reads the
//! environment.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, FromArgMatches, Parser, ValueEnum};
use lake::config::KafkaArgs;

/// Generates batches of events, a share of them deliberately broken, and
/// writes each batch as one Kafka message or one raw object in the lake.
#[derive(Parser, Debug, Clone)]
// Negative numbers are allowed through to the value parsers so that
// `--rate -1` is reported as a bad rate, not as an unknown flag `-1`.
#[command(name = "producer", version)]
pub struct Config {
    /// Stop after this many batches (default: run until stopped by SIGINT or SIGTERM).
    #[arg(
        long,
        env = "PRODUCER_BATCHES",
        allow_negative_numbers = true,
        value_name = "N"
    )]
    pub batches: Option<u64>,
    /// Events per batch.
    #[arg(long, env = "PRODUCER_BATCH_SIZE", allow_negative_numbers = true, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub batch_size: u64,
    /// Batches per second; 0 sends as fast as the sink accepts them.
    #[arg(long, env = "PRODUCER_RATE", allow_negative_numbers = true, value_name = "R", default_value_t = 10.0, value_parser = parse_rate)]
    pub rate: f64,
    /// Share of batches, 0 to 1, corrupted as a whole (truncated, not UTF-8, not JSON, ...).
    #[arg(long, env = "PRODUCER_CORRUPT_RATIO", allow_negative_numbers = true, value_name = "F", default_value_t = 0.02, value_parser = parse_ratio)]
    pub corrupt_ratio: f64,
    /// Share of records, 0 to 1, of readable batches that break one schema rule.
    #[arg(long, env = "PRODUCER_INVALID_RATIO", allow_negative_numbers = true, value_name = "F", default_value_t = 0.01, value_parser = parse_ratio)]
    pub invalid_ratio: f64,
    /// Share of valid records, 0 to 1, replaced by an unchanged re-send of one of the last
    /// 1,000 unique valid records (a client's retry: same text, same key, same event time).
    #[arg(long, env = "PRODUCER_DUPLICATE_RATIO", allow_negative_numbers = true, value_name = "F", default_value_t = 0.0, value_parser = parse_ratio)]
    pub duplicate_ratio: f64,
    /// Share of records, 0 to 1, whose event time is --late-by earlier than it would be
    /// (late events; they stay valid).
    #[arg(long, env = "PRODUCER_LATE_RATIO", allow_negative_numbers = true, value_name = "F", default_value_t = 0.0, value_parser = parse_ratio)]
    pub late_ratio: f64,
    /// How far into the past a late event's time goes: a whole number of milliseconds,
    /// more than 0 and at most 100 years (e.g. 10m, 90s, 2h 30m).
    #[arg(long, env = "PRODUCER_LATE_BY", value_name = "DURATION", default_value = "10m", value_parser = parse_late_by)]
    pub late_by: Duration,
    /// Seed of the generator: the same seed and flags give byte-identical batches.
    #[arg(
        long,
        env = "PRODUCER_SEED",
        allow_negative_numbers = true,
        value_name = "S",
        default_value_t = 42
    )]
    pub seed: u64,
    /// Where batches go: Kafka messages, or raw objects under the raw prefix (raw/events/) in the lake.
    #[arg(long, env = "PRODUCER_SINK", value_enum, default_value_t = SinkKind::Kafka)]
    pub sink: SinkKind,
    /// Write a JSON summary of what was sent to this file at the end (atomically).
    #[arg(long, env = "PRODUCER_SUMMARY", value_name = "PATH")]
    pub summary: Option<PathBuf>,
    /// Size of the fixed, pre-generated user list (user_id 1..=N).
    #[arg(long, env = "PRODUCER_USERS", allow_negative_numbers = true, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub users: u64,
    /// event_ts of the first event (RFC 3339); later events follow a few seconds apart.
    #[arg(long, env = "PRODUCER_START_TIME", value_name = "RFC3339",
          default_value = "2026-11-01T00:00:00Z", value_parser = parse_start_time)]
    pub start_time: DateTime<Utc>,
    /// The most time between consecutive events' event_ts, drawn uniformly from 0: a whole
    /// number of milliseconds, at most 1 day (the default, 6s, is a mean of 3 s apart; 1ms
    /// gives a busy stream's times, a few dates for millions of events).
    #[arg(long, env = "PRODUCER_EVENT_GAP", value_name = "DURATION", default_value = "6s", value_parser = parse_event_gap)]
    pub event_gap: Duration,
    /// Generate records from this JSON Schema contract (draft 2020-12 with "x-lakehouse")
    /// instead of the built-in events; its topic and raw prefix become the defaults.
    #[arg(long, env = "PRODUCER_CONTRACT", value_name = "FILE")]
    pub contract: Option<PathBuf>,
    #[command(flatten)]
    pub lake: lake::LakeArgs,
    #[command(flatten)]
    pub kafka: KafkaFlags,
}

/// The shared Kafka settings, plus whether the topic was given by flag or
/// variable: only then does it win over a contract's topic (its default,
/// `events`, must not).
#[derive(Debug, Clone)]
pub struct KafkaFlags {
    pub args: KafkaArgs,
    pub topic_given: bool,
}

impl KafkaFlags {
    fn topic_given(matches: &ArgMatches) -> bool {
        matches!(
            matches.value_source("kafka_topic"),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    }
}

// By hand rather than derived, to read the topic's value source; everything
// else is KafkaArgs' own.
impl FromArgMatches for KafkaFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(KafkaFlags {
            args: KafkaArgs::from_arg_matches(matches)?,
            topic_given: Self::topic_given(matches),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.args.update_from_arg_matches(matches)?;
        self.topic_given |= Self::topic_given(matches);
        Ok(())
    }
}

impl Args for KafkaFlags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        KafkaArgs::augment_args(cmd)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        KafkaArgs::augment_args_for_update(cmd)
    }
}

impl lake::config::FromEnvironment for Config {
    fn read_environment(&mut self, vars: &[(String, String)]) {
        self.lake.read_environment(vars);
        self.kafka.args.read_environment(vars);
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    /// One Kafka message per batch on KAFKA_TOPIC.
    Kafka,
    /// One object per batch under the raw prefix (raw/events/) in LAKE_URL.
    Files,
}

impl SinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::Kafka => "kafka",
            SinkKind::Files => "files",
        }
    }
}

impl Config {
    /// The Kafka settings and raw prefix batches go to: a contract's topic and
    /// raw prefix, unless the topic was given explicitly; else `events` and
    /// `raw/events/` as before contracts.
    pub fn destination(&self, table: Option<&lake::contract::Table>) -> (KafkaArgs, String) {
        let mut kafka = self.kafka.args.clone();
        match table {
            Some(table) => {
                if !self.kafka.topic_given {
                    kafka.kafka_topic = table.topic.clone();
                }
                (kafka, table.raw_prefix.clone())
            }
            None => (
                kafka,
                lake::layout::default_raw_prefix(lake::layout::EVENTS),
            ),
        }
    }

    /// Time between two batches, or `None` for no pacing.
    pub fn period(&self) -> Option<Duration> {
        // parse_rate bounds the rate, so the period is always representable.
        (self.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / self.rate))
    }
}

fn parse_ratio(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("must be between 0 and 1, got {text}"))
    }
}

/// Whole milliseconds, because event times are written to the millisecond
/// and a late event is exactly this much earlier; at most 100 years, so that
/// with `--start-time` from 1970 every time keeps a four-digit year.
fn parse_late_by(text: &str) -> Result<Duration, String> {
    // humantime's year, so that `100y` itself is accepted.
    const MAX: Duration = Duration::from_secs(100 * 31_557_600);
    let late_by = parse_millis(text)?;
    if late_by.is_zero() {
        Err(format!("must be more than 0, got {text}"))
    } else if late_by > MAX {
        Err(format!("must be at most 100 years (100y), got {text}"))
    } else {
        Ok(late_by)
    }
}

fn parse_event_gap(text: &str) -> Result<Duration, String> {
    let gap = parse_millis(text)?;
    if gap > Duration::from_secs(86_400) {
        Err(format!("must be at most 1 day (1d), got {text}"))
    } else {
        Ok(gap)
    }
}

/// A duration of whole milliseconds: event times are kept in milliseconds.
fn parse_millis(text: &str) -> Result<Duration, String> {
    let duration = lake::config::parse_duration(text)?;
    if duration.subsec_nanos() % 1_000_000 != 0 {
        return Err(format!(
            "must be a whole number of milliseconds, got {text}"
        ));
    }
    Ok(duration)
}

fn parse_rate(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if value == 0.0 || (0.001..=1_000_000.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "must be 0 (no pacing) or between 0.001 and 1000000 batches per second, got {text}"
        ))
    }
}

/// Accepts any offset and keeps the instant in UTC. The range keeps every
/// generated timestamp (and its -05:00 rendering) a valid four-digit-year date.
fn parse_start_time(text: &str) -> Result<DateTime<Utc>, String> {
    let start = DateTime::parse_from_rfc3339(text.trim())
        .map_err(|e| {
            format!("{text:?} is not an RFC 3339 timestamp like 2026-11-01T00:00:00Z ({e})")
        })?
        .with_timezone(&Utc);
    let year = chrono::Datelike::year(&start);
    if (1970..9000).contains(&year) {
        Ok(start)
    } else {
        Err(format!("must be between 1970 and 8999, got {text}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("producer").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = parse(&[]).expect("defaults parse");
        assert_eq!(c.batches, None);
        assert_eq!(c.batch_size, 100);
        assert_eq!(c.rate, 10.0);
        assert_eq!(c.period(), Some(Duration::from_millis(100)));
        assert_eq!(c.corrupt_ratio, 0.02);
        assert_eq!(c.invalid_ratio, 0.01);
        assert_eq!((c.duplicate_ratio, c.late_ratio), (0.0, 0.0));
        assert_eq!(c.late_by, Duration::from_secs(600));
        assert_eq!(c.event_gap, Duration::from_secs(6));
        assert_eq!(c.seed, 42);
        assert_eq!(c.sink, SinkKind::Kafka);
        assert_eq!(c.users, 1000);
        assert_eq!(c.start_time.to_rfc3339(), "2026-11-01T00:00:00+00:00");
        assert_eq!(c.contract, None);
        let (kafka, prefix) = c.destination(None);
        assert_eq!(
            (kafka.kafka_topic.as_str(), prefix.as_str()),
            ("events", "raw/events/")
        );
    }

    #[test]
    fn a_contract_sets_the_topic_and_prefix_unless_the_topic_is_given() {
        let table = lake::contract::Table {
            table: "orders".into(),
            topic: "orders-topic".into(),
            event_time: "order_ts".into(),
            key: None,
            version: 1,
            raw_prefix: "raw/orders/".into(),
        };
        let c = parse(&["--contract", "orders.schema.json"]).expect("valid");
        assert_eq!(c.contract, Some(PathBuf::from("orders.schema.json")));
        let (kafka, prefix) = c.destination(Some(&table));
        assert_eq!(
            (kafka.kafka_topic.as_str(), prefix.as_str()),
            ("orders-topic", "raw/orders/")
        );
        // Explicitly "events", the default's value, still wins.
        let c = parse(&["--contract", "o.json", "--kafka-topic", "events"]).expect("valid");
        assert_eq!(c.destination(Some(&table)).0.kafka_topic, "events");
        assert_eq!(c.destination(Some(&table)).1, "raw/orders/");
    }

    #[test]
    fn flags_parse() {
        let c = parse(&[
            "--batches",
            "5",
            "--batch-size",
            "3",
            "--rate",
            "0",
            "--corrupt-ratio",
            "1",
            "--invalid-ratio",
            "0.5",
            "--seed",
            "7",
            "--sink",
            "files",
            "--summary",
            "/tmp/s.json",
            "--start-time",
            "2026-01-01T01:00:00+01:00",
            "--duplicate-ratio",
            "0.2",
            "--late-ratio",
            "1",
            "--late-by",
            "1h 30m 250ms",
        ])
        .expect("valid flags");
        assert_eq!((c.duplicate_ratio, c.late_ratio), (0.2, 1.0));
        assert_eq!(c.late_by, Duration::from_millis(5_400_250));
        assert_eq!(
            parse(&["--late-by", "100y"])
                .map(|c| c.late_by.as_secs())
                .ok(),
            Some(3_155_760_000)
        );
        assert_eq!(
            (c.batches, c.batch_size, c.seed, c.sink),
            (Some(5), 3, 7, SinkKind::Files)
        );
        assert_eq!(c.period(), None);
        assert_eq!(c.start_time.to_rfc3339(), "2026-01-01T00:00:00+00:00");
    }

    #[test]
    fn bad_values_name_the_flag_and_exit_2() {
        for (flag, value) in [
            ("--corrupt-ratio", "1.5"),
            ("--invalid-ratio", "-0.1"),
            ("--invalid-ratio", "NaN"),
            ("--duplicate-ratio", "1.01"),
            ("--late-ratio", "-0.5"),
            ("--late-by", "soon"),
            ("--late-by", "0s"),
            ("--late-by", "1500us"),
            ("--event-gap", "2d"),
            ("--event-gap", "10us"),
            ("--late-by", "101y"),
            ("--rate", "-1"),
            ("--batches", "-3"),
            ("--rate", "1e-9"),
            ("--batch-size", "0"),
            ("--users", "0"),
            ("--batches", "many"),
            ("--sink", "s3"),
            ("--start-time", "2026-11-01T00:00:00"),
            ("--start-time", "9999-01-01T00:00:00Z"),
        ] {
            let err = parse(&[flag, value]).expect_err(flag);
            assert_eq!(err.exit_code(), 2, "{flag} {value}");
            let first = err.to_string();
            let first = first.lines().next().unwrap_or_default();
            assert!(first.contains(flag), "{flag} {value}: {first}");
        }
    }
}
