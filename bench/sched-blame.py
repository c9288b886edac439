#!/usr/bin/env python3
"""Who held the core while the lab's timed threads waited for one?

Runs `tracelab run SCENARIO --rate RATE --duration DURATION` pinned to CPUS, records the kernel's
scheduler events for RECORD seconds in the middle of the run (`perf sched record`), and reads
them with `perf sched timehist`. For every time a tokio worker (or the timer thread, which serves only runtimes without a
reactor) waited longer
than THRESHOLD ms between being woken and running ("sch delay"), it adds up which other threads
ran on that CPU meanwhile. Then it prints the run's own `precision` line.

A wait that ends is only as punctual as the thread that resumes its task gets a core: this
says which threads stood in the way (the lab's own span pipeline, kernel threads, idle time on a
vCPU the host had not yet woken). Recording every scheduler event costs CPU itself: the
recorded run's `precision` line is a little worse than the same run's without `perf`.

Usage: python3 bench/sched-blame.py [--rate 500] [--duration 10s] [--record 4] [--threshold 0.25]
                                    [--cpus 0-1] [--scenario scenarios/quickstart.yaml] [TRACELAB]
Needs `perf` (Debian's linux-perf) and the right to trace the scheduler (root, or
kernel.perf_event_paranoid <= 1).
"""

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import time

TIMED = ("tokio-rt-worker", "tracelab-timer")


def timehist_rows(data):
    """(end, cpu, thread, sch_delay_ms, run_ms) for every time slice perf recorded."""
    out = subprocess.run(
        ["perf", "sched", "timehist", "-i", data],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = []
    for line in out.splitlines()[3:]:
        fields = line.split()
        if len(fields) < 6:
            continue
        try:
            end = float(fields[0])
            delay, run = float(fields[-2]), float(fields[-1])
        except ValueError:
            continue
        rows.append((end, fields[1], re.sub(r"\[.*", "", fields[2]), delay, run))
    return rows


def blame(rows, threshold_ms):
    """How many timed threads waited past the threshold, and who ran on their CPU meanwhile."""
    slices = collections.defaultdict(list)
    for end, cpu, name, _, run in rows:
        slices[cpu].append((end - run / 1000, end, name))
    waits = collections.Counter()
    held = collections.Counter()
    for end, cpu, name, delay, run in rows:
        if name not in TIMED or delay <= threshold_ms:
            continue
        waits[name] += 1
        started = end - run / 1000
        woken = started - delay / 1000
        for a, b, other in slices[cpu]:
            overlap = min(b, started) - max(a, woken)
            if overlap > 0 and other != name:
                held[other] += overlap * 1000
    return waits, held


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("tracelab", nargs="?", default="target/release/tracelab")
    parser.add_argument("--scenario", default="scenarios/quickstart.yaml")
    parser.add_argument("--rate", default="500")
    parser.add_argument("--duration", default="10s")
    parser.add_argument("--record", type=float, default=4.0)
    parser.add_argument("--threshold", type=float, default=0.25)
    parser.add_argument("--cpus", default="0-1")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        out = os.path.join(scratch, "run")
        data = os.path.join(scratch, "sched.data")
        run = subprocess.Popen(
            ["taskset", "-c", args.cpus, args.tracelab, "run", args.scenario,
             "--rate", args.rate, "--duration", args.duration, "--out", out, "--no-progress"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        time.sleep(2.0)
        recorded = subprocess.run(
            ["perf", "sched", "record", "-o", data, "--", "sleep", str(args.record)],
            capture_output=True,
            text=True,
        )
        summary, _ = run.communicate()
        if recorded.returncode != 0:
            sys.exit(f"perf sched record failed:\n{recorded.stderr}")
        waits, held = blame(timehist_rows(data), args.threshold)

    print(f"{args.scenario} at {args.rate}/s, taskset -c {args.cpus}; "
          f"{args.record:g} s of scheduler events")
    counts = ", ".join(f"{name} {n}" for name, n in waits.most_common())
    print(f"timed threads woken but kept off a core for over {args.threshold} ms: {counts or 'none'}")
    total = sum(held.values()) or 1.0
    for name, ms in held.most_common(8):
        print(f"  {name:<24} ran {ms:7.1f} ms of that time ({100 * ms / total:4.1f} %)")
    for line in summary.splitlines():
        if "precision" in line:
            print(line.strip())


if __name__ == "__main__":
    main()
