"""The worker process of backend=multiprocessing (see process_pool.py for the design).

The driver starts it as a fresh interpreter whose environment already holds
the thread limits and CUDA_VISIBLE_DEVICES of its slot, hands it a
:class:`WorkerSetup`, then sends it experiments (in chunks when they are short) over a socket
and reads back one Outcome each, preceded by what the experiment told the
driver (:mod:`experiment_runner.channel`, a ``message`` each); experiments
come in chunks (a list, run in order); ``None`` or a closed socket means stop.
Each message is a pickle preceded by its length (:data:`FRAME_HEADER`). The
worker's end of the socket blocks; the driver's never does (see process_pool.py).

A worker's start is the fixed cost of every run (benchmarks/bench_worker_start.py),
so it imports only what serving experiments needs: its end of the socket is read
and written as a plain descriptor (:class:`DriverSocket`, no socket module), the
stages are loaded with :func:`pickle.loads` (stages pickled by value import
cloudpickle's reconstructors themselves; by reference they need none), and a
traceback is formatted only when something failed.
A thread of the worker reads what the driver sends as it arrives (:class:`Inbox`),
so that it can give back queued experiments while one runs.

Before any user code runs the worker isolates itself (see
:func:`isolation.isolate_process`): it dies with the driver, and a watchdog
process sees to it that nothing an experiment started outlives the driver,
even after ``kill -9`` of the driver.
"""
from __future__ import annotations

import os
import pickle
import struct
import sys
import threading
from dataclasses import dataclass
from collections import deque
from typing import Any, Deque, List, Optional

from ..channel import STARTED, Sink, set_driver_channel
from ..experiment import Experiment, Stages
from ..metrics import ask_to_prune
from ..logs import WorkerCapture
from .isolation import address_space, isolate_process, run_isolated

#: What precedes each pickled message on the socket: its length in bytes.
FRAME_HEADER = struct.Struct("!Q")

#: The driver's request for the experiments queued in a worker and not started (answered with their ids).
RELEASE = "release"

#: Bytes of stack of the worker's reading thread (Inbox): it reads and unpickles frames, no deep calls.
READING_STACK = 256 * 1024

#: ``(PRUNE, experiment_id)``: the driver asks the experiment running in the worker to stop early (not answered).
PRUNE = "prune"


@dataclass(frozen=True)
class WorkerSetup:
    """What every worker needs before its first experiment."""

    #: The Stages, pickled with cloudpickle (functions of ``__main__`` travel by value).
    stages: bytes
    #: The driver's sys.path, so stage modules import in the worker as they do in the driver.
    sys_path: List[str]
    #: Address-space limit in bytes while an experiment runs, or None.
    max_memory: Optional[int] = None
    #: The worker's slot in the pool: it names the worker's capture files (logs.live_files).
    slot: int = 0


def main(fd: int, driver_pid: int, lifeline: int) -> None:
    """Entry point: serve experiments on the socket ``fd`` until told to stop, then exit at once.

    ``lifeline`` is the read end of a pipe whose write end only the driver
    holds (see :func:`isolation.start_watchdog`). The exit skips interpreter shutdown
    (``os._exit``): a thread an experiment left running must not keep a
    finished worker, and its slot, alive.
    """
    os.set_inheritable(fd, False)
    isolate_process(driver_pid, lifeline)
    sock = DriverSocket(fd)
    try:
        setup = receive_message(sock)
        stages = load_stages(setup, sock)
        if stages is not None:
            send_message(sock, ("ready", None))
            serve(sock, stages, setup.max_memory, WorkerCapture(setup.slot))
    except (EOFError, OSError):
        pass  # the driver is gone or closed the socket: nothing left to do
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


class DriverSocket:
    """The worker's end of its socket, read and written as a descriptor (blocking), as a socket would be."""

    def __init__(self, fd: int):
        self.fd = fd

    def recv_into(self, buffer: memoryview) -> int:
        """Read what has arrived into ``buffer``, waiting for something; 0 once the driver closed its end."""
        return os.readv(self.fd, [buffer])

    def sendall(self, data: bytes) -> None:
        """Write all of ``data``, waiting while the socket is full."""
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]


