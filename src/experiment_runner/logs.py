"""Capturing what an experiment prints into its stdout.log and stderr.log.

Two ways, chosen by the backend:
- :func:`tee_python_streams` (in the driver's own process, backend single):
  ``sys.stdout``/``sys.stderr`` write to the log file *and* the terminal, so a
  user debugging with ``single`` still sees the prints. Output written by C
  code straight to the file descriptors is not captured.
- :func:`redirect_file_descriptors` (in worker processes): descriptors 1 and 2
  point at the log files, so everything is captured, C extensions included.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path
from typing import IO, Iterator

from .console import dropped_if_gone


class _Tee(io.TextIOBase):
    """A text stream that writes to a log file and to the console.

    Once nobody reads the console any more (``| head`` exited), what goes
    there is dropped (see console.py), and the log file still gets all of it.
    """

    def __init__(self, log: IO[str], console: IO[str]):
        self._log = log
        self._console = console

    def write(self, text: str) -> int:
        self._log.write(text)
        with dropped_if_gone(self._console):
            self._console.write(text)
        return len(text)

    def flush(self) -> None:
        self._log.flush()
        with dropped_if_gone(self._console):
            self._console.flush()

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def tee_python_streams(stdout_path: Path, stderr_path: Path) -> Iterator[None]:
    """Copy Python-level prints to the log files while they still reach the terminal."""
    with open(stdout_path, "a", encoding="utf-8", buffering=1) as out, open(
        stderr_path, "a", encoding="utf-8", buffering=1
    ) as err:
        original_out, original_err = sys.stdout, sys.stderr
        sys.stdout = _Tee(out, original_out)
        sys.stderr = _Tee(err, original_err)
        try:
            yield
        finally:
            sys.stdout, sys.stderr = original_out, original_err


@contextlib.contextmanager
def redirect_file_descriptors(stdout_path: Path, stderr_path: Path) -> Iterator[None]:
    """Point descriptors 1 and 2 (and sys.stdout/sys.stderr) at the log files."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(stdout_path, "ab") as out, open(stderr_path, "ab") as err:
            os.dup2(out.fileno(), 1)
            os.dup2(err.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        for fd in saved:
            os.close(fd)
