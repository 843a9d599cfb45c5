"""backend=malocher: experiments on SSH machines that share a filesystem with the driver.

The model of the malocher library the original package used: the driver
serializes the stages (cloudpickle) into a job folder on the shared
filesystem, each machine runs this package's worker over SSH
(:mod:`experiment_runner.launchers.ssh_worker`), and the experiments write
their part of the out_path tree themselves. Each run gets a folder of its
own in ``malocher_dir`` (made with mkdtemp, so two runs never collide); the
folders of experiments whose last attempt failed are kept, the rest are removed.

A session connects to the machines and starts their workers once, when it
opens; every experiment of the run, retries included, goes to those workers
as slots free up, and closing the session stops every worker (which kills
its experiments) and closes the connections.

Unlike malocher, host keys are verified against known_hosts (trust on first
use only when asked), a machine that cannot be reached or drops is taken out
with a :class:`MachineWarning` while the others go on, and results stream
back as each experiment finishes: one worker per machine reports every
finished experiment, and every message a running experiment sends the
driver (:mod:`experiment_runner.channel`), as a line over its SSH channel;
nothing is polled. A request to stop a running experiment early
(:meth:`SSHSession.prune`) goes the other way over the same channel.

The SSH library is asyncssh, not paramiko: one event loop drives every
connection and every worker, so waiting for whichever experiment finishes
first, noticing a dropped connection (keepalives) and stopping everything at
once on Ctrl-C need no thread per connection; it verifies host keys against
known_hosts with OpenSSH's rules and reads ~/.ssh/config. It is imported
only when this backend runs, in :mod:`.ssh_machines`; its loop runs in a
daemon thread for the session's life while :meth:`SSHSession.events`, in the
driver's thread, relays what the loop reports through a queue.

What the machines need: the same path for the driver's working directory
and for malocher_dir (a shared filesystem), and a Python with this package
installed at ``malocher_python`` (default: the driver's own interpreter,
right for a virtual environment on the shared filesystem). The worker runs
in the driver's working directory with the driver's own import paths (the
script's folder, PYTHONPATH; not site-packages), so stage functions of a
script or of the user's modules import there as they do here.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import queue
import threading
import warnings
from pathlib import Path
from typing import Any, Coroutine, Iterator, Optional, Sequence, TypeVar

from ..console import say
from ..errors import ConfigError, MissingDependencyError
from ..experiment import Experiment, Outcome, Stages
from . import options as declared
from .base import Event, Launcher, Session, pickle_stages
from .ssh_jobs import Jobs
from .ssh_options import (MachineWarning, NoMachineError, NoMachineReachableError, SSHOptions, parse_machine,
                          parse_options)

__all__ = ["SSHLauncher", "SSHSession", "MachineWarning", "NoMachineError", "NoMachineReachableError",
           "SSHOptions", "parse_machine", "parse_options"]

#: How long closing the session waits for the machines to stop their experiments.
STOP_TIMEOUT = 15.0

T = TypeVar("T")


class SSHLauncher(Launcher):
    """Runs experiments on the SSH machines of malocher_machines; see the module docstring."""

    name = "malocher"
    Options = declared.MalocherOptions

    @functools.cached_property
    def options(self) -> SSHOptions:
        return parse_options(self.settings.options)

    @functools.cached_property
    def client_keys(self) -> Sequence[Any]:
        """malocher_key, decrypted once for every connection (none: the SSH agent and ~/.ssh)."""
        return _load_client_keys(_import_asyncssh(), self.options)

    def check(self, experiments: Sequence[Experiment]) -> None:
        """Settings, key and stages: whatever is wrong with them stops the run before it starts.

        It reads the key file and pickles the stages in memory; it connects nowhere and writes nothing.
        """
        self.client_keys  # decrypts malocher_key now
        pickle_stages(self.settings.stages, self.name)

    def session(self, stages: Stages) -> "SSHSession":
        return SSHSession(self, stages)


class SSHSession(Session):
    """The run's SSH connections and workers, held from open to close; see the module docstring."""

    def __init__(self, launcher: SSHLauncher, stages: Stages):
        super().__init__(stages)
        self.launcher = launcher
        self._jobs: Optional[Jobs] = None
        self._loop: Optional[_LoopThread] = None
        self._scheduler: Any = None  # an ssh_scheduler.Scheduler, once open
        #: Submitted experiments without an outcome yet (waiting or running).
        self._unfinished = 0

    def open(self) -> None:
        """Write the job folder, connect to every machine and start its worker; warn of the machines left out.

        Raises NoMachineReachableError (a UsageError) when no machine can run experiments.
        """
        from . import ssh_scheduler  # imports asyncssh: only when this backend runs

        launcher = self.launcher
        self._jobs = Jobs(launcher.options.directory, self.stages)
        self._loop = _LoopThread()
        self._scheduler = ssh_scheduler.Scheduler(
            launcher.options, launcher.client_keys, self._jobs, self.waiting, self._loop.emit,
            launcher.settings.num_cpus, launcher.settings.max_memory)
        for warning in self._loop.run(self._scheduler.open()):
            warnings.warn(warning, MachineWarning, stacklevel=2)
        self._loop.call(self._scheduler.dispatch)

    def submit(self, experiment: Experiment, *, again: bool = False) -> None:
        super().submit(experiment, again=again)
        self._unfinished += 1
        if self._loop is not None:
            self._loop.call(self._scheduler.dispatch)

    @property
    def slots(self) -> Optional[int]:
        """The slots of the machines reached when the session opened (malocher_slots each, or its CPUs over
        num_cpus); a machine lost later still counts."""
        if self._scheduler is None:
            return None
        return sum(machine.slots for machine in self._scheduler.machines if not machine.lost) or None

    def prune(self, experiment_id: int) -> None:
        """Ask the worker running ``experiment_id`` to stop it early, over its connection, without waiting."""
        if self._loop is not None and self._scheduler is not None:
            self._loop.call(functools.partial(self._scheduler.prune, experiment_id))

    def events(self) -> Iterator[Event]:
        """Relay what the machines report: outcomes and messages, warnings warned, the run's end raised."""
        assert self._loop is not None, "the session is not open"
        while self._unfinished:
            item = self._loop.items.get()
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, str):
                warnings.warn(item, MachineWarning, stacklevel=2)
                continue
            if isinstance(item, Outcome):
                self._unfinished -= 1
            yield item

    def close(self) -> None:
        """Stop every worker (they kill their experiments), close the connections, clean the job folder."""
        try:
            if self._loop is not None:
                self._stop_machines()
        finally:
            if self._jobs is not None:
                kept = self._jobs.clean(self.launcher.options.keep_jobs)
                if kept is not None and self.launcher.settings.verbose:
                    say(f"malocher: job folders kept in {kept}")
                self._jobs = None

    def _stop_machines(self) -> None:
        assert self._loop is not None
        try:
            if self._scheduler is not None:
                self._loop.run(self._scheduler.close(), STOP_TIMEOUT)
        except concurrent.futures.TimeoutError:
            warnings.warn(f"malocher: the machines did not stop within {STOP_TIMEOUT:g} s; their connections "
                          "close as this process ends", MachineWarning, stacklevel=3)
        finally:
            self._loop.stop(STOP_TIMEOUT)
            self._loop = None


