"""The kinds of a search's dimensions: a range of numbers (:class:`Interval`), a choice among labels (:class:`Choices`).

Each becomes an Optuna distribution (imported only then) and suggests its
value to a trial by Optuna's public ``suggest_*`` calls.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Tuple, Union

from ..errors import ConfigError

__all__ = ["Interval", "interval", "int_interval", "Choices"]


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

    def suggest(self, trial: Any, name: str) -> Union[int, float]:
        """A value of this range that ``trial`` picks for the parameter ``name`` (Optuna's define-by-run)."""
        if self.integer:
            return trial.suggest_int(name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        step = None if self.step is None else float(self.step)
        return trial.suggest_float(name, float(self.low), float(self.high), step=step, log=self.log)

    def first(self, index: int) -> Union[int, float]:
        """The low end, as a configuration of the space to check before anything runs."""
        return self.low

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


@dataclass(frozen=True)
class Choices:
    """A categorical dimension: the labels Optuna chooses among, one per choice of a Variation (or a group's option).

    ``shown`` is how the choices read in run.yaml and ``--list`` (``choice('a', 'b')``).
    """

    labels: Tuple[Any, ...]
    shown: str

    def distribution(self) -> Any:
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution(self.labels)

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_categorical(name, self.labels)

    def first(self, index: int) -> Any:
        """The choice ``index`` (the last one past the end): the configurations checked before anything runs."""
        return self.labels[min(index, len(self.labels) - 1)]

    def __repr__(self) -> str:
        return self.shown
