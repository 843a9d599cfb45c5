"""The config as data: the keys the runner reads itself and how a dimension is marked."""
from __future__ import annotations

from typing import Any

from ..core_keys import CORE_KEYS

#: Top-level keys of the sweep itself: how many configurations to sample, and the sampling seed.
SWEEP_KEYS = frozenset({"n_configs", "seed"})
#: Top-level keys that are run settings; every other top-level key is an experiment parameter.
RUN_KEYS = CORE_KEYS | SWEEP_KEYS
#: Run settings that reach the experiments as parameters too: a project's own ``seed`` (every Hydra
#: project has one) stays its seed, and also seeds the sampling of ``n_configs``.
PARAMETER_KEYS = frozenset({"seed"})
#: What ``${variation:a,b}`` resolves to, and how an override ``key=a,b`` marks its node.
VARIATION_KEY = "_variation_"
#: How an override ``key=interval(a,b)`` marks its node: ``{_interval_: {low, high, log, int}}``, a range an
#: adaptive search samples (``search=optuna``).
INTERVAL_KEY = "_interval_"


def is_interval(node: Any) -> bool:
    """True for a range an adaptive search samples, as ``interval(...)`` marks it: ``{_interval_: {...}}``."""
    return isinstance(node, dict) and INTERVAL_KEY in node


def is_variation(node: Any) -> bool:
    """True for a dimension as resolved, or as a sweep override marks it: ``{_variation_: [...]}``."""
    return isinstance(node, dict) and VARIATION_KEY in node
