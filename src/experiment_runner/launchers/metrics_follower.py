"""The channel back and forth for backends with no live connection to a running experiment (ray, slurm).

The driver reads, every :data:`FOLLOW_SECONDS`, what each running experiment
appended to its repetitions' metrics.jsonl since the last look (a ``stat``
per file, and only the new bytes read), and yields a metrics Message per new
line, as a backend that carries messages would. Asking an experiment to stop
early writes :data:`~experiment_runner.metrics.PRUNE_MARKER` into its folder,
which the experiment's ``should_prune()`` looks for
(:class:`~experiment_runner.metrics.watching_prune_marker`, installed where it
runs); the marker is removed once its outcome has arrived. Both need the
out_path on a filesystem that the driver and the machines running the
experiments share, which the out_path contract assumes anyway. A request
therefore arrives within about FOLLOW_SECONDS plus the filesystem's own delay
(an NFS client's attribute cache may add seconds).
"""
from __future__ import annotations

import json
import os
import time
from typing import Dict, Iterator, List, Set, Tuple

from ..channel import Message
from ..experiment import Experiment
from ..metrics import METRICS, METRICS_FILE, PRUNE_MARKER

#: Seconds between two looks at the running experiments' metrics files.
FOLLOW_SECONDS = 0.5


class _Followed:
    """One repetition's metrics file: how much of it was read, and the start of a line not whole yet."""

    __slots__ = ("path", "run_id", "offset", "partial")

    def __init__(self, path: str, run_id: int):
        self.path = path
        self.run_id = run_id
        _remove(path)  # what an earlier attempt wrote is no news: the new attempt begins the file afresh
        self.offset = 0
        self.partial = b""


class MetricsFollower:
    """The metrics files of the experiments in flight, and the requests to stop early written for them."""

    def __init__(self) -> None:
        #: experiment id -> (its folder, its repetitions' files), for the experiments in flight.
        self._followed: Dict[int, Tuple[str, List[_Followed]]] = {}
        #: Those asked to stop early: their marker is removed with them.
        self._asked: Set[int] = set()
        self._next_look = 0.0

    def follow(self, experiment: Experiment) -> None:
        """From now on, yield the lines ``experiment`` appends to its metrics files (submitted, about to run)."""
        folder = experiment.folder
        _remove(f"{folder}/{PRUNE_MARKER}")  # a request left by a driver that died must not stop this attempt
        files = [_Followed(f"{experiment.run_folder(run_id, folder)}/{METRICS_FILE}", run_id)
                 for run_id in range(experiment.repetitions)]
        self._followed[experiment.experiment_id] = (folder, files)

    def forget(self, experiment_id: int) -> None:
        """``experiment_id`` has its outcome: no more lines from it, and its request to stop early is removed."""
        followed = self._followed.pop(experiment_id, None)
        if experiment_id in self._asked:
            self._asked.discard(experiment_id)
            if followed is not None:
                _remove(f"{followed[0]}/{PRUNE_MARKER}")

    def close(self) -> None:
        """The session closes: no request to stop early stays in the tree."""
        for experiment_id in list(self._followed):
            self.forget(experiment_id)

    def prune(self, experiment_id: int) -> None:
        """Ask ``experiment_id``, if in flight, to stop early: its marker file, once."""
        followed = self._followed.get(experiment_id)
        if followed is None or experiment_id in self._asked:
            return
        try:
            with open(f"{followed[0]}/{PRUNE_MARKER}", "w"):
                pass
        except FileNotFoundError:  # a stage removed its own folder: it reports nothing more to be judged by
            return
        self._asked.add(experiment_id)

    def seconds_to_next_look(self) -> float:
        """How long the session may wait before it should look again (a large number when nothing is followed)."""
        if not self._followed:
            return float("inf")
        return max(0.0, self._next_look - time.monotonic())

    def messages(self) -> Iterator[Message]:
        """A metrics Message per line appended since the last look, at most every FOLLOW_SECONDS."""
        now = time.monotonic()
        if now < self._next_look or not self._followed:
            return
        self._next_look = now + FOLLOW_SECONDS
        for experiment_id, (_, files) in list(self._followed.items()):
            for followed in files:
                yield from _new_lines(experiment_id, followed)


def _new_lines(experiment_id: int, followed: _Followed) -> Iterator[Message]:
    size = _size(followed.path)
    if size < followed.offset:  # a new attempt began the file afresh
        followed.offset, followed.partial = 0, b""
    if size <= followed.offset:
        return
    with open(followed.path, "rb") as file:
        file.seek(followed.offset)
        data = file.read(size - followed.offset)
    followed.offset += len(data)
    *lines, followed.partial = (followed.partial + data).split(b"\n")
    for line in lines:
        try:
            fields = json.loads(line)
        except ValueError:  # a line a killed attempt left torn: the reader of metrics.jsonl skips it too
            continue
        yield Message(experiment_id, METRICS, {**fields, "run_id": followed.run_id})


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:  # the experiment's folder went (a stage removed it)
        return
