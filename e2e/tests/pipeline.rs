//! End to end: producer → Kafka mock cluster or raw files → consumer → lake
//! (moto S3 or a local directory) → inspector's DuckDB views.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn kafka_to_s3_exactly_once() {
    let moto = Moto::start();
    let kafka = Kafka::start("events-e2e", 3);
    let env = Env::kafka(&moto, &kafka, "lake-e2e");
    let mut args = PRODUCE.to_vec();
    args.extend(["--sink", "kafka"]);
    let summary = env.produce(&args);
    assert_eq!(num(&summary, "batches"), 240);

    env.run(
        "consumer",
        &["--source", "kafka", "--once", "--flush-records", "2000"],
    );
    assert_exactly_once(&env, &summary);
    // Every partition has a checkpoint whose totals add up to what was produced.
    let committed = env.count(
        "SELECT count(DISTINCT source_partition) FROM (SELECT source_partition FROM bronze.events \
         UNION ALL SELECT source_partition FROM dead_letters.events)",
    );
    assert_eq!(committed, 3, "all three partitions were consumed");

    // A second run finds nothing new and changes nothing.
    env.run("consumer", &["--source", "kafka", "--once"]);
    assert_exactly_once(&env, &summary);

    let status = env.run("inspector", &["status"]);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains("partition-2") || status.contains("partition 2"),
        "status lists partitions:\n{status}"
    );
}

#[test]
fn kafka_consumer_killed_mid_run_recovers_exactly_once() {
    let moto = Moto::start();
    let kafka = Kafka::start("events-crash", 3);
    let env = Env::kafka(&moto, &kafka, "lake-crash");
    let summary = env.produce(&[
        "--batches",
        "400",
        "--batch-size",
        "50",
        "--rate",
        "0",
        "--corrupt-ratio",
        "0.05",
        "--invalid-ratio",
        "0.02",
        "--seed",
        "11",
        "--sink",
        "kafka",
    ]);

    // Small micro-batches so a kill lands between intent, data and commit.
    let consume = ["--source", "kafka", "--once", "--flush-records", "150"];
    let mut kills = 0;
    for (i, delay_ms) in [400u64, 700, 1000, 1300, 500, 900].into_iter().enumerate() {
        let mut child = env
            .command("consumer", &consume)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn consumer");
        std::thread::sleep(Duration::from_millis(delay_ms));
        match child.try_wait().expect("try_wait") {
            Some(status) => eprintln!("cycle {i}: consumer already finished with {status}"),
            None => {
                child.kill().expect("SIGKILL"); // Child::kill is SIGKILL on Unix
                let _ = child.wait();
                kills += 1;
                eprintln!("cycle {i}: killed after {delay_ms} ms");
            }
        }
    }
    assert!(
        kills >= 1,
        "no consumer was killed mid-run: the scenario tested nothing"
    );
    env.run("consumer", &consume);
    assert_exactly_once(&env, &summary);
}

#[test]
fn continuous_group_consumer_catches_up_and_stops_on_sigterm() {
    let moto = Moto::start();
    let kafka = Kafka::start("events-live", 3);
    let env = Env::kafka(&moto, &kafka, "lake-live");
    let mut consumer = Background(
        env.command("consumer", &["--source", "kafka", "--flush-interval", "1s"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn consumer"),
    );
    let mut args = PRODUCE.to_vec();
    args.extend(["--sink", "kafka"]);
    let summary = env.produce(&args);
    let expected = num(&summary, "valid_records");
    wait_until("bronze to catch up", Duration::from_secs(90), || {
        env.try_count("SELECT count(*) FROM bronze.events")
            .is_some_and(|n| n >= expected)
    });
    // SIGTERM: finish the micro-batch, commit, exit 0.
    let pid = consumer.0.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill")
        .success());
    let status = consumer.0.wait().expect("wait");
    assert!(
        status.success(),
        "consumer exited with {status} after SIGTERM"
    );
    assert_exactly_once(&env, &summary);
}

#[test]
fn files_source_on_a_local_lake() {
    let mut env = Env::new();
    let lake = env.dir.path().join("lake");
    env.set("LAKE_URL", format!("file://{}", lake.display()));
    let mut args = PRODUCE.to_vec();
    args.extend(["--sink", "files"]);
    let summary = env.produce(&args);
    env.run(
        "consumer",
        &["--source", "files", "--once", "--flush-records", "1000"],
    );
    assert_exactly_once(&env, &summary);
    // Bronze is partitioned by the UTC date of event_ts.
    assert_eq!(
        env.count("SELECT count(*) FROM bronze.events WHERE event_date <> CAST(CAST(event_ts AS TIMESTAMP) AS DATE)"),
        0
    );
    // Dead letters keep the raw payload byte for byte and name the problem.
    let rows = env.query(
        "SELECT error_code, error_message FROM dead_letters.events WHERE error_kind = 'invalid_record' LIMIT 1",
    );
    assert!(!rows[0]["error_message"]
        .as_str()
        .unwrap_or_default()
        .is_empty());

    // A second producer run lands after the first; only it is consumed.
    let second = env.produce(&[
        "--batches",
        "20",
        "--batch-size",
        "10",
        "--rate",
        "0",
        "--seed",
        "8",
        "--sink",
        "files",
    ]);
    env.run("consumer", &["--source", "files", "--once"]);
    assert_eq!(
        env.count("SELECT count(*) FROM bronze.events"),
        num(&summary, "valid_records") + num(&second, "valid_records")
    );
}
