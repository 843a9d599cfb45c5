"""The space of an adaptive search: the dimensions a configuration holds, sampled by Optuna define-by-run.

A search's space is one configuration in which some values are dimensions:
a :class:`~experiment_runner.sweep.Variation` (a categorical choice) or an
:class:`Interval` (a float or int range, on a log scale or not, with a step or
not); or, from the command line's group sweeps (``model=forest,svm``), a
:class:`GroupSweep` of the configurations composed with each option. Each
dimension is named by its dotted key (``model.lr``; a list's items by their
index, ``layers.0``); a group by the group (``model``).

A Variation's choices may be dicts or lists, and may hold dimensions of their
own: a trial then searches those only when it picks that choice (a
conditional space), as Optuna's define-by-run does naturally. Optuna's
categorical holds plain values only (null, booleans, numbers, strings), so
such choices are named in the study by a *label*, their JSON text
(``{"kind": "adam", "lr": 0.1}``, which Optuna's plots show and which is the
same on every resume), while the trial's configuration holds the choice
itself, unchanged (see :func:`_labels`).

Building the space imports nothing heavy; :meth:`Space.distributions` and
:meth:`Space.suggest` need Optuna.
"""
from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple, Union

from ..errors import ConfigError
from ..serialization import copy_plain
from ..sweep import Variation
from .dimensions import Choices, Interval, int_interval, interval

__all__ = ["Interval", "interval", "int_interval", "GroupSweep", "Space"]

#: The values Optuna's categorical distribution holds as they are.
_PLAIN = (type(None), bool, int, float, str)

Dimension = Union[Interval, Choices]
#: How a configuration is built: the value (a label for a categorical) of the parameter ``name`` of ``dimension``.
Pick = Callable[[str, Dimension], Any]


@dataclasses.dataclass(frozen=True)
class GroupSweep:
    """The configurations the command line's group sweeps compose (``model=forest,svm``), one per combination.

    A search picks each group's option as a categorical parameter named by the
    group, then searches the configuration composed with those options: an
    option's own parameters and dimensions are searched in the trials that
    pick it, as the grid runs each option's configurations.
    """

    groups: Tuple[str, ...]
    #: The options, one per group in ``groups``' order -> the configuration composed with them.
    configs: Mapping[Tuple[Optional[str], ...], Any]


