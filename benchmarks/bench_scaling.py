"""Throughput against the size of the sweep: 1,000, 10,000 and 100,000 no-op experiments.

    python benchmarks/bench_scaling.py [--sizes 1000,10000,100000] [--workers 2] [--backend multiprocessing]
                                       [--repeat 1]

Runs ``run_experiments`` over N no-op experiments with out_path on /dev/shm
(a tmpfs: the disk's own behaviour is left out) and prints each size's rate
inside the call and its ratio to the rate of the smallest size, measured in
the same run: that is the baseline, as a driver whose cost per experiment did
not grow with the sweep keeps the same rate. The issue's goal: every ratio
within 20 % of 1. The smallest run also pays most for what a run does once
(starting the workers: a large share of 1,000 no-ops), so each size's ratio to
the size before is printed too. The fixed part is measured as well (a run
of one experiment: checks, records, two fresh worker interpreters), and each
size's rate with it taken out, ``(N - 1) / (time(N) - time(1))``: what the
driver sustains per experiment, which is what must not fall as sweeps grow.
A raw multiprocessing.Pool writing the same minimal tree (workloads.py) runs
each size too, interleaved: its own ratio to its smallest size shows how flat
a pool with no launcher around it is on the same machine (it pays a start-up
too, a fork of the driver's process). Sizes are run smallest first, each
``--repeat`` times, the best time counting; asserts nothing.
"""
import argparse
import tempfile
import time
from pathlib import Path

from experiment_runner import run_experiments
from workloads import noop, raw_tree_pool_time


SHM = "/dev/shm" if Path("/dev/shm").is_dir() else None


def seconds(n, backend, workers):
    with tempfile.TemporaryDirectory(dir=SHM) as folder:
        cfgs = [{"x": i} for i in range(n)]
        started = time.perf_counter()
        run_experiments({"out_path": str(Path(folder) / "run"), "fit": noop, "backend": backend,
                         "num_workers": workers, "verbose": False}, cfgs)
        return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="numbers of experiments, comma-separated")
    parser.add_argument("--backend", default="multiprocessing")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each size, the best counts")
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    fixed = min(seconds(1, args.backend, args.workers) for _ in range(max(3, args.repeat)))
    print(f"a run of 1 experiment ({args.backend}, /dev/shm): {fixed * 1000:.0f} ms (the fixed part of every run)")
    raw_fixed = min(raw_tree_pool_time([{"x": 0}], args.workers, SHM) for _ in range(max(3, args.repeat)))
    print(f"raw Pool, the same tree, 1 task: {raw_fixed * 1000:.0f} ms")
    baseline = previous = baseline_sustained = raw_baseline = None
    for n in sizes:
        times, raw_times = [], []
        for _ in range(args.repeat):
            times.append(seconds(n, args.backend, args.workers))
            raw_times.append(raw_tree_pool_time([{"x": i} for i in range(n)], args.workers, SHM))
        took, raw_took = min(times), min(raw_times)
        best, sustained, raw = n / took, (n - 1) / max(took - fixed, 1e-9), n / raw_took
        baseline, baseline_sustained = baseline or best, baseline_sustained or sustained
        raw_baseline = raw_baseline or raw
        step = f", to the size before: {best / previous:.2f}" if previous else ""
        print(f"{n:>9,} experiments ({args.backend}, /dev/shm): {best:,.0f}/s inside the call  "
              f"ratio to {sizes[0]:,}: {best / baseline:.2f}{step} (goal: 0.80 to 1.20); without the fixed part "
              f"{sustained:,.0f}/s, ratio {sustained / baseline_sustained:.2f}")
        print(f"{'':>9}   raw Pool, same tree: {raw:,.0f}/s, ratio to {sizes[0]:,}: {raw / raw_baseline:.2f}; "
              f"ours / raw: {took / raw_took:.2f}x")
        previous = best


if __name__ == "__main__":
    main()
