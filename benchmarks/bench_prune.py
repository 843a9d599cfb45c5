"""should_prune() per call, and the driver's look at the metrics files of experiments in flight (ray, slurm).

    python benchmarks/bench_prune.py [--calls 1000000] [--repeat 3] [--followed 1000]

In this process, each ``--repeat`` times, interleaved, the best counted:

- **should_prune()** in each state a training loop meets: outside any
  experiment; inside one, nothing asked (every backend, no search); asked
  for another experiment (a pool worker's flag names an experiment that
  ended); watching the marker file of backends without a live channel (ray,
  slurm: a stat at most every 0.1 s); once asked;
- **baseline**: a Python function that returns False (the floor of any
  call), and ``os.path.exists`` of the marker (what looking at every call
  would cost).

Then the driver's side on ray and slurm: one look (MetricsFollower.messages)
at ``--followed`` experiments in flight whose metrics files did not grow (a
stat each), in microseconds per experiment. The goal: a per-call cost small
enough for a training loop to ask at every step. Asserts nothing.
"""
import argparse
import os
import tempfile
import time
from pathlib import Path

from experiment_runner import should_prune
from experiment_runner.channel import running
from experiment_runner.experiment import Experiment
from experiment_runner.launchers.metrics_follower import MetricsFollower
from experiment_runner.metrics import PRUNE_MARKER, ask_to_prune, watching_prune_marker


def nothing() -> bool:
    return False


def loop(function, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        function()
    return time.perf_counter() - started


def per_call(folder: str, calls: int) -> dict:
    """Seconds per call of each variant (one pass)."""
    marker = f"{folder}/{PRUNE_MARKER}"
    times = {"baseline: a function returning False": loop(nothing, calls),
             "baseline: os.path.exists(marker) per call": loop(lambda: os.path.exists(marker), calls),
             "outside any experiment": loop(should_prune, calls)}
    with running(7):
        times["running, nothing asked"] = loop(should_prune, calls)
        ask_to_prune(6)
        times["running, another experiment asked"] = loop(should_prune, calls)
        ask_to_prune(None)
        with watching_prune_marker(folder):
            times["running, watching the marker (ray, slurm)"] = loop(should_prune, calls)
        ask_to_prune(7)
        times["running, asked"] = loop(should_prune, calls)
        ask_to_prune(None)
    return {name: seconds / calls for name, seconds in times.items()}


def follower_look(root: Path, followed: int) -> float:
    """Seconds per followed experiment of one look at unchanged metrics files."""
    follower = MetricsFollower()
    for experiment_id in range(followed):
        folder = root / str(experiment_id)
        folder.mkdir(exist_ok=True)
        (folder / "metrics.jsonl").write_text('{"step": 0, "time": 0.1, "loss": 1.0}\n')
        follower.follow(Experiment(experiment_id, {}, str(root)))
    started = time.perf_counter()
    assert not list(follower.messages())
    return (time.perf_counter() - started) / followed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--followed", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        best: dict = {}
        for _ in range(args.repeat):
            for name, seconds in per_call(folder, args.calls).items():
                best[name] = min(best.get(name, seconds), seconds)
        floor = best["baseline: a function returning False"]
        print(f"should_prune() per call, best of {args.repeat} x {args.calls} calls:")
        for name, seconds in best.items():
            print(f"  {name:<45} {seconds * 1e9:8.1f} ns  ({seconds / floor:4.1f} x the empty function)")
        look = min(follower_look(Path(folder), args.followed) for _ in range(args.repeat))
        print(f"driver (ray, slurm): one look at {args.followed} experiments in flight: {look * 1e6:.2f} us per "
              f"experiment, every 0.5 s")


if __name__ == "__main__":
    main()