class Space:
    """The dimensions of a search space configuration, by name, and the configurations a trial's choices make.

    ``then`` is applied to each configuration built (the command line resolves
    there the interpolations that read searched values, as the grid does).
    """

    def __init__(self, config: Any, then: Optional[Callable[[Dict[str, Any]], Dict[str, Any]]] = None):
        if not isinstance(config, (Mapping, GroupSweep)):
            raise ConfigError(f"a search's space must be one configuration (a dict) holding Variation or interval "
                              f"values, got {type(config).__name__}")
        self.config = config
        self._then = then
        self._dimensions: Dict[str, Dimension] = {}
        self._root = self._compile(config, ())
        if not self._dimensions:
            raise ConfigError("a search's space holds no dimension to search: give some parameter a Variation([...]) "
                              "or an interval(low, high)")
        #: The dimensions that some trials search and others do not (those under one choice only).
        self.conditional = [name for name in self._dimensions if name not in self._root.always]

    def distributions(self) -> Dict[str, Any]:
        """Each dimension as an Optuna distribution, by its name (a conditional space's: all of them)."""
        return {name: dimension.distribution() for name, dimension in self._dimensions.items()}

    def suggest(self, trial: Any) -> Dict[str, Any]:
        """The configuration of the values ``trial`` picks, each dimension suggested as it is reached."""
        return self._built(lambda name, dimension: dimension.suggest(trial, name))

    def config_of(self, params: Mapping[str, Any]) -> Dict[str, Any]:
        """The configuration with each dimension replaced by its value in ``params`` (a trial's params)."""
        return self._built(lambda name, dimension: params[name])

    def first_config(self) -> Dict[str, Any]:
        """A configuration of the space (each choice's first, each range's low end)."""
        return self.examples()[0]

    def examples(self) -> List[Dict[str, Any]]:
        """Configurations that pick each choice of the space's conditional parts (and of its group sweeps) once
        at least: checked before anything runs, as the grid makes every configuration first."""
        return [self._built(lambda name, dimension, i=i: dimension.first(i)) for i in range(self._root.width)]

    def described(self) -> Dict[str, str]:
        """Each dimension's values as text (``interval(0.001, 0.1, log=True)``), by its name."""
        return {name: repr(dimension) for name, dimension in self._dimensions.items()}

    def _built(self, pick: Pick) -> Dict[str, Any]:
        config = self._root.build(pick)
        return config if self._then is None else self._then(config)

    def _compile(self, node: Any, path: Tuple[Any, ...]) -> "_Node":
        name = ".".join(map(str, path))
        if isinstance(node, GroupSweep):
            return self._compile_groups(node)
        if isinstance(node, Variation):
            choices = _flattened(node)
            dimension = Choices(tuple(_labels(choices, name or "the space")), _shown(choices))
            self._add(name, dimension)
            return _Categorical(name, dimension, [self._compile(choice, path) for choice in choices])
        if isinstance(node, Interval):
            self._add(name, node)
            return _Range(name, node)
        if isinstance(node, Mapping):
            return _container(node, dict, list(node), [self._compile(v, (*path, k)) for k, v in node.items()])
        if isinstance(node, (list, tuple)):
            return _container(node, type(node), [], [self._compile(v, (*path, i)) for i, v in enumerate(node)])
        return _Fixed(node)

    def _compile_groups(self, sweep: GroupSweep) -> "_Node":
        options = [list(dict.fromkeys(chosen[i] for chosen in sweep.configs)) for i in range(len(sweep.groups))]
        if len(sweep.configs) != math.prod(map(len, options)):
            raise ConfigError(f"the group sweeps {', '.join(sweep.groups)} do not compose every combination of their "
                              "options, which a search picks one by one: sweep one group, or run the grid")
        dimensions = [Choices(tuple(labels), _shown(labels)) for labels in options]
        for group, dimension in zip(sweep.groups, dimensions):
            self._add(group, dimension)
        branches = {chosen: self._compile(config, ()) for chosen, config in sweep.configs.items()}
        return _Groups(sweep.groups, dimensions, branches)

    def _add(self, name: str, dimension: Dimension) -> None:
        """A dimension, once by its name: one searched under several choices must be the same wherever it is."""
        known = self._dimensions.setdefault(name, dimension)
        if known != dimension:
            raise ConfigError(f"{name} is searched over {known!r} in one place and {dimension!r} in another: a "
                              "search parameter has one set of values; give both the same, or rename one")


def _shown(choices: Sequence[Any]) -> str:
    return "choice(" + ", ".join(map(repr, choices)) + ")"


def _flattened(variation: Variation) -> List[Any]:
    """A Variation's choices, those of a Variation among them joining (its grid runs each of them too)."""
    choices: List[Any] = []
    for choice in variation.choices:
        choices += _flattened(choice) if isinstance(choice, Variation) else [choice]
    return Variation(choices).choices


def _labels(choices: Sequence[Any], where: str) -> List[Any]:
    """How Optuna names each choice: the choices themselves when they are plain values it tells apart, else
    (a dict, a list, or plain values Optuna takes for one another: 1 and True, 1 and 1.0, NaN) each choice's JSON
    text. The label depends on the choices only, so a resumed search finds the same ones."""
    if all(type(choice) in _PLAIN and choice == choice for choice in choices) and len(set(choices)) == len(choices):
        return list(choices)
    for choice in choices:
        _check_data(choice, where)
    labels = [json.dumps(choice, ensure_ascii=False, default=repr) for choice in choices]
    twins = [i for i, label in enumerate(labels) if labels.index(label) != i]
    if twins:
        first = choices[labels.index(labels[twins[0]])]
        raise ConfigError(f"{where}: the choices {first!r:.40} and {choices[twins[0]]!r:.40} read the same as JSON "
                          "text, by which an adaptive search names a choice: make them differ")
    return labels


