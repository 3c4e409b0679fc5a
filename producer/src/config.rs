//! The producer's command line (docs/DESIGN.md §8). Every value is checked while it is
//! parsed, so a bad flag or variable is reported by clap with the flag's name
//! before anything is generated or sent; nothing below this module reads the
//! environment.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Parser, ValueEnum};

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
    /// Seed of the generator: the same seed and flags give byte-identical batches.
    #[arg(
        long,
        env = "PRODUCER_SEED",
        allow_negative_numbers = true,
        value_name = "S",
        default_value_t = 42
    )]
    pub seed: u64,
    /// Where batches go: Kafka messages, or raw objects under raw/events/ in the lake.
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
    #[command(flatten)]
    pub lake: lake::LakeArgs,
    #[command(flatten)]
    pub kafka: lake::config::KafkaArgs,
}

impl lake::config::FromEnvironment for Config {
    fn read_environment(&mut self, vars: &[(String, String)]) {
        self.lake.read_environment(vars);
        self.kafka.read_environment(vars);
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    /// One Kafka message per batch on KAFKA_TOPIC.
    Kafka,
    /// One object per batch under raw/events/ in LAKE_URL.
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
        assert_eq!(c.seed, 42);
        assert_eq!(c.sink, SinkKind::Kafka);
        assert_eq!(c.users, 1000);
        assert_eq!(c.start_time.to_rfc3339(), "2026-11-01T00:00:00+00:00");
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
        ])
        .expect("valid flags");
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
