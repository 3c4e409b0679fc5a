#!/usr/bin/env python3
"""Runs one command and prints, as one JSON line, its wall time, CPU time and
the peak resident memory of the process tree it started (getrusage of the
children).

    python3 bench/measure.py --name consumer-1x -- consumer --source files --once
"""
import argparse
import json
import resource
import subprocess
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True, help="what this measurement is called")
    parser.add_argument("--events", type=int, default=0, help="events the command processes")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    started = time.monotonic()
    status = subprocess.call(command)
    seconds = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU time of all its threads: below the wall time when it waits (on a
    # broker, a disk), so events per CPU second is its cost per core.
    cpu_seconds = usage.ru_utime + usage.ru_stime
    result = {
        "step": args.name,
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        # ru_maxrss is in KiB on Linux: the largest of the waited-for children.
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "exit_status": status,
    }
    if args.events:
        result["events"] = args.events
        result["events_per_s"] = round(args.events / seconds)
        result["events_per_cpu_s"] = round(args.events / cpu_seconds) if cpu_seconds else None
    print(json.dumps(result))
    return status


if __name__ == "__main__":
    sys.exit(main())
