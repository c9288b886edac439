#!/usr/bin/env python3
"""The lab's CPU per span, end to end, and which of its threads spend it.

Runs `tracelab run scenarios/quickstart.yaml --rate RATE --duration DURATION` pinned to CPUS
(taskset), ROUNDS times for each binary given (alternating, so that a change of the machine
shows in both), and prints for each run: the spans received, the whole process's CPU time (user
+ system, from the kernel's accounting of the finished process), CPU per span and per request,
how far the injected waits ran past their draws (the precision that CPU buys), and the CPU
time and context switches of each group of threads (tokio workers, the timer thread where a
runtime has no alarm, the OTLP pipeline, the span sink, trace assembly), sampled from /proc every 100 ms until the run ends.

Usage: python3 bench/lab-cpu.py [--rate 500] [--duration 10s] [--rounds 2] [--cpus 0-1]
                                [--scenario scenarios/quickstart.yaml] [TRACELAB ...]
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


def one_run(binary, args, out):
    command = [
        "taskset", "-c", args.cpus, binary, "run", args.scenario,
        "--rate", str(args.rate), "--duration", args.duration, "--out", out, "--no-progress",
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
    parser.add_argument("--rate", type=float, default=500)
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
    with open("/proc/loadavg", encoding="utf-8") as handle:
        load = " ".join(handle.read().split()[:3])
    print(f"lab-cpu: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, {os.cpu_count()} CPUs, "
          f"load average {load}; {args.scenario} at {args.rate:g}/s for {args.duration}, taskset -c {args.cpus}")
    work = tempfile.mkdtemp(prefix="lab-cpu-")
    try:
        for round_ in range(1, args.rounds + 1):
            for binary in args.binaries:
                out = os.path.join(work, f"run-{round_}-{len(os.listdir(work))}")
                before = os.times()
                threads, _ = one_run(binary, args, out)
                after = os.times()
                user = after.children_user - before.children_user
                system = after.children_system - before.children_system
                with open(os.path.join(out, "report.json"), encoding="utf-8") as handle:
                    report = json.load(handle)
                if "pipeline" in report:
                    spans, requests = report["pipeline"]["spans_received"], report["load"]["sent"]
                else:  # report.json before schema 2
                    spans, requests = report["spans"]["received"], report["requests"]["total"]
                cpu = user + system
                print(f"\n{binary} round {round_}: {spans:,} spans, {requests:,} requests, "
                      f"CPU {cpu:.2f} s (user {user:.2f} + sys {system:.2f}), "
                      f"{cpu / max(spans, 1) * 1e6:.1f} µs a span, {cpu / max(requests, 1) * 1e6:.0f} µs a request")
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
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
