"""The settings of a search (the run setting ``search``), declared once and checked with one-line errors.

``search`` is absent or ``"grid"`` (or ``{"name": "grid"}``) for today's
sweep of the listed configurations, or a dict naming an adaptive search::

    {"name": "optuna", "n_trials": 50, "metric": "loss", "direction": "minimize",
     "sampler": "tpe", "pruner": "median", "max_in_flight": 4, "seed": 0}
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from ..errors import ConfigError
from ..settings import unknown_key_error

__all__ = ["SearchSettings", "search_settings", "SAMPLERS", "PRUNERS", "DIRECTIONS"]

#: The names of Optuna's samplers a search takes, and their classes in ``optuna.samplers``.
SAMPLERS = {
    "tpe": "TPESampler", "random": "RandomSampler", "cmaes": "CmaEsSampler", "gp": "GPSampler",
    "grid": "GridSampler", "nsga2": "NSGAIISampler", "nsga3": "NSGAIIISampler", "qmc": "QMCSampler",
    "bruteforce": "BruteForceSampler",
}
#: The names of Optuna's pruners a search takes, and their classes in ``optuna.pruners``.
PRUNERS = {
    "none": "NopPruner", "median": "MedianPruner", "successive_halving": "SuccessiveHalvingPruner",
    "hyperband": "HyperbandPruner", "percentile": "PercentilePruner", "threshold": "ThresholdPruner",
    "patient": "PatientPruner", "wilcoxon": "WilcoxonPruner",
}
DIRECTIONS = ("minimize", "maximize")
_NAMES = ("grid", "optuna")

#: A sampler or pruner: its name, or {"name": ..., **its arguments}.
Named = Union[str, Dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    """An adaptive search's settings; see the module docstring."""

    name: str = "optuna"
    #: How many experiments (trials) the search runs in all, over every resume of it.
    n_trials: int = 20
    #: The score (a key of what fit or post returns) to optimise, or a list of them (multi-objective).
    metric: Union[str, List[str]] = "loss"
    #: minimize or maximize, or one per metric.
    direction: Union[str, List[str]] = "minimize"
    sampler: Named = "tpe"
    pruner: Named = "none"
    #: At most this many trials run at once; None: as many as the backend runs at once.
    max_in_flight: Optional[int] = None
    #: The sampler's seed (None: a random one).
    seed: Optional[int] = None

    @property
    def metrics(self) -> Tuple[str, ...]:
        return (self.metric,) if isinstance(self.metric, str) else tuple(self.metric)

    @property
    def directions(self) -> Tuple[str, ...]:
        if isinstance(self.direction, str):
            return (self.direction,) * len(self.metrics)
        return tuple(self.direction)

    def check(self) -> None:
        """One ConfigError line for the first bad setting."""
        if isinstance(self.n_trials, bool) or not isinstance(self.n_trials, int) or self.n_trials < 1:
            raise ConfigError(f"search.n_trials must be a whole number >= 1, got {self.n_trials!r}")
        metrics = [self.metric] if isinstance(self.metric, str) else self.metric
        if not isinstance(metrics, (list, tuple)) or not metrics or not all(isinstance(m, str) and m for m in metrics):
            raise ConfigError(f"search.metric must name a score, or list several, got {self.metric!r}")
        directions = [self.direction] if isinstance(self.direction, str) else self.direction
        if not isinstance(directions, (list, tuple)) or any(d not in DIRECTIONS for d in directions):
            raise ConfigError(f"search.direction must be minimize or maximize (or a list of them), "
                              f"got {self.direction!r}")
        if not isinstance(self.direction, str) and len(directions) != len(metrics):
            raise ConfigError(f"search.direction lists {len(directions)} directions for {len(metrics)} metrics: "
                              "give one per metric")
        _check_named(self.sampler, "sampler", SAMPLERS)
        _check_named(self.pruner, "pruner", PRUNERS)
        if self.max_in_flight is not None and (isinstance(self.max_in_flight, bool) or
                                               not isinstance(self.max_in_flight, int) or self.max_in_flight < 1):
            raise ConfigError(f"search.max_in_flight must be a whole number >= 1, got {self.max_in_flight!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ConfigError(f"search.seed must be a whole number, got {self.seed!r}")
        if len(metrics) > 1 and _name_of(self.pruner) != "none":
            raise ConfigError("search.pruner: Optuna prunes single-objective searches only; "
                              "set search.pruner=none for several metrics")


def _name_of(named: Named) -> Any:
    return named.get("name") if isinstance(named, Mapping) else named


def _check_named(value: Named, what: str, known: Mapping[str, str]) -> None:
    name = _name_of(value)
    if name not in known:
        form = f"a name or {{name: ..., <its arguments>}}, one of {', '.join(known)}"
        raise ConfigError(f"search.{what} must be {form}; got {value!r}")


def search_settings(value: Any) -> Optional[SearchSettings]:
    """The run setting ``search`` checked: None for the grid (absent, "grid"), else the adaptive search's settings."""
    if value is None or value == "grid":
        return None
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, Mapping):
        raise ConfigError(f"search must be grid, optuna, or a dict of a search's settings, got {value!r}")
    fields = {field.name for field in dataclasses.fields(SearchSettings)}
    unknown = sorted(set(value) - fields)
    if unknown:
        raise unknown_key_error(unknown[0], fields, "search")
    name = value.get("name", "optuna")
    if name not in _NAMES:
        raise ConfigError(f"search.name must be one of {', '.join(_NAMES)}, got {name!r}")
    if name == "grid":
        return None
    settings = SearchSettings(**{key: _plain(item) for key, item in value.items()})
    settings.check()
    return settings


def _plain(value: Any) -> Any:
    """Lists and dicts of a config (OmegaConf's, tuples) as plain lists and dicts."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
