"""The override grammar: what people type after ``experiment-runner``, read exactly as Hydra 1.3 reads it.

::

    key=value      change a key that exists (a.b.c=1 for nested keys)
    +key=value     add a key that does not exist yet
    ++key=value    add or change
    ~key[=value]   delete a key (only if it holds value, when given)
    group=option   choose another option of a config group (+group, ++group, ~group likewise)
    key=a,b,c      a sweep: one experiment per value (also choice(), range(), glob(), see .sweep_functions)

Values are typed as Hydra types them: ``1`` is an int, ``0.1``, ``1e-3``,
``inf`` and ``nan`` floats, ``true``/``false`` (any case) booleans,
``null`` None, ``[1,2]`` a list, ``{a: 1}`` a dict, ``'a,b'`` a quoted
string, anything else a string. ``${...}`` is kept for OmegaConf.

The reader is a hand-written copy of Hydra's ANTLR grammar
(``hydra/grammar/OverrideLexer.g4`` and ``OverrideParser.g4``): a lexer with
the same tokens, matched the same way (longest match, the earlier rule on a
tie), and one method per parser rule, named after it. So the fine points
come out as in Hydra: an unquoted value may hold letters, digits, spaces and
``/-\\+.$%*@?|:``, and ``\\`` escapes ``\\ ( ) [ ] { } : = ,`` space and tab
(``c:\\foo\\a-b.txt`` keeps its backslashes); in a quoted value only
backslashes before a quote are escapes (``'foo\\\\bar'`` keeps both);
whitespace around ``,`` ``:`` ``(`` ``)`` and inside brackets is dropped;
anything else (``=`` in a value, ``#``, non-ASCII letters, an unknown
function) is an error that says to quote or escape it.

A command line with a sweep is Hydra's multirun: there Hydra writes each
value of each job back as override text and reads it again, which types an
unquoted text that a function returned (``choice(str(10))`` runs 10, not
'10'). :func:`parse_overrides` does the same.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import AbstractSet, Any, List, NamedTuple, Optional, Sequence, Tuple

from ..serialization import MASK, is_secret_override
from .data import INTERVAL_KEY
from .override_values import ID, INT_UNSIGNED, Failure, OverrideSyntaxError, read_primitive, read_value

# The value types of sweep_functions (quoted text, sweeps, glob()) are imported by the functions that read an
# override: a command line without overrides (--help, --cfg) does without creating their dataclasses (about 3 ms).

__all__ = ["Override", "OverrideSyntaxError", "parse_override", "parse_overrides"]

SET, ADD, FORCE_ADD, DELETE = "", "+", "++", "~"


@dataclass(frozen=True)
class Override:
    """One override as typed, and what it means.

    ``values`` holds the value (one), or the values of a sweep (``sweep``),
    as plain data; a ``glob()`` of a config group holds one :class:`Glob`,
    which the composition turns into the group's matching options.
    """

    text: str
    kind: str
    key: str
    values: Tuple[Any, ...]
    sweep: bool = False
    #: It sets a secret (see is_secret_override): its value is shown and stored as ``***``.
    secret: bool = False
    #: ``group@package=option``: the package the option is placed at (``""`` for ``group@=option``), else None.
    package: Optional[str] = None
    #: A ``range()`` sweep in its order (not shuffled): (lowest, highest value, step), which an adaptive search
    #: samples as an ordered range; the grid runs its ``values``.
    range: Optional[Tuple[Any, Any, Any]] = None

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


def parse_overrides(texts: Sequence[str], secret_keys: AbstractSet[str] = frozenset()) -> List[Override]:
    """Read a command line's overrides; with a sweep among them, every value is typed as in Hydra's multirun."""
    parsed = [_read(text, secret_keys) for text in texts]
    multirun = any(_stands_for_several(p.value) for p in parsed)
    return [p.override(multirun) for p in parsed]


def _stands_for_several(value: Any) -> bool:
    """A sweep, or glob()'s options of a group."""
    from .sweep_functions import Glob, Sweep

    return isinstance(value, (Sweep, Glob))


def parse_override(text: str, secret_keys: AbstractSet[str] = frozenset()) -> Override:
    """Read one override; a malformed one raises :class:`OverrideSyntaxError` naming it (a secret value as ``***``)."""
    return parse_overrides([text], secret_keys)[0]


def _masked_text(text: str, kind: str, key: str, secret: bool) -> str:
    return f"{kind}{key}={MASK}" if secret and "=" in text else text


# ---------------------------------------------------------------- the override rule


class _Read(NamedTuple):
    """An override as the grammar read it, before its value is made plain data."""

    text: str
    kind: str
    key: str
    package: Optional[str]
    has_value: bool
    value: Any
    secret: bool
    fail: Failure

    def override(self, multirun: bool) -> Override:
        values, sweep = _plain_values(self, multirun)
        return Override(self.text, self.kind, self.key, values, sweep, self.secret, self.package,
                        _ordered_range(self.value, values))


def _read(text: str, secret_keys: AbstractSet[str]) -> _Read:
    """Hydra's ``override`` rule: ``key=value?``, ``~key(=value?)?``, ``+key=value?``, ``++key=value?``."""
    from .sweep_functions import Sweep

    kind = next(prefix for prefix in (FORCE_ADD, ADD, DELETE, SET) if text.startswith(prefix))
    key_text, has_value, raw = text[len(kind):].partition("=")
    secret = is_secret_override(key_text.partition("@")[0], raw, secret_keys)
    shown = _masked_text(text, kind, key_text, secret)
    key, package = _key(key_text, shown, kind)
    if not has_value and kind != DELETE:
        raise OverrideSyntaxError(f"bad override {shown!r}: missing '=value'; write {kind}{key_text}=VALUE")
    value_text = raw.lstrip(" \t")
    offset = len(text) - len(value_text)
    fail = Failure(shown, value_text, offset, secret)
    if value_text.startswith("="):
        raise fail("'==' is not an operator", offset, f"write {kind}{key_text}=VALUE")
    value = read_value(value_text, offset, fail) if has_value else None
    if isinstance(value, Sweep) and kind == DELETE:
        raise fail("~key takes one value, not a sweep", offset)
    return _Read(text, kind, key, package, has_value, value, secret, fail)


