"""The JSON answers of the server (see the README's "Watching runs in the browser" and the routes in server.py).

Each handler takes the :class:`~.site.Site` and the query (name -> values)
and returns what is sent as JSON; a :class:`~.site.RequestError` is sent as
``{"error": "one line"}`` with its status.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple

from .. import __version__
from ..report_records import lower_is_better, sort_key
from .run_view import RunView, canonical, value_key
from .runs import FINISHED, INTERRUPTED, RUNNING, UNKNOWN, find_runs, is_locked, locked_inodes, seconds_since
from .site import Query, RequestError, Site, one, whole

__all__ = ["ROUTES", "runs", "run", "results", "values"]

#: Rows per page of /api/results unless ``limit`` says otherwise, and the most it may say.
PAGE = 50
MAX_PAGE = 1000


def runs(site: Site, query: Query) -> Dict[str, Any]:
    """Every run under the served folder, newest first."""
    locked = locked_inodes()
    summaries = [run_summary(site, site.view_of(folder), locked) for folder in find_runs(site.root)]
    summaries.sort(key=lambda summary: summary["started"] or "", reverse=True)
    return {"root": str(site.root), "runs": summaries}


def run(site: Site, query: Query) -> Dict[str, Any]:
    """One run: its summary, its parameters and metrics, its best experiment and how long it has left."""
    view = site.view(query)
    summary = run_summary(site, view, locked_inodes(), refreshed=True)
    varying = view.varying()
    return {**summary, "parameters": view.parameter_names(), "varying": varying, "metrics": view.metric_names,
            "best": best_of(site, view, query), "eta_seconds": _eta(summary),
            "out_path": str(view.root), "version": view.version, "server_version": __version__}


def run_summary(site: Site, view: RunView, locked: Any, refreshed: bool = False) -> Dict[str, Any]:
    """The Run object of the API: state, backend, counts, start, wall time and command."""
    if not refreshed:
        view.refresh()
    meta = site.meta(view.root)
    with view.lock:
        failed, pruned = view.failed_and_pruned()
        total = max(view.total, meta.planned or 0)
        finished = len(view.results)
        going = is_locked(view.root, locked)
        running = len(view.running_ids()) if going else 0
    pending = max(0, total - finished - len(failed) - len(pruned) - running)
    state = UNKNOWN if going is None else RUNNING if going else INTERRUPTED if pending else FINISHED
    wall = seconds_since(meta.started, None if going else view.last_change())
    return {"run": view.name, "state": state, "backend": meta.backend, "total": total, "finished": finished,
            "failed": len(failed), "pruned": len(pruned), "pending": pending, "running": running,
            "started": meta.started.isoformat(timespec="seconds") if meta.started else None,
            "wall_time": wall, "command": meta.command, "search": meta.search is not None}


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
    search = site.meta(view.root).search
    if search is not None:
        return search[0], search[1] == "maximize"
    names = [name for name in view.metric_names if name != "fit_time"] or view.metric_names
    return (names[0], not lower_is_better(names[0])) if names else None


def best_of(site: Site, view: RunView, query: Query) -> Optional[Dict[str, Any]]:
    """The best experiment by :func:`best_metric` (ties: the lowest id), or None before any has a number."""
    chosen = best_metric(site, view, query)
    if chosen is None:
        return None
    metric, maximise = chosen

    def make() -> Optional[Dict[str, Any]]:
        column = view.metric_column(metric)
        if not column:
            return None
        pick = max if maximise else min
        experiment_id = pick(sorted(column), key=column.__getitem__)
        return {"experiment_id": experiment_id, "metric": metric, "value": column[experiment_id],
                "direction": "max" if maximise else "min"}

    return view.cached(("best", metric, maximise), make)


# ---------------------------------------------------------------- the results table


def results(site: Site, query: Query) -> Dict[str, Any]:
    """A page of the results table, sorted and filtered on the server."""
    view = site.view(query)
    offset = whole(query, "offset", 0)
    limit = whole(query, "limit", PAGE, 1, MAX_PAGE)
    sort = one(query, "sort", "experiment_id")
    order = one(query, "order", "asc")
    if order not in ("asc", "desc"):
        raise RequestError(400, f"order={order!r}: give asc or desc")
    filters = _filters(query.get("filter", []))
    with view.lock:
        columns = _columns(view)
        known = {column["name"] for column in columns}
        if sort not in known:
            raise RequestError(400, f"sort={sort!r}: no such column; the columns are {', '.join(sorted(known))}")
        kind = next(column["kind"] for column in columns if column["name"] == sort)
        ids = view.cached(("order", sort, kind, order, filters), lambda: _ordered_ids(view, sort, kind, order, filters))
        page = [view.row(i) for i in ids[offset:offset + limit]]
        best = best_of(site, view, query)
        return {"columns": columns, "rows": page, "total": len(view.results), "matched": len(ids),
                "best_id": best["experiment_id"] if best else None, "version": view.version}


def _columns(view: RunView) -> List[Dict[str, Any]]:
    varying = set(view.varying())
    return [{"name": "experiment_id", "kind": "id", "varying": True},
            *({"name": name, "kind": "parameter", "varying": name in varying} for name in view.parameter_names()),
            *({"name": name, "kind": "metric", "varying": True} for name in view.metric_names)]


def _filters(texts: List[str]) -> Tuple[Tuple[str, frozenset], ...]:
    """``PARAM:VALUE`` filters as (parameter, the value keys that match: see :func:`value_key`); VALUE is a
    value's JSON text (``3``, ``"forest"``, ``[1,2]``) or, for a string, the string itself (``forest``)."""
    filters: Dict[str, set] = {}
    for text in texts:
        name, colon, value = text.partition(":")
        if not colon or not name:
            raise RequestError(400, f"filter={text!r}: give PARAMETER:VALUE")
        filters.setdefault(name, set()).update(_matching_keys(value))
    return tuple(sorted((name, frozenset(keys)) for name, keys in filters.items()))


