"""The channel back from a running experiment to the driver.

An experiment tells the driver things before its outcome: that it started
(the progress bar counts what runs), and, for an adaptive search,
intermediate metrics. Inside the experiment's process,
:func:`run_experiment <experiment_runner.experiment.run_experiment>` marks
which experiment is running and :func:`tell_driver` sends a message through
the sink its backend installed with :func:`set_driver_channel`. The backend
carries each message to the driver, where its session yields it from
``events()`` as a :class:`Message`. Where no sink is installed (a backend that
does not carry messages yet) telling the driver does nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Optional

#: Message.kind of "this experiment has started running".
STARTED = "started"

#: Where messages go in this process: ``sink(experiment_id, kind, data)``.
Sink = Callable[[int, str, Any], None]

_sink: Optional[Sink] = None
_running: Optional[int] = None


@dataclass(frozen=True)
class Message:
    """Something a running experiment told the driver before its outcome."""

    experiment_id: int
    kind: str
    data: Any = None


def set_driver_channel(sink: Optional[Sink]) -> Optional[Sink]:
    """Send this process's messages to ``sink`` (None: nowhere); returns the sink it replaces."""
    global _sink
    previous, _sink = _sink, sink
    return previous


def running(experiment_id: int) -> ContextManager[None]:
    """Mark ``experiment_id`` as the experiment running in this process, and tell the driver it started."""
    return _Running(experiment_id)


class _Running:
    """The context manager of :func:`running`: a class, which costs a short experiment less than a generator."""

    __slots__ = ("experiment_id", "outer")

    def __init__(self, experiment_id: int):
        self.experiment_id = experiment_id
        self.outer: Optional[int] = None

    def __enter__(self) -> None:
        global _running
        self.outer, _running = _running, self.experiment_id
        try:
            tell_driver(STARTED)
        except BaseException:
            _running = self.outer
            raise

    def __exit__(self, *exc_info: Any) -> None:
        global _running
        _running = self.outer


def running_experiment() -> Optional[int]:
    """The id of the experiment running in this process, or None."""
    return _running


def tell_driver(kind: str, data: Any = None) -> bool:
    """Send ``kind`` (and JSON-able or picklable ``data``) about the running experiment to the driver.

    Returns whether there was a channel to send it on.
    """
    if _sink is None or _running is None:
        return False
    _sink(_running, kind, data)
    return True
