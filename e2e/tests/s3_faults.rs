//! Exactly once under S3 faults (docs/DESIGN.md §5): the real consumer writes to moto
//! through `testkit::FaultProxy`, which answers some requests with 5xx, resets
//! or hangs connections, slows answers down, or executes a write and loses its
//! response. The lake is then read through the inspector pointed straight at
//! moto (no faults on the way back), and must hold every record exactly once.
//!
//! Every scenario asserts that its faults really fired, that the consumer
//! exited 0, and the exact counts. A consumer that exits non-zero (or hangs)
//! under a transient fault is a bug: the scenario then reruns it without
//! faults, checks that the data still comes out exactly once, and fails with
//! the consumer's stderr.

mod common;

use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::*;
use lake::layout::SourceId;
use lake::{Lake, LakeArgs};
use serde_json::Value;
use testkit::{Fault, FaultKind, FaultProxy, Op, Rule};

/// Many small micro-batches: about 40 flushes of 3 partitions each.
const CONSUME_KAFKA: &[&str] = &["--source", "kafka", "--once", "--flush-records", "300"];
const CONSUME_FILES: &[&str] = &["--source", "files", "--once", "--flush-records", "300"];

/// How long a consumer run may take before it counts as hung.
const RUN_LIMIT: Duration = Duration::from_secs(200);

/// Where the checkpoints are: faults aimed at them spare the start-up probe.
const CHECKPOINTS: &str = "_checkpoints/events/";

/// One scenario's world: its own moto, topic, bucket and proxy.
struct Scenario {
    name: String,
    moto: Moto,
    _kafka: Option<Kafka>,
    topic: String,
    bucket: String,
    proxy: FaultProxy,
    /// Straight to moto: the producer and the inspector.
    direct: Env,
    /// Through the proxy: the consumer.
    faulted: Env,
    summary: Value,
    consume: &'static [&'static str],
    started: Instant,
}

/// A consumer run: its exit status (`None`: killed after [`RUN_LIMIT`]) and stderr.
struct Run {
    status: Option<ExitStatus>,
    stderr: String,
    elapsed: Duration,
    /// Set when a continuous consumer stopped making progress.
    stalled: Option<String>,
}

impl Run {
    fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| s.success()) && self.stalled.is_none()
    }

    fn describe(&self) -> String {
        let ended = match self.status {
            Some(status) => format!("exited with {status} after {:.1?}", self.elapsed),
            None => format!("HUNG: killed after {:.1?}", self.elapsed),
        };
        match &self.stalled {
            Some(stall) => format!("{stall}, then {ended}"),
            None => ended,
        }
    }
}

fn envs(moto: &Moto, proxy: &FaultProxy, bucket: &str, kafka: Option<&Kafka>) -> (Env, Env) {
    let mut direct = Env::s3(moto, bucket);
    let mut faulted = Env::s3(moto, bucket);
    faulted.set("AWS_ENDPOINT_URL", proxy.endpoint.clone());
    // A held request costs the client's timeout: 10 s here (AWS_TIMEOUT)
    // instead of the default minute, so the scenarios with timeouts take
    // seconds, not minutes, longer than the others.
    faulted.set("AWS_TIMEOUT", "10s");
    if let Some(kafka) = kafka {
        for env in [&mut direct, &mut faulted] {
            env.set("KAFKA_BOOTSTRAP_SERVERS", kafka.bootstrap())
                .set("KAFKA_TOPIC", kafka.topic.clone())
                .set("KAFKA_GROUP_ID", format!("{bucket}-group"));
        }
    }
    (direct, faulted)
}

