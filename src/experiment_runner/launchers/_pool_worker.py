"""The worker process of backend=multiprocessing (see process_pool.py for the design).

The driver starts it as a fresh interpreter whose environment already holds
the thread limits and CUDA_VISIBLE_DEVICES of its slot, hands it a
:class:`WorkerSetup`, then sends it experiments one at a time over a socket
and reads back one Outcome each; ``None`` or a closed socket means stop.
Each message is a pickle preceded by its length (:data:`FRAME_HEADER`). The
worker's end of the socket blocks; the driver's never does (see process_pool.py).

Before any user code runs the worker starts a watchdog process (see
:func:`start_watchdog`), so that nothing an experiment started outlives the
driver, even after ``kill -9`` of the driver.
"""
from __future__ import annotations

import faulthandler
import os
import pickle
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import AbstractSet, Any, List, Optional

from ..experiment import ERROR, Experiment, Outcome, Stages, run_experiment
from ..logs import redirect_file_descriptors

_PR_SET_PDEATHSIG = 1

#: What precedes each pickled message on the socket: its length in bytes.
FRAME_HEADER = struct.Struct("!Q")


@dataclass(frozen=True)
class WorkerSetup:
    """What every worker needs before its first experiment."""

    #: The Stages, pickled with cloudpickle (functions of ``__main__`` travel by value).
    stages: bytes
    #: The driver's sys.path, so stage modules import in the worker as they do in the driver.
    sys_path: List[str]
    #: Address-space limit in bytes while an experiment runs, or None.
    max_memory: Optional[int] = None


def main(fd: int, driver_pid: int, lifeline: int) -> None:
    """Entry point: serve experiments on the socket ``fd`` until told to stop, then exit at once.

    ``lifeline`` is the read end of a pipe whose write end only the driver
    holds (see :func:`start_watchdog`). The exit skips interpreter shutdown
    (``os._exit``): a thread an experiment left running must not keep a
    finished worker, and its slot, alive.
    """
    os.set_inheritable(fd, False)
    start_watchdog(lifeline)
    die_with_driver(driver_pid)
    faulthandler.enable()  # a segfault's Python traceback lands in the experiment's stderr.log
    sock = socket.socket(fileno=fd)
    try:
        setup = receive_message(sock)
        stages = load_stages(setup, sock)
        if stages is not None:
            send_message(sock, ("ready", None))
            serve(sock, stages, setup.max_memory)
    except (EOFError, OSError):
        pass  # the driver is gone or closed the socket: nothing left to do
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def frame(message: Any) -> bytes:
    """``message`` as it travels on the socket: its pickle, preceded by the pickle's length."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return FRAME_HEADER.pack(len(data)) + data


def send_message(sock: socket.socket, message: Any) -> None:
    """Send ``message`` whole (blocking: the driver reads whenever something arrives)."""
    sock.sendall(frame(message))


def receive_message(sock: socket.socket) -> Any:
    """The next message from the driver; EOFError when the driver closed the socket."""
    (size,) = FRAME_HEADER.unpack(_receive_exactly(sock, FRAME_HEADER.size))
    return pickle.loads(_receive_exactly(sock, size))


def _receive_exactly(sock: socket.socket, size: int) -> bytearray:
    buffer = bytearray(size)
    view = memoryview(buffer)
    received = 0
    while received < size:
        count = sock.recv_into(view[received:])
        if not count:
            raise EOFError("the driver closed the socket")
        received += count
    return buffer


def start_watchdog(lifeline: int) -> None:
    """Start the process that kills this worker's process group when the driver dies.

    PR_SET_PDEATHSIG kills the worker with the driver, but not what an
    experiment started (``subprocess.Popen``, a simulator): that would live on
    with parent 1. The watchdog blocks on two pipes. ``lifeline``'s write end
    only the driver holds, so EOF there means the driver is gone: the watchdog
    SIGKILLs the worker's process group, itself included. The other pipe's
    write end only this worker holds: EOF there with no EOF on ``lifeline``
    within DRIVER_EXIT_GRACE_MS means the worker ended while the driver lives,
    and the watchdog exits quietly (the driver ends the group as usual). Being a process of its own, it works whatever the
    worker's main thread does (stuck in C holding the GIL, signals blocked).

    It starts before any user code, by a double fork: it is not a child of
    the worker (code that waits for all its children never waits for it), yet
    it is in the worker's process group, which timeouts and the driver kill as
    a whole, so it never outlives a replaced worker. It keeps no descriptor of
    the worker but the two pipes' read ends.
    """
    worker_end, worker_alive = os.pipe()  # close-on-exec: the experiment's subprocesses hold neither end
    middle = os.fork()
    if middle == 0:
        try:
            if os.fork() == 0:
                _run_watchdog(lifeline, worker_end)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(middle, 0)
    os.close(worker_end)
    os.close(lifeline)
    if status != 0:
        os._exit(1)  # no watchdog (its error is on stderr): better no worker than one that could leave orphans
    # worker_alive stays open until this process ends; that end is the watchdog's signal


#: How long the watchdog waits for the driver's end of the lifeline after the worker died. The kernel sends
#: PR_SET_PDEATHSIG when the driver's thread that started the worker exits, which can be before the driver's
#: last thread has gone and closed its descriptors; a worker that ended normally is killed with its group by
#: the driver during this wait anyway.
DRIVER_EXIT_GRACE_MS = 5000


def _run_watchdog(lifeline: int, worker_end: int) -> None:
    """The watchdog's whole life (see start_watchdog); never returns."""
    try:
        _close_descriptors_except({0, 1, 2, lifeline, worker_end})
        either = select.poll()
        for fd in (lifeline, worker_end):
            either.register(fd, select.POLLIN)
        either.poll()  # nobody writes to either pipe: the first event is an EOF
        driver = select.poll()
        driver.register(lifeline, select.POLLIN)
        if driver.poll(DRIVER_EXIT_GRACE_MS):  # the driver's end closed, now or in a moment
            os.killpg(os.getpgrp(), signal.SIGKILL)
    except BaseException:
        traceback.print_exc()
        os._exit(1)
    os._exit(0)


