"""The settings of a search (the run setting ``search``), declared once and checked with one-line errors.

``search`` is absent or ``"grid"`` (or ``{"name": "grid"}``) for today's
sweep of the listed configurations, or a dict naming an adaptive search::

    {"name": "optuna", "n_trials": 50, "metric": "loss", "direction": "minimize",
     "sampler": "tpe", "pruner": "median", "max_in_flight": 4, "seed": 0}
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from ..core_keys import SEARCHES
from ..errors import ConfigError
from ..launchers.options import DOC, node_yaml
from ..settings import unknown_key_error

__all__ = ["SearchSettings", "search_settings", "search_node_yaml", "SAMPLERS", "PRUNERS", "DIRECTIONS"]

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

#: A sampler or pruner: its name, or {"name": ..., **its arguments}.
Named = Union[str, Dict[str, Any]]


def _setting(default: Any, doc: str) -> Any:
    return dataclasses.field(default=default, metadata={DOC: doc})


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    """An adaptive search with Optuna over the space the config's dimensions span (README: Adaptive search)."""

    n_trials: int = _setting(20, "experiments (trials) in all, over every resume")
    metric: Union[str, List[str]] = _setting("loss", "the score to optimise (its mean over repetitions); a list: "
                                                     "multi-objective")
    direction: Union[str, List[str]] = _setting("minimize", "or maximize; a list: one per metric")
    sampler: Named = _setting("tpe", f"{', '.join(SAMPLERS)}; or {{name: ..., <its arguments>}}")
    pruner: Named = _setting("none", f"{', '.join(PRUNERS)}; or {{name: ..., <its arguments>}}")
    max_in_flight: Optional[int] = _setting(None, "trials running at once; null: as many as the backend runs")
    seed: Optional[int] = _setting(None, "the sampler's seed; null: a random one")

    @property
    def metrics(self) -> Tuple[str, ...]:
        return (self.metric,) if isinstance(self.metric, str) else tuple(self.metric)

    @property
    def directions(self) -> Tuple[str, ...]:
        if isinstance(self.direction, str):
            return (self.direction,) * len(self.metrics)
        return tuple(self.direction)

    def budget_line(self) -> str:
        """``search=optuna: 50 trials, sampler tpe, pruner median, minimize loss, 4 at once``."""
        goals = ", ".join(f"{d} {m}" for d, m in zip(self.directions, self.metrics))
        at_once = f"{self.max_in_flight} at once" if self.max_in_flight else "as many at once as the backend runs"
        seed = "" if self.seed is None else f", seed {self.seed}"
        return (f"search=optuna: {self.n_trials} trials, sampler {_name_of(self.sampler)}, pruner "
                f"{_name_of(self.pruner)}, {goals}, {at_once}{seed}")

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
    fields = {"name", *(field.name for field in dataclasses.fields(SearchSettings))}
    unknown = sorted(set(value) - fields)
    if unknown:
        raise unknown_key_error(unknown[0], fields, "search")
    name = value.get("name", "optuna")
    if name not in SEARCHES:
        raise ConfigError(f"search.name must be one of {', '.join(SEARCHES)}, got {name!r}")
    if name == "grid":
        return None
    settings = SearchSettings(**{key: _plain(item) for key, item in value.items() if key != "name"})
    settings.check()
    return settings


def search_node_yaml(name: str) -> str:
    """The node ``search=<name>`` composes: the grid's name alone, an adaptive search's settings with their docs."""
    if name == "grid":
        return "# The grid of the config's dimensions (or n_configs samples of it): the default.\nname: grid\n"
    return node_yaml(name, SearchSettings)  # type: ignore[arg-type]  (any dataclass with DOC metadata)


def _plain(value: Any) -> Any:
    """Lists and dicts of a config (OmegaConf's, tuples) as plain lists and dicts."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
