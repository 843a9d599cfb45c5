"""An adaptive search's overhead per trial, against Optuna's own ``study.optimize`` on the same no-op objective.

    python benchmarks/bench_search.py [--trials 300] [--repeat 3] [--workers 2] [--dir DIR]

Each ``--repeat`` times, interleaved, the best counted, with the random
sampler (the cheapest: what is left is the cost of the machinery, not of the
sampler's model) and the same seed:

- **ours**: ``run_experiments(basecfg, {"x": interval(-1, 1)}, search=...)``
  with ``--trials`` trials of a stage that returns ``x ** 2``, on backend
  single and on multiprocessing (``--workers``, as many trials at once): each
  trial an experiment with its folder, config.json, its lines in
  experiments.jsonl and results.jsonl, the study in a journal file;
- **optuna, journal**: ``study.optimize`` of the same objective with the same
  journal storage: Optuna's own cost for a study that survives a crash;
- **optuna, in memory**: the same without storage: Optuna's floor.

Printed: milliseconds per trial, and ours minus Optuna's (journal). The goal
(issue 15): on multiprocessing, at most 2 ms per trial more than Optuna's own
cost. The run's start (the backend's pool of workers, about 0.3 s) counts in
ours: a longer search spreads it thinner. Asserts nothing.
"""
import argparse
import shutil
import tempfile
import time
from pathlib import Path

import optuna

from experiment_runner import interval, run_experiments


def fit(cfg):
    return cfg["x"] ** 2


def post(cfg, value):
    return {"loss": value}


def ours(folder: Path, trials: int, backend: str, workers: int) -> float:
    basecfg = {"fit": fit, "post": post, "out_path": str(folder), "verbose": False, "backend": backend}
    if backend == "multiprocessing":
        basecfg["num_workers"] = workers
    started = time.perf_counter()
    run_experiments(basecfg, {"x": interval(-1.0, 1.0)},
                    search={"name": "optuna", "n_trials": trials, "sampler": "random", "seed": 0})
    return time.perf_counter() - started


def plain(folder: Path, trials: int, journal: bool) -> float:
    storage = None
    if journal:
        folder.mkdir(parents=True)
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(folder / "j.log")))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), storage=storage)
    started = time.perf_counter()
    study.optimize(lambda trial: trial.suggest_float("x", -1.0, 1.0) ** 2, n_trials=trials)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dir", help="where the runs go (default: a temporary folder)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    root = Path(tempfile.mkdtemp(dir=args.dir))
    kinds = {
        "ours, backend single": lambda f: ours(f, args.trials, "single", args.workers),
        f"ours, multiprocessing ({args.workers} at once)":
            lambda f: ours(f, args.trials, "multiprocessing", args.workers),
        "optuna, journal": lambda f: plain(f, args.trials, journal=True),
        "optuna, in memory": lambda f: plain(f, args.trials, journal=False),
    }
    best = {name: float("inf") for name in kinds}
    try:
        for round_number in range(args.repeat):
            for index, (name, measure) in enumerate(kinds.items()):
                folder = root / f"{round_number}_{index}"
                best[name] = min(best[name], measure(folder))
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    per_trial = {name: seconds / args.trials * 1e3 for name, seconds in best.items()}
    print(f"{args.trials} trials of a no-op objective, random sampler, best of {args.repeat}:")
    for name, ms in per_trial.items():
        print(f"  {name:<36} {ms:7.2f} ms/trial")
    for name in list(kinds)[:2]:
        print(f"  {name} - optuna, journal: {per_trial[name] - per_trial['optuna, journal']:+.2f} ms/trial")


if __name__ == "__main__":
    main()
