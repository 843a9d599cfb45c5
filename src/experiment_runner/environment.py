"""environment.json: what reproducing a run needs to know about the machine, the command and the code."""
from __future__ import annotations

import getpass
import os
import platform
import re
import socket
import subprocess
import sys
import threading
from datetime import datetime, timezone
from typing import AbstractSet, Any, Dict, List, Optional, Sequence, Union

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
    """The installed version of each of ``names`` that is installed, as ``importlib.metadata.version`` gives it.

    Read here from the distributions' metadata folders on sys.path rather than
    through importlib.metadata, whose import and lookups (an email parser per
    distribution) took some 45 ms of the start of every run, holding the
    interpreter's lock while the run's own thread starts the backend. The
    first folder on sys.path that holds a distribution wins, as there.
    """
    wanted = {_normalized(name): name for name in names}
    versions: Dict[str, str] = {}
    for entry in sys.path:
        for folder in _metadata_folders(entry or "."):
            name = wanted.get(_normalized(_distribution_name(folder)))
            if name is not None and name not in versions:
                version = _metadata_version(os.path.join(entry or ".", folder))
                if version is not None:
                    versions[name] = version
    return {name: versions[name] for name in names if name in versions}


def _metadata_folders(entry: str) -> List[str]:
    """The ``*.dist-info`` and ``*.egg-info`` folders (or egg-info files) in a sys.path entry (none if no folder)."""
    try:
        return [name for name in os.listdir(entry) if name.endswith((".dist-info", ".egg-info"))]
    except OSError:
        return []


def _distribution_name(folder: str) -> str:
    """``PyYAML`` of ``PyYAML-6.0.1.dist-info`` (and of ``PyYAML.egg-info``)."""
    return folder.rsplit(".", 1)[0].split("-", 1)[0]


def _normalized(name: str) -> str:
    """A distribution's name as PEP 503 compares names: lower case, each run of ``-``, ``_`` and ``.`` one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _metadata_version(folder: str) -> Optional[str]:
    """The ``Version:`` header of the distribution's METADATA (PKG-INFO in an egg-info folder; an egg-info
    that distutils wrote is that file itself)."""
    files = [folder] if os.path.isfile(folder) else [os.path.join(folder, name) for name in ("METADATA", "PKG-INFO")]
    for path in files:
        try:
            with open(path, encoding="utf-8") as metadata:
                for line in metadata:
                    if not line.strip():
                        break  # the headers end at the first empty line
                    if line[:len("Version:")].lower() == "version:":  # header names ignore case, as an email's
                        return line[len("Version:"):].strip()
        except OSError:
            continue
    return None


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
