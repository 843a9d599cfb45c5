"""One run as the server keeps it: its record files followed as they grow, and per experiment one row
(parameters, and each metric's mean ± std over repetitions) updated as lines arrive.

Nothing here reads a whole file twice: each request first reads what was
appended since the last one (:class:`~.follow.LineFollower`), then answers
from what is kept. A file rewritten by a resume is read again from its start.
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

from ..report_records import config_of, failed_and_pruned, flatten, metric_stats, repetition_values
from ..run_files import RunPaths
from .follow import LineFollower

__all__ = ["RunView", "canonical"]

#: How often, at most, the experiment folders of a running run are listed to count the experiments in flight.
_LISTING_INTERVAL = 1.0


def canonical(value: Any) -> str:
    """A value's JSON text in one spelling (``[1,2]``, ``{"a":1}``): what filters compare."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


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
        self._generation = 0
        self._listed: Tuple[float, int, Set[int]] = (0.0, -1, set())
        self._clear()

    def _clear(self) -> None:
        self._followers = {name: LineFollower(path) for name, path in (
            ("experiments", self.paths.experiments), ("results", self.paths.results),
            ("failures", self.paths.failures))}
        #: experiment_id -> its config as experiments.jsonl (or, without it, results.jsonl) recorded it.
        self.configs: Dict[int, Dict[str, Any]] = {}
        #: experiment_id -> its config's flat parameters (dotted names).
        self.parameters: Dict[int, Dict[str, Any]] = {}
        #: dotted name -> {canonical value: count} over all experiments' configs.
        self.value_counts: Dict[str, Dict[str, int]] = {}
        self.results: Dict[int, Dict[str, Any]] = {}
        self.rows: Dict[int, Dict[str, Any]] = {}
        self.failures: Dict[int, List[Dict[str, Any]]] = {}
        self._metric_names: Dict[str, None] = {}
        self._cache: Dict[Any, Any] = {}
        self._generation += 1

    # ------------------------------------------------------------ reading

    def refresh(self) -> str:
        """Read what the record files gained; returns :attr:`version`."""
        with self.lock:
            new = {name: follower.read_new() for name, follower in self._followers.items()}
            if any(lines.restarted for lines in new.values()):
                self._clear()
                new = {name: follower.read_new() for name, follower in self._followers.items()}
            for record in new["experiments"].records:
                self._add_config(record.get("experiment_id"), record.get("config"))
            for record in new["results"].records:
                self._add_result(record)
            for record in new["failures"].records:
                if _is_id(record.get("experiment_id")):
                    self.failures.setdefault(record["experiment_id"], []).append(record)
            if any(lines.records for lines in new.values()):
                self._cache.clear()
            return self.version

    @property
    def version(self) -> str:
        """Changes whenever a record file grew or was rewritten."""
        offsets = ".".join(str(follower.offset) for follower in self._followers.values())
        return f"{self._generation}.{offsets}"

    def _add_config(self, experiment_id: Any, config: Any) -> None:
        if not _is_id(experiment_id) or not isinstance(config, dict):
            return
        for name, value in self.parameters.get(experiment_id, {}).items():
            self.value_counts[name][canonical(value)] -= 1
        self.configs[experiment_id] = config
        flat = flatten(config)
        self.parameters[experiment_id] = flat
        for name, value in flat.items():
            counts = self.value_counts.setdefault(name, {})
            key = canonical(value)
            counts[key] = counts.get(key, 0) + 1

    def _add_result(self, record: Dict[str, Any]) -> None:
        experiment_id = record.get("experiment_id")
        if not _is_id(experiment_id):
            return
        if experiment_id not in self.configs:  # a tree without experiments.jsonl: its results tell the configs
            self._add_config(experiment_id, config_of(record))
        scores = record.get("scores") if isinstance(record.get("scores"), dict) else {}
        self.results[experiment_id] = record
        row = make_row(experiment_id, self.parameters.get(experiment_id, {}), scores)
        self.rows[experiment_id] = row
        self._metric_names.update(dict.fromkeys(row["metrics"]))

    # ------------------------------------------------------------ what is known

    def cached(self, key: Any, make: Any) -> Any:
        """``make()``, kept until the records change (sorted orders, the best row, failure groups)."""
        with self.lock:
            if key not in self._cache:
                self._cache[key] = make()
            return self._cache[key]

    @property
    def metric_names(self) -> List[str]:
        """The numeric metrics in the order ``post`` returned them; ``fit_time`` last."""
        return sorted(self._metric_names, key=lambda name: name == "fit_time")

    def failed_and_pruned(self) -> Tuple[Set[int], Set[int]]:
        """The experiments that failed for good, and those a search pruned (none of them finished since)."""
        def make() -> Tuple[Set[int], Set[int]]:
            lines = (line for attempts in self.failures.values() for line in attempts)
            return failed_and_pruned(lines, set(self.results))

        return self.cached("failed_and_pruned", make)

    @property
    def total(self) -> int:
        failed, pruned = self.failed_and_pruned()
        return len(set(self.configs) | set(self.results) | failed | pruned)

    def varying(self) -> List[str]:
        """The parameters whose value differs between experiments (or that some experiments lack)."""
        total = len(self.parameters)
        return [name for name, counts in self.value_counts.items()
                if sum(1 for n in counts.values() if n > 0) > 1 or sum(counts.values()) < total]

    def parameter_names(self) -> List[str]:
        """All parameters, the varying ones first, each group in the order the configs name them."""
        varying = self.varying()
        return varying + [name for name in self.value_counts if name not in set(varying)]

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


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
