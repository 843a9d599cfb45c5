"""The defaults list: which config files a composition merges, in which order, and under which keys.

The primary config's ``defaults`` list selects an option of each config group
(``- model: forest`` is ``model/forest.yaml``, placed under ``model``) or
includes a config; options may have defaults lists of their own, walked depth
first. Group overrides on the command line (``model=svm``, ``+db=mysql``,
``~db``) change the selections before the walk reads them.
"""
from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Set

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..errors import ConfigError
from .data import omegaconf_error_text
from .files import ConfigSource
from .overrides import ADD, DELETE, FORCE_ADD, SET, Override


@dataclasses.dataclass(frozen=True)
class _Entry:
    """One entry of a defaults list: ``_self_``, a group choice, or a config to include."""

    kind: str
    name: str = ""
    option: Optional[str] = None
    optional: bool = False


def _parse_defaults(raw: Any, where: Path, parent_group: str) -> List[_Entry]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: defaults must be a list, like [{{model: forest}}, _self_]")
    return [_parse_entry(item, where, parent_group) for item in raw]


def _parse_entry(item: Any, where: Path, parent_group: str) -> _Entry:
    if item == "_self_":
        return _Entry("self")
    if isinstance(item, str):
        return _Entry("config", _join_group(parent_group, item))
    if not (isinstance(item, dict) and len(item) == 1):
        raise ConfigError(f"{where}: defaults entry {item!r} is not '_self_', 'config' or 'group: option'")
    (key, option), = item.items()
    words = str(key).split()
    if words[0] == "override" or "@" in words[-1]:
        raise ConfigError(f"{where}: defaults entry {item!r}: 'override' and '@package' entries are not supported")
    if option is not None and not isinstance(option, (str, int, float)):
        raise ConfigError(f"{where}: defaults entry {item!r}: the option must be one name (or null)")
    optional = len(words) == 2 and words[0] == "optional"
    return _Entry("group", _join_group(parent_group, words[-1]), None if option is None else str(option), optional)


def _join_group(parent_group: str, name: str) -> str:
    """A group named in a defaults list is relative to its config's folder, or absolute with '/'."""
    if name.startswith("/"):
        return name.strip("/")
    return f"{parent_group}/{name}" if parent_group else name


def _package(header: Optional[str], group: str, name: str) -> str:
    """Where a config's keys go: its group as a dotted path, or what ``# @package`` says."""
    default = group.replace("/", ".")
    if header is None:
        return default
    package = header.replace("_group_", default).replace("_name_", name.rsplit("/", 1)[-1])
    package = package.replace("_global_", "")
    return ".".join(part for part in package.split(".") if part)


def _placed(cfg: DictConfig, package: str) -> DictConfig:
    if not package:
        return cfg
    nested: Any = cfg
    for part in reversed(package.split(".")):
        nested = {part: nested}
    return OmegaConf.create(nested)


