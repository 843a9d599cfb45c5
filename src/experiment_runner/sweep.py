"""Expand one configuration into the list of experiments of a sweep.

A configuration may hold :class:`Variation` nodes at any depth (in dicts, in
lists, and inside another Variation's choices). Together they span a finite
*space*: every way of picking one choice per Variation. The space is never
materialised. Each configuration has an index in ``range(size)`` and
:func:`config_at` decodes an index into its configuration in mixed radix, so
sampling ``n`` unique configurations is sampling ``n`` unique integers.
"""
from __future__ import annotations

import json
import math
import random
import sys
from array import array
from collections.abc import Mapping, Sequence as SequenceABC
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

from .errors import ConfigError
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
    return json.dumps(value, sort_keys=True, default=repr)


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


class _Constant:
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
            self.decode = _generated_decoder({}, lambda namespace: _literal(value, namespace))
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


def _generated_decoder(namespace: Dict[str, Any], body: Callable[[Dict[str, Any]], str]) -> Callable[[int], Any]:
    """``def decode(i): return <body>``, compiled: its code holds only names, operators and whole numbers.

    Decoding is the inner loop of every sweep (a million experiments decode a
    million configurations); one generated expression builds a configuration
    several times faster than walking the space's tree for each.
    """
    exec(f"def decode(i):\n    return {body(namespace)}\n", namespace)
    return namespace["decode"]


class _Choice:
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


class _Product:
    """A dict or list whose children vary independently (mixed radix, last fastest).

    Its decoder is one generated expression, ``{k0: d0(i // 6), k1: d1(i // 2 % 3), k2: [v3, v4]}``.
    """

    def __init__(self, container: type, keys: List[Any], children: List[Any]):
        strides: List[int] = []
        self.size = 1
        for child in reversed(children):
            strides.append(self.size)
            self.size *= child.size
        self.decode: Callable[[int], Any] = _generated_decoder(
            {"container": container}, lambda namespace: self._expression(container, keys, children,
                                                                         strides[::-1], namespace))

    @staticmethod
    def _expression(container: type, keys: List[Any], children: List[Any], strides: List[int],
                    namespace: Dict[str, Any]) -> str:
        values = []
        for position, (child, stride) in enumerate(zip(children, strides)):
            if isinstance(child, _Constant) and child.inline:
                values.append(_literal(child.value, namespace))
            elif isinstance(child, _Choice) and child.values is not None:
                namespace[f"d{position}"] = child.values
                values.append(f"d{position}[{_digit(stride, child.size, slowest=position == 0)}]")
            else:
                namespace[f"d{position}"] = child.decode
                values.append(f"d{position}({_digit(stride, child.size, slowest=position == 0)})")
        if container is dict:
            return "{" + ", ".join(f"{_literal(key, namespace)}: {value}" for key, value in zip(keys, values)) + "}"
        listed = "[" + ", ".join(values) + "]"
        return listed if container is list else f"container({listed})"


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


def _sample_indices(size: int, n: int, rng: random.Random) -> Sequence[int]:
    """n unique integers from range(size), without a rejection loop near exhaustion.

    The very integers ``rng.sample(range(size), n)`` draws (a resumed sampled
    sweep finds its experiments by their configurations: the same seed must
    give the same ones), kept as an ``array('q')`` instead of a list.
    """
    if size <= sys.maxsize:
        return _sample_like_random_sample(size, n, rng)
    # range() cannot be sampled beyond sys.maxsize; there n is tiny next to
    # size, so drawing until n distinct values is fast and unbiased.
    chosen: dict = {}
    while len(chosen) < n:
        chosen.setdefault(rng.randrange(size), None)
    return list(chosen)


def _sample_like_random_sample(size: int, k: int, rng: random.Random) -> Sequence[int]:
    """``rng.sample(range(size), k)``, step for step (CPython's algorithm since 3.2), into an array.

    Where random.sample shuffles a list of the whole population, this keeps
    that pool as an array (8 bytes an item) or, for a sample much smaller than
    the population, only the pool's moved items in a dict: the same draws
    from ``rng`` pick the same integers, in less memory and less time.
    """
    randbelow = rng._randbelow  # what random.sample draws with: the same calls give the same integers
    result = array("q", bytes(8 * k))
    setsize = 21  # size of a small set minus size of an empty list
    if k > 5:
        setsize += 4 ** math.ceil(math.log(k * 3, 4))  # table size for big sets
    if size > setsize:
        return _draw_unseen(size, k, randbelow, result)
    if k <= size // 8:
        moved: Dict[int, int] = {}  # the pool's items that are no longer at their own position
        moved_get = moved.get
        for i in range(k):
            j = randbelow(size - i)
            last = size - i - 1
            result[i] = moved_get(j, j)
            moved[j] = moved_get(last, last)  # move the item not selected into the vacancy
        return result
    pool = array("q", range(size))
    for i in range(k):
        j = randbelow(size - i)
        result[i] = pool[j]
        pool[j] = pool[size - i - 1]  # move the item not selected into the vacancy
    return result


def _draw_unseen(size: int, k: int, randbelow: Callable[[int], int], result: "array[int]") -> "array[int]":
    """Draw ``k`` distinct integers below ``size`` into ``result``, as random.sample does for a large population.

    random.sample remembers its picks in a set (about 64 bytes each); where a
    bitmap of the population is smaller (a million picks of 10^8: 12 MB
    instead of 64 MB), the picks are remembered there.
    """
    if size // 8 < 64 * k:
        seen = bytearray(size // 8 + 1)
        for i in range(k):
            j = randbelow(size)
            while seen[j >> 3] & (1 << (j & 7)):
                j = randbelow(size)
            seen[j >> 3] |= 1 << (j & 7)
            result[i] = j
        return result
    selected: set = set()
    selected_add = selected.add
    for i in range(k):
        j = randbelow(size)
        while j in selected:
            j = randbelow(size)
        selected_add(j)
        result[i] = j
    return result


def _compact(indices: List[int]) -> Sequence[int]:
    try:
        return array("q", indices)
    except OverflowError:  # a space beyond 2**63 configurations
        return indices


def sweep_configs(cfg: Any, n_configs: Optional[int] = None, seed: Optional[int] = None) -> SweepConfigs:
    """:func:`generate_configs`'s configurations as a lazy sequence that decodes each when it is read."""
    check_no_cycle(cfg, "cfg")
    space = _compile(cfg)
    if n_configs is None:
        indices: Sequence[int] = range(space.size)
    else:
        if isinstance(n_configs, bool) or not isinstance(n_configs, int) or n_configs < 1:
            raise ConfigError(f"n_configs must be a whole number >= 1 or None (the whole grid), got {n_configs!r}")
        indices = _sample_indices(space.size, min(n_configs, space.size), random.Random(seed))
    return SweepConfigs(space.decode, indices)


def generate_configs(cfg: Any, n_configs: Optional[int] = None, seed: Optional[int] = None) -> List[Any]:
    """Unique configurations from the space that ``cfg``'s Variations span.

    Returns ``min(n_configs, size of the space)`` configurations sampled
    uniformly without repetition (seeded by ``seed``), or the whole grid in a
    deterministic order when ``n_configs`` is None.
    """
    return list(sweep_configs(cfg, n_configs, seed))


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
