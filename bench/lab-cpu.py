#!/usr/bin/env python3
"""The lab's CPU per span, end to end, and which of its threads spend it.

Runs `tracelab run scenarios/quickstart.yaml --rate RATE --duration DURATION` pinned to CPUS
(taskset), ROUNDS times for each binary given (alternating, so that a change of the machine
shows in both), and prints for each run: the spans received, the whole process's CPU time (user
+ system, from the kernel's accounting of the finished process), CPU per span and per request,
the requests sent against those scheduled and the spans received against those exported (a
build that fell behind is measured at its limit, not at the rate asked), the share of the
pinned cores the run used, how far the injected waits ran past their draws (the precision that CPU buys), and the CPU
time and context switches of each group of threads (tokio workers, the timer thread where a
runtime has no alarm, the OTLP pipeline, the span sink, trace assembly), sampled from /proc every 100 ms until the run ends.

At the end, for each rate, the median CPU per span and per request of each binary over its
rounds and, with two binaries or more, each one's medians divided by the first binary's: run
the build before a change first, and that line is the before/after figure.

Usage: python3 bench/lab-cpu.py [--rate 500] [--duration 10s] [--rounds 2] [--cpus 0-1]
                                [--scenario scenarios/quickstart.yaml] [TRACELAB ...]
       --rate takes a comma-separated list (e.g. 1000,2000,3000) to run each rate in turn
       (default binary: target/release/tracelab, built first when it is the default)
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

TICK = os.sysconf("SC_CLK_TCK")


def thread_times(pid):
    """{tid: (name, user seconds, system seconds)} of every thread of `pid` now."""
    threads = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return threads
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", encoding="utf-8") as handle:
                stat = handle.read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        # The name is in parentheses and may hold spaces; the fields after it are fixed.
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        switches = 0
        try:
            with open(f"/proc/{pid}/task/{tid}/status", encoding="utf-8") as handle:
                for line in handle:
                    if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                        switches += int(line.split()[-1])
        except (FileNotFoundError, ProcessLookupError):
            pass
        threads[tid] = (name, int(fields[11]) / TICK, int(fields[12]) / TICK, switches)
    return threads


def group(name, binary):
    """Threads grouped by what they do: the main runtime's workers (services, load generator,
    receiver), the main thread (named after the binary), and the lab's named threads."""
    if name.startswith("tokio-r"):
        return "tokio workers"
    if name == os.path.basename(binary)[:15]:
        return "main thread"
    return re.sub(r"[-_]?\d+$", "", name)


