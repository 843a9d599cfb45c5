"""What the benchmarks run, and the raw multiprocessing.Pool baseline they compare against.

Imported by the bench_*.py scripts next to it (``python benchmarks/bench_x.py``
puts this folder on sys.path).
"""
import json
import multiprocessing
import os
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


def _minimal_tree_task(task):
    """What a raw Pool's task does for the minimal tree: a folder and a config.json, then the no-op."""
    experiment_id, cfg, out_path = task
    folder = os.path.join(out_path, str(experiment_id))
    os.mkdir(folder)
    with open(os.path.join(folder, "config.json"), "w") as config:
        config.write(json.dumps({**cfg, "experiment_id": experiment_id, "out_path": folder}))
    return experiment_id, noop(cfg, None) or {}


def raw_tree_pool_time(cfgs, processes, base=None):
    """Seconds a raw Pool takes to write the same minimal tree as a run: ``<id>/config.json`` per experiment
    and one results line each, written by the parent, in a fresh folder under ``base``.

    Tasks go out in chunks as ``Pool.map`` chunks them (its default chunksize), the pool's start included.
    """
    with tempfile.TemporaryDirectory(dir=base) as folder:
        started = time.perf_counter()
        tasks = [(i, cfg, folder) for i, cfg in enumerate(cfgs)]
        chunksize = max(1, -(-len(tasks) // (processes * 4)))
        with multiprocessing.Pool(processes) as pool, open(Path(folder) / "results.jsonl", "w") as results:
            for experiment_id, scores in pool.imap_unordered(_minimal_tree_task, tasks, chunksize):
                results.write(json.dumps({**cfgs[experiment_id], "experiment_id": experiment_id,
                                          "scores": scores}) + "\n")
                results.flush()
        return time.perf_counter() - started
