"""environment.json: what reproducing a run needs to know about the machine, the command and the code."""
from __future__ import annotations

import getpass
import os
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from typing import AbstractSet, Any, Dict, Optional, Sequence

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
