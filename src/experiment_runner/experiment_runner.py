"""Compatibility with scripts written for the original package.

``from experiment_runner.experiment_runner import run_experiments, Variation, generate_configs``
keeps working; new code imports from ``experiment_runner`` directly.
"""
from .report import read_results
from .runner import run_experiments
from .sweep import Variation, generate_configs

__all__ = ["run_experiments", "Variation", "generate_configs", "read_results"]
