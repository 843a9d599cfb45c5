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
from typing import AbstractSet, Any, Callable, List, Optional, Sequence, Tuple

from ..errors import ConfigError
from ..serialization import MASK, is_secret_override
from .sweep_functions import FUNCTIONS, USAGE, ChoiceSweep, Glob, IntervalSweep, QuotedString, RangeSweep, Sweep
from .sweep_functions import call_function, sweep_values

__all__ = ["Override", "OverrideSyntaxError", "Glob", "parse_override", "parse_overrides"]

SET, ADD, FORCE_ADD, DELETE = "", "+", "++", "~"

_QUOTE_OR_ESCAPE = "quote the value ('...') or escape the character with a backslash"


class OverrideSyntaxError(ConfigError):
    """An override that the grammar cannot read."""


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
    multirun = any(isinstance(p.value, Sweep) or isinstance(p.value, Glob) for p in parsed)
    return [p.override(multirun) for p in parsed]


def parse_override(text: str, secret_keys: AbstractSet[str] = frozenset()) -> Override:
    """Read one override; a malformed one raises :class:`OverrideSyntaxError` naming it (a secret value as ``***``)."""
    return parse_overrides([text], secret_keys)[0]


def _masked_text(text: str, kind: str, key: str, secret: bool) -> str:
    return f"{kind}{key}={MASK}" if secret and "=" in text else text


# ---------------------------------------------------------------- the override rule


@dataclass(frozen=True)
class _Read:
    """An override as the grammar read it, before its value is made plain data."""

    text: str
    kind: str
    key: str
    package: Optional[str]
    has_value: bool
    value: Any
    secret: bool
    fail: _Failure

    def override(self, multirun: bool) -> Override:
        values, sweep = _plain_values(self, multirun)
        return Override(self.text, self.kind, self.key, values, sweep, self.secret, self.package)


def _read(text: str, secret_keys: AbstractSet[str]) -> _Read:
    """Hydra's ``override`` rule: ``key=value?``, ``~key(=value?)?``, ``+key=value?``, ``++key=value?``."""
    kind = next(prefix for prefix in (FORCE_ADD, ADD, DELETE, SET) if text.startswith(prefix))
    key_text, has_value, raw = text[len(kind):].partition("=")
    secret = is_secret_override(key_text.partition("@")[0], raw, secret_keys)
    shown = _masked_text(text, kind, key_text, secret)
    key, package = _key(key_text, shown, kind)
    if not has_value and kind != DELETE:
        raise OverrideSyntaxError(f"bad override {shown!r}: missing '=value'; write {kind}{key_text}=VALUE")
    value_text = raw.lstrip(" \t")
    offset = len(text) - len(value_text)
    fail = _Failure(shown, value_text, offset, secret)
    if value_text.startswith("="):
        raise fail("'==' is not an operator", offset, f"write {kind}{key_text}=VALUE")
    value = _ValueParser(_value_tokens(value_text, offset, fail), fail).value() if has_value else None
    if isinstance(value, Sweep) and kind == DELETE:
        raise fail("~key takes one value, not a sweep", offset)
    return _Read(text, kind, key, package, has_value, value, secret, fail)


class _Failure:
    """The errors of one override: the problem, where in the value it is, the fix; never a part of a secret value."""

    def __init__(self, shown: str, value_text: str, offset: int, secret: bool):
        self.shown, self.offset, self.secret = shown, offset, secret
        self.quoted = "the value" if secret else repr(value_text)

    def __call__(self, problem: str, position: Optional[int] = None, fix: str = "") -> OverrideSyntaxError:
        where = f" at position {position - self.offset} of {self.quoted}" if position is not None else ""
        return OverrideSyntaxError(f"bad override {self.shown!r}: {problem}{where}" + (f"; {fix}" if fix else ""))

    def reveal(self, text: str, instead: str) -> str:
        """``text``, which quotes the value, or ``instead`` for a secret."""
        return instead if self.secret else text


# ---------------------------------------------------------------- the key (Hydra's key mode)

_ID = r"[A-Za-z_][A-Za-z0-9_\-]*"
_KEY_SPECIAL = r"[A-Za-z_$][A-Za-z0-9_\-$]*"
_INT_UNSIGNED = r"(?:0|[1-9](?:_?[0-9])*)"
_DOT_PATH = rf"(?:{_KEY_SPECIAL}|{_INT_UNSIGNED})(?:\.(?:{_KEY_SPECIAL}|{_INT_UNSIGNED}))+"
#: ``package``: empty, an ID, a KEY_SPECIAL ($ allowed) or a DOT_PATH.
_PACKAGE = re.compile(rf"|{_KEY_SPECIAL}|{_DOT_PATH}")
#: ``packageOrGroup``: a package, or IDs joined by ``/`` (a config group such as db/engine).
_GROUP = re.compile(rf"{_ID}(?:/{_ID})+")


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


