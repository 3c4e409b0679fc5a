//! The lake in DuckDB (docs/DESIGN.md §6): one in-memory DuckDB session
//! with the schemas `bronze`, `dead_letters`, `silver` and `gold` and one
//! view per Delta table of the lake, `bronze.<table>` and
//! `dead_letters.<table>` for every table the consumer writes, and
//! `silver.<model>` / `gold.<model>` for every table the refiner writes. The
//! inspector and the refiner both open the lake through it, so they see the
//! same rows; it links no Kafka client.
//!
//! Every table is a Delta table and every view reads one snapshot of it,
//! the newest or the one [`session::Options::as_of`] names: [`tables`] finds
//! the tables, [`snapshot`] reads their logs, [`views`] writes the SQL
//! (`delta_scan`, or `read_parquet` of the snapshot's file list, with the
//! same columns in the same order), and [`session`] decides how DuckDB
//! reaches the files: a local lake in place, an `s3://` lake through the
//! httpfs extension when it loads, else through a local [`mirror`] of
//! exactly the snapshots' files, kept in sync on every refresh.
//!
//! A table's dead letters are three views (docs/DESIGN.md §6, §15):
//! `dead_letters."<table>__written"`, the Delta table as written;
//! `dead_letters.<table>_history`, its rows of normal ingestion and of the
//! re-drives whose `txn` the bronze snapshot holds, with `left_at`,
//! `left_by` and `left_to` saying when, by which re-drive and to where each
//! left; and `dead_letters.<table>`, the rows that have not left. At every
//! pair of snapshots a session reads, a record is in exactly one of
//! `bronze.<table>` and `dead_letters.<table>`.

pub mod mirror;
pub mod session;
pub mod snapshot;
pub mod tables;
pub mod views;
