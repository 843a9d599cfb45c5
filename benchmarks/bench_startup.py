"""How long `experiment-runner --help` and `--cfg` take to start, against `python -c pass`.

    python benchmarks/bench_startup.py

Runs each command several times in a fresh interpreter, in the repository's
root (so conf/config.yaml is composed), and prints the best wall time of each
and its ratio to the bare interpreter start-up measured in the same run. A
fourth line shows the cost of composing and expanding a sweep (`--list` with a
1,000-experiment grid). Nothing is asserted: start-up is watched, not gated.
"""
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-c", "from experiment_runner.cli import console_main; console_main()"]


def best_of(repeats, argv):
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    return min(times)


def main():
    baseline = best_of(10, [sys.executable, "-c", "pass"])
    print(f"python -c pass (baseline): {baseline * 1000:.0f} ms")
    for label, extra in [
        ("experiment-runner --help", ["--help"]),
        ("experiment-runner --cfg", ["--cfg"]),
        ("experiment-runner --list (1,000 experiments)", ["--list", "+a=range(100)", "+b=range(10)"]),
    ]:
        took = best_of(5, CLI + extra)
        print(f"{label}: {took * 1000:.0f} ms  ratio {took / baseline:.1f}x")


if __name__ == "__main__":
    main()
