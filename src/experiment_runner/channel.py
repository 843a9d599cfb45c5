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

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

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


@contextlib.contextmanager
def running(experiment_id: int) -> Iterator[None]:
    """Mark ``experiment_id`` as the experiment running in this process, and tell the driver it started."""
    global _running
    outer, _running = _running, experiment_id
    try:
        tell_driver(STARTED)
        yield
    finally:
        _running = outer


def tell_driver(kind: str, data: Any = None) -> bool:
    """Send ``kind`` (and JSON-able or picklable ``data``) about the running experiment to the driver.

    Returns whether there was a channel to send it on.
    """
    if _sink is None or _running is None:
        return False
    _sink(_running, kind, data)
    return True
