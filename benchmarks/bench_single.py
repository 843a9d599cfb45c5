"""backend=single against the original experiment_runner package, no-op experiments, in and out of tmpfs.

    python benchmarks/bench_single.py [--n 10000] [--repeat 3] [--disk DIR] [--tmpfs DIR]
                                      [--original-python PATH | --original-source DIR] [--before SRC]

Both packages run the same 10,000 no-op experiments (pre, fit and post that
do nothing) with backend single and verbose off, each in a fresh Python
process, ours and the original interleaved, in a fresh folder on the disk
(``--disk``, by default the system's temporary folder) and on tmpfs
(``--tmpfs``, by default /dev/shm when it exists). Both write the same tree for
them (``<id>/config.json`` and results.jsonl; ours adds its run files). Timed
is the ``run_experiments`` call only (inside the call; the interpreter's
start and the imports are not), wall clock, best of ``--repeat``. Prints
experiments/s and the ratio ours / original. The issue's goals: ours at
least 1.5x the original, and at least 5,000/s on tmpfs. Asserts nothing.

The original package (github.com/sbuschjaeger/experiment_runner; the name is
taken on PyPI by another project) runs from a Python where it is installed:
``--original-python`` or the EXPERIMENT_RUNNER_ORIGINAL_PYTHON variable. Or
give ``--original-source`` (or EXPERIMENT_RUNNER_ORIGINAL_SOURCE), a checkout
of it: on first use the benchmark makes a virtual environment for it in
``~/.cache/experiment-runner-bench/original`` (numpy, tqdm and pymongo, which
it imports, from the package index, then the checkout). Without either, only
ours is measured.

``--before SRC`` times another version of this package too, in the same run
and interleaved: SRC is the folder holding its ``experiment_runner`` package
(the ``src`` folder of a checkout of an earlier commit), to see what a change
did while the machine's load and the disk swing alike for both.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "experiment-runner-bench" / "original"

#: Run in a fresh process by either package's Python: argv = import path of run_experiments, n, out_path.
RUNNER = """
import importlib, json, sys, time
module, _, name = sys.argv[1].rpartition(".")
run_experiments = getattr(importlib.import_module(module), name)
def pre(cfg): return None
def fit(cfg, returned_by_pre): return None
def post(cfg, returned_by_fit): return {}
cfgs = [{"i": i} for i in range(int(sys.argv[2]))]
basecfg = {"out_path": sys.argv[3], "pre": pre, "fit": fit, "post": post, "backend": "single", "verbose": False}
started = time.perf_counter()
run_experiments(basecfg, cfgs)
print(json.dumps(time.perf_counter() - started), file=sys.stderr)
"""

OURS = "experiment_runner.run_experiments"
ORIGINAL = "experiment_runner.experiment_runner.run_experiments"


def original_python(args):
    """The Python that runs the original package, made from ``--original-source`` on first use; None: none."""
    if args.original_python:
        return args.original_python
    if not args.original_source:
        return None
    python = CACHE / "bin" / "python"
    if not python.exists():
        print(f"making a virtual environment for the original package in {CACHE} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(CACHE)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "numpy", "tqdm", "pymongo", "setuptools", "wheel"], check=True)
        subprocess.run([*pip, "--no-build-isolation", args.original_source], check=True)
    return str(python)


def seconds(python, entry, n, base, folder, environment):
    """The time of one run_experiments call of ``n`` no-ops in a fresh process, out_path in a new folder."""
    with tempfile.TemporaryDirectory(dir=base) as root:
        done = subprocess.run([python, "-c", RUNNER, entry, str(n), str(Path(root) / "run")], cwd=folder,
                              env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode:
            raise SystemExit(f"{entry} failed:\n{done.stderr}")
        return json.loads(done.stderr.strip().splitlines()[-1])


def with_source_first(source):
    """This process's environment with ``source`` first on PYTHONPATH."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([source, os.environ.get("PYTHONPATH", "")])}


def compare(where, base, n, repeat, original, before=None):
    """Interleaved runs of ours (and ``before``) and the original in folders under ``base``; the best of each counts."""
    ours_env = with_source_first(str(Path(__file__).resolve().parents[1] / "src"))
    original_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    times = {"ours": [], "before": [], "original": []}
    with tempfile.TemporaryDirectory() as neutral:  # a working directory that shadows no package
        for _ in range(repeat):
            if before:
                times["before"].append(seconds(sys.executable, OURS, n, base, neutral, with_source_first(before)))
            times["ours"].append(seconds(sys.executable, OURS, n, base, neutral, ours_env))
            if original:
                times["original"].append(seconds(original, ORIGINAL, n, base, neutral, original_env))
    ours = min(times["ours"])
    line = f"{where} ({base}): {n} no-ops, inside the call: ours {ours:.2f} s ({n / ours:,.0f}/s)"
    if before:
        earlier = min(times["before"])
        line += f"   before {earlier:.2f} s ({n / earlier:,.0f}/s)"
        if original:
            line += f", {min(times['original']) / earlier:.2f}x the original"
    if original:
        theirs = min(times["original"])
        line += (f"   original {theirs:.2f} s ({n / theirs:,.0f}/s)   ours is {theirs / ours:.2f}x as fast "
                 f"(goal: at least 1.5x; on tmpfs at least 5,000/s)")
    print(line, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="number of no-op experiments")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, the best counts")
    parser.add_argument("--disk", default=tempfile.gettempdir(), help="a folder on the disk")
    parser.add_argument("--tmpfs", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                        help="a folder on tmpfs (none: skipped)")
    parser.add_argument("--original-python", default=os.environ.get("EXPERIMENT_RUNNER_ORIGINAL_PYTHON"),
                        help="a Python where the original package is installed")
    parser.add_argument("--original-source", default=os.environ.get("EXPERIMENT_RUNNER_ORIGINAL_SOURCE"),
                        help="a checkout of the original package, installed in a cached venv on first use")
    parser.add_argument("--before", help="the src folder of another version of this package, timed as well")
    args = parser.parse_args()
    original = original_python(args)
    if original is None:
        print("no original package given (--original-python or --original-source): measuring ours only")
    compare("disk", args.disk, args.n, args.repeat, original, args.before)
    if args.tmpfs:
        compare("tmpfs", args.tmpfs, args.n, args.repeat, original, args.before)


if __name__ == "__main__":
    main()
