"""The JSON answers about experiments: one experiment in full (/api/experiment) and the failures of a run,
grouped by identical error (/api/failures)."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ..report_records import experiment_metrics_files, metric_names, numbered_folders
from ..run_files import read_jsonl
from .run_view import RunView
from .runs import is_locked, locked_inodes
from .site import Query, RequestError, Site, one, whole

__all__ = ["ROUTES", "experiment", "failures", "error_text", "tail_lines"]

#: Lines of each log an experiment's page shows, of a traceback a failure group shows, ids a group lists.
LOG_LINES = 200
TRACEBACK_LINES = 15
GROUP_IDS = 100
#: The most bytes read from the end of a log to find its last lines, and the most metrics lines sent.
_TAIL_BYTES = 1024 * 1024
_METRICS_LINES = 20000
_LOGS = ("stdout.log", "stderr.log")
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{4,}\b")


def experiment(site: Site, query: Query) -> Dict[str, Any]:
    """One experiment: config, status, scores (per repetition too), failures, log tails, intermediate metrics."""
    view = site.view(query)
    one(query, "id")  # required: a missing id is a 400 that names it
    experiment_id = whole(query, "id", 0)
    with view.lock:
        known = experiment_id in view.params or experiment_id in view.results or experiment_id in view.failures
        if not known:
            raise RequestError(404, f"run {view.name!r} has no experiment {query.get('id', [''])[-1]!r}")
        result = view.results.get(experiment_id)
        scores = result.get("scores") if result else None
        attempts = list(view.failures.get(experiment_id, []))
        status = _status(view, experiment_id)
    folder = view.root / str(experiment_id)
    folder = folder if site.folder_inside(folder) else None
    repetitions = _repetition_folders(folder)
    return {"experiment_id": experiment_id, "path": str(folder or view.root / str(experiment_id)),
            "config": _config(site, folder, repetitions) or view.recorded_config(experiment_id), "status": status,
            "scores": scores, "repetitions": _repetitions(scores, repetitions, folder),
            "failures": attempts, "logs": _logs(site, folder, repetitions), "metrics": _metrics(site, folder)}


def _status(view: RunView, experiment_id: int) -> str:
    if experiment_id in view.results:
        return "finished"
    failed, pruned = view.failed_and_pruned()
    if experiment_id in pruned:
        return "pruned"
    if experiment_id in failed:
        return "failed"
    going = is_locked(view.root, locked_inodes())
    return "running" if going and experiment_id in view.running_ids() else "pending"


def _repetition_folders(folder: Optional[Path]) -> List[Tuple[int, Path]]:
    if folder is None:
        return []
    try:
        return numbered_folders(folder)
    except OSError:
        return []  # the experiment has not started: no folder yet


def _config(site: Site, folder: Optional[Path], repetitions: List[Tuple[int, Path]]) -> Optional[Any]:
    """The experiment's config.json (with several repetitions, repetition 0's), reserved keys included."""
    candidates = [folder / "config.json"] if folder else []
    candidates += [repetition / "config.json" for _, repetition in repetitions[:1]]
    for candidate in candidates:
        path = site.file_inside(candidate)
        if path is None:
            continue
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # being written, or not JSON: the next candidate, or what experiments.jsonl recorded
    return None


def _repetitions(scores: Optional[Dict[str, Any]], repetitions: List[Tuple[int, Path]], folder: Optional[Path]
                 ) -> List[Dict[str, Any]]:
    """Each repetition's scores (from the results line's lists) and folder."""
    if not repetitions:
        return [{"run_id": 0, "scores": _repetition_scores(scores, 0, single=True), "path": str(folder)}] \
            if scores is not None else []
    return [{"run_id": run_id, "scores": _repetition_scores(scores, run_id, single=False), "path": str(path)}
            for run_id, path in repetitions]


def _repetition_scores(scores: Optional[Dict[str, Any]], run_id: int, single: bool) -> Optional[Dict[str, Any]]:
    if scores is None:
        return None
    picked = {}
    for name in metric_names(scores):
        value = scores[name]
        if isinstance(value, list):
            picked[name] = value[run_id] if run_id < len(value) else None
        elif single:
            picked[name] = value
    return picked


def _logs(site: Site, folder: Optional[Path], repetitions: List[Tuple[int, Path]]) -> Dict[str, str]:
    """The last lines of each stdout.log and stderr.log, by path in the experiment's folder (``0/stdout.log``)."""
    places = ([("", folder)] if folder else []) + [(f"{run_id}/", path) for run_id, path in repetitions]
    logs = {}
    for prefix, place in places:
        for name in _LOGS:
            path = site.file_inside(place / name)
            if path is not None:
                logs[prefix + name] = tail_lines(path, LOG_LINES)
    return logs


