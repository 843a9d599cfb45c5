"""Compatibility with scripts written for the original package.

``from experiment_runner.experiment_runner import run_experiments, Variation, generate_configs``
keeps working; new code imports from ``experiment_runner`` directly. ``read_results``
(the report) is imported when a script asks for it, as from the package.
"""
from typing import TYPE_CHECKING, Any

from .runner import run_experiments
from .sweep import Variation, generate_configs

if TYPE_CHECKING:
    from .report import read_results

__all__ = ["run_experiments", "Variation", "generate_configs", "read_results"]


def __getattr__(name: str) -> Any:
    if name == "read_results":
        from .report import read_results

        return read_results
    raise AttributeError(f"module 'experiment_runner.experiment_runner' has no attribute {name!r}")
