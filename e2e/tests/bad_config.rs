//! Bad configuration and bad environments: every wrong setting ends the
//! binary within a bounded time with exit code 1 (2 for a value the command
//! line parser refuses) and exactly one line on stderr, `<binary>: <what>`,
//! that names the setting or endpoint. Logging is off (`RUST_LOG=off`) so
//! that line is all there is. And no secret is ever printed.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;

/// What a binary may take to give up on an unreachable broker or endpoint.
const BOUNDED: Duration = Duration::from_secs(30);
const SECRET: &str = "SECRETsecret123456";
const KAFKA_SECRET: &str = "KAFKAsecret654321";

/// Runs `cmd`, killing it (and failing the test) if it outlives `limit`.
fn run_bounded(what: &str, mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let started = Instant::now();
    let (done, waited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match waited.recv_timeout(limit) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!(
                "{what} still running after {:?}: it hangs",
                started.elapsed()
            );
        }
    }
}

/// An environment whose binaries log nothing, so stderr is the error alone.
fn quiet(mut env: Env) -> Env {
    env.set("RUST_LOG", "off");
    env
}

/// A local lake in the test's directory, and a broker nobody listens on.
fn local_env() -> Env {
    let mut env = quiet(Env::new());
    let lake = env.dir.path().join("lake").display().to_string();
    env.set("LAKE_URL", lake).set(
        "KAFKA_BOOTSTRAP_SERVERS",
        format!("127.0.0.1:{}", free_port()),
    );
    env
}

/// Runs `binary args` and returns its one line of error after checking the
/// exit code, that stderr is exactly that line, and that it names every
/// string of `names`.
fn error_line(env: &Env, binary: &str, args: &[&str], code: i32, names: &[&str]) -> String {
    let what = format!("{binary} {args:?}");
    let out = run_bounded(&what, env.command(binary, args), BOUNDED);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: exit code\nstderr:\n{}",
        tail(&stderr, 4000)
    );
    assert_eq!(
        stderr.lines().count(),
        1,
        "{what}: stderr is not one line:\n{}",
        tail(&stderr, 4000)
    );
    let line = stderr.trim_end().to_string();
    assert!(line.starts_with(&format!("{binary}: ")), "{what}: {line}");
    assert!(!line.contains("panicked"), "{what}: {line}");
    for name in names {
        assert!(line.contains(name), "{what}: {name:?} missing from: {line}");
    }
    assert!(
        !line.contains(SECRET),
        "{what}: the secret is printed: {line}"
    );
    eprintln!("{what}\n  -> {line}");
    line
}

#[test]
fn unreachable_kafka_broker_is_named_within_bounded_time() {
    let env = local_env();
    let broker = env
        .vars
        .iter()
        .find(|(k, _)| k == "KAFKA_BOOTSTRAP_SERVERS")
        .map(|(_, v)| v.clone())
        .expect("set");
    let names = ["KAFKA_BOOTSTRAP_SERVERS", broker.as_str()];
    // One at a time would take three times the metadata timeout: run together.
    std::thread::scope(|s| {
        s.spawn(|| error_line(&env, "consumer", &["--once"], 1, &names));
        s.spawn(|| error_line(&env, "consumer", &[], 1, &names));
        s.spawn(|| error_line(&env, "producer", &["--batches", "1"], 1, &names));
    });
    // The status report still shows the lake; its Kafka section says why it has no lag.
    let out = run_bounded(
        "inspector status",
        env.command("inspector", &["status"]),
        BOUNDED,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("lag: n/a") && stdout.contains("KAFKA_BOOTSTRAP_SERVERS"),
        "{stdout}"
    );
}

