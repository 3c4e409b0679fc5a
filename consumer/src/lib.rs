//! The consumer: reads JSON event batches from Kafka (or raw objects in the
//! lake) for each table it is given a contract of, judges every record by
//! its table's contract, and writes valid records to `bronze/<table>/` and
//! everything else to `dead_letters/<table>/` as Parquet, exactly once across
//! crashes, with its checkpoints in the same bucket.
//!
//! Stages: [`tables`] (the contracts) → [`source`] (kafka | files, one per
//! table) → [`decode`] (bytes → rows and dead letters) → [`write`] (Arrow
//! builders → Parquet objects) → [`commit`] (the intent/data/commit
//! protocol), with [`flush`] deciding when to flush, [`workers`] the threads
//! that decode, and [`retry`] the one policy for failures of the
//! store. [`context`] is what every source is
//! handed.

pub mod commit;
pub mod config;
pub mod context;
pub mod decode;
pub mod flush;
pub mod maintain;
pub mod redrive;
pub mod retry;
pub mod source;
pub mod tables;
pub mod workers;
pub mod write;

use std::sync::Arc;

use lake::decoder::Decoder;

use tracing::info;

use crate::commit::Committer;
use crate::config::{Args, Command, Source};
use crate::context::{Context, Shutdown};
use crate::flush::FlushLimits;
use crate::retry::{retry, Attempts};

/// Runs the consumer until `--once` finishes or a signal stops it.
pub async fn run(args: Args) -> anyhow::Result<()> {
    args.validate().map_err(anyhow::Error::msg)?;
    let contracts = tables::load(&args.contracts).map_err(anyhow::Error::msg)?;
    info!(config = %args.lake.masked(), kafka = %args.kafka.masked(), source = ?args.source, once = args.once, "consumer starting");
    let lake = lake::Lake::open(&args.lake)?;
    if let Some(Command::Redrive {
        dry_run: true,
        table,
        ..
    }) = &args.command
    {
        // Before the start-up checks, which write probes: a dry run writes nothing.
        let request = redrive_request(&args, &contracts, &lake, table)?;
        redrive::dry_run(&request).await?;
        return Ok(());
    }
    lake.check_writable()?;
    // Served from the start, so a probe sees a consumer still starting.
    if args.command.is_none() && !args.once {
        lake::metrics::serve(&args.metrics.metrics_addr, &lake).map_err(anyhow::Error::msg)?;
    }
    startup_checks(&lake, &args).await?;
    match &args.command {
        None => {}
        Some(Command::Compact {
            table,
            target_size,
            min_files,
        }) => {
            let options = delta::CompactOptions {
                target_size: *target_size,
                min_files: *min_files,
            };
            return maintain::compact(&lake, table.as_deref(), options).await;
        }
        Some(Command::Vacuum {
            table,
            retain,
            dry_run,
        }) => return maintain::vacuum(&lake, table.as_deref(), *retain, *dry_run).await,
        Some(Command::Redrive { table, .. }) => {
            let request = redrive_request(&args, &contracts, &lake, table)?;
            // The contract in force is stored (and its copy by fingerprint,
            // which a replay of this re-drive reads).
            tables::store(&lake, &request.decoder.contract).await?;
            redrive::run(&request).await?;
            return Ok(());
        }
        Some(Command::Convert) => {
            for contract in &contracts {
                let decoder = Decoder::new(contract.clone());
                if !maintain::convert_previous_layout(&lake, &decoder).await? {
                    println!("{}: nothing to convert", contract.table.table);
                }
            }
            return Ok(());
        }
    }
    for contract in &contracts {
        tables::store(&lake, contract).await?;
    }
    let shutdown = Shutdown::default();
    shutdown.on_signals();
    let committer = Committer {
        lake,
        writer: writer_name(args.hostname.as_deref()),
        upload_concurrency: args.upload_concurrency,
        workers: workers::Workers::new(args.worker_threads()),
    };
    // The built-in events table reads KAFKA_TOPIC; a contract names its topic.
    let builtin = args.contracts.is_empty();
    let mut runs = Vec::new();
    let mut compactions = Vec::new();
    for contract in contracts {
        let mut kafka = args.kafka.clone();
        if !builtin {
            kafka.kafka_topic = contract.table.topic.clone();
        }
        info!(table = %contract.table.table, contract = %contract.file, topic = %kafka.kafka_topic, raw_prefix = %contract.table.raw_prefix, "ingesting table");
        let decoder = Arc::new(Decoder::new(contract));
        maintain::convert_previous_layout(&committer.lake, &decoder).await?;
        let delta = Arc::new(commit::Tables::open(&committer.lake, &decoder).await?);
        if args.compact_min_files > 0 && !args.once {
            let options = delta::CompactOptions {
                target_size: args.compact_target_size,
                min_files: args.compact_min_files,
            };
            compactions.push(maintain::compact_continuously(
                committer.lake.clone(),
                decoder.contract.table.table.clone(),
                options,
                args.compact_interval,
                shutdown.clone(),
            ));
        }
        let ctx = Context {
            committer: committer.clone(),
            table: decoder,
            delta,
            kafka,
            group_id: args.kafka_group_id.clone(),
            limits: FlushLimits {
                records: args.flush_records,
                bytes: args.flush_bytes,
                interval: args.flush_interval,
            },
            input_limits: args.input_limits(),
            files_poll_interval: args.files_poll_interval,
            once: args.once,
            shutdown: shutdown.clone(),
        };
        lake::metrics::health().not_ready(ctx.readiness(), "its checkpoints are not loaded yet");
        lake::metrics::metrics().ingesting(&ctx.table.contract.table.table);
        let source = args.source;
        runs.push(async move {
            match source {
                Source::Kafka => source::kafka::run(&ctx).await,
                Source::Files => source::files::run(&ctx).await,
            }
        });
    }
    lake::metrics::health().ready(lake::metrics::STARTING);
    // Compaction runs beside ingestion in this task (its futures are not
    // Send) and is dropped when ingestion ends: an unfinished compaction
    // has committed nothing.
    tokio::select! {
        ran = futures::future::try_join_all(runs) => ran.map(|_| ()),
        _ = async {
            futures::future::join_all(compactions).await;
            std::future::pending::<()>().await
        } => unreachable!("pending never completes"),
    }
}

