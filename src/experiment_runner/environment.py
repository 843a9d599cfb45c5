"""environment.json: what reproducing a run needs to know about the machine, the command and the code."""
from __future__ import annotations

import getpass
import os
import platform
import socket
import subprocess
import sys
import threading
from datetime import datetime, timezone
from typing import AbstractSet, Any, Dict, Optional, Sequence, Union

from .serialization import masked_argv


def describe_environment(secret_keys: AbstractSet[str]) -> Dict[str, Any]:
    """What reproducing the run needs to know about this machine and code (argv with ``secret_keys`` masked)."""
    return {
        "python": sys.version,
        "executable": sys.executable,
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "user": _user(),
        "cwd": os.getcwd(),
        "argv": masked_argv(sys.argv, secret_keys),
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "packages": _package_versions(["experiment-runner", "omegaconf", "PyYAML", "tqdm", "numpy", "pandas", "ray",
                                       "cloudpickle", "scikit-learn", "torch"]),
        "git": _git_state(),
    }


class EnvironmentProbe:
    """:func:`describe_environment`, begun in a thread of its own as a run starts; :meth:`result` waits for it.

    Asking git for the commit and whether the tree has changes takes two
    processes, tens of milliseconds (more in a large repository): begun first,
    that wait overlaps the start of the backend and the writing of the
    experiments' records.
    """

    def __init__(self, secret_keys: AbstractSet[str]):
        self._outcome: Union[Dict[str, Any], BaseException, None] = None
        self._thread = threading.Thread(target=self._describe, args=(secret_keys,),
                                        name="experiment-runner-environment", daemon=True)
        self._thread.start()

    def _describe(self, secret_keys: AbstractSet[str]) -> None:
        try:
            self._outcome = describe_environment(secret_keys)
        except BaseException as error:  # handed to the caller of result(): raised there
            self._outcome = error

    def result(self) -> Dict[str, Any]:
        """environment.json's content; what describing the environment raised, raised here."""
        self._thread.join()
        if isinstance(self._outcome, BaseException):
            raise self._outcome
        assert self._outcome is not None
        return self._outcome


def _user() -> Optional[str]:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def _package_versions(names: Sequence[str]) -> Dict[str, str]:
    from importlib import metadata  # when a run starts: it costs every import of the package otherwise

    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _git_state() -> Optional[Dict[str, Any]]:
    """The commit of the working directory's repository and whether it has changes, if it is one."""
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}
