"""Reading a JSON-lines file as it grows: each read returns only the lines appended since the last one.

A run's record files only ever grow by whole lines, except when a resume or
an overwrite rewrites them: a follower notices (the file shrank, or it is
another file: its inode changed) and starts again from the first line.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

__all__ = ["LineFollower", "NewLines"]

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

    def __init__(self, path: Path):
        self.path = path
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
                return NewLines([], restarted)
            identity = (status.st_dev, status.st_ino)
            restarted = self._identity is not None and (identity != self._identity or status.st_size < self._offset)
            if restarted or self._identity is None:
                self._reset(identity)
            self.size = status.st_size
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
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            while True:
                chunk = f.read(chunk_size)
                if not chunk:
                    break
                self._offset += len(chunk)
                records.extend(self._whole_lines(chunk))
                if once:
                    break
        return records

    def _whole_lines(self, chunk: bytes) -> List[Dict[str, Any]]:
        data = self._partial + chunk
        end = data.rfind(b"\n") + 1
        self._partial = data[end:]
        lines = [line for line in data[:end].splitlines() if line.strip()]
        try:  # all lines at once, as one JSON array: half the time of a json.loads per line
            records = json.loads(b"[" + b",".join(lines) + b"]")
        except ValueError:  # a line that is no JSON (or not UTF-8), or a record split over lines: line by line
            return [record for record in map(self._parse, lines) if record is not None]
        if len(records) == len(lines) and all(isinstance(record, dict) for record in records):
            return records
        return [record for record in map(self._parse, lines) if record is not None]

    def _parse(self, line: bytes) -> Optional[Dict[str, Any]]:
        try:
            record = json.loads(line)
        except ValueError:  # not JSON, or not UTF-8
            record = None
        if isinstance(record, dict):
            return record
        self.bad_lines += 1
        return None
