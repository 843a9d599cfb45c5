"""Running an experiment in a child process: the one place every process backend takes it from.

backend=multiprocessing (its worker processes, _pool_worker.py), the worker
of backend=malocher on each SSH machine (ssh_worker.py, a standalone Python
process there) and the job of backend=slurm (inside a submitit job) all run
experiments in processes of their own. What such a process needs, and how
its end is recorded, is written once, here. The module imports only the
standard library and this package's experiment and logs modules, so it loads
wherever the package does (a remote machine, a compute node).

In the process that runs experiments:

- :func:`isolate_process` ``(parent_pid, lifeline=None)``: its own process
  group, death with its parent (:func:`die_with_parent`), with a lifeline the
  death of the experiment's own children too (:func:`start_watchdog`), and
  Python tracebacks of fatal signals in the experiment's stderr.log
  (:func:`faulthandler.enable`).
- :func:`run_isolated` ``(experiment, stages, max_memory, capture)``: run_experiment with
  stdout and stderr (C-level output included) in the experiment's log files,
  under an address-space limit (RLIMIT_AS) when ``max_memory`` is set; an
  exhausted limit is a MemoryError outcome worded by :func:`memory_message`.
- :func:`die_with_parent`, :func:`start_watchdog`, :func:`adopt_orphans` (a
  child subreaper, Linux) and :func:`prctl`: the pieces of the above, for a
  process that arranges them in its own order.

Around such a process (the side that started it and watches it):

- :func:`run_in_child` ``(experiment, stages, max_memory=None, capture)``: the whole
  thing in one call, for a process that runs one experiment at a time (the
  Slurm job): fork an isolated child, enforce the timeout by killing its
  process group, and turn how it ended into the Outcome.
- :func:`kill_group` ``(pgid)``: SIGKILL a process group that may have ended.
- :func:`describe_exit` ``(returncode)``: THE wording of how a process ended
  (``'exit code 3'``, ``'killed by SIGSEGV (a segmentation fault, ...)'``), from a
  return code as Popen gives it (negative: the signal); :func:`exit_code_of`
  turns a raw wait status into one.
- :func:`timeout_outcome` and :func:`died_outcome`: the Outcomes of an
  experiment whose process was killed at its timeout, or died.

And :func:`usable_cpus` (the CPUs this process may run on) and
:func:`format_bytes`.
"""
from __future__ import annotations

import faulthandler
import os
import select
import signal
import sys
import threading
import time
from typing import AbstractSet, Any, Optional

from ..experiment import CRASHED, ERROR, TIMEOUT, Capture, Experiment, Outcome, Stages, run_experiment
from ..logs import redirect_file_descriptors

__all__ = [
    "isolate_process", "run_isolated", "run_in_child", "die_with_parent", "start_watchdog", "adopt_orphans",
    "prctl", "kill_group", "describe_exit", "exit_code_of", "timeout_outcome", "died_outcome",
    "memory_message", "format_bytes", "usable_cpus", "address_space", "SIGNAL_HINTS",
]

#: prctl(2) options.
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

#: What describe_exit adds to the name of a signal that usually has one cause.
SIGNAL_HINTS = {
    "SIGSEGV": " (a segmentation fault, usually in native code)",
    "SIGBUS": " (a bus error, usually in native code)",
    "SIGABRT": " (aborted, usually by native code)",
    "SIGKILL": " (killed from outside, or by the kernel's out-of-memory killer)",
}

#: How long the watchdog waits for the driver's end of the lifeline after the worker died. The kernel sends
#: PR_SET_PDEATHSIG when the driver's thread that started the worker exits, which can be before the driver's
#: last thread has gone and closed its descriptors; a worker that ended normally is killed with its group by
#: the driver during this wait anyway.
DRIVER_EXIT_GRACE_MS = 5000

#: Seconds the child of run_in_child may take to exit after sending its outcome.
CHILD_EXIT_GRACE = 5.0


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which containers and taskset narrow)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def describe_exit(returncode: Optional[int]) -> str:
    """``'exit code 3'``, ``'killed by SIGSEGV (a segmentation fault, ...)'``; negative codes are signals."""
    if returncode is None:
        return "an unknown cause (the process could not be reaped)"
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        return f"killed by signal {-returncode}"
    return f"killed by {name}{SIGNAL_HINTS.get(name, '')}"


def exit_code_of(wait_status: int) -> int:
    """A raw wait status (os.wait's, squeue's) as a return code, negative for a signal like Popen's."""
    if os.WIFSIGNALED(wait_status):
        return -os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


