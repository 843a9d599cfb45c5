"""Runs for the browser tests of ``experiment-runner serve`` (test_serve_browser.py), and a real server in a
subprocess.

The stages live in an importable module so that a run started in another
process (the live run) can name them.
"""
import contextlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

from experiment_runner import report_metrics, run_experiments
from serve_runs import SRC, TESTS

#: What the sweep's experiments fail with: five identical errors and one of its own.
SAME_ERROR, OTHER_ERROR = "learning rate too large", "depth 7 is not supported"
SWEEP = [{"lr": lr, "depth": depth} for lr in (0.001, 0.01, 0.1) for depth in (1, 2, 3)]
FAILING = [{"lr": 10.0, "depth": depth} for depth in (1, 2, 3, 4, 5)] + [{"lr": 0.01, "depth": 7}]


def accuracy(lr: float, depth: int, run_id: int) -> float:
    """Highest at lr=0.01 and the deepest model, lowest at lr=0.1, depth=1; repetition r adds 0.01 * r."""
    return round(0.9 - {0.001: 0.1, 0.01: 0.0, 0.1: 0.2}[lr] - 0.05 * (3 - depth) + 0.01 * run_id, 6)


def fit(cfg, _):
    if cfg["lr"] > 1:
        raise ValueError(SAME_ERROR)
    if cfg["depth"] > 5:
        raise ValueError(OTHER_ERROR)
    for step in range(4):
        report_metrics(step, loss=round(1.0 / (step + 1) / cfg["depth"], 6))
    print(f"fitted lr={cfg['lr']} depth={cfg['depth']}")
    return accuracy(cfg["lr"], cfg["depth"], cfg["run_id"])


def post(cfg, value):
    return {"accuracy": value, "loss": round(1 - value, 6)}


def make_sweep(out_path: Path, repetitions: int = 2, failing: bool = True) -> Path:
    """A finished run: 9 experiments x ``repetitions``, and (``failing``) 6 failed ones, 5 of them alike."""
    cfgs = SWEEP + (FAILING if failing else [])
    run_experiments({"out_path": str(out_path), "fit": fit, "post": post, "verbose": False,
                     "repetitions": repetitions}, cfgs)
    return out_path


def wait_for_gate(cfg, _):
    """Block until the file ``<gates>/<experiment_id>`` exists: the test decides when each experiment ends."""
    gate = Path(cfg["gates"]) / str(cfg["experiment_id"])
    while not gate.exists():
        time.sleep(0.05)
    return cfg["x"] * 2


def post_score(cfg, value):
    return {"score": value}


def start_gated_run(out_path: Path, gates: Path, experiments: int) -> subprocess.Popen:
    """A run in another process whose experiment i finishes once the file gates/i exists."""
    code = (f"from browser_runs import gated_run; gated_run({str(out_path)!r}, {str(gates)!r}, {experiments})")
    return subprocess.Popen([sys.executable, "-c", code], env=_environment(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def gated_run(out_path: str, gates: str, experiments: int) -> None:
    run_experiments({"out_path": out_path, "fit": wait_for_gate, "post": post_score, "verbose": False},
                    [{"x": x, "gates": gates} for x in range(experiments)])


def _environment() -> dict:
    """The code under test first on the path of a subprocess, and the tests' modules importable."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)])}


@contextlib.contextmanager
def served(path: Path, *options: str) -> Iterator[str]:
    """``experiment-runner serve PATH --port 0 [options]`` in a subprocess; yields the address it printed."""
    process = subprocess.Popen([sys.executable, "-m", "experiment_runner", "serve", str(path), "--port", "0",
                                *options],
                               env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        match = re.search(r"at (http://\S+)", line)
        if not match:
            raise RuntimeError(f"serve printed {line!r}; stderr: {process.stderr.read()}")
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
        process.stderr.close()
