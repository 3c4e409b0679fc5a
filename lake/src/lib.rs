//! The contracts shared by the producer, the consumer and the inspector: the
//! event and its validation rules ([`event`]), every object key of the lake
//! ([`layout`]), the table schemas ([`schema`]), the checkpoint format and its
//! conditional writes ([`checkpoint`]), and opening the lake from `LAKE_URL`
//! ([`store`]), and what the binaries report ([`metrics`], served by
//! [`http`]). No Kafka and no DuckDB here, so changing a rule rebuilds
//! neither.

pub mod checkpoint;
pub mod columns;
pub mod config;
pub mod contract;
pub mod decoder;
pub mod error;
pub mod event;
#[doc(hidden)]
pub mod fuzz_check;
pub mod http;
pub mod json;
pub mod layout;
pub mod metrics;
pub mod position;
pub mod redrive;
pub mod schema;
pub mod store;

pub use error::StoreError;
pub use store::{Lake, LakeArgs};