def frame(message: Any) -> bytes:
    """``message`` as it travels on the socket: its pickle, preceded by the pickle's length."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return FRAME_HEADER.pack(len(data)) + data


#: Whole frames only: a stage's thread may tell the driver something while the main thread sends.
_sending = threading.Lock()


def send_message(sock: DriverSocket, message: Any) -> None:
    """Send ``message`` whole (blocking: the driver reads whenever something arrives)."""
    data = frame(message)
    with _sending:
        sock.sendall(data)


def channel_to_driver(sock: DriverSocket) -> Sink:
    """The sink of channel.tell_driver in a worker: a ``message`` frame, read by the driver as any other.

    STARTED is not sent: the driver knows when a worker starts an experiment, and a frame per
    experiment is a cost that short experiments feel.
    """

    def send(experiment_id: int, kind: str, data: Any) -> None:
        if kind != STARTED:
            send_message(sock, ("message", (experiment_id, kind, data)))

    return send


def receive_message(sock: DriverSocket) -> Any:
    """The next message from the driver; EOFError when the driver closed the socket."""
    (size,) = FRAME_HEADER.unpack(_receive_exactly(sock, FRAME_HEADER.size))
    return pickle.loads(_receive_exactly(sock, size))


def _receive_exactly(sock: DriverSocket, size: int) -> bytearray:
    buffer = bytearray(size)
    view = memoryview(buffer)
    received = 0
    while received < size:
        count = sock.recv_into(view[received:])
        if not count:
            raise EOFError("the driver closed the socket")
        received += count
    return buffer


def load_stages(setup: WorkerSetup, sock: DriverSocket) -> Optional[Stages]:
    """Unpickle the stages (importing the user's modules); report a failure to the driver."""
    sys.path[:] = setup.sys_path
    try:
        return pickle.loads(setup.stages)  # what cloudpickle.loads is; a pickle by value imports cloudpickle itself
    except BaseException:
        import traceback

        send_message(sock, ("setup_error", traceback.format_exc()))
        return None


def serve(sock: DriverSocket, stages: Stages, max_memory: Optional[int], capture: WorkerCapture) -> None:
    """Run experiments until told to stop; an experiment that changes directory does not move the next one.

    What the experiments print goes to the worker's capture files, and from
    there to each one's logs when it printed something (see logs.WorkerCapture).
    """
    home = os.getcwd()
    set_driver_channel(channel_to_driver(sock))
    inbox = Inbox(sock)
    reading_space = inbox.start_reading()
    for experiment in iter(inbox.next_experiment, None):
        outcome = run_isolated(experiment, stages, max_memory,
                               capture.for_experiment(experiment.experiment_id, experiment.out_path), reading_space)
        if os.getcwd() != home:
            os.chdir(home)
        if outcome.ok:  # the driver's copy of the experiment is this one: its results line reuses the text
            outcome.record = experiment.record_text()
        ask_to_prune(None)  # before the outcome, after which the driver may ask for the next: a retry starts unasked
        send_message(sock, ("outcome", outcome))  # before the next one starts: a crash is charged to it alone


class Inbox:
    """What the driver sends, read as it arrives by a thread of its own while an experiment runs.

    Experiments queue here in order. A request to stop the running
    experiment early (:data:`PRUNE`) sets what its ``should_prune()`` reads,
    at once. The driver may ask for the queued ones
    back (:data:`RELEASE`: another worker has gone idle while the experiment
    running here takes long): they are answered at once, whatever the
    experiment is doing, and never started here. Taking the next experiment
    and giving the queue back hold one lock, so each queued experiment is
    either started here or given back, never both.
    """

    def __init__(self, sock: DriverSocket):
        self.sock = sock
        self.queue: Deque[Experiment] = deque()
        self.changed = threading.Condition()
        #: Set by the reading thread once it runs and holds all the memory it keeps.
        self.reading = threading.Event()
        #: Nothing more will come: the driver said stop (the queue is still run) or went away (it is not).
        self.closed = False

    def start_reading(self) -> int:
        """Start the reading thread; the address space it holds, in bytes, which max_memory does not count.

        The thread gets a small stack, and its own malloc arena (glibc reserves
        64 MB of address space per thread's arena, nearly none of it used) is
        made at once and measured: without that, max_memory would leave the
        experiments some 70 MB less than before the worker had the thread.
        """
        before = address_space()
        default_stack = threading.stack_size(READING_STACK)
        try:
            threading.Thread(target=self.read, name="experiment-runner-inbox", daemon=True).start()
        finally:
            threading.stack_size(default_stack)
        self.reading.wait()
        return max(0, address_space() - before)

    def read(self) -> None:
        """The reading thread: until the driver says stop or goes away."""
        bytearray(4096)  # an allocation too large for Python's own allocator: malloc makes this thread's arena now
        self.reading.set()
        try:
            while True:
                message = receive_message(self.sock)
                if message is None:
                    break
                if message == RELEASE:
                    send_message(self.sock, ("released", self._give_back()))
                elif type(message) is tuple:  # (PRUNE, experiment_id): asked at once, whatever the experiment does
                    ask_to_prune(message[1])
                else:
                    with self.changed:
                        self.queue.extend(message)
                        self.changed.notify()
        except (EOFError, OSError):  # the driver is gone: what is queued would be recorded by nobody
            with self.changed:
                self.queue.clear()
        except BaseException:  # e.g. a MemoryError while an experiment holds nearly all of max_memory
            self._stop_reading_after_failure()
        with self.changed:
            self.closed = True
            self.changed.notify()

    def next_experiment(self) -> Optional[Experiment]:
        """The next queued experiment, waiting for one; None once the driver said stop or went away."""
        with self.changed:
            while not self.queue and not self.closed:
                self.changed.wait()
            return self.queue.popleft() if self.queue else None

    def _stop_reading_after_failure(self) -> None:
        """The worker can read no more: it tells the driver why, gives its queue back, and ends after the
        running experiment (the driver replaces it, and sends nothing more)."""
        import traceback

        why = traceback.format_exc()
        try:
            send_message(self.sock, ("leaving", (self._give_back(), why)))
        except BaseException:  # nothing left to tell it with: the driver sees the worker end with experiments in it
            traceback.print_exc()

    def _give_back(self) -> List[int]:
        with self.changed:
            released = [experiment.experiment_id for experiment in self.queue]
            self.queue.clear()
        return released
