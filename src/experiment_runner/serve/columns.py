"""What the server keeps of a run's lines: parameters by column and scores as arrays of numbers, not whole lines.

A results line parsed by ``json`` is a few kilobytes of dicts, lists and
float objects; the table, its filters, the best row and the plots need its
parameters and its scores only. Both are kept by column, a chunk of lines
at a time, so that reading a big run is mostly the parse itself:

- :class:`ParameterColumns`: each flat parameter (dotted name) as one list
  indexed by experiment id, its text values shared;
- :class:`ScoreBlocks`: the scores of a chunk's experiments that have the
  same keys as one block, a metric whose values are all floats (or lists of
  floats of one length) as an ``array('d')``, anything else as it was.

Both give back exactly what was recorded (:meth:`ScoreBlocks.scores`,
:meth:`ParameterColumns.row`), and both are mappings by experiment id, which
is what :class:`~experiment_runner.report_records.RunRecords` takes, so the
report's plotting functions read them as they read a run from disk.
"""
from __future__ import annotations

import bisect
import itertools
import json
import math
import operator
import struct
import sys
from array import array
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Set, Tuple

from ..report_records import flatten

__all__ = ["ParameterColumns", "ScoreBlocks", "ABSENT", "metric_mean", "canonical", "value_key", "value_keys"]


class _Absent:
    """The value of a parameter an experiment does not have."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()
#: How a block keeps one score key: every value a float; every value a list of floats of one length; as recorded.
_FLOATS, _FLOAT_LISTS, _AS_RECORDED = 0, 1, 2


def metric_mean(scores: Any, metric: str) -> Optional[float]:
    """The metric's value, or its mean over repetitions; None if it has no finite number."""
    value = scores.get(metric) if isinstance(scores, dict) else None
    if isinstance(value, list):
        value = scores.get(f"mean_{metric}")
    if isinstance(value, (int, float)) and value.__class__ is not bool and math.isfinite(value):
        return value
    return None


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


def value_keys(values: Iterable[Any]) -> Set[Any]:
    """The distinct :func:`value_key` of ``values``."""
    values = values if isinstance(values, (list, tuple)) else list(values)
    if set(map(type, values)) <= set(_PLAIN):
        return set(values)
    return set(map(value_key, values))


def _columns_of(records: Sequence[Dict[str, Any]], keys: Tuple[str, ...]) -> List[Sequence[Any]]:
    """The values of each of ``keys`` over ``records`` (which all have exactly these keys), one tuple per key."""
    return [list(map(operator.itemgetter(key), records)) for key in keys]


# ---------------------------------------------------------------- parameters


class ParameterColumns(Mapping[int, Dict[str, Any]]):
    """The flat parameters of each experiment whose config was read, by column; as a mapping, experiment_id ->
    its flat parameters (made when asked for)."""

    def __init__(self) -> None:
        #: name -> {experiment_id: value} of the experiments that have it, names in the order configs give them.
        self.columns: Dict[str, Dict[int, Any]] = {}
        self.ids: Set[int] = set()
        #: Per parameter: the key of the first value seen, and whether another value was seen since (kept up to
        #: date as configs are added; made again from the columns after a config was recorded again).
        self._first: Dict[str, Any] = {}
        self._differs: Set[str] = set()
        self._recount = False

    def add(self, ids: List[int], configs: List[Dict[str, Any]]) -> None:
        """The configs of the experiments ``ids`` (recorded again: their earlier parameters are forgotten)."""
        again = self.ids.intersection(ids)
        for experiment_id in again:
            for column in self.columns.values():
                column.pop(experiment_id, None)
        self._recount = self._recount or bool(again) or len(set(ids)) != len(ids)
        self.ids.update(ids)
        flat = _flat_columns(configs, "") if configs else None
        if flat is None:  # configs of different shapes: one by one
            seen: Set[int] = set()
            for experiment_id, config in zip(ids, configs):
                if experiment_id in seen:  # twice in these lines: the later one counts, whole
                    for column in self.columns.values():
                        column.pop(experiment_id, None)
                seen.add(experiment_id)
                for name, value in flatten(config).items():
                    self.columns.setdefault(name, {})[experiment_id] = value
                    self._saw(name, (value,))
            return
        for name, values in flat.items():
            self.columns.setdefault(name, {}).update(zip(ids, values))
            self._saw(name, values)

    def _saw(self, name: str, values: Sequence[Any]) -> None:
        if name in self._differs:
            return
        keys = value_keys(values)
        first = self._first.setdefault(name, next(iter(keys)))
        if len(keys) > 1 or first not in keys:
            self._differs.add(name)

    def varying(self) -> List[str]:
        """The parameters whose value differs between experiments (or that some experiments lack)."""
        if self._recount:
            self._differs = {name for name, column in self.columns.items() if len(value_keys(column.values())) > 1}
            self._first = {name: value_key(next(iter(column.values()))) for name, column in self.columns.items()
                           if column}
            self._recount = False
        every = len(self.ids)
        return [name for name, column in self.columns.items() if name in self._differs or len(column) < every]

    def value(self, name: str, experiment_id: int) -> Any:
        """The parameter ``name`` of an experiment, ABSENT if it has none."""
        return self.columns.get(name, {}).get(experiment_id, ABSENT)

    def row(self, experiment_id: int) -> Dict[str, Any]:
        """An experiment's flat parameters, in the order the configs name them ({} if its config was not read)."""
        return {name: column[experiment_id] for name, column in self.columns.items() if experiment_id in column}

    def count(self, name: str) -> int:
        """How many experiments have the parameter ``name``."""
        return len(self.columns[name])

    def __getitem__(self, experiment_id: int) -> Dict[str, Any]:
        if experiment_id not in self.ids:
            raise KeyError(experiment_id)
        return self.row(experiment_id)

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self.ids))

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, experiment_id: object) -> bool:
        return experiment_id in self.ids


