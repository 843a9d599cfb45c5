"""The override grammar: what people type after ``experiment-runner`` (Hydra's subset).

::

    key=value      change a key that exists (a.b.c=1 for nested keys)
    +key=value     add a key that does not exist yet
    ++key=value    add or change
    ~key[=value]   delete a key (only if it holds value, when given)
    group=option   choose another option of a config group (+group, ++group, ~group likewise)
    key=a,b,c      a sweep: one experiment per value (also range(start,stop[,step]) and choice(a,b))

Values are typed like YAML scalars in Hydra: ``1`` is an int, ``0.1`` and
``1e-3`` floats, ``true``/``false`` booleans, ``null`` None, ``[1,2]`` a list,
``{a: 1}`` a dict, ``'a,b'`` a quoted string, anything else a string.
``${...}`` interpolations are kept as text for OmegaConf to resolve.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import AbstractSet, Any, Dict, List, Optional, Tuple

from ..errors import ConfigError
from ..serialization import MASK, is_secret_override

__all__ = ["Override", "OverrideSyntaxError", "parse_override", "parse_overrides"]

SET, ADD, FORCE_ADD, DELETE = "", "+", "++", "~"


_KEY = re.compile(r"[A-Za-z_][\w\-]*(?:[./][\w\-]+)*")
_PACKAGE = re.compile(r"(?:[\w\-]+(?:\.[\w\-]+)*)?")
_FUNCTION = re.compile(r"([A-Za-z_]\w*)\((.*)\)", re.DOTALL)
_INT = re.compile(r"[+-]?\d(?:_?\d)*")
_FLOAT = re.compile(r"[+-]?(?:\d(?:_?\d)*\.?(?:\d(?:_?\d)*)?|\.\d(?:_?\d)*)(?:[eE][+-]?\d+)?")
_HYDRA_ONLY_FUNCTIONS = {"glob", "interval", "shuffle", "sort", "tag", "int", "float", "str", "bool", "json_str"}
_SYNTAX_HELP = "expected key=value, +key=value, ++key=value, ~key, group=option or key=a,b,c"


class OverrideSyntaxError(ConfigError):
    """An override that the grammar cannot read."""


@dataclass(frozen=True)
class Override:
    """One override as typed, and what it means."""

    text: str
    kind: str
    key: str
    values: Tuple[Any, ...]
    sweep: bool = False
    #: It sets a secret (see is_secret_override): its value is shown and stored as ``***``.
    secret: bool = False
    #: ``group@package=option``: the package the option is placed at (``""`` for ``group@=option``), else None.
    package: Optional[str] = None

    @property
    def value(self) -> Any:
        return self.values[0] if self.values else None

    def masked_text(self) -> str:
        """The override as it may be stored or printed (every message quotes it so): a secret's value is ``***``."""
        return _masked_text(self.text, self.kind, self.key, self.secret)

    def with_secret_keys(self, secret_keys: AbstractSet[str]) -> "Override":
        """This override, secret if it sets one of ``secret_keys``."""
        secret = is_secret_override(self.key, self.text.partition("=")[2], secret_keys)
        return replace(self, secret=self.secret or secret)


def parse_overrides(texts: List[str], secret_keys: AbstractSet[str] = frozenset()) -> List[Override]:
    return [parse_override(text, secret_keys) for text in texts]


def parse_override(text: str, secret_keys: AbstractSet[str] = frozenset()) -> Override:
    """Read one override; a malformed one raises :class:`OverrideSyntaxError` naming it (a secret value as ``***``)."""
    kind = next(prefix for prefix in (FORCE_ADD, ADD, DELETE, SET) if text.startswith(prefix))
    key, has_value, raw = text[len(kind):].partition("=")
    key = key.strip()
    secret = is_secret_override(key.partition("@")[0], raw, secret_keys)
    shown = _masked_text(text, kind, key, secret)
    key, at, package = key.partition("@")
    if at and not _PACKAGE.fullmatch(package):
        raise OverrideSyntaxError(f"bad override {shown!r}: {package!r} is not a package; {_SYNTAX_HELP}")
    if not _KEY.fullmatch(key):
        raise OverrideSyntaxError(f"bad override {text!r}: {key!r} is not a key; {_SYNTAX_HELP}")
    if not has_value:
        if kind != DELETE:
            raise OverrideSyntaxError(f"bad override {text!r}: missing '=value'; {_SYNTAX_HELP}")
        return Override(text, kind, key, (), secret=secret, package=package if at else None)
    if raw.startswith("="):
        raise OverrideSyntaxError(f"bad override {shown!r}: '==' is not an operator; {_SYNTAX_HELP}")
    values, sweep = _parse_values(raw, shown, secret)
    if sweep and kind == DELETE:
        raise OverrideSyntaxError(f"bad override {shown!r}: ~key takes one value, not a sweep")
    return Override(text, kind, key, tuple(values), sweep, secret, package if at else None)


def _masked_text(text: str, kind: str, key: str, secret: bool) -> str:
    return f"{kind}{key}={MASK}" if secret and "=" in text else text


