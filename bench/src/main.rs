//! `lakebench`: the consumer's hot path on batches already in memory (the
//! "Hot path" row of the README's Benchmarks section, `make bench`): decode +
//! validate into Arrow builders, encode zstd Parquet and write the objects to
//! a local lake, on one thread. Prints one JSON line.
//!
//! The batches are the raw objects the producer's files sink wrote
//! (`make bench` generates them once), so the input is the same bytes the
//! peers convert.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use clap::Parser;
use std::sync::Arc;

use consumer::decode::Counts;
use consumer::write::{encode, upload, Layer, MicroBatch};
use lake::contract::Contract;
use lake::decoder::Decoder;
use lake::event::Limits;
use lake::layout::SourceId;
use lake::position::Range;

#[derive(Parser)]
#[command(name = "lakebench")]
struct Args {
    /// A local lake holding the dataset under the table's raw prefix (raw/events/).
    #[arg(long)]
    dataset: PathBuf,
    /// The table's contract (default: the built-in events contract).
    #[arg(long)]
    contract: Option<PathBuf>,
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
    let contract = match &args.contract {
        Some(path) => Contract::load(path)?,
        None => Contract::events(),
    };
    let decoder = Arc::new(Decoder::new(contract));
    let batches = read_batches(&args.dataset.join(&decoder.contract.table.raw_prefix))?;
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
    let mut best_pass = Pass::default();
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
            ..Default::default()
        })
        .map_err(anyhow::Error::msg)?;
        let started = Instant::now();
        let pass = runtime.block_on(run_pass(&lake, &decoder, &batches, args.flush_records))?;
        let seconds = started.elapsed().as_secs_f64();
        if seconds < best {
            best = seconds;
            best_pass = pass;
        }
    }
    let counts = best_pass.counts;
    let events = counts.valid + counts.invalid;
    let result = serde_json::json!({
        "step": "decode_validate_parquet_write",
        "table": decoder.contract.table.table,
        "batches": batches.len(),
        "input_bytes": input_bytes,
        "events": events,
        "valid": counts.valid,
        "invalid": counts.invalid,
        "corrupt_batches": counts.corrupt,
        "seconds": best,
        "events_per_s": events as f64 / best,
        "mb_per_s": input_bytes as f64 / best / 1e6,
        "decode_seconds": best_pass.decode,
        "encode_seconds": best_pass.encode,
        "write_seconds": best_pass.write,
        "output_bytes": best_pass.output_bytes,
    });
    println!("{result}");
    Ok(())
}

/// What one pass did, and the seconds spent in each part of it.
#[derive(Debug, Default, Clone, Copy)]
struct Pass {
    counts: Counts,
    /// Splitting, validating and appending rows to the Arrow builders.
    decode: f64,
    /// Arrow to zstd Parquet in memory.
    encode: f64,
    /// Putting the objects into the store.
    write: f64,
    /// Parquet bytes written.
    output_bytes: usize,
}

async fn run_pass(
    lake: &lake::Lake,
    decoder: &Arc<Decoder>,
    batches: &[Vec<u8>],
    flush_records: u64,
) -> anyhow::Result<Pass> {
    let limits = Limits::default();
    let mut pass = Pass::default();
    let table = &decoder.contract.table;
    let source = SourceId::files(&table.table, &table.raw_prefix);
    // The batches come from files, so their micro-batches span raw keys; one
    // key for all of them, as the files source's own keys are not timed here.
    let raw_key = format!("{}bench/000000000.json", table.raw_prefix);
    let mut micro = MicroBatch::new(source, decoder.clone());
    let mut flushes = 0;
    for (i, payload) in batches.iter().enumerate() {
        let started = Instant::now();
        micro.add_message(Range::key(&raw_key), payload.len());
        let counts = micro.decode(payload, &Default::default(), &limits);
        pass.decode += started.elapsed().as_secs_f64();
        pass.counts.valid += counts.valid;
        pass.counts.invalid += counts.invalid;
        pass.counts.corrupt += counts.corrupt;
        if micro.records() >= flush_records || i + 1 == batches.len() {
            let started = Instant::now();
            let finished = micro.finish()?;
            let batches = [(decoder.as_ref(), finished.as_slice())];
            let tag = format!("bench-{flushes:06}");
            let mut files = Vec::new();
            for layer in [Layer::Bronze, Layer::DeadLetters] {
                // One thread: this profile is of one core.
                files.extend(encode(&table.table, layer, &batches, (&tag, "hot"), 1)?);
            }
            pass.encode += started.elapsed().as_secs_f64();
            pass.output_bytes += files.iter().map(|f| f.bytes.len()).sum::<usize>();
            let started = Instant::now();
            upload(lake, &files.iter().collect::<Vec<_>>(), 8).await?;
            pass.write += started.elapsed().as_secs_f64();
            micro = micro.next();
            flushes += 1;
        }
    }
    Ok(pass)
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
