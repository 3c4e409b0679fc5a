//! Where batches go: one Kafka message per batch, or one raw object per batch
//! under the raw prefix in the lake (`raw/events/`, or a contract's). Both keep many sends in flight, report the
//! first failure as an error naming the batch and the endpoint, and wait for
//! every outstanding send in `finish`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use kafka_client::QuietContext;
use object_store::{Attribute, Attributes, PutOptions};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio::task::JoinSet;
use tracing::info;

use crate::config::{Config, SinkKind};
use lake::store::Location;

/// Deliveries awaited at once; librdkafka batches and compresses behind them.
const KAFKA_IN_FLIGHT: usize = 1000;
/// Concurrent PUTs to the object store.
const FILES_IN_FLIGHT: usize = 16;
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

pub enum Sink {
    Kafka(KafkaSink),
    // Boxed: much larger than the Kafka sink.
    Files(Box<FileSink>),
}

impl Sink {
    /// Connects and checks the destination before anything is sent: the topic
    /// of `kafka`, or the lake of `config` with objects under `raw_prefix`.
    pub async fn open(
        config: &Config,
        kafka: &lake::config::KafkaArgs,
        raw_prefix: &str,
    ) -> Result<Sink> {
        Ok(match config.sink {
            SinkKind::Kafka => Sink::Kafka(KafkaSink::open(kafka).await?),
            SinkKind::Files => {
                let lake = lake::Lake::open(&config.lake)?;
                lake.check_writable()?;
                lake.ensure_bucket(true).await?;
                let run = format!(
                    "{}-s{}",
                    chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
                    config.seed
                );
                Sink::Files(Box::new(FileSink::new(lake, raw_prefix.to_string(), run)))
            }
        })
    }

    /// The id of batch number `seq` (from 0). For files it is derived from the
    /// object key, so a consumer reading a raw object without metadata agrees.
    pub fn batch_id(&self, seed: u64, seq: u64) -> String {
        match self {
            Sink::Kafka(_) => format!("s{seed}-{seq:09}"),
            Sink::Files(files) => {
                lake::layout::batch_id_from_raw_key(&files.prefix, &files.key(seq))
            }
        }
    }

    /// Starts sending one batch; waits only when too many sends are in flight.
    pub async fn send(&mut self, seq: u64, batch_id: &str, payload: Vec<u8>) -> Result<()> {
        match self {
            Sink::Kafka(kafka) => kafka.send(batch_id, payload).await,
            Sink::Files(files) => files.send(seq, batch_id, payload).await,
        }
    }

    /// Waits until every batch sent is delivered.
    pub async fn finish(self) -> Result<()> {
        match self {
            Sink::Kafka(kafka) => kafka.finish().await,
            Sink::Files(files) => files.finish().await,
        }
    }
}

pub struct KafkaSink {
    producer: FutureProducer<QuietContext>,
    topic: String,
    servers: String,
    in_flight: FuturesUnordered<BoxFuture<'static, Result<()>>>,
}

impl KafkaSink {
    pub async fn open(args: &lake::config::KafkaArgs) -> Result<KafkaSink> {
        let servers = args.kafka_bootstrap_servers.clone();
        let topic = args.kafka_topic.clone();
        let client = kafka_client::client_config(
            args,
            &[
                ("acks", "all"),
                ("enable.idempotence", "true"),
                ("compression.type", "zstd"),
                ("linger.ms", "5"),
                // A misspelt KAFKA_TOPIC must be an error, not a new topic with
                // the broker's default partitions that no consumer reads.
                ("allow.auto.create.topics", "false"),
            ],
        );
        let producer: FutureProducer<QuietContext> = client
            .create_with_context(QuietContext)
            .context("cannot create the Kafka producer")?;

        // fetch_metadata blocks; it tells "broker down" from "no such topic"
        // before the first batch instead of after delivery.timeout.ms.
        let check = producer.clone();
        let check_args = args.clone();
        let partitions = tokio::task::spawn_blocking(move || {
            kafka_client::topic_partitions(check.client(), &check_args, METADATA_TIMEOUT)
        })
        .await
        .context("metadata request task failed")??;
        info!(
            topic,
            partitions = partitions.len(),
            servers,
            "connected to Kafka"
        );
        Ok(KafkaSink {
            producer,
            topic,
            servers,
            in_flight: FuturesUnordered::new(),
        })
    }