def _flat_columns(dicts: Sequence[Dict[str, Any]], prefix: str) -> Optional[Dict[str, Sequence[Any]]]:
    """The columns of ``flatten`` applied to each of ``dicts``, made a column at a time; None unless all of them
    have the same keys (in any order), and each key holds non-empty dicts in all of them (the same way) or in
    none."""
    keys = tuple(dicts[0])
    if set(map(len, dicts)) != {len(keys)}:
        return None
    try:  # as many keys in each, and each has all of the first one's: the same keys
        columns = _columns_of(dicts, keys)
    except KeyError:
        return None
    flat: Dict[str, Sequence[Any]] = {}
    for key, values in zip(keys, columns):
        name = f"{prefix}{key}"
        kinds = set(map(type, values))
        if dict not in kinds:
            flat[name] = list(map(sys.intern, values)) if kinds == {str} else values
            continue
        if kinds != {dict} or not all(values):
            return None  # nested in some, not in others (or an empty dict, which flatten keeps as a value)
        nested = _flat_columns(values, f"{name}.")
        if nested is None:
            return None
        flat.update(nested)
    return flat


# ---------------------------------------------------------------- scores


class _Block:
    """The scores of some experiments, all with the same keys in the same order, by key."""

    __slots__ = ("ids", "keys", "kinds", "columns", "widths", "start")

    def __init__(self, ids: List[int], keys: Tuple[str, ...], scores: Sequence[Dict[str, Any]], start: int):
        self.ids = ids
        self.keys = keys
        self.start = start
        self.kinds: List[int] = []
        self.columns: List[Any] = []
        self.widths: List[int] = []
        for values in _columns_of(scores, keys):
            kind, column, width = _packed(values)
            self.kinds.append(kind)
            self.columns.append(column)
            self.widths.append(width)

    def scores(self, index: int) -> Dict[str, Any]:
        scores = {}
        for key, kind, column, width in zip(self.keys, self.kinds, self.columns, self.widths):
            if kind == _FLOAT_LISTS:
                scores[key] = column[index * width:(index + 1) * width].tolist()
            else:
                scores[key] = column[index]
        return scores

    def means(self, metric: str) -> Optional[Sequence[Any]]:
        """The metric's value or mean over repetitions of each experiment, straight from the arrays (NaN and
        infinities included); None where that needs each experiment's scores."""
        if metric not in self.keys:
            return ()
        position = self.keys.index(metric)
        kind = self.kinds[position]
        if kind == _FLOATS:
            return self.columns[position]
        if kind != _FLOAT_LISTS:
            return None
        if f"mean_{metric}" not in self.keys:
            return ()
        position = self.keys.index(f"mean_{metric}")
        return self.columns[position] if self.kinds[position] == _FLOATS else None


def _packed(values: Sequence[Any]) -> Tuple[int, Any, int]:
    """(kind, column, width) of one score key's values over a block."""
    kinds = set(map(type, values))
    if kinds == {float}:
        return _FLOATS, _doubles(values), 1
    if kinds == {list}:
        widths = set(map(len, values))
        if len(widths) == 1:
            flat = list(itertools.chain.from_iterable(values))
            if set(map(type, flat)) <= {float}:
                return _FLOAT_LISTS, _doubles(flat), widths.pop()
    return _AS_RECORDED, values, 1


def _doubles(floats: List[float]) -> "array[float]":
    """``array('d', floats)``, made through struct: several times faster for a long list."""
    doubles = array("d")
    doubles.frombytes(struct.pack(f"{len(floats)}d", *floats))
    return doubles


class _Odd:
    """The block of experiments whose scores are not a dict: kept as recorded."""

    __slots__ = ("ids", "values", "start", "keys")

    def __init__(self, ids: List[int], values: List[Any], start: int):
        self.ids, self.values, self.start, self.keys = ids, values, start, ()

    def scores(self, index: int) -> Any:
        return self.values[index]

    def means(self, metric: str) -> Optional[Sequence[Any]]:
        return ()