def _close_descriptors_except(keep: AbstractSet[int]) -> None:
    """Close every descriptor but ``keep`` (an empty range is skipped: closerange(0, 0) would close all)."""
    bounds = [-1, *sorted(keep), max(os.sysconf("SC_OPEN_MAX"), *keep) + 1]
    for before, after in zip(bounds, bounds[1:]):
        if after - before > 1:
            os.closerange(before + 1, after)


def die_with_driver(driver_pid: int) -> None:
    """Make sure this worker does not outlive the driver, even after ``kill -9`` of the driver.

    On Linux the kernel sends SIGKILL when the parent dies (PR_SET_PDEATHSIG);
    elsewhere a daemon thread watches the parent id.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    else:
        threading.Thread(target=_watch_parent, args=(driver_pid,), daemon=True).start()
    if os.getppid() != driver_pid:  # the driver died before the line above took effect
        os._exit(1)


def _watch_parent(driver_pid: int) -> None:
    while os.getppid() == driver_pid:
        time.sleep(0.5)
    os._exit(1)


def load_stages(setup: WorkerSetup, sock: socket.socket) -> Optional[Stages]:
    """Unpickle the stages (importing the user's modules); report a failure to the driver."""
    sys.path[:] = setup.sys_path
    try:
        import cloudpickle

        return cloudpickle.loads(setup.stages)
    except BaseException:
        send_message(sock, ("setup_error", traceback.format_exc()))
        return None


def serve(sock: socket.socket, stages: Stages, max_memory: Optional[int]) -> None:
    """Run experiments until told to stop; an experiment that changes directory does not move the next one."""
    home = os.getcwd()
    while True:
        experiment = receive_message(sock)
        if experiment is None:
            return
        outcome = run_limited(experiment, stages, max_memory)
        if os.getcwd() != home:
            os.chdir(home)
        send_message(sock, ("outcome", outcome))


def run_limited(experiment: Experiment, stages: Stages, max_memory: Optional[int]) -> Outcome:
    """run_experiment with its output in the log files, under the address-space limit if one is set.

    The worker of backend=multiprocessing and the experiment process of
    backend=malocher call it: processes of their own, so the experiment runs
    ``isolated`` (a KeyboardInterrupt the stage raises is its failure).
    """
    if not max_memory:
        return run_experiment(experiment, stages, capture=redirect_file_descriptors, isolated=True)
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = max_memory if hard == resource.RLIM_INFINITY else min(max_memory, hard)
    started = time.perf_counter()
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        outcome = run_experiment(experiment, stages, capture=redirect_file_descriptors, isolated=True)
    except MemoryError:  # so short of memory that recording the failure failed too
        outcome = Outcome.failure(experiment.experiment_id, ERROR, "", error_type="MemoryError",
                                  duration=time.perf_counter() - started)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    if outcome.error_type == "MemoryError":
        outcome.message = memory_message(max_memory, outcome.message)
    return outcome


def memory_message(max_memory: int, original: Optional[str]) -> str:
    detail = f" ({original})" if original else ""
    return (f"out of memory: the experiment needed more than max_memory={format_bytes(max_memory)}, "
            f"the limit on its worker process's address space{detail}")


def format_bytes(n: int) -> str:
    """``1500000000`` -> ``'1.5GB'`` (decimal units, as max_memory is usually written)."""
    for unit, factor in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if n >= factor:
            return f"{n / factor:.3g}{unit}"
    return f"{n}B"
