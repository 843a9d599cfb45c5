"""The functions of the override grammar: ``choice()``, ``range()``, casts, ``sort()``, ``shuffle()``, ``glob()``.

Each behaves as Hydra 1.3's function of the same name (its
``hydra/_internal/grammar/grammar_functions.py``): the same arguments
(positional or by name), the same accepted types, the same results:

- ``choice(a, b, ...)`` and ``range([start,] stop[, step])`` are sweeps;
  a float range steps in decimal arithmetic, so ``range(0,10,3.3)`` ends
  at 9.9, not 9.899999999999999.
- ``int()``, ``float()``, ``str()``, ``bool()`` cast a value, the items of
  a list, the values of a dict, or every value of a sweep; with several
  arguments they make a sweep (``int(1.5,2.5)``).
- ``sort()`` sorts a list or a sweep (``reverse=true``); ``shuffle()``
  shuffles them with Python's ``random``, as Hydra does (it takes no seed).
- ``glob(include[, exclude])`` selects the options of a config group by
  name (:class:`Glob`); the composition matches it against the group's options.
- ``tag()`` labels a sweep (the labels change nothing here); ``interval()``
  is a continuous range, which only an adaptive search can sample.

A value is kept as the parser read it until the end, so that a quoted
``'10'`` stays apart from ``10``: :class:`QuotedString` marks quoted text.
"""
from __future__ import annotations

import builtins
import fnmatch
import inspect
import typing
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

__all__ = [
    "QuotedString", "Sweep", "ChoiceSweep", "RangeSweep", "IntervalSweep", "Glob", "FUNCTIONS", "USAGE",
    "call_function", "sweep_values",
]


@dataclass(frozen=True)
class QuotedString:
    """Text the user quoted (``'10'``): a string whatever it looks like. ``quote`` is ``'`` or ``"``."""

    text: str
    quote: str = "'"


@dataclass
class Sweep:
    """A value that stands for several: one experiment per value. ``tags`` are ``tag()``'s labels."""

    tags: Tuple[str, ...] = ()


@dataclass
class ChoiceSweep(Sweep):
    """``a,b,c`` (``simple_form``) or ``choice(a,b,c)``; ``shuffle``: in a new random order each time."""

    items: List[Any] = field(default_factory=list)
    simple_form: bool = False
    shuffle: bool = False


@dataclass
class RangeSweep(Sweep):
    """``range(start, stop, step)``: whole numbers when all three are, else floats stepped exactly."""

    start: Union[int, float] = 0
    stop: Union[int, float] = 0
    step: Union[int, float] = 1
    shuffle: bool = False

    def values(self) -> List[Union[int, float]]:
        if self.step == 0:
            raise ValueError(f"range({self.start}, {self.stop}, {self.step}): the step must not be 0")
        if all(isinstance(x, int) for x in (self.start, self.stop, self.step)):
            return list(range(int(self.start), int(self.stop), int(self.step)))
        return list(_decimal_range(self.start, self.stop, self.step))


@dataclass
class IntervalSweep(Sweep):
    """``interval(start, end)``: every float in [start, end); only an adaptive search can sample it."""

    start: float = 0.0
    end: float = 0.0


@dataclass(frozen=True)
class Glob:
    """``glob(include, exclude)``: the options of a config group whose names match (fnmatch patterns).

    The grammar cannot know the options; the composition calls :meth:`select`
    with the group's options, in their order (by name).
    """

    include: Tuple[str, ...]
    exclude: Tuple[str, ...] = ()

    def select(self, options: List[str]) -> List[str]:
        return [name for name in options if _matches_any(name, self.include) and not _matches_any(name, self.exclude)]


def _matches_any(name: str, patterns: Tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in patterns)


#: A value of a sweep or a function argument, as parsed (lists and dicts may hold QuotedStrings).
Element = Union[None, str, int, float, bool, List[Any], Dict[Any, Any], QuotedString]
_PLAIN = Union[str, int, float, bool, list, dict]


def _decimal_range(start: float, stop: float, step: float) -> Iterator[float]:
    """Hydra's float range: start, stop and step as exact decimals, each value rounded to a float once."""
    import decimal  # for a float range only: it costs every start-up otherwise

    context = decimal.Context(prec=28)
    value, end, delta = decimal.Decimal(start), decimal.Decimal(stop), decimal.Decimal(step)
    while (value < end) if delta > 0 else (value > end):
        yield float(value)
        value = context.add(value, delta)


def sweep_values(sweep: Union[ChoiceSweep, RangeSweep]) -> List[Any]:
    """The values of a choice or range sweep, in order (a shuffled one in a new random order)."""
    values = list(sweep.items) if isinstance(sweep, ChoiceSweep) else sweep.values()
    if sweep.shuffle:
        _shuffle(values)
    return values