# ---------------------------------------------------------------- the value's tokens (Hydra's VALUE_MODE)

_WS = r"[ \t]*"
_DIGITS = r"[0-9](?:_?[0-9])*"
_POINT_FLOAT = rf"(?:{_INT_UNSIGNED}?\.{_DIGITS}|{_INT_UNSIGNED}\.)"
#: The value tokens in the lexer's order (which wins when two match the same length).
_VALUE_RULES = [(kind, re.compile(pattern)) for kind, pattern in [
    ("POPEN", rf"{_WS}\({_WS}"),
    ("COMMA", rf"{_WS},{_WS}"),
    ("PCLOSE", rf"{_WS}\)"),
    ("BRACKET_OPEN", rf"\[{_WS}"),
    ("BRACKET_CLOSE", rf"{_WS}\]"),
    ("BRACE_OPEN", rf"\{{{_WS}"),
    ("BRACE_CLOSE", rf"{_WS}\}}"),
    ("COLON", rf"{_WS}:{_WS}"),
    ("EQUAL", rf"{_WS}={_WS}"),
    ("FLOAT", rf"[+-]?(?:(?:{_POINT_FLOAT}|{_INT_UNSIGNED})[eE][+-]?{_DIGITS}|{_POINT_FLOAT}|[Ii][Nn][Ff]|[Nn][Aa][Nn])"),
    ("INT", rf"[+-]?{_INT_UNSIGNED}"),
    ("BOOL", r"[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]"),
    ("NULL", r"[Nn][Uu][Ll][Ll]"),
    ("UNQUOTED_CHAR", r"[/\-\\+.$%*@?|]"),
    ("ID", _ID),
    ("ESC", r"(?:\\\\|\\[()\[\]{}:=, \t])+"),
    ("WS", r"[ \t]+"),
    ("QUOTED_VALUE", r"""(?s)(["'])(?:.*?[^\\])??(?:\\\\)*\1"""),
    ("INTERPOLATION", r"\$\{[^}]+\}"),
]]


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    position: int  # in the whole override


def _value_tokens(text: str, offset: int, fail: _Failure) -> List[_Token]:
    """The value split into Hydra's tokens: at each place the longest match, the earlier rule on a tie."""
    tokens, position = [], 0
    while position < len(text):
        best: Optional[Tuple[str, str]] = None
        for kind, pattern in _VALUE_RULES:
            match = pattern.match(text, position)
            if match and match.group() and (best is None or len(match.group()) > len(best[1])):
                best = (kind, match.group())
        if best is None:
            raise _unreadable(text, position, offset, fail)
        tokens.append(_Token(best[0], best[1], offset + position))
        position += len(best[1])
    return tokens


def _unreadable(text: str, position: int, offset: int, fail: _Failure) -> OverrideSyntaxError:
    """The error where no token starts at ``position``: what is wrong there, and the fix."""
    char = text[position]
    if char in "'\"":
        return fail(f"unterminated quoted string (missing {char})", offset + position, f"close it with {char}")
    problem = fail.reveal(f"{char!r} cannot be in an unquoted value", "a character that cannot be in an unquoted value")
    return fail(problem, offset + position, _QUOTE_OR_ESCAPE)


# ---------------------------------------------------------------- the value's rules (Hydra's parser rules)

_PRIMITIVE_TOKENS = frozenset({"ID", "NULL", "INT", "FLOAT", "BOOL", "INTERPOLATION", "UNQUOTED_CHAR", "COLON",
                               "ESC", "WS"})
_DICT_KEY_TOKENS = _PRIMITIVE_TOKENS - {"COLON", "INTERPOLATION"}
_CLOSING = {"BRACKET_OPEN": ("BRACKET_CLOSE", "]"), "BRACE_OPEN": ("BRACE_CLOSE", "}"), "POPEN": ("PCLOSE", ")")}


