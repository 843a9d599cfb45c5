"""experiment-runner: run sweeps of pre -> fit -> post experiments and keep every config and score.

The public API is imported lazily: ``import experiment_runner`` stays fast and
loads neither pandas nor any backend.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["run_experiments", "Variation", "generate_configs", "main", "read_results", "read_metrics", "report_metrics",
           "should_prune", "Pruned", "interval", "int_interval", "RunSummary", "__version__"]

_LAZY = {
    "run_experiments": "experiment_runner.runner",
    "RunSummary": "experiment_runner.progress",
    "Variation": "experiment_runner.sweep",
    "generate_configs": "experiment_runner.sweep",
    "main": "experiment_runner.cli",
    "read_results": "experiment_runner.report",
    "read_metrics": "experiment_runner.report",
    "report_metrics": "experiment_runner.metrics",
    "should_prune": "experiment_runner.metrics",
    "Pruned": "experiment_runner.metrics",
    "interval": "experiment_runner.search.space",
    "int_interval": "experiment_runner.search.space",
}

if TYPE_CHECKING:
    from .cli import main
    from .progress import RunSummary
    from .metrics import Pruned, report_metrics, should_prune
    from .report import read_metrics, read_results
    from .runner import run_experiments
    from .search.space import int_interval, interval
    from .sweep import Variation, generate_configs


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'experiment_runner' has no attribute {name!r}")


def __dir__() -> list:
    return sorted(list(globals()) + list(_LAZY))
