"""The optimisation history of a search: each completed trial's value, and the best so far, by trial number.

Drawn from results.jsonl like the report's other plots (matplotlib, imported
here only); Optuna's ``optuna.visualization.matplotlib.plot_optimization_history``
draws the same from the study.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, List

from ..errors import NoResultsError
from ..report_plot import image_format, matplotlib_figure
from .best import completed_trials

__all__ = ["plot_optimization_history", "is_a_search"]


def is_a_search(out_path: Path) -> bool:
    return completed_trials(out_path) is not None


def plot_optimization_history(out_path: Path, output: Path) -> Any:
    """A matplotlib Figure of the search in ``out_path``, written to ``output``."""
    completed = completed_trials(out_path)
    if completed is None or not completed.trials:
        raise NoResultsError(f"no completed trial of a search in '{out_path}' yet")
    trials = sorted(completed.trials, key=lambda trial: trial[0])
    numbers = [number for number, _, _ in trials]
    values = [value for _, value, _ in trials]
    best: List[float] = []
    for value in values:
        best.append(value if not best else (max if completed.maximize else min)(best[-1], value))
    figure = matplotlib_figure()
    axes = figure.add_subplot()
    axes.scatter(numbers, values, s=14, label=completed.metric)
    axes.step(numbers, best, where="post", color="tab:red", label="best so far")
    axes.set_xlabel("trial")
    axes.set_ylabel(completed.metric)
    axes.set_title(f"optimisation history: {len(trials)} completed trials, "
                   f"{'maximize' if completed.maximize else 'minimize'} {completed.metric}")
    axes.legend()
    figure.savefig(output, format=image_format(figure, output), dpi=150)
    return figure
