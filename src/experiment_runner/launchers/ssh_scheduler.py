"""The run's machines for backend=malocher: connected once, each one's slots kept busy with what is submitted.

Imported only when the backend runs (it imports asyncssh through
:mod:`.ssh_machines`). Everything here runs on the session's event loop
thread. Submitted experiments wait in the session's ``waiting`` deque (the
driver appends to it, this side takes from it as slots free up); what the
driver should see goes out through ``emit``: an :class:`Outcome` per
finished attempt, a :class:`Message` an experiment sent, the text of a
warning, or an exception that ends the run.
"""
from __future__ import annotations

import asyncio
import base64
import collections
import json
import pickle
from pathlib import Path
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

import asyncssh

from ..channel import Message
from ..experiment import CRASHED, Experiment, Outcome
from .ssh_jobs import Jobs
from .ssh_machines import HostKeys, Machine, MachineError, outcome_from_report, reason_of, worker_command
from .ssh_options import NoMachineError, NoMachineReachableError, SSHOptions

#: An experiment that was running on this many lost machines fails instead of moving to another one.
MAX_LOSSES = 2


class Scheduler:
    """Connects to the machines once and runs every submitted experiment on the one with the most free slots."""

    def __init__(self, options: SSHOptions, client_keys: Sequence[Any], jobs: Jobs, waiting: Deque[Experiment],
                 emit: Callable[[Any], None], num_cpus: float, max_memory: Optional[int]):
        self.options = options
        self.client_keys = client_keys
        self.jobs = jobs
        self.waiting = waiting
        self.emit = emit
        self.num_cpus = num_cpus
        self.max_memory = max_memory
        self.host_keys = HostKeys(Path(options.known_hosts).expanduser(), options.trust_on_first_use)
        self.machines = [Machine(address) for address in options.machines]
        self.losses: Dict[int, int] = collections.Counter()
        self.closing = False
        #: The last machine lost and why, once every machine is lost.
        self._all_lost: Optional[Tuple[Machine, str]] = None
        self._listeners: List["asyncio.Task[None]"] = []

    async def open(self) -> List[str]:
        """Connect to every machine and start its worker; returns a warning per machine left out.

        Raises NoMachineReachableError when no machine can run experiments.
        """
        command = worker_command(self.options.python, self.jobs)
        results = await asyncio.gather(
            *(m.connect(self.options, self.client_keys, self.host_keys, command, self.num_cpus)
              for m in self.machines),
            return_exceptions=True)
        failures = [(m, r) for m, r in zip(self.machines, results) if isinstance(r, BaseException)]
        for machine, result in failures:
            if not isinstance(result, MachineError):
                raise result
            machine.lost = True
        if len(failures) == len(self.machines):
            reasons = "; ".join(f"{m.name}: {r}" for m, r in failures)
            raise NoMachineReachableError(
                f"backend=malocher cannot run on any machine of malocher_machines: {reasons}")
        for machine in self.machines:
            if not machine.lost:
                self._listeners.append(asyncio.ensure_future(self._listen(machine)))
        return [f"malocher: machine {machine.name} is left out: {reason}" for machine, reason in failures]

    def dispatch(self) -> None:
        """Send waiting experiments to the machines with the most free slots."""
        while self.waiting and not self.closing:
            if self._all_lost is not None:
                self._no_machine_left(*self._all_lost)
                return
            machine = max(self.machines, key=lambda m: m.free)
            if machine.free <= 0:
                return
            experiment = self.waiting.popleft()
            self.jobs.write(experiment)
            try:
                machine.start(experiment, self.max_memory)
            except (OSError, asyncssh.Error) as error:
                self.waiting.appendleft(experiment)
                self._lose(machine, reason_of(error))

    def prune(self, experiment_id: int) -> None:
        """Ask the machine running ``experiment_id`` to stop it early (see Session.prune)."""
        for machine in self.machines:
            try:
                machine.prune(experiment_id)
            except (OSError, asyncssh.Error) as error:  # the machine is lost: its experiment's outcome says so
                self._lose(machine, reason_of(error))

    async def _listen(self, machine: Machine) -> None:
        assert machine.worker is not None
        while True:
            try:
                line = await machine.worker.stdout.readline()
            except (OSError, asyncssh.Error) as error:
                reason = reason_of(error)
                break
            if not line:
                reason = await machine.ended()
                break
            try:
                self._handle(machine, json.loads(line))
            except Exception as error:  # a message this driver cannot read: the run cannot go on
                self.emit(error)
                return
        if not self.closing:
            self._lose(machine, reason)

    def _handle(self, machine: Machine, report: Dict[str, Any]) -> None:
        """A worker's line: a message from a running experiment, or an experiment that ended."""
        if "message" in report:
            self.emit(_message(report))
            return
        experiment = machine.running.pop(report["done"])
        self._report(outcome_from_report(experiment, report, machine.host))
        self.dispatch()

    def _report(self, outcome: Outcome) -> None:
        self.jobs.note(outcome.experiment_id, outcome.ok)
        self.emit(outcome)

    def _lose(self, machine: Machine, reason: str) -> None:
        """Take a machine out; its experiments in flight go back to the queue (or fail after MAX_LOSSES)."""
        if machine.lost:
            return
        machine.lost = True
        moved = []
        for experiment in machine.running.values():
            self.losses[experiment.experiment_id] += 1
            if self.losses[experiment.experiment_id] < MAX_LOSSES:
                moved.append(experiment)
            else:
                self._report(_lost_with_its_machine(experiment, machine, reason))
        machine.running.clear()
        self.waiting.extendleft(reversed(moved))
        if all(m.lost for m in self.machines):
            self._all_lost = (machine, reason)
            self.dispatch()  # fails the run if anything is left to run
            return
        self.emit(f"malocher: lost machine {machine.name} ({reason}); "
                  f"its {len(moved)} experiments in flight run on the other machines")
        self.dispatch()

    def _no_machine_left(self, machine: Machine, reason: str) -> None:
        """Every machine is lost and experiments wait: the run ends with an error (once)."""
        unfinished = len(self.waiting)
        self.waiting.clear()
        self.emit(NoMachineError(
            f"backend=malocher lost every machine, the last one {machine.name}: {reason}; "
            f"{unfinished} experiments did not finish (finished results are kept: run again with "
            "if_exists=resume to finish)"))

    async def close(self) -> None:
        """Stop every worker (killing its experiments) and close every connection."""
        self.closing = True
        for listener in self._listeners:
            listener.cancel()
        await asyncio.gather(*(m.stop() for m in self.machines), return_exceptions=True)
        await asyncio.gather(*self._listeners, return_exceptions=True)


def _message(line: Dict[str, Any]) -> Message:
    """The Message a worker passed on; data that was not JSON came pickled."""
    data = pickle.loads(base64.b64decode(line["pickled"])) if "pickled" in line else line.get("data")
    return Message(line["message"], line["kind"], data)


def _lost_with_its_machine(experiment: Experiment, machine: Machine, reason: str) -> Outcome:
    outcome = Outcome.failure(
        experiment.experiment_id, CRASHED,
        f"its machine was lost {MAX_LOSSES} times while it ran, the last one {machine.name}: {reason}",
        error_type="MachineLost")
    outcome.host = machine.host
    return outcome