def _shuffle(values: List[Any]) -> None:
    """``random.shuffle``: random is imported for shuffle() alone, not at every start-up."""
    import random

    random.shuffle(values)


# ---------------------------------------------------------------- casts


def _cast(convert: Callable[[Any], Any], name: str) -> Callable[..., Any]:
    """A cast function: ``convert`` applied to a value, into lists and dict values, or to each value of a sweep."""

    def cast(value: Any) -> Any:
        if isinstance(value, QuotedString):
            return cast(value.text)
        if isinstance(value, dict):
            return {key: cast(item) for key, item in value.items()}
        if isinstance(value, list):
            return [cast(item) for item in value]
        if isinstance(value, ChoiceSweep):
            return ChoiceSweep(value.tags, [_checked_element(cast(item)) for item in value.items],
                               value.simple_form, value.shuffle)
        if isinstance(value, RangeSweep):
            if name not in ("int", "float"):
                raise ValueError(f"a range() cannot be cast by {name}(), only by int() or float()")
            return RangeSweep(value.tags, cast(value.start), cast(value.stop), cast(value.step), value.shuffle)
        if isinstance(value, IntervalSweep):
            if name not in ("int", "float"):
                raise ValueError(f"an interval() cannot be cast by {name}(), only by int() or float()")
            return IntervalSweep(value.tags, cast(value.start), cast(value.end))
        if not isinstance(value, (int, float, bool, str)) and name != "bool":  # Hydra: bool(null) is false
            raise ValueError(f"{name}() cannot cast {_type_name(value)}")
        return convert(value)

    def function(*args: Union[Element, Sweep], value: Optional[Union[Element, Sweep]] = None) -> Any:
        if args and value is not None:
            raise TypeError("give the value positionally or as value=, not both")
        if value is None and not args:
            raise TypeError("no value to cast")
        if value is not None:
            return cast(value)
        return cast(args[0] if len(args) == 1 else _simple_choice(args))

    function.__name__ = name
    return function


