#!/usr/bin/env python3
"""Reads the benchmark results (bench/results/*.json, JSON lines) and prints
one plain-text table: a row per measurement (events/s, MB/s, seconds, peak
RSS, Parquet output size), the hot path's ratio to each peer, the freshness
percentiles, whole processes against peers (versus.json: the consumer, the
DuckDB CLI, Polars and a simdjson parse by the wall clock, with the ratios the
issue sets), and the targets with "met" / "not met" / "not measured". Writes
the lot to summary.json and draws comparison.png (events/s per core of ours
and the peers, peak RSS at 1x and 10x backlog, and the whole processes) when
matplotlib is there.

A missed target is reported, never a failure: it exits non-zero only when
there are no results at all.

    python3 bench/report.py --results bench/results
"""
import argparse
import glob
import json
import os
import re
import sys

# The files the bench target and the other benchmarks write, in table order.
KNOWN = ["hot-path", "whole-path", "consumer-memory", "refiner", "peers", "freshness", "gold-freshness", "delta-log",
         "versus"]
# The same steps before every table was a Delta table (the README's figures
# of the last run before it): events/s, to show what the commits cost.
BASELINE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "baseline.json")
# Throughput with Delta commits within this much of the figures before them.
VS_BEFORE_DELTA = 0.10
# The targets, as the README's Benchmarks section states them.
HOT_PATH_EVENTS_PER_S = 1_000_000
VS_DUCKDB = 1.5
VS_PYSPARK = 20
PEAK_RSS_MIB = 256
# "Flat": the peak at 10x backlog is at most this much above the peak at 1x.
FLAT_GROWTH = 0.20
FRESHNESS_SLACK_S = 1.0
# The Kafka path's events/s at least this much below the files path's, on the same batches.
KAFKA_VS_FILES = 0.15
# The median bronze object at 400 partitions, and the peak RSS there: flat within this much.
MEDIAN_OBJECT_MIB = 8
WIDE_FLAT = 0.10
# The orders contract (nested line items) on the hot path, against the events contract's events/s.
ORDERS_VS_EVENTS = 0.60


def load(path):
    """The JSON objects in a JSON-lines file (or one JSON document); None if missing."""
    if not os.path.exists(path):
        return None
    with open(path) as f:
        text = f.read()
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            try:
                document = json.loads(text)
                return document if isinstance(document, list) else [document]
            except ValueError:
                print(f"{path}:{number}: not JSON, left out", file=sys.stderr)
    return [r for r in rows if isinstance(r, dict)]


def ratio(a, b):
    return a / b if a and b else None


def mb_per_s(row):
    if "mb_per_s" in row:
        return row["mb_per_s"]
    if row.get("input_bytes") and row.get("seconds"):
        return row["input_bytes"] / row["seconds"] / 1e6
    return None


def fmt(value, spec):
    return "" if value is None else format(value, spec)


def verdict(ok):
    return "not measured" if ok is None else ("met" if ok else "not met")


