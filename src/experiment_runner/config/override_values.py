"""The value of an override (after ``=``), read with Hydra 1.3's lexer rules and parser rules.

Hydra's grammar is ANTLR (``hydra/grammar/OverrideLexer.g4``, ``VALUE_MODE``,
and ``OverrideParser.g4``); this is a hand-written copy: :func:`read_value`
splits the text into the same tokens, matched the same way (at each place
the longest match, the earlier rule on a tie), then reads them with one
method per parser rule, named after it. What it returns is as Hydra's
visitor builds it: plain values, :class:`QuotedString` for quoted text, and
what functions return (sweeps, see :mod:`.sweep_functions`).
"""
from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, AbstractSet, Any, Callable, List, NamedTuple, Optional, Tuple

from ..errors import ConfigError

if TYPE_CHECKING:
    from .sweep_functions import QuotedString

# sweep_functions (the functions and the value types they make) is imported by the rules that make its values:
# an override without quotes, sweeps or functions, and a command line without overrides, do without it.

__all__ = ["OverrideSyntaxError", "Failure", "read_value", "read_primitive", "ID", "INT_UNSIGNED"]

ID = r"[A-Za-z_][A-Za-z0-9_\-]*"
INT_UNSIGNED = r"(?:0|[1-9](?:_?[0-9])*)"
_QUOTE_OR_ESCAPE = "quote the value ('...') or escape the character with a backslash"


class OverrideSyntaxError(ConfigError):
    """An override that the grammar cannot read."""


class Failure:
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


# ---------------------------------------------------------------- the value's tokens (Hydra's VALUE_MODE)

_WS = r"[ \t]*"
_DIGITS = r"[0-9](?:_?[0-9])*"
_POINT_FLOAT = rf"(?:{INT_UNSIGNED}?\.{_DIGITS}|{INT_UNSIGNED}\.)"
_INF, _NAN = "[Ii][Nn][Ff]", "[Nn][Aa][Nn]"
#: The value tokens in the lexer's order (which wins when two match the same length).
_VALUE_RULES = [
    ("POPEN", rf"{_WS}\({_WS}"),
    ("COMMA", rf"{_WS},{_WS}"),
    ("PCLOSE", rf"{_WS}\)"),
    ("BRACKET_OPEN", rf"\[{_WS}"),
    ("BRACKET_CLOSE", rf"{_WS}\]"),
    ("BRACE_OPEN", rf"\{{{_WS}"),
    ("BRACE_CLOSE", rf"{_WS}\}}"),
    ("COLON", rf"{_WS}:{_WS}"),
    ("EQUAL", rf"{_WS}={_WS}"),
    ("FLOAT", rf"[+-]?(?:(?:{_POINT_FLOAT}|{INT_UNSIGNED})[eE][+-]?{_DIGITS}|{_POINT_FLOAT}|{_INF}|{_NAN})"),
    ("INT", rf"[+-]?{INT_UNSIGNED}"),
    ("BOOL", r"[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]"),
    ("NULL", r"[Nn][Uu][Ll][Ll]"),
    ("UNQUOTED_CHAR", r"[/\-\\+.$%*@?|]"),
    ("ID", ID),
    ("ESC", r"(?:\\\\|\\[()\[\]{}:=, \t])+"),
    ("WS", r"[ \t]+"),
    ("QUOTED_VALUE", r"""(?s)(["'])(?:.*?[^\\])??(?:\\\\)*\1"""),
    ("INTERPOLATION", r"\$\{[^}]+\}"),
]


@functools.lru_cache(maxsize=None)
def _compiled_rules() -> List[Tuple[str, re.Pattern]]:
    """:data:`_VALUE_RULES` compiled, the first time a value is read: a command without overrides compiles none."""
    return [(kind, re.compile(pattern)) for kind, pattern in _VALUE_RULES]


class _Token(NamedTuple):
    kind: str
    text: str
    position: int  # in the whole override


def _value_tokens(text: str, offset: int, fail: Failure) -> List[_Token]:
    """The value split into Hydra's tokens: at each place the longest match, the earlier rule on a tie."""
    tokens, position = [], 0
    while position < len(text):
        best: Optional[Tuple[str, str]] = None
        for kind, pattern in _compiled_rules():
            match = pattern.match(text, position)
            if match and match.group() and (best is None or len(match.group()) > len(best[1])):
                best = (kind, match.group())
        if best is None:
            raise _unreadable(text, position, offset, fail)
        tokens.append(_Token(best[0], best[1], offset + position))
        position += len(best[1])
    return tokens


def _unreadable(text: str, position: int, offset: int, fail: Failure) -> OverrideSyntaxError:
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

    def __init__(self, tokens: List[_Token], fail: Failure):
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
        from .sweep_functions import ChoiceSweep

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
        from .sweep_functions import FUNCTIONS, USAGE, call_function

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


def _unquoted(text: str) -> "QuotedString":
    """A QUOTED_VALUE's text: only backslashes before a quote are escapes.

    n of them give n // 2 backslashes, and the quote if n is odd (if even, it is the closing quote).
    """
    from .sweep_functions import QuotedString

    quote, body = text[0], text[1:]
    parts, position = [], 0
    for match in re.finditer(rf"(\\+){quote}", body):
        count = len(match.group(1))
        parts.append(body[position:match.start()] + "\\" * (count // 2) + (quote if count % 2 else ""))
        position = match.end()
    parts.append(body[position:-1])  # the rest, without the closing quote (if the last match did not take it)
    return QuotedString("".join(parts), quote)


def read_value(text: str, offset: int, fail: Failure) -> Any:
    """Hydra's ``value`` rule over ``text`` (found at ``offset`` in the override, for error positions)."""
    return _ValueParser(_value_tokens(text, offset, fail), fail).value()


def read_primitive(text: str, fail: Failure) -> Any:
    """Hydra's ``primitive`` rule over ``text``: typed (``10`` is an int) and unescaped; ``''`` when empty."""
    tokens = _value_tokens(text, 0, fail)
    return _ValueParser(tokens, fail).primitive(_PRIMITIVE_TOKENS) if tokens else ""
