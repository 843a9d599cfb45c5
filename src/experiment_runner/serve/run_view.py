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

import operator
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Collection, Dict, Iterator, List, Optional, Set, Tuple, TypeVar

from ..report_records import config_of, failed_and_pruned, metric_stats, repetition_values
from ..run_files import RunPaths
from .columns import ParameterColumns, ScoreBlocks
from .follow import LineFollower, NewLines, line_at

__all__ = ["RunView", "make_row"]

T = TypeVar("T")
#: How much of each record file one step of the first reading takes (a request waits at most one step).
LOAD_CHUNK = 256 * 1024
NO_LINES = NewLines([], False)
#: How often, at most, the experiment folders of a running run are listed to count the experiments in flight.
_LISTING_INTERVAL = 1.0


def make_row(experiment_id: int, parameters: Dict[str, Any], scores: Dict[str, Any]) -> Dict[str, Any]:
    """An experiment's row of the results table, as /api/results sends it."""
    metrics = {}
    for name, (mean, std) in metric_stats(scores).items():
        metrics[name] = {"mean": mean, "std": std, "n": len(repetition_values(scores, name))}
    return {"experiment_id": experiment_id, "parameters": parameters, "metrics": metrics}


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
        self._followers = {name: LineFollower(path, keep_offsets=name == "experiments") for name, path in (
            ("experiments", self.paths.experiments), ("results", self.paths.results),
            ("failures", self.paths.failures))}
        #: The flat parameters (dotted names) of each experiment, from experiments.jsonl (or, without it,
        #: results.jsonl), by column; as a mapping experiment_id -> its parameters.
        self.params = ParameterColumns()
        #: experiment_id -> where the line its config was read from begins, in experiments.jsonl (or, for a tree
        #: without it, in results.jsonl): the experiment's panel reads it again.
        self._config_lines: Dict[int, int] = {}
        self._result_config_lines: Dict[int, int] = {}
        #: The scores of each finished experiment (its last results line's); as a mapping, experiment_id ->
        #: ``{"scores": ...}``.
        self.results = ScoreBlocks()
        #: experiment_id -> its failure lines (one per failed attempt), in the order they were recorded.
        self.failures: Dict[int, List[Dict[str, Any]]] = {}
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
            offsets: Dict[str, List[int]] = {}
            if max_bytes is not None and followers["experiments"].behind:
                followers = {"experiments": followers["experiments"]}
            new = {}
            # where results lines begin is kept only for a tree without experiments.jsonl: then they hold the configs
            self._followers["results"].keep_offsets = not self._config_lines
            for name, follower in followers.items():
                new[name] = follower.read_new(max_bytes)
                offsets[name] = follower.line_offsets
            with self.lock:
                if any(lines.restarted for lines in new.values()):
                    self._clear()
                    return self.refresh(max_bytes)
                self._add(new, offsets)
                self._applied = tuple(follower.offset for follower in self._followers.values())
            return not any(follower.behind for follower in self._followers.values())

    def _add(self, new: Dict[str, NewLines], offsets: Dict[str, List[int]]) -> None:
        experiments = new.get("experiments", NO_LINES).records
        if experiments:
            ids, configs, lines = _valid(experiments, "config", offsets["experiments"])
            self._add_configs(ids, configs)
            self._config_lines.update(zip(ids, lines))
        results = new.get("results", NO_LINES).records
        if results:
            lines = offsets.get("results") or [-1] * len(results)
            self._add_results(*_valid(results, "scores", lines, results))
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

    def _add_configs(self, ids: List[int], configs: List[Any]) -> None:
        if ids:
            self.params.add(ids, configs)

    def _add_results(self, ids: List[int], scores: List[Any], lines: List[int], records: List[Dict[str, Any]]
                     ) -> None:
        if not ids:
            return
        known = self.params.ids
        if not known.issuperset(ids):  # a tree without experiments.jsonl: its results tell the configs
            unknown = [(i, position) for position, i in enumerate(ids) if i not in known]
            self._add_configs([i for i, _ in unknown], [config_of(records[position]) for _, position in unknown])
            self._result_config_lines.update((i, lines[position]) for i, position in unknown if lines[position] >= 0)
        first_new_block = self.results.add(ids, scores)
        recorded = set(ids)
        news = {}
        for metric, column in self._columns.items():
            news[metric] = means = self.results.mean_column(metric, first_new_block)
            for experiment_id in (column.keys() & recorded) - means.keys():  # recorded again, without a number now
                del column[experiment_id]
            column.update(means)
        for (metric, maximise), best in list(self._bests.items()):
            self._bests[(metric, maximise)] = _better(best, self._columns[metric], news[metric], maximise, recorded)

    def recorded_config(self, experiment_id: int) -> Optional[Dict[str, Any]]:
        """The experiment's config as experiments.jsonl (or, without it, its results line) recorded it, read
        again from its line; None if it was not recorded, or the file was rewritten meanwhile."""
        for lines, path, config in ((self._config_lines, self.paths.experiments, lambda r: r.get("config")),
                                    (self._result_config_lines, self.paths.results, config_of)):
            if experiment_id in lines:
                record = line_at(path, lines[experiment_id])
                if record is not None and record.get("experiment_id") == experiment_id:
                    found = config(record)
                    return found if isinstance(found, dict) else None
        return None

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
            scores = self.results.scores(experiment_id)
            return make_row(experiment_id, self.params.row(experiment_id), scores if isinstance(scores, dict) else {})

    def rows(self) -> Iterator[Dict[str, Any]]:
        """Every finished experiment's row, in id order (made as they are asked for: nothing is kept)."""
        with self.lock:
            ids = sorted(self.results)
        for experiment_id in ids:
            yield self.row(experiment_id)

    @property
    def metric_names(self) -> List[str]:
        """The numeric metrics in the order ``post`` returned them (``mean_``/``std_`` of repetitions left out);
        ``fit_time`` last."""
        def make() -> List[str]:
            keys = self.results.keys
            added = {key for key in keys if key.startswith(("mean_", "std_")) and key.split("_", 1)[1] in keys}
            names = [key for key in keys if key not in added and self.results.has_number(key)]
            return sorted(names, key=lambda name: name == "fit_time")

        return self.cached("metric_names", make)

    def metric_column(self, metric: str) -> Dict[int, float]:
        """experiment_id -> the metric's mean, for the finished experiments that have a number for it (made once,
        then kept up to date as results arrive)."""
        with self.lock:
            column = self._columns.get(metric)
            if column is None:
                column = self._columns[metric] = self.results.mean_column(metric)
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
            return failed_and_pruned(lines, {i for i in self.failures if i in self.results})

        return self.cached("failed_and_pruned", make)

    @property
    def total(self) -> int:
        """Experiments known: listed in experiments.jsonl, finished, or failed."""
        def make() -> int:
            failed, pruned = self.failed_and_pruned()
            known = self.params.ids  # every finished experiment's config is known (from its results line, if need be)
            return len(known) + sum(1 for i in failed | pruned if i not in known)

        return self.cached("total", make)

    def varying(self) -> List[str]:
        """The parameters whose value differs between experiments (or that some experiments lack)."""
        with self.lock:
            return self.params.varying()

    def parameter_names(self) -> List[str]:
        """All parameters, the varying ones first, each group in the order the configs name them."""
        varying = self.varying()
        return varying + [name for name in self.params.columns if name not in set(varying)]

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
        return {i for i in self.started_ids() if i not in self.results and i not in self.failures}

    def last_change(self) -> Optional[float]:
        """When a record file last changed (a POSIX time), or None if there is none yet."""
        times = []
        for path in (self.paths.results, self.paths.failures, self.paths.experiments):
            try:
                times.append(os.stat(path).st_mtime)
            except OSError:
                continue
        return max(times) if times else None


