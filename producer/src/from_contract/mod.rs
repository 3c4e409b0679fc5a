//! Records of a user's contract (`--contract FILE`) instead of the built-in
//! events: one JSON object per record satisfying every keyword of the
//! compiled [`lake::contract::Node`] tree, a share of them broken on one
//! rule, and whole batches corrupted as for events
//! ([`crate::corrupt::break_batch`]).
//!
//! The consumer's own decoder ([`lake::decoder::Decoder`]) is the judge: a
//! valid record is one it accepts (a draw it refuses is drawn again), and a
//! broken record is labelled with the error code it gives, so the summary
//! counts exactly what the consumer will report.
//!
//! As with events, one `SmallRng` seeded from `--seed` drives every choice in
//! a fixed order, so the same seed, flags and contract give byte-identical
//! batches. The contract's `event_time` field advances from `--start-time`
//! as `event_ts` does; a top-level field named like a user, customer,
//! device, account or client id takes one of `--users` values listed at
//! start; a uuid `key` is random per record, so unique. Duplicates and late
//! records are [`crate::arrival`]'s, as for events.
//!
//! [`draw`] draws values meant to be valid, [`breakage`] breaks one rule,
//! [`pattern`] draws strings for regexes and [`json`] is the ordered value
//! they are written as.

mod breakage;
mod draw;
mod json;
mod pattern;

use anyhow::{anyhow, Result};
use lake::contract::{Contract, JsonType, Node};
use lake::decoder::{Decoder, Record};
use lake::event::Rejection;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::arrival::{Arrival, Arrivals};
use crate::corrupt::{self, BatchFault};
use crate::draw::pick;
use crate::generate::{Batch, Content, Settings, OFFSETS_SECS};
use crate::record::to_json;
use draw::Drawer;
use json::Json;

/// Records drawn at start with a generator of their own, so that a contract
/// no record can satisfy fails at once with the reason, not mid-run.
const PROBE_RECORDS: usize = 200;
/// Draws of one record before giving up on it.
const ATTEMPTS: usize = 50;

pub struct ContractGenerator {
    contract: Contract,
    decoder: Decoder,
    drawer: Drawer,
    settings: Settings,
    /// Time of the next record, milliseconds since the epoch.
    next_ts_ms: i64,
    arrival: Arrival<Json>,
}

impl ContractGenerator {
    pub fn new(contract: Contract, settings: Settings) -> Result<ContractGenerator> {
        let fail = |e: String| anyhow!("contract {}: cannot generate records: {e}", contract.file);
        let decoder = Decoder::new(contract.clone());
        let event_time = contract.table.event_time.clone();
        let mut drawer = Drawer::new(SmallRng::seed_from_u64(settings.seed), event_time.clone());
        // Like the events' users: listed first, from the same generator.
        for (name, node) in &contract.root.properties {
            let kind_ok = matches!(node.ty, Some(JsonType::Integer | JsonType::String));
            if kind_ok && is_id_name(name) && contract.table.key.as_ref() != Some(name) {
                let list = drawer.id_list(name, node, settings.users).map_err(fail)?;
                drawer.ids.push((name.clone(), list));
            }
        }
        // A stream of its own, so the probe changes nothing that is sent.
        let mut probe = Drawer::new(
            SmallRng::seed_from_u64(settings.seed ^ 0x9E37_79B9_7F4A_7C15),
            event_time,
        );
        probe.ids = drawer.ids.clone();
        probe.record_ms = settings.start_time.timestamp_millis();
        for _ in 0..PROBE_RECORDS {
            draw_record(&mut probe, &decoder, &contract.root, true).map_err(fail)?;
        }
        let next_ts_ms = settings.start_time.timestamp_millis();
        Ok(ContractGenerator {
            contract,
            decoder,
            drawer,
            next_ts_ms,
            arrival: Arrival::new(&settings),
            settings,
        })
    }

    /// Every error code a broken record of this contract is meant to carry.
    pub fn codes(&self) -> Vec<String> {
        breakage::codes(&self.contract.root).into_iter().collect()
    }