def tail_lines(path: Path, count: int) -> str:
    """The last ``count`` lines of a text file, reading at most 1 MB from its end."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        start = max(0, size - _TAIL_BYTES)
        f.seek(start)
        data = f.read()
    lines = data.splitlines()
    if start > 0 and lines:
        lines = lines[1:]  # the first line read is cut
    return b"\n".join(lines[-count:]).decode("utf-8", errors="replace")


def _metrics(site: Site, folder: Optional[Path]) -> List[Dict[str, Any]]:
    """The intermediate values the experiment reported (metrics.jsonl of each repetition), with their run_id."""
    if folder is None:
        return []
    lines: List[Dict[str, Any]] = []
    for run_id, file in experiment_metrics_files(folder):
        if site.file_inside(file) is None:
            continue
        for line in read_jsonl(file):
            lines.append({"run_id": run_id, **line})
            if len(lines) >= _METRICS_LINES:
                return lines
    return lines


# ---------------------------------------------------------------- failures


def failures(site: Site, query: Query) -> Dict[str, Any]:
    """The experiments that failed for good, one group per identical error, largest first; and apart, those an
    adaptive search stopped early (pruned: on purpose, no failure, no traceback)."""
    view = site.view(query)
    with view.lock:
        return view.cached("failures", lambda: _failure_groups(view))


def _failure_groups(view: RunView) -> Dict[str, Any]:
    failed, pruned = view.failed_and_pruned()
    groups: Dict[Tuple[str, str], Dict[str, Any]] = {}
    for experiment_id in sorted(failed):
        last = view.failures[experiment_id][-1]
        status = str(last.get("status") or "error")
        text = error_text(last)
        group = groups.get((text, status))
        if group is None:
            group = groups[(text, status)] = {"error": text, "status": status, "count": 0, "experiment_ids": [],
                                              "traceback_tail": _traceback_tail(last)}
        group["count"] += 1
        if len(group["experiment_ids"]) < GROUP_IDS:
            group["experiment_ids"].append(experiment_id)
    ordered = sorted(groups.values(), key=lambda group: (-group["count"], group["experiment_ids"][0]))
    return {"groups": ordered, "total": len(failed),
            "pruned": {"count": len(pruned), "experiment_ids": sorted(pruned)[:GROUP_IDS]}}


def error_text(line: Dict[str, Any]) -> str:
    """What identical failures share: ``ValueError: diverged`` (an exception's type and its message's first
    line), or for a timeout, a crash or a pruned trial its status and message; memory addresses (``0x7f3a...``)
    are left out, as they differ between processes."""
    message = str(line.get("message") or "").strip().splitlines()
    first = _ADDRESS.sub("0x…", message[0]) if message else ""
    status = str(line.get("status") or "error")
    kind = str(line.get("error_type") or "") if status == "error" else status
    kind = kind or status
    return f"{kind}: {first}" if first else kind


def _traceback_tail(line: Dict[str, Any]) -> str:
    text = str(line.get("traceback") or line.get("message") or "")
    return "\n".join(text.rstrip("\n").splitlines()[-TRACEBACK_LINES:])


ROUTES = {"/api/experiment": experiment, "/api/failures": failures}
