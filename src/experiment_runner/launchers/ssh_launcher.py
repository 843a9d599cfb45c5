"""backend=malocher: experiments on SSH machines that share a filesystem with the driver.

The model of the malocher library the original package used: the driver
serializes the stages (cloudpickle) into a job folder on the shared
filesystem, each machine runs this package's worker over SSH
(:mod:`experiment_runner.launchers.ssh_worker`), and the experiments write
their part of the out_path tree themselves. Each launch gets a folder of its
own in ``malocher_dir`` (made with mkdtemp, so two runs never collide); the
folders of experiments that failed are kept, the rest are removed.

Unlike malocher, host keys are verified against known_hosts (trust on first
use only when asked), a machine that cannot be reached or drops is taken out
with a :class:`MachineWarning` while the others go on, and results stream
back as each experiment finishes: one worker per machine reports every
finished experiment as a line over its SSH channel, nothing is polled.

The SSH library is asyncssh, not paramiko: one event loop drives every
connection and every worker, so waiting for whichever experiment finishes
first, noticing a dropped connection (keepalives) and stopping everything at
once on Ctrl-C need no thread per connection; it verifies host keys against
known_hosts with OpenSSH's rules and reads ~/.ssh/config. It is imported
only when this backend runs, in :mod:`.ssh_machines`; its loop runs in a
daemon thread while :meth:`SSHLauncher.launch`, a plain generator in the
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
import dataclasses
import functools
import getpass
import json
import os
import queue
import shutil
import socket
import sys
import tempfile
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator, List, Mapping, Optional, Sequence, Set, Tuple


from ..errors import ConfigError, ExperimentRunnerError, ExperimentRunnerWarning, MissingDependencyError, UsageError
from ..experiment import Experiment, Outcome, Stages
from ..progress import Progress
from ..serialization import write_atomic
from . import options as declared
from .base import Launcher, pickle_stages
from .options import typed_options
from .ssh_worker import LaunchFolder

#: How long closing the launcher waits for the machines to stop their experiments.
STOP_TIMEOUT = 15.0


class MachineWarning(ExperimentRunnerWarning):
    """A machine was left out or lost; the run goes on with the others."""


class NoMachineError(ExperimentRunnerError):
    """No machine of malocher_machines can run experiments (any more)."""


class NoMachineReachableError(NoMachineError, UsageError):
    """No machine of malocher_machines could be reached at the start: nothing ran (exit code 2)."""


@dataclass(frozen=True)
class MachineAddress:
    """Where one machine is reached: ``[user@]host[:port]`` as given in malocher_machines."""

    name: str
    host: str
    port: int
    user: str


@dataclass(frozen=True)
class SSHOptions:
    """The malocher_* settings as the backend uses them. Secrets are kept out of ``repr``."""

    machines: Tuple[MachineAddress, ...]
    directory: str = ".malocher_dir"
    key: Optional[str] = None
    passphrase: Optional[str] = field(default=None, repr=False)
    password: Optional[str] = field(default=None, repr=False)
    slots: Optional[int] = None
    python: str = sys.executable
    known_hosts: str = "~/.ssh/known_hosts"
    trust_on_first_use: bool = False
    keep_jobs: bool = False
    connect_timeout: float = 15.0


def parse_machine(text: str, user: str, port: int) -> MachineAddress:
    """``host``, ``host:port``, ``user@host`` or ``user@[::1]:port``; the missing parts from the defaults."""
    match = declared.machine_address(text)
    host = match["ipv6"] or match["host"]
    return MachineAddress(text, host, declared.check_port(int(match["port"]), text) if match["port"] else port,
                          match["user"] or user)


def parse_options(options: Mapping[str, Any]) -> SSHOptions:
    """The malocher_* settings of basecfg, typed and checked by their declaration (launchers/options.py)."""
    given = typed_options(declared.MalocherOptions, options)
    user = given.malocher_user or getpass.getuser()
    port = declared.check_port(22 if given.malocher_port is None else given.malocher_port, "malocher_port")
    machines = tuple(parse_machine(text, user, port) for text in declared.machine_list(given.malocher_machines))
    return SSHOptions(
        machines=machines,
        directory=given.malocher_dir or SSHOptions.directory,
        key=given.malocher_key or None,
        passphrase=given.malocher_passphrase or None,
        password=given.malocher_password or None,
        slots=given.malocher_slots,
        python=given.malocher_python or sys.executable,
        known_hosts=given.malocher_known_hosts or SSHOptions.known_hosts,
        trust_on_first_use=bool(given.malocher_trust_on_first_use),
        keep_jobs=bool(given.malocher_keep_jobs),
        connect_timeout=float(given.malocher_connect_timeout or SSHOptions.connect_timeout),
    )


def working_directory() -> str:
    """The working directory as the shell names it ($PWD), which may be a symlink that other machines share."""
    logical = os.environ.get("PWD", "")
    try:
        if os.path.isabs(logical) and os.path.samefile(logical, os.curdir):
            return logical
    except OSError:
        pass
    return os.getcwd()


def user_import_paths() -> List[str]:
    """The driver's import paths that hold the user's own code: not the standard library, not installed packages."""
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    cwd = working_directory()
    paths: List[str] = []
    for entry in sys.path:
        path = os.path.normpath(os.path.join(cwd, entry))
        real = Path(path).resolve()
        installed = {"site-packages", "dist-packages"} & set(real.parts)
        if real.is_dir() and not installed and not any(p == real or p in real.parents for p in prefixes):
            if path not in paths:
                paths.append(path)
    return paths


class Jobs:
    """This launch's folder in malocher_dir: made race-free, kept afterwards only for what failed."""

    def __init__(self, directory: str, stages: Stages):
        base = Path(working_directory(), Path(directory).expanduser())
        base.mkdir(parents=True, exist_ok=True)
        prefix = f"{socket.gethostname()}-{os.getpid()}-"
        self.folder = LaunchFolder(Path(tempfile.mkdtemp(prefix=prefix, dir=base)))
        self.failed: Set[int] = set()
        try:
            context = {"cwd": working_directory(), "sys_path": user_import_paths()}
            write_atomic(self.folder.context, json.dumps(context))
            self.folder.stages.write_bytes(pickle_stages(stages, "malocher"))
        except BaseException:
            shutil.rmtree(self.folder.root, ignore_errors=True)
            raise

    @property
    def root(self) -> Path:
        return self.folder.root

    def write(self, experiment: Experiment) -> None:
        """The experiment's job file, its secrets as ``***``: the worker receives them with the command to run it."""
        self.folder.job(experiment.experiment_id).mkdir(exist_ok=True)
        job = dataclasses.asdict(experiment.without_secret_values())
        write_atomic(self.folder.experiment_file(experiment.experiment_id), json.dumps(job))  # NaN stays NaN

    def clean(self, keep_all: bool) -> Optional[Path]:
        """Remove what is not kept; return the launch folder if anything in it is."""
        if keep_all:
            return self.root
        if not self.failed:
            shutil.rmtree(self.root, ignore_errors=True)
            return None
        for job in self.root.iterdir():
            if job.is_dir() and not (job.name.isdigit() and int(job.name) in self.failed):
                shutil.rmtree(job, ignore_errors=True)
        return self.root


