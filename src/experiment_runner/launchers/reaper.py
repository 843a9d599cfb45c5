"""Nothing an experiment started outlives it: the processes below a child subreaper, found and killed (Linux).

The worker of backend=malocher (:mod:`.ssh_worker`) runs on a machine where
no driver holds a lifeline to it, and its experiments may start processes
that leave their process group or start a session of their own. Made a
child subreaper (:func:`isolation.adopt_orphans`), a process adopts every
process orphaned below it instead of init, so that they can still be found
here, from Linux's /proc, and killed: :func:`kill_strays` kills what ended
experiments left behind, :func:`end_descendants` everything below a process
that stops, and :func:`guard` runs the worker below a process that does so
however the worker ends (kill -9, the OOM killer).
"""
from __future__ import annotations

import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, Collection, Dict, List, NoReturn

from .isolation import adopt_orphans


def _children(pid: int) -> List[int]:
    """The processes whose parent is ``pid`` (from Linux's /proc; none where there is no /proc)."""
    if not Path(f"/proc/self/task/{os.getpid()}/children").exists():  # a kernel without CONFIG_PROC_CHILDREN
        return [child for child, parent in _parent_ids().items() if parent == pid]
    found: List[int] = []
    for task in _list(Path(f"/proc/{pid}/task")):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:  # the thread or the process has ended
            pass
    return found


def _parent_ids() -> Dict[int, int]:
    """pid -> parent pid of every process."""
    parents = {}
    for entry in _list(Path("/proc")):
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:  # the process has ended
            continue
        if stat:  # the command name may hold spaces and parentheses; what follows the last ")" does not
            parents[int(entry.name)] = int(stat[stat.rfind(")") + 2:].split()[1])
    return parents


def _list(folder: Path) -> List[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def _kill_tree(root: int) -> None:
    """SIGKILL ``root`` and every process below it."""
    tree = [root]
    for pid in tree:  # grows while it is walked: children of children
        tree += _children(pid)
    for pid in tree:
        _kill(pid, signal.SIGKILL)


def _kill(pid: int, signum: int) -> None:
    """Send a signal to a process that may have ended."""
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def kill_strays(keep: Collection[int]) -> None:
    """Kill the children of this process that are not in ``keep``, with everything below them.

    In the worker (a subreaper), those are what ended experiments left behind.
    A process one of them starts meanwhile is adopted here as its parent dies,
    and killed when that death is reaped.
    """
    for child in _children(os.getpid()):
        if child not in keep:
            _kill_tree(child)


def end_descendants() -> None:
    """Kill every process below this one and reap its children until none is left.

    A subreaper adopts whatever outlives its parent, so when it has no child
    left, nothing is left below it.
    """
    while True:
        kill_strays(keep=())
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def exit_with(run: Callable[[], int], error_code: int) -> NoReturn:
    """End this forked process with the exit code of ``run``, or ``error_code`` and a traceback if it raises."""
    code = error_code
    try:
        code = run()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def guard(serve: Callable[[], int]) -> int:
    """Run ``serve`` in a child process; when it ends, however it ends, kill whatever is left below.

    This process runs neither experiments nor user code, so what kills the
    worker (kill -9, the OOM killer) leaves it standing; as the subreaper
    above the worker it adopts the processes the worker's death orphans,
    and ends them. Without subreapers (not Linux) ``serve`` runs here.
    """
    if not adopt_orphans():
        return serve()
    worker = os.fork()
    if worker == 0:
        exit_with(serve, 1)

    def stop_worker(signum: int, frame: Any) -> None:  # the worker stops its experiments and exits
        _kill(worker, signal.SIGTERM)

    stopping = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
    for signum in stopping:
        signal.signal(signum, stop_worker)
    _, status = os.waitpid(worker, 0)
    for signum in stopping:
        signal.signal(signum, signal.SIG_IGN)  # nothing may cut the clean-up short
    end_descendants()
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code
