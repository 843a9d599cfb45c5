"""Intermediate metrics: what a running experiment reports step by step, for learning curves (and pruning).

Inside a stage, ``report_metrics(step, loss=0.3, acc=0.9)`` appends one JSON
line, ``{"step": 3, "time": 12.5, "loss": 0.3, "acc": 0.9}``, to
``metrics.jsonl`` in the running repetition's folder (``<id>/`` or
``<id>/<rep>/``), where the repetition runs: the same on every backend.
``time`` is the seconds since the repetition started. It also tells the
driver (:func:`experiment_runner.channel.tell_driver`), on the backends that
carry messages.

:func:`run_experiment <experiment_runner.experiment.run_experiment>` marks
the repetition that runs with :func:`repetition_running`.
"""
from __future__ import annotations

import math
import time
from typing import Any, Optional, Tuple

from .channel import tell_driver
from .errors import MetricsError
from .experiment_files import append_line
from .serialization import dumps

__all__ = ["report_metrics", "repetition_running", "METRICS_FILE", "METRICS", "LINE_FIELDS"]

#: The file name of a repetition's intermediate metrics.
METRICS_FILE = "metrics.jsonl"

#: Message.kind of the intermediate metrics an experiment reports; its data: the line with "run_id" added.
METRICS = "metrics"

#: The fields of every metrics.jsonl line besides the metrics; those and the reader's columns are no metric names.
LINE_FIELDS = ("step", "time")
_TAKEN_NAMES = frozenset((*LINE_FIELDS, "experiment_id", "run_id"))

#: The repetition running in this process: (its metrics file, its run_id, when it started), or None.
_Running = Tuple[str, int, float]
_running: Optional[_Running] = None

_USE = "call report_metrics(step, name=value, ...) from a stage (pre, fit or post) that experiment-runner runs"


class repetition_running:  # noqa: N801 (a context manager named for what it marks, like channel.running)
    """Mark repetition ``run_id``, working in ``folder``, as running in this process while in the ``with`` block.

    A class, not a generator: each repetition of a short experiment pays for it.
    """

    __slots__ = ("mark", "outer")

    def __init__(self, folder: str, run_id: int):
        self.mark = (f"{folder}/{METRICS_FILE}", run_id, 0.0)
        self.outer: Optional[_Running] = None

    def __enter__(self) -> None:
        global _running
        path, run_id, _ = self.mark
        self.outer, _running = _running, (path, run_id, time.perf_counter())

    def __exit__(self, *exc_info: Any) -> None:
        global _running
        _running = self.outer


def report_metrics(step: int, **metrics: Any) -> None:
    """Record intermediate ``metrics`` (numbers, by name) of the running repetition at ``step`` (an int).

    One whole line goes to the repetition's metrics.jsonl at once, so a
    reader (``experiment-runner report --plot``, read_metrics) sees it at
    once, and the driver is told on the backends that carry messages. numpy
    numbers are stored as numbers, NaN and infinities as null (as in
    results.jsonl). A call outside a running experiment, a step that is no
    int, no metrics, or a value that is no number raises :class:`MetricsError`.
    """
    running = _running
    if running is None:
        raise MetricsError(f"report_metrics was called outside a running experiment: {_USE}")
    path, run_id, started = running
    line = {"step": _step(step), "time": time.perf_counter() - started}
    if not metrics:
        raise MetricsError(f"report_metrics({step!r}) got no metrics: give each by name, such as "
                           f"report_metrics({step!r}, loss=0.25, acc=0.9)")
    for name, value in metrics.items():
        if name in _TAKEN_NAMES:
            raise MetricsError(f"report_metrics: {name!r} is a column of every metrics line, not a metric name: "
                               "name that metric otherwise")
        line[name] = _number(name, value)
    append_line(path, dumps(line))
    line["run_id"] = run_id
    tell_driver(METRICS, line)


def _step(step: Any) -> int:
    if type(step) is int:
        return step
    if isinstance(step, int) and not isinstance(step, bool):
        return int(step)
    value = _from_numpy(step)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise MetricsError(f"report_metrics: the step must be an int (an epoch, an iteration), got "
                       f"{type(step).__name__}: {step!r:.60}")


def _number(name: str, value: Any) -> Optional[float]:
    """``value`` as JSON stores it: an int or float, None for NaN and infinities; MetricsError if not a number."""
    kind = type(value)
    if kind is float:
        return value if value - value == 0.0 else None  # NaN and infinities give NaN
    if kind is int:
        return value
    number = _from_numpy(value) if kind is not bool else None
    if isinstance(number, (int, float)) and not isinstance(number, bool):
        return number if math.isfinite(number) else None
    raise MetricsError(f"report_metrics: {name} = {value!r:.60} ({kind.__name__}) is not a number: report ints or "
                       "floats (a tensor's .item(), float(...))")


def _from_numpy(value: Any) -> Any:
    """A numpy number (a scalar or a 0-d array) as a Python number; None for anything else."""
    if type(value).__module__ != "numpy" or getattr(value, "ndim", None) != 0:
        return None
    if value.dtype.kind not in "iuf":
        return None
    return value.item()
