"""Capturing what an experiment prints into its stdout.log and stderr.log.

A log file exists only once the experiment printed something to it: an
experiment that prints nothing costs no file. Three ways, chosen by the backend:

- :func:`tee_python_streams` (in the driver's own process, backend single):
  ``sys.stdout``/``sys.stderr`` write to the log file *and* the terminal, so a
  user debugging with ``single`` still sees the prints; each log file is
  created at the first write to it. Output written by C code straight to the
  file descriptors is not captured.
- :func:`redirect_file_descriptors` (a process that runs experiments now and
  then: a Ray worker, a Slurm job's child, an SSH worker): descriptors 1 and 2
  point at the log files while the experiment runs, so everything is captured,
  C extensions and child processes included; a log left empty is removed
  afterwards.
- :class:`WorkerCapture` (the long-lived workers of backend=multiprocessing):
  descriptors 1 and 2 point, once and for good, at the worker's capture files
  under ``<out_path>/.live/`` (see :func:`live_files`), where a running
  experiment's output can be read as it is printed. After each repetition
  what it printed is copied to its log files (none when it printed nothing)
  and the capture files are emptied. A record next to them says which
  repetition the worker runs, so when the worker dies (a segfault,
  ``os._exit``, killed at its timeout or for memory) the driver moves what the
  experiment printed before into its logs (:func:`salvage_worker_output`).
"""
from __future__ import annotations

import contextlib
import io
import itertools
import json
from json.encoder import encode_basestring_ascii as _json_text  # type: ignore[attr-defined]
import os
import sys
from typing import IO, Any, Callable, ContextManager, Iterator, Optional, Tuple, Union

from .console import dropped_if_gone

PathLike = Union[str, "os.PathLike[str]"]

#: The folder under out_path where the workers of backend=multiprocessing capture what runs now.
LIVE_FOLDER = ".live"


class _Tee(io.TextIOBase):
    """A text stream that writes to a log file, created at the first write, and to the console.

    Once nobody reads the console any more (``| head`` exited), what goes
    there is dropped (see console.py), and the log file still gets all of it.
    """

    def __init__(self, path: PathLike, console: IO[str]):
        #: None once the capture ended: what a stream kept past it (a logging handler) still reaches the console.
        self._path: Optional[PathLike] = path
        self._log: Optional[IO[str]] = None
        self._console = console

    def write(self, text: str) -> int:
        if text and self._path is not None:
            if self._log is None:
                self._log = open(self._path, "a", encoding="utf-8", buffering=1)
            self._log.write(text)
        with dropped_if_gone(self._console):
            self._console.write(text)
        return len(text)

    def flush(self) -> None:
        if self._log is not None:
            self._log.flush()
        with dropped_if_gone(self._console):
            self._console.flush()

    def isatty(self) -> bool:
        return False

    def close(self) -> None:
        """Close the log, not the console (the default, run when the Tee is collected, would flush it)."""
        self._path = None
        if self._log is not None:
            self._log.close()
            self._log = None


def tee_python_streams(stdout_path: PathLike, stderr_path: PathLike) -> ContextManager[None]:
    """Copy Python-level prints to the log files (made at the first print) while they still reach the terminal."""
    # absolute paths (see experiment.Capture): a log is made at the first print, maybe after the stages moved
    return _TeeStreams(os.fspath(stdout_path), os.fspath(stderr_path))


class _TeeStreams:
    """The context manager of :func:`tee_python_streams` (a class: a generator costs a short experiment more)."""

    __slots__ = ("stdout_path", "stderr_path", "originals", "tees")

    def __init__(self, stdout_path: PathLike, stderr_path: PathLike):
        self.stdout_path, self.stderr_path = stdout_path, stderr_path

    def __enter__(self) -> None:
        self.originals = sys.stdout, sys.stderr
        self.tees = _Tee(self.stdout_path, sys.stdout), _Tee(self.stderr_path, sys.stderr)
        sys.stdout, sys.stderr = self.tees

    def __exit__(self, *exc_info: Any) -> None:
        sys.stdout, sys.stderr = self.originals
        out, err = self.tees
        try:
            out.close()
        finally:
            err.close()