def _better(best: Optional[Tuple[int, float]], column: Dict[int, float], candidates: Dict[int, float],
            maximise: bool, recorded: Collection[int] = ()) -> Optional[Tuple[int, float]]:
    """The best of ``best`` and ``candidates`` (experiment_id -> mean), the lowest id among equals; found again
    over the whole ``column`` when ``best`` is among the experiments just ``recorded`` (again: its mean may be
    worse now)."""
    if best is not None and best[0] in recorded:
        best, candidates = None, column
    if not candidates:
        return best
    value = max(candidates.values()) if maximise else min(candidates.values())
    experiment_id = min(i for i, mean in candidates.items() if mean == value)
    if best is None or (value > best[1] if maximise else value < best[1]) or \
            (value == best[1] and experiment_id < best[0]):
        return experiment_id, value
    return best


def _is_id(value: Any) -> bool:
    return value.__class__ is int and value >= 0


def _valid(records: List[Dict[str, Any]], key: str, offsets: List[int], *more: List[Any]) -> Tuple[List[Any], ...]:
    """(experiment ids, each record's ``key``, line offsets, ``more``...) of the records with an experiment id
    (and, for a config, a dict); made for all records at once where all of them are valid, as they are."""
    try:
        ids = list(map(operator.itemgetter("experiment_id"), records))
        values = list(map(operator.itemgetter(key), records))
    except KeyError:  # a line without one of them
        ids = [record.get("experiment_id") for record in records]
        values = [record.get(key) for record in records]
    valid = set(map(type, ids)) == {int} and min(ids) >= 0
    if key == "config":
        valid = valid and set(map(type, values)) == {dict}
    if valid:
        return (ids, values, offsets, *more)
    kept = [position for position, (experiment_id, value) in enumerate(zip(ids, values))
            if _is_id(experiment_id) and (key != "config" or value.__class__ is dict)]
    return tuple([column[position] for position in kept] for column in (ids, values, offsets, *more))
