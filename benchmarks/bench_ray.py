"""Overhead of backend=ray against raw Ray tasks, and the driver's memory over a long sweep.

    python benchmarks/bench_ray.py [--w1 2000] [--w2 300] [--repeat 3] [--memory 20000] [--address HOST:PORT]

W1: many no-op experiments (pure overhead); W2: experiments of about 10 ms of
CPU each. Ours is the whole run_experiments call (the start-up checks, the
out_path tree, results.jsonl, at most ``ray_max_in_flight`` tasks in flight).
The baseline, in the same run and on the same Ray, is raw Ray tasks running
the very same run_experiment calls, all submitted at once, with the driver
writing one JSON line per result: the difference is what the launcher and the
driver add. A third line, "bare", is raw tasks running the stage alone, with
no files at all. Each is run ``--repeat`` times, interleaved; the best counts.

``--memory N`` runs N no-op experiments once more and samples the driver's
resident memory (VmRSS) while they run: it prints the memory before the run
(the cfgs built), at each quarter of the run and at its peak, per experiment.
``--memory 100000`` takes a few minutes. Asserts nothing.

Ray starts once, embedded, for the whole benchmark (or connects to
``--address``); the runs borrow that connection, so no run pays Ray's start-up.
"""
import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

# The embedded Ray authenticates with a token: keep it in this process's environment, not in ~/.ray.
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ray  # noqa: E402

from experiment_runner import run_experiments  # noqa: E402
from experiment_runner.experiment import Experiment, Stages, run_experiment  # noqa: E402
from experiment_runner.logs import redirect_file_descriptors  # noqa: E402
from workloads import busy, noop  # noqa: E402


@ray.remote(max_retries=0)
def raw_experiment(experiment: Experiment, stages: Stages):
    return run_experiment(experiment, stages, capture=redirect_file_descriptors)


@ray.remote(max_retries=0)
def bare_stage(fit: Callable, cfg: Dict) -> None:
    return fit(cfg, None)


def ours(fit: Callable, cfgs: List[Dict], out_path: Path) -> float:
    started = time.perf_counter()
    summary = run_experiments({"out_path": str(out_path), "fit": fit, "backend": "ray", "verbose": False}, cfgs)
    assert summary.finished == len(cfgs), summary
    return time.perf_counter() - started


def raw(fit: Callable, cfgs: List[Dict], out_path: Path) -> float:
    started = time.perf_counter()
    out_path.mkdir(parents=True)
    stages = ray.put(Stages(fit=fit))
    refs = [raw_experiment.remote(Experiment(i, cfg, str(out_path)), stages) for i, cfg in enumerate(cfgs)]
    with open(out_path / "results.jsonl", "w") as results:
        for ref in refs:
            outcome = ray.get(ref)
            results.write(json.dumps({"experiment_id": outcome.experiment_id, "scores": outcome.scores}) + "\n")
    return time.perf_counter() - started


def bare(fit: Callable, cfgs: List[Dict], out_path: Path) -> float:
    started = time.perf_counter()
    ray.get([bare_stage.remote(fit, cfg) for cfg in cfgs])
    return time.perf_counter() - started


def compare(name: str, fit: Callable, cfgs: List[Dict], repeat: int, scratch: Path) -> None:
    best = {"ours": float("inf"), "raw": float("inf"), "bare": float("inf")}
    for attempt in range(repeat):
        for label, runner in (("ours", ours), ("raw", raw), ("bare", bare)):
            out_path = scratch / f"{name}-{label}-{attempt}"
            best[label] = min(best[label], runner(fit, cfgs, out_path))
            shutil.rmtree(out_path, ignore_errors=True)
    n = len(cfgs)
    print(f"{name}: {n} experiments, best of {repeat}")
    for label in ("ours", "raw", "bare"):
        print(f"  {label:5} {best[label]:7.2f} s  {n / best[label]:8.0f} experiments/s  "
              f"{best[label] / n * 1000:6.2f} ms each")
    extra = (best["ours"] - best["raw"]) / n * 1000
    print(f"  ours / raw = {best['ours'] / best['raw']:.2f}x ({extra:+.2f} ms per experiment); "
          f"ours / bare = {best['ours'] / best['bare']:.2f}x")


def resident_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class MemorySampler(threading.Thread):
    """Samples this process's resident memory every ``interval`` seconds until stopped."""

    def __init__(self, interval: float = 0.2):
        super().__init__(daemon=True)
        self.interval = interval
        self.samples: List[Tuple[float, int]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.samples.append((time.perf_counter(), resident_bytes()))
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
        self.samples.append((time.perf_counter(), resident_bytes()))


def memory(n: int, scratch: Path) -> None:
    cfgs = [{"i": i} for i in range(n)]
    before = resident_bytes()
    sampler = MemorySampler()
    sampler.start()
    try:
        seconds = ours(noop, cfgs, scratch / "memory")
    finally:
        sampler.stop()
        shutil.rmtree(scratch / "memory", ignore_errors=True)
    start, end = sampler.samples[0][0], sampler.samples[-1][0]
    quarters = []
    for fraction in (0.25, 0.5, 0.75, 1.0):
        at = start + fraction * (end - start)
        quarters.append(next(rss for moment, rss in sampler.samples if moment >= at - 1e-9))
    peak = max(rss for _, rss in sampler.samples)
    mb = 1e6
    print(f"driver memory, {n} no-op experiments in {seconds:.1f} s ({n / seconds:.0f} experiments/s):")
    print(f"  before the run (cfgs built): {before / mb:.0f} MB")
    print("  at 25/50/75/100% of the run: " + " / ".join(f"{rss / mb:.0f}" for rss in quarters) + " MB")
    print(f"  peak: {peak / mb:.0f} MB, {(peak - before) / n:.0f} bytes per experiment above the start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--w1", type=int, default=2000, help="no-op experiments in W1 (0: skip)")
    parser.add_argument("--w2", type=int, default=300, help="10 ms experiments in W2 (0: skip)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory", type=int, default=20000, help="no-op experiments of the memory run (0: skip)")
    parser.add_argument("--address", default=None, help="a Ray cluster to use instead of an embedded Ray")
    arguments = parser.parse_args()

    ray.init(address=arguments.address, include_dashboard=False if arguments.address is None else None,
             log_to_driver=False, logging_level="warning")
    scratch = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    try:
        print(f"Ray {ray.__version__}, cluster resources: {ray.cluster_resources()}, python {sys.version.split()[0]}")
        if arguments.w1:
            compare("W1 no-op", noop, [{"i": i} for i in range(arguments.w1)], arguments.repeat, scratch)
        if arguments.w2:
            compare("W2 10 ms", busy, [{"i": i, "ms": 10} for i in range(arguments.w2)], arguments.repeat, scratch)
        if arguments.memory:
            memory(arguments.memory, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        ray.shutdown()


if __name__ == "__main__":
    main()