#[test]
fn unreachable_or_malformed_s3_endpoint_is_named() {
    let closed = format!("http://127.0.0.1:{}", free_port());
    let mut env = quiet(Env::new());
    env.set("LAKE_URL", "s3://lake")
        .set("AWS_ENDPOINT_URL", closed.clone())
        .set("AWS_ACCESS_KEY_ID", "testing-key")
        .set("AWS_SECRET_ACCESS_KEY", SECRET)
        .set(
            "KAFKA_BOOTSTRAP_SERVERS",
            format!("127.0.0.1:{}", free_port()),
        );
    let names = ["AWS_ENDPOINT_URL", closed.as_str(), "unreachable"];
    std::thread::scope(|s| {
        s.spawn(|| error_line(&env, "consumer", &["--once"], 1, &names));
        s.spawn(|| error_line(&env, "consumer", &["--source", "files"], 1, &names));
        s.spawn(|| {
            error_line(
                &env,
                "producer",
                &["--sink", "files", "--batches", "1"],
                1,
                &names,
            )
        });
        s.spawn(|| error_line(&env, "inspector", &["query", "SELECT 1"], 1, &names));
    });
    for bad in ["localhost:9000", "ftp://host", "http://"] {
        env.set("AWS_ENDPOINT_URL", bad);
        for (binary, args) in [
            ("consumer", &["--once"][..]),
            ("producer", &["--sink", "files", "--batches", "1"]),
            ("inspector", &["query", "SELECT 1"]),
        ] {
            error_line(&env, binary, args, 1, &["AWS_ENDPOINT_URL", bad]);
        }
    }
}

#[test]
fn wrong_credentials_are_named_without_the_secret() {
    let moto = Moto::start_authenticating();
    let mut env = quiet(Env::s3(&moto, "lake-auth"));
    env.set("AWS_ACCESS_KEY_ID", "AKIANOSUCHUSER")
        .set("AWS_SECRET_ACCESS_KEY", SECRET);
    let names = [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        moto.endpoint.as_str(),
        "refused the credentials",
    ];
    error_line(&env, "consumer", &["--once"], 1, &names);
    error_line(
        &env,
        "producer",
        &["--sink", "files", "--batches", "1"],
        1,
        &names,
    );
    error_line(&env, "inspector", &["query", "SELECT 1"], 1, &names);
    error_line(&env, "inspector", &["status"], 1, &names);
}

#[test]
fn missing_bucket_is_created_only_when_allowed() {
    let moto = Moto::start();
    let mut env = quiet(Env::s3(&moto, "lake-missing"));
    env.set("CREATE_BUCKET", "false");
    let names = [
        "\"lake-missing\"",
        "CREATE_BUCKET=false",
        moto.endpoint.as_str(),
    ];
    error_line(
        &env,
        "consumer",
        &["--source", "files", "--once"],
        1,
        &names,
    );
    // The inspector never creates a bucket: it names the bucket and LAKE_URL.
    error_line(
        &env,
        "inspector",
        &["query", "SELECT 1"],
        1,
        &["\"lake-missing\"", "LAKE_URL", "does not exist"],
    );
    env.set("CREATE_BUCKET", "true");
    env.run("consumer", &["--source", "files", "--once"]);
    assert_eq!(env.count("SELECT count(*) FROM bronze.events"), 0);
}

#[test]
fn malformed_lake_urls_are_named() {
    let mut env = local_env();
    for bad in [
        "s3://",
        "s3://UPPER",
        "s3://ab",
        "s3://bad_name/x",
        "ftp://x",
        "file://relative",
        "",
        "   ",
    ] {
        env.set("LAKE_URL", bad);
        for (binary, args) in [
            ("consumer", &["--once"][..]),
            ("producer", &["--sink", "files", "--batches", "1"]),
            ("inspector", &["query", "SELECT 1"]),
        ] {
            let line = error_line(&env, binary, args, 1, &["LAKE_URL"]);
            assert!(line.starts_with(&format!("{binary}: LAKE_URL")), "{line}");
        }
    }
}