def timeout_outcome(experiment: Experiment, duration: float, killed: Optional[str] = "its worker process") -> Outcome:
    """The Outcome of an experiment stopped at its timeout; ``killed`` names what was killed (None: nothing)."""
    how = f" ({killed} was killed)" if killed else ""
    return Outcome.failure(
        experiment.experiment_id, TIMEOUT,
        f"stopped after the timeout of {experiment.timeout:g} s{how}",
        error_type="ExperimentTimeout", duration=duration,
    )


def died_outcome(experiment: Experiment, returncode: Optional[int], duration: float,
                 process: str = "the worker process running the experiment", error_type: str = "WorkerCrashed",
                 max_memory: Optional[int] = None) -> Outcome:
    """The Outcome of an experiment whose ``process`` died with ``returncode`` (see describe_exit).

    With ``max_memory`` set, a death by signal also says that native code may
    crash when it cannot allocate memory.
    """
    message = f"{process} died: {describe_exit(returncode)}"
    if max_memory and returncode is not None and returncode < 0:
        message += f"; with max_memory={format_bytes(max_memory)}, native code may crash when it "
        message += "cannot allocate memory"
    return Outcome.failure(experiment.experiment_id, CRASHED, message, error_type=error_type,
                           exit_code=returncode, duration=duration)


def format_bytes(n: int) -> str:
    """``1500000000`` -> ``'1.5GB'`` (decimal units, as max_memory is usually written)."""
    for unit, factor in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if n >= factor:
            return f"{n / factor:.3g}{unit}"
    return f"{n}B"


def memory_message(max_memory: int, original: Optional[str]) -> str:
    """The message of an experiment that ran out of its max_memory."""
    detail = f" ({original})" if original else ""
    return (f"out of memory: the experiment needed more than max_memory={format_bytes(max_memory)}, "
            f"the limit on its worker process's address space{detail}")


