"""A run's session on Ray: one connection, the stages shipped once, experiments as tasks until it closes.

- Opening connects to the cluster or starts the embedded Ray
  (:class:`~experiment_runner.launchers.ray_connection.RayConnection`),
  refuses what no node can run, and ships the stages. All of it before the
  run writes anything.
- Each experiment is one Ray task that calls ``run_experiment`` on a worker.
  An experiment with a timeout runs as a generator task that first reports
  that it started, so the driver times it from its real start (not from its
  submission, which may wait in Ray's queue) and force-cancels it after the
  timeout.
- The session keeps at most ``ray_max_in_flight`` tasks in flight (by
  default as many as keep the cluster busy: see
  :class:`~experiment_runner.launchers.ray_resources.InFlightWindow`),
  taking the experiments in the order submitted, a retry (submitted as soon
  as its experiment failed) before the others still waiting. The driver may
  submit at any time, also while it iterates :meth:`RaySession.events`.
  Outcomes stream in with ``ray.wait``, so the driver's memory stays flat
  however many experiments run; what finishes within ``GATHER_SECONDS``
  costs one ``ray.wait`` and one ``ray.get``, not one of each per task.
- Closing does not cancel its tasks one by one: a force-cancel racing with a
  task that just finished crashes Ray's core worker in the driver ("Check
  failed: ... Tried to complete task that was not pending"). It ends the
  driver's Ray job instead, and Ray kills the workers of an ended job
  (shutting the embedded Ray down kills them all). Only on a connection the
  user opened, which the run leaves open, are its tasks cancelled.
- Messages and pruning: a Ray task has no channel back to the driver while
  it runs. The session follows the metrics.jsonl of the experiments in flight
  (waking at least every ``FOLLOW_SECONDS``) and yields their metrics
  messages; :meth:`RaySession.prune` writes a marker file into the
  experiment's folder that its ``should_prune()`` looks for (see
  :mod:`.metrics_follower`; the out_path must be on a filesystem the nodes share).
"""
from __future__ import annotations

import math
import os
import pickle
import socket
import time
from dataclasses import replace
from typing import Any, Dict, Iterator, List, Optional, Tuple

import ray
import ray.exceptions as ray_errors

from ..experiment import Experiment, Outcome, Stages
from ..settings import RunSettings
from .base import Event, Session
from .metrics_follower import MetricsFollower
from .ray_connection import RayConnection
from .ray_options import RayOptions
from .ray_outcomes import Flight, crashed, outcome_from_error, timed_out
from .ray_resources import InFlightWindow, alive_nodes, check_schedulable, count_slots, remote_options
from .ray_resources import resource_request
from .ray_tasks import TASK_STARTED, SessionTasks, ShippedStages, ship_stages

__all__ = ["RaySession"]

#: Longest single ray.wait, so Ctrl-C and deadlines are noticed promptly.
POLL_SECONDS = 1.0
#: How long one ray.wait gathers tasks that finish, so that many outcomes cost one wait and one get.
GATHER_SECONDS = 0.02
#: How long closing a borrowed connection waits for its cancelled tasks to end.
CLOSE_WAIT_SECONDS = 5.0