/// Moto, a 3-partition mock topic, the proxy (no rules yet) and the
/// producer's 240 batches in Kafka.
fn kafka_scenario(name: &str, seed: u64) -> Scenario {
    let started = Instant::now();
    let moto = Moto::start();
    let topic = format!("events-{name}");
    let bucket = format!("lake-{name}");
    let kafka = Kafka::start(&topic, 3);
    let proxy = FaultProxy::start_seeded(&moto.endpoint, seed);
    let (direct, faulted) = envs(&moto, &proxy, &bucket, Some(&kafka));
    let mut args = PRODUCE.to_vec();
    args.extend(["--sink", "kafka"]);
    let summary = direct.produce(&args);
    assert_eq!(num(&summary, "batches"), 240);
    Scenario {
        name: name.to_string(),
        moto,
        _kafka: Some(kafka),
        topic,
        bucket,
        proxy,
        direct,
        faulted,
        summary,
        consume: CONSUME_KAFKA,
        started,
    }
}

/// Moto, the proxy, and the producer's 240 batches as raw objects in the bucket.
fn files_scenario(name: &str, seed: u64) -> Scenario {
    let started = Instant::now();
    let moto = Moto::start();
    let bucket = format!("lake-{name}");
    let proxy = FaultProxy::start_seeded(&moto.endpoint, seed);
    let (direct, faulted) = envs(&moto, &proxy, &bucket, None);
    let mut args = PRODUCE.to_vec();
    args.extend(["--sink", "files"]);
    let summary = direct.produce(&args);
    assert_eq!(num(&summary, "batches"), 240);
    Scenario {
        name: name.to_string(),
        moto,
        _kafka: None,
        topic: String::new(),
        bucket,
        proxy,
        direct,
        faulted,
        summary,
        consume: CONSUME_FILES,
        started,
    }
}

