"""Expand one configuration into the list of experiments of a sweep.

A configuration may hold :class:`Variation` nodes at any depth (in dicts, in
lists, and inside another Variation's choices). Together they span a finite
*space*: every way of picking one choice per Variation. The space is never
materialised. Each configuration has an index in ``range(size)`` and
:func:`config_at` decodes an index into its configuration in mixed radix, so
sampling ``n`` unique configurations is sampling ``n`` unique integers.
"""
from __future__ import annotations

import gc
import itertools
import json
import math
import random
from array import array
from collections.abc import Mapping, Sequence as SequenceABC
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from .errors import ConfigError
from .sample_indices import sample_indices
from .serialization import copy_plain

__all__ = ["Variation", "generate_configs", "sweep_configs", "SweepConfigs", "space_size", "config_at",
           "check_no_cycle", "find_loop", "plain_config"]


class Variation:
    """A dimension of the sweep: one of ``choices`` is picked per configuration.

    Choices keep their Python type and value. A choice may itself be a dict or
    list holding Variations: picking it opens a sub-space. Equal choices count
    once, so ``Variation([1, 1, 2])`` has two choices.
    """

    def __init__(self, choices: Sequence[Any]):
        if isinstance(choices, (str, bytes)) or not hasattr(choices, "__iter__"):
            raise ConfigError(f"Variation expects a list of choices, got {choices!r}")
        check_no_cycle(list(choices), "Variation")
        unique = _unique(list(choices))
        if not unique:
            raise ConfigError("Variation([]) has no choices: give at least one value")
        self.choices: List[Any] = unique

    def __repr__(self) -> str:
        return f"Variation({self.choices!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Variation) and choice_key(self.choices) == choice_key(other.choices)

    def __hash__(self) -> int:
        return hash(choice_key(self.choices))


def choice_key(value: Any) -> str:
    """A canonical text for equality of choices that may be unhashable (dicts, lists)."""
    return _canonical_text(value)


#: ``json.dumps(value, sort_keys=True, default=repr)``, with its encoder made once (json.dumps makes one a call).
_canonical_text = json.JSONEncoder(sort_keys=True, default=repr).encode


def _unique(choices: List[Any]) -> List[Any]:
    seen = set()
    unique = []
    for choice in choices:
        key = (type(choice).__name__, choice_key(choice))
        if key not in seen:
            seen.add(key)
            unique.append(choice)
    return unique


def space_size(node: Any) -> int:
    """How many distinct configurations ``node`` spans (1 without Variations)."""
    return _compile(node).size


def config_at(node: Any, index: int) -> Any:
    """The configuration number ``index`` of ``node``'s space, Variations replaced.

    Order: the first dimension varies slowest, like ``itertools.product``.
    The result shares no mutable object with ``node``.
    """
    space = _compile(node)
    if not 0 <= index < space.size:
        raise IndexError(f"index {index} is outside the space of {space.size} configurations")
    return space.decode(index)


class SweepConfigs(SequenceABC):
    """The configurations of a sweep, decoded one at a time from the space: what it holds is their indices.

    A grid holds a ``range``, a sample its indices as an ``array('q')`` (8
    bytes each), so a sweep of a million configurations costs megabytes, not
    the gigabyte of a list of dicts. Each access decodes a fresh configuration
    (it shares no mutable object with another); ``then`` is applied to it.
    """

    def __init__(self, decode: Callable[[int], Any], indices: Sequence[int],
                 then: Optional[Callable[[Any], Any]] = None):
        self._decode = decode
        self.indices = indices
        self._then = then

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: Any) -> Any:
        if isinstance(position, slice):
            return SweepConfigs(self._decode, self.indices[position], self._then)
        config = self._decode(self.indices[position])
        return config if self._then is None else self._then(config)

    def __iter__(self) -> Iterator[Any]:
        decoded = map(self._decode, self.indices)
        return decoded if self._then is None else map(self._then, decoded)

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence of the same configurations, a list included (as the sweep's list once was)."""
        if not isinstance(other, SequenceABC) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]

    def reordered(self, indices: Sequence[int]) -> "SweepConfigs":
        """The same space's configurations at ``indices`` (positions in this sequence)."""
        return SweepConfigs(self._decode, _compact([self.indices[i] for i in indices]), self._then)

    def then(self, function: Callable[[Any], Any]) -> "SweepConfigs":
        """These configurations, each passed through ``function`` once decoded."""
        then = function if self._then is None else (lambda config, first=self._then: function(first(config)))
        return SweepConfigs(self._decode, self.indices, then)


