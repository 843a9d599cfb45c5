"""An adaptive search's quality against plain Optuna: the best value it finds, and the steps pruning saves.

    python benchmarks/bench_search_quality.py [--seeds 5] [--trials 100] [--in-flight 4]
                                              [--pruning-seeds 5] [--dir DIR]

1. **Parity** on the 6-dimensional Hartmann function (minimum -3.32237 at a
   known point), ``--trials`` trials of TPE (Optuna's defaults, constant_liar
   included) with seeds 0..``--seeds``-1, each seed run by each side in turn:

   - ours, backend single, one trial at a time (``max_in_flight=1``) against
     ``optuna.create_study(sampler=TPESampler(seed=s)).optimize``: the
     median over seeds of the best value after the last trial, and their
     difference; with the same sampler, seed and order of parameters the two
     ask the same points, so the difference is 0 when nothing is lost on the
     way (a value rounded, a parameter in another order, a seed unused);
   - ours with ``--in-flight`` trials at once on backend multiprocessing (as
     many workers) against Optuna's own parallel TPE with as many trials in
     flight: ask-and-tell keeping ``--in-flight`` trials asked and telling the
     oldest first, the same TPESampler (constant_liar=True, the default of
     both). Optuna's documentation gives no figure for how much parallel
     TPE loses against sequential TPE (TPESampler's ``constant_liar`` and
     the "Easy Parallelization" tutorial describe it, without numbers), so
     the spread is measured here: the range, over the seeds, of Optuna's
     own parallel best values. Ours is within it when its median lies
     inside that range.

2. **Pruning** on a synthetic learning-curve workload: 50 trials of 20 steps
   each; a trial's loss falls from its start towards its configuration's
   final value, which decides the ranking from the first steps on (bad
   configurations are recognisable early). Each step calls
   ``report_metrics`` and ``should_prune``. Ours with Optuna's
   SuccessiveHalvingPruner against ours with no pruner, same TPE seed
   (backend single, one trial at a time); and plain Optuna with the same
   pruner for reference. TPE learns from the pruned trials, so with and without
   the pruner it asks other configurations; the same pair with a random
   sampler, which asks the same configurations either way, measures the
   pruner alone. Printed: the steps run in all (counted from each
   experiment's metrics.jsonl) and the best final value, median over
   ``--pruning-seeds`` seeds. Goal (issue 15): at least half of the steps
   saved, with the best final value no worse.

Asserts nothing. About two minutes on a busy two-core machine.
"""
import argparse
import json
import math
import shutil
import statistics
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Callable, Dict, List

import optuna

from experiment_runner import Pruned, int_interval, interval, report_metrics, run_experiments, should_prune