@contextlib.contextmanager
def redirect_file_descriptors(stdout_path: PathLike, stderr_path: PathLike,
                              remove_empty: bool = True) -> Iterator[None]:
    """Point descriptors 1 and 2 (and sys.stdout/sys.stderr) at the log files; remove those left empty.

    The files are opened before the experiment runs (a descriptor needs a
    file); a crash of the process leaves them as they are, with what was
    printed. ``remove_empty=False`` leaves an empty log for whoever still
    writes there afterwards (Slurm's own messages) to remove
    (:func:`remove_empty_logs`).
    """
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
                if remove_empty:
                    remove_empty_logs(stdout_path, stderr_path)
    finally:
        for fd in saved:
            os.close(fd)


def remove_empty_logs(*paths: PathLike) -> None:
    """Remove those of ``paths`` that are empty files (a log that something opened and nothing printed to)."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            if os.path.getsize(path) == 0:
                os.unlink(path)


def live_files(out_path: PathLike, slot: int) -> Tuple[str, str, str]:
    """The capture files of worker ``slot`` of a run in ``out_path``: its stdout, its stderr, its record.

    ``<out_path>/.live/<slot>.stdout`` and ``.stderr`` hold what the
    repetition the worker runs has printed so far; ``<slot>.json`` is a JSON
    object (padded with spaces) naming it: ``experiment_id``, ``run_id``
    and the paths of its ``stdout`` and ``stderr`` logs, or
    ``{"experiment_id": null}`` while the worker waits. The folder is removed
    when the run ends.
    """
    prefix = os.path.join(out_path, LIVE_FOLDER, str(slot))
    return prefix + ".stdout", prefix + ".stderr", prefix + ".json"


class WorkerCapture:
    """A pool worker's capture of fds 1 and 2 (see the module docstring); call it as a ``capture``."""

    def __init__(self, slot: int):
        self.slot = slot
        self._out_path: Optional[str] = None
        self._fds: Tuple[int, int] = (-1, -1)
        self._record_fd = -1
        self._record_size = 0

    def for_experiment(self, experiment_id: int, out_path: str) -> Callable[[PathLike, PathLike], ContextManager[None]]:
        """The ``capture`` of one experiment's run: called once per repetition, in order."""
        if out_path != self._out_path:
            self._open(out_path)
        run_ids = itertools.count()

        def capture(stdout_path: PathLike, stderr_path: PathLike) -> ContextManager[None]:
            return _Capturing(self, os.fspath(stdout_path), os.fspath(stderr_path), experiment_id, next(run_ids))

        return capture

    def _open(self, out_path: str) -> None:
        """Create this worker's capture files in ``out_path`` and point fds 1 and 2 at them for good."""
        stdout, stderr, record = live_files(out_path, self.slot)
        os.makedirs(os.path.dirname(record), exist_ok=True)
        sys.stdout.flush()
        sys.stderr.flush()
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC  # appends: writes after a truncation go to 0
        fds = (os.open(stdout, flags, 0o666), os.open(stderr, flags, 0o666))
        for fd, target in zip(fds, (1, 2)):
            os.dup2(fd, target)
        for fd in (*self._fds, self._record_fd):
            if fd >= 0:
                os.close(fd)
        self._fds = fds
        self._record_fd = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        self._record_size = 0
        self._out_path = out_path
        with contextlib.suppress(AttributeError, ValueError):  # a stream that cannot: its output only comes later
            sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # readable while it runs

    def _start(self, experiment_id: int, run_id: int, stdout_path: str, stderr_path: str) -> None:
        """The record names the repetition that starts (``json.dumps`` of a text is encode_basestring_ascii)."""
        self._write_record(f'{{"experiment_id": {experiment_id}, "run_id": {run_id}, '
                           f'"stdout": {_json_text(stdout_path)}, "stderr": {_json_text(stderr_path)}}}')

    def _end(self, stdout_path: str, stderr_path: str) -> None:
        """What the repetition printed moved to its logs; the record says the worker waits."""
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            out, err = self._fds
            self._move_output(out, stdout_path)
            self._move_output(err, stderr_path)
        finally:
            self._write_record('{"experiment_id": null}')

    @staticmethod
    def _move_output(fd: int, path: str) -> None:
        """What the repetition printed to capture file ``fd``, appended to its log ``path``; the capture emptied.

        Emptied even when the copy fails (a full disk), so that the next
        repetition's log never starts with this one's output.
        """
        if not os.fstat(fd).st_size:
            return
        try:
            append_file(fd, path)
        finally:
            os.ftruncate(fd, 0)

    def _write_record(self, record: str) -> None:
        """Overwrite the record (JSON text) in place: one write, no new file (a shorter one is padded with spaces)."""
        data = record.encode("utf-8")
        data += b" " * (self._record_size - len(data) - 1) + b"\n"
        os.pwrite(self._record_fd, data, 0)
        self._record_size = max(self._record_size, len(data))