class Composer:
    """Walks the defaults tree depth first, applying the group overrides, and merges in order."""

    def __init__(self, source: ConfigSource, group_overrides: Mapping[str, Override]):
        self.source = source
        self.group_overrides = group_overrides
        self.choices: Dict[str, Optional[str]] = {}
        self.used: Set[str] = set()
        self.parts: List[DictConfig] = []
        self.origins: Dict[str, str] = {}

    def compose(self, config_name: str) -> DictConfig:
        self._visit(config_name, group="", primary=True)
        for group, override in self.group_overrides.items():
            if group not in self.used:
                raise ConfigError(_group_not_in_defaults(override))
        merged = OmegaConf.merge(*self.parts) if self.parts else OmegaConf.create({})
        assert isinstance(merged, DictConfig)
        return merged

    def _visit(self, name: str, group: str, primary: bool = False) -> None:
        cfg, header = self.source.load(name)
        package = "" if primary else _package(header, group, name)
        where = self.source.file(name)
        entries = _parse_defaults(_pop_defaults(cfg, where), where, group)
        if not any(entry.kind == "self" for entry in entries):
            entries.append(_Entry("self"))
        for entry in entries:
            self._visit_entry(entry, cfg, package, where)
        if primary:
            self._append_added_groups(where)

    def _visit_entry(self, entry: _Entry, cfg: DictConfig, package: str, where: Path) -> None:
        if entry.kind == "self":
            placed = _placed(cfg, package)
            self.parts.append(placed)
            record_origins(self.origins, placed, str(where))
        elif entry.kind == "config":
            self._include(entry.name, where)
        else:
            self._choose(entry, where)

    def _include(self, name: str, where: Path) -> None:
        if not self.source.exists(name):
            raise ConfigError(f"{where}: defaults list includes {name!r}, but {self.source.file(name)} does not exist")
        self._visit(name, name.rpartition("/")[0])

    def _choose(self, entry: _Entry, where: Path, added_by: Optional[Override] = None) -> None:
        group, option = entry.name, entry.option
        if group in self.choices:
            raise ConfigError(f"{where}: config group {group!r} is selected twice in the defaults list")
        override = None if group in self.used else self.group_overrides.get(group)
        if override is not None:
            self.used.add(group)
            option = self._overridden_option(override, option)
        override = override or added_by
        self.choices[group] = option
        if option is None:
            return
        name = f"{group}/{option}"
        if not self.source.exists(name):
            if entry.optional:
                return
            if group == "backend" and _is_plugin_backend(option):
                placed = OmegaConf.create({"backend": {"name": option}})  # a plugin's backend has no option file
                self.parts.append(placed)
                record_origins(self.origins, placed, f"override {override.text!r}" if override else str(where))
                return
            context = f"override {override.text!r}" if override is not None else f"{where}: defaults list"
            raise ConfigError(unknown_option(self.source, group, option, context))
        self._visit(name, group)

    @staticmethod
    def _overridden_option(override: Override, option: Optional[str]) -> Optional[str]:
        if override.kind == DELETE:
            if override.values and str(override.value) != option:
                raise ConfigError(f"override {override.text!r}: group {override.key!r} selects {option!r}")
            return None
        if override.kind == ADD:
            raise ConfigError(
                f"override {override.text!r}: config group {override.key!r} is already in the defaults list; "
                f"use {override.key}={override.value} to choose another option"
            )
        return None if override.value is None else str(override.value)

    def _append_added_groups(self, where: Path) -> None:
        for group, override in self.group_overrides.items():
            # backend is a run setting: backend=NAME selects its option even without a defaults entry
            added = override.kind in (ADD, FORCE_ADD) or (override.kind == SET and group == "backend")
            if group not in self.used and added:
                self.used.add(group)
                entry = _Entry("group", group, None if override.value is None else str(override.value))
                self._choose(entry, where, added_by=override)
        self._choose_written_backend(where)

    def _choose_written_backend(self, where: Path) -> None:
        """``backend: multiprocessing`` written as a plain key selects that option, as ``backend=...`` does.

        So the backend node holds its settings and ``backend.num_workers=2``
        finds its key. A name without an option file is left as it is (a
        plugin's backend, or an unknown name that the settings check reports).
        """
        if "backend" in self.choices or "backend" in self.group_overrides:
            return
        part = next((part for part in reversed(self.parts) if "backend" in part), None)
        if part is None or OmegaConf.is_interpolation(part, "backend"):
            return
        name = part["backend"]
        if isinstance(name, str) and self.source.exists(f"backend/{name}"):
            self._choose(_Entry("group", "backend", name), where)


def record_origins(origins: Dict[str, str], part: DictConfig, where: str) -> None:
    """Where each top-level key (and each key of the backend node) was last set: a file or an override."""
    for key in part:
        origins[str(key)] = where
        if key == "backend" and isinstance(part[key], DictConfig):
            for option in part[key]:
                origins[f"backend.{option}"] = where


def _is_plugin_backend(name: str) -> bool:
    """A backend an installed plugin registers (it ships no option file; its node is just its name)."""
    from ..launchers import available_launchers

    return name in available_launchers()


def _pop_defaults(cfg: DictConfig, where: Path) -> Any:
    if "defaults" not in cfg:
        return None
    try:
        raw = OmegaConf.to_container(cfg.defaults, resolve=False) if cfg.defaults is not None else None
    except OmegaConfBaseException as error:
        raise ConfigError(f"{where}: defaults: {omegaconf_error_text(error)}") from error
    del cfg["defaults"]
    return raw


def _group_not_in_defaults(override: Override) -> str:
    if override.kind == DELETE:
        return f"override {override.text!r}: config group {override.key!r} is not in the defaults list"
    return (
        f"override {override.text!r}: config group {override.key!r} is not in the defaults list; "
        f"to add it, use +{override.key}={override.value}"
    )


def unknown_option(source: ConfigSource, group: str, option: str, context: str) -> str:
    options = source.options(group)
    close = difflib.get_close_matches(option, options, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    listing = f" (options: {', '.join(options)})" if options else f" ({source.root / group} holds no .yaml option)"
    return f"{context}: config group {group!r} has no option {option!r}{hint}{listing}"
