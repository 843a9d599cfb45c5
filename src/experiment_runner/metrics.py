"""Intermediate metrics: what a running experiment reports step by step, for learning curves (and pruning).

Inside a stage, ``report_metrics(step, loss=0.3, acc=0.9)`` appends one JSON
line, ``{"step": 3, "time": 12.5, "loss": 0.3, "acc": 0.9}``, to
``metrics.jsonl`` in the running repetition's folder (``<id>/`` or
``<id>/<rep>/``), where the repetition runs: the same on every backend.
``time`` is the seconds since the repetition started. It also tells the
driver (:func:`experiment_runner.channel.tell_driver`), on the backends that
carry messages.

The way back: an adaptive search may decide, from those metrics, that the
experiment is not worth finishing and ask it to stop early
(``Session.prune``). A stage learns it from :func:`should_prune` and stops by
raising :class:`Pruned` (or Optuna's ``TrialPruned``): the experiment ends
with status ``pruned``, which is no failure and never retried. How the
request arrives depends on the backend: :func:`ask_to_prune` in the process
that runs the experiment (multiprocessing, single, malocher), or a marker
file :data:`PRUNE_MARKER` in the experiment's folder that
:class:`watching_prune_marker` looks for (ray, slurm: no live channel to the
experiment, the shared filesystem instead).

:func:`run_experiment <experiment_runner.experiment.run_experiment>` marks
the repetition that runs with :func:`repetition_running`.
"""
from __future__ import annotations

import math
import os
import time
from typing import Any, Optional, Tuple

from .channel import running_experiment, tell_driver
from .errors import MetricsError
from .experiment_files import append_line
from .serialization import dumps

__all__ = ["report_metrics", "repetition_running", "should_prune", "Pruned", "ask_to_prune", "stopped_early",
           "watching_prune_marker", "METRICS_FILE", "METRICS", "LINE_FIELDS", "PRUNE_MARKER", "PRUNED"]

#: The status of an experiment stopped early (see :class:`Pruned`): recorded in failures.jsonl, yet no failure.
PRUNED = "pruned"

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


class Pruned(Exception):
    """Raise it from a stage (pre, fit or post) to stop the experiment early: it ends with status ``pruned``.

    Raise it when :func:`should_prune` answers True; a pruned experiment is
    recorded in failures.jsonl with status ``pruned``, counted apart from the
    failed ones, and never retried nor rerun by a resume.
    """


#: The experiment the driver asked, in this process, to stop early (the latest asked), or None.
_prune_asked: Optional[int] = None


def should_prune() -> bool:
    """Whether the driver asked the running experiment to stop early (an adaptive search's pruner decided so).

    False outside a search, and outside a running experiment. Cheap enough
    to call at every step of a training loop. Stop by raising :class:`Pruned`.
    """
    asked = _prune_asked
    if asked is not None and asked == running_experiment():
        return True
    marker = _marker
    return marker is not None and marker.found()


def ask_to_prune(experiment_id: Optional[int]) -> None:
    """From now on :func:`should_prune` of experiment ``experiment_id``, if it runs in this process, answers True.

    Called by what carries the driver's request to the experiment's process
    (a pool worker's reading thread, the driver itself for backend=single);
    an id that is not running here changes nothing for the one that is.
    """
    global _prune_asked
    _prune_asked = experiment_id


def stopped_early(error: BaseException) -> bool:
    """Whether a stage's ``error`` is its way of stopping early: :class:`Pruned`, or Optuna's ``TrialPruned``.

    Optuna's is told by its class's module and name: this package does not import optuna for it.
    """
    for kind in type(error).__mro__:
        if kind is Pruned or (kind.__name__ == "TrialPruned" and kind.__module__.split(".")[0] == "optuna"):
            return True
    return False


#: The file in an experiment's folder that asks it to stop early, where the driver has no live channel to it.
PRUNE_MARKER = ".prune"

#: At most one look for the marker per this many seconds: a training loop may ask at every step.
MARKER_LOOK_SECONDS = 0.1


class watching_prune_marker:  # noqa: N801 (a context manager named for what it does, like repetition_running)
    """While in the ``with`` block, :func:`should_prune` also answers True once ``folder``/:data:`PRUNE_MARKER` exists.

    For backends whose driver cannot reach the running experiment (ray,
    slurm): the driver writes the marker on the shared filesystem. A marker
    left by an earlier attempt (a driver killed before it could remove it)
    is removed on entry. Looked for at most every :data:`MARKER_LOOK_SECONDS`.
    """

    __slots__ = ("path", "next_look", "seen", "outer")

    def __init__(self, folder: str):
        self.path = f"{folder}/{PRUNE_MARKER}"
        self.next_look = 0.0
        self.seen = False
        self.outer: Optional[watching_prune_marker] = None

    def __enter__(self) -> None:
        global _marker
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self.outer, _marker = _marker, self

    def __exit__(self, *exc_info: Any) -> None:
        global _marker
        _marker = self.outer

    def found(self) -> bool:
        if self.seen:
            return True
        now = time.monotonic()
        if now >= self.next_look:
            self.next_look = now + MARKER_LOOK_SECONDS
            self.seen = os.path.exists(self.path)
        return self.seen


_marker: Optional[watching_prune_marker] = None