def _matching_keys(value: str) -> List[Any]:
    keys = [value_key(value)]
    try:
        keys.append(value_key(json.loads(value)))
    except ValueError:
        pass  # not JSON: only the string itself matches
    return keys


def _ordered_ids(view: RunView, sort: str, kind: str, order: str, filters: Tuple[Tuple[str, frozenset], ...]
                 ) -> List[int]:
    """The ids of the finished experiments that pass the filters (several: all of them), sorted by ``sort``;
    missing values last, ties in id order."""
    ids = sorted(view.results)
    for name, keys in filters:
        ids = [i for i in ids if name in view.parameters.get(i, {}) and value_key(view.parameters[i][name]) in keys]
    if kind == "id":
        return ids[::-1] if order == "desc" else ids
    if kind == "metric":
        column = view.metric_column(sort)
        keyed = [(column[i], i) for i in ids if i in column]
        missing = [i for i in ids if i not in column]
    else:
        present = [i for i in ids if sort in view.parameters.get(i, {})]
        keyed = [(sort_key(_sortable(view.parameters[i][sort])), i) for i in present]
        missing = [i for i in ids if sort not in view.parameters.get(i, {})]
    keyed.sort(key=lambda entry: entry[0], reverse=order == "desc")  # stable: ties stay in id order
    return [experiment_id for _, experiment_id in keyed] + missing


def _sortable(value: Any) -> Any:
    """A list or dict parameter sorts by its JSON text."""
    return canonical(value) if isinstance(value, (list, dict)) else value


def values(site: Site, query: Query) -> Dict[str, Any]:
    """The values of one parameter among the finished experiments, with how many have each (filter choices)."""
    view = site.view(query)
    name = one(query, "parameter")

    def make() -> List[List[Any]]:
        counts: Dict[Any, List[Any]] = {}
        for experiment_id in view.results:
            parameters = view.parameters.get(experiment_id, {})
            if name in parameters:
                value = parameters[name]
                counts.setdefault(value_key(value), [value, 0])[1] += 1
        return sorted(counts.values(), key=lambda pair: sort_key(_sortable(pair[0])))

    return {"parameter": name, "values": view.cached(("values", name), make)}


ROUTES = {"/api/runs": runs, "/api/run": run, "/api/results": results, "/api/values": values}