_IMMUTABLE = (str, int, float, bool, bytes, type(None))


class _Space:
    """What each node of a compiled space has: its ``size`` and ``decode(index)``."""

    size: int
    decode: Callable[[int], Any]

    def decode_list(self, indices: Sequence[int]) -> List[Any]:
        """The configurations at ``indices``, in a list."""
        return list(map(self.decode, indices))


class _Constant(_Space):
    """A subtree without Variations: one configuration, built afresh for each (a copy shares nothing)."""

    size = 1

    def __init__(self, value: Any):
        self.value = value
        self.immutable = isinstance(value, _IMMUTABLE)
        #: Whether a product can build it inline: plain data of a size that makes a short expression.
        self.inline = _is_plain(value, _MAX_INLINE_DEPTH)
        if self.immutable:
            self.decode: Callable[[int], Any] = lambda index: value
        elif self.inline:
            namespace: Dict[str, Any] = {}
            self.decode = _generated_decoder(namespace, _literal(value, namespace))
        else:
            self.decode = lambda index: copy_plain(value)


#: Plain data nested deeper than this is copied, not built by an expression (the compiler limits nesting).
_MAX_INLINE_DEPTH = 20


def _is_plain(value: Any, depth: int) -> bool:
    """Dicts, lists and tuples of scalars (at most ``depth`` deep), whose copy an expression can build."""
    if type(value) is dict:
        return depth > 0 and all(type(key) in _IMMUTABLE and _is_plain(item, depth - 1)
                                 for key, item in value.items())
    if type(value) in (list, tuple):
        return depth > 0 and all(_is_plain(item, depth - 1) for item in value)
    return type(value) in _IMMUTABLE


def _literal(value: Any, namespace: Dict[str, Any]) -> str:
    """An expression building a fresh copy of plain ``value``; its scalars are names it adds to ``namespace``."""
    if type(value) is dict:
        return "{" + ", ".join(f"{_literal(key, namespace)}: {_literal(item, namespace)}"
                               for key, item in value.items()) + "}"
    if type(value) is list:
        return "[" + ", ".join(_literal(item, namespace) for item in value) + "]"
    if type(value) is tuple:
        return "(" + "".join(f"{_literal(item, namespace)}, " for item in value) + ")"
    name = f"v{len(namespace)}"
    namespace[name] = value
    return name


def _generated_decoder(namespace: Dict[str, Any], expression: str,
                       listing: Optional[str] = None) -> Callable[..., Any]:
    """``def decode(i): return <expression>``, compiled: its code holds only names, operators and whole numbers.

    Decoding is the inner loop of every sweep (a million experiments decode a
    million configurations); one generated expression builds a configuration
    several times faster than walking the space's tree for each. With
    ``listing`` (the clauses that follow ``for i in indices``, perhaps none),
    ``def decode(indices): return [<expression> for i in indices<listing>]``:
    a whole list without a function call per configuration.
    """
    if listing is None:
        exec(f"def decode(i):\n    return {expression}\n", namespace)
    else:
        exec(f"def decode(indices):\n    return [{expression} for i in indices{listing}]\n", namespace)
    return namespace["decode"]


class _Choice(_Space):
    """A Variation: the index picks a choice, the rest indexes into that choice."""

    def __init__(self, options: List[Any]):
        self.options = options
        self.size = sum(option.size for option in options)
        #: The choices themselves when each is one immutable value: a product then picks one by subscript.
        self.values: Optional[List[Any]] = None
        if all(isinstance(option, _Constant) and option.immutable for option in options):
            self.values = [option.value for option in options]
            self.decode: Callable[[int], Any] = self.values.__getitem__
        elif all(option.size == 1 for option in options):
            decoders = [option.decode for option in options]
            self.decode = lambda index: decoders[index](0)
        else:
            self.decode = self._decode_nested

    def _decode_nested(self, index: int) -> Any:
        for option in self.options:
            if index < option.size:
                return option.decode(index)
            index -= option.size
        raise IndexError(index)