def rss_pairs(rows):
    """(name, peak at 1x, peak at 10x) for every step measured at both backlogs."""
    by_step = {r["step"]: r["peak_rss_mib"] for r in rows if "step" in r and "peak_rss_mib" in r}
    pairs = []
    for step, peak in by_step.items():
        ten = re.sub(r"\b1x\b", "10x", step)
        if ten != step and ten in by_step:
            pairs.append((re.sub(r"[-_]?\b1x\b", "", step), peak, by_step[ten]))
    return pairs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", default="bench/results", help="directory of the *.json result files")
    args = parser.parse_args()

    names = KNOWN + sorted(
        n for n in (os.path.basename(p)[:-5] for p in glob.glob(os.path.join(args.results, "*.json")))
        if n not in KNOWN and n != "summary")
    results = {n: load(os.path.join(args.results, n + ".json")) for n in names}
    missing = [n for n in names if not results[n]]
    if all(not rows for rows in results.values()):
        print(f"no benchmark results in {args.results}/ (run make bench)", file=sys.stderr)
        return 1

    hot = next((r for r in results["hot-path"] or [] if r.get("events_per_s")), None)
    hot_eps = hot and hot["events_per_s"]
    peers = {r["step"].removeprefix("peer-"): r for r in results["peers"] or [] if "step" in r}
    ratios = {p: ratio(hot_eps, r.get("events_per_s")) for p, r in peers.items()}

    # The table: a row per measurement.
    header = ("measurement", "events", "events/s", "MB/s", "seconds", "peak RSS MiB", "Parquet MB", "notes")
    table = [header]
    for name in names:
        if name in ("freshness", "gold-freshness", "delta-log", "versus"):
            continue
        if not results[name]:
            table.append((name, "", "", "", "", "", "", "not measured"))
            continue
        for row in results[name]:
            notes = []
            if name == "hot-path":
                notes += [f"{k[:-8]} {row[k]:.2f} s" for k in ("decode_seconds", "encode_seconds", "write_seconds")
                          if k in row]
            if row.get("step", "").startswith("peer-"):
                peer = row["step"].removeprefix("peer-")
                if ratios.get(peer):
                    notes.append(f"hot path is {ratios[peer]:.2f}x this")
                if "startup_seconds" in row:
                    notes.append(f"JVM start-up {row['startup_seconds']:.1f} s (not timed)")
            if "skipped" in row:
                notes.append("skipped: " + str(row["skipped"])[:70])
            if "delta_commit_ms" in row:
                c = row["delta_commit_ms"]
                notes.append(f"Delta commit p50 {c['p50']} ms, p99 {c['p99']} ms over {row.get('micro_batches')} micro-batches")
            if row.get("exit_status"):
                notes.append(f"exit status {row['exit_status']}")
            table.append((
                ("hot path: " if name == "hot-path" else "") + row.get("step", name)
                + (f" ({row['table']})" if "table" in row else "")
                + (f" {row['version']}" if "version" in row else ""),
                fmt(row.get("events"), ","), fmt(row.get("events_per_s"), ",.0f"), fmt(mb_per_s(row), ".1f"),
                fmt(row.get("seconds"), ".2f"), fmt(row.get("peak_rss_mib"), ".1f"),
                fmt(row.get("output_bytes") and row["output_bytes"] / 1e6, ".1f"), ", ".join(notes)))
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print("  ".join(c.ljust(w) if j in (0, 7) else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))

    # Freshness.
    fresh = (results["freshness"] or [None])[0]
    print()
    if fresh and "p99_s" in fresh and "flush_interval_s" in fresh:
        fresh_limit = fresh["flush_interval_s"] + FRESHNESS_SLACK_S
        print(f"freshness: p50 {fresh.get('p50_s', float('nan')):.2f} s, p99 {fresh['p99_s']:.2f} s, "
              f"max {fresh.get('max_s', float('nan')):.2f} s over {fresh.get('batches', '?')} batches "
              f"at {fresh.get('rate_events_per_s', '?')} events/s; flush interval {fresh['flush_interval_s']} s, "
              f"target p99 <= {fresh_limit:g} s")
    else:
        fresh, fresh_limit = None, None
        print("freshness: not measured")

    gold = (results["gold-freshness"] or [None])[0]
    if gold and "p99_s" in gold:
        print(f"freshness to gold.events_per_minute: p50 {gold['p50_s']:.2f} s, p99 {gold['p99_s']:.2f} s, "
              f"max {gold['max_s']:.2f} s at {gold.get('rate_events_per_s', '?')} events/s; flush {gold['flush_interval_s']} s "
              f"+ refine {gold['refine_interval_s']} s, target p99 <= {gold['target_p99_s']} s")
    else:
        gold = None
        print("freshness to gold: not measured")

    # Delta: throughput beside the figures before it, and reading a long log.
    with open(BASELINE) as f:
        before = json.load(f)
    now = {r["step"]: r for n in ("consumer-memory", "whole-path") for r in results[n] or [] if "step" in r}
    compared = [(step, before["events_per_s"][step], now[step]["events_per_s"])
                for step in before["events_per_s"] if now.get(step, {}).get("events_per_s")]
    print()
    print(f"with Delta commits vs before ({before['source']}; runs on this machine vary by up to 20 %):")
    for step, then, today in compared:
        print(f"  {step:<34} {then:>10,} -> {today:>10,} events/s ({today / then:.2f}x)")
    log_read = (results["delta-log"] or [None])[0]
    if log_read:
        print(f"\ncount(*) of bronze.events after {log_read['commits']:,} Delta commits "
              f"({log_read['rows']:,} rows, checkpoint every {log_read['checkpoint_interval']}; "
              f"written in {log_read['write_seconds']:.0f} s), median wall time of whole processes:")
        by_reader = {}
        for r in log_read["readers"]:
            by_reader.setdefault(r["reader"], {})[r["table"]] = r["seconds"]
        for reader, t in by_reader.items():
            print(f"  {reader:<32} with checkpoints {t.get('with_checkpoints', float('nan')):6.2f} s, "
                  f"without {t.get('without_checkpoints', float('nan')):6.2f} s")

    # Whole processes against peers: bench/versus.py's rows, then its ratios and their targets.
    versus, versus_targets = versus_rows(results["versus"])
    print()
    if versus:
        t = versus_targets or {}
        print(f"whole processes against peers (bench/versus.py: wall clock from outside, median of "
              f"{t.get('runs', '?')} runs taken in turn; {t.get('events', 0):,} events, {t.get('cores', '?')} cores):")
        print(f"  {'peer':<20} {'version':<14} {'events/s':>11} {'median s':>9} {'min-max s':>13} {'peak RSS MiB':>12}")
        for r in versus:
            if "skipped" in r:
                print(f"  {r['name']:<20} skipped: {r['skipped']}")
                continue
            print(f"  {r['name']:<20} {str(r.get('version') or '')[:14]:<14} {r['events_per_s']:>11,} "
                  f"{r['seconds_median']:>9.3f} {r['seconds_min']:>6.3f}-{r['seconds_max']:<6.3f} "
                  f"{fmt(r.get('peak_rss_mib'), '12.1f')}")
        print(f"\n  {'ratio of events/s':<42} {'value':>7} {'target':>8}  verdict")
        for v in t.get("ratios", []):
            value = "" if v["value"] is None else f"{v['value']:.2f}x"
            target = "none" if v["target"] is None else f">= {v['target']:g}"
            # A ratio with no target is only shown.
            said = "shown" if v["target"] is None and v["value"] is not None else verdict(v["met"])
            print(f"  {v['ratio']:<42} {value:>7} {target:>8}  {said}")
    else:
        print("whole processes against peers: not measured")

    # The targets.
    ours = [r for n in ("consumer-memory", "whole-path") for r in results[n] or [] if "peak_rss_mib" in r]
    top = max(ours, key=lambda r: r["peak_rss_mib"], default=None)
    pairs = rss_pairs(ours)
    vs_duck, vs_spark = ratios.get("duckdb"), ratios.get("pyspark")
    targets = [
        (f"hot path >= {HOT_PATH_EVENTS_PER_S:,} events/s/core",
         f"{hot_eps:,.0f} events/s" if hot_eps else "", hot_eps and hot_eps >= HOT_PATH_EVENTS_PER_S),
        (f"hot path >= {VS_DUCKDB}x DuckDB (1 thread)",
         f"{vs_duck:.2f}x" if vs_duck else "", vs_duck and vs_duck >= VS_DUCKDB),
        (f"hot path >= {VS_PYSPARK}x PySpark (local[1])",
         f"{vs_spark:.2f}x" if vs_spark else str(peers.get("pyspark", {}).get("skipped", ""))[:70],
         vs_spark and vs_spark >= VS_PYSPARK),
        (f"peak RSS <= {PEAK_RSS_MIB} MiB",
         f"{top['peak_rss_mib']:.1f} MiB ({top.get('step')})" if top else "",
         top and top["peak_rss_mib"] <= PEAK_RSS_MIB),
        (f"peak RSS flat from 1x to 10x backlog (<= +{FLAT_GROWTH:.0%})",
         "; ".join(f"{n} {a:.1f} -> {b:.1f} MiB ({b / a - 1:+.1%})" for n, a, b in pairs),
         all(b <= a * (1 + FLAT_GROWTH) for _, a, b in pairs) if pairs else None),
        ("freshness p99 <= flush interval + 1 s",
         f"p99 {fresh['p99_s']:.2f} s vs {fresh_limit:g} s" if fresh else "",
         fresh and fresh["p99_s"] <= fresh_limit),
    ]
    targets.append(("freshness to gold p99 <= flush + refine interval + 2 s",
                    f"p99 {gold['p99_s']:.2f} s vs {gold['target_p99_s']} s" if gold else "",
                    gold and gold["p99_s"] <= gold["target_p99_s"]))
    targets.append((f"throughput with Delta within {VS_BEFORE_DELTA:.0%} of before",
                    "; ".join(f"{s} {b / a:.2f}x" for s, a, b in compared),
                    all(b >= a * (1 - VS_BEFORE_DELTA) for _, a, b in compared) if compared else None))
    # Contracts: the orders table's hot path against the events table's, both on one core.
    by_table = {r.get("table"): r.get("events_per_s") for r in results["hot-path"] or [] if r.get("events_per_s")}
    orders, events = by_table.get("orders"), by_table.get("events")
    targets.append((f"hot path: orders contract >= {ORDERS_VS_EVENTS:.0%} of the events contract's events/s",
                    f"{orders / events:.2f}x ({orders:,.0f} vs {events:,.0f} events/s)" if orders and events else "",
                    orders / events >= ORDERS_VS_EVENTS if orders and events else None))
    # The Kafka path against the files path on the same batches, on one core and on every core.
    for cores, kafka, files in (("one core", "whole-path-kafka-local-1x", "consumer-files-1x"),
                                ("every core", "whole-path-kafka-local-1x-all", "consumer-files-1x-all")):
        k, f = now.get(kafka, {}).get("events_per_s"), now.get(files, {}).get("events_per_s")
        kafka_over_files = k / f if k and f else None
        targets.append((f"Kafka path within {KAFKA_VS_FILES:.0%} of the files path, {cores}",
                        f"{kafka_over_files:.2f}x ({k:,} vs {f:,} events/s)" if kafka_over_files else "",
                        kafka_over_files and kafka_over_files >= 1 - KAFKA_VS_FILES))
    # 400 partitions, every core busy: object sizes, and memory from 1x to 10x backlog.
    wide, deep = now.get("whole-path-kafka-local-400p-1x-all"), now.get("whole-path-kafka-local-400p-10x-all")
    median = (wide or {}).get("bronze_object_mib_median")
    targets.append((f"400 partitions: median bronze object >= {MEDIAN_OBJECT_MIB} MiB",
                    f"{median} MiB ({wide['bronze_objects']} objects)" if median is not None else "",
                    None if median is None else median >= MEDIAN_OBJECT_MIB))
    if wide and deep:
        a, b = wide["peak_rss_mib"], deep["peak_rss_mib"]
        targets.append((f"400 partitions, every core: peak RSS <= {PEAK_RSS_MIB} MiB, 1x to 10x within {WIDE_FLAT:.0%}",
                        f"{a:.1f} -> {b:.1f} MiB ({b / a - 1:+.1%})",
                        max(a, b) <= PEAK_RSS_MIB and abs(b / a - 1) <= WIDE_FLAT))
    else:
        targets.append((f"400 partitions, every core: peak RSS <= {PEAK_RSS_MIB} MiB, flat", "", None))
    # The ratios of whole processes, each with its target (those without one are only shown above).
    if versus_targets:
        for v in versus_targets.get("ratios", []):
            if v["target"] is not None:
                targets.append((f"whole process: {v['ratio']} >= {v['target']:g}x",
                                f"{v['value']:.2f}x" if v["value"] is not None else "", v["met"]))
    else:
        targets.append(("whole processes against peers (bench/versus.py)", "", None))
    targets = [{"target": t, "measured": m, "verdict": verdict(None if ok is None else bool(ok))}
               for t, m, ok in targets]
    print()
    width = max(len(t["target"]) for t in targets)
    for t in targets:
        print(f"{t['target'].ljust(width)}  {t['verdict']:<12}  {t['measured']}")

    summary = {
        "measurements": {n: results[n] for n in names if results[n]},
        "not_measured": missing,
        "hot_path_ratio_to_peers": {p: round(r, 3) for p, r in ratios.items() if r},
        "whole_processes_vs_peers": {"peers": versus, "ratios": (versus_targets or {}).get("ratios", [])},
        "targets": targets,
    }
    with open(os.path.join(args.results, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    print(f"\nwrote {os.path.join(args.results, 'summary.json')}")
    draw(os.path.join(args.results, "comparison.png"), hot, results, peers, ratios, ours, versus, versus_targets)
    return 0


def versus_rows(rows):
    """bench/versus.py's peer rows and its {"name": "targets"} row (None when absent)."""
    rows = [r for r in rows or [] if "name" in r]
    return [r for r in rows if r["name"] != "targets"], next((r for r in rows if r["name"] == "targets"), None)


def draw(path, hot, results, peers, ratios, ours, versus, versus_targets):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        print(f"no chart: matplotlib cannot be imported ({e}); python3 -m pip install matplotlib")
        return
    bars = []  # (label, events/s, colour, text)
    if hot:
        bars.append(("ours: hot path", hot["events_per_s"], "tab:blue", ""))
    for row in results["whole-path"] or []:
        if row.get("events_per_s"):
            bars.append((f"ours: {row.get('step', 'whole path')}", row["events_per_s"], "tab:cyan", ""))
    for peer, row in peers.items():
        if row.get("events_per_s"):
            text = f"  (hot path is {ratios[peer]:.2f}x)" if ratios.get(peer) else ""
            bars.append((f"{peer} {row.get('version', '')}", row["events_per_s"], "tab:gray", text))
    pairs = rss_pairs(ours)
    measured = [r for r in versus if r.get("events_per_s")]
    panels = [p for p in ("speed", "rss") if (p == "speed" and bars) or (p == "rss" and pairs)]
    if not panels and not measured:
        return
    # The whole processes on a row of their own, under the one-core panels and as wide as them.
    layout = [panels] if panels else []
    if measured:
        layout.append(["versus"] * max(len(panels), 1))
    heights = ([1.6 + 0.55 * max(len(bars), 3)] if panels else []) + ([1.6 + 0.55 * len(measured)] if measured else [])
    fig, axes = plt.subplot_mosaic(layout, figsize=(13 if len(panels) == 2 else 9, sum(heights)),
                                   gridspec_kw={"width_ratios": [2.2, 1][:len(layout[0])], "height_ratios": heights})
    if "speed" in axes:
        ax = axes["speed"]
        labels, values, colours, texts = zip(*reversed(bars))
        ax.barh(labels, values, color=colours)
        top = max(max(values), HOT_PATH_EVENTS_PER_S)
        for y, (v, t) in enumerate(zip(values, texts)):
            ax.text(v + top * 0.01, y, f"{v:,.0f}/s{t}", va="center", fontsize=9)
        ax.axvline(HOT_PATH_EVENTS_PER_S, color="tab:red", linestyle="--", linewidth=1)
        ax.text(HOT_PATH_EVENTS_PER_S, len(values) - 0.4, " target 1M/s", color="tab:red", fontsize=8, va="bottom")
        ax.set_xlim(0, top * 1.45)
        ax.set_ylim(-0.6, len(values) - 0.1)
        ax.set_xlabel("events/s, one core")
        ax.set_title("Raw JSON batches -> Parquet (zstd), one core")
        ax.ticklabel_format(axis="x", style="plain")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1e6:g}M"))
    if "rss" in axes:
        ax = axes["rss"]
        names = [n for n, _, _ in pairs]
        ys = range(len(pairs))
        ax.barh([y + 0.2 for y in ys], [a for _, a, _ in pairs], height=0.4, color="tab:blue", label="1x backlog")
        ax.barh([y - 0.2 for y in ys], [b for _, _, b in pairs], height=0.4, color="tab:orange", label="10x backlog")
        for y, (_, a, b) in zip(ys, pairs):
            ax.text(a + 3, y + 0.2, f"{a:.0f}", va="center", fontsize=9)
            ax.text(b + 3, y - 0.2, f"{b:.0f}", va="center", fontsize=9)
        ax.axvline(PEAK_RSS_MIB, color="tab:red", linestyle="--", linewidth=1)
        ax.set_yticks(list(ys), names)
        ax.set_xlim(0, max(PEAK_RSS_MIB, *(b for _, _, b in pairs)) * 1.2)
        ax.set_xlabel("peak RSS, MiB (target <= 256)")
        ax.set_title("Consumer peak memory")
        ax.legend(loc="lower right", fontsize=8)
    if "versus" in axes:
        ax = axes["versus"]
        t = versus_targets or {}
        # Each peer's bar says how the consumer it is set against compares, and the target.
        against = {}
        for v in t.get("ratios", []):
            a, b = v["ratio"].split(" / ")
            if v["value"] is not None and b not in against:
                target = f", target {v['target']:g}x" if v["target"] is not None else ""
                against[b] = f"  ({a} is {v['value']:.2f}x{target})"
        colour = {"consumer-1core": "tab:blue", "consumer-all-cores": "tab:cyan"}
        rows = list(reversed(measured))
        values = [r["events_per_s"] for r in rows]
        # Whiskers: events/s at the slowest and the fastest run (never below 0: the median is rounded).
        low = [max(0, v - r["events"] / r["seconds_max"]) for v, r in zip(values, rows)]
        high = [max(0, r["events"] / r["seconds_min"] - v) if r["seconds_min"] else 0 for v, r in zip(values, rows)]
        ax.barh([r["name"] for r in rows], values, color=[colour.get(r["name"], "tab:gray") for r in rows],
                xerr=[low, high], error_kw={"elinewidth": 1, "capsize": 3, "ecolor": "black"})
        top = max(v + h for v, h in zip(values, high))
        for y, (v, h, r) in enumerate(zip(values, high, rows)):
            ax.text(v + h + top * 0.01, y, f"{v:,.0f}/s{against.get(r['name'], '')}", va="center", fontsize=9)
        ax.set_xlim(0, top * 2.0)
        ax.set_xlabel("events/s, whole process by the wall clock (median; whiskers: slowest and fastest run)")
        ax.set_title(f"Whole processes on the same batches: median of {t.get('runs', '?')} runs, "
                     f"{t.get('events', 0):,} events, {t.get('cores', '?')} cores")
        ax.ticklabel_format(axis="x", style="plain")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1e6:g}M"))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
