"""backend=malocher's settings (malocher_*), checked, and what it raises when its machines cannot run experiments.

Light: no SSH library. Both the launcher (in the driver's thread) and the
SSH side (:mod:`.ssh_machines`, :mod:`.ssh_scheduler`, on the event loop)
read these.
"""
from __future__ import annotations

import getpass
import sys
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Tuple

from ..errors import ExperimentRunnerError, ExperimentRunnerWarning, UsageError
from . import options as declared
from .options import typed_options


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
    """The malocher_* settings, checked. Secrets are kept out of ``repr``."""

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