#[test]
fn missing_topic_fails_fast_in_both_modes() {
    let kafka = Kafka::start("events-present", 2);
    let mut env = local_env();
    env.set("KAFKA_BOOTSTRAP_SERVERS", kafka.bootstrap())
        .set("KAFKA_TOPIC", "no-such-topic")
        .set("KAFKA_GROUP_ID", "missing-topic-group");
    let names = ["KAFKA_TOPIC", "no-such-topic", "does not exist"];
    std::thread::scope(|s| {
        s.spawn(|| error_line(&env, "consumer", &["--once"], 1, &names));
        // Group mode would wait for the topic forever; it refuses to start instead.
        s.spawn(|| error_line(&env, "consumer", &[], 1, &names));
        s.spawn(|| error_line(&env, "producer", &["--batches", "1"], 1, &names));
    });
    env.set("KAFKA_TOPIC", "");
    error_line(&env, "consumer", &["--once"], 1, &["KAFKA_TOPIC"]);
}

#[test]
fn unwritable_local_lake_is_named() {
    let env = local_env();
    let file = env.dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").expect("write");
    let under_file = file.join("lake").display().to_string();
    // Root writes anywhere a mode allows, but not under a file or in /proc.
    for bad in [
        under_file.as_str(),
        "/proc/lakehouse-test",
        "/proc",
        "file:///proc",
    ] {
        let mut env = local_env();
        env.set("LAKE_URL", bad);
        let path = bad.trim_start_matches("file://");
        for (binary, args) in [
            ("consumer", &["--source", "files", "--once"][..]),
            ("consumer", &["--once"]),
            ("producer", &["--sink", "files", "--batches", "1"]),
        ] {
            error_line(&env, binary, args, 1, &["LAKE_URL", path, "cannot"]);
        }
    }
    let mut env = local_env();
    env.set("LAKE_URL", under_file.clone());
    error_line(
        &env,
        "inspector",
        &["query", "SELECT 1"],
        1,
        &["LAKE_URL", &under_file],
    );
}

/// Puts `content` at `key` in a local lake and returns its path.
fn put_local(env: &Env, key: &str, content: &[u8]) -> std::path::PathBuf {
    let path = env.dir.path().join("lake").join(key);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, content).expect("write");
    path
}

/// A checkpoint of the real format that belongs to `source` (JSON).
fn foreign_checkpoint(source: &str) -> Vec<u8> {
    format!(
        r#"{{"format":1,"source":{source},"next_offset":7,"intent":null,
            "totals":{{"micro_batches":1,"messages":7,"bronze_rows":0,"dead_letter_rows":0}},
            "updated_at":"2026-11-01T00:00:00.000Z","writer":"elsewhere/1","write_token":"t"}}"#
    )
    .into_bytes()
}

