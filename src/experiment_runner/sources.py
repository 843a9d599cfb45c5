"""Where a run's experiments come from: the runner asks a source for the next one and tells it each outcome.

A sweep's source is its list of experiments (:class:`Listed`); an adaptive
search's (``search/source.py``) asks its study for the next trial only when
one may start, and learns from each outcome and each intermediate metric.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, Optional

from .experiment import Experiment, Outcome

__all__ = ["ExperimentSource", "Listed"]


class ExperimentSource:
    """The experiments of a run, made as the runner asks for them; see the module docstring."""

    def next_experiment(self) -> Optional[Experiment]:
        """The next experiment to submit; None when there is none to submit now (or ever)."""
        raise NotImplementedError

    def annotation(self, outcome: Outcome, experiment: Experiment) -> Optional[Dict[str, Any]]:
        """What the record of ``experiment``'s final ``outcome`` carries besides (a search's trial), or None."""
        return None

    def finished(self, experiment: Experiment, outcome: Outcome) -> None:
        """``experiment`` has its final outcome (after its retries), recorded."""

    def on_metrics(self, experiment_id: int, data: Dict[str, Any]) -> bool:
        """Intermediate metrics of a running experiment; returns whether it should stop early (be pruned)."""
        return False


class Listed(ExperimentSource):
    """A sweep's experiments, in their order: the next one whenever the runner asks."""

    def __init__(self, pending: Iterable[Experiment]):
        self._pending = iter(pending)

    def next_experiment(self) -> Optional[Experiment]:
        return next(self._pending, None)
