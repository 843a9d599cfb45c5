"""should_prune() per call, and the driver's look at the metrics files of experiments in flight (ray, slurm).

    python benchmarks/bench_prune.py [--calls 1000000] [--repeat 3] [--followed 1000] [--prunes 20]

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
stat each), in microseconds per experiment. Last, on backend single and
multiprocessing, ``--prunes`` times: from ``session.prune(id)`` (called on
the experiment's first metrics message) to its pruned Outcome in the driver,
for a stage that reports and asks every millisecond (the baseline: that
step). The goal: a per-call cost small enough for a training loop to ask at
every step. Asserts nothing.
"""
import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from experiment_runner import Pruned, report_metrics, should_prune
from experiment_runner.channel import Message, running
from experiment_runner.experiment import PRUNED, Experiment
from experiment_runner.launchers import get_launcher_class
from experiment_runner.launchers.metrics_follower import MetricsFollower
from experiment_runner.metrics import METRICS, PRUNE_MARKER, ask_to_prune, watching_prune_marker
from experiment_runner.runner import make_experiments
from experiment_runner.settings import RunSettings

#: The step of the stage whose prune latency is measured: it reports and asks once per step.
STEP_SECONDS = 0.001


def fit_until_pruned(cfg, _):
    for step in range(int(30 / STEP_SECONDS)):
        report_metrics(step, loss=1 / (step + 1))
        if should_prune():
            raise Pruned(f"step {step}")
        time.sleep(STEP_SECONDS)


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


def prune_latencies(root: Path, backend: str, prunes: int) -> list:
    """Seconds from session.prune(id) to the pruned Outcome, for ``prunes`` experiments run one after another."""
    settings = RunSettings.from_basecfg({"out_path": str(root / backend), "fit": fit_until_pruned, "verbose": False,
                                         "backend": backend, "num_workers": 1})
    Path(settings.out_path).mkdir(parents=True)
    asked = {}
    latencies = []
    with get_launcher_class(backend)(settings).session(settings.stages) as session:

        def on_message(message: Message) -> None:
            if message.kind == METRICS and message.experiment_id not in asked:
                asked[message.experiment_id] = time.perf_counter()
                session.prune(message.experiment_id)

        session.listener = on_message
        for experiment in make_experiments([{"i": i} for i in range(prunes)], settings):
            session.submit(experiment)
        for event in session.events():
            if isinstance(event, Message):
                on_message(event)
            elif event.status == PRUNED:
                latencies.append(time.perf_counter() - asked[event.experiment_id])
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--followed", type=int, default=1000)
    parser.add_argument("--prunes", type=int, default=20)
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
        print(f"from session.prune(id) to the pruned outcome, median of {args.prunes} (a step: "
              f"{STEP_SECONDS * 1e3:g} ms):")
        for backend in ("single", "multiprocessing"):
            latencies = prune_latencies(Path(folder), backend, args.prunes)
            print(f"  {backend:<16} {statistics.median(latencies) * 1e3:6.2f} ms  (max {max(latencies) * 1e3:.2f} ms, "
                  f"{len(latencies)} of {args.prunes} pruned)")


if __name__ == "__main__":
    main()
