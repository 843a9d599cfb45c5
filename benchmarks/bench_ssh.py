"""Overhead of backend=malocher on two loopback SSH machines, against a raw multiprocessing.Pool.

    python benchmarks/bench_ssh.py [--slots 1] [--w1 1000] [--w2 200]

Starts two OpenSSH servers (127.0.0.1 and 127.0.0.2, as in the tests: needs
sshd and asyncssh). W1: many no-op experiments (pure overhead); W2: fewer
experiments of about 10 ms of CPU each. Ours is the whole run_experiments
call: connecting, starting a worker per machine, a job file and a forked
process per experiment, the out_path tree, results.jsonl. The baseline, in
the same run, is a raw multiprocessing.Pool with as many processes as the
machines have slots, running the very same run_experiment calls and writing
one JSON line per result. Prints the fixed cost of a run (one no-op
experiment), throughput, the ratio ours / raw and the overhead per
experiment; asserts nothing.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import sshd  # noqa: E402  (the tests' loopback SSH machines)
from experiment_runner import run_experiments  # noqa: E402
from workloads import busy, noop, raw_pool_time  # noqa: E402

def ours(cluster, fit, cfgs, slots):
    with tempfile.TemporaryDirectory() as folder:
        settings = cluster.settings(Path(folder) / "jobs", malocher_slots=slots)
        started = time.perf_counter()
        run_experiments({"out_path": str(Path(folder) / "run"), "fit": fit, "verbose": False, **settings}, cfgs)
        return time.perf_counter() - started


def compare(cluster, name, fit, cfgs, slots, fixed):
    processes = slots * len(cluster.machines)
    raw_time = raw_pool_time(fit, cfgs, processes)
    our_time = ours(cluster, fit, cfgs, slots)
    n = len(cfgs)
    print(f"{name}: {n} experiments, {len(cluster.machines)} machines x {slots} slots")
    print(f"  ours {our_time:.2f} s ({n / our_time:,.0f}/s)   raw Pool({processes}) {raw_time:.2f} s "
          f"({n / raw_time:,.0f}/s)   ratio {our_time / raw_time:.2f}x")
    print(f"  overhead per experiment {(our_time - raw_time) / n * 1000:+.2f} ms "
          f"({(our_time - fixed - raw_time) / n * 1000:+.2f} ms without the fixed cost of a run)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=1, help="experiments at once per machine")
    parser.add_argument("--w1", type=int, default=1000, help="number of no-op experiments")
    parser.add_argument("--w2", type=int, default=200, help="number of 10 ms experiments")
    args = parser.parse_args()
    print(f"usable CPUs: {len(os.sched_getaffinity(0))}")
    with tempfile.TemporaryDirectory() as folder:
        cluster = sshd.Cluster(Path(folder))
        try:
            fixed = min(ours(cluster, noop, [{}], args.slots) for _ in range(3))
            print(f"fixed cost of a run (connect to 2 machines, start their workers, one no-op experiment, "
                  f"stop): {fixed * 1000:.0f} ms")
            compare(cluster, "W1 no-op", noop, [{"i": i} for i in range(args.w1)], args.slots, fixed)
            compare(cluster, "W2 10 ms of CPU", busy, [{"ms": 10} for _ in range(args.w2)], args.slots, fixed)
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
