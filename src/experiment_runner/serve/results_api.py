"""The results table of the API: /api/results (a page of rows, sorted and filtered on the server) and
/api/values (a parameter's values, for the page's filters)."""
from __future__ import annotations

import heapq
import json
from typing import Any, Dict, FrozenSet, List, Tuple

from ..report_records import sort_key
from .api import best_of
from .columns import canonical, value_key
from .run_view import RunView
from .site import Query, RequestError, Site, one, whole

__all__ = ["ROUTES", "results", "values"]

#: Rows per page of /api/results unless ``limit`` says otherwise, and the most it may say.
PAGE = 50
MAX_PAGE = 1000
#: (parameter, the keys of the values that pass), one per filtered parameter.
Filters = Tuple[Tuple[str, FrozenSet[Any]], ...]


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
        ids, matched = _page(view, sort, kind, order, filters, offset, limit)
        best = best_of(site, view, query)
        return {"columns": columns, "rows": [view.row(i) for i in ids], "total": len(view.results),
                "matched": matched,
                "best_id": best["experiment_id"] if best else None, "version": view.version,
                "loading": view.loading}


def _columns(view: RunView) -> List[Dict[str, Any]]:
    varying = set(view.varying())
    return [{"name": "experiment_id", "kind": "id", "varying": True},
            *({"name": name, "kind": "parameter", "varying": name in varying} for name in view.parameter_names()),
            *({"name": name, "kind": "metric", "varying": True} for name in view.metric_names)]


def _filters(texts: List[str]) -> Filters:
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


def _page(view: RunView, sort: str, kind: str, order: str, filters: Filters, offset: int, limit: int
          ) -> Tuple[List[int], int]:
    """The ids of the page's rows, and how many finished experiments pass the filters (several: all of them).

    Sorted by ``sort``, missing values last, ties in id order. A first page
    sorted by a metric takes the best ``offset + limit`` of one pass (no sort
    of all rows, so a new line costs little); deeper pages, and parameters,
    sort all rows once per version of the records.
    """
    ids = view.cached(("filtered", filters), lambda: _filtered(view, filters))
    end = offset + limit
    if kind == "id":
        return (ids[::-1] if order == "desc" else ids)[offset:end], len(ids)
    if kind == "metric" and end * 4 < len(ids):
        column = view.metric_column(sort)
        scored = column if not filters else {i: column[i] for i in ids if i in column}
        best = _best_of(scored, end, descending=order == "desc")
        missing = [i for i in ids if i not in column] if len(best) < end else []
        return ([i for i, _ in best] + missing)[offset:end], len(ids)
    ordered = view.cached(("order", sort, kind, order, filters), lambda: _ordered(view, ids, sort, kind, order))
    return ordered[offset:end], len(ids)


def _best_of(scored: Dict[int, float], count: int, descending: bool) -> List[Tuple[int, float]]:
    """The ``count`` first (id, value) of ``scored`` by value (highest first if ``descending``), ties in id order:
    the count-th value is found first (with the values alone, quick), then only the entries up to it sorted."""
    limit = (heapq.nlargest if descending else heapq.nsmallest)(count, scored.values())[-1:]
    if not limit:
        return []
    if descending:
        kept = [(i, value) for i, value in scored.items() if value >= limit[0]]
        return sorted(kept, key=lambda item: (-item[1], item[0]))[:count]
    kept = [(i, value) for i, value in scored.items() if value <= limit[0]]
    return sorted(kept, key=lambda item: (item[1], item[0]))[:count]


def _filtered(view: RunView, filters: Filters) -> List[int]:
    """The ids of the finished experiments whose parameters pass every filter, in id order."""
    ids = view.results.sorted_ids()
    for name, keys in filters:
        column = view.params.columns.get(name, {})
        ids = [i for i in ids if i in column and value_key(column[i]) in keys]
    return ids


def _ordered(view: RunView, ids: List[int], sort: str, kind: str, order: str) -> List[int]:
    """``ids`` sorted by the metric or parameter ``sort``; missing values last, ties in id order."""
    if kind == "metric":
        column = view.metric_column(sort)
        keyed = [(column[i], i) for i in ids if i in column]
        missing = [i for i in ids if i not in column]
    else:
        values = view.params.columns.get(sort, {})
        keyed = [(sort_key(_sortable(values[i])), i) for i in ids if i in values]
        missing = [i for i in ids if i not in values]
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
        column = view.params.columns.get(name, {})
        for experiment_id in view.results:
            if experiment_id in column:
                value = column[experiment_id]
                counts.setdefault(value_key(value), [value, 0])[1] += 1
        return sorted(counts.values(), key=lambda pair: sort_key(_sortable(pair[0])))

    return {"parameter": name, "values": view.cached(("values", name), make)}


ROUTES = {"/api/results": results, "/api/values": values}