class ScoreBlocks(Mapping[int, Dict[str, Any]]):
    """The scores of each finished experiment (its last results line's), a chunk of lines at a time; as a mapping,
    experiment_id -> ``{"scores": ...}``, made when asked for (what report_plot reads of a results line)."""

    def __init__(self) -> None:
        self._blocks: List[Any] = []
        self._starts: List[int] = []
        #: experiment_id -> its position among all experiments added (its last one, if added twice).
        self._where: Dict[int, int] = {}
        self._added = 0
        #: The experiments added more than once (a resume that ran them again): their last scores count.
        self._twice: Set[int] = set()
        #: Every score key, in the order first seen.
        self.keys: Dict[str, None] = {}
        #: The ids in order while they came in order (see :meth:`sorted_ids`).
        self._sorted: List[int] = []
        self._in_order = True

    def add(self, ids: List[int], scores: List[Any]) -> int:
        """The scores of the experiments ``ids``, in the order their lines were recorded; returns the number of
        the first block they went to (for :meth:`mean_column`)."""
        first = len(self._blocks)
        groups: Dict[Any, List[int]] = {}
        if set(map(type, scores)) == {dict}:
            shapes: List[Any] = list(map(tuple, scores))
        else:
            shapes = [tuple(value) if value.__class__ is dict else None for value in scores]
        if shapes.count(shapes[0]) == len(shapes):
            groups[shapes[0]] = list(range(len(shapes)))
        else:
            for index, shape in enumerate(shapes):
                groups.setdefault(shape, []).append(index)
        for shape, indices in groups.items():
            block_ids = ids if len(indices) == len(ids) else [ids[i] for i in indices]
            block_scores = scores if len(indices) == len(ids) else [scores[i] for i in indices]
            self._add_block(block_ids, shape, block_scores)
        return first

    def _add_block(self, ids: List[int], shape: Optional[Tuple[str, ...]], scores: List[Any]) -> None:
        start = self._added
        block = _Odd(ids, scores, start) if shape is None else _Block(ids, shape, scores, start)
        self._blocks.append(block)
        self._starts.append(start)
        self.keys.update(dict.fromkeys(block.keys))
        where = self._where
        size = len(where)
        if not where.keys().isdisjoint(ids):
            self._twice.update(where.keys() & set(ids))
        where.update(zip(ids, range(start, start + len(ids))))
        if len(where) != size + len(ids):
            self._twice.update(ids)  # the same id twice in one chunk
        self._added += len(ids)
        in_order = len(where) == size + len(ids) and (not self._sorted or ids[0] > self._sorted[-1]) \
            and all(map(operator.lt, ids, ids[1:]))
        if self._in_order and in_order:
            self._sorted.extend(ids)
        else:
            self._in_order = False

    def _locate(self, experiment_id: int) -> Tuple[Any, int]:
        position = self._where[experiment_id]
        block = self._blocks[bisect.bisect_right(self._starts, position) - 1]
        return block, position - block.start

    def scores(self, experiment_id: int) -> Any:
        """The experiment's ``scores`` as its results line recorded them (KeyError if it has none)."""
        block, index = self._locate(experiment_id)
        return block.scores(index)

    def mean_column(self, metric: str, since: int = 0) -> Dict[int, float]:
        """experiment_id -> the metric's value or mean over repetitions, for the experiments that have a finite
        number for it (:func:`metric_mean`); with ``since``, only for those of that block and the later ones."""
        column: Dict[int, float] = {}
        for block in self._blocks[since:]:
            column.update((i, mean) for i, mean in zip(block.ids, self._means(block, metric))
                          if mean is not None and mean - mean == 0)
        twice = self._twice
        if since and twice:  # only those of the blocks looked at
            twice = twice.intersection(itertools.chain.from_iterable(block.ids for block in self._blocks[since:]))
        for experiment_id in twice:  # recorded again: its last line's value only
            block, index = self._locate(experiment_id)
            mean = metric_mean(block.scores(index), metric)
            if mean is None:
                column.pop(experiment_id, None)
            else:
                column[experiment_id] = mean
        return column

    @staticmethod
    def _means(block: Any, metric: str) -> Sequence[Any]:
        means = block.means(metric)
        if means is None:
            means = [metric_mean(block.scores(index), metric) for index in range(len(block.ids))]
        return means

    def has_number(self, metric: str) -> bool:
        """Whether some finished experiment has a finite number for ``metric`` (its last line's, for one
        recorded twice)."""
        if metric not in self.keys:
            return False
        twice = self._twice
        for block in self._blocks:
            for experiment_id, mean in zip(block.ids, self._means(block, metric)):
                if mean is not None and mean - mean == 0 and experiment_id not in twice:
                    return True
        return any(metric_mean(self.scores(experiment_id), metric) is not None for experiment_id in twice)

    def sorted_ids(self) -> List[int]:
        """The experiment ids in order (kept in order as lines come in order; not to be changed by the caller)."""
        if not self._in_order:
            self._sorted = sorted(self._where)
            self._in_order = True
        return self._sorted

    def __getitem__(self, experiment_id: int) -> Dict[str, Any]:
        return {"scores": self.scores(experiment_id)}

    def __iter__(self) -> Iterator[int]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, experiment_id: object) -> bool:
        return experiment_id in self._where