# ---------------------------------------------------------------- the key (Hydra's key mode)

_KEY_SPECIAL = r"[A-Za-z_$][A-Za-z0-9_\-$]*"
_DOT_PATH = rf"(?:{_KEY_SPECIAL}|{INT_UNSIGNED})(?:\.(?:{_KEY_SPECIAL}|{INT_UNSIGNED}))+"
#: ``package``: empty, an ID, a KEY_SPECIAL ($ allowed) or a DOT_PATH.
_PACKAGE = re.compile(rf"|{_KEY_SPECIAL}|{_DOT_PATH}")
#: ``packageOrGroup``: a package, or IDs joined by ``/`` (a config group such as db/engine).
_GROUP = re.compile(rf"{ID}(?:/{ID})+")


def _key(text: str, shown: str, kind: str) -> Tuple[str, Optional[str]]:
    """Hydra's ``key`` rule, ``packageOrGroup (AT package)?``: (key, package or None)."""
    key, at, package = text.partition("@")
    if text != text.strip(" \t"):
        raise OverrideSyntaxError(f"bad override {shown!r}: no spaces around the key; write {kind}{text.strip()}=...")
    if not key or not (_PACKAGE.fullmatch(key) or _GROUP.fullmatch(key)):
        raise OverrideSyntaxError(
            f"bad override {shown!r}: {key!r} is not a key; a key is a dotted path (a.b.c, list.0) or a "
            "config group (db, db/engine), of letters, digits, '_' and '-'"
        )
    if at and not _PACKAGE.fullmatch(package):
        raise OverrideSyntaxError(f"bad override {shown!r}: {package!r} is not a package; write group@a.b=option")
    return key, package if at else None


# ---------------------------------------------------------------- plain values


def _plain_values(read: _Read, multirun: bool) -> Tuple[Tuple[Any, ...], bool]:
    """(values, sweep) of a read override; in a multirun each value is typed again as Hydra's jobs read it."""
    from .sweep_functions import ChoiceSweep, Glob, IntervalSweep, RangeSweep, sweep_values

    if not read.has_value:
        return (), False
    value = read.value
    if isinstance(value, IntervalSweep):  # a dimension for an adaptive search to sample (the grid refuses it)
        integer = isinstance(value.start, int) and isinstance(value.end, int)
        return ({INTERVAL_KEY: {"low": value.start, "high": value.end, "log": "log" in value.tags, "int": integer}},
                ), False
    if isinstance(value, Glob):
        return (value,), True
    retype = (lambda item: _as_a_job_reads_it(item, read)) if multirun else (lambda item: item)
    if isinstance(value, (ChoiceSweep, RangeSweep)):
        try:
            values = tuple(_plain(retype(item), read) for item in sweep_values(value))
        except ValueError as error:
            raise read.fail(read.fail.reveal(str(error), "the range's step must not be 0")) from error
        if not values:  # Hydra runs no job at all; an empty sweep is most likely a slip
            what, fix = ("range", "check its start, stop and step: range([start,] stop[, step])") \
                if isinstance(value, RangeSweep) else ("sweep", "give it values")
            raise read.fail(f"the {what} is empty, so no experiment would run", None, fix)
        return values, True
    return (_plain(retype(value), read),), False


def _ordered_range(value: Any, values: Tuple[Any, ...]) -> Optional[Tuple[Any, Any, Any]]:
    """(lowest, highest, step) of an unshuffled range() of two values or more, else None."""
    from .sweep_functions import RangeSweep

    if not isinstance(value, RangeSweep) or value.shuffle or len(values) < 2:
        return None
    return min(values[0], values[-1]), max(values[0], values[-1]), abs(value.step)


def _plain(value: Any, read: _Read) -> Any:
    """Plain data: quoted strings as text; a sweep inside a list or dict is an error."""
    from .sweep_functions import Glob, QuotedString, Sweep

    if isinstance(value, QuotedString):
        return value.text
    if isinstance(value, list):
        return [_plain(item, read) for item in value]
    if isinstance(value, dict):
        return {_plain(key, read): _plain(item, read) for key, item in value.items()}
    if isinstance(value, (Sweep, Glob)):
        raise read.fail("a sweep must be the whole value, not inside a list, a dict or another sweep", None,
                        "write key=a,b or key=choice(a,b)")
    return value


def _as_a_job_reads_it(value: Any, read: _Read) -> Any:
    """``value`` written as override text and read again, as Hydra's multirun does for each job.

    Only unquoted text can change (``'10'`` that a function unquoted becomes 10): it is escaped and re-typed.
    """
    if isinstance(value, list):
        return [_as_a_job_reads_it(item, read) for item in value]
    if isinstance(value, dict):
        return {_as_a_job_reads_it(key, read): _as_a_job_reads_it(item, read) for key, item in value.items()}
    if not isinstance(value, str):
        return value
    written = re.sub(r"([\\()\[\]{}:=, \t])", r"\\\1", value)
    try:
        return read_primitive(written, read.fail)
    except OverrideSyntaxError as error:
        shown = "" if read.secret else f" {value!r}"
        raise read.fail(f"the swept value{shown} is no valid override text once written out for its job, as "
                        "Hydra's multirun writes it", None, "quote it in the override") from error