class _ValueParser:
    """Recursive descent over the value's tokens, one method per rule of Hydra's OverrideParser.g4."""

    def __init__(self, tokens: List[_Token], fail: _Failure):
        self.tokens = tokens
        self.index = 0
        self.fail = fail
        self.end = tokens[-1].position + len(tokens[-1].text) if tokens else None

    def peek(self, ahead: int = 0) -> Optional[_Token]:
        index = self.index + ahead
        return self.tokens[index] if index < len(self.tokens) else None

    def kind(self, ahead: int = 0) -> str:
        token = self.peek(ahead)
        return token.kind if token else "EOF"

    def take(self, kind: str, expected: str) -> _Token:
        token = self.peek()
        if token is None or token.kind != kind:
            raise self.unexpected(expected)
        self.index += 1
        return token

    def unexpected(self, expected: str) -> OverrideSyntaxError:
        token = self.peek()
        if token is None:
            return self.fail(f"expected {expected}", self.end, "")
        previous = self.tokens[self.index - 1] if self.index else None
        if token.kind == "BRACE_OPEN" and previous is not None and previous.text == "$":
            return self.fail("unterminated ${...} interpolation", previous.position, "close it with }")
        found = token.text.strip(" \t") or repr(token.text)
        fix = "write name=value only inside a function's parentheses, " + _QUOTE_OR_ESCAPE if token.kind == "EQUAL" \
            else _QUOTE_OR_ESCAPE
        return self.fail(f"expected {expected}" + self.fail.reveal(f", found {found!r}", ""), token.position, fix)

    def value(self) -> Any:
        """``value: element | simpleChoiceSweep`` (``a,b,c``), then the end; the empty value is ``''``."""
        if not self.tokens:
            return ""
        first = self.element()
        if self.kind() != "COMMA":
            self.expect_end()
            return first
        items = [first]
        while self.kind() == "COMMA":
            self.index += 1
            if self.kind() == "EOF":
                raise self.fail("empty value after ','", self.end, "remove the trailing comma or quote the value")
            items.append(self.element())
        self.expect_end()
        return ChoiceSweep(items=items, simple_form=True)

    def expect_end(self) -> None:
        if self.kind() != "EOF":
            raise self.unexpected("the end of the value")

    def element(self) -> Any:
        """``element: primitive | listContainer | dictContainer | function``."""
        kind = self.kind()
        if kind == "ID" and self.kind(1) == "POPEN":
            return self.function()
        if kind == "BRACKET_OPEN":
            return self.list_container()
        if kind == "BRACE_OPEN":
            return self.dict_container()
        if kind == "QUOTED_VALUE":
            return _unquoted(self.take("QUOTED_VALUE", "a quoted value").text)
        if kind in _PRIMITIVE_TOKENS:
            return self.primitive(_PRIMITIVE_TOKENS)
        raise self.unexpected("a value")

    def function(self) -> Any:
        """``function: ID POPEN (argName? element (COMMA argName? element)*)? PCLOSE``; ``argName: ID EQUAL``."""
        name_token = self.take("ID", "a function name")
        name = name_token.text
        if name not in FUNCTIONS:
            raise self.fail(
                self.fail.reveal(f"unknown function {name}()", "an unknown function"), name_token.position,
                f"the functions are {', '.join(sorted(FUNCTIONS))}; to pass the text itself, quote the value",
            )
        args: List[Any] = []
        kwargs = {}
        for keyword, item in self.sequence("POPEN", self.argument):
            if keyword is None and kwargs:
                raise self.fail(f"{name}(): a positional argument follows a keyword argument", name_token.position,
                                f"write {USAGE[name]}")
            if keyword is None:
                args.append(item)
            else:
                kwargs[keyword] = item
        try:
            return call_function(name, args, kwargs)
        except ValueError as error:  # the functions' own messages name what is wrong
            problem = self.fail.reveal(str(error), f"wrong arguments to {name}()")
            raise self.fail(problem, name_token.position, f"write {USAGE[name]}") from error
        except (TypeError, ArithmeticError) as error:
            problem = self.fail.reveal(f"{name}(): {error}", f"wrong arguments to {name}()")
            raise self.fail(problem, name_token.position, f"write {USAGE[name]}") from error

    def argument(self) -> Tuple[Optional[str], Any]:
        if self.kind() == "ID" and self.kind(1) == "EQUAL":
            name = self.take("ID", "an argument name").text
            self.index += 1
            return name, self.element()
        return None, self.element()

    def list_container(self) -> List[Any]:
        """``listContainer: BRACKET_OPEN (element (COMMA element)*)? BRACKET_CLOSE``."""
        return self.sequence("BRACKET_OPEN", self.element)

    def dict_container(self) -> dict:
        """``dictContainer: BRACE_OPEN (dictKeyValuePair (COMMA dictKeyValuePair)*)? BRACE_CLOSE``."""
        return dict(self.sequence("BRACE_OPEN", self.dict_key_value_pair))

    def dict_key_value_pair(self) -> Tuple[Any, Any]:
        """``dictKeyValuePair: dictKey COLON element``; a dictKey is unquoted, without ':' or ``${...}``."""
        if self.kind() not in _DICT_KEY_TOKENS:
            raise self.unexpected("a dict key (unquoted: quotes and ${...} cannot be in a key)")
        key = self.primitive(_DICT_KEY_TOKENS)
        self.take("COLON", "':' after a dict key")
        return key, self.element()

    def sequence(self, opening: str, item: Callable[[], Any]) -> List[Any]:
        """``OPEN (item (COMMA item)*)? CLOSE``, the shape shared by lists, dicts and arguments."""
        closing, char = _CLOSING[opening]
        self.take(opening, opening)
        items = []
        if self.kind() == closing:
            self.index += 1
            return items
        while True:
            items.append(item())
            if self.kind() == closing:
                self.index += 1
                return items
            if self.kind() != "COMMA":
                raise self.unexpected(f"',' or '{char}'")
            self.index += 1

    def primitive(self, allowed: AbstractSet[str]) -> Any:
        """``primitive`` (or ``dictKey``): tokens joined, outer whitespace dropped; one token is typed."""
        start = self.index
        while self.kind() in allowed:
            self.index += 1
        tokens = self.tokens[start:self.index]
        if tokens[0].kind == "WS":
            if len(tokens) == 1:
                raise self.fail("a value cannot be only whitespace", tokens[0].position, "quote it: ' '")
            tokens = tokens[1:]
        if tokens[-1].kind == "WS":
            tokens = tokens[:-1]
        if len(tokens) > 1:
            return "".join(_unescaped(token) for token in tokens)
        return _typed(tokens[0])


