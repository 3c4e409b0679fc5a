//! `status` against an in-process Kafka (librdkafka's mock cluster, which
//! listens on loopback so the real binary can reach it): lag per partition
//! from the checkpoint's next_offset, or from the low watermark without one.

mod common;

use std::time::Duration;

use common::{inspector, json, ok, write_local_lake};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use serde_json::json;

#[test]
fn status_reports_lag_per_partition() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("events", 2, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("producer");
    // Partition 0: offsets 0..=49, checkpoint at 42 → lag 8. Partition 1: 7, no checkpoint → lag 7.
    for (partition, count) in [(0, 50), (1, 7)] {
        for i in 0..count {
            let payload = format!("[{i}]");
            producer
                .send(
                    BaseRecord::<(), _>::to("events")
                        .partition(partition)
                        .payload(&payload),
                )
                .expect("enqueued");
        }
    }
    producer.flush(Duration::from_secs(10)).expect("flushed");

    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write_local_lake(root);
    let lake_url = root.display().to_string();
    let env = [
        ("LAKE_URL", lake_url.as_str()),
        ("KAFKA_BOOTSTRAP_SERVERS", brokers.as_str()),
    ];
    let text = ok(&inspector(root, &env, &["status"]));
    for line in [
        "  topic   partition  next_offset  high_watermark  lag",
        "  events  0          42           50              8",
        "  events  1          -            7               7",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    let report = json(&inspector(root, &env, &["status", "--format", "json"]));
    assert_eq!(
        report["kafka_lag"],
        json!([
            {"topic": "events", "partition": 0, "next_offset": 42, "low_watermark": 0, "high_watermark": 50, "lag": 8},
            {"topic": "events", "partition": 1, "next_offset": null, "low_watermark": 0, "high_watermark": 7, "lag": 7},
        ])
    );
}