#[test]
fn broken_or_foreign_checkpoints_stop_the_consumer_untouched() {
    let kafka = Kafka::start("events-ckpt", 1);
    let key = "_checkpoints/events/kafka/events-ckpt/partition-0.json";
    let other_topic = r#"{"kind":"kafka","topic":"other","partition":0}"#;
    let other_partition = r#"{"kind":"kafka","topic":"events-ckpt","partition":3}"#;
    let files_source = r#"{"kind":"files","prefix":"raw/events/"}"#;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "not JSON",
            b"{\"format\": 1, \"source\": ".to_vec(),
            "not a valid checkpoint",
        ),
        ("empty", Vec::new(), "not a valid checkpoint"),
        (
            "another format",
            br#"{"format":99}"#.to_vec(),
            "not a valid checkpoint",
        ),
        (
            "another topic",
            foreign_checkpoint(other_topic),
            "topic other",
        ),
        (
            "another partition",
            foreign_checkpoint(other_partition),
            "partition 3",
        ),
        (
            "another source",
            foreign_checkpoint(files_source),
            "files under raw/events/",
        ),
    ];
    for (what, content, detail) in &cases {
        let mut env = local_env();
        env.set("KAFKA_BOOTSTRAP_SERVERS", kafka.bootstrap())
            .set("KAFKA_TOPIC", "events-ckpt")
            .set("KAFKA_GROUP_ID", format!("ckpt-{}", free_port()));
        let path = put_local(&env, key, content);
        eprintln!("case: {what}");
        error_line(&env, "consumer", &["--once"], 1, &[key, detail]);
        error_line(&env, "consumer", &[], 1, &[key, detail]);
        assert_eq!(
            &std::fs::read(&path).expect("still there"),
            content,
            "{what}: the checkpoint was rewritten"
        );
    }

    // The files source's checkpoint, and one on S3.
    let env = local_env();
    let key = "_checkpoints/events/files/raw-events.json";
    let path = put_local(&env, key, b"[1, 2");
    error_line(
        &env,
        "consumer",
        &["--source", "files", "--once"],
        1,
        &[key, "not a valid checkpoint"],
    );
    assert_eq!(std::fs::read(&path).expect("still there"), b"[1, 2");
    let moto = Moto::start();
    let env = quiet(Env::kafka(&moto, &kafka, "lake-ckpt"));
    let lake = lake::Lake::open(&lake::LakeArgs {
        lake_url: "s3://lake-ckpt".into(),
        aws_endpoint_url: Some(moto.endpoint.clone()),
        aws_access_key_id: Some("testing-key".into()),
        aws_secret_access_key: Some("testing-secret".into()),
        aws_region: "us-east-1".into(),
        ..Default::default()
    })
    .expect("open");
    let key = "_checkpoints/events/kafka/events-ckpt/partition-0.json";
    let content = foreign_checkpoint(other_topic);
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            use object_store::ObjectStoreExt;
            lake.ensure_bucket(true).await.expect("bucket");
            lake.store
                .put(&lake::Lake::path(key), content.clone().into())
                .await
                .expect("put");
            error_line(&env, "consumer", &["--once"], 1, &[key, "topic other"]);
            let now = lake.store.get(&lake::Lake::path(key)).await.expect("get");
            assert_eq!(now.bytes().await.expect("bytes").to_vec(), content);
        });
}

