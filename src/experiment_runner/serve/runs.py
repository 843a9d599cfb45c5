"""The runs under the served folder: where they are, whether they are still going, and what run.yaml says.

A run is a folder holding run.yaml. A run is running while its out_path
folder is locked: the store flock()s it for the whole run. The lock is
read from /proc/locks, never taken, so serving a tree changes nothing in it.
"""
from __future__ import annotations

import json
import os
import shlex
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, FrozenSet, Iterator, List, NamedTuple, Optional, Tuple

from ..run_files import RunPaths, read_yaml
from ..report_records import inside

__all__ = ["find_runs", "locked_inodes", "RunMeta", "read_meta", "inside", "RUNNING", "FINISHED", "INTERRUPTED",
           "UNKNOWN"]

RUNNING, FINISHED, INTERRUPTED, UNKNOWN = "running", "finished", "interrupted", "unknown"
#: How deep below the served folder runs are looked for (results/<sweep>/<date>/run.yaml is 3 deep).
MAX_DEPTH = 4
PROC_LOCKS = Path("/proc/locks")


def find_runs(root: Path) -> List[Path]:
    """The run folders at or below ``root`` (resolved), at most MAX_DEPTH levels down; runs inside runs are not
    looked for, nor folders that lead out of ``root`` through a symbolic link."""
    return sorted(_runs_below(root, root, 0))


def _runs_below(root: Path, folder: Path, depth: int) -> Iterator[Path]:
    if (folder / "run.yaml").is_file():
        yield folder
        return
    if depth >= MAX_DEPTH:
        return
    try:
        with os.scandir(folder) as entries:
            subfolders = [Path(entry.path) for entry in entries
                          if entry.is_dir() and not entry.name.startswith(".")]
    except (PermissionError, FileNotFoundError, NotADirectoryError):
        return  # a folder that cannot be listed, or that went away meanwhile, holds no run we can show
    for subfolder in subfolders:
        if inside(root, subfolder):
            yield from _runs_below(root, subfolder, depth + 1)


def locked_inodes(proc_locks: Path = PROC_LOCKS) -> Optional[FrozenSet[Tuple[int, int, int]]]:
    """(major, minor, inode) of every file that a process holds a FLOCK on; None where /proc/locks is absent."""
    try:
        text = proc_locks.read_text()
    except OSError:
        return None
    locked = set()
    for line in text.splitlines():
        fields = line.split()
        if "->" in fields or len(fields) < 6 or fields[1] != "FLOCK":
            continue  # a waiting request, or a POSIX or OFD lock: the store flock()s
        major, minor, inode = fields[5].split(":")
        locked.add((int(major, 16), int(minor, 16), int(inode)))
    return frozenset(locked)


def is_locked(folder: Path, locked: Optional[FrozenSet[Tuple[int, int, int]]]) -> Optional[bool]:
    """Whether the run in ``folder`` is going (its folder is flock()ed); None when that cannot be told."""
    if locked is None:
        return None
    try:
        status = os.stat(folder)
    except OSError:
        return False
    return (os.major(status.st_dev), os.minor(status.st_dev), status.st_ino) in locked


class RunMeta(NamedTuple):
    """What a run recorded of itself when it started (run.yaml, environment.json)."""

    backend: str
    started: Optional[datetime]
    command: Optional[str]
    #: Whether the run is an adaptive search, and a single-objective search's metric and direction ("maximize"
    #: or "minimize"); None for a sweep or a search of several metrics.
    search: bool
    objective: Optional[Tuple[str, str]]
    planned: Optional[int]


def read_meta(folder: Path) -> RunMeta:
    """run.yaml's backend, start time, command line and search; the start and the command of a run started from
    Python (whose run.yaml has neither) from environment.json."""
    paths = RunPaths(folder)
    record = read_yaml(paths.run_yaml)
    record = record if isinstance(record, dict) else {}
    environment = _environment(paths.environment)
    started = _time(record.get("started")) or _time(environment.get("time"))
    command = record.get("command")
    if not command and isinstance(environment.get("argv"), list):
        command = shlex.join(["python", *map(str, environment["argv"])])
    search = record.get("search")
    objective = None
    if isinstance(search, dict) and isinstance(search.get("metric"), str):
        objective = (search["metric"], str(search.get("direction") or "minimize"))
    planned = record.get("experiments")
    return RunMeta(str(record.get("backend") or "unknown"), started, str(command) if command else None,
                   isinstance(search, dict), objective,
                   planned if isinstance(planned, int) and not isinstance(planned, bool) else None)


def _environment(path: Path) -> Dict[str, Any]:
    try:
        environment = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return environment if isinstance(environment, dict) else {}


def _time(value: Any) -> Optional[datetime]:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.astimezone()  # run.yaml's time is local, without a zone


def seconds_since(moment: Optional[datetime], until: Optional[float] = None) -> Optional[float]:
    """Seconds from ``moment`` to ``until`` (a POSIX time; default now), or None without a moment."""
    if moment is None:
        return None
    end = datetime.now(timezone.utc).timestamp() if until is None else until
    return max(0.0, end - moment.timestamp())
