"""report_metrics per call, against appending the same JSON line by hand, on disk and on tmpfs.

    python benchmarks/bench_metrics.py [--calls 20000] [--repeat 3] [--disk DIR] [--tmpfs DIR]
                                       [--workers 2]

In this process, each ``--repeat`` times, interleaved, the best counted:

- **ours**: ``report_metrics(step, loss=..., acc=...)`` inside a running
  repetition (as where no backend carries messages: ray, slurm);
- **raw**: what a training loop would write by hand with the same guarantees
  (a whole line, visible to another reader at once): open the file for
  appending, ``json.dumps`` the line, write it, close;
- **kept open**: the same line written to a file opened once, buffered, and
  closed at the end: the floor, which gives neither guarantee.

Then through a run of ``backend=multiprocessing`` (``--workers`` workers):
one experiment per worker whose fit makes ``--calls`` calls of
report_metrics, against the same experiments appending raw lines: here ours
also sends each line to the driver, which reads it as a Message. Printed:
microseconds per call and ours / raw. The goal: a per-call cost small enough
for a training loop to call it every step. Asserts nothing.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from experiment_runner import report_metrics, run_experiments
from experiment_runner.metrics import repetition_running


def ours(folder: str, calls: int) -> None:
    with repetition_running(folder, 0):
        for step in range(calls):
            report_metrics(step, loss=1.0 / (step + 1), acc=step / calls)


def raw(folder: str, calls: int) -> None:
    path = f"{folder}/metrics.jsonl"
    started = time.perf_counter()
    for step in range(calls):
        line = {"step": step, "time": time.perf_counter() - started, "loss": 1.0 / (step + 1), "acc": step / calls}
        with open(path, "a") as f:
            f.write(json.dumps(line) + "\n")


def kept_open(folder: str, calls: int) -> None:
    started = time.perf_counter()
    with open(f"{folder}/metrics.jsonl", "a") as f:
        for step in range(calls):
            line = {"step": step, "time": time.perf_counter() - started, "loss": 1.0 / (step + 1),
                    "acc": step / calls}
            f.write(json.dumps(line) + "\n")


def fit_ours(cfg, _):
    calls = cfg["calls"]
    for step in range(calls):
        report_metrics(step, loss=1.0 / (step + 1), acc=step / calls)


def fit_raw(cfg, _):
    raw(cfg["out_path"], cfg["calls"])


def fit_nothing(cfg, _):
    return None


def timed(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def in_process(root: Path, calls: int, repeat: int) -> dict:
    best = {}
    for round_number in range(repeat):
        for name, function in [("ours", ours), ("raw", raw), ("kept open", kept_open)]:
            folder = root / f"{name.replace(' ', '_')}{round_number}"
            folder.mkdir()
            best[name] = min(best.get(name, float("inf")), timed(function, str(folder), calls))
            shutil.rmtree(folder)
    return best


def through_a_pool(root: Path, calls: int, repeat: int, workers: int) -> dict:
    best = {}
    for round_number in range(repeat):
        for name, fit in [("ours", fit_ours), ("raw", fit_raw), ("no calls", fit_nothing)]:
            out_path = root / f"pool_{name.replace(' ', '_')}{round_number}"
            basecfg = {"out_path": str(out_path), "fit": fit, "backend": "multiprocessing",
                       "num_workers": workers, "verbose": False}
            seconds = timed(run_experiments, basecfg, [{"calls": calls, "i": i} for i in range(workers)])
            best[name] = min(best.get(name, float("inf")), seconds)
            shutil.rmtree(out_path)
    return best


def show(where: str, best: dict, calls: int, subtract: float = 0.0) -> None:
    per_call = {name: (seconds - subtract) / calls * 1e6 for name, seconds in best.items()}
    cells = ", ".join(f"{name} {micro:.1f} us" for name, micro in per_call.items())
    print(f"{where}: {cells}; ours / raw {per_call['ours'] / per_call['raw']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--disk", default=None, help="a folder on the disk (default: a fresh one in the cwd)")
    parser.add_argument("--tmpfs", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    places = [("disk", args.disk or "."), *([("tmpfs", args.tmpfs)] if args.tmpfs else [])]
    for where, parent in places:
        root = Path(tempfile.mkdtemp(prefix="bench_metrics_", dir=parent))
        try:
            show(f"{where}, in process, per call", in_process(root, args.calls, args.repeat), args.calls)
            pool = through_a_pool(root, args.calls, args.repeat, args.workers)
            baseline = pool.pop("no calls")
            show(f"{where}, multiprocessing ({args.workers} workers, {args.calls} calls each), per call beyond "
                 f"the run's own {baseline:.2f} s", pool, args.calls, subtract=baseline)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
