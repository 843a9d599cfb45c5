"""Reading a JSON-lines file as it grows: each read returns only the lines appended since the last one.

A run's record files only ever grow by whole lines, except when a resume or
an overwrite rewrites them: a follower notices (the file shrank, or it is
another file: its inode changed) and starts again from the first line.
"""
from __future__ import annotations

import itertools
import json
import os
import threading
from pathlib import Path
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

_fast_loads: Callable[[bytes], Any]
try:
    from orjson import loads as _fast_loads
except ImportError:  # an install without the serve extra: the json module parses as well, slower
    _fast_loads = json.loads

__all__ = ["LineFollower", "NewLines", "line_at"]

#: The most bytes one read takes; a bigger backlog is read in several.
_CHUNK = 16 * 1024 * 1024


class NewLines(NamedTuple):
    """What a follower read: the records appended since its last read, and whether it started again from the
    first line (then ``records`` are all the file's records, and whatever was built from earlier ones is stale)."""

    records: List[Dict[str, Any]]
    restarted: bool


class LineFollower:
    """Follows one JSON-lines file: keeps the byte offset it read up to and a cut last line until it is whole.

    A line that is not a JSON object is skipped and counted in ``bad_lines``
    (the report command refuses such a file; a live view shows what it can).
    """

    def __init__(self, path: Path, keep_offsets: bool = False):
        self.path = path
        #: Whether each read tells where each of its records' lines begins in the file (:attr:`line_offsets`).
        self.keep_offsets = keep_offsets
        self.line_offsets: List[int] = []
        self.bad_lines = 0
        self._offset = 0
        self._identity: Optional[Tuple[int, int]] = None
        self._partial = b""
        #: The file's size when it was last looked at.
        self.size = 0
        self._lock = threading.Lock()

    def read_new(self, max_bytes: Optional[int] = None) -> NewLines:
        """The records appended since the last call (all of them on the first call, or after a rewrite); with
        ``max_bytes``, those of the next ``max_bytes`` bytes at most (see :attr:`behind`)."""
        with self._lock:
            try:
                status = os.stat(self.path)
            except FileNotFoundError:
                restarted = self._identity is not None
                self._reset(None)
                self.size = 0
                self.line_offsets = []
                return NewLines([], restarted)
            identity = (status.st_dev, status.st_ino)
            restarted = self._identity is not None and (identity != self._identity or status.st_size < self._offset)
            if restarted or self._identity is None:
                self._reset(identity)
            self.size = status.st_size
            self.line_offsets = []
            if status.st_size == self._offset:
                return NewLines([], restarted)
            return NewLines(self._read_from_offset(max_bytes or _CHUNK, once=max_bytes is not None), restarted)

    @property
    def behind(self) -> bool:
        """Whether the file was longer than what was read, when it was last looked at."""
        return self._offset < self.size

    @property
    def offset(self) -> int:
        """How many bytes of the file have been read (a cut last line included)."""
        return self._offset

    def _reset(self, identity: Optional[Tuple[int, int]]) -> None:
        self._identity = identity
        self._offset = 0
        self._partial = b""
        self.bad_lines = 0

    def _read_from_offset(self, chunk_size: int, once: bool) -> List[Dict[str, Any]]:
        records: List[Dict[str, Any]] = []
        self.line_offsets = []
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            while True:
                chunk = f.read(chunk_size)
                if not chunk:
                    break
                start = self._offset - len(self._partial)
                self._offset += len(chunk)
                records.extend(self._whole_lines(chunk, start))
                if once:
                    break
        return records

    def _whole_lines(self, chunk: bytes, start: int) -> List[Dict[str, Any]]:
        """The records of the whole lines of what was kept of the last chunk and ``chunk`` (whose first byte is
        at ``start`` in the file); their offsets go to :attr:`line_offsets` if they are kept."""
        data = self._partial + chunk
        end = data.rfind(b"\n") + 1
        self._partial = data[end:]
        lines = data[:end].split(b"\n")
        lines.pop()  # what follows the last newline: nothing
        if not lines:
            return []
        offsets = list(itertools.accumulate(map(len, lines[:-1]), _after_newline, initial=start)) \
            if self.keep_offsets else []
        try:  # all lines at once, as one JSON array: half the time of a json.loads per line
            records = _parse_array(b"[" + b",".join(lines) + b"]")
        except ValueError:  # a blank line, a line that is no JSON (or not UTF-8), a record split over lines
            records = None
        if records is None or len(records) != len(lines) or set(map(type, records)) != {dict}:
            lines, offsets = _blank_lines_out(lines, start)
            parsed = [self._parse(line) for line in lines]
            offsets = [offset for offset, record in zip(offsets, parsed) if record is not None]
            records = [record for record in parsed if record is not None]
        if self.keep_offsets:
            self.line_offsets.extend(offsets)
        return records

    def _parse(self, line: bytes) -> Optional[Dict[str, Any]]:
        try:
            record = json.loads(line)
        except ValueError:  # not JSON, or not UTF-8
            record = None
        if isinstance(record, dict):
            return record
        self.bad_lines += 1
        return None


def _parse_array(data: bytes) -> Any:
    """Many whole lines as one JSON array: with orjson (the serve extra installs it) where it is there, three to
    four times as fast as the json module on a big run's 50 MB. orjson takes strict JSON only, as the run's
    records are written; what it refuses (a NaN written by another tool, an int beyond 64 bits) raises, and the
    caller then reads line by line with the json module, which takes those."""
    return _fast_loads(data)


def _after_newline(offset: int, length: int) -> int:
    return offset + length + 1


def _blank_lines_out(lines: List[bytes], start: int) -> Tuple[List[bytes], List[int]]:
    """The lines that are not blank, and where each begins (the first at ``start``)."""
    kept, offsets = [], []
    for line in lines:
        if line.strip():
            kept.append(line)
            offsets.append(start)
        start += len(line) + 1
    return kept, offsets


def line_at(path: Path, offset: int) -> Optional[Dict[str, Any]]:
    """The record of the line that begins at ``offset`` in ``path``; None if it is not a JSON object (the file
    was rewritten meanwhile: the next read of its follower starts again) or the file is gone."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            line = f.readline()
    except FileNotFoundError:
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None
