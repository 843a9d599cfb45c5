"""The space of an adaptive search: the dimensions a configuration holds, as Optuna distributions.

A search's space is one configuration in which some values are dimensions:
a :class:`~experiment_runner.sweep.Variation` (a categorical choice) or an
:class:`Interval` (a float or int range, on a log scale or not, with a step or
not). Each dimension is named by its dotted key (``model.lr``; a list's items
by their index, ``layers.0``); a trial's parameters, by those names, give back
the configuration with each dimension replaced by its value.

Building the space imports nothing heavy; :meth:`Space.distributions` imports Optuna.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from ..errors import ConfigError
from ..sweep import Variation

__all__ = ["Interval", "interval", "int_interval", "Space"]

#: The values Optuna's categorical distribution holds.
_CATEGORICAL = (type(None), bool, int, float, str)


@dataclass(frozen=True)
class Interval:
    """A range of numbers for an adaptive search to pick from: ``low`` to ``high``, both included."""

    low: Union[int, float]
    high: Union[int, float]
    log: bool = False
    step: Optional[Union[int, float]] = None
    integer: bool = False

    def __post_init__(self) -> None:
        kind = "int_interval" if self.integer else "interval"
        for name in ("low", "high"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"{kind}: {name} must be a finite number, got {value!r}")
            if self.integer and value != int(value):
                raise ConfigError(f"int_interval: {name} must be a whole number, got {value!r}")
        if not self.low < self.high:
            raise ConfigError(f"{kind}({self.low!r}, {self.high!r}): low must be below high")
        if self.log and self.low <= 0:
            raise ConfigError(f"{kind}({self.low!r}, {self.high!r}, log=True): a log scale needs low > 0")
        if self.step is not None:
            if isinstance(self.step, bool) or not isinstance(self.step, (int, float)) or not self.step > 0:
                raise ConfigError(f"{kind}: step must be a number > 0, got {self.step!r}")
            if self.log and not (self.integer and self.step == 1):
                raise ConfigError(f"{kind}: a log scale takes no step (Optuna samples it continuously)")

    def distribution(self) -> Any:
        """This range as an Optuna distribution."""
        from optuna.distributions import FloatDistribution, IntDistribution

        if self.integer:
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return FloatDistribution(float(self.low), float(self.high), log=self.log,
                                 step=None if self.step is None else float(self.step))

    def __repr__(self) -> str:
        shown = {"log": self.log, "step": None if self.integer and self.step == 1 else self.step}
        extra = "".join(f", {name}={value!r}" for name, value in shown.items() if value)
        return f"{'int_interval' if self.integer else 'interval'}({self.low!r}, {self.high!r}{extra})"


def interval(low: float, high: float, *, log: bool = False, step: Optional[float] = None) -> Interval:
    """A float dimension of an adaptive search: any value from ``low`` to ``high`` (both included).

    ``log=True`` samples on a log scale (``low`` must be > 0); ``step`` makes
    it discrete (low, low + step, ...). Like Hydra's ``interval(low, high)``
    and ``tag(log, interval(low, high))`` on the command line.
    """
    return Interval(low, high, log, step)


def int_interval(low: int, high: int, *, log: bool = False, step: int = 1) -> Interval:
    """An int dimension of an adaptive search: a whole number from ``low`` to ``high`` (both included).

    Like Hydra's ``int(interval(low, high))`` on the command line.
    """
    return Interval(low, high, log, step, integer=True)


Path = Tuple[Union[str, int], ...]


class Space:
    """The dimensions of a search space configuration, by dotted name, and the configurations they make."""

    def __init__(self, config: Mapping[str, Any]):
        if not isinstance(config, Mapping):
            raise ConfigError(f"a search's space must be one configuration (a dict) holding Variation or interval "
                              f"values, got {type(config).__name__}")
        self.config = config
        self.dimensions: Dict[str, Tuple[Path, Union[Variation, Interval]]] = {}
        self._find(config, ())
        if not self.dimensions:
            raise ConfigError("a search's space holds no dimension to search: give some parameter a Variation([...]) "
                              "or an interval(low, high)")

    def _find(self, node: Any, path: Path) -> None:
        where = ".".join(map(str, path)) or "the space"
        if isinstance(node, Variation):
            odd = [choice for choice in node.choices if not isinstance(choice, _CATEGORICAL)]
            if odd:
                raise ConfigError(f"{where}: an adaptive search chooses among plain values (numbers, strings, "
                                  f"booleans, null), not {type(odd[0]).__name__} {odd[0]!r:.60}")
            self.dimensions[where] = (path, node)
        elif isinstance(node, Interval):
            self.dimensions[where] = (path, node)
        elif isinstance(node, Mapping):
            for key, value in node.items():
                self._find(value, (*path, key))
        elif isinstance(node, (list, tuple)):
            for index, value in enumerate(node):
                self._find(value, (*path, index))

    def distributions(self) -> Dict[str, Any]:
        """Each dimension as an Optuna distribution, by its dotted name."""
        from optuna.distributions import CategoricalDistribution

        return {name: CategoricalDistribution(node.choices) if isinstance(node, Variation) else node.distribution()
                for name, (_, node) in self.dimensions.items()}

    def config_of(self, params: Mapping[str, Any]) -> Dict[str, Any]:
        """The configuration with each dimension replaced by its value in ``params``."""
        values = {path: params[name] for name, (path, _) in self.dimensions.items()}
        return _replaced(self.config, (), values)

    def first_config(self) -> Dict[str, Any]:
        """A configuration of the space (each choice's first, each range's low end): to check the space's cfg."""
        return self.config_of({name: node.choices[0] if isinstance(node, Variation) else node.low
                               for name, (_, node) in self.dimensions.items()})

    def described(self) -> Dict[str, str]:
        """Each dimension's values as text (``interval(0.001, 0.1, log=True)``), by its name."""
        return {name: _shown(node) for name, (_, node) in self.dimensions.items()}


def _replaced(node: Any, path: Path, values: Mapping[Path, Any]) -> Any:
    if path in values:
        return values[path]
    if isinstance(node, Mapping):
        return {key: _replaced(value, (*path, key), values) for key, value in node.items()}
    if isinstance(node, (list, tuple)):
        return [_replaced(value, (*path, index), values) for index, value in enumerate(node)]
    return node


def _shown(node: Union[Variation, Interval]) -> str:
    if isinstance(node, Variation):
        return "choice(" + ", ".join(map(repr, node.choices)) + ")"
    return repr(node)
