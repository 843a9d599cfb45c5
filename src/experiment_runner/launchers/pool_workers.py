"""The driver's end of one worker of backend=multiprocessing: its process, its socket, its experiments.

Apart from the pool that schedules them (process_pool.py). :class:`Worker`
starts the worker process (``_pool_worker.main`` in a fresh interpreter, in
a process group of its own) and knows the experiments it was sent, in order;
:class:`WorkerChannel` is its socket, which never blocks the driver.
"""
from __future__ import annotations

import dataclasses
import math
import os
import pickle
import select
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Deque, List, Optional, Tuple

from ..experiment import Experiment
from ._pool_worker import FRAME_HEADER, WorkerSetup, frame
from .isolation import kill_group
from .pool_plan import PoolPlan

#: Bytes the driver reads from one worker's socket at a time.
READ_CHUNK = 256 * 1024

#: Bytes the driver reads from one worker before it looks at the others and the deadlines again.
READ_PER_TURN = 16 * READ_CHUNK

_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from experiment_runner.launchers._pool_worker import main; main(*map(int, sys.argv[2:5]))"
)


@dataclass
class Task:
    """One experiment sent to a worker."""

    experiment: Experiment
    #: When it started (time.monotonic): when it was sent to an idle worker, or when the experiment
    #: before it in the worker's queue finished; None while it waits in the queue.
    started: Optional[float] = None


class WorkerChannel:
    """The driver's end of a worker's socket; it never blocks.

    A message to send waits, framed, in ``outgoing`` and goes out as fast as
    the worker takes it (:meth:`flush` whenever the socket is writable); what
    arrives collects in ``incoming`` until a whole message is there. A config
    or an outcome of any size thus never stops the driver, and a worker busy
    sending a large outcome can never deadlock with a driver sending it the
    next experiment.
    """

    def __init__(self, sock: socket.socket):
        sock.setblocking(False)
        self.sock = sock
        self.outgoing: Deque[memoryview] = deque()
        self.incoming = bytearray()
        self.chunk = bytearray(READ_CHUNK)
        #: The worker closed its end (EOF): nothing more will arrive.
        self.closed = False
        #: Sending failed: the worker is gone, and nothing more is sent.
        self.broken = False

    def fileno(self) -> int:
        return self.sock.fileno()

    @property
    def sending(self) -> bool:
        return bool(self.outgoing)

    def send(self, message: Any) -> bool:
        """Queue ``message`` and send what the socket takes now; False when the worker is gone."""
        if not self.broken:
            self.outgoing.append(memoryview(frame(message)))
            self.flush()
        return not self.broken

    def flush(self) -> None:
        """Send as much of what waits as the socket takes now."""
        while self.outgoing and not self.broken:
            try:
                sent = self.sock.send(self.outgoing[0])
            except BlockingIOError:
                return
            except OSError:  # the worker is gone; its death is noticed through the wait
                self.broken = True
                self.outgoing.clear()
                return
            if sent < len(self.outgoing[0]):
                self.outgoing[0] = self.outgoing[0][sent:]
                return
            self.outgoing.popleft()

    def receive(self, limit: Optional[int] = READ_PER_TURN) -> List[Any]:
        """The whole messages that have arrived, reading at most about ``limit`` bytes (None: all there are)."""
        received = 0
        while not self.closed and (limit is None or received < limit):
            try:
                count = self.sock.recv_into(self.chunk)
            except BlockingIOError:
                break
            except OSError:  # reset by a dying worker: the same as its end closing
                count = 0
            if not count:
                self.closed = True
                break
            self.incoming += memoryview(self.chunk)[:count]
            received += count
        return self._whole_messages()

    def _whole_messages(self) -> List[Any]:
        messages = []
        while len(self.incoming) >= FRAME_HEADER.size:
            (size,) = FRAME_HEADER.unpack_from(self.incoming)
            end = FRAME_HEADER.size + size
            if len(self.incoming) < end:
                break
            messages.append(pickle.loads(self.incoming[FRAME_HEADER.size:end]))
            del self.incoming[:end]
        return messages

    def close(self) -> None:
        self.sock.close()