def _to_str(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        if value.lower() not in ("true", "false"):
            raise ValueError(f"bool() cannot cast {value!r}: only true or false")
        return value.lower() == "true"
    return bool(value)


def _checked_element(value: Any) -> Any:
    if not isinstance(value, (str, int, float, bool, list, dict)):
        raise ValueError(f"a choice() cannot hold {_type_name(value)}")
    return value


def _simple_choice(args: Tuple[Any, ...]) -> ChoiceSweep:
    return ChoiceSweep(items=list(args), simple_form=True)


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


# ---------------------------------------------------------------- sweeps


def choice(*args: Union[str, int, float, bool, Dict[Any, Any], List[Any], ChoiceSweep]) -> ChoiceSweep:
    if not args:
        raise ValueError("empty choice is not legal")
    if len(args) == 1 and isinstance(args[0], ChoiceSweep):
        if not args[0].simple_form:
            raise ValueError("a choice() cannot hold another choice()")
        return replace(args[0], simple_form=False)
    return ChoiceSweep(items=list(args))


def range_(start: Union[int, float], stop: Optional[Union[int, float]] = None,
           step: Union[int, float] = 1) -> RangeSweep:
    if stop is None:
        start, stop = 0, start
    return RangeSweep(start=start, stop=stop, step=step)


def interval(start: Union[int, float], end: Union[int, float]) -> IntervalSweep:
    return IntervalSweep(start=float(start), end=float(end))


def tag(*args: Union[str, Sweep], sweep: Optional[Sweep] = None) -> Sweep:
    if not args:
        raise ValueError("tag() needs at least one argument before sweep=")
    if sweep is not None:
        args = (*args, sweep)
    if not args or not isinstance(args[-1], Sweep):
        raise ValueError("the last argument of tag() must be a choice(), range() or interval()")
    labels = args[:-1]
    wrong = [label for label in labels if not isinstance(label, str)]
    if wrong:
        raise ValueError(f"the tags of tag() are text, not {_type_name(wrong[0])}")
    return replace(args[-1], tags=tuple(dict.fromkeys(labels)))


def shuffle(*args: Union[str, int, bool, float, list, dict, ChoiceSweep, RangeSweep],
            sweep: Optional[Union[ChoiceSweep, RangeSweep]] = None, list: Optional[List[Any]] = None) -> Any:
    if list is not None or sweep is not None:
        return shuffle(list if list is not None else sweep)
    if len(args) != 1:
        return replace(_simple_choice(args), shuffle=True)
    only = args[0]
    if isinstance(only, (ChoiceSweep, RangeSweep)):
        return replace(only, shuffle=True)
    if isinstance(only, builtins.list):
        shuffled = builtins.list(only)
        _shuffle(shuffled)
        return shuffled
    return [only]


def sort(*args: Union[str, int, bool, float, list, dict, ChoiceSweep, RangeSweep],
         sweep: Optional[Union[ChoiceSweep, RangeSweep]] = None, list: Optional[List[Any]] = None,
         reverse: bool = False) -> Any:
    if list is not None:
        return sort(list, reverse=reverse)
    if sweep is not None:
        return _sorted_sweep(sweep, reverse)
    if len(args) == 1:
        only = args[0]
        if isinstance(only, (ChoiceSweep, RangeSweep)):
            return _sorted_sweep(only, reverse)
        return sorted(only, reverse=reverse) if isinstance(only, builtins.list) else only
    if not args:
        raise ValueError("sort() of nothing")
    if not all(isinstance(arg, (int, float, bool, str)) for arg in args):
        raise TypeError("sort() of several values takes numbers, booleans or text")
    return _sorted_sweep(_simple_choice(args), reverse)


def _sorted_sweep(sweep: Union[ChoiceSweep, RangeSweep], reverse: bool) -> Union[ChoiceSweep, RangeSweep]:
    """A sorted copy; a range is turned around (its values then start from the other end, on the same grid)."""
    if isinstance(sweep, ChoiceSweep):
        return replace(sweep, items=sorted(sweep.items, reverse=reverse))
    start, stop, step = sweep.start, sweep.stop, sweep.step
    if not reverse and start > stop:
        return replace(sweep, start=stop + abs(step), stop=start + abs(step), step=-step)
    if reverse and start < stop:
        return replace(sweep, start=stop - abs(step), stop=start - abs(step), step=-step)
    return replace(sweep)


def glob(include: Union[List[str], str], exclude: Optional[Union[List[str], str]] = None) -> Glob:
    def patterns(value: Any) -> Tuple[str, ...]:
        return (value,) if isinstance(value, str) else tuple(value or ())

    return Glob(patterns(include), patterns(exclude))


FUNCTIONS: Dict[str, Callable[..., Any]] = {
    "bool": _cast(_to_bool, "bool"), "choice": choice, "float": _cast(float, "float"), "glob": glob,
    "int": _cast(int, "int"), "interval": interval, "range": range_, "shuffle": shuffle, "sort": sort,
    "str": _cast(_to_str, "str"), "tag": tag,
}
#: How each function is called, for error messages.
USAGE = {
    "bool": "bool(value)", "choice": "choice(a, b, ...)", "float": "float(value)",
    "glob": "glob(include[, exclude]), e.g. glob(*, exclude=[a*])", "int": "int(value)",
    "interval": "interval(start, end)", "range": "range([start,] stop[, step])",
    "shuffle": "shuffle(a, b, ...) or shuffle(list=[...])",
    "sort": "sort(a, b, ..., reverse=false) or sort(list=[...])",
    "str": "str(value)", "tag": "tag(name, ..., choice(...))",
}


# ---------------------------------------------------------------- calling a function


def call_function(name: str, args: List[Any], kwargs: Dict[str, Any]) -> Any:
    """``name(*args, **kwargs)`` as Hydra calls it: top-level quoted text unquoted, then each argument's type checked.

    Raises KeyError for an unknown name, TypeError or ValueError for wrong arguments.
    """
    function = FUNCTIONS[name]
    args = [arg.text if isinstance(arg, QuotedString) else arg for arg in args]
    kwargs = {key: arg.text if isinstance(arg, QuotedString) else arg for key, arg in kwargs.items()}
    signature = inspect.signature(function)
    bound = signature.bind(*args, **kwargs)
    hints = typing.get_type_hints(function)
    for parameter, value in bound.arguments.items():
        kind = signature.parameters[parameter].kind
        for item in value if kind == inspect.Parameter.VAR_POSITIONAL else (value,):
            if not _is_of_type(item, hints.get(parameter, Any)):
                raise TypeError(f"argument {parameter} cannot be {_type_name(item)}")
    return function(*bound.args, **bound.kwargs)


def _is_of_type(value: Any, annotation: Any) -> bool:
    """Hydra's check: in a Union any member type matches by isinstance; a lone int, float, str or bool exactly."""
    if annotation is Any:
        return True
    if typing.get_origin(annotation) is Union:
        members = tuple(typing.get_origin(m) or m for m in typing.get_args(annotation))
        return isinstance(value, members)
    if annotation in (int, float, bool, str):
        return type(value) is annotation
    return isinstance(value, typing.get_origin(annotation) or annotation)
