#!/usr/bin/env python3
"""Where the lab's CPU goes, by part: a `perf record` of `tracelab run` with call stacks, each
sample put in the part of the lab it was spent for.

Runs `tracelab run SCENARIO --rate RATE --duration DURATION` pinned to CPUS (taskset), records
RECORD seconds of it with `perf record --call-graph dwarf` from the third second on, and prints
the share of all samples of each part, split into kernel, allocator and the rest:

  - the threads of their own: the timer thread (only where a runtime has no reactor), the OTLP pipeline (the SDK's exporters and
    the embedded receiver), trace assembly, the span file;
  - on the runtime's workers, by the first rule a sample's stack matches: span SDK and
    propagation (opentelemetry, tracelab_telemetry, tracelab_propagation), the load
    generator, the precise timer (each runtime's alarm task and the waits' registration), the services (handlers, their HTTP server and their calls
    to peers), the I/O driver, the scheduler (park, unpark, task switches).

Usage: python3 bench/lab-profile.py [--rate 2000] [--duration 10s] [--record 5] [--cpus 0-1]
                                    [--scenario scenarios/quickstart.yaml] [TRACELAB]
       (default binary: target/release/tracelab, built first when it is the default; needs
       Debian's `perf`)
"""

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time

# Worker samples: the first rule whose pattern is in any frame of the stack wins.
RULES = [
    ("span SDK, propagation, head sampler", ["opentelemetry", "tracelab_telemetry", "tracelab_propagation", "tracelab_sampling"]),
    ("load generator", ["tracelab_loadgen"]),
    ("precise timer: alarm task, registration", ["tracelab_timer"]),
    ("services: handlers, HTTP server and calls", ["tracelab_services", "hyper", "axum", "tracelab_net", "tower"]),
    ("tokio I/O driver", ["io6driver", "io::driver", "mio"]),
    ("tokio scheduler", ["tokio"]),
]

# The span SDK's samples again, by what inside it they were spent on.
SDK_DETAIL = [
    ("W3C propagators (extract, inject)", ["tracelab_propagation", "TextMapCompositePropagator"]),
    ("head sampler", ["tracelab_sampling"]),
]

THREADS = [
    ("tracelab-timer", "thread: timer thread (runtimes without an alarm)"),
    ("tracelab-otlp", "thread: OTLP pipeline (export, receiver)"),
    ("tracelab-trace", "thread: trace assembly"),
    ("tracelab-span", "thread: span file"),
]


def part(comm, symbols):
    for prefix, name in THREADS:
        if comm.startswith(prefix):
            return name
    for name, patterns in RULES:
        if any(pattern in symbol for symbol in symbols for pattern in patterns):
            return name
    return "other"


def kind(frames):
    """Kernel (the sample's own address is the kernel's), allocator (mimalloc near the top of
    the stack), or the rest."""
    if frames and frames[0][0].startswith("ffffffff"):
        return "kernel"
    if any("mi_" in symbol or "mimalloc" in symbol for _, symbol in frames[:5]):
        return "allocator"
    return "other"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--duration", default="10s")
    parser.add_argument("--record", type=float, default=5)
    parser.add_argument("--cpus", default="0-1")
    parser.add_argument("--scenario", default="scenarios/quickstart.yaml")
    parser.add_argument("binary", nargs="?")
    args = parser.parse_args()
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    if shutil.which("perf") is None:
        sys.exit("lab-profile: needs `perf` (Debian: apt-get install linux-perf)")
    if args.binary is None:
        subprocess.run(["cargo", "build", "--quiet", "--release", "-p", "tracelab"], check=True)
        args.binary = "target/release/tracelab"
    work = tempfile.mkdtemp(prefix="lab-profile-")
    try:
        lab = subprocess.Popen(
            ["taskset", "-c", args.cpus, args.binary, "run", args.scenario, "--rate", str(args.rate),
             "--duration", args.duration, "--out", os.path.join(work, "run"), "--no-progress",
             "--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(3)
        data = os.path.join(work, "perf.data")
        subprocess.run(
            ["perf", "record", "-q", "-F", "499", "--call-graph", "dwarf,8192", "-p", str(lab.pid),
             "-o", data, "--", "sleep", str(args.record)],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, stderr = lab.communicate()
        if lab.returncode != 0:
            sys.exit(f"{args.binary} exited with {lab.returncode}:\n{stderr.decode(errors='replace')}")
        script = subprocess.run(
            ["perf", "script", "-i", data, "-F", "comm,tid,ip,sym", "--no-demangle"],
            check=True, capture_output=True, text=True, errors="replace").stdout
    finally:
        shutil.rmtree(work, ignore_errors=True)
    parts = collections.Counter()
    kinds = collections.Counter()
    detail = collections.Counter()
    total = 0
    for block in script.split("\n\n"):
        lines = block.strip().split("\n")
        if len(lines) < 2:
            continue
        comm = lines[0].split()[0]
        frames = [(line.split(None, 1) + [""])[:2] for line in (l.strip() for l in lines[1:])]
        name = part(comm, [symbol for _, symbol in frames])
        total += 1
        parts[name] += 1
        kinds[(name, kind(frames))] += 1
        if name == RULES[0][0]:
            inside = next((label for label, patterns in SDK_DETAIL
                           if any(p in symbol for _, symbol in frames for p in patterns)), "the rest")
            detail[inside] += 1
    print(f"lab-profile: {args.scenario} at {args.rate:g}/s, taskset -c {args.cpus}, "
          f"{total:,} samples over {args.record:g} s")
    print(f"{'share':>6}  {'part':44} kernel / allocator / other")
    for name, count in parts.most_common():
        split = " / ".join(f"{100 * kinds[(name, k)] / total:4.1f}" for k in ("kernel", "allocator", "other"))
        print(f"{100 * count / total:5.1f}%  {name:44} {split}")
    for label, count in detail.most_common():
        print(f"        of the span SDK's share: {label} {100 * count / total:.1f}%")
    kernel = sum(count for (name, k), count in kinds.items() if k == "kernel")
    print(f"kernel in all: {100 * kernel / total:.1f}%")


if __name__ == "__main__":
    main()