class _Capturing:
    """One repetition's capture by a :class:`WorkerCapture` (a class: a generator costs a short experiment more)."""

    __slots__ = ("worker", "stdout_path", "stderr_path", "experiment_id", "run_id")

    def __init__(self, worker: WorkerCapture, stdout_path: str, stderr_path: str, experiment_id: int, run_id: int):
        self.worker, self.stdout_path, self.stderr_path = worker, stdout_path, stderr_path
        self.experiment_id, self.run_id = experiment_id, run_id

    def __enter__(self) -> None:
        self.worker._start(self.experiment_id, self.run_id, self.stdout_path, self.stderr_path)

    def __exit__(self, *exc_info: Any) -> None:
        self.worker._end(self.stdout_path, self.stderr_path)


def append_file(source: int, path: PathLike) -> None:
    """Append all that the file open as ``source`` holds to ``path`` (created if need be), copied by the kernel."""
    size = os.fstat(source).st_size
    target = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        offset = 0
        while offset < size:
            try:
                sent = os.sendfile(target, source, offset, size - offset)
            except OSError:  # no sendfile between these files here: copy through this process
                sent = os.write(target, os.pread(source, min(size - offset, 1 << 20), offset))
            if not sent:
                break  # the source shrank meanwhile
            offset += sent
    finally:
        os.close(target)


def salvage_worker_output(out_path: PathLike, slot: int) -> None:
    """Move what the repetition that worker ``slot`` ran printed into its logs, after the worker died.

    Call it once the worker's processes have ended. Nothing happens when the
    worker ran nothing or its capture files are empty or gone.
    """
    stdout, stderr, record_path = live_files(out_path, slot)
    try:
        with open(record_path, "rb") as record_file:
            record = json.loads(record_file.read() or b"{}")
    except FileNotFoundError:
        return
    if record.get("experiment_id") is None:
        return
    for capture, log in ((stdout, record["stdout"]), (stderr, record["stderr"])):
        with contextlib.suppress(FileNotFoundError):
            fd = os.open(capture, os.O_RDWR)
            try:
                if os.fstat(fd).st_size:
                    append_file(fd, log)
                    os.ftruncate(fd, 0)
            finally:
                os.close(fd)


def salvage_left_behind_output(out_path: PathLike) -> None:
    """What the repetitions running when an earlier driver was killed (``kill -9``) printed, moved into their logs.

    That driver could not move it itself: its workers' capture files are
    still under ``<out_path>/.live``, and this run's workers would empty them.
    """
    try:
        names = os.listdir(os.path.join(out_path, LIVE_FOLDER))
    except FileNotFoundError:
        return
    for name in names:
        slot, extension = os.path.splitext(name)
        if extension == ".json" and slot.isascii() and slot.isdigit():
            salvage_worker_output(out_path, int(slot))
