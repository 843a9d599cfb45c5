"""Overhead of backend=ray against raw Ray tasks, Ray's start-up, and the driver's memory over a long sweep.

    python benchmarks/bench_ray.py [--w1 2000] [--w2 300] [--repeat 3] [--memory 20000]
                                   [--disk DIR] [--tmpfs /dev/shm] [--address HOST:PORT]

W1: many no-op experiments (pure overhead); W2: experiments of about 10 ms of
CPU each. Ours is the whole run_experiments call (the start-up checks, the
out_path tree, results.jsonl, the default in-flight window). Each runs in the
same process on the same Ray, interleaved, ``--repeat`` times; the best counts:

- "raw": raw Ray tasks running the very same run_experiment calls (the same
  files), all submitted at once, the driver writing one JSON line per result.
  ours / raw on disk is what the launcher and the driver add to the file work
  (issue 14's goal: at most 1.2x on W1).
- "bare": raw Ray tasks running the stage alone, no files at all. ours / bare
  with out_path on tmpfs (``--tmpfs``, default /dev/shm) is the whole cost of
  an experiment beyond Ray's own once the disk is out of the way (goal: at
  most 1.5x on W1).

On disk means ``--disk`` (default: a fresh folder in the current directory,
which on most machines is a disk while /tmp may be tmpfs).

Start-up: first of all, one small run starts its own embedded Ray, as a user's
run does, and the benchmark prints its "starting Ray ... ready in N s" line and
the run's wall time, which counts it. The other runs borrow the benchmark's Ray
(started once, or ``--address``), so they do not pay Ray's start-up.

``--memory N`` runs N no-op experiments once more and samples the driver's
resident memory (VmRSS) while they run: it prints the memory before the run
(the cfgs built), at each quarter of the run and at its peak, per experiment.
``--memory 100000`` takes a few minutes. Asserts nothing.
"""
import argparse
import contextlib
import io
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

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


def ours(fit: Callable, cfgs: List[Dict], out_path: Path, verbose: bool = False) -> float:
    started = time.perf_counter()
    summary = run_experiments({"out_path": str(out_path), "fit": fit, "backend": "ray", "verbose": verbose}, cfgs)
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


#: What each workload measures: label -> (how, where its out_path is: "disk" or "tmpfs").
RUNS = {"ours, disk": (ours, "disk"), "raw, disk": (raw, "disk"), "ours, tmpfs": (ours, "tmpfs"),
        "raw, tmpfs": (raw, "tmpfs"), "bare": (bare, "tmpfs")}


def compare(name: str, fit: Callable, cfgs: List[Dict], repeat: int, scratch: Dict[str, Path]) -> None:
    """Each run of RUNS ``repeat`` times, in an order rotated at each attempt; the best of each.

    The disk writes back what a run wrote (and removed) after it ended: ``os.sync`` between runs keeps that
    off the next run's time.
    """
    best = {label: float("inf") for label in RUNS}
    labels = list(RUNS)
    for attempt in range(repeat):
        for label in labels[attempt % len(labels):] + labels[:attempt % len(labels)]:
            how, where = RUNS[label]
            out_path = scratch[where] / f"{name}-{label}-{attempt}".replace(" ", "").replace(",", "-")
            best[label] = min(best[label], how(fit, cfgs, out_path))
            shutil.rmtree(out_path, ignore_errors=True)
            os.sync()
    n = len(cfgs)
    print(f"{name}: {n} experiments, best of {repeat}")
    for label in RUNS:
        print(f"  {label:11} {best[label]:7.2f} s  {n / best[label]:8.0f} experiments/s  "
              f"{best[label] / n * 1000:6.2f} ms each")
    print(f"  file work, ours / raw on disk = {best['ours, disk'] / best['raw, disk']:.2f}x "
          f"({(best['ours, disk'] - best['raw, disk']) / n * 1000:+.2f} ms per experiment; goal <= 1.2x); "
          f"on tmpfs {best['ours, tmpfs'] / best['raw, tmpfs']:.2f}x")
    print(f"  tmpfs, ours / bare = {best['ours, tmpfs'] / best['bare']:.2f}x "
          f"({(best['ours, tmpfs'] - best['bare']) / n * 1000:+.2f} ms per experiment; goal <= 1.5x)")


def start_up(scratch: Path, n: int = 10) -> None:
    """A run that starts its own embedded Ray: its "ready in" line and its wall time, which counts the start."""
    printed = io.StringIO()
    with contextlib.redirect_stderr(printed):
        seconds = ours(noop, [{"i": i} for i in range(n)], scratch / "start-up", verbose=True)
    shutil.rmtree(scratch / "start-up", ignore_errors=True)
    ready = re.search(r"^(starting Ray \.\.\. ready in [0-9.]+ s)$", printed.getvalue(), re.MULTILINE)
    wall = re.search(r"finished, in ([0-9.]+) s$", printed.getvalue(), re.MULTILINE)
    print(f"start-up: a run of {n} no-ops on its own embedded Ray printed "
          f"{ready[1] if ready else 'no ready line'!r}; its summary's wall time {wall[1] if wall else '?'} s "
          f"(the call took {seconds:.1f} s)")


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


def scratch_folders(disk: Optional[str], tmpfs: str) -> Dict[str, Path]:
    folders = {"disk": Path(tempfile.mkdtemp(prefix=".bench-ray-", dir=disk or Path.cwd()))}
    on_tmpfs = Path(tempfile.mkdtemp(prefix="bench-ray-", dir=tmpfs)) if Path(tmpfs).is_dir() else None
    folders["tmpfs"] = on_tmpfs or folders["disk"]
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--w1", type=int, default=2000, help="no-op experiments in W1 (0: skip)")
    parser.add_argument("--w2", type=int, default=300, help="10 ms experiments in W2 (0: skip)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory", type=int, default=20000, help="no-op experiments of the memory run (0: skip)")
    parser.add_argument("--disk", default=None, help="where the runs on disk write (default: the current directory)")
    parser.add_argument("--tmpfs", default="/dev/shm", help="where the runs on tmpfs write")
    parser.add_argument("--address", default=None, help="a Ray cluster to use instead of an embedded Ray")
    arguments = parser.parse_args()

    scratch = scratch_folders(arguments.disk, arguments.tmpfs)
    try:
        if arguments.address is None:
            start_up(scratch["disk"])
        ray.init(address=arguments.address, include_dashboard=False if arguments.address is None else None,
                 log_to_driver=False, logging_level="warning")
        print(f"Ray {ray.__version__}, cluster resources: {ray.cluster_resources()}, python {sys.version.split()[0]}")
        print(f"disk: {scratch['disk']}, tmpfs: {scratch['tmpfs']}")
        if arguments.w1:
            compare("W1 no-op", noop, [{"i": i} for i in range(arguments.w1)], arguments.repeat, scratch)
        if arguments.w2:
            compare("W2 10 ms", busy, [{"i": i, "ms": 10} for i in range(arguments.w2)], arguments.repeat, scratch)
        if arguments.memory:
            memory(arguments.memory, scratch["disk"])
    finally:
        for folder in set(scratch.values()):
            shutil.rmtree(folder, ignore_errors=True)
        ray.shutdown()


if __name__ == "__main__":
    main()
