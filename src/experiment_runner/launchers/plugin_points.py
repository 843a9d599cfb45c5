"""The plugins' entry points, read from the installed distributions without importing ``importlib.metadata``.

Importing ``importlib.metadata`` (email, zipfile, csv, ...) costs a start-up
more than reading the few ``entry_points.txt`` files it would read, and every
``--help`` lists the backends. This finds the same entry points as
``importlib.metadata.entry_points(group=...)`` in the usual case (folders on
``sys.path`` holding ``*.dist-info`` / ``*.egg-info`` folders): the first
distribution of each name on ``sys.path`` counts, entry points are read from
its ``entry_points.txt`` as ``importlib.metadata`` parses it, and loading one
imports what ``EntryPoint.load`` imports. Anything else (a zip file or an egg
on ``sys.path``, an import hook that lists distributions of its own) is left
to ``importlib.metadata`` itself.
"""
from __future__ import annotations

import functools
import os
import re
import sys
from importlib import import_module
from typing import Any, Iterator, List, Optional, Sequence

#: EntryPoint.pattern of importlib.metadata: ``module[:attr.attr] [extras]`` (compiled when a plugin loads).
_VALUE = r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$"
_METADATA_FOLDERS = (".dist-info", ".egg-info")


class PluginPoint:
    """One entry point, with the parts of ``importlib.metadata.EntryPoint`` the registry uses."""

    __slots__ = ("name", "value", "group", "_dist_path", "_dist")

    def __init__(self, name: str, value: str, group: str, dist_path: str, dist: Any = None):
        self.name, self.value, self.group = name, value, group
        self._dist_path, self._dist = dist_path, dist

    def load(self) -> Any:
        """What the entry point names, imported as ``EntryPoint.load`` does (its errors included)."""
        match = re.match(_VALUE, self.value)
        module = import_module(match.group("module"))  # type: ignore[union-attr]  # None raises as EntryPoint's
        attrs = filter(None, (match.group("attr") or "").split("."))  # type: ignore[union-attr]
        return functools.reduce(getattr, attrs, module)

    @property
    def dist(self) -> Any:
        """The distribution that declares it (read only when a message names it)."""
        if self._dist is None and self._dist_path:
            from importlib.metadata import PathDistribution
            from pathlib import Path

            self._dist = PathDistribution(Path(self._dist_path))
        return self._dist


def entry_points_in(group: str, path: Sequence[str]) -> List[PluginPoint]:
    """The entry points of ``group`` that the distributions installed on ``path`` declare, in ``path`` order."""
    if not _plain_folders(path):
        return _from_importlib_metadata(group)
    return [point for dist_path in _distributions(path) for point in _declared(dist_path, group)]


def _plain_folders(path: Sequence[str]) -> bool:
    """Whether every distribution on ``path`` is a metadata folder this module reads as importlib.metadata does."""
    finders = [finder for finder in sys.meta_path if getattr(finder, "find_distributions", None) is not None]
    if any(getattr(finder, "__name__", None) != "PathFinder" for finder in finders):
        return False
    return all(isinstance(entry, str) and not entry.lower().endswith(".egg") and not os.path.isfile(entry)
               for entry in path)


def _distributions(path: Sequence[str]) -> Iterator[str]:
    """The metadata folder of each distribution on ``path``: the first one of each (normalized) name."""
    seen = set()
    for entry in path:
        for child in _children(entry):
            low = child.lower()
            if not low.endswith(_METADATA_FOLDERS):
                continue
            name = _normalized(low.rpartition(".")[0].partition("-")[0])
            if name not in seen:
                seen.add(name)
                yield os.path.join(entry, child)


def _children(entry: str) -> List[str]:
    try:
        return os.listdir(entry or ".")
    except OSError:  # a folder that is not there (python3X.zip, usually) holds no distribution
        return []


def _normalized(name: str) -> str:
    """A distribution's name as importlib.metadata compares them (PEP 503, with underscores)."""
    return re.sub(r"[-_.]+", "-", name).lower().replace("-", "_")


def _declared(dist_path: str, group: str) -> Iterator[PluginPoint]:
    """The entry points of ``group`` in a distribution's entry_points.txt, parsed as importlib.metadata does."""
    text = _read(os.path.join(dist_path, "entry_points.txt"))
    if text is None:
        return
    section: Optional[str] = None
    for line in filter(None, map(str.strip, text.splitlines())):
        if line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
        elif section == group:
            name, value = line.split("=", 1)  # a line without "=" fails as in importlib.metadata
            yield PluginPoint(name.strip(), value.strip(), group, dist_path)


def _read(file: str) -> Optional[str]:
    try:
        with open(file, encoding="utf-8") as stream:
            return stream.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
        return None


def _from_importlib_metadata(group: str) -> List[PluginPoint]:
    from importlib.metadata import entry_points

    found = entry_points()
    points = found.select(group=group) if hasattr(found, "select") else found.get(group, [])
    return [PluginPoint(point.name, point.value, group, "", getattr(point, "dist", None)) for point in points]
