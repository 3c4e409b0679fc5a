//! Where batches come from: a Kafka topic or raw objects in the lake.

pub mod files;
pub mod kafka;
