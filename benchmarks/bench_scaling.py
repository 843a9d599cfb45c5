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
Sizes are run smallest first, each ``--repeat`` times, the best time
counting; asserts nothing.
"""
import argparse
import tempfile
import time
from pathlib import Path

from experiment_runner import run_experiments
from workloads import noop


def seconds(n, backend, workers):
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as folder:
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
    baseline = previous = baseline_sustained = None
    for n in sizes:
        took = min(seconds(n, args.backend, args.workers) for _ in range(args.repeat))
        best, sustained = n / took, (n - 1) / max(took - fixed, 1e-9)
        baseline, baseline_sustained = baseline or best, baseline_sustained or sustained
        step = f", to the size before: {best / previous:.2f}" if previous else ""
        print(f"{n:>9,} experiments ({args.backend}, /dev/shm): {best:,.0f}/s inside the call  "
              f"ratio to {sizes[0]:,}: {best / baseline:.2f}{step} (goal: 0.80 to 1.20); without the fixed part "
              f"{sustained:,.0f}/s, ratio {sustained / baseline_sustained:.2f}")
        previous = best


if __name__ == "__main__":
    main()
