//! Exactly once under faults (docs/DESIGN.md §5): consumers killed at random
//! instants, a zombie consumer that wakes up after its partitions moved, and
//! members joining and leaving the group during the run. Every scenario ends
//! with exact counts against the producers' summaries, read through DuckDB.
//!
//! `CHAOS_CYCLES` sets the number of kill cycles of each source and lake
//! (20 by default; `make chaos` runs 200).

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Adds up the counts of several producer runs.
fn total(summaries: &[Value]) -> Value {
    let sum = |field: &str| summaries.iter().map(|s| num(s, field)).sum::<u64>();
    serde_json::json!({
        "batches": sum("batches"),
        "corrupt_batches": sum("corrupt_batches"),
        "records": sum("records"),
        "valid_records": sum("valid_records"),
        "invalid_records": sum("invalid_records"),
    })
}

/// A small deterministic generator for kill instants (xorshift).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn produce(env: &Env, batches: u32, seed: u64, rate: &str) -> Value {
    produce_to(env, batches, seed, rate, "kafka")
}

fn produce_to(env: &Env, batches: u32, seed: u64, rate: &str, sink: &str) -> Value {
    let batches = batches.to_string();
    let seed = seed.to_string();
    env.produce(&[
        "--batches",
        &batches,
        "--batch-size",
        "40",
        "--rate",
        rate,
        "--corrupt-ratio",
        "0.05",
        "--invalid-ratio",
        "0.02",
        "--seed",
        &seed,
        "--sink",
        sink,
    ])
}

fn signal(child: &Background, sig: &str) {
    let pid = child.0.id().to_string();
    let ok = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} {pid}");
}

fn spawn_consumer(env: &Env, extra: &[&str]) -> Background {
    let mut args = vec!["--source", "kafka", "--flush-interval", "500ms"];
    args.extend(extra);
    // Each consumer's log, kept in the test's directory for a failure to show.
    let log = env.dir.path().join(format!("consumer-{}.log", free_port()));
    Background(
        env.command("consumer", &args)
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn consumer"),
    )
}

/// The last lines every consumer of `env` logged.
fn consumer_logs(env: &Env) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(env.dir.path()).expect("dir").flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with("consumer-") && name.ends_with(".log") {
            let log = std::fs::read_to_string(entry.path()).unwrap_or_default();
            text.push_str(&format!("== {name}\n{}\n", tail(&log, 3000)));
        }
    }
    text
}

fn wait_for_bronze(env: &Env, expected: u64) {
    wait_until("bronze to catch up", Duration::from_secs(120), || {
        env.try_count("SELECT count(*) FROM bronze.events") == Some(expected)
    });
}

fn chaos_cycles() -> u32 {
    std::env::var("CHAOS_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(20)
}

/// `cycles` times: 60 new batches into `source` (the producer's sink of that
/// name), then `consumer --source <source> --once` killed with SIGKILL at a
/// random instant of `window` (from, plus up to; ms) unless it finished;
/// then one clean run, and exact counts. `what` names the scenario in the
/// output.
fn kill_nine_cycles(env: &Env, what: &str, cycles: u32, source: &str, window: (u64, u64)) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut summaries = Vec::new();
    let mut kills = 0;
    for cycle in 0..cycles {
        // New data every cycle so every kill can land mid-run.
        summaries.push(produce_to(env, 60, 1000 + cycle as u64, "0", source));
        let mut child = Background(
            env.command(
                "consumer",
                &["--source", source, "--once", "--flush-records", "50"],
            )
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn consumer"),
        );
        std::thread::sleep(Duration::from_millis(window.0 + rng.below(window.1)));
        if child.0.try_wait().expect("try_wait").is_none() {
            child.0.kill().expect("SIGKILL");
            let _ = child.0.wait();
            kills += 1;
        }
    }
    eprintln!("{what}: {cycles} cycles, {kills} consumers killed mid-run");
    assert!(
        kills * 2 >= cycles,
        "too few kills landed mid-run ({kills} of {cycles}): the scenario tests little"
    );
    // The killed runs must have committed work, so restarts replayed and resumed.
    let before_final = env.count("SELECT count(*) FROM bronze.events");
    eprintln!("{what}: bronze rows committed by the killed runs: {before_final}");
    assert!(
        before_final > 0,
        "no killed run committed anything: kills came too early"
    );
    env.run("consumer", &["--source", source, "--once"]);
    assert_exactly_once(env, &total(&summaries));
}

#[test]
fn kill_nine_at_random_instants() {
    let cycles = chaos_cycles();
    let moto = Moto::start();
    // The mock broker keeps about 5 MB per partition, and a cycle adds about
    // 115 KB: long runs spread the backlog so no message a killed run left
    // uncommitted is deleted before a later run reads it.
    let kafka = Kafka::start("events-chaos", (cycles / 10).max(3) as i32);
    let env = Env::kafka(&moto, &kafka, "lake-chaos");
    // Start-up (Kafka, the Delta tables, the replay) takes about half a
    // second, so the window reaches well into the commits.
    kill_nine_cycles(&env, "kafka, S3", cycles, "kafka", (100, 1500));
}