/// What `consumer redrive` takes from the command line.
fn redrive_request<'a>(
    args: &'a Args,
    contracts: &[lake::contract::Contract],
    lake: &'a lake::Lake,
    table: &str,
) -> anyhow::Result<redrive::Request<'a>> {
    let Some(Command::Redrive {
        codes,
        since,
        until,
        ..
    }) = &args.command
    else {
        unreachable!("called for consumer redrive");
    };
    let Some(contract) = contracts.iter().find(|c| c.table.table == table) else {
        let known: Vec<&str> = contracts.iter().map(|c| c.table.table.as_str()).collect();
        anyhow::bail!(
            "consumer redrive --table {table}: no contract of that table among CONTRACTS ({})",
            known.join(", ")
        );
    };
    Ok(redrive::Request {
        lake,
        kafka: &args.kafka,
        decoder: Arc::new(Decoder::new(contract.clone())),
        limits: args.input_limits(),
        selection: redrive::Selection {
            table: table.to_string(),
            codes: codes.clone(),
            since: *since,
            until: *until,
        },
        upload_concurrency: args.upload_concurrency,
        worker_threads: args.worker_threads(),
    })
}

/// The bucket answers (created if allowed) and refuses stale conditional
/// writes. A few attempts, so one transient S3 error at start is not fatal;
/// a refusal (credentials, a missing bucket, no conditional writes) is final.
async fn startup_checks(lake: &lake::Lake, args: &Args) -> anyhow::Result<()> {
    retry("startup check", Attempts::AtMost(5), || async {
        lake.ensure_bucket(args.create_bucket).await?;
        if !args.unsafe_single_writer {
            lake.check_conditional_writes().await?;
        }
        Ok::<(), lake::StoreError>(())
    })
    .await?;
    if args.unsafe_single_writer {
        tracing::warn!(
            "UNSAFE_SINGLE_WRITER: conditional writes not checked; run exactly one consumer"
        );
    }
    Ok(())
}

/// `host/pid`: who wrote a checkpoint, for people reading it.
fn writer_name(hostname: Option<&str>) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| hostname.map(str::to_string))
        .unwrap_or_else(|| "unknown-host".into());
    format!("{host}/{}", std::process::id())
}
