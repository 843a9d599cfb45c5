"""One entry of a defaults list as written, and Hydra 1.3's rules for where its config goes (its package).

An entry is ``_self_``, a config path (``- base``, ``- /db_schema/base@_here_``)
or a config group and its option(s) (``- db: mysql``, ``- optional db: ${x}``,
``- override /model: big``, ``- db@backup: mysql``, ``- site: [fb, google]``).

Packages, as Hydra 1.3 computes them (version_base 1.2 and later):

- Without ``@pkg``, a group option goes under its group as written, below
  the package of the config that lists it (``group1/x.yaml`` listing
  ``- group2: a`` places it at ``group1.group2``, also for ``/group2``).
- ``@pkg`` replaces that: relative to the listing config's package; ``@_here_``
  is the listing config's package itself; ``_global_`` anywhere in the
  result starts it again at the top; ``_group_`` in ``@pkg`` is the group's
  own package.
- A ``# @package X`` header is absolute (``_global_.X``), is used only where
  the entry names no ``@pkg``, and keeps ``_group_`` and ``_name_`` literal.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, List, Optional, Union

from ..errors import ConfigError

SELF = "_self_"
GLOBAL = "_global_"
#: What a group entry selects: one option, several (multi-select), or nothing (``null``).
Value = Union[None, str, List[str]]


@dataclasses.dataclass
class Entry:
    """One entry of a defaults list, placed in the tree once :meth:`attach` tells it its parent."""

    kind: str  # "self", "group" or "config"
    #: The group (a group entry) or the config path (a config entry), as written (a leading ``/`` is absolute).
    name: str = ""
    value: Value = None
    #: ``@pkg`` as written (``_here_`` already made ``""``); None without one.
    package: Optional[str] = None
    optional: bool = False
    override: bool = False
    #: Added by ``+group=option`` on the command line.
    appended: bool = False
    primary: bool = False
    #: The folder and the final package of the config that lists this entry.
    parent_dir: str = ""
    parent_package: str = ""
    #: The ``# @package`` header of the config it selects, made absolute.
    header: Optional[str] = None
    deleted: bool = False
    #: Where it was written, for messages: a config file, or ``override '...'``.
    where: str = ""
    #: What changed its option, for messages: ``override '...'`` or a config's override entry; "" if nothing.
    chosen_by: str = ""

    def attach(self, parent_dir: str, parent_package: str) -> None:
        self.parent_dir, self.parent_package = parent_dir, parent_package
        if self.package is not None and "_group_" in self.package:
            self.package = f"{GLOBAL}.{self.package.replace('_group_', self.default_package)}"

    def set_header(self, header: Optional[str]) -> None:
        if header is None:
            return
        if header != GLOBAL and not header.startswith(f"{GLOBAL}."):
            header = f"{GLOBAL}.{header}" if header else GLOBAL
        self.header = header

    @property
    def is_self(self) -> bool:
        return self.kind == "self"

    @property
    def option(self) -> Optional[str]:
        """The option this entry selects (a group's), or the config's own name; None for ``null`` or a list."""
        if self.kind == "config":
            return self.name.rsplit("/", 1)[-1]
        return self.value if isinstance(self.value, str) else None

    @property
    def options(self) -> List[str]:
        return self.value if isinstance(self.value, list) else []

    @property
    def relative_group(self) -> str:
        """The group as written (without a leading ``/``): the default package below the parent's."""
        name = self.name.lstrip("/")
        return name if self.kind == "group" else name.rpartition("/")[0]

    @property
    def group_path(self) -> str:
        """The group's folder in the config directory."""
        if self.kind == "group":
            return _join(self.parent_dir, self.name)
        return _join(self.parent_dir, self.name).rpartition("/")[0]

    @property
    def config_path(self) -> str:
        """The config file this entry selects, without ``.yaml``."""
        if self.kind == "config":
            return _join(self.parent_dir, self.name)
        return f"{self.group_path}/{self.option}"

    @property
    def default_package(self) -> str:
        return self.group_path.replace("/", ".")

    def final_package(self, use_header: bool = True) -> str:
        """Where this entry's config is placed, as a dotted path (``""`` is the top level)."""
        package = self.package if self.package is not None or not use_header else self.header
        if package is None:
            package = self.relative_group.replace("/", ".")
        if not self.parent_package:
            placed = package
        elif not package:
            placed = self.parent_package
        else:
            placed = f"{self.parent_package}.{package}"
        last_global = placed.rfind(GLOBAL)
        return placed if last_global == -1 else placed[last_global + len(GLOBAL) + 1:]

    @property
    def override_key(self) -> str:
        """How the command line names this entry: ``group``, or ``group@package`` away from its default package."""
        package = self.final_package(use_header=False)
        if package == self.default_package:
            return self.group_path
        return f"{self.group_path}@{package or GLOBAL}"

    @property
    def is_interpolation(self) -> bool:
        text = self.name if self.kind == "config" else self.value
        return isinstance(text, str) and "${" in text

    @property
    def is_missing(self) -> bool:
        return self.option == "???"

    def described(self) -> str:
        """The entry as a defaults list writes it, for messages."""
        if self.kind != "group":
            return self.name
        return f"{self.override_key}: {self.value}"


def _join(folder: str, name: str) -> str:
    if name.startswith("/"):
        return name[1:]
    return f"{folder}/{name}" if folder else name


def parse_defaults(raw: Any, where: Path) -> List[Entry]:
    """The entries of a ``defaults`` list as loaded (interpolations unresolved)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        kind = "a mapping" if isinstance(raw, dict) else type(raw).__name__
        raise ConfigError(f"{where}: defaults must be a list, like [{{model: forest}}, _self_], not {kind}")
    return [_parse_entry(item, where) for item in raw]


def _parse_entry(item: Any, where: Path) -> Entry:
    if isinstance(item, str):
        path, package = _split_package(item)
        if path == SELF:
            if package is not None:
                raise ConfigError(f"{where}: defaults entry {item!r}: _self_ takes no @package")
            return Entry("self", where=str(where))
        return Entry("config", path, package=package, where=str(where))
    if not isinstance(item, dict) or len(item) != 1:
        raise ConfigError(f"{where}: defaults entry {item!r} is not '_self_', 'config' or 'group: option'")
    (key, value), = item.items()
    group, package = _split_package(str(key))
    words = group.split(" ")
    flags = set()
    for word in words[:-1]:  # like Hydra, the keywords before the first unknown word count
        if word not in ("optional", "override"):
            break
        flags.add(word)
    return Entry("group", words[-1], _entry_value(value, item, where), package,
                 optional="optional" in flags, override="override" in flags, where=str(where))


def _entry_value(value: Any, item: Any, where: Path) -> Value:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(option, str) for option in value):
        return list(value)
    raise ConfigError(
        f"{where}: defaults entry {item!r}: the option must be a name, a list of names or null "
        f"(quote a number: '{value}')"
    )


def _split_package(text: str) -> "tuple[str, Optional[str]]":
    """``group@package`` -> (group, package); ``@_here_`` is the listing config's own package (``""``)."""
    name, at, package = text.partition("@")
    if not at:
        return name, None
    package = package.partition(":")[0]
    return name, "" if package == "_here_" else package
