"""Ctrl-C while the command composes and plans the sweep: before anything is written, one line and exit code 130.

Composing a large sweep can take seconds, and a Ctrl-C lands inside whatever
runs then, OmegaConf included. A library may turn the KeyboardInterrupt into
an error of its own (about the node it was building when interrupted), or
catch it and go on; either way the user would see a wrong error about a valid
config, or a run they had just stopped. So while the command plans, a Ctrl-C
is noted when it arrives, and the block ends as an interruption whatever
came out of it.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator


class InterruptedBeforeTheRun(KeyboardInterrupt):
    """Ctrl-C while the sweep was composed or planned: nothing was written."""

    message = "interrupted: stopped while the sweep was composed and planned, before anything was written"


@contextlib.contextmanager
def planning() -> Iterator[None]:
    """A block that composes or plans; a Ctrl-C within it ends it with :class:`InterruptedBeforeTheRun`."""
    watch = _InterruptWatch()
    with watch:
        try:
            yield
        except BaseException as error:
            if watch.interrupted or isinstance(error, KeyboardInterrupt):
                raise InterruptedBeforeTheRun() from None  # what a library made of the interrupt says nothing more
            raise
    if watch.interrupted:  # a library caught the KeyboardInterrupt and went on: the user still asked to stop
        raise InterruptedBeforeTheRun()


class _InterruptWatch:
    """SIGINT raises KeyboardInterrupt as by default, and is noted; left alone where it is ignored (a background
    job) or where no handler can be set (a thread other than the main one)."""

    def __init__(self) -> None:
        self.interrupted = False
        self._previous: Any = None

    def __enter__(self) -> "_InterruptWatch":
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._interrupt)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _interrupt(self, signum: int, frame: Any) -> None:
        self.interrupted = True
        raise KeyboardInterrupt