def rates(text):
    """`--rate`: one rate or a comma-separated list of them, each above zero."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a rate or a comma-separated list, e.g. 1000,2000")
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: every rate must be above zero")
    return values


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def cpu_list(spec):
    """The cores of a taskset list such as `0-1` or `0,2-3`."""
    cores = []
    for part in spec.split(","):
        low, _, high = part.partition("-")
        cores.extend(range(int(low), int(high or low) + 1))
    return cores


def one_run(binary, args, rate, out):
    command = [
        "taskset", "-c", args.cpus, binary, "run", args.scenario,
        "--rate", f"{rate:g}", "--duration", args.duration, "--out", out, "--no-progress",
        "--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0",
    ]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = {}
    while child.poll() is None:
        now = thread_times(child.pid)
        if now:
            last.update(now)
        time.sleep(0.1)
    stderr = child.stderr.read().decode(errors="replace")
    if child.returncode != 0:
        sys.exit(f"{binary} exited with {child.returncode}:\n{stderr}")
    return last, stderr


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=rates, default=[500.0])
    parser.add_argument("--duration", default="10s")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cpus", default="0-1")
    parser.add_argument("--scenario", default="scenarios/quickstart.yaml")
    parser.add_argument("binaries", nargs="*")
    args = parser.parse_args()
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    if not args.binaries:
        subprocess.run(["cargo", "build", "--quiet", "--release", "-p", "tracelab"], check=True)
        args.binaries = ["target/release/tracelab"]
    for binary in args.binaries:
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            sys.exit(f"{binary}: not an executable file")
    if len(set(args.binaries)) != len(args.binaries):
        sys.exit("lab-cpu: give each binary once (to compare a build with itself, copy it under another name)")
    with open("/proc/loadavg", encoding="utf-8") as handle:
        load = " ".join(handle.read().split()[:3])
    print(f"lab-cpu: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, {os.cpu_count()} CPUs, "
          f"load average {load}; {args.scenario} at {', '.join(f'{r:g}' for r in args.rate)}/s "
          f"for {args.duration}, taskset -c {args.cpus}")
    work = tempfile.mkdtemp(prefix="lab-cpu-")
    # (rate, binary) -> [(µs a span, µs a request)], one entry per round
    results = {}
    try:
        for rate in args.rate:
            if len(args.rate) > 1:
                print(f"\n== {rate:g} requests a second")
            for round_ in range(1, args.rounds + 1):
                for binary in args.binaries:
                    out = os.path.join(work, f"run-{len(os.listdir(work))}")
                    per_span, per_request = measure(binary, args, rate, round_, out)
                    results.setdefault((rate, binary), []).append((per_span, per_request))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summarize(results, args)


def measure(binary, args, rate, round_, out):
    """One run of `binary` at `rate`: prints what it cost; returns µs a span and a request."""
    before = os.times()
    threads, _ = one_run(binary, args, rate, out)
    after = os.times()
    wall = after.elapsed - before.elapsed
    user = after.children_user - before.children_user
    system = after.children_system - before.children_system
    with open(os.path.join(out, "report.json"), encoding="utf-8") as handle:
        report = json.load(handle)
    if "pipeline" in report:
        spans, requests = report["pipeline"]["spans_received"], report["load"]["sent"]
    else:  # report.json before schema 2
        spans, requests = report["spans"]["received"], report["requests"]["total"]
    cpu = user + system
    per_span, per_request = cpu / max(spans, 1) * 1e6, cpu / max(requests, 1) * 1e6
    print(f"\n{binary} round {round_}: {spans:,} spans, {requests:,} requests, "
          f"CPU {cpu:.2f} s (user {user:.2f} + sys {system:.2f}), "
          f"{per_span:.1f} µs a span, {per_request:.0f} µs a request")
    # Against what was configured, and how busy the pinned cores were: a build that fell
    # behind its schedule or filled its cores is measured at its limit, not at the rate asked.
    load = report.get("load", {})
    exported = report.get("pipeline", {}).get("spans_exported")
    cores = len(cpu_list(args.cpus))
    print(f"  sent {requests:,} of {load.get('total', requests):,} scheduled "
          f"({load.get('achieved_rate', 0):g}/s of {load.get('target_rate', rate):g}/s)"
          + (f", spans received {spans:,} of {exported:,} exported" if exported is not None else "")
          + f"; {cpu / wall / cores:.0%} of {cores} pinned core(s) over {wall:.1f} s")
    waits = report.get("timing", {}).get("injected_waits")
    if waits:
        print(f"  injected waits past their draw: p50 {waits['p50_us']:.0f} µs, p99 {waits['p99_us']:.0f} µs, "
              f"max {waits['max_us']:.0f} µs over {waits['count']:,} waits")
    groups = {}
    for name, u, s, switches in threads.values():
        g = groups.setdefault(group(name, binary), [0, 0.0, 0.0, 0])
        g[0] += 1
        g[1] += u
        g[2] += s
        g[3] += switches
    for name, (count, u, s, switches) in sorted(groups.items(), key=lambda kv: -(kv[1][1] + kv[1][2])):
        print(f"  {name:24} {count:3} thread(s)  user {u:6.2f} s  sys {s:6.2f} s  "
              f"{(u + s) / max(spans, 1) * 1e6:6.1f} µs a span  "
              f"{switches / max(spans, 1):5.2f} context switches a span")
    return per_span, per_request


def summarize(results, args):
    """The medians over the rounds, and each binary's against the first's."""
    first = args.binaries[0]
    print(f"\nmedians over {args.rounds} round(s)" + (f"; ratio to {first}" if len(args.binaries) > 1 else ""))
    for rate in args.rate:
        base = results[(rate, first)]
        base_span = median([span for span, _ in base])
        base_request = median([request for _, request in base])
        for binary in args.binaries:
            rounds = results[(rate, binary)]
            span = median([s for s, _ in rounds])
            request = median([r for _, r in rounds])
            line = f"  {rate:>7g}/s  {binary:40} {span:6.1f} µs a span  {request:5.0f} µs a request"
            if len(args.binaries) > 1 and binary != first:
                line += f"   x {span / base_span:.2f} a span, x {request / base_request:.2f} a request"
            print(line)

if __name__ == "__main__":
    main()