#[test]
fn bad_values_name_the_setting() {
    let env = local_env();
    // (binary, variable, value, exit code, names)
    let cases: &[(&str, &str, &str, i32, &[&str])] = &[
        (
            "consumer",
            "FLUSH_INTERVAL",
            "abc",
            2,
            &["--flush-interval", "FLUSH_INTERVAL", "abc"],
        ),
        ("consumer", "FLUSH_INTERVAL", "0s", 1, &["FLUSH_INTERVAL"]),
        ("consumer", "FLUSH_BYTES", "0", 1, &["FLUSH_BYTES"]),
        (
            "consumer",
            "FLUSH_BYTES",
            "12 parsecs",
            2,
            &["--flush-bytes", "FLUSH_BYTES", "parsecs"],
        ),
        (
            "consumer",
            "FLUSH_RECORDS",
            "-1",
            2,
            &["--flush-records", "FLUSH_RECORDS"],
        ),
        ("consumer", "FLUSH_RECORDS", "0", 1, &["FLUSH_RECORDS"]),
        (
            "consumer",
            "UPLOAD_CONCURRENCY",
            "0",
            1,
            &["UPLOAD_CONCURRENCY"],
        ),
        ("consumer", "WORKER_THREADS", "0", 1, &["WORKER_THREADS"]),
        (
            "consumer",
            "WORKER_THREADS",
            "many",
            2,
            &["--worker-threads", "WORKER_THREADS"],
        ),
        (
            "consumer",
            "UPLOAD_CONCURRENCY",
            "many",
            2,
            &["--upload-concurrency", "UPLOAD_CONCURRENCY"],
        ),
        (
            "consumer",
            "MAX_MESSAGE_BYTES",
            "16XB",
            2,
            &["--max-message-bytes", "MAX_MESSAGE_BYTES"],
        ),
        (
            "consumer",
            "FILES_POLL_INTERVAL",
            "soon",
            2,
            &["--files-poll-interval", "FILES_POLL_INTERVAL"],
        ),
        (
            "consumer",
            "CREATE_BUCKET",
            "maybe",
            2,
            &["--create-bucket", "CREATE_BUCKET", "true, false"],
        ),
        (
            "consumer",
            "UNSAFE_SINGLE_WRITER",
            "yes",
            2,
            &["--unsafe-single-writer", "UNSAFE_SINGLE_WRITER"],
        ),
        (
            "consumer",
            "CONSUMER_SOURCE",
            "s3",
            2,
            &["--source", "CONSUMER_SOURCE", "kafka, files"],
        ),
        (
            "producer",
            "PRODUCER_RATE",
            "-1",
            2,
            &["--rate", "PRODUCER_RATE"],
        ),
        (
            "producer",
            "PRODUCER_BATCHES",
            "many",
            2,
            &["--batches", "PRODUCER_BATCHES"],
        ),
        (
            "producer",
            "PRODUCER_BATCH_SIZE",
            "0",
            2,
            &["--batch-size", "PRODUCER_BATCH_SIZE"],
        ),
        (
            "producer",
            "PRODUCER_CORRUPT_RATIO",
            "1.5",
            2,
            &["--corrupt-ratio", "PRODUCER_CORRUPT_RATIO"],
        ),
    ];
    for (binary, variable, value, code, names) in cases {
        let mut env = local_env();
        env.set(variable, *value);
        error_line(&env, binary, &[], *code, names);
    }
    // Flags, and the inspector's.
    error_line(
        &env,
        "consumer",
        &["--flush-interval", "abc"],
        2,
        &["--flush-interval"],
    );
    error_line(
        &env,
        "consumer",
        &["--no-such-flag"],
        2,
        &["--no-such-flag"],
    );
    error_line(
        &env,
        "consumer",
        &["--kafka-setting", "novalue"],
        2,
        &["--kafka-setting", "KEY=VALUE"],
    );
    error_line(&env, "inspector", &["query"], 2, &["<SQL>"]);
    error_line(
        &env,
        "inspector",
        &["query", "SELECT 1", "--format", "xml"],
        2,
        &["--format", "xml"],
    );
    error_line(
        &env,
        "inspector",
        &["status", "--kafka-setting", "x"],
        2,
        &["--kafka-setting"],
    );
}

/// Every output of every run, for the secrets test.
struct Transcript(Vec<(String, String)>);

impl Transcript {
    fn record(&mut self, what: &str, out: &Output) {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        self.0.push((what.to_string(), text));
    }

    fn run(&mut self, env: &Env, binary: &str, args: &[&str]) -> Output {
        let what = format!("{binary} {args:?}");
        let out = run_bounded(&what, env.command(binary, args), Duration::from_secs(120));
        self.record(&what, &out);
        out
    }

    fn assert_clean(&self) {
        let mut total = 0;
        for (what, text) in &self.0 {
            total += text.len();
            for secret in [SECRET, KAFKA_SECRET] {
                if let Some(at) = text.find(secret) {
                    let from = text[..at].rfind('\n').map_or(0, |i| i + 1);
                    let to = text[at..].find('\n').map_or(text.len(), |i| at + i);
                    panic!("{what} printed a secret:\n{}", &text[from..to]);
                }
            }
        }
        eprintln!("{} runs, {total} bytes of output, no secret", self.0.len());
    }
}

