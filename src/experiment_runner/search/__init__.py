"""Adaptive searches (Optuna) over a space of configurations, behind the same plan -> run -> record path as a sweep.

``search=optuna`` (the run setting ``search``, see :mod:`.settings`) makes
the run ask an Optuna study for each experiment (:mod:`.source`) in the
space a configuration spans with Variations and intervals (:mod:`.space`);
the study lives in the out_path (:mod:`.study`). Optuna is imported only
once a search runs.
"""
from .space import Interval, int_interval, interval

__all__ = ["Interval", "interval", "int_interval"]
