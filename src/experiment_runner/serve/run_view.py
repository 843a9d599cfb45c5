"""One run as the server keeps it: its record files followed as they grow, and what the API asks of them.

Nothing here reads a whole file twice: each request first reads what was
appended since the last one (:class:`~.follow.LineFollower`), then answers
from what is kept. A file rewritten by a resume is read again from its start.
What costs a pass over all experiments (a metric's column for sorting, the
parameters that vary, the best experiment) is computed when first asked for
and kept until the records change; an experiment's row (its metrics as mean ±
std over repetitions) is made when a page shows it.
"""
from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple, TypeVar

from ..report_records import config_of, failed_and_pruned, flatten, metric_stats, repetition_values
from ..run_files import RunPaths
from .follow import LineFollower, NewLines

__all__ = ["RunView", "canonical", "make_row"]

T = TypeVar("T")
#: How much of each record file one step of the first reading takes (a request waits at most one step).
LOAD_CHUNK = 1024 * 1024
NO_LINES = NewLines([], False)
#: How often, at most, the experiment folders of a running run are listed to count the experiments in flight.
_LISTING_INTERVAL = 1.0


def canonical(value: Any) -> str:
    """A value's JSON text in one spelling (``[1,2]``, ``{"a":1}``): what filters compare."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def value_key(value: Any) -> Any:
    """A key that tells two parameter values apart as JSON does (1 and true differ, 1 and 1.0 do not)."""
    if value.__class__ in _PLAIN:
        return value
    if isinstance(value, (list, dict)):
        return ("json", canonical(value))
    return (value.__class__.__name__, value)


_PLAIN = (int, float, str)


def make_row(experiment_id: int, parameters: Dict[str, Any], scores: Dict[str, Any]) -> Dict[str, Any]:
    """An experiment's row of the results table, as /api/results sends it."""
    metrics = {}
    for name, (mean, std) in metric_stats(scores).items():
        metrics[name] = {"mean": mean, "std": std, "n": len(repetition_values(scores, name))}
    return {"experiment_id": experiment_id, "parameters": parameters, "metrics": metrics}


def metric_mean(scores: Any, metric: str) -> Optional[float]:
    """The metric's value, or its mean over repetitions; None if it has no finite number."""
    value = scores.get(metric) if isinstance(scores, dict) else None
    if isinstance(value, list):
        value = scores.get(f"mean_{metric}")
    if isinstance(value, (int, float)) and value.__class__ is not bool and math.isfinite(value):
        return value
    return None


