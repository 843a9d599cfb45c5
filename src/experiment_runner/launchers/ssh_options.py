"""backend=malocher's settings (malocher_*), checked, and what it raises when its machines cannot run experiments.

Light: no SSH library. Both the launcher (in the driver's thread) and the
SSH side (:mod:`.ssh_machines`, :mod:`.ssh_scheduler`, on the event loop)
read these.
"""
from __future__ import annotations

import getpass
import re
import sys
from dataclasses import dataclass, field
from typing import Any, List, Mapping, Optional, Sequence, Tuple

from ..errors import ConfigError, ExperimentRunnerError, ExperimentRunnerWarning, UsageError
from ..serialization import MASK
from . import BUILTIN_SECRET_OPTIONS


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


_ADDRESS = re.compile(r"^(?:(?P<user>[^@\s]+)@)?(?:\[(?P<ipv6>[^\]\s]+)\]|(?P<host>[^:@\[\]\s]+))(?::(?P<port>\d+))?$")


def parse_machine(text: str, user: str, port: int) -> MachineAddress:
    """``host``, ``host:port``, ``user@host`` or ``user@[::1]:port``; the missing parts from the defaults."""
    match = _ADDRESS.match(text) if isinstance(text, str) else None
    if not match:
        raise ConfigError(f"malocher_machines: {text!r} is not a machine like 'host', 'host:port' or 'user@host:port'")
    host = match["ipv6"] or match["host"]
    return MachineAddress(text, host, _port(int(match["port"]), text) if match["port"] else port,
                          match["user"] or user)


def parse_options(options: Mapping[str, Any]) -> SSHOptions:
    """The malocher_* settings of basecfg, each checked; a bad one is a ConfigError naming it."""
    user = _optional_text(options, "malocher_user") or getpass.getuser()
    port = _port(_given(options, "malocher_port", 22), "malocher_port")
    machines = tuple(parse_machine(text, user, port) for text in _machine_list(options.get("malocher_machines")))
    return SSHOptions(
        machines=machines,
        directory=_optional_text(options, "malocher_dir") or SSHOptions.directory,
        key=_optional_text(options, "malocher_key"),
        passphrase=_optional_text(options, "malocher_passphrase"),
        password=_optional_text(options, "malocher_password"),
        slots=_optional_whole(options, "malocher_slots"),
        python=_optional_text(options, "malocher_python") or sys.executable,
        known_hosts=_optional_text(options, "malocher_known_hosts") or SSHOptions.known_hosts,
        trust_on_first_use=_flag(options, "malocher_trust_on_first_use"),
        keep_jobs=_flag(options, "malocher_keep_jobs"),
        connect_timeout=_seconds(options, "malocher_connect_timeout", SSHOptions.connect_timeout),
    )


def _machine_list(value: Any) -> List[str]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, Sequence) or not value:
        raise ConfigError(
            "backend=malocher needs malocher_machines: a list of SSH machines like ['node1', 'user@node2:2222'], "
            f"got {value!r}"
        )
    return list(value)


def _port(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ConfigError(f"{where}: the port must be a whole number from 1 to 65535, got {value!r}")
    return value


def _optional_text(options: Mapping[str, Any], key: str) -> Optional[str]:
    value = options.get(key)
    if value is not None and not isinstance(value, str):
        shown = MASK if key in BUILTIN_SECRET_OPTIONS else repr(value)
        raise ConfigError(f"{key} must be a string, got {shown} ({type(value).__name__})")
    return value or None


def _optional_whole(options: Mapping[str, Any], key: str) -> Optional[int]:
    value = options.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"{key} must be a whole number >= 1 (or unset for one per CPU), got {value!r}")
    return value


def _flag(options: Mapping[str, Any], key: str) -> bool:
    value = _given(options, key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    return value


def _given(options: Mapping[str, Any], key: str, default: Any) -> Any:
    """The value of ``key``; unset or null (YAML's ``key: null``) gives ``default``."""
    value = options.get(key)
    return default if value is None else value


def _seconds(options: Mapping[str, Any], key: str, default: float) -> float:
    value = _given(options, key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"{key} must be a number of seconds > 0, got {value!r}")
    return float(value)
