#!/usr/bin/env python3
"""Runs one command and prints, as one JSON line, its wall time and the peak
resident memory of the process tree it started (getrusage of the children).

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
    # ru_maxrss is in KiB on Linux: the largest of the waited-for children.
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = {
        "step": args.name,
        "seconds": round(seconds, 3),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "exit_status": status,
    }
    if args.events:
        result["events"] = args.events
        result["events_per_s"] = round(args.events / seconds)
    print(json.dumps(result))
    return status


if __name__ == "__main__":
    sys.exit(main())