class RunView:
    """The records of the run in ``root`` read so far; :meth:`refresh` reads what was appended since."""

    def __init__(self, root: Path, name: str):
        self.root = root
        self.name = name
        self.paths = RunPaths(root)
        self.lock = threading.RLock()
        #: Held while the record files are read: one reader at a time.
        self._reading = threading.RLock()
        self._generation = 0
        self._listed: Tuple[float, int, Set[int]] = (0.0, -1, set())
        self._loaded = threading.Event()
        self._loader: Optional[threading.Thread] = None
        self._loading_since = 0.0
        self._clear()

    def _clear(self) -> None:
        self._followers = {name: LineFollower(path) for name, path in (
            ("experiments", self.paths.experiments), ("results", self.paths.results),
            ("failures", self.paths.failures))}
        #: experiment_id -> its config as experiments.jsonl (or, without it, results.jsonl) recorded it.
        self.configs: Dict[int, Dict[str, Any]] = {}
        #: experiment_id -> its config's flat parameters (dotted names).
        self.parameters: Dict[int, Dict[str, Any]] = {}
        #: experiment_id -> its results line (the last one, if it was recorded twice).
        self.results: Dict[int, Dict[str, Any]] = {}
        #: experiment_id -> its failure lines (one per failed attempt), in the order they were recorded.
        self.failures: Dict[int, List[Dict[str, Any]]] = {}
        self._score_keys: Dict[str, Any] = {}
        self._rows: Dict[int, Dict[str, Any]] = {}
        #: Per parameter: how many experiments have it, and the key of the first value seen.
        self._parameter_counts: Dict[str, int] = {}
        self._first_values: Dict[str, Any] = {}
        self._varying: Dict[str, None] = {}
        #: metric -> {experiment_id: mean}, for the metrics asked for so far, kept up to date as results arrive.
        self._columns: Dict[str, Dict[int, float]] = {}
        #: (metric, maximise) -> (experiment_id, mean) of the best experiment, kept up to date likewise.
        self._bests: Dict[Tuple[str, bool], Optional[Tuple[int, float]]] = {}
        self._cache: Dict[Any, Any] = {}
        #: How far each record file was read when the lines read were last added: what :attr:`version` tells.
        self._applied: Tuple[int, ...] = (0, 0, 0)
        self._generation += 1

    # ------------------------------------------------------------ reading

    def refresh(self, max_bytes: Optional[int] = None) -> bool:
        """Read what the record files gained (with ``max_bytes``, at most that much of each); True once all
        is read. experiments.jsonl is read before the others, so that each result finds its config.

        The lines are parsed before the view is locked: requests wait for the
        new lines to be added, not for them to be read.
        """
        with self._reading:
            followers = self._followers
            if max_bytes is not None and followers["experiments"].behind:
                followers = {"experiments": followers["experiments"]}
            new = {name: follower.read_new(max_bytes) for name, follower in followers.items()}
            with self.lock:
                if any(lines.restarted for lines in new.values()):
                    self._clear()
                    return self.refresh(max_bytes)
                self._add(new)
                self._applied = tuple(follower.offset for follower in self._followers.values())
            return not any(follower.behind for follower in self._followers.values())

    def _add(self, new: Dict[str, NewLines]) -> None:
        for record in new.get("experiments", NO_LINES).records:
            self._add_config(record.get("experiment_id"), record.get("config"))
        self._add_results(new.get("results", NO_LINES).records)
        for record in new.get("failures", NO_LINES).records:
            if _is_id(record.get("experiment_id")):
                self.failures.setdefault(record["experiment_id"], []).append(record)
        if any(lines.records for lines in new.values()):
            self._cache.clear()  # what a pass over all experiments made: made again when next asked for

    def catch_up(self, wait: float) -> None:
        """Bring the view up to date for a request. The first time, the files are read in the background a
        chunk at a time, and requests wait for it until ``wait`` seconds after it began: a big run then shows
        what is read so far (:attr:`loading` says how far) and fills in as the page asks again."""
        if self._loaded.is_set():
            self.refresh()
            return
        with self.lock:
            if self._loader is None:
                self._loader = threading.Thread(target=self._load, name=f"reading {self.name}", daemon=True)
                self._loading_since = time.monotonic()
                self._loader.start()
        self._loaded.wait(max(0.0, self._loading_since + wait - time.monotonic()))

    def _load(self) -> None:
        try:
            while not self.refresh(LOAD_CHUNK):
                continue
        finally:  # a file that cannot be read: the next request reads it again, and says why it cannot
            self._loaded.set()

    @property
    def loading(self) -> Optional[Dict[str, int]]:
        """While the first reading goes on: how many bytes of the record files are read, of how many."""
        if self._loaded.is_set():
            return None
        read = total = 0
        for follower in self._followers.values():
            read += follower.offset
            try:
                total += os.stat(follower.path).st_size
            except FileNotFoundError:
                continue  # no such record file (yet): nothing to read
        return {"read_bytes": read, "total_bytes": total}

    @property
    def version(self) -> str:
        """Changes whenever what was read of the record files changed: they grew, or were rewritten."""
        return ".".join(map(str, (self._generation, *self._applied)))

    def _add_config(self, experiment_id: Any, config: Any) -> None:
        if not _is_id(experiment_id) or not isinstance(config, dict):
            return
        if experiment_id in self.parameters:  # recorded again: the counts are made anew when next asked for
            self._parameter_counts.clear()
        self.configs[experiment_id] = config
        nested = any(value.__class__ is dict for value in config.values())
        self.parameters[experiment_id] = parameters = flatten(config) if nested else config
        self._rows.pop(experiment_id, None)
        if self._parameter_counts or len(self.parameters) == 1:
            self._count_parameters(parameters)

    def _count_parameters(self, parameters: Dict[str, Any]) -> None:
        counts, first, varying = self._parameter_counts, self._first_values, self._varying
        for name, value in parameters.items():
            counts[name] = counts.get(name, 0) + 1
            if name not in varying and first.setdefault(name, value_key(value)) != value_key(value):
                varying[name] = None

    def _add_results(self, records: List[Dict[str, Any]]) -> None:
        results, configs, score_keys = self.results, self.configs, self._score_keys
        added = []
        for record in records:
            experiment_id = record.get("experiment_id")
            if not _is_id(experiment_id):
                continue
            if experiment_id not in configs:  # a tree without experiments.jsonl: its results tell the configs
                self._add_config(experiment_id, config_of(record))
            results[experiment_id] = record
            added.append(experiment_id)
            scores = record.get("scores")
            if scores.__class__ is dict:
                score_keys.update(scores)
        for experiment_id in added if self._rows else ():
            self._rows.pop(experiment_id, None)
        for metric, column in self._columns.items():
            for experiment_id in added:
                mean = metric_mean(results[experiment_id].get("scores"), metric)
                if mean is None:
                    column.pop(experiment_id, None)
                else:
                    column[experiment_id] = mean
        for (metric, maximise), best in list(self._bests.items()):
            self._bests[(metric, maximise)] = _better(best, self._columns[metric], added, maximise)

    # ------------------------------------------------------------ what is known

    def cached(self, key: Any, make: Callable[[], T]) -> T:
        """``make()``, kept until the records change (sorted orders, the best row, failure groups)."""
        with self.lock:
            if key not in self._cache:
                self._cache[key] = make()
            return self._cache[key]

    def row(self, experiment_id: int) -> Dict[str, Any]:
        """The row of a finished experiment: its parameters and each metric's mean, std and count."""
        with self.lock:
            row = self._rows.get(experiment_id)
            if row is None:
                scores = self.results[experiment_id].get("scores")
                row = make_row(experiment_id, self.parameters.get(experiment_id, {}),
                               scores if isinstance(scores, dict) else {})
                self._rows[experiment_id] = row
            return row

    @property
    def rows(self) -> Dict[int, Dict[str, Any]]:
        """Every finished experiment's row, by id (each made once, then kept until its records change)."""
        with self.lock:
            return {experiment_id: self.row(experiment_id) for experiment_id in sorted(self.results)}

    @property
    def metric_names(self) -> List[str]:
        """The numeric metrics in the order ``post`` returned them (``mean_``/``std_`` of repetitions left out);
        ``fit_time`` last."""
        def make() -> List[str]:
            keys = self._score_keys
            added = {key for key in keys if key.startswith(("mean_", "std_")) and key.split("_", 1)[1] in keys}
            names = [key for key in keys if key not in added and self._has_a_number(key)]
            return sorted(names, key=lambda name: name == "fit_time")

        return self.cached("metric_names", make)

    def _has_a_number(self, metric: str) -> bool:
        return any(metric_mean(record.get("scores"), metric) is not None for record in self.results.values())

    def metric_column(self, metric: str) -> Dict[int, float]:
        """experiment_id -> the metric's mean, for the finished experiments that have a number for it (made once,
        then kept up to date as results arrive)."""
        with self.lock:
            column = self._columns.get(metric)
            if column is None:
                column = self._columns[metric] = {}
                for experiment_id, record in self.results.items():
                    mean = metric_mean(record.get("scores"), metric)
                    if mean is not None:
                        column[experiment_id] = mean
            return column

    def best(self, metric: str, maximise: bool) -> Optional[Tuple[int, float]]:
        """(experiment_id, mean) of the experiment with the highest (or lowest) mean of ``metric``, the lowest id
        among equals; None while none has a number for it. Found once, then kept up to date as results arrive."""
        with self.lock:
            key = (metric, maximise)
            if key not in self._bests:
                self._bests[key] = _better(None, self.metric_column(metric), self.metric_column(metric), maximise)
            return self._bests[key]

    def failed_and_pruned(self) -> Tuple[Set[int], Set[int]]:
        """The experiments that failed for good, and those a search pruned (none of them finished since)."""
        def make() -> Tuple[Set[int], Set[int]]:
            lines = (line for attempts in self.failures.values() for line in attempts)
            return failed_and_pruned(lines, set(self.results))

        return self.cached("failed_and_pruned", make)

    @property
    def total(self) -> int:
        """Experiments known: listed in experiments.jsonl, finished, or failed."""
        def make() -> int:
            failed, pruned = self.failed_and_pruned()
            return len(set(self.configs).union(self.results, failed, pruned))

        return self.cached("total", make)

    def varying(self) -> List[str]:
        """The parameters whose value differs between experiments (or that some experiments lack)."""
        with self.lock:
            if not self._parameter_counts and self.parameters:
                self._first_values.clear()
                self._varying.clear()
                for parameters in self.parameters.values():
                    self._count_parameters(parameters)
            every = len(self.parameters)
            return [name for name, count in self._parameter_counts.items() if name in self._varying or count < every]

    def parameter_names(self) -> List[str]:
        """All parameters, the varying ones first, each group in the order the configs name them."""
        varying = self.varying()
        return varying + [name for name in self._parameter_counts if name not in set(varying)]

    def started_ids(self) -> Set[int]:
        """The experiments whose folder exists (an experiment makes it when it starts), listed at most once a
        second and only when the run folder changed."""
        with self.lock:
            when, mtime, ids = self._listed
            try:
                now_mtime = os.stat(self.root).st_mtime_ns
            except OSError:
                return set()
            if now_mtime != mtime and time.monotonic() - when >= _LISTING_INTERVAL:
                with os.scandir(self.root) as entries:
                    ids = {int(entry.name) for entry in entries if entry.name.isdigit() and entry.is_dir()}
                self._listed = (time.monotonic(), now_mtime, ids)
            return ids

    def running_ids(self) -> Set[int]:
        """Experiments started and not ended: a folder, but neither a result nor a failure."""
        return self.started_ids() - set(self.results) - set(self.failures)

    def last_change(self) -> Optional[float]:
        """When a record file last changed (a POSIX time), or None if there is none yet."""
        times = []
        for path in (self.paths.results, self.paths.failures, self.paths.experiments):
            try:
                times.append(os.stat(path).st_mtime)
            except OSError:
                continue
        return max(times) if times else None


def _better(best: Optional[Tuple[int, float]], column: Dict[int, float], ids: Iterable[int], maximise: bool
            ) -> Optional[Tuple[int, float]]:
    """The best of ``best`` and the experiments ``ids`` of ``column``; found again over the whole column when
    ``best`` itself is among ``ids`` (recorded again, its mean may be worse now)."""
    ids = list(ids)
    if best is not None and best[0] in set(ids):
        best, ids = None, list(column)
    sign = 1 if maximise else -1
    for experiment_id in ids:
        mean = column.get(experiment_id)
        if mean is None:
            continue
        if best is None or sign * mean > sign * best[1] or (mean == best[1] and experiment_id < best[0]):
            best = (experiment_id, mean)
    return best


def _is_id(value: Any) -> bool:
    return value.__class__ is int and value >= 0