/// The files source reads and decodes ahead on a task of its own while it
/// commits: killed at random instants, on S3 (objects read through the
/// store) and on a local lake (read from the directory), it still ends
/// exactly once.
#[test]
fn kill_nine_at_random_instants_files_source() {
    let cycles = chaos_cycles();
    let moto = Moto::start();
    let s3 = Env::s3(&moto, "lake-chaos-files");
    kill_nine_cycles(&s3, "files, S3", cycles, "files", (600, 2400));
    let mut local = Env::new();
    let root = local.dir.path().join("lake").display().to_string();
    local.set("LAKE_URL", root);
    // A local run is shorter: about 0.1 s to start, 5 ms a commit.
    kill_nine_cycles(&local, "files, local", cycles, "files", (30, 400));
}

#[test]
fn zombie_consumer_is_refused_after_its_partitions_moved() {
    let moto = Moto::start();
    let kafka = Kafka::start("events-zombie", 3);
    let env = Env::kafka(&moto, &kafka, "lake-zombie");
    // Quick failure detection so the frozen member leaves the group in seconds.
    let group = [
        "--kafka-setting",
        "session.timeout.ms=6000",
        "--kafka-setting",
        "heartbeat.interval.ms=500",
    ];
    let zombie = spawn_consumer(&env, &group);
    let first = produce(&env, 150, 1, "60");
    std::thread::sleep(Duration::from_millis(800));
    signal(&zombie, "-STOP");
    let successor = spawn_consumer(&env, &group);
    wait_for_bronze(&env, num(&first, "valid_records"));
    // The zombie wakes holding stale checkpoint versions: its writes must be refused.
    signal(&zombie, "-CONT");
    std::thread::sleep(Duration::from_secs(3));
    let second = produce(&env, 60, 2, "0");
    let summary = total(&[first, second]);
    wait_for_bronze(&env, num(&summary, "valid_records"));
    for consumer in [&zombie, &successor] {
        signal(consumer, "-TERM");
    }
    for mut consumer in [zombie, successor] {
        let status = consumer.0.wait().expect("wait");
        assert!(
            status.success(),
            "consumer exited with {status}\n{}",
            consumer_logs(&env)
        );
    }
    assert_exactly_once(&env, &summary);
}

#[test]
fn members_join_and_leave_during_the_run() {
    let moto = Moto::start();
    let kafka = Kafka::start("events-rebalance", 3);
    let env = Env::kafka(&moto, &kafka, "lake-rebalance");
    let group = [
        "--kafka-setting",
        "session.timeout.ms=6000",
        "--kafka-setting",
        "heartbeat.interval.ms=500",
    ];
    let producer = std::thread::scope(|scope| {
        let producer = scope.spawn(|| produce(&env, 300, 3, "50"));
        let a = spawn_consumer(&env, &group);
        std::thread::sleep(Duration::from_millis(1000));
        let b = spawn_consumer(&env, &group);
        std::thread::sleep(Duration::from_millis(1000));
        let c = spawn_consumer(&env, &group);
        std::thread::sleep(Duration::from_millis(1500));
        signal(&a, "-TERM"); // leaves cleanly
        std::thread::sleep(Duration::from_millis(1000));
        drop(b); // SIGKILL: its partitions move after the session timeout
        let d = spawn_consumer(&env, &group);
        let summary = producer.join().expect("producer thread");
        wait_for_bronze(&env, num(&summary, "valid_records"));
        for consumer in [&c, &d] {
            signal(consumer, "-TERM");
        }
        for mut consumer in [c, d] {
            let status = consumer.0.wait().expect("wait");
            assert!(status.success(), "consumer exited with {status}");
        }
        summary
    });
    assert_exactly_once(&env, &producer);
}

#[test]
fn broker_errors_and_an_outage_mid_run() {
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    let moto = Moto::start();
    let kafka = Kafka::start("events-broker", 3);
    let env = Env::kafka(&moto, &kafka, "lake-broker");
    let before = produce(&env, 100, 4, "0");
    // Transient errors on fetches and advisory offset commits...
    kafka.cluster.request_errors(
        RDKafkaApiKey::Fetch,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        ]
        .repeat(4),
    );
    kafka.cluster.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE; 5],
    );
    let consumer = spawn_consumer(&env, &["--flush-records", "300"]);
    // ...and the only broker down for a while during the run.
    std::thread::sleep(Duration::from_millis(1500));
    kafka.cluster.broker_down(1).expect("broker down");
    std::thread::sleep(Duration::from_secs(4));
    kafka.cluster.broker_up(1).expect("broker up");
    // The consumer must come back by itself and take what arrives after the outage.
    let summary = total(&[before, produce(&env, 100, 5, "0")]);
    wait_for_bronze(&env, num(&summary, "valid_records"));
    signal(&consumer, "-TERM");
    let mut consumer = consumer;
    let status = consumer.0.wait().expect("wait");
    assert!(status.success(), "consumer exited with {status}");
    assert_exactly_once(&env, &summary);
}
