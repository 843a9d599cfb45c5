"""The user's three stages (``pre -> fit -> post``) as a run holds them and sends them to its workers."""
from __future__ import annotations

import os
import sys
import types
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from .stage_arguments import takes_one_argument, wants_dictconfig


@dataclass(frozen=True)
class Stages:
    """The user's three functions; ``pre`` and ``post`` may be None."""

    fit: Callable[[dict, Any], Any]
    pre: Optional[Callable[[dict], Any]] = None
    post: Optional[Callable[[dict, Any], Any]] = None

    @property
    def calls(self) -> Tuple[bool, bool, bool, bool]:
        """How the stages are called, read from their signatures once: whether pre, fit and post each take the
        cfg as a DictConfig (see stage_arguments.as_annotated), and whether fit is called as ``fit(cfg)``."""
        calls = self.__dict__.get("_calls")
        if calls is None:
            fit_alone = self.pre is None and takes_one_argument(self.fit)
            calls = self.__dict__["_calls"] = (*(stage is not None and wants_dictconfig(stage)
                                                 for stage in (self.pre, self.fit, self.post)), fit_alone)
        return calls

    def __reduce__(self) -> Tuple[Any, ...]:
        """Pickled with the files the stages come from, which cloudpickle 3.1 drops from functions sent by value.

        It names their code ``<dynamic-code>``, so a script's own stages
        would lose their file and source lines in a worker's traceback;
        :func:`_unpickled_stages` puts the file names back.
        """
        return _unpickled_stages, (self.fit, self.pre, self.post, _source_files(self))


def _source_files(stages: Stages) -> Dict[str, str]:
    """The file of each module that one of the stages comes from: module name -> absolute path."""
    files = {}
    for stage in (stages.pre, stages.fit, stages.post):
        module = sys.modules.get(getattr(stage, "__module__", None) or "")
        path = getattr(module, "__file__", None)
        if path:
            files[module.__name__] = os.path.abspath(path)
    return files


def _unpickled_stages(fit: Any, pre: Any, post: Any, source_files: Dict[str, str]) -> Stages:
    seen: set = set()
    for stage in (pre, fit, post):
        _put_back_file_names(stage, source_files, seen)
    return Stages(fit, pre, post)


def _put_back_file_names(function: Any, source_files: Mapping[str, str], seen: set) -> None:
    """The code of ``function`` and of the functions it reaches named after their file again, not ``<dynamic-code>``."""
    if not isinstance(function, types.FunctionType) or id(function) in seen:
        return
    seen.add(id(function))
    path = source_files.get(function.__module__)
    if path is None or function.__code__.co_filename != DYNAMIC_CODE:
        return  # sent by reference (its module's own function), or by a cloudpickle that kept the file name
    function.__code__ = _named_code(function.__code__, path)
    closure = [cell.cell_contents for cell in function.__closure__ or () if _has_contents(cell)]
    for value in [*function.__globals__.values(), *closure]:
        _put_back_file_names(value, source_files, seen)


def _named_code(code: types.CodeType, path: str) -> types.CodeType:
    constants = tuple(_named_code(c, path) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=path, co_consts=constants)


def _has_contents(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # an empty cell: a closure variable not assigned yet
        return False
    return True


#: What cloudpickle 3.1 names the file of code it sends by value.
DYNAMIC_CODE = "<dynamic-code>"