def _unescaped(token: _Token) -> str:
    """An ESC token's characters without their backslashes (``\\\\`` is one backslash); other tokens as typed."""
    return token.text[1::2] if token.kind == "ESC" else token.text


def _typed(token: _Token) -> Any:
    if token.kind == "INT":
        return int(token.text)
    if token.kind == "FLOAT":
        return float(token.text)
    if token.kind == "BOOL":
        return token.text.lower() == "true"
    if token.kind == "NULL":
        return None
    return _unescaped(token)


def _unquoted(text: str) -> QuotedString:
    """A QUOTED_VALUE's text: only backslashes before a quote are escapes (n of them give n // 2, the quote kept if n is odd)."""
    quote, body = text[0], text[1:]
    parts, position = [], 0
    for match in re.finditer(rf"(\\+){quote}", body):
        count = len(match.group(1))
        parts.append(body[position:match.start()] + "\\" * (count // 2) + (quote if count % 2 else ""))
        position = match.end()
    parts.append(body[position:-1])  # the rest, without the closing quote (if the last match did not take it)
    return QuotedString("".join(parts), quote)


# ---------------------------------------------------------------- plain values


def _plain_values(read: _Read, multirun: bool) -> Tuple[Tuple[Any, ...], bool]:
    """(values, sweep) of a read override; in a multirun each value is typed again as Hydra's jobs read it."""
    if not read.has_value:
        return (), False
    value = read.value
    if isinstance(value, IntervalSweep):
        raise read.fail("interval() needs an adaptive search, which experiment-runner does not have yet", None,
                        "sweep over choice() or range() values instead")
    if isinstance(value, Glob):
        return (value,), True
    retype = (lambda item: _as_a_job_reads_it(item, read)) if multirun else (lambda item: item)
    if isinstance(value, (ChoiceSweep, RangeSweep)):
        try:
            values = tuple(_plain(retype(item), read) for item in sweep_values(value))
        except ValueError as error:
            raise read.fail(read.fail.reveal(str(error), "the range's step must not be 0")) from error
        if not values:  # Hydra runs no job at all; an empty sweep is most likely a slip
            raise read.fail("the range is empty, so no experiment would run", None,
                            "check its start, stop and step: range([start,] stop[, step])")
        return values, True
    return (_plain(retype(value), read),), False


def _plain(value: Any, read: _Read) -> Any:
    """Plain data: quoted strings as text; a sweep inside a list or dict is an error."""
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
        tokens = _value_tokens(written, 0, read.fail)
        return _ValueParser(tokens, read.fail).primitive(_PRIMITIVE_TOKENS) if tokens else ""
    except OverrideSyntaxError as error:
        shown = "" if read.secret else f" {value!r}"
        raise read.fail(f"the swept value{shown} is no valid override text once written out for its job, as "
                        "Hydra's multirun writes it", None, "quote it in the override") from error
