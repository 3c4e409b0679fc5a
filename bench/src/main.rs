//! `lakebench`: the consumer's hot path on batches already in memory (issue 6,
//! step 1): decode + validate into Arrow builders, encode zstd Parquet and
//! write the objects to a local lake, on one thread. Prints one JSON line.
//!
//! The batches are the raw objects the producer's files sink wrote
//! (`make bench` generates them once), so the input is the same bytes the
//! peers convert.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use clap::Parser;
use consumer::decode::{decode_batch, Counts};
use consumer::write::{upload, MicroBatch};
use lake::event::Limits;
use lake::layout::SourceId;

#[derive(Parser)]
#[command(name = "lakebench")]
struct Args {
    /// A local lake holding the dataset under raw/events/.
    #[arg(long)]
    dataset: PathBuf,
    /// A local directory to write the Parquet objects to (emptied first).
    #[arg(long)]
    out: PathBuf,
    /// Records per micro-batch, as the consumer's FLUSH_RECORDS.
    #[arg(long, default_value = "500000")]
    flush_records: u64,
    /// Timed passes over the dataset; the best is reported.
    #[arg(long, default_value = "3")]
    passes: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let batches = read_batches(&args.dataset.join("raw/events"))?;
    anyhow::ensure!(
        !batches.is_empty(),
        "no batches under {}",
        args.dataset.display()
    );
    let input_bytes: usize = batches.iter().map(Vec::len).sum();
    // One thread, as one core of a consumer.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut best = f64::INFINITY;
    let mut counts = Counts::default();
    for _ in 0..args.passes {
        if args.out.exists() {
            std::fs::remove_dir_all(&args.out)?;
        }
        let lake = lake::Lake::open(&lake::LakeArgs {
            lake_url: args.out.display().to_string(),
            aws_endpoint_url: None,
            aws_access_key_id: None,
            aws_secret_access_key: None,
            aws_region: "us-east-1".into(),
        })
        .map_err(anyhow::Error::msg)?;
        let started = Instant::now();
        counts = runtime.block_on(run_pass(&lake, &batches, args.flush_records))?;
        best = best.min(started.elapsed().as_secs_f64());
    }
    let events = counts.valid + counts.invalid;
    let result = serde_json::json!({
        "step": "decode_validate_parquet_write",
        "batches": batches.len(),
        "input_bytes": input_bytes,
        "events": events,
        "valid": counts.valid,
        "invalid": counts.invalid,
        "corrupt_batches": counts.corrupt,
        "seconds": best,
        "events_per_s": events as f64 / best,
        "mb_per_s": input_bytes as f64 / best / 1e6,
    });
    println!("{result}");
    Ok(())
}

async fn run_pass(
    lake: &lake::Lake,
    batches: &[Vec<u8>],
    flush_records: u64,
) -> anyhow::Result<Counts> {
    let limits = Limits::default();
    let mut total = Counts::default();
    let mut micro = MicroBatch::new(SourceId::files());
    let mut flushes = 0;
    for (i, payload) in batches.iter().enumerate() {
        micro.add_message(Some(i as i64), None, payload.len());
        let counts = decode_batch(payload, &Default::default(), &limits, &mut micro);
        total.valid += counts.valid;
        total.invalid += counts.invalid;
        total.corrupt += counts.corrupt;
        if micro.records() >= flush_records || i + 1 == batches.len() {
            let files = micro.encode(&format!("bench-{flushes:06}"))?;
            upload(lake, &files, 8).await.map_err(anyhow::Error::msg)?;
            micro = MicroBatch::new(SourceId::files());
            flushes += 1;
        }
    }
    Ok(total)
}

/// Every file below `dir`, in path order.
fn read_batches(dir: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut paths = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                paths.push(path);
            }
        }
    }
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .collect()
}