class _LoopThread:
    """An asyncio loop on a daemon thread for a session's life; what runs on it reports into ``items``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.items: "queue.Queue[Any]" = queue.Queue()
        self._thread = threading.Thread(target=self.loop.run_forever, name="malocher", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: Optional[float] = None) -> T:
        """Run ``coroutine`` on the loop and wait for its result; if the wait is cut short, it is cancelled."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    def call(self, function: Any) -> None:
        """Call ``function()`` on the loop, soon."""
        self.loop.call_soon_threadsafe(function)

    def emit(self, item: Any) -> None:
        self.items.put(item)

    def stop(self, timeout: float) -> None:
        """Stop the loop, giving its executor ``timeout`` seconds to finish."""
        try:
            self.run(self.loop.shutdown_default_executor(), timeout)
        except concurrent.futures.TimeoutError:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()


def _import_asyncssh() -> Any:
    try:
        import asyncssh
    except ImportError as error:
        raise MissingDependencyError(
            f"backend=malocher needs asyncssh ({error}): pip install 'experiment-runner[ssh]'"
        ) from error
    return asyncssh


def _load_client_keys(asyncssh: Any, options: SSHOptions) -> Sequence[Any]:
    """Load the private key now, so a missing file or a wrong passphrase stops the run before it starts."""
    if options.key is None:
        return ()
    path = Path(options.key).expanduser()
    try:
        return asyncssh.load_keypairs([str(path)], options.passphrase)
    except (OSError, asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise ConfigError(f"malocher_key: cannot load the private key {path}: {reason}") from None
