"""The JSON answers about runs: the list of runs (/api/runs) and one run's summary (/api/run).

Each handler (here and in results_api.py, experiment_api.py, plots.py) takes
the :class:`~.site.Site` and the query (name -> values) and returns what is
sent as JSON; a :class:`~.site.RequestError` is sent as ``{"error": "one
line"}`` with its status.
"""
from __future__ import annotations

import time
from typing import Any, Dict, Optional, Tuple

from .. import __version__
from ..report_records import lower_is_better
from .run_view import RunView
from .runs import FINISHED, INTERRUPTED, RUNNING, UNKNOWN, is_locked, locked_inodes, seconds_since
from .site import FIRST_READING_WAIT, Query, RequestError, Site, one

__all__ = ["ROUTES", "runs", "run", "run_summary", "best_of", "best_metric"]


def runs(site: Site, query: Query) -> Dict[str, Any]:
    """Every run under the served folder, newest first; runs being read for the first time (big ones) with the
    counts read so far, all of them within FIRST_READING_WAIT seconds in all."""
    locked = locked_inodes()
    deadline = time.monotonic() + FIRST_READING_WAIT
    views = site.views_of_all()
    for view in views:
        view.catch_up(max(0.0, deadline - time.monotonic()))
    summaries = [run_summary(site, view, locked) for view in views]
    summaries.sort(key=lambda summary: summary["started"] or "", reverse=True)
    return {"root": str(site.root), "runs": summaries}


def run(site: Site, query: Query) -> Dict[str, Any]:
    """One run: its summary, its parameters and metrics, its best experiment and how long it has left."""
    view = site.view(query)
    summary = run_summary(site, view, locked_inodes())
    varying = view.varying()
    return {**summary, "parameters": view.parameter_names(), "varying": varying, "metrics": view.metric_names,
            "best": best_of(site, view, query), "eta_seconds": _eta(summary),
            "out_path": str(view.root), "path": site.shown_path(view.root), "version": view.version,
            "server_version": __version__}


def run_summary(site: Site, view: RunView, locked: Any) -> Dict[str, Any]:
    """The Run object of the API: state, backend, counts, start, wall time and command; ``loading`` while a big
    run is read for the first time (its counts are those read so far)."""
    meta = site.meta(view.root)
    with view.lock:
        failed, pruned = view.failed_and_pruned()
        total = max(view.total, meta.planned or 0)
        finished = len(view.results)
        going = is_locked(view.root, locked)
        running = len(view.running_ids()) if going else 0
        loading = view.loading
    pending = max(0, total - finished - len(failed) - len(pruned) - running)
    state = UNKNOWN if going is None else RUNNING if going else INTERRUPTED if pending else FINISHED
    wall = seconds_since(meta.started, None if going else view.last_change())
    return {"run": view.name, "state": state, "backend": meta.backend, "total": total, "finished": finished,
            "failed": len(failed), "pruned": len(pruned), "pending": pending, "running": running,
            "started": meta.started.isoformat(timespec="seconds") if meta.started else None,
            "wall_time": wall, "command": meta.command, "search": meta.search, "loading": loading}


def _eta(summary: Dict[str, Any]) -> Optional[float]:
    """Seconds left at the pace so far, while the run is going and something has ended."""
    done = summary["finished"] + summary["failed"] + summary["pruned"]
    left = summary["pending"] + summary["running"]
    if summary["state"] != RUNNING or not done or not summary["wall_time"]:
        return None
    return left * summary["wall_time"] / done


# ---------------------------------------------------------------- the best experiment


def best_metric(site: Site, view: RunView, query: Query) -> Optional[Tuple[str, bool]]:
    """(metric, maximise) that picks the best row: ``best=METRIC:max|min``, else a search's objective, else the
    first metric that is not fit_time, maximised unless its name says lower is better (loss, error, mse, time)."""
    asked = one(query, "best", "")
    if asked:
        metric, _, direction = asked.rpartition(":")
        if direction not in ("max", "min") or not metric:
            raise RequestError(400, f"best={asked!r}: give METRIC:max or METRIC:min")
        return metric, direction == "max"
    objective = site.meta(view.root).objective
    if objective is not None:
        return objective[0], objective[1] == "maximize"
    names = [name for name in view.metric_names if name != "fit_time"] or view.metric_names
    return (names[0], not lower_is_better(names[0])) if names else None


def best_of(site: Site, view: RunView, query: Query) -> Optional[Dict[str, Any]]:
    """The best experiment by :func:`best_metric` (ties: the lowest id), or None before any has a number."""
    chosen = best_metric(site, view, query)
    if chosen is None:
        return None
    metric, maximise = chosen

    def make() -> Optional[Dict[str, Any]]:
        best = view.best(metric, maximise)
        if best is None:
            return None
        return {"experiment_id": best[0], "metric": metric, "value": best[1], "direction": "max" if maximise else "min"}

    return view.cached(("best", metric, maximise), make)


ROUTES = {"/api/runs": runs, "/api/run": run}
