"""What a defaults list is asked before its tree is read, and what it chose.

The command line's group overrides (``db=x``, ``db@pkg=x``, ``+db=x``,
``~db``) and the ``override`` entries of the defaults lists request options;
each group's choice is recorded as the tree is read, so a group selected
twice with two options is an error, and a request that matched nothing is
one too.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence

from ..errors import ConfigError
from .defaults_entries import Entry, Value
from .overrides import ADD, DELETE, FORCE_ADD, Override


@dataclasses.dataclass
class Request:
    """An option requested for a group before the tree is read: by the command line or an ``override`` entry."""

    value: Value
    where: str
    override: Optional[Override] = None
    used: bool = False


@dataclasses.dataclass
class _Deletion:
    """A ``~group`` override (of ``option`` only, when given); a docstring also spares dataclasses writing one
    with inspect.signature at every start-up."""

    option: Optional[str]
    override: Override
    used: bool = False


class Requests:
    """The command line's group overrides and the defaults lists' ``override`` entries, and what was chosen."""

    def __init__(self, overrides: Sequence[Override]):
        self.choices: Dict[str, Request] = {}
        self.deletions: Dict[str, _Deletion] = {}
        self.appended: List[Entry] = []
        #: Override key -> the entry that selected it first (its option is the choice).
        self.known: Dict[str, Entry] = {}
        for override in overrides:
            self._read(override)

    def _read(self, override: Override) -> None:
        key = override.key if override.package is None else f"{override.key}@{override.package}"
        text = f"override {override.masked_text()!r}"
        if override.kind == FORCE_ADD:
            raise ConfigError(
                f"{text}: '++' does not apply to config group {override.key!r}: use {key}=OPTION to choose "
                f"its option, or +{key}=OPTION to add it to the defaults list"
            )
        if override.kind == DELETE:
            if override.values and not isinstance(override.value, str):
                raise ConfigError(f"{text}: ~{key} takes the option to delete, a name")
            self.deletions[key] = _Deletion(override.value if override.values else None, override)
            return
        value = _group_value(override, key, text)
        if override.kind == ADD:
            package = None if override.package is None else ("" if override.package == "_here_" else override.package)
            self.appended.append(Entry("group", override.key, value, package, appended=True, where=text))
        else:
            self.choices[key] = Request(value, text, override)

    def add_override_entry(self, entry: Entry, where: str) -> None:
        """An ``override`` entry of a defaults list; the command line and earlier entries win."""
        if entry.override_key not in self.choices:
            self.choices[entry.override_key] = Request(entry.value, f"{where}: 'override {entry.described()}'")

    def choose(self, entry: Entry) -> None:
        request = self.choices.get(entry.override_key) if entry.kind == "group" else None
        if request is not None:
            entry.value = request.value
            entry.chosen_by = request.where
            request.used = True

    def deletes(self, entry: Entry) -> bool:
        deletion = self.deletions.get(entry.override_key) if entry.kind == "group" else None
        if deletion is None or deletion.option not in (None, entry.option):
            return False
        entry.deleted = deletion.used = True
        return True

    def know(self, entry: Entry) -> None:
        """Record the entry's choice; the same group chosen with another option is an error."""
        if entry.kind != "group":
            return
        key = entry.override_key
        first = self.known.setdefault(key, entry)
        if first is not entry and first.option != entry.option:
            raise ConfigError(selected_twice(key, first, entry))

    def check_all_used(self) -> None:
        for key, request in self.choices.items():
            if not request.used:
                raise ConfigError(self._unused_text(key, request))
        for key, deletion in self.deletions.items():
            if not deletion.used:
                known = self.known.get(key)
                text = f"override {deletion.override.masked_text()!r}"
                if known is not None and not known.deleted:
                    raise ConfigError(f"{text}: group {key!r} selects {known.option!r}")
                raise ConfigError(f"{text}: config group {key!r} is not in the defaults list")

    def _unused_text(self, key: str, request: Request) -> str:
        group = key.partition("@")[0]
        close = sorted(k for k in self.known if k.partition("@")[0] == group)
        held = f" (it holds {', '.join(close)})" if close else ""
        if request.override is None:
            return f"{request.where} matches no entry of the defaults list{held}"
        return (f"{request.where}: config group {key!r} is not in the defaults list{held}; "
                f"to add it, use +{key}={_shown(request.value)}")


def _group_value(override: Override, key: str, text: str) -> Value:
    value = override.value
    if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return value
    if value is None:
        raise ConfigError(f"{text}: config group {key!r} takes an option name, not null; to drop the group, use ~{key}")
    raise ConfigError(f"{text}: config group {key!r} takes an option name or a list of names, not {value!r}; "
                      f"quote a name that looks like a number: {key}='{value}'")


def _shown(value: Value) -> str:
    return f"[{','.join(value)}]" if isinstance(value, list) else str(value)


def selected_twice(key: str, first: Entry, second: Entry) -> str:
    added = first if first.appended else second if second.appended else None
    if added is not None:
        option = _shown(added.value)
        return (f"{added.where}: config group {key!r} is already in the defaults list; "
                f"use {key}={option} to choose another option")
    # the tree is read last entry first: ``first`` is the later entry of the two, the one meant to win
    return (f"{second.where}: config group {key!r} is selected twice in the defaults list "
            f"({second.option}, then {first.option}); to change its option, write 'override {key}: {first.option}'")