class _Product(_Space):
    """A dict or list whose children vary independently (mixed radix, last fastest).

    Its decoder is one generated expression, ``{k0: d0(i // 6), k1: d1(i // 2 % 3), k2: [v3, v4]}``.
    """

    def __init__(self, container: type, keys: List[Any], children: List[Any]):
        self._container, self._keys, self._children = container, keys, children
        self._strides: List[int] = []
        self.size = 1
        for child in reversed(children):
            self._strides.insert(0, self.size)
            self.size *= child.size
        namespace: Dict[str, Any] = {"container": container}
        self.decode: Callable[[int], Any] = _generated_decoder(namespace, self._expression(namespace, {}))

    def decode_list(self, indices: Sequence[int]) -> List[Any]:
        """The configurations at ``indices``: one comprehension, where runs of choices are read from tables.

        A run of neighbouring Variations of plain values (``a``, ``b``, ``c`` of
        ten choices each) is one table of their combinations, read once per
        configuration (``for c0, c1, c2 in (t0[i // 10 % 1000],)``) instead of
        once per Variation; a table is made where the list is longer than it.
        """
        namespace: Dict[str, Any] = {"container": self._container}
        runs = _table_runs(self._children, len(indices))
        names = {position: f"c{position}" for run in runs for position in run}
        clauses = []
        for number, run in enumerate(runs):
            namespace[f"t{number}"] = list(itertools.product(*(self._children[p].values for p in run)))
            size = len(namespace[f"t{number}"])
            digit = _digit(self._strides[run[-1]], size, slowest=run[0] == 0)
            clauses.append(f" for {', '.join(names[p] for p in run)} in (t{number}[{digit}],)")
        return _generated_decoder(namespace, self._expression(namespace, names), listing="".join(clauses))(indices)

    def _expression(self, namespace: Dict[str, Any], named: Dict[int, str]) -> str:
        """The expression of the configuration at ``i``; the children at the positions ``named`` are those names."""
        values = []
        for position, (child, stride) in enumerate(zip(self._children, self._strides)):
            if position in named:
                values.append(named[position])
            elif isinstance(child, _Constant) and child.inline:
                values.append(_literal(child.value, namespace))
            elif isinstance(child, _Choice) and child.values is not None:
                namespace[f"d{position}"] = child.values
                values.append(f"d{position}[{_digit(stride, child.size, slowest=position == 0)}]")
            else:
                namespace[f"d{position}"] = child.decode
                values.append(f"d{position}({_digit(stride, child.size, slowest=position == 0)})")
        if self._container is dict:
            return "{" + ", ".join(f"{_literal(key, namespace)}: {value}"
                                   for key, value in zip(self._keys, values)) + "}"
        listed = "[" + ", ".join(values) + "]"
        return listed if self._container is list else f"container({listed})"


#: The most combinations a table of a run of Variations holds (see _Product.decode_list).
_MAX_TABLE = 4096


def _table_runs(children: List[Any], count: int) -> List[List[int]]:
    """Runs of at least two neighbouring Variations of plain values, whose tables hold at most ``count`` in all."""
    runs: List[List[int]] = []
    run: List[int] = []
    size = 1
    for position, child in enumerate(children + [None]):
        tabled = isinstance(child, _Choice) and child.values is not None and child.size > 1
        if not tabled or size * child.size > _MAX_TABLE:
            if len(run) > 1:
                runs.append(run)
            run, size = [], 1
        if tabled:
            run.append(position)
            size *= child.size
    tables = 0
    chosen = []
    for run in runs:
        table = math.prod(len(children[p].values) for p in run)
        if tables + table <= count:
            chosen.append(run)
            tables += table
    return chosen


def _digit(stride: int, size: int, slowest: bool) -> str:
    """The expression of a child's index within the product's index ``i``; ``stride``: the size of those after it."""
    if size == 1:
        return "0"
    quotient = "i" if stride == 1 else f"i // {stride}"
    return quotient if slowest else f"{quotient} % {size}"


def _compile(node: Any) -> Any:
    if isinstance(node, Variation):
        return _Choice([_compile(choice) for choice in node.choices])
    if isinstance(node, dict):
        keys = list(node)
        return _product_or_constant(node, dict, keys, [node[k] for k in keys])
    if isinstance(node, (list, tuple)):
        return _product_or_constant(node, type(node), list(range(len(node))), list(node))
    return _Constant(node)