impl Scenario {
    /// Runs the consumer through the proxy; stderr goes to a file so a hang
    /// cannot block on a full pipe.
    fn consume(&self) -> Run {
        let log = self
            .faulted
            .dir
            .path()
            .join(format!("consumer-{}.log", free_port()));
        let file = std::fs::File::create(&log).expect("consumer log");
        let started = Instant::now();
        let mut child = Background(
            self.faulted
                .command("consumer", self.consume)
                .stdout(Stdio::null())
                .stderr(file)
                .spawn()
                .expect("spawn consumer"),
        );
        let status = loop {
            if let Some(status) = child.0.try_wait().expect("try_wait") {
                break Some(status);
            }
            if started.elapsed() > RUN_LIMIT {
                break None; // Background kills it on drop.
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        drop(child);
        Run {
            status,
            stderr: std::fs::read_to_string(&log).unwrap_or_default(),
            elapsed: started.elapsed(),
            stalled: None,
        }
    }

    /// Installs `rules`, runs the consumer once, and prints what happened.
    fn consume_with(&self, rules: Vec<Rule>) -> Run {
        self.proxy.set_rules(rules);
        let run = self.consume();
        self.proxy.clear_rules();
        eprintln!(
            "[{}] consumer under faults {}\n{}",
            self.name,
            run.describe(),
            self.proxy.summary()
        );
        for injection in self.proxy.injections().iter().take(25) {
            eprintln!("[{}]   {injection}", self.name);
        }
        if !run.succeeded() {
            eprintln!(
                "[{}] consumer stderr (tail):\n{}",
                self.name,
                tail(&condensed(&run.stderr), 6000)
            );
        }
        run
    }

    /// The end of every scenario: if the faulted run failed, a rerun without
    /// faults must recover; then exact counts and complete checkpoints; then
    /// the faulted run itself must have succeeded.
    fn assert_exactly_once_after(&self, run: &Run, faults: &str) {
        if !run.succeeded() {
            self.proxy.clear_rules();
            let rerun = self.consume();
            eprintln!("[{}] rerun without faults {}", self.name, rerun.describe());
            assert!(
                rerun.succeeded(),
                "[{}] the rerun without faults failed too ({})\nstderr:\n{}",
                self.name,
                rerun.describe(),
                tail(&condensed(&rerun.stderr), 6000)
            );
        }
        assert_exactly_once(&self.direct, &self.summary);
        self.assert_checkpoints_complete();
        eprintln!(
            "[{}] exactly once verified; scenario took {:.1?}",
            self.name,
            self.started.elapsed()
        );
        assert!(
            run.succeeded(),
            "[{}] BUG: the consumer {} under transient S3 faults ({faults}); \
             a rerun without faults recovered and the lake is exactly once.\n{}\n\
             first injections:\n{}\nconsumer stderr (tail):\n{}",
            self.name,
            run.describe(),
            self.proxy.summary(),
            self.proxy
                .injections()
                .iter()
                .take(10)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
            tail(&condensed(&run.stderr), 4000)
        );
    }

    /// Every checkpoint has no open intent and counts every message once.
    fn assert_checkpoints_complete(&self) {
        let lake = Lake::open(&LakeArgs {
            lake_url: format!("s3://{}", self.bucket),
            aws_endpoint_url: Some(self.moto.endpoint.clone()),
            aws_access_key_id: Some("testing-key".into()),
            aws_secret_access_key: Some("testing-secret".into()),
            aws_region: "us-east-1".into(),
            ..Default::default()
        })
        .expect("open the lake on moto");
        let sources: Vec<SourceId> = if self.topic.is_empty() {
            vec![SourceId::files("events", "raw/events/")]
        } else {
            (0..3)
                .map(|partition| SourceId::kafka("events", &self.topic, partition))
                .collect()
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut messages = 0;
        for source in sources {
            let state = runtime
                .block_on(lake::checkpoint::load(&lake, &source))
                .unwrap_or_else(|e| panic!("[{}] checkpoint of {source}: {e}", self.name));
            assert!(
                state.checkpoint.intent.is_none(),
                "[{}] {source} still has an open intent: {:?}",
                self.name,
                state.checkpoint
            );
            messages += state.checkpoint.totals.messages;
        }
        assert_eq!(
            messages,
            num(&self.summary, "batches"),
            "[{}] messages counted by the checkpoints",
            self.name
        );
    }
}

/// The proxy itself: the whole pipeline through it with no rules, and the
/// inspector (DuckDB httpfs: HEAD, ranged GETs, LIST) through it as well.
#[test]
fn proxy_without_rules_forwards_the_whole_pipeline() {
    let s = kafka_scenario("proxy-plain", 1);
    let run = s.consume_with(Vec::new());
    assert!(
        run.succeeded(),
        "consumer through the proxy {}\n{}",
        run.describe(),
        tail(&condensed(&run.stderr), 4000)
    );
    assert_eq!(s.proxy.injected_total(), 0);
    // Every Delta log entry is created with If-None-Match too.
    let versions = |view: &str| {
        let out = s.direct.run(
            "inspector",
            &["history", view, "--limit", "100000", "--format", "json"],
        );
        let history: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        history.as_array().expect("commits").len() as u64
    };
    let log_entries = versions("bronze.events") + versions("dead_letters.events");
    assert!(log_entries > 2 * 10, "{log_entries} Delta commits");
    assert_eq!(
        s.proxy.requests(Op::PutIfNoneMatch),
        3 + 2 + log_entries,
        "one checkpoint creation per partition, two by the startup probe of conditional writes, \
         and one per Delta log entry"
    );
    assert!(
        s.proxy.requests(Op::PutIfMatch) >= 2 * 3 * 10,
        "{}",
        s.proxy.summary()
    );
    assert!(s.proxy.requests(Op::Put) >= 3 * 10, "{}", s.proxy.summary());
    assert!(
        s.proxy.requests(Op::HeadBucket) >= 1,
        "{}",
        s.proxy.summary()
    );
    s.assert_exactly_once_after(&run, "none");
    // Reads through the proxy give the same answers as reads straight from moto.
    let before =
        s.proxy.requests(Op::Get) + s.proxy.requests(Op::List) + s.proxy.requests(Op::Head);
    let sql = "SELECT count(*) FROM bronze.events";
    assert_eq!(s.faulted.count(sql), s.direct.count(sql));
    let sql = "SELECT count(*) FROM dead_letters.events";
    assert_eq!(s.faulted.count(sql), s.direct.count(sql));
    let after = s.proxy.requests(Op::Get) + s.proxy.requests(Op::List) + s.proxy.requests(Op::Head);
    assert!(
        after > before,
        "the inspector read through the proxy: {}",
        s.proxy.summary()
    );
}

/// 503 SlowDown on 20% of object PUTs, data and checkpoints alike.
#[test]
fn slow_down_on_a_fifth_of_puts() {
    let s = kafka_scenario("slowdown", 2);
    let run = s.consume_with(vec![
        Rule::new(Op::PUTS, Fault::slow_down()).probability(0.2)
    ]);
    assert!(
        s.proxy.injected_on(Op::Put, FaultKind::Status) > 0,
        "{}",
        s.proxy.summary()
    );
    assert!(
        s.proxy.injected_on(Op::PutIfMatch, FaultKind::Status) > 0,
        "{}",
        s.proxy.summary()
    );
    s.assert_exactly_once_after(&run, "503 SlowDown on 20% of PUTs");
}

/// 500 InternalError on GETs and LISTs. The Kafka source only GETs its
/// checkpoints: the first three GETs fail (so one load needs several retries),
/// then every other one.
#[test]
fn internal_errors_on_gets_kafka_source() {
    let s = kafka_scenario("get500", 3);
    let run = s.consume_with(vec![
        Rule::new(&[Op::Get, Op::List], Fault::internal_error()).first(3),
        Rule::new(&[Op::Get, Op::List], Fault::internal_error()).every_nth(2),
    ]);
    assert!(
        s.proxy.injected_on(Op::Get, FaultKind::Status) >= 3,
        "{}",
        s.proxy.summary()
    );
    s.assert_exactly_once_after(&run, "500 on GETs and LISTs");
}

/// 500 InternalError on 30% of GETs and LISTs where there are many: the files
/// source lists `raw/events/` and reads every raw object.
#[test]
fn internal_errors_on_gets_and_lists_files_source() {
    let s = files_scenario("files500", 4);
    let run = s.consume_with(vec![
        // There is one LIST per run: its first three attempts fail.
        Rule::new(&[Op::List], Fault::internal_error()).first(3),
        Rule::new(&[Op::Get, Op::List], Fault::internal_error()).probability(0.3),
    ]);
    assert!(
        s.proxy.injected_on(Op::Get, FaultKind::Status) > 0,
        "{}",
        s.proxy.summary()
    );
    assert!(
        s.proxy.injected_on(Op::List, FaultKind::Status) > 0,
        "{}",
        s.proxy.summary()
    );
    s.assert_exactly_once_after(&run, "500 on 30% of GETs and LISTs");
}

/// Connection resets (RST, nothing forwarded) on 10% of all object requests.
#[test]
fn connection_resets_on_a_tenth_of_requests() {
    let s = kafka_scenario("resets", 5);
    let run = s.consume_with(vec![Rule::new(Op::OBJECTS, Fault::Reset).probability(0.1)]);
    assert!(
        s.proxy.injected_on(Op::Put, FaultKind::Reset) > 0,
        "{}",
        s.proxy.summary()
    );
    assert!(
        s.proxy.injected_on(Op::PutIfMatch, FaultKind::Reset) > 0,
        "{}",
        s.proxy.summary()
    );
    s.assert_exactly_once_after(&run, "resets on 10% of object requests");
}

/// Every conditional PUT (intent and commit) answered 300 ms late.
#[test]
fn slow_conditional_puts() {
    let s = kafka_scenario("slowcond", 6);
    let run = s.consume_with(vec![Rule::new(
        Op::CONDITIONAL_PUTS,
        Fault::Slow(Duration::from_millis(300)),
    )]);
    let slow = s.proxy.injected(FaultKind::Slow);
    assert!(slow >= 2 * 3 * 10, "{}", s.proxy.summary());
    assert_eq!(
        slow,
        s.proxy.requests(Op::PutIfMatch) + s.proxy.requests(Op::PutIfNoneMatch)
    );
    s.assert_exactly_once_after(&run, "300 ms on every conditional PUT");
}

/// Timeouts (the connection holds, no answer, nothing forwarded) on the first
/// two data PUTs, which a micro-batch uploads in parallel: each costs the
/// client's timeout (`AWS_TIMEOUT`, 10 s in these scenarios).
#[test]
fn timeouts_on_two_data_puts() {
    let s = kafka_scenario("timeouts", 7);
    let run = s.consume_with(vec![Rule::new(&[Op::Put], Fault::Timeout).first(2)]);
    assert_eq!(
        s.proxy.injected_on(Op::Put, FaultKind::Timeout),
        2,
        "{}",
        s.proxy.summary()
    );
    s.assert_exactly_once_after(&run, "timeouts on 2 data PUTs");
}

/// A timeout (nothing forwarded) on the first checkpoint update: a
/// conditional PUT is not idempotent, so object_store does not retry it after
/// its timeout; the consumer's own loop must.
#[test]
fn timeout_on_a_checkpoint_update() {
    let s = kafka_scenario("cktimeout", 13);
    let run = s.consume_with(vec![Rule::new(&[Op::PutIfMatch], Fault::Timeout)
        .path_contains(CHECKPOINTS)
        .first(1)]);
    assert_eq!(
        s.proxy.injected_on(Op::PutIfMatch, FaultKind::Timeout),
        1,
        "{}",
        s.proxy.summary()
    );
    s.assert_exactly_once_after(&run, "a timeout on 1 checkpoint PUT");
}

/// The checkpoint write lands, its response is lost (the connection closes
/// cleanly): for two of the three If-None-Match creations and every fourth
/// If-Match update.
#[test]
fn lost_responses_on_conditional_puts() {
    let s = kafka_scenario("lostcond", 8);
    let run = s.consume_with(vec![
        Rule::new(&[Op::PutIfNoneMatch], Fault::LoseResponse)
            .path_contains(CHECKPOINTS)
            .first(2),
        Rule::new(&[Op::PutIfMatch], Fault::LoseResponse)
            .path_contains(CHECKPOINTS)
            .every_nth(4),
    ]);
    assert_landed(&s, Op::PutIfNoneMatch, FaultKind::LoseResponse);
    assert_landed(&s, Op::PutIfMatch, FaultKind::LoseResponse);
    s.assert_exactly_once_after(&run, "lost responses (FIN) on conditional PUTs");
}

/// As above, but the connection is reset (RST) after the write landed, as a
/// load balancer or a NAT dropping the flow would.
#[test]
fn lost_responses_on_conditional_puts_with_reset() {
    let s = kafka_scenario("lostcondrst", 9);
    let run = s.consume_with(vec![
        Rule::new(&[Op::PutIfNoneMatch], Fault::LoseResponseReset)
            .path_contains(CHECKPOINTS)
            .first(1),
        Rule::new(&[Op::PutIfMatch], Fault::LoseResponseReset)
            .path_contains(CHECKPOINTS)
            .every_nth(10),
    ]);
    assert_landed(&s, Op::PutIfNoneMatch, FaultKind::LoseResponseReset);
    assert_landed(&s, Op::PutIfMatch, FaultKind::LoseResponseReset);
    s.assert_exactly_once_after(&run, "lost responses (RST) on conditional PUTs");
}

/// The most common shape of a lost response: the write lands and the answer
/// never comes, so the client times out — once, on a checkpoint update.
#[test]
fn lost_response_timeout_on_a_checkpoint_update() {
    let s = kafka_scenario("lostcondto", 10);
    let run = s.consume_with(vec![Rule::new(
        &[Op::PutIfMatch],
        Fault::LoseResponseTimeout,
    )
    .path_contains(CHECKPOINTS)
    .first(1)]);
    assert_landed(&s, Op::PutIfMatch, FaultKind::LoseResponseTimeout);
    s.assert_exactly_once_after(&run, "one lost response (timeout) on a checkpoint update");
}

/// The continuous consumer (group member, no `--once`) with one lost response
/// (RST) on a checkpoint update: the partition must still catch up.
#[test]
fn continuous_consumer_catches_up_after_a_lost_checkpoint_response() {
    let s = kafka_scenario("lostlive", 14);
    s.proxy
        .set_rules(vec![Rule::new(&[Op::PutIfMatch], Fault::LoseResponseReset)
            .path_contains(CHECKPOINTS)
            .first(1)]);
    let log = s.faulted.dir.path().join("continuous.log");
    let started = Instant::now();
    let mut consumer = Background(
        s.faulted
            .command(
                "consumer",
                &[
                    "--source",
                    "kafka",
                    "--flush-records",
                    "300",
                    "--flush-interval",
                    "1s",
                ],
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn consumer"),
    );
    let expected = num(&s.summary, "valid_records");
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut bronze = 0;
    while Instant::now() < deadline {
        bronze = s
            .direct
            .try_count("SELECT count(*) FROM bronze.events")
            .unwrap_or(bronze);
        if bronze >= expected || consumer.0.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    // SIGTERM: finish the micro-batch, commit, exit.
    let pid = consumer.0.id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    let stop = Instant::now();
    let status = loop {
        if let Some(status) = consumer.0.try_wait().expect("try_wait") {
            break Some(status);
        }
        if stop.elapsed() > Duration::from_secs(30) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(consumer);
    s.proxy.clear_rules();
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    eprintln!(
        "[{}] continuous consumer: bronze {bronze} of {expected} after {:.1?}, then {:?} on SIGTERM\n{}",
        s.name,
        started.elapsed(),
        status,
        s.proxy.summary()
    );
    for injection in s.proxy.injections() {
        eprintln!("[{}]   {injection}", s.name);
    }
    assert_landed(&s, Op::PutIfMatch, FaultKind::LoseResponseReset);
    let caught_up = bronze >= expected;
    if !caught_up {
        eprintln!(
            "[{}] consumer stderr (tail):\n{}",
            s.name,
            tail(&condensed(&stderr), 4000)
        );
    }
    // A run after it (no faults) must leave the lake exactly once either way.
    let run = Run {
        status,
        stderr,
        elapsed: started.elapsed(),
        stalled: (!caught_up)
            .then(|| format!("STALLED: bronze stayed at {bronze} of {expected} rows for 45 s")),
    };
    let faults = "one lost response (RST) on a checkpoint update, continuous mode";
    s.assert_exactly_once_after(&run, faults);
}

/// Data PUTs land and their responses are lost: every tenth reset (RST), a
/// fifth of the others closed cleanly (FIN).
#[test]
fn lost_responses_on_data_puts() {
    let s = kafka_scenario("lostdata", 11);
    let run = s.consume_with(vec![
        Rule::new(&[Op::Put], Fault::LoseResponseReset).every_nth(10),
        Rule::new(&[Op::Put], Fault::LoseResponse).probability(0.2),
    ]);
    assert_landed(&s, Op::Put, FaultKind::LoseResponse);
    assert_landed(&s, Op::Put, FaultKind::LoseResponseReset);
    s.assert_exactly_once_after(&run, "lost responses on about 30% of data PUTs");
}

/// One 503 on the very first request, the bucket check at start-up.
#[test]
fn slow_down_on_the_startup_bucket_check() {
    let s = kafka_scenario("headbucket", 12);
    let run = s.consume_with(vec![
        Rule::new(&[Op::HeadBucket], Fault::slow_down()).first(1)
    ]);
    assert_eq!(
        s.proxy.injected_on(Op::HeadBucket, FaultKind::Status),
        1,
        "{}",
        s.proxy.summary()
    );
    s.assert_exactly_once_after(&run, "one 503 on the start-up HEAD bucket");
}

/// The consumer's stderr without the line it logs for every committed micro-batch.
fn condensed(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|line| !line.contains("micro-batch committed"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The lost-response fault fired on `op` and the server did execute at least
/// one of those requests successfully (so a write really landed unseen).
fn assert_landed(s: &Scenario, op: Op, kind: FaultKind) {
    let landed = s
        .proxy
        .injections()
        .iter()
        .filter(|i| i.op == op && i.fault.kind() == kind && i.upstream_status == Some(200))
        .count();
    assert!(
        landed > 0,
        "[{}] no {kind:?} on {op:?} with a write that landed\n{}",
        s.name,
        s.proxy.summary()
    );
}
