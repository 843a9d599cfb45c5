"""The files an attempt at an experiment writes in its folder, each with as few metadata writes as it can.

On a disk a new file or folder costs far more than the bytes in it (a
journaled metadata write each), and for a short experiment these files are
most of its cost: a folder made once, its config.json written in one create,
its logs only when it printed something (see logs.py).
"""
from __future__ import annotations

import contextlib
import os
import time

from .serialization import write_atomic


def make_folder(folder: str) -> bool:
    """Make ``folder`` (and its parents); True when this call made it, False when it was there already."""
    try:
        os.mkdir(folder)
    except FileExistsError:
        return False
    except FileNotFoundError:  # the out_path itself is not there yet (an experiment run on its own)
        os.makedirs(folder, exist_ok=True)
    return True


def write_config(path: str, text: str, fresh: bool) -> None:
    """Write a config.json: straight into a folder this attempt made, else through a rename.

    In a folder that did not exist a moment ago there is no earlier
    config.json to keep whole: the file is created exclusively and written
    in one call (a create and a write, where a temporary file costs a second
    create and a rename, metadata writes that a slow disk pays dearly). A write
    that fails (a full disk) removes the file again; only a worker killed at
    that very instant leaves a partial config.json, of an experiment that then
    has no result, and its next attempt (a retry, ``--resume``) finds the
    folder there and replaces the file atomically. In a folder that was there
    (a retry, a resumed run) the file is replaced with :func:`write_atomic`,
    so the config there stays whole whatever happens.
    """
    if not fresh:
        write_atomic(path, text)
        return
    data = text.encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        while data:
            data = data[os.write(fd, data):]
    except BaseException as error:
        os.unlink(path)
        if isinstance(error, OSError) and error.filename is None:
            error.filename = path  # the disk-full report names the file
        raise
    finally:
        os.close(fd)


def mark_new_attempt(*logs: str, metrics: str) -> None:
    """A new attempt of a repetition (a retry, a resumed run) starts: a line in its ``logs`` between what the
    earlier attempt printed and what this one prints, and its ``metrics`` file begun afresh (the earlier
    attempt's intermediate values would draw its learning curve twice and mislead a pruner)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(metrics)
    for log in logs:
        if os.path.exists(log) and os.path.getsize(log):
            started = time.strftime("%Y-%m-%d %H:%M:%S")
            append_to_log(log, f"\n===== experiment-runner: a new attempt starts at {started} =====\n")


def append_to_log(path: str, text: str) -> None:
    """Append ``text`` to a log (a traceback goes to the repetition's stderr.log, where the failure message points)."""
    try:
        with open(path, "a", encoding="utf-8") as log:
            log.write(text)
    except OSError:  # the folder itself could not be made: failures.jsonl still has the traceback
        return


def append_line(path: str, line: str) -> None:
    """Append ``line`` (without its newline) to the file at ``path`` whole, opened and closed around it.

    Closed after each line, a line is on the file for any reader, on this
    machine or another of a shared filesystem, as soon as this returns; a
    kill leaves no half line, since the line goes in one write.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        write_whole_line(fd, line)
    finally:
        os.close(fd)


def write_whole_line(fd: int, line: str) -> None:
    """Append ``line`` and its newline to ``fd`` (opened with O_APPEND), or nothing.

    Lines go straight to the file (no buffer that a later write could flush
    half of); a write that fails, say on a full disk, is cut back to the
    file's length before it, so no torn line stays behind.
    """
    data = memoryview((line + "\n").encode("utf-8"))
    length = os.fstat(fd).st_size
    try:
        while data:
            data = data[os.write(fd, data):]
    except BaseException:
        # If even cutting back fails, the torn line is skipped by read_jsonl and cut by a resumed run.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, length)
        raise