def _product_or_constant(node: Any, container: type, keys: List[Any], values: List[Any]) -> Any:
    children = [_compile(value) for value in values]
    if all(isinstance(child, _Constant) for child in children):
        return _Constant(node)
    return _Product(container, keys, children)


def _compact(indices: List[int]) -> Sequence[int]:
    try:
        return array("q", indices)
    except OverflowError:  # a space beyond 2**63 configurations
        return indices


def sweep_configs(cfg: Any, n_configs: Optional[int] = None, seed: Optional[int] = None) -> SweepConfigs:
    """:func:`generate_configs`'s configurations as a lazy sequence that decodes each when it is read."""
    space, indices = _space_and_indices(cfg, n_configs, seed)
    return SweepConfigs(space.decode, indices)


def _space_and_indices(cfg: Any, n_configs: Optional[int], seed: Optional[int]) -> Tuple[_Space, Sequence[int]]:
    """``cfg``'s compiled space and the indices of the sweep's configurations in it (the grid, or a sample)."""
    check_no_cycle(cfg, "cfg")
    space = _compile(cfg)
    if n_configs is None:
        return space, range(space.size)
    if isinstance(n_configs, bool) or not isinstance(n_configs, int) or n_configs < 1:
        raise ConfigError(f"n_configs must be a whole number >= 1 or None (the whole grid), got {n_configs!r}")
    return space, sample_indices(space.size, min(n_configs, space.size), random.Random(seed))


def generate_configs(cfg: Any, n_configs: Optional[int] = None, seed: Optional[int] = None) -> List[Any]:
    """Unique configurations from the space that ``cfg``'s Variations span.

    Returns ``min(n_configs, size of the space)`` configurations sampled
    uniformly without repetition (seeded by ``seed``), or the whole grid in a
    deterministic order when ``n_configs`` is None.
    """
    space, indices = _space_and_indices(cfg, n_configs, seed)
    # The configurations are new acyclic containers: the cycle collector's passes over them while the list
    # grows would find nothing to free, and took half the time of a list of 100,000 (nested dicts and lists).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return space.decode_list(indices)
    finally:
        if collecting:
            gc.enable()


def check_no_cycle(value: Any, where: str) -> None:
    """Raise the :func:`find_loop` error of ``value``, if it has one."""
    loop = find_loop(value, where)
    if loop is not None:
        raise loop


def find_loop(value: Any, where: str) -> Optional[ConfigError]:
    """A ConfigError naming the key where ``value`` contains itself (``cfg["me"] = cfg``), or None.

    Only Python code can build such a configuration, and storing or expanding
    it would never end. ``where`` names ``value`` in the message (``cfgs[3]``).
    """
    try:
        _check_no_cycle(value, where, {})
    except ConfigError as loop:
        return loop
    return None


def _check_no_cycle(value: Any, path: str, parents: Dict[int, str]) -> None:
    if isinstance(value, Variation):
        children: Any = [(path, choice) for choice in value.choices]
    elif isinstance(value, Mapping) and not is_omegaconf(value):  # those cannot loop, and may not resolve
        children = [(f"{path}.{key}", item) for key, item in value.items()]
    elif isinstance(value, (list, tuple)):
        children = [(f"{path}[{index}]", item) for index, item in enumerate(value)]
    else:
        return
    if id(value) in parents:
        raise ConfigError(
            f"{path} refers back to {parents[id(value)]}, so the configuration contains itself and cannot be "
            "stored: build it without that loop"
        )
    parents[id(value)] = path
    for child_path, child in children:
        _check_no_cycle(child, child_path, parents)
    del parents[id(value)]


def plain_config(value: Any, where: str) -> Any:
    """A configuration given to the Python API as an OmegaConf container (a DictConfig), as plain data.

    Its interpolations are resolved; one that cannot be (a cycle such as
    ``a: ${b}``, ``b: ${a}``) is a ConfigError naming its key. Anything else
    is returned as it is.
    """
    if is_omegaconf(value):
        from .omegaconf_plain import resolved_container

        return resolved_container(value, where)
    return value


def is_omegaconf(value: Any) -> bool:
    return type(value).__module__.startswith("omegaconf.")
