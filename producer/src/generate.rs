//! Users, events and batches. One `SmallRng` seeded from `--seed` drives every
//! choice, in a fixed order (duplicates and late events draw from a stream of
//! their own, [`crate::arrival`]), so the same seed and flags give
//! byte-identical batches; the clock is never consulted. Batch `k` depends only on the flags
//! and on batches `0..k`, so `--batches` cuts the same stream at a different
//! place.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use serde_json::Value;

use crate::arrival::{Arrival, Arrivals};
use crate::corrupt::{self, BatchFault, RecordFault};
use crate::draw::pick;
use crate::record::{to_json, Record};

/// Home countries of the users: real ISO 3166-1 alpha-2 codes.
pub const COUNTRIES: [&str; 16] = [
    "US", "DE", "FR", "GB", "NL", "ES", "IT", "PL", "SE", "BR", "IN", "JP", "CA", "AU", "MX", "ZA",
];

/// Offsets `event_ts` is written with, so the consumer's UTC conversion is exercised.
pub(crate) const OFFSETS_SECS: [i32; 4] = [0, 3600, -5 * 3600, 5 * 3600 + 1800];

/// `(event_type, weight in percent)`: browsing is common, buying is rare.
const EVENT_WEIGHTS: [(&str, u32); 4] = [
    ("page_view", 60),
    ("click", 25),
    ("add_to_cart", 10),
    ("purchase", 5),
];

/// The default of `--event-gap` (6s), for the tests: a mean gap of 3 s
/// between consecutive events, so 100 000 events span about 3.5 days and big
/// runs fill several `event_date` partitions.
#[cfg(test)]
pub(crate) const MAX_GAP_MS: i64 = 6_000;

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub user_id: i64,
    pub country: &'static str,
}

/// What a batch holds, for the summary and the tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// The whole batch is unreadable.
    Corrupt(BatchFault),
    /// A JSON array; one entry per record, `Some` for a deliberately invalid one.
    Records(Vec<Option<RecordFault>>),
    /// A JSON array of records of a contract; one entry per record, `Some`
    /// with the error code the consumer must give a deliberately invalid one.
    Contract(Vec<Option<String>>),
}

#[derive(Debug, Clone)]
pub struct Batch {
    pub payload: Vec<u8>,
    pub content: Content,
    /// The duplicates and late events among its valid records; none in a
    /// corrupt batch.
    pub arrivals: Arrivals,
}

/// What the generator needs from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    pub seed: u64,
    pub users: u64,
    pub batch_size: u64,
    pub corrupt_ratio: f64,
    pub invalid_ratio: f64,
    pub duplicate_ratio: f64,
    pub late_ratio: f64,
    pub late_by: Duration,
    pub start_time: DateTime<Utc>,
    /// The most time between consecutive events' event_ts (drawn uniformly from 0), ms.
    pub max_gap_ms: i64,
}

impl Settings {
    pub fn from_config(c: &crate::Config) -> Self {
        Settings {
            seed: c.seed,
            users: c.users,
            batch_size: c.batch_size,
            corrupt_ratio: c.corrupt_ratio,
            invalid_ratio: c.invalid_ratio,
            duplicate_ratio: c.duplicate_ratio,
            late_ratio: c.late_ratio,
            late_by: c.late_by,
            start_time: c.start_time,
            max_gap_ms: i64::try_from(c.event_gap.as_millis()).unwrap_or(i64::MAX),
        }
    }
}

pub struct Generator {
    rng: SmallRng,
    users: Vec<User>,
    settings: Settings,
    /// event_ts of the next event, milliseconds since the epoch.
    next_ts_ms: i64,
    arrival: Arrival<Record>,
}

impl Generator {
    pub fn new(settings: Settings) -> Self {
        let mut rng = SmallRng::seed_from_u64(settings.seed);
        let users = (1..=settings.users as i64)
            .map(|user_id| User {
                user_id,
                country: pick(&mut rng, &COUNTRIES),
            })
            .collect();
        let next_ts_ms = settings.start_time.timestamp_millis();
        Generator {
            rng,
            users,
            next_ts_ms,
            arrival: Arrival::new(&settings),
            settings,
        }
    }

    pub fn users(&self) -> &[User] {
        &self.users
    }

