#!/usr/bin/env python3
"""The peers on the same batches, one thread each: DuckDB (read_json ->
COPY ... (FORMAT parquet, COMPRESSION zstd)) and pyarrow (JSON reader ->
Parquet, zstd). Prints one JSON line per peer.

They get it easier than the consumer: no validation and no dead letters.
DuckDB reads the readable raw batch files as JSON arrays (it cannot skip a
corrupt file, so they are left out of its list); pyarrow only reads
newline-delimited JSON and stops at a field whose type changes, so the readable
batches' well-typed records are first rewritten as one NDJSON file (not timed).

    python3 bench/peers.py --dataset data/bench/lake-1x --work data/bench/peers
"""
import argparse
import glob
import json
import os
import shutil
import time


def best_of(passes, run):
    times = []
    for _ in range(passes):
        started = time.monotonic()
        run()
        times.append(time.monotonic() - started)
    return min(times)


def readable_batches(paths):
    """(path, objects) of every batch that parses as a JSON array."""
    for path in paths:
        try:
            with open(path, "rb") as f:
                batch = json.loads(f.read())
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(batch, list):
            yield path, [r for r in batch if isinstance(r, dict)]


TYPES = {"event_id": str, "user_id": int, "event_type": str, "event_ts": str, "page": str,
         "country": str, "amount": (int, float)}


def well_typed(record):
    """pyarrow's reader stops at a field whose JSON type changes between rows."""
    return all(record.get(k) is None or isinstance(record[k], t) and not isinstance(record[k], bool)
               for k, t in TYPES.items())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", required=True, help="a local lake with raw/events/")
    parser.add_argument("--work", required=True, help="scratch directory (emptied)")
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    paths = sorted(glob.glob(os.path.join(args.dataset, "raw/events/*/*.json")))
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    ndjson = os.path.join(args.work, "events.ndjson")
    readable = []
    with open(ndjson, "w") as out:
        for path, records in readable_batches(paths):
            readable.append(path)
            for record in filter(well_typed, records):
                out.write(json.dumps(record) + "\n")

    import duckdb

    con = duckdb.connect()
    con.execute("SET threads = 1")
    duck_out = os.path.join(args.work, "duckdb.parquet")
    files = "[" + ", ".join(f"'{p}'" for p in readable) + "]"

    def duckdb_run():
        con.execute(
            f"COPY (SELECT * FROM read_json({files}, format = 'array', ignore_errors = true)) "
            f"TO '{duck_out}' (FORMAT parquet, COMPRESSION zstd)"
        )

    seconds = best_of(args.passes, duckdb_run)
    rows = con.execute(f"SELECT count(*) FROM '{duck_out}'").fetchone()[0]
    report("duckdb", duckdb.__version__, rows, seconds)

    import pyarrow
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    pyarrow.set_cpu_count(1)
    pyarrow.set_io_thread_count(1)
    arrow_out = os.path.join(args.work, "pyarrow.parquet")
    table_rows = []

    def pyarrow_run():
        table = pj.read_json(ndjson, read_options=pj.ReadOptions(use_threads=False))
        pq.write_table(table, arrow_out, compression="zstd")
        table_rows.append(table.num_rows)

    seconds = best_of(args.passes, pyarrow_run)
    report("pyarrow", pyarrow.__version__, table_rows[-1], seconds)


def report(peer, version, events, seconds):
    print(json.dumps({
        "step": f"peer-{peer}",
        "version": version,
        "events": events,
        "seconds": round(seconds, 3),
        "events_per_s": round(events / seconds),
    }), flush=True)


if __name__ == "__main__":
    main()
