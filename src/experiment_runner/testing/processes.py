"""Which processes still run: what the stopping cases check after a session closes or a run is stopped."""
import os
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterable, List, Optional

import pytest


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not count: it has ended, only its parent has not reaped it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): ask the kernel
        return _signalable(pid)


def _signalable(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def children(pid: int, zombies: bool = False) -> List[int]:
    """The pids of the live processes whose parent is ``pid`` (Linux; elsewhere none are found).

    With ``zombies``, also those that ended and were not reaped: a parent that leaves one has not cleaned up.
    """
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and (zombies or fields[0] != "Z"):
            found.append(int(stat.parent.name))
    return found


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30,
               process: Optional["subprocess.Popen[str]"] = None) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` s, or once ``process`` ends."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            pytest.fail(f"the driver ended before {what}:\n{process.stderr.read()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting until {what}")
        time.sleep(0.05)


def pids_in(folders: Iterable[Path], name: str) -> List[int]:
    """The pids that stages.block wrote to ``name`` (pid, child.pid) in each of ``folders`` that has one."""
    return [int((folder / name).read_text()) for folder in folders if (folder / name).exists()]


def beats_stopped(folder: Path) -> bool:
    """Whether the experiment blocked in ``folder`` (stages.block) has stopped beating for 0.3 s."""
    beats = folder / "beats"
    before = beats.stat().st_size if beats.exists() else 0
    time.sleep(0.3)
    return (beats.stat().st_size if beats.exists() else 0) == before


def assert_stopped(folders: List[Path], isolation: bool) -> None:
    """The experiments blocked in ``folders`` stop; with ``isolation``, their processes and their children end."""
    wait_until(lambda: all(beats_stopped(folder) for folder in folders), "the experiments in flight stop", 30)
    if isolation:
        pids = pids_in(folders, "pid") + pids_in(folders, "child.pid")
        wait_until(lambda: not any(alive(pid) for pid in pids),
                   f"the experiments' processes and what they started ({pids}) end", 30)