    async fn send(&mut self, batch_id: &str, payload: Vec<u8>) -> Result<()> {
        loop {
            let headers = OwnedHeaders::new().insert(Header {
                key: lake::event::BATCH_ID_HEADER,
                value: Some(batch_id),
            });
            let record = FutureRecord::to(&self.topic)
                .key(batch_id)
                .payload(&payload)
                .headers(headers);
            match self.producer.send_result(record) {
                Ok(delivery) => {
                    let (id, topic, servers) = (
                        batch_id.to_string(),
                        self.topic.clone(),
                        self.servers.clone(),
                    );
                    self.in_flight.push(
                        async move {
                            match delivery.await {
                                Ok(Ok(_)) => Ok(()),
                                Ok(Err((e, _))) => {
                                    Err(anyhow!("Kafka delivery of batch {id} to topic {topic} at {servers} failed: {e}"))
                                }
                                Err(_) => Err(anyhow!("Kafka producer dropped batch {id} before delivery")),
                            }
                        }
                        .boxed(),
                    );
                    break;
                }
                // librdkafka's queue is full: let deliveries drain, then retry.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    if self.in_flight.is_empty() {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    } else {
                        self.wait_one().await?;
                    }
                }
                Err((e, _)) => bail!(
                    "cannot produce batch {batch_id} to Kafka topic {}: {e}",
                    self.topic
                ),
            }
        }
        // Report failures as soon as they are known, not only at the end.
        while let Some(Some(result)) = self.in_flight.next().now_or_never() {
            result?;
        }
        while self.in_flight.len() >= KAFKA_IN_FLIGHT {
            self.wait_one().await?;
        }
        Ok(())
    }

    async fn wait_one(&mut self) -> Result<()> {
        self.in_flight.next().await.unwrap_or(Ok(()))
    }

    async fn finish(mut self) -> Result<()> {
        while let Some(result) = self.in_flight.next().await {
            result?;
        }
        Ok(())
    }
}

pub struct FileSink {
    lake: lake::Lake,
    /// Where the run's folder goes, ending with `/`.
    prefix: String,
    run: String,
    in_flight: JoinSet<Result<()>>,
}

impl FileSink {
    fn new(lake: lake::Lake, prefix: String, run: String) -> FileSink {
        info!(run, raw = %lake.url_of(&prefix), "writing raw batches");
        FileSink {
            lake,
            prefix,
            run,
            in_flight: JoinSet::new(),
        }
    }

    fn key(&self, seq: u64) -> String {
        lake::layout::raw_key(&self.prefix, &self.run, seq)
    }

    async fn send(&mut self, seq: u64, batch_id: &str, payload: Vec<u8>) -> Result<()> {
        let key = self.key(seq);
        // S3 keeps the id as x-amz-meta-batch-id; LocalFileSystem refuses
        // attributes, and the consumer derives the same id from the key.
        let mut options = PutOptions::default();
        if matches!(self.lake.location, Location::S3 { .. }) {
            options.attributes = Attributes::from_iter([(
                Attribute::Metadata(lake::event::BATCH_ID_HEADER.into()),
                batch_id.to_string(),
            )]);
        }
        let store = Arc::clone(&self.lake.store);
        let url = self.lake.url_of(&key);
        self.in_flight.spawn(async move {
            store
                .put_opts(&lake::Lake::path(&key), payload.into(), options)
                .await
                .map(|_| ())
                .map_err(|e| anyhow!("cannot write batch to {url}: {e}"))
        });
        while let Some(joined) = self.in_flight.try_join_next() {
            joined.context("put task failed")??;
        }
        while self.in_flight.len() >= FILES_IN_FLIGHT {
            if let Some(joined) = self.in_flight.join_next().await {
                joined.context("put task failed")??;
            }
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<()> {
        while let Some(joined) = self.in_flight.join_next().await {
            joined.context("put task failed")??;
        }
        Ok(())
    }
}