    pub fn next_batch(&mut self) -> Batch {
        let corrupt = self.rng.random_bool(self.settings.corrupt_ratio);
        let mut late = Vec::with_capacity(self.settings.batch_size as usize);
        let mut records: Vec<Record> = (0..self.settings.batch_size)
            .map(|_| {
                let late_ms = self.arrival.lateness_ms();
                late.push(late_ms > 0);
                self.event(late_ms)
            })
            .collect();
        if corrupt {
            let fault = pick(&mut self.rng, &BatchFault::ALL);
            let payload = corrupt::break_batch(&mut self.rng, fault, &records);
            return Batch {
                payload,
                content: Content::Corrupt(fault),
                arrivals: Arrivals::default(),
            };
        }
        let faults: Vec<Option<RecordFault>> = records
            .iter_mut()
            .map(|record| {
                if !self.rng.random_bool(self.settings.invalid_ratio) {
                    return None;
                }
                let fault = pick(&mut self.rng, &RecordFault::ALL);
                corrupt::break_record(&mut self.rng, fault, record, self.users.len() as i64);
                Some(fault)
            })
            .collect();
        let valid: Vec<bool> = faults.iter().map(Option::is_none).collect();
        let arrivals = self.arrival.resend(&mut records, &valid, &late);
        Batch {
            payload: to_json(&records),
            content: Content::Records(faults),
            arrivals,
        }
    }

    /// A valid event (docs/DESIGN.md §3), the next one in time, its event_ts
    /// `late_ms` earlier than that (a late event) if not 0.
    pub(crate) fn event(&mut self, late_ms: i64) -> Record {
        let rng = &mut self.rng;
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        let event_id = uuid::Builder::from_random_bytes(id)
            .into_uuid()
            .hyphenated()
            .to_string();

        let user = &self.users[rng.random_range(0..self.users.len())];
        let event_type = weighted(rng, &EVENT_WEIGHTS);

        let ts_ms = self.next_ts_ms;
        self.next_ts_ms += rng.random_range(0..=self.settings.max_gap_ms);
        let event_ts = format_ts(ts_ms - late_ms, pick(rng, &OFFSETS_SECS));

        let product = rng.random_range(1..=500);
        let page = match event_type {
            "purchase" => "/checkout".to_string(),
            "add_to_cart" => format!("/products/{product}"),
            _ => match rng.random_range(0..4) {
                0 => "/".to_string(),
                1 => format!(
                    "/category/{}",
                    pick(rng, &["shoes", "books", "garden", "toys"])
                ),
                2 => "/cart".to_string(),
                _ => format!("/products/{product}"),
            },
        };

        let mut fields = vec![
            ("event_id", Value::from(event_id)),
            ("user_id", Value::from(user.user_id)),
            ("event_type", Value::from(event_type)),
            ("event_ts", Value::from(event_ts)),
            ("page", Value::from(page)),
        ];
        // Mostly the home country, sometimes none, sometimes abroad.
        match rng.random_range(0..100) {
            0..85 => fields.push(("country", Value::from(user.country))),
            85..95 => {}
            _ => fields.push(("country", Value::from(pick(rng, &COUNTRIES)))),
        }
        if event_type == "purchase" {
            let cents: u32 = rng.random_range(100..=50_000);
            fields.push(("amount", Value::from(f64::from(cents) / 100.0)));
        }
        Record { fields }
    }
}

