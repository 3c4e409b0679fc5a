#!/usr/bin/env python3
"""The peers on the same batches, one thread each: DuckDB (read_json ->
COPY ... (FORMAT parquet, COMPRESSION zstd)), pyarrow (JSON reader ->
Parquet, zstd) and, when it is installed, PySpark (local[1]: spark.read.json
-> Parquet, zstd). Prints one JSON line per peer, with the size of the Parquet
it wrote (output_bytes) and the size of the JSON it read (input_bytes).

They get it easier than the consumer: no validation and no dead letters.
DuckDB reads the readable raw batch files as JSON arrays (it cannot skip a
corrupt file, so they are left out of its list); pyarrow only reads
newline-delimited JSON and stops at a field whose type changes, so the readable
batches' well-typed records are first rewritten as one NDJSON file (not timed).

PySpark reads the same readable batch files as DuckDB (multiLine, so a file is
one array of records) with the explicit event schema, and writes one Parquet
file (coalesce(1), no shuffle). Its seconds time only that conversion, from
spark.read.json to the end of the write; the JVM start-up and session creation
(SparkSession.getOrCreate) is not in them but is reported as startup_seconds,
and the row count is read back afterwards. It runs with one task slot; the
JVM's own threads (JIT, GC) can use more cores unless the process is pinned
(make bench runs it under taskset -c 0): jvm_cpu_per_wall is the JVM's CPU
time over the wall time of the timed passes, so about 1.0 means one core.
Without pyspark (or Java), it prints a line saying it was skipped, and why.

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
    report("duckdb", duckdb.__version__, rows, seconds, input_bytes=total_size(readable),
           output_bytes=os.path.getsize(duck_out))

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
    report("pyarrow", pyarrow.__version__, table_rows[-1], seconds, input_bytes=os.path.getsize(ndjson),
           output_bytes=os.path.getsize(arrow_out))

    pyspark_peer(readable, os.path.join(args.work, "pyspark"), args.passes)


SPARK_SCHEMA = ("event_id STRING, user_id BIGINT, event_type STRING, event_ts STRING, page STRING, "
                "country STRING, amount DOUBLE")


def pyspark_peer(readable, spark_out, passes):
    try:
        import pyspark
        from pyspark.sql import SparkSession
    except ImportError as e:
        skipped(f"pyspark is not installed: {e}")
        return
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    started = time.monotonic()
    try:
        spark = (SparkSession.builder.master("local[1]").appName("peers")
                 .config("spark.sql.shuffle.partitions", "1")
                 .config("spark.driver.memory", "2g")
                 .config("spark.ui.enabled", "false")
                 .config("spark.ui.showConsoleProgress", "false")
                 .getOrCreate())
    except Exception as e:  # no Java, or the JVM would not start
        skipped(f"Spark did not start: {e}")
        return
    startup = time.monotonic() - started
    spark.sparkContext.setLogLevel("ERROR")
    jvm_pid = spark._jvm.java.lang.ProcessHandle.current().pid()

    def pyspark_run():
        (spark.read.schema(SPARK_SCHEMA).option("multiLine", "true").json(readable)
         .coalesce(1).write.mode("overwrite").option("compression", "zstd").parquet(spark_out))

    cpu, wall = cpu_seconds(jvm_pid), time.monotonic()
    seconds = best_of(passes, pyspark_run)
    cpu_per_wall = (cpu_seconds(jvm_pid) - cpu) / (time.monotonic() - wall)
    rows = spark.read.parquet(spark_out).count()
    parts = glob.glob(os.path.join(spark_out, "*.parquet"))
    report("pyspark", pyspark.__version__, rows, seconds, input_bytes=total_size(readable),
           output_bytes=total_size(parts), startup_seconds=round(startup, 3),
           task_slots=spark.sparkContext.defaultParallelism, jvm_cpu_per_wall=round(cpu_per_wall, 2))
    spark.stop()


def skipped(why):
    print(json.dumps({"step": "peer-pyspark", "skipped": why}), flush=True)


def cpu_seconds(pid):
    """User + system CPU time of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def total_size(paths):
    return sum(os.path.getsize(p) for p in paths)


def report(peer, version, events, seconds, **extra):
    print(json.dumps({
        "step": f"peer-{peer}",
        "version": version,
        "events": events,
        "seconds": round(seconds, 3),
        "events_per_s": round(events / seconds),
        **extra,
    }), flush=True)


if __name__ == "__main__":
    main()
