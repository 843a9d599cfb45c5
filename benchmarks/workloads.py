"""What the benchmarks run, and the raw multiprocessing.Pool baseline they compare against.

Imported by the bench_*.py scripts next to it (``python benchmarks/bench_x.py``
puts this folder on sys.path).
"""
import json
import multiprocessing
import tempfile
import time
from pathlib import Path

from experiment_runner.experiment import Experiment, Stages, run_experiment
from experiment_runner.logs import redirect_file_descriptors

_STAGES = None  # set by raw_pool_time(); a global so the raw pool's forked workers see it


def noop(cfg, returned_by_pre):
    return None


def busy(cfg, returned_by_pre):
    """About cfg['ms'] milliseconds of CPU."""
    deadline = time.process_time() + cfg["ms"] / 1000
    while time.process_time() < deadline:
        pass


def _raw_task(experiment):
    return run_experiment(experiment, _STAGES, capture=redirect_file_descriptors)


def raw_pool_time(fit, cfgs, processes):
    """Seconds a raw Pool takes for the same run_experiment calls, one JSON line per result in the parent."""
    global _STAGES
    _STAGES = Stages(fit=fit)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        experiments = [Experiment(i, cfg, folder) for i, cfg in enumerate(cfgs)]
        with multiprocessing.Pool(processes) as pool, open(Path(folder) / "results.jsonl", "w") as results:
            for outcome in pool.imap_unordered(_raw_task, experiments):
                results.write(json.dumps({"experiment_id": outcome.experiment_id, "scores": outcome.scores}) + "\n")
                results.flush()
        return time.perf_counter() - started