#: The 6-dimensional Hartmann function: its four bumps (alpha, A, P), as usually given.
ALPHA = [1.0, 1.2, 3.0, 3.2]
A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
P = [[0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886], [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
     [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650], [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381]]
HARTMANN_MINIMUM = -3.32237
DIMENSIONS = [f"x{i}" for i in range(6)]
#: The learning-curve workload: trials, steps per trial.
CURVE_TRIALS, CURVE_STEPS = 50, 20


def hartmann6(x: List[float]) -> float:
    return -sum(alpha * math.exp(-sum(a * (xi - p) ** 2 for a, xi, p in zip(row, x, prow)))
                for alpha, row, prow in zip(ALPHA, A, P))


def fit_hartmann(cfg):
    return hartmann6([cfg[name] for name in DIMENSIONS])


def post_value(cfg, value):
    return {"value": value}


def final_loss(lr: float, width: int) -> float:
    """The loss a configuration ends at: best at lr = 0.01, width = 5."""
    return (math.log10(lr) + 2) ** 2 / 4 + 0.05 * (width - 5) ** 2


def curve(lr: float, width: int, step: int) -> float:
    """The loss at ``step``: from final + 1 down towards final; the curves of two configurations never cross."""
    return final_loss(lr, width) + math.exp(-step / 4)


def fit_curve(cfg):
    for step in range(CURVE_STEPS):
        report_metrics(step, loss=curve(cfg["lr"], cfg["width"], step))
        if should_prune():
            raise Pruned(f"pruned at step {step}")
    return curve(cfg["lr"], cfg["width"], CURVE_STEPS - 1)


def post_loss(cfg, loss):
    return {"loss": loss}


def tpe(seed: int) -> optuna.samplers.TPESampler:
    return optuna.samplers.TPESampler(seed=seed)


def hartmann_space() -> Dict[str, optuna.distributions.FloatDistribution]:
    return {name: optuna.distributions.FloatDistribution(0.0, 1.0) for name in DIMENSIONS}


def ours_hartmann(folder: Path, seed: int, trials: int, in_flight: int) -> float:
    basecfg = {"fit": fit_hartmann, "post": post_value, "out_path": str(folder), "verbose": False}
    if in_flight > 1:
        basecfg.update(backend="multiprocessing", num_workers=in_flight)
    run_experiments(basecfg, {name: interval(0.0, 1.0) for name in DIMENSIONS},
                    search={"name": "optuna", "n_trials": trials, "sampler": "tpe", "seed": seed, "metric": "value",
                            "max_in_flight": in_flight})
    return min(line["scores"]["value"] for line in _lines(folder / "results.jsonl"))


def plain_hartmann(seed: int, trials: int, in_flight: int) -> float:
    """Optuna's own: study.optimize one trial at a time, or ask-and-tell with ``in_flight`` trials asked."""
    study = optuna.create_study(sampler=tpe(seed))
    if in_flight == 1:
        study.optimize(lambda trial: hartmann6([trial.suggest_float(name, 0.0, 1.0) for name in DIMENSIONS]),
                       n_trials=trials)
        return study.best_value
    asked: deque = deque()
    for _ in range(trials):
        if len(asked) == in_flight:
            _tell_hartmann(study, asked.popleft())
        asked.append(study.ask(hartmann_space()))
    while asked:
        _tell_hartmann(study, asked.popleft())
    return study.best_value


def _tell_hartmann(study: optuna.Study, trial: optuna.Trial) -> None:
    study.tell(trial, hartmann6([trial.params[name] for name in DIMENSIONS]))


def ours_curves(folder: Path, seed: int, pruner: str, trials: int = CURVE_TRIALS, sampler: str = "tpe"
                ) -> Dict[str, float]:
    basecfg = {"fit": fit_curve, "post": post_loss, "out_path": str(folder), "verbose": False}
    run_experiments(basecfg, {"lr": interval(1e-4, 1.0, log=True), "width": int_interval(1, 8)},
                    search={"name": "optuna", "n_trials": trials, "sampler": sampler, "seed": seed,
                            "pruner": pruner, "max_in_flight": 1})
    steps = sum(len(_lines(path)) for path in folder.glob("*/metrics.jsonl"))
    best = min((line["scores"]["loss"] for line in _lines(folder / "results.jsonl")
                if line["trial"]["state"] == "COMPLETE"), default=math.inf)
    return {"steps": steps, "best": best, "trials": trials}


def plain_curves(seed: int) -> Dict[str, float]:
    """Optuna's own study.optimize of the same workload with the SuccessiveHalvingPruner."""
    steps = 0

    def objective(trial: optuna.Trial) -> float:
        nonlocal steps
        lr, width = trial.suggest_float("lr", 1e-4, 1.0, log=True), trial.suggest_int("width", 1, 8)
        for step in range(CURVE_STEPS):
            steps += 1
            trial.report(curve(lr, width, step), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return curve(lr, width, CURVE_STEPS - 1)

    study = optuna.create_study(sampler=tpe(seed), pruner=optuna.pruners.SuccessiveHalvingPruner())
    study.optimize(objective, n_trials=CURVE_TRIALS)
    return {"steps": steps, "best": study.best_value, "trials": CURVE_TRIALS}


def _lines(path: Path) -> List[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def parity(root: Path, seeds: int, trials: int, in_flight: int) -> None:
    sides: Dict[str, Callable[[Path, int], float]] = {
        "ours, single, 1 at a time": lambda f, s: ours_hartmann(f, s, trials, 1),
        "optuna study.optimize": lambda f, s: plain_hartmann(s, trials, 1),
        f"ours, multiprocessing, {in_flight} at once": lambda f, s: ours_hartmann(f, s, trials, in_flight),
        f"optuna ask/tell, {in_flight} in flight": lambda f, s: plain_hartmann(s, trials, in_flight),
    }
    best: Dict[str, List[float]] = {name: [] for name in sides}
    for seed in range(seeds):
        for index, (name, side) in enumerate(sides.items()):
            folder = root / f"hartmann_{seed}_{index}"
            best[name].append(side(folder, seed))
            shutil.rmtree(folder, ignore_errors=True)
    print(f"Hartmann6 (minimum {HARTMANN_MINIMUM}), {trials} trials of TPE, seeds 0..{seeds - 1}: best value")
    for name, values in best.items():
        shown = " ".join(f"{value:.4f}" for value in values)
        print(f"  {name:<36} median {statistics.median(values):.4f}   per seed: {shown}")
    names = list(sides)
    same = sum(a == b for a, b in zip(best[names[0]], best[names[1]]))
    print(f"  1 at a time, ours - optuna: {statistics.median(best[names[0]]) - statistics.median(best[names[1]]):+.4f}"
          f" (medians); the same best value for {same} of {seeds} seeds")
    low, high = min(best[names[3]]), max(best[names[3]])
    ours = statistics.median(best[names[2]])
    inside = "inside" if low <= ours <= high else "outside"
    print(f"  {in_flight} in flight: ours' median {ours:.4f} is {inside} optuna's own spread over the seeds "
          f"[{low:.4f}, {high:.4f}]; ours - optuna: {ours - statistics.median(best[names[3]]):+.4f} (medians)")


def pruning(root: Path, seeds: int) -> None:
    """Each seed: no pruner, successive halving, Optuna's own; then successive halving with as many trials as fit
    in the steps the run without a pruner took (the same compute, more configurations)."""
    names = ("ours, no pruner", "ours, successive halving", "optuna, successive halving",
             "ours, successive halving, same steps", "ours, random sampler, no pruner",
             "ours, random sampler, halving")
    runs: Dict[str, List[Dict[str, float]]] = {name: [] for name in names}
    for seed in range(seeds):
        folder = root / f"curves_{seed}"
        runs[names[0]].append(ours_curves(folder / "none", seed, "none"))
        runs[names[1]].append(ours_curves(folder / "halving", seed, "successive_halving"))
        runs[names[2]].append(plain_curves(seed))
        trials = round(CURVE_TRIALS * runs[names[0]][-1]["steps"] / max(1, runs[names[1]][-1]["steps"]))
        runs[names[3]].append(ours_curves(folder / "same_steps", seed, "successive_halving", trials))
        runs[names[4]].append(ours_curves(folder / "random_none", seed, "none", sampler="random"))
        runs[names[5]].append(ours_curves(folder / "random_halving", seed, "successive_halving", sampler="random"))
        shutil.rmtree(folder, ignore_errors=True)
    print(f"learning curves, {CURVE_STEPS} steps a trial, TPE, seeds 0..{seeds - 1} (medians; minimum "
          f"{curve(0.01, 5, CURVE_STEPS - 1):.5f}):")
    median = {name: {key: statistics.median(run[key] for run in done) for key in ("steps", "best", "trials")}
              for name, done in runs.items()}
    for name, figures in median.items():
        per_seed = " ".join(f"{run['best']:.5f}" for run in runs[name])
        print(f"  {name:<38} {figures['trials']:4.0f} trials  steps {figures['steps']:6.0f}  best final loss "
              f"{figures['best']:.5f}  (per seed: {per_seed})")
    full, pruned = median[names[0]], median[names[1]]
    saved = 1 - pruned["steps"] / full["steps"]
    print(f"  successive halving saves {saved:.0%} of the steps (goal: at least 50%); best final loss "
          f"{pruned['best'] - full['best']:+.5f} against no pruner (goal: no worse, <= 0); with the same steps "
          f"{median[names[3]]['best'] - full['best']:+.5f}")
    full, pruned = median[names[4]], median[names[5]]
    same = sum(a["best"] == b["best"] for a, b in zip(runs[names[4]], runs[names[5]]))
    print(f"  the pruner alone (a random sampler asks the same configurations with and without it): successive "
          f"halving saves {1 - pruned['steps'] / full['steps']:.0%} of the steps; best final loss "
          f"{pruned['best'] - full['best']:+.5f}, the same for {same} of {seeds} seeds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--pruning-seeds", type=int, default=5)
    parser.add_argument("--dir", help="where the runs go (default: a temporary folder)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    root = Path(tempfile.mkdtemp(dir=args.dir))
    started = time.perf_counter()
    try:
        parity(root, args.seeds, args.trials, args.in_flight)
        pruning(root, args.pruning_seeds)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"({time.perf_counter() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
