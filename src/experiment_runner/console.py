"""What the command prints for the person running it, and what happens once nobody reads it any more.

A run prints its progress, failures and summary on stderr; ``--list``,
``--cfg`` and ``report`` print on stdout. When whatever reads one of them
goes away (``| head -1`` has its line, the terminal of a run that ignores
SIGHUP is gone), writing to it fails with EPIPE (a pipe) or EIO (a terminal).
That must never cost a run its experiments: such a stream is pointed at
os.devnull from then on, so every later write to it (ours, tqdm's, a
stage's print, the interpreter's last flush) succeeds and goes nowhere,
while the run goes on recording everything and ends with its usual exit code.
"""
from __future__ import annotations

import contextlib
import errno
import os
import sys
from typing import IO, Iterator, Optional

#: A write to a pipe whose reader has gone (EPIPE), or to a terminal that hung up (EIO).
READER_GONE_ERRNOS = frozenset({errno.EPIPE, errno.EIO})


def say(text: str, stream: Optional[IO[str]] = None) -> None:
    """Print ``text`` and a newline on ``stream`` (default: stderr), dropped if nobody reads it any more."""
    stream = sys.stderr if stream is None else stream
    if stream is None:  # started with that descriptor closed (2>&-): nowhere to print
        return
    with dropped_if_gone(stream):
        stream.write(text + "\n")
        stream.flush()


@contextlib.contextmanager
def dropped_if_gone(stream: Optional[IO[str]]) -> Iterator[None]:
    """Writes to ``stream`` in the block that find its reader gone send all its later output to os.devnull."""
    try:
        yield
    except OSError as error:
        if error.errno not in READER_GONE_ERRNOS:
            raise
        drop(stream)


def drop(stream: Optional[IO[str]]) -> None:
    """Send whatever is written to ``stream`` from now on (and what its buffer still holds) to os.devnull."""
    if stream is None:  # started with that descriptor closed: nothing to drop
        return
    try:
        fd = stream.fileno()
    except (OSError, ValueError):  # not a file descriptor (a notebook, a test's capture): each write fails alone
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def flush_standard_streams() -> None:
    """Flush stdout and stderr before the interpreter does, so a reader that left does not turn into an error.

    Python flushes them at exit too, but a failure there prints "Exception
    ignored ... BrokenPipeError" and changes the exit code to 120.
    """
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            with dropped_if_gone(stream):
                stream.flush()