def kill_group(pgid: int) -> None:
    """SIGKILL the process group ``pgid``; nothing happens when it has ended."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def prctl(option: int, value: int) -> bool:
    """Linux's prctl(2); False where it does not exist or fails."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes  # here: the driver imports this module too, and never calls prctl

    try:
        return ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def adopt_orphans() -> bool:
    """Become the child subreaper of this process's descendants (Linux).

    A process orphaned below this one gets it as its new parent instead of
    init, so it can still be found and killed, even in another process group
    or session. False where that is not possible.
    """
    return prctl(PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent(parent_pid: int, exit_code: int = 1) -> None:
    """Make sure this process does not outlive ``parent_pid``, even after ``kill -9`` of the parent.

    On Linux the kernel sends SIGKILL when the parent dies (PR_SET_PDEATHSIG);
    elsewhere a daemon thread watches the parent id. If the parent is already
    gone, the process exits with ``exit_code`` at once.
    """
    if not prctl(PR_SET_PDEATHSIG, signal.SIGKILL):
        threading.Thread(target=_watch_parent, args=(parent_pid, exit_code), daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(exit_code)


def _watch_parent(parent_pid: int, exit_code: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(exit_code)


def isolate_process(parent_pid: int, lifeline: Optional[int] = None) -> None:
    """Prepare this process to run experiments, before any user code: see the module docstring.

    ``lifeline`` is the read end of a pipe whose write end only the parent
    holds (see :func:`start_watchdog`); without one, only this process dies
    with its parent, not what its experiments start.
    """
    if os.getpgrp() != os.getpid():
        os.setpgid(0, 0)
    if lifeline is not None:
        start_watchdog(lifeline)
    die_with_parent(parent_pid)
    faulthandler.enable()  # a segfault's Python traceback lands in the experiment's stderr.log


def start_watchdog(lifeline: int) -> None:
    """Start the process that kills this process's group when the parent (the driver) dies.

    PR_SET_PDEATHSIG kills this process with the driver, but not what an
    experiment started (``subprocess.Popen``, a simulator): that would live on
    with parent 1. The watchdog blocks on two pipes. ``lifeline``'s write end
    only the driver holds, so EOF there means the driver is gone: the watchdog
    SIGKILLs this process group, itself included. The other pipe's write end
    only this process holds: EOF there with no EOF on ``lifeline`` within
    DRIVER_EXIT_GRACE_MS means this process ended while the driver lives, and
    the watchdog exits quietly (the driver ends the group as usual). Being a
    process of its own, it works whatever this process's main thread does
    (stuck in C holding the GIL, signals blocked).

    It starts before any user code, by a double fork: it is not a child of
    this process (code that waits for all its children never waits for it),
    yet it is in its process group, which timeouts and the driver kill as a
    whole, so it never outlives a replaced worker. It keeps no descriptor but
    the two pipes' read ends.
    """
    worker_end, worker_alive = os.pipe()  # close-on-exec: the experiment's subprocesses hold neither end
    middle = os.fork()
    if middle == 0:
        try:
            if os.fork() == 0:
                _run_watchdog(lifeline, worker_end)
        except BaseException:
            _print_exception()
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(middle, 0)
    os.close(worker_end)
    os.close(lifeline)
    if status != 0:
        os._exit(1)  # no watchdog (its error is on stderr): better no worker than one that could leave orphans
    # worker_alive stays open until this process ends; that end is the watchdog's signal


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
        _print_exception()
        os._exit(1)
    os._exit(0)


def _print_exception() -> None:
    """The traceback of the exception being handled, on stderr (the traceback module is imported on a failure)."""
    import traceback

    traceback.print_exc()


def _close_descriptors_except(keep: AbstractSet[int]) -> None:
    """Close every descriptor but ``keep`` (an empty range is skipped: closerange(0, 0) would close all)."""
    bounds = [-1, *sorted(keep), max(os.sysconf("SC_OPEN_MAX"), *keep) + 1]
    for before, after in zip(bounds, bounds[1:]):
        if after - before > 1:
            os.closerange(before + 1, after)


def run_isolated(experiment: Experiment, stages: Stages, max_memory: Optional[int] = None,
                 capture: Capture = redirect_file_descriptors, exempt: int = 0) -> Outcome:
    """run_experiment with its output in the log files, under the address-space limit if one is set.

    Only in a process of its own (a worker, a child): the experiment runs
    ``isolated`` (a KeyboardInterrupt the stage raises is its failure), its
    output is captured at the file descriptors (by ``capture``: see logs.py),
    and the limit is set on this whole process while the experiment runs,
    raised by ``exempt`` bytes of address space the process holds for itself
    (see :func:`address_space`).
    """
    if not max_memory:
        return run_experiment(experiment, stages, capture=capture, isolated=True)
    import importlib
    import resource

    importlib.import_module("traceback")  # formats a failure under the limit: imported while there is memory for it

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = max_memory + exempt if hard == resource.RLIM_INFINITY else min(max_memory + exempt, hard)
    started = time.perf_counter()
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        outcome = run_experiment(experiment, stages, capture=capture, isolated=True)
    except MemoryError:  # so short of memory that recording the failure failed too
        outcome = Outcome.failure(experiment.experiment_id, ERROR, "", error_type="MemoryError",
                                  duration=time.perf_counter() - started)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    if outcome.error_type == "MemoryError":
        outcome.message = memory_message(max_memory, outcome.message)
    return outcome


def address_space() -> int:
    """The address space of this process in bytes (what RLIMIT_AS limits), 0 where /proc does not tell."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def run_in_child(experiment: Experiment, stages: Stages, max_memory: Optional[int] = None,
                 capture: Capture = redirect_file_descriptors) -> Outcome:
    """Run the experiment in a forked, isolated child; its death or an expired timeout becomes the Outcome.

    The child has its own process group, which a timeout kills whole (what
    the experiment started included), and dies with this process.
    """
    import multiprocessing

    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_run_child, args=(os.getpid(), experiment, stages, max_memory, capture, sender),
                            daemon=True)
    started = time.monotonic()
    child.start()
    sender.close()
    pid = child.pid
    assert pid is not None  # set by start()
    _set_own_group(pid)
    try:
        if not receiver.poll(experiment.timeout or None):
            kill_group(pid)
            return timeout_outcome(experiment, time.monotonic() - started, killed="its process")
        return receiver.recv()
    except EOFError:
        child.join()
        return died_outcome(experiment, child.exitcode, time.monotonic() - started,
                            process="the process running the experiment", error_type="ExperimentCrashed")
    finally:
        receiver.close()
        child.join(CHILD_EXIT_GRACE)
        if child.is_alive():
            kill_group(pid)
            child.join()


def _set_own_group(pid: int) -> None:
    """Put ``pid`` in a group of its own (the child does so too: whichever runs first, no kill can miss it)."""
    try:
        os.setpgid(pid, pid)
    except OSError:  # the child did it first, or has already ended
        pass


def _run_child(parent_pid: int, experiment: Experiment, stages: Stages, max_memory: Optional[int],
               capture: Capture, sender: Any) -> None:
    for signum in (signal.SIGTERM, signal.SIGCONT, signal.SIGUSR2):  # the user's code gets the defaults
        signal.signal(signum, signal.SIG_DFL)
    isolate_process(parent_pid)
    sender.send(run_isolated(experiment, stages, max_memory, capture))