    pub fn next_batch(&mut self) -> Result<Batch> {
        let corrupt = self.drawer.rng.random_bool(self.settings.corrupt_ratio);
        let mut late = Vec::with_capacity(self.settings.batch_size as usize);
        let mut records: Vec<Json> = (0..self.settings.batch_size)
            .map(|_| {
                let late_ms = self.arrival.lateness_ms();
                late.push(late_ms > 0);
                self.record(late_ms)
            })
            .collect::<Result<_>>()?;
        if corrupt {
            let fault = pick(&mut self.drawer.rng, &BatchFault::ALL);
            let payload = corrupt::break_batch(&mut self.drawer.rng, fault, &records);
            return Ok(Batch {
                payload,
                content: Content::Corrupt(fault),
                arrivals: Arrivals::default(),
            });
        }
        let mut codes = Vec::with_capacity(records.len());
        for record in &mut records {
            let broken = if self.drawer.rng.random_bool(self.settings.invalid_ratio) {
                self.break_record(record)
            } else {
                None
            };
            codes.push(broken);
        }
        let valid: Vec<bool> = codes.iter().map(Option::is_none).collect();
        let arrivals = self.arrival.resend(&mut records, &valid, &late);
        Ok(Batch {
            payload: to_json(&records),
            content: Content::Contract(codes),
            arrivals,
        })
    }

    /// A valid record, the next one in time; if `late_ms` is not 0, a late
    /// one: drawn as if it happened that much earlier, so its event time and
    /// the times drawn from it move together and the decoder judges them.
    fn record(&mut self, late_ms: i64) -> Result<Json> {
        self.drawer.record_ms = self.next_ts_ms - late_ms;
        self.next_ts_ms += self.drawer.rng.random_range(0..=self.settings.max_gap_ms);
        self.drawer.offset_secs = pick(&mut self.drawer.rng, &OFFSETS_SECS);
        // The probe at start makes this failing unlikely, not impossible.
        let root = &self.contract.root;
        draw_record(&mut self.drawer, &self.decoder, root, false).map_err(|e| {
            anyhow!(
                "contract {}: cannot generate a record: {e}",
                self.contract.file
            )
        })
    }

    /// Breaks one rule of `record` and returns the decoder's error code;
    /// `None`, the record left valid, if no edit gets it refused (a record
    /// with at least one member can always have it twice, so in practice
    /// never).
    fn break_record(&mut self, record: &mut Json) -> Option<String> {
        let rng = &mut self.drawer.rng;
        let (broken, code) = breakage::break_one(rng, &self.decoder, &self.contract.root, record)?;
        *record = broken;
        Some(code)
    }
}

/// A record of `root` that `decoder` accepts. `strict` (the probe at start)
/// fails at once on a field the drawer finds no value for, even when other
/// draws leave it out: such a field is one no record can have.
fn draw_record(
    drawer: &mut Drawer,
    decoder: &Decoder,
    root: &Node,
    strict: bool,
) -> Result<Json, String> {
    let mut last = String::new();
    for _ in 0..ATTEMPTS {
        drawer.chosen.clear();
        match drawer.value(&[root], "", 0) {
            Ok(record) => match judge(decoder, &record) {
                Ok(()) => return Ok(record),
                Err(rejection) => last = rejection.message,
            },
            Err(e) if strict => return Err(e),
            Err(e) => last = e,
        }
    }
    Err(format!(
        "no record the consumer accepts in {ATTEMPTS} draws; the last: {last}"
    ))
}

/// The consumer's verdict on `record`, as written.
fn judge(decoder: &Decoder, record: &Json) -> Result<(), Rejection> {
    let text = to_json(record);
    let text = std::str::from_utf8(&text).expect("serde_json writes UTF-8");
    decoder.decode_text(text, &mut Record::default())
}

/// `user_id`, `customerId`, `device_id`, ...: fields whose values repeat
/// across records, as users do.
fn is_id_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let stem = lower
        .strip_suffix("_id")
        .or_else(|| lower.strip_suffix("id"));
    matches!(
        stem,
        Some("user" | "customer" | "device" | "account" | "client")
    )
}

#[cfg(test)]
mod tests;