/// RFC 3339 with millisecond precision, in the given offset (`Z` for UTC).
pub(crate) fn format_ts(ms: i64, offset_secs: i32) -> String {
    // The start time is bounded to 1970..9000 by the config, so both exist.
    let utc = DateTime::<Utc>::from_timestamp_millis(ms).expect("event_ts within chrono's range");
    let offset = FixedOffset::east_opt(offset_secs).expect("offsets are within a day");
    utc.with_timezone(&offset)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn weighted(rng: &mut SmallRng, table: &[(&'static str, u32)]) -> &'static str {
    let total: u32 = table.iter().map(|(_, w)| w).sum();
    let mut draw = rng.random_range(0..total);
    for (item, weight) in table {
        if draw < *weight {
            return item;
        }
        draw -= weight;
    }
    table[table.len() - 1].0
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::summary::Summary;
    use serde_json::value::RawValue;
    use std::collections::HashSet;

    pub(crate) fn settings(seed: u64) -> Settings {
        Settings {
            seed,
            users: 50,
            batch_size: 20,
            corrupt_ratio: 0.1,
            invalid_ratio: 0.1,
            duplicate_ratio: 0.0,
            late_ratio: 0.0,
            late_by: Duration::from_secs(600),
            start_time: DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
                .expect("valid")
                .with_timezone(&Utc),
            max_gap_ms: MAX_GAP_MS,
        }
    }

    fn batches(settings: Settings, n: usize) -> Vec<Batch> {
        let mut g = Generator::new(settings);
        (0..n).map(|_| g.next_batch()).collect()
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let a: Vec<Vec<u8>> = batches(settings(7), 30)
            .into_iter()
            .map(|b| b.payload)
            .collect();
        let b: Vec<Vec<u8>> = batches(settings(7), 30)
            .into_iter()
            .map(|b| b.payload)
            .collect();
        let c: Vec<Vec<u8>> = batches(settings(8), 30)
            .into_iter()
            .map(|b| b.payload)
            .collect();
        assert_eq!(a, b);
        assert_ne!(a[0], c[0]);
        // A shorter run is a prefix of a longer one.
        let short: Vec<Vec<u8>> = batches(settings(7), 5)
            .into_iter()
            .map(|b| b.payload)
            .collect();
        assert_eq!(short[..], a[..5]);
    }

    /// With duplicates and late events, a run is the run of the same seed
    /// without them but for those records: a duplicate is the text of an
    /// earlier valid record in its slot, a late event has its event_ts
    /// exactly `late_by` earlier and is otherwise unchanged, and the summary's
    /// unique records are the distinct event_ids.
    #[test]
    fn duplicates_resend_earlier_records_and_late_events_are_late_by_exactly() {
        let plain = Settings {
            batch_size: 50,
            ..settings(11)
        };
        let mixed = Settings {
            duplicate_ratio: 0.2,
            late_ratio: 0.1,
            late_by: Duration::from_secs(600),
            ..plain.clone()
        };
        let (plain, mixed) = (batches(plain, 200), batches(mixed, 200));
        let (mut before, mut summary) = (Summary::new(11, "files"), Summary::new(11, "files"));
        // Texts of the valid records sent so far, and the keys among them.
        let (mut sent, mut keys) = (HashSet::new(), HashSet::new());
        let mut late = 0;
        for (seq, (p, m)) in plain.iter().zip(&mixed).enumerate() {
            before.add(&format!("b{seq}"), p);
            summary.add(&format!("b{seq}"), m);
            assert_eq!(p.content, m.content, "the same records broken, b{seq}");
            // A corrupt batch's bytes come from its records, late ones
            // included, so only its lack of duplicates is checked.
            let Content::Records(faults) = &m.content else {
                assert_eq!(m.arrivals, Default::default());
                continue;
            };
            let ps: Vec<&RawValue> = serde_json::from_slice(&p.payload).expect("parses");
            let ms: Vec<&RawValue> = serde_json::from_slice(&m.payload).expect("parses");
            for (i, fault) in faults.iter().enumerate() {
                let (text, normal) = (ms[i].get(), ps[i].get());
                if fault.is_some() {
                    assert!(!m.arrivals.duplicates.contains(&i) && !m.arrivals.late.contains(&i));
                    continue;
                }
                let event = lake::event::validate_record(text).expect("valid");
                keys.insert(event.event_id.to_string());
                if m.arrivals.duplicates.contains(&i) {
                    assert!(sent.contains(text), "not an earlier valid record: {text}");
                    continue;
                }
                assert!(sent.insert(text.to_string()), "fresh twice: {text}");
                if m.arrivals.late.contains(&i) {
                    late += 1;
                    let on_time = lake::event::validate_record(normal).expect("valid");
                    assert_eq!(on_time.event_ts_micros - event.event_ts_micros, 600_000_000);
                    let without_ts = |t: &str| {
                        let mut v: Value = serde_json::from_str(t).expect("parses");
                        v.as_object_mut().expect("object").remove("event_ts");
                        v
                    };
                    assert_eq!(without_ts(text), without_ts(normal));
                } else {
                    assert_eq!(text, normal);
                }
            }
        }
        assert_eq!(keys.len() as u64, summary.unique_valid_records);
        assert_eq!(late, summary.late_records);
        // Bronze gets as many valid records as without the flags.
        assert_eq!(
            (summary.valid_records, summary.invalid_records),
            (before.valid_records, before.invalid_records)
        );
        assert_eq!(
            summary.unique_valid_records + summary.duplicate_records,
            summary.valid_records
        );
        assert_eq!((before.duplicate_records, before.late_records), (0, 0));
        let share = |n: u64, of: u64| n as f64 / of as f64;
        let duplicates = share(summary.duplicate_records, summary.valid_records);
        let late = share(summary.late_records, summary.unique_valid_records);
        assert!((0.18..0.22).contains(&duplicates), "{duplicates}");
        assert!((0.08..0.12).contains(&late), "{late}");
    }

    #[test]
    fn users_are_fixed_by_the_seed() {
        let users = Generator::new(settings(3)).users().to_vec();
        assert_eq!(users, Generator::new(settings(3)).users().to_vec());
        assert_eq!(users.len(), 50);
        assert!(users
            .iter()
            .enumerate()
            .all(|(i, u)| u.user_id == i as i64 + 1));
        assert!(users
            .iter()
            .all(|u| lake::event::is_country_code(u.country)));
    }

    /// Every record produced as valid passes the consumer's validation, every
    /// one produced as invalid fails it with the code its fault implies, and
    /// valid records have distinct event_ids.
    #[test]
    fn records_are_valid_or_invalid_as_labelled() {
        let mut seen_faults = HashSet::new();
        let mut ids = HashSet::new();
        let mut offsets = HashSet::new();
        let mut types = HashSet::new();
        let mut valid = 0;
        for seed in 0..40 {
            for batch in batches(settings(seed), 40) {
                let Content::Records(faults) = batch.content else {
                    continue;
                };
                let records: Vec<&RawValue> =
                    serde_json::from_slice(&batch.payload).expect("readable batch parses");
                assert_eq!(records.len(), faults.len());
                for (raw, fault) in records.iter().zip(&faults) {
                    match (lake::event::validate_record(raw.get()), fault) {
                        (Ok(event), None) => {
                            valid += 1;
                            assert!(
                                ids.insert(event.event_id.to_string()),
                                "duplicate id {}",
                                event.event_id
                            );
                            types.insert(event.event_type);
                            offsets.insert(event_ts_suffix(raw.get()));
                            assert_eq!(event.amount.is_some(), event.event_type == "purchase");
                            assert!(event.user_id >= 1 && event.user_id <= 50);
                        }
                        (Err(rejection), Some(fault)) => {
                            assert_eq!(
                                rejection.code,
                                fault.expected_code(),
                                "{fault:?}: {}",
                                raw.get()
                            );
                            seen_faults.insert(*fault);
                        }
                        (result, fault) => {
                            panic!("{fault:?} produced {result:?} for {}", raw.get())
                        }
                    }
                }
            }
        }
        assert!(valid > 10_000, "{valid}");
        assert_eq!(seen_faults.len(), RecordFault::ALL.len(), "{seen_faults:?}");
        assert_eq!(types.len(), 4);
        assert_eq!(
            offsets,
            HashSet::from(["Z", "+01:00", "-05:00", "+05:30"].map(String::from))
        );
    }

    fn event_ts_suffix(record: &str) -> String {
        let value: serde_json::Value = serde_json::from_str(record).expect("parses");
        let ts = value["event_ts"].as_str().expect("string").to_string();
        if ts.ends_with('Z') {
            "Z".into()
        } else {
            ts[ts.len() - 6..].to_string()
        }
    }

    /// The event time and date of every event in 1,000 clean batches of 100,
    /// each batch checked to be compact JSON.
    fn event_times(max_gap_ms: i64) -> Vec<(i64, i32)> {
        let mut g = Generator::new(Settings {
            batch_size: 100,
            corrupt_ratio: 0.0,
            invalid_ratio: 0.0,
            max_gap_ms,
            ..settings(1)
        });
        let mut times = Vec::new();
        for _ in 0..1000 {
            let batch = g.next_batch();
            assert!(batch.payload.starts_with(b"[{") && batch.payload.ends_with(b"}]"));
            assert!(!batch.payload.iter().any(u8::is_ascii_whitespace));
            let records: Vec<&RawValue> = serde_json::from_slice(&batch.payload).expect("parses");
            for raw in records {
                let event = lake::event::validate_record(raw.get()).expect("valid");
                times.push((event.event_ts_micros, event.event_day()));
            }
        }
        assert!(
            times.windows(2).all(|w| w[0].0 <= w[1].0),
            "event_ts goes forward"
        );
        times
    }

    #[test]
    fn batches_are_compact_and_time_advances_over_days() {
        let days: HashSet<i32> = event_times(MAX_GAP_MS).iter().map(|t| t.1).collect();
        assert!((3..=5).contains(&days.len()), "{days:?}");
        // A busy stream's times: 100,000 events at most 1 ms apart span under 2 minutes.
        let busy = event_times(1);
        let span = busy[busy.len() - 1].0 - busy[0].0;
        assert!(span <= 100_000 * 1_000 && span > 0, "{span} µs");
    }

    #[test]
    fn ratios_are_respected() {
        let none = batches(
            Settings {
                corrupt_ratio: 0.0,
                invalid_ratio: 0.0,
                ..settings(5)
            },
            200,
        );
        assert!(none
            .iter()
            .all(|b| matches!(&b.content, Content::Records(f) if f.iter().all(Option::is_none))));
        let all = batches(
            Settings {
                corrupt_ratio: 1.0,
                ..settings(5)
            },
            50,
        );
        assert!(all.iter().all(|b| matches!(b.content, Content::Corrupt(_))));
        let invalid = batches(
            Settings {
                corrupt_ratio: 0.0,
                invalid_ratio: 1.0,
                ..settings(5)
            },
            50,
        );
        assert!(invalid
            .iter()
            .all(|b| matches!(&b.content, Content::Records(f) if f.iter().all(Option::is_some))));
    }
}