_DONE = object()


class _LoopThread:
    """An asyncio loop on a daemon thread running one coroutine; what it emits arrives in ``items``.

    Items are outcomes, warning texts, and at the end either ``_DONE`` or the
    exception the coroutine raised.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.items: "queue.Queue[Any]" = queue.Queue()
        self.finished = threading.Event()
        self._task: Optional["asyncio.Task[None]"] = None
        self._started = False
        self._thread = threading.Thread(target=self.loop.run_forever, name="malocher", daemon=True)
        self._thread.start()

    def start(self, make_coroutine: Callable[[], Awaitable[None]]) -> None:
        created = threading.Event()

        def create() -> None:
            self._task = self.loop.create_task(self._main(make_coroutine))
            self._task.add_done_callback(lambda task: self.finished.set())
            created.set()

        self._started = True
        self.loop.call_soon_threadsafe(create)
        created.wait()

    async def _main(self, make_coroutine: Callable[[], Awaitable[None]]) -> None:
        try:
            await make_coroutine()
        except Exception as error:
            self.items.put(error)
        else:
            self.items.put(_DONE)

    def emit(self, item: Any) -> None:
        self.items.put(item)

    def close(self, timeout: float) -> None:
        """Cancel the coroutine, give its clean-up ``timeout`` seconds, stop the loop."""
        if self._started:
            # Queued after start()'s create(), so it finds the task even if start() was interrupted.
            self.loop.call_soon_threadsafe(lambda: self._task.cancel() if self._task is not None else None)
            self.finished.wait(timeout)
        try:
            asyncio.run_coroutine_threadsafe(self.loop.shutdown_default_executor(), self.loop).result(timeout)
        except concurrent.futures.TimeoutError:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()


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
        """Settings, key and stages: whatever is wrong with them stops the run before it starts."""
        self.client_keys  # decrypts malocher_key now
        pickle_stages(self.settings.stages, self.name)

    def launch(self, experiments: Sequence[Experiment], stages: Stages) -> Iterator[Outcome]:
        if not experiments:
            return
        from . import ssh_machines

        options = self.options
        jobs = Jobs(options.directory, stages)
        loop = _LoopThread()
        try:
            scheduler = ssh_machines.Scheduler(options, self.client_keys, experiments, jobs, loop.emit,
                                               self.settings.num_cpus, self.settings.max_memory)
            loop.start(scheduler.run)
            yield from _relay(loop.items)
        finally:
            loop.close(STOP_TIMEOUT)
            kept = jobs.clean(options.keep_jobs)
            if kept is not None and self.settings.verbose:
                Progress.write(f"malocher: job folders kept in {kept}")


def _relay(items: "queue.Queue[Any]") -> Iterator[Outcome]:
    """Yield the outcomes the loop reports, warn its warnings, raise its error."""
    while True:
        item = items.get()
        if item is _DONE:
            return
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, str):
            warnings.warn(item, MachineWarning, stacklevel=3)
            continue
        yield item


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