def _check_data(value: Any, where: str) -> None:
    """A choice must be data (or hold dimensions): its JSON text must name it the same way in every run."""
    if isinstance(value, (_PLAIN, Interval, Variation)):
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, _PLAIN):
                raise ConfigError(f"{where}: a choice's keys must be strings or numbers, not {key!r:.40}")
            _check_data(item, where)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_data(item, where)
    else:
        raise ConfigError(f"{where}: an adaptive search chooses among data (numbers, strings, booleans, null, and "
                          f"lists and dicts of them), not {type(value).__name__} {value!r:.60}")


class _Node:
    #: The names of the dimensions every configuration of this node searches.
    always: Set[str] = set()
    #: How many configurations pick each choice of its conditional parts once at least (see Space.examples).
    width = 1

    def build(self, pick: Pick) -> Any:
        raise NotImplementedError


class _Fixed(_Node):
    """A value without dimensions: a fresh copy in each configuration."""

    def __init__(self, value: Any):
        self.value = value

    def build(self, pick: Pick) -> Any:
        return copy_plain(self.value)


class _Container(_Node):
    """A dict, list or tuple holding dimensions, built again with each one's value; its type kept."""

    def __init__(self, kind: type, keys: List[Any], children: List[_Node]):
        self.kind, self.keys, self.children = kind, keys, children
        self.always = set().union(*(child.always for child in children))
        self.width = max(child.width for child in children)

    def build(self, pick: Pick) -> Any:
        values = [child.build(pick) for child in self.children]
        if self.kind is dict:
            return dict(zip(self.keys, values))
        return values if self.kind is list else self.kind(values)


def _container(node: Any, kind: type, keys: List[Any], children: List[_Node]) -> _Node:
    return _Fixed(node) if all(isinstance(child, _Fixed) for child in children) else _Container(kind, keys, children)


class _Range(_Node):
    def __init__(self, name: str, dimension: Interval):
        self.name, self.dimension = name, dimension
        self.always = {name}

    def build(self, pick: Pick) -> Any:
        return pick(self.name, self.dimension)


class _Categorical(_Node):
    """A Variation: the trial picks a label; its choice is built (with the dimensions it holds, if any)."""

    def __init__(self, name: str, dimension: Choices, options: List[_Node]):
        self.name, self.dimension, self.options = name, dimension, options
        self._index = {label: index for index, label in enumerate(dimension.labels)}
        self.always = {name}.union(set.intersection(*(option.always for option in options)))
        nested = any(not isinstance(option, _Fixed) for option in options)
        self.width = max(len(options) if nested else 1, *(option.width for option in options))

    def build(self, pick: Pick) -> Any:
        return self.options[self._index[pick(self.name, self.dimension)]].build(pick)


class _Groups(_Node):
    """A group sweep: the trial picks each group's option, then the configuration composed with them is built."""

    def __init__(self, groups: Tuple[str, ...], dimensions: List[Choices], branches: Dict[Tuple[Any, ...], _Node]):
        self.groups, self.dimensions, self.branches = groups, dimensions, branches
        self.always = set(groups).union(set.intersection(*(branch.always for branch in branches.values())))
        self.width = max(*(len(d.labels) for d in dimensions), *(branch.width for branch in branches.values()))

    def build(self, pick: Pick) -> Any:
        chosen = tuple(pick(group, dimension) for group, dimension in zip(self.groups, self.dimensions))
        return self.branches[chosen].build(pick)
