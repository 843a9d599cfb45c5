"""backend=single: one experiment after another in the driver's own process.

The simplest backend and the one to debug with: breakpoints and prints work,
prints reach the terminal and the experiment's log files. A timeout is
enforced with a real-time interval timer (SIGALRM), which interrupts Python
code but not a C call that never returns to the interpreter; the process
backends enforce it by killing instead.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any, Iterator, List, Optional, Sequence

from ..errors import ExperimentTimeout, UsageError
from ..experiment import Experiment, Outcome, Stages, run_experiment
from ..channel import Message, running_experiment, set_driver_channel
from ..metrics import METRICS, ask_to_prune
from .base import Event, Launcher, Session
from .isolation import timeout_outcome


class SingleLauncher(Launcher):
    name = "single"

    def check(self, experiments: Sequence[Experiment]) -> None:
        timed = bool(self.settings.timeout)  # each experiment's; reading it from each would make them all
        if timed and threading.current_thread() is not threading.main_thread():
            raise UsageError(
                "timeout with backend=single needs the main thread (it uses SIGALRM); "
                "call run_experiments from the main thread or use backend=multiprocessing"
            )

    def session(self, stages: Stages) -> Session:
        return SingleSession(stages)


class SingleSession(Session):
    """Runs each submitted experiment in turn, in this process; messages reach the driver directly, and so does
    a request to stop early (:meth:`prune`)."""

    def __init__(self, stages: Stages):
        super().__init__(stages)
        self._messages: List[Message] = []

    def open(self) -> None:
        self._home = os.getcwd()
        self._previous_sink = set_driver_channel(self._keep_message)

    @property
    def slots(self) -> int:
        return 1  # one experiment after the other, in this process

    def _keep_message(self, experiment_id: int, kind: str, data: Any) -> None:
        """Hand a message to the driver's listener at once; without one, keep it until the experiment ends.

        The listener may answer while the experiment runs (prune it). Kept,
        the messages reach the driver after the experiment, when an older
        metrics line says nothing the newest does not (all are in its
        metrics.jsonl): of a repetition's metrics only the newest is kept, so
        a training loop reporting every step holds no growing list.
        """
        message = Message(experiment_id, kind, data)
        if self.listener is not None:
            self.listener(message)
            return
        last = self._messages[-1] if self._messages else None
        if kind == METRICS and last is not None and last.kind == METRICS and last.data["run_id"] == data["run_id"]:
            self._messages[-1] = message
        else:
            self._messages.append(message)

    def events(self) -> Iterator[Event]:
        while self.waiting:
            try:
                outcome = run_with_time_limit(self.waiting.popleft(), self.stages)
            finally:
                self._back_home()
                ask_to_prune(None)  # asked for the experiment that ended: no retry of it inherits the request
            yield from self._messages
            self._messages.clear()
            yield outcome

    def prune(self, experiment_id: int) -> None:
        """The experiment runs in this thread: if it is the one running, should_prune() answers True from now on."""
        if running_experiment() == experiment_id:
            ask_to_prune(experiment_id)

    def _back_home(self) -> None:
        """Back to the run's working directory after a stage left it (``os.chdir``), as a pool worker goes back.

        The next experiment, and the caller of run_experiments, then start where the run started.
        """
        try:
            here: Optional[str] = os.getcwd()
        except FileNotFoundError:  # the stage removed the folder it moved to
            here = None
        if here != self._home:
            os.chdir(self._home)

    def close(self) -> None:
        if hasattr(self, "_previous_sink"):
            set_driver_channel(self._previous_sink)


def run_with_time_limit(experiment: Experiment, stages: Stages) -> Outcome:
    """run_experiment, stopped by ExperimentTimeout after ``experiment.timeout`` seconds."""
    if not experiment.timeout:
        return run_experiment(experiment, stages)
    try:
        with time_limit(experiment.timeout):
            return run_experiment(experiment, stages)
    except ExperimentTimeout:
        return timeout_outcome(experiment, experiment.timeout, killed=None)


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise ExperimentTimeout in the main thread when ``seconds`` (> 0) have passed."""
    if not seconds:
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise ExperimentTimeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