#[test]
fn secrets_never_appear_in_logs_errors_or_help() {
    let moto = Moto::start();
    let kafka = Kafka::start("events-secret", 2);
    let mut env = Env::kafka(&moto, &kafka, "lake-secret");
    // Everything the binaries can log, and a secret in every place one can be given.
    let mirror = env.dir.path().join("mirror").display().to_string();
    env.set("RUST_LOG", "trace")
        .set("INSPECTOR_MIRROR_DIR", mirror)
        .set("AWS_SECRET_ACCESS_KEY", SECRET)
        .set("KAFKA_SETTING_SASL_PASSWORD", KAFKA_SECRET)
        // librdkafka's own dump of its configuration, where it redacts the password.
        .set("KAFKA_SETTING_DEBUG", "conf,security");
    let mut transcript = Transcript(Vec::new());
    let sasl = format!("sasl.password={KAFKA_SECRET}");

    // A successful short run of each binary.
    let produced = transcript.run(
        &env,
        "producer",
        &[
            "--batches",
            "5",
            "--batch-size",
            "20",
            "--rate",
            "0",
            "--kafka-setting",
            &sasl,
        ],
    );
    assert!(produced.status.success(), "{produced:?}");
    let consumed = transcript.run(&env, "consumer", &["--once", "--kafka-setting", &sasl]);
    assert!(consumed.status.success(), "{consumed:?}");
    for args in [
        &[
            "query",
            "SELECT count(*) AS n FROM bronze.events",
            "--format",
            "json",
        ][..],
        &["status", "--kafka-setting", &sasl],
        &["init-sql"],
        &["query", "SELECT 1", "--mirror"],
    ] {
        let out = transcript.run(&env, "inspector", args);
        assert!(out.status.success(), "inspector {args:?}: {out:?}");
    }
    let files = transcript.run(&env, "producer", &["--sink", "files", "--batches", "2"]);
    assert!(files.status.success(), "{files:?}");
    let consumed = transcript.run(&env, "consumer", &["--source", "files", "--once"]);
    assert!(consumed.status.success(), "{consumed:?}");

    // Help, which lists the variables and would show their values.
    for (binary, args) in [
        ("consumer", &["--help"][..]),
        ("producer", &["--help"]),
        ("inspector", &["--help"]),
        ("inspector", &["query", "--help"]),
        ("inspector", &["status", "--help"]),
        ("inspector", &["init-sql", "--help"]),
        ("inspector", &["shell", "--help"]),
    ] {
        let out = transcript.run(&env, binary, args);
        assert!(out.status.success(), "{binary} {args:?}");
    }

    // Failing runs: a closed S3 endpoint, refused credentials, a Kafka
    // setting librdkafka refuses (its error quotes the value), a closed broker.
    let auth_moto = Moto::start_authenticating();
    let closed_s3 = format!("http://127.0.0.1:{}", free_port());
    let closed_broker = format!("127.0.0.1:{}", free_port());
    for (key, value) in [
        ("AWS_ENDPOINT_URL", closed_s3.as_str()),
        ("AWS_ENDPOINT_URL", auth_moto.endpoint.as_str()),
        ("KAFKA_SETTING_SASL_PASSWORD_TYPO", KAFKA_SECRET),
        ("KAFKA_BOOTSTRAP_SERVERS", closed_broker.as_str()),
    ] {
        let mut failing = Env::new();
        failing.vars = env.vars.clone();
        failing.set(key, value);
        for (binary, args) in [
            (
                "consumer",
                &["--once", "--kafka-setting", sasl.as_str()][..],
            ),
            (
                "producer",
                &["--batches", "1", "--kafka-setting", sasl.as_str()],
            ),
            ("producer", &["--sink", "files", "--batches", "1"]),
            ("inspector", &["query", "SELECT 1"]),
            ("inspector", &["status"]),
        ] {
            transcript.run(&failing, binary, args);
        }
    }
    for expected in [
        "refused the credentials",
        "sasl.password.typo",
        closed_s3.as_str(),
        closed_broker.as_str(),
    ] {
        assert!(
            transcript.0.iter().any(|(_, text)| text.contains(expected)),
            "no run reached the failure that prints {expected:?}"
        );
    }
    transcript.assert_clean();
}
