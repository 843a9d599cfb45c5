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
import random
import sys
from collections.abc import Mapping
from typing import Any, Dict, List, Optional, Sequence

from .errors import ConfigError
from .serialization import copy_plain

__all__ = ["Variation", "generate_configs", "space_size", "config_at", "check_no_cycle", "find_loop", "plain_config"]


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


class _Constant:
    """A subtree without Variations: one configuration."""

    size = 1

    def __init__(self, value: Any):
        self.value = value
        self.immutable = isinstance(value, (str, int, float, bool, bytes, type(None)))

    def decode(self, index: int) -> Any:
        return self.value if self.immutable else copy_plain(self.value)


class _Choice:
    """A Variation: the index picks a choice, the rest indexes into that choice."""

    def __init__(self, options: List[Any]):
        self.options = options
        self.size = sum(option.size for option in options)
        self.flat = all(option.size == 1 for option in options)

    def decode(self, index: int) -> Any:
        if self.flat:
            return self.options[index].decode(0)
        for option in self.options:
            if index < option.size:
                return option.decode(index)
            index -= option.size
        raise IndexError(index)


class _Product:
    """A dict or list whose children vary independently (mixed radix, last fastest)."""

    def __init__(self, container: type, keys: List[Any], children: List[Any]):
        self.container = container
        self.keys = keys
        self.children = children
        self.size = 1
        strides = []
        for child in reversed(children):
            strides.append(self.size)
            self.size *= child.size
        self.parts = list(zip(keys, children, reversed(strides)))

    def decode(self, index: int) -> Any:
        if self.container is dict:
            return {key: child.decode(index // stride % child.size) for key, child, stride in self.parts}
        values = [child.decode(index // stride % child.size) for _, child, stride in self.parts]
        return values if self.container is list else self.container(values)


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


def _sample_indices(size: int, n: int, rng: random.Random) -> List[int]:
    """n unique integers from range(size), without a rejection loop near exhaustion."""
    if size <= sys.maxsize:
        return rng.sample(range(size), n)
    # range() cannot be sampled beyond sys.maxsize; there n is tiny next to
    # size, so drawing until n distinct values is fast and unbiased.
    chosen: dict = {}
    while len(chosen) < n:
        chosen.setdefault(rng.randrange(size), None)
    return list(chosen)


def generate_configs(cfg: Any, n_configs: Optional[int] = None, seed: Optional[int] = None) -> List[Any]:
    """Unique configurations from the space that ``cfg``'s Variations span.

    Returns ``min(n_configs, size of the space)`` configurations sampled
    uniformly without repetition (seeded by ``seed``), or the whole grid in a
    deterministic order when ``n_configs`` is None.
    """
    check_no_cycle(cfg, "cfg")
    space = _compile(cfg)
    if n_configs is None:
        indices: Sequence[int] = range(space.size)
    else:
        if isinstance(n_configs, bool) or not isinstance(n_configs, int) or n_configs < 1:
            raise ConfigError(f"n_configs must be a whole number >= 1 or None (the whole grid), got {n_configs!r}")
        indices = _sample_indices(space.size, min(n_configs, space.size), random.Random(seed))
    return [space.decode(index) for index in indices]


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