class RaySession(Session):
    """backend=ray's session: see the module doc."""

    def __init__(self, stages: Stages, settings: RunSettings, options: RayOptions):
        super().__init__(stages)
        self.settings = settings
        self.options = options
        self._connection = RayConnection(options)
        self._shipped: Optional[ShippedStages] = None
        self._flights: Dict[Any, Flight] = {}
        #: Those of ``_flights`` with a timeout: the only ones with deadlines.
        self._timed: Dict[Any, Flight] = {}
        self._tasks: Optional[SessionTasks] = None
        self._window = InFlightWindow(1, fixed=1)
        self._follower = MetricsFollower()
        #: The host of every task on the embedded Ray: this machine.
        self._host = socket.gethostname() if options.embedded else None

    def open(self) -> None:
        """Reach Ray, refuse what no node can run, ship the stages; a UsageError when there is nowhere to run."""
        self._connection.open()
        request = resource_request(self.settings, self.options)
        self._tasks = SessionTasks.fresh(remote_options(request))
        nodes = alive_nodes()
        check_schedulable(request, nodes)
        self._window = InFlightWindow(count_slots(request, nodes), fixed=self.options.max_in_flight)
        self._shipped = ship_stages(self.stages, self._tasks)

    def events(self) -> Iterator[Event]:
        """Outcomes as tasks finish; an experiment submitted meanwhile runs as soon as there is room."""
        while True:
            self._fill()
            if not self._flights:
                return
            for flight, delivered in self._arrivals():
                outcome = self._outcome(flight, delivered)
                if outcome is not None:
                    self._land(flight)
                    yield outcome
                    self._fill()
            yield from self._enforce_deadlines()
            yield from self._follower.messages()

    @property
    def slots(self) -> Optional[int]:
        """How many experiments asking this run's resources the cluster's live nodes run at once, counted when
        the session opened (a node added later is not counted)."""
        return self._window.slots if self._shipped is not None else None

    def prune(self, experiment_id: int) -> None:
        """Write the experiment's marker file, if it is in flight: it stops within about MARKER_LOOK_SECONDS."""
        self._follower.prune(experiment_id)

    def close(self) -> None:
        """Stop what is in flight (see the module doc), disconnect, and stop shipping code by value."""
        try:
            self._follower.close()
            if self._connection.borrowed:
                self._cancel_all()
            self._flights.clear()
            self._timed.clear()
            self._connection.close()
        finally:
            if self._shipped is not None:
                self._shipped.release()
                self._shipped = None

    def _fill(self) -> None:
        while self.waiting and len(self._flights) < self._window.size:
            flight = self._submit(self.waiting.popleft())
            self._flights[flight.handle] = flight
            self._follower.follow(flight.experiment)
            if flight.timed:
                self._timed[flight.handle] = flight

    def _land(self, flight: Flight) -> None:
        self._follower.forget(flight.experiment.experiment_id)
        del self._flights[flight.handle]
        self._timed.pop(flight.handle, None)

    def _submit(self, experiment: Experiment) -> Flight:
        assert self._tasks is not None and self._shipped is not None, "events() of a session that is not open"
        # Workers may run in another directory (or on another machine): give them an absolute out_path.
        shipped = experiment
        if not os.path.isabs(experiment.out_path):
            shipped = replace(experiment, out_path=os.path.abspath(experiment.out_path))
        handle = self._tasks.submit(shipped, self._shipped.ref)
        return Flight(experiment, handle, host=self._host)

    def _wait(self) -> List[Any]:
        """The handles with something to read, waiting at most until the next deadline.

        Gathers what finishes within GATHER_SECONDS in one ray.wait (each
        call costs the driver time in proportion to the tasks in flight),
        then, if nothing did, waits for the first to finish.
        """
        handles = list(self._flights)
        next_deadline = min((flight.deadline() for flight in self._timed.values()), default=math.inf)
        timeout = max(0.0, min(POLL_SECONDS, next_deadline - time.monotonic(), self._follower.seconds_to_next_look()))
        gather = min(timeout, GATHER_SECONDS)
        ready, _ = ray.wait(handles, num_returns=len(handles), timeout=gather)
        if not ready and timeout > gather:
            ready, _ = ray.wait(handles, num_returns=1, timeout=timeout - gather)
        return ready

    def _arrivals(self) -> List[Tuple[Flight, Any]]:
        """Each flight with something to read and what it delivered: a value, or the error reading it raised.

        The values of experiments without a timeout are fetched with one ray.get for them all.
        """
        flights = [self._flights[handle] for handle in self._wait()]
        plain = [flight.handle for flight in flights if not flight.timed]
        values = dict(zip(plain, _get_each(plain)))
        return [(flight, _next_item(flight.handle) if flight.timed else values[flight.handle]) for flight in flights]

    def _outcome(self, flight: Flight, delivered: Any) -> Optional[Outcome]:
        """The flight's outcome, or None when what arrived was its start."""
        if isinstance(delivered, (StopIteration, ray_errors.RayError)):
            if flight.cancelled is not None:
                return timed_out(flight)
            if isinstance(delivered, StopIteration):
                return crashed(flight, "the Ray task ended without reporting an outcome")
            return outcome_from_error(flight, delivered)
        if isinstance(delivered, tuple) and delivered[:1] == (TASK_STARTED,):
            flight.started, flight.host = time.monotonic(), delivered[1]
            return None
        outcome = pickle.loads(delivered)
        self._window.observe(outcome.duration)
        return outcome

    def _enforce_deadlines(self) -> Iterator[Outcome]:
        now = time.monotonic()
        for handle, flight in list(self._timed.items()):
            if flight.deadline() > now:
                continue
            if flight.cancelled is None:
                flight.cancelled = now
                ray.cancel(handle, force=True)
            else:
                self._land(flight)
                yield timed_out(flight)

    def _cancel_all(self) -> None:
        """Force-cancel every task still in flight and give them a moment to end."""
        handles = list(self._flights)
        self._flights.clear()
        self._timed.clear()
        if not handles:
            return
        for handle in handles:
            try:
                ray.cancel(handle, force=True)
            except ray_errors.RayError:  # it ended meanwhile: nothing left to cancel
                continue
        # Only waiting: the tasks' own errors (cancelled, crashed) are read by nobody, the run is stopping.
        ray.wait(handles, num_returns=len(handles), timeout=CLOSE_WAIT_SECONDS)


def _get_each(refs: List[Any]) -> List[Any]:
    """The value of each ref, or the error reading it raised; one ray.get for them all unless one of them failed."""
    if not refs:
        return []
    try:
        return ray.get(refs)
    except ray_errors.RayError:
        return [_get_one(ref) for ref in refs]


def _get_one(ref: Any) -> Any:
    try:
        return ray.get(ref)
    except ray_errors.RayError as error:
        return error


def _next_item(generator: Any) -> Any:
    """What a timed experiment's task yielded next (its start, then its outcome), or the error reading it raised."""
    try:
        return ray.get(next(generator))
    except (StopIteration, ray_errors.RayError) as error:
        return error
