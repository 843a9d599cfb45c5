"""The file names of stage code that cloudpickle sends by value, put back where the stages are unpickled.

cloudpickle 3.1 names the code of what it sends by value (the functions and
classes of a script's ``__main__``) ``<dynamic-code>``, so a failure in a
worker would show neither the script's file nor its source lines. The driver
sends the file of each module the stages come from along with them
(:func:`source_files`); the worker names that code after its file again
(:func:`put_back_file_names`). Stages are reached however they are given: a
function, a ``functools.partial`` (its function and arguments), a bound
method (its function and object), an object with ``__call__`` (its class),
and from a function what it uses (its globals and closure), from a class
its methods and properties.
"""
from __future__ import annotations

import functools
import os
import sys
import types
from typing import Any, Dict, Iterable, Iterator, List, Mapping

__all__ = ["source_files", "put_back_file_names", "DYNAMIC_CODE"]

#: What cloudpickle 3.1 names the file of code it sends by value.
DYNAMIC_CODE = "<dynamic-code>"


def source_files(stages: Iterable[Any]) -> Dict[str, str]:
    """The file of each module that a stage's code comes from: module name -> absolute path."""
    files = {}
    for stage in stages:
        for part in _defining_parts(stage):
            module = sys.modules.get(getattr(part, "__module__", None) or "")
            path = getattr(module, "__file__", None)
            if path:
                files[module.__name__] = os.path.abspath(path)
    return files


def put_back_file_names(stages: Iterable[Any], files: Mapping[str, str]) -> None:
    """Name the code sent by value in ``stages``, and in what they reach, after its file in ``files`` again."""
    seen: set = set()
    pending = list(stages)
    while pending:
        value = pending.pop()
        if id(value) in seen or not (isinstance(value, (functools.partial, types.MethodType))
                                     or _defined_in(value, files)):
            continue
        seen.add(id(value))
        if isinstance(value, types.FunctionType):
            _rename(value, files)
        pending.extend(_reached(value))


def _defining_parts(stage: Any) -> List[Any]:
    """What defines ``stage``: itself, or a partial's function, a method's function, a callable object's class."""
    if isinstance(stage, functools.partial):
        return _defining_parts(stage.func)
    if isinstance(stage, types.MethodType):
        return [stage.__func__]
    if stage is None:
        return []
    return [stage] if isinstance(stage, (types.FunctionType, type)) else [type(stage)]


def _defined_in(value: Any, files: Mapping[str, str]) -> bool:
    """Whether ``value`` (or, for an object, its class) was defined in one of the modules of ``files``."""
    owner = value if isinstance(value, (types.FunctionType, type)) else type(value)
    return getattr(owner, "__module__", None) in files


def _reached(value: Any) -> Iterator[Any]:
    """What ``value`` holds that may be code sent by value."""
    if isinstance(value, functools.partial):
        yield from (value.func, *value.args, *value.keywords.values())
    elif isinstance(value, types.MethodType):
        yield from (value.__func__, value.__self__)
    elif isinstance(value, types.FunctionType):
        yield from value.__globals__.values()
        yield from (cell.cell_contents for cell in value.__closure__ or () if _has_contents(cell))
    elif isinstance(value, type):
        for member in vars(value).values():
            if isinstance(member, (staticmethod, classmethod)):
                yield member.__func__
            elif isinstance(member, property):
                yield from (accessor for accessor in (member.fget, member.fset, member.fdel) if accessor)
            else:
                yield member
    else:
        yield type(value)


def _rename(function: types.FunctionType, files: Mapping[str, str]) -> None:
    if function.__code__.co_filename == DYNAMIC_CODE:  # else sent by reference, or by a cloudpickle keeping names
        function.__code__ = _named_code(function.__code__, files[function.__module__])


def _named_code(code: types.CodeType, path: str) -> types.CodeType:
    constants = tuple(_named_code(c, path) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=path, co_consts=constants)


def _has_contents(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # an empty cell: a closure variable not assigned yet
        return False
    return True