def _parse_values(raw: str, text: str, secret: bool) -> Tuple[List[Any], bool]:
    """The value of ``key=raw``, or the values of a sweep (``a,b``, ``range()``, ``choice()``).

    ``text`` is the override as errors quote it; a ``secret`` value is never quoted.
    """
    function = _FUNCTION.fullmatch(raw.strip())
    if function and function.group(1) == "choice" and not function.group(2).strip():
        raise OverrideSyntaxError(f"bad override {text!r}: empty choice is not legal: give it values, e.g. choice(a,b)")
    if function and function.group(1) in ("range", "choice"):
        args = _Parser(function.group(2), text, secret).sequence(end="")
        return (_range(args, text) if function.group(1) == "range" else args), True
    if function and function.group(1) in _HYDRA_ONLY_FUNCTIONS:
        raise OverrideSyntaxError(
            f"bad override {text!r}: {function.group(1)}() is not supported; use a,b,c, range() or choice()"
        )
    values = _Parser(raw, text, secret).sequence(end="")
    return values, len(values) > 1


def _range(args: List[Any], text: str) -> List[Any]:
    """Hydra's range(stop), range(start, stop) and range(start, stop, step), floats allowed."""
    if not 1 <= len(args) <= 3 or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
        raise OverrideSyntaxError(f"bad override {text!r}: range takes 1 to 3 numbers: range([start,] stop[, step])")
    start, stop, step = (0, args[0], 1) if len(args) == 1 else (args[0], args[1], args[2] if len(args) == 3 else 1)
    if step == 0:
        raise OverrideSyntaxError(f"bad override {text!r}: range step must not be 0")
    if all(isinstance(a, int) for a in (start, stop, step)):
        values: List[Any] = list(range(start, stop, step))
    else:
        values = [start + i * step for i in range(max(0, math.ceil((stop - start) / step)))]
    if not values:
        raise OverrideSyntaxError(f"bad override {text!r}: the range is empty")
    return values


class _Parser:
    """Recursive descent over one value: lists, dicts, quoted strings, typed primitives."""

    def __init__(self, text: str, override: str, secret: bool = False):
        self.text = text
        self.pos = 0
        self.override = override
        self.secret = secret

    def fail(self, problem: str) -> OverrideSyntaxError:
        value = "the value" if self.secret else repr(self.text)
        return OverrideSyntaxError(f"bad override {self.override!r}: {problem} at position {self.pos} of {value}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_space(self) -> None:
        while self.peek().isspace():
            self.pos += 1

    def sequence(self, end: str) -> List[Any]:
        """Comma separated elements up to ``end`` (the closing bracket, or the end of text)."""
        items = []
        self.skip_space()
        if end and self.peek() == end:
            self.pos += 1
            return items
        while True:
            items.append(self.element(stops=",]}" if end else ","))
            self.skip_space()
            char = self.peek()
            if char == ",":
                self.pos += 1
                continue
            if char == end:
                self.pos += 1 if end else 0
                return items
            raise self.fail(f"expected ',' or {end!r}" if end else "unexpected character " + repr(char))

    def element(self, stops: str) -> Any:
        self.skip_space()
        char = self.peek()
        if char == "[":
            self.pos += 1
            return self.sequence("]")
        if char == "{":
            self.pos += 1
            return self.mapping()
        if char and char in "'\"":
            return self.quoted(char)
        return self.primitive(stops)

    def mapping(self) -> Dict[Any, Any]:
        result: Dict[Any, Any] = {}
        self.skip_space()
        if self.peek() == "}":
            self.pos += 1
            return result
        while True:
            self.skip_space()
            quote = self.peek()
            key = self.quoted(quote) if quote and quote in "'\"" else self.primitive(":,}")
            self.skip_space()
            if self.peek() != ":":
                raise self.fail("expected ':' after a dict key")
            self.pos += 1
            result[key] = self.element(",}")
            self.skip_space()
            char = self.peek()
            self.pos += 1
            if char == "}":
                return result
            if char != ",":
                raise self.fail("expected ',' or '}' in a dict")

    def quoted(self, quote: str) -> str:
        self.pos += 1
        chars = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\" and self.pos + 1 < len(self.text) and self.text[self.pos + 1] in (quote, "\\"):
                chars.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            self.pos += 1
            if char == quote:
                return "".join(chars)
            chars.append(char)
        raise self.fail(f"unterminated quoted string (missing {quote})")

    def primitive(self, stops: str) -> Any:
        """Text up to a stop character, with ``${...}`` kept whole and ``\\,`` escaping a stop."""
        chars = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in stops:
                break
            if char == "\\" and self.pos + 1 < len(self.text):
                chars.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if self.text.startswith("${", self.pos):
                chars.append(self.interpolation())
                continue
            chars.append(char)
            self.pos += 1
        text = "".join(chars).strip()
        if not text and self.text.strip():
            raise self.fail("empty value")
        return _typed(text)

    def interpolation(self) -> str:
        depth, start = 0, self.pos
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            depth += {"{": 1, "}": -1}.get(char, 0)
            if depth == 0 and char == "}":
                return self.text[start:self.pos]
        raise self.fail("unterminated ${...} interpolation")


def _typed(text: str) -> Any:
    """A primitive typed like Hydra does: null, bools, ints, floats, else the string."""
    lower = text.lower()
    if lower == "null":
        return None
    if lower in ("true", "false"):
        return lower == "true"
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text) or lower.lstrip("+-") in ("inf", "nan"):
        return float(text)
    return text
