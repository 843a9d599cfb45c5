"""The plots of a search: the optimisation history (one metric), the Pareto front (two or three).

The history, each completed trial's value and the best so far by trial
number, is drawn from results.jsonl like the report's other plots
(matplotlib, imported here only); Optuna's
``optuna.visualization.matplotlib.plot_optimization_history`` draws the same
from the study. The Pareto front is Optuna's own plot of the study.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, List

from ..console import say
from ..errors import NoResultsError
from ..report_plot import image_format, matplotlib_figure
from ..run_files import RunPaths
from .best import Completed, completed_trials

__all__ = ["plot_optimization_history", "plot_search", "is_a_search"]


def is_a_search(out_path: Path) -> bool:
    return completed_trials(out_path) is not None


def plot_search(out_path: Path) -> List[Path]:
    """The search's plots written into ``out_path``: optimization_history.png for one metric, pareto_front.png
    for two or three (more: said, not drawn)."""
    completed = _completed(out_path)
    if len(completed.metrics) == 1:
        output = Path(out_path) / "optimization_history.png"
        plot_optimization_history(out_path, output)
        return [output]
    if len(completed.metrics) > 3:
        say(f"no Pareto-front plot: Optuna draws it for 2 or 3 metrics, this search has {len(completed.metrics)}")
        return []
    from .pareto import plot_pareto_front
    from .study import load_study

    output = Path(out_path) / "pareto_front.png"
    plot_pareto_front(load_study(RunPaths(Path(out_path)).study), completed.metrics, output)
    return [output]


def _completed(out_path: Path) -> Completed:
    completed = completed_trials(out_path)
    if completed is None or not completed.trials:
        raise NoResultsError(f"no completed trial of a search in '{out_path}' yet")
    return completed


def plot_optimization_history(out_path: Path, output: Path) -> Any:
    """A matplotlib Figure of the single-objective search in ``out_path``, written to ``output``."""
    completed = _completed(out_path)
    metric, maximize = completed.metrics[0], completed.maximize[0]
    trials = sorted(completed.trials, key=lambda trial: trial[0])
    numbers = [number for number, _, _ in trials]
    values = [values[0] for _, values, _ in trials]
    best: List[float] = []
    for value in values:
        best.append(value if not best else (max if maximize else min)(best[-1], value))
    figure = matplotlib_figure()
    axes = figure.add_subplot()
    axes.scatter(numbers, values, s=14, label=metric)
    axes.step(numbers, best, where="post", color="tab:red", label="best so far")
    axes.set_xlabel("trial")
    axes.set_ylabel(metric)
    axes.set_title(f"optimisation history: {len(trials)} completed trials, {completed.goals}")
    axes.legend()
    figure.savefig(output, format=image_format(figure, output), dpi=150)
    return figure
