"""A multi-objective search's best trials: its Pareto front, found without Optuna, drawn with Optuna's plot.

A trial is on the front when no other completed trial is at least as good in
every metric and better in one. The summary and ``experiment-runner report``
list the front's trials (best.py); ``report --plot`` draws the front with
``optuna.visualization.matplotlib.plot_pareto_front`` for two or three metrics.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

__all__ = ["pareto_front", "plot_pareto_front"]

#: A completed trial: (trial number, each metric's value, its results line).
Trial = Tuple[int, List[float], Dict[str, Any]]


def pareto_front(trials: Sequence[Trial], maximize: Sequence[bool]) -> List[Trial]:
    """The trials no other trial dominates, best first by the first metric (then the next...).

    Sorted that way, a trial's dominators all come before it, and one of them
    is on the front: so each trial is compared with the front only.
    """
    def oriented(trial: Trial) -> List[float]:
        return [-value if up else value for value, up in zip(trial[1], maximize)]

    front: List[Trial] = []
    kept: List[List[float]] = []
    for trial in sorted(trials, key=oriented):
        values = oriented(trial)
        if not any(_dominates(other, values) for other in kept):
            front.append(trial)
            kept.append(values)
    return front


def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def plot_pareto_front(study: Any, metrics: List[str], output: Path) -> Any:
    """Optuna's Pareto-front plot of ``study`` (2 or 3 objectives), its axes named after ``metrics``, written to
    ``output``; the matplotlib Figure."""
    import matplotlib.pyplot as plt
    from optuna.exceptions import ExperimentalWarning
    from optuna.visualization.matplotlib import plot_pareto_front as optuna_plot

    # rc_context: Optuna's plots set pyplot's style for the process (ggplot); the report's other plots keep theirs
    with warnings.catch_warnings(), plt.rc_context():
        warnings.simplefilter("ignore", ExperimentalWarning)  # "experimental" for years: its output is what we want
        axes = optuna_plot(study, target_names=metrics)
        figure = axes.figure
        try:
            figure.savefig(output, dpi=150)
        finally:
            plt.close(figure)  # pyplot keeps every figure it made until closed
    return figure