class Worker:
    """One worker process: its socket, its exit watcher, its lifeline and the experiments it runs."""

    def __init__(self, slot: int, plan: PoolPlan):
        """Start the worker's process; it waits for its :class:`WorkerSetup` (:meth:`set_up`) once it has started."""
        self.slot = slot
        self.ready = False
        self.stopping = False
        #: Asked to give back the experiments queued behind the one it runs; its answer has not come yet.
        self.releasing = False
        #: It said it ends after the experiment it runs (it could read no more): what it still holds then never ran.
        self.leaving = False
        self.finished = 0
        self.last_duration: Optional[float] = None
        #: Sent and not answered yet, in order; the first one runs, the others wait in the worker.
        self.tasks: Deque[Task] = deque()
        parent, child = socket.socketpair()
        #: The write end of the worker's lifeline: only the driver holds it, so it closes when the driver dies.
        lifeline_end, self.lifeline = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _BOOTSTRAP, _package_root(), str(child.fileno()), str(os.getpid()),
                 str(lifeline_end)],
                env=plan.environment(slot), stdin=subprocess.DEVNULL, pass_fds=[child.fileno(), lifeline_end],
                start_new_session=True,  # its own process group: killed as a group, and Ctrl-C is ours to handle
            )
        except BaseException:
            parent.close()
            os.close(self.lifeline)
            raise
        finally:
            child.close()
            os.close(lifeline_end)
        self.channel = WorkerChannel(parent)
        self.sentinel = _open_pidfd(self.process.pid)

    def set_up(self, setup: WorkerSetup) -> None:
        """Send the worker what it needs before its first experiment (in its slot)."""
        self.send(dataclasses.replace(setup, slot=self.slot))

    @property
    def running(self) -> Optional[Task]:
        return self.tasks[0] if self.tasks else None

    def poll_events(self) -> List[Tuple[int, int]]:
        """What to wait for: something to read (or its end closed), room to send what waits, its exit."""
        events = [(self.channel.fileno(), select.POLLIN | (select.POLLOUT if self.channel.sending else 0))]
        return events if self.sentinel is None else [*events, (self.sentinel, select.POLLIN)]

    def send(self, message: Any) -> bool:
        """False when the worker is gone (its death is noticed through the wait)."""
        return self.channel.send(message)

    def has_exited(self) -> bool:
        """Whether the process has ended, without reaping it (its pid stays ours until reap)."""
        try:
            return os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:  # reaped by someone else's SIGCHLD handler
            return True

    def wait_for_exit(self, deadline: float) -> None:
        """Give the worker until ``deadline`` (time.monotonic) to end by itself.

        Woken by its exit where the kernel gives a process descriptor (the
        sentinel), so a run's end waits no longer than its workers take to exit.
        """
        while not self.has_exited():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if self.sentinel is None:
                time.sleep(min(0.005, left))
            else:
                exited = select.poll()  # not select.select: it refuses descriptors above 1023
                exited.register(self.sentinel, select.POLLIN)
                exited.poll(math.ceil(left * 1000))

    def kill_group(self) -> None:
        """SIGKILL the worker and anything it started (its process group), unless it is already reaped."""
        if self.process.returncode is None:
            kill_group(self.process.pid)

    def reap(self) -> Optional[int]:
        """Kill the worker's process group and collect its exit status."""
        self.kill_group()
        try:
            return self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # stuck in the kernel (e.g. on a dead NFS mount)
            return None
        finally:
            self.channel.close()
            os.close(self.lifeline)
            if self.sentinel is not None:
                os.close(self.sentinel)
                self.sentinel = None


def _package_root() -> str:
    """The folder holding the experiment_runner package, so a worker imports this very copy."""
    return str(Path(__file__).resolve().parents[2])


def _open_pidfd(pid: int) -> Optional[int]:
    """A descriptor that becomes readable when ``pid`` ends (Linux >= 5.3), else None.

    The socket alone is not enough: a process the experiment forked may hold
    the worker's end open after the worker died.
    """
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def worker_deadline(worker: Worker) -> Optional[float]:
    """When the experiment ``worker`` runs must have ended (time.monotonic), or None."""
    task = worker.running
    if task is None or task.started is None or not task.experiment.timeout:
        return None
    return task.started + task.experiment.timeout


def elapsed(task: Task) -> float:
    """Seconds since ``task`` started running (0 while it waits)."""
    return time.monotonic() - task.started if task.started is not None else 0.0
