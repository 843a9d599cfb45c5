"""The defaults list: which config files a composition merges, in which order, and under which keys.

Hydra 1.3's algorithm, on our own code:

1. The command line's group overrides are read first (see
   :mod:`.defaults_requests`): ``db=x`` (and ``db@pkg=x``) requests an
   option, ``+db=x`` appends an entry to the primary config's defaults
   list, ``~db`` deletes one.
2. The defaults tree is built from the primary config down. Each config's
   entries are visited last to first, so an ``override`` entry anywhere
   (``+experiment=x`` holding ``- override /db: sqlite``) is known before
   the entry it overrides is read; the command line wins over such entries.
   Entries whose option is an interpolation (``- optional ds_model:
   ${ds}_${model}``) are resolved after their siblings, from the options
   chosen so far.
3. The tree, depth first, is the ordered list of (config, package) that is
   merged; a config with a defaults list is merged where its ``_self_`` is
   (last by default). A group selected twice is an error.

Where each entry's config goes (its package) is decided in :mod:`.defaults_entries`.
"""
from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Set, Union

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..errors import ConfigError
from ..omegaconf_plain import omegaconf_error_text
from .defaults_entries import Entry, parse_defaults
from .defaults_requests import Requests, selected_twice
from .files import ConfigSource
from .overrides import ADD, Override


@dataclasses.dataclass
class _Node:
    """An entry and, when its config has a defaults list, the entries below it (else it is merged whole)."""

    entry: Entry
    children: Optional[List[Union["_Node", Entry]]] = None


class _Loaded(NamedTuple):
    config: DictConfig
    header: Optional[str]
    defaults: Any
    where: Path


class _Result(NamedTuple):
    """One config of the final defaults list: merged at ``package``, in order."""

    config_path: str
    package: str
    override_key: Optional[str]
    entry: Entry


class Composer:
    """Builds the defaults tree of a primary config (or of none) and merges its configs in order."""

    def __init__(self, source: ConfigSource, overrides: Sequence[Override] = ()):
        self.source = source
        self.overrides = list(overrides)
        self.choices: Dict[str, Optional[str]] = {}
        self.parts: List[DictConfig] = []
        self.origins: Dict[str, str] = {}
        self._cache: Dict[str, _Loaded] = {}

    def compose(self, config_name: Optional[str]) -> DictConfig:
        """The merged config of ``config_name`` (None: no primary config, only what ``+group=...`` adds)."""
        results = self.defaults_list(config_name)
        for result in results:
            self._merge(result)
        self._choose_written_backend()
        merged = OmegaConf.merge(*self.parts) if self.parts else OmegaConf.create({})
        assert isinstance(merged, DictConfig)
        return merged

    def defaults_list(self, config_name: Optional[str]) -> List[_Result]:
        requests = Requests(self.overrides)
        root = Entry("config", config_name or "", primary=True)
        results = self._walk(root, requests)
        unused = [request.override for request in map(requests.choices.get, ("backend", "search"))
                  if request is not None and not request.used and request.override is not None]
        if unused:
            # backend and search are run settings: backend=NAME (search=NAME) selects its option even without a
            # defaults entry
            plain = [o for o in self.overrides if all(o is not override for override in unused)]
            requests = Requests([*plain, *(dataclasses.replace(override, kind=ADD) for override in unused)])
            results = self._walk(Entry("config", config_name or "", primary=True), requests)
        requests.check_all_used()
        order = [r.override_key for r in results if r.override_key is not None]
        self.choices = {key: requests.known[key].option for key in [*order, *requests.known] if key in requests.known}
        return results

    def _walk(self, root: Entry, requests: Requests) -> List[_Result]:
        tree = self._expand(root, requests, is_root=True, interpolated=False)
        results: List[_Result] = []
        self._flatten(tree, None, results)
        seen: Set[str] = set()
        for result in results:
            if result.override_key is not None:
                if result.override_key in seen:
                    entry = requests.known[result.override_key]
                    raise ConfigError(selected_twice(result.override_key, entry, result.entry))
                seen.add(result.override_key)
        return results

    # ------------------------------------------------------------ the tree

    def _expand(self, entry: Entry, requests: Requests, is_root: bool, interpolated: bool) -> _Node:
        node = _Node(entry)
        if entry.option is not None and not entry.is_missing:
            loaded = self._load(entry.config_path)
            if loaded is not None:
                entry.set_header(loaded.header)
        if requests.deletes(entry):
            return node
        requests.know(entry)
        if entry.option is None:
            return node
        if entry.is_missing:
            raise ConfigError(self._missing_text(entry))
        loaded = self._load(entry.config_path)
        if loaded is None:
            if entry.optional:
                entry.deleted = True
                return node
            raise ConfigError(self._not_found_text(entry))
        entries = parse_defaults(loaded.defaults, loaded.where)
        where = str(loaded.where)
        if entries or (is_root and requests.appended):
            _add_self(entries, where)
        if is_root:
            entries.extend(requests.appended)
        self._register_override_entries(entries, entry, requests, interpolated, where)
        children: List[Union[_Node, Entry]] = []
        for child in reversed(entries):
            self._expand_child(child, entry, requests, interpolated, children, where)
        self._expand_interpolated(children, entry, requests, where)
        if children:
            node.children = list(reversed(children))
        return node

    def _register_override_entries(
        self, entries: List[Entry], parent: Entry, requests: Requests, interpolated: bool, where: str
    ) -> None:
        last_override: Optional[Entry] = None
        for entry in entries:
            if entry.is_self:
                continue
            entry.attach(parent.group_path, parent.final_package())
            if last_override is not None and not (entry.override or entry.appended):
                raise ConfigError(
                    f"{where}: 'override {last_override.described()}' comes before '{entry.described()}'; "
                    "override entries go at the end of the defaults list"
                )
            if entry.kind == "group" and entry.override:
                last_override = entry
                if interpolated:
                    raise ConfigError(
                        f"{where}: 'override {entry.described()}': a config chosen by an interpolation "
                        "cannot hold override entries"
                    )
                requests.add_override_entry(entry, where)

    def _expand_child(
        self, child: Entry, parent: Entry, requests: Requests, interpolated: bool,
        children: List[Union[_Node, Entry]], where: str,
    ) -> None:
        if child.is_self:
            children.append(child)
            return
        if child.override:
            return
        requests.choose(child)
        if child.kind == "group" and isinstance(child.value, list):
            for option in reversed(child.options):
                if "${" in option:
                    raise ConfigError(f"{where}: defaults entry '{child.described()}': a list of options "
                                      "cannot hold interpolations")
                item = Entry("config", f"{child.name}/{option}", package=child.package, optional=child.optional,
                             where=child.where, chosen_by=child.chosen_by)
                item.attach(parent.group_path, parent.final_package())
                children.append(self._leaf_or_node(item, requests, interpolated))
            return
        if child.is_interpolation:
            children.append(child)
            return
        children.append(self._leaf_or_node(child, requests, interpolated))

    def _leaf_or_node(self, entry: Entry, requests: Requests, interpolated: bool) -> Union[_Node, Entry]:
        node = self._expand(entry, requests, is_root=False, interpolated=interpolated)
        return node if node.children is not None else entry

    def _expand_interpolated(
        self, children: List[Union[_Node, Entry]], parent: Entry, requests: Requests, where: str
    ) -> None:
        """Entries like ``- optional ds_model: ${ds}_${model}``, resolved once the other options are chosen."""
        known = {key: entry.option for key, entry in requests.known.items()}
        for index, child in enumerate(children):
            if isinstance(child, Entry) and not child.is_self and child.is_interpolation:
                _resolve_interpolation(child, known, where)
                child.attach(parent.group_path, parent.final_package())
                node = self._expand(child, requests, is_root=False, interpolated=True)
                if node.children is not None:
                    children[index] = node

    def _flatten(self, node: _Node, parent: Optional[_Node], out: List[_Result]) -> None:
        if not node.children:
            self._emit(parent, node.entry, out)
            return
        for child in node.children:
            if isinstance(child, Entry):
                self._emit(node, child, out)
            else:
                self._flatten(child, node, out)

    @staticmethod
    def _emit(tree: Optional[_Node], entry: Entry, out: List[_Result]) -> None:
        if entry.is_self:
            assert tree is not None
            if tree.entry.config_path:
                out.append(_Result(tree.entry.config_path, tree.entry.final_package(), None, tree.entry))
            return
        if entry.deleted or entry.is_missing or entry.option is None:
            return
        if entry.config_path:
            key = entry.override_key if entry.kind == "group" else None
            out.append(_Result(entry.config_path, entry.final_package(), key, entry))

    # ------------------------------------------------------------ files

    def _load(self, config_path: str) -> Optional[_Loaded]:
        if config_path == "":
            return _Loaded(OmegaConf.create({}), None, None, self.source.root)  # no primary config
        if config_path not in self._cache:
            if not self.source.exists(config_path):
                return None
            cfg, header = self.source.load(config_path)
            where = self.source.file(config_path)
            self._cache[config_path] = _Loaded(cfg, header, _pop_defaults(cfg, where), where)
        return self._cache[config_path]

    def _merge(self, result: _Result) -> None:
        loaded = self._load(result.config_path)
        assert loaded is not None, result.config_path  # _expand found it
        content, where = loaded.config, str(loaded.where)
        placed = _placed(content, result.package)
        self.parts.append(placed)
        record_origins(self.origins, placed, where)

    def _choose_written_backend(self) -> None:
        """``backend: multiprocessing`` written as a plain key selects that option, as ``backend=...`` does.

        So the backend node holds its settings and ``backend.num_workers=2``
        finds its key. A name that is no option is left as it is (an unknown
        name, which the settings check reports).
        """
        if "backend" in self.choices or any(o.key == "backend" for o in self.overrides):
            return
        part = next((part for part in reversed(self.parts) if "backend" in part), None)
        if part is None or OmegaConf.is_interpolation(part, "backend"):
            return
        name = part["backend"]
        if isinstance(name, str) and self.source.exists(f"backend/{name}"):
            composer = Composer(self.source, [Override(f"+backend={name}", ADD, "backend", (name,))])
            composer.compose(None)
            self.parts += composer.parts
            self.origins.update(composer.origins)
            self.choices.update(composer.choices)

    # ------------------------------------------------------------ messages

    def _missing_text(self, entry: Entry) -> str:
        key = entry.override_key
        options = self.source.options(entry.group_path)
        listing = f" (options: {', '.join(options)})" if options else ""
        return f"{entry.where}: You must specify '{key}': choose its option with {key}=OPTION{listing}"

    def _not_found_text(self, entry: Entry) -> str:
        if entry.kind == "config":
            return (f"{entry.where}: defaults list includes {entry.name!r}, "
                    f"but {self.source.file(entry.config_path)} does not exist")
        context = entry.chosen_by or (entry.where if entry.appended else f"{entry.where}: defaults list")
        return unknown_option(self.source, entry.group_path, str(entry.option), context)


def _add_self(entries: List[Entry], where: str) -> None:
    """A defaults list holds ``_self_`` once; without one (and with an entry that is no override) it is last."""
    selves = [entry for entry in entries if entry.is_self]
    if len(selves) > 1:
        raise ConfigError(f"{where}: _self_ is listed twice in its defaults list; keep one")
    if not selves and (any(not entry.override for entry in entries) or not entries):
        entries.append(Entry("self", where=where))


def _resolve_interpolation(entry: Entry, known: Dict[str, Optional[str]], where: str) -> None:
    text = entry.name if entry.kind == "config" else entry.value
    try:
        resolved = OmegaConf.create({**known, "_defaults_entry_": text})["_defaults_entry_"]
    except OmegaConfBaseException as error:
        keys = ", ".join(known) or "none"
        problem = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(
            f"{where}: defaults entry '{entry.described()}': cannot resolve {text!r}: {problem}; "
            f"the choices it can name: {keys}"
        ) from error
    if entry.kind == "config":
        entry.name = f"/{_join_config(entry.parent_dir, str(resolved))}"
    else:
        entry.value = str(resolved)


def _join_config(folder: str, name: str) -> str:
    return name.lstrip("/") if name.startswith("/") or not folder else f"{folder}/{name}"


def _placed(cfg: DictConfig, package: str) -> DictConfig:
    if not package:
        return cfg
    nested: Any = cfg
    for part in reversed(package.split(".")):
        nested = {part: nested}
    return OmegaConf.create(nested)


def record_origins(origins: Dict[str, str], part: DictConfig, where: str) -> None:
    """Where each top-level key (and each key of the backend node) was last set: a file or an override."""
    for key in part:
        origins[str(key)] = where
        if key == "backend" and isinstance(part[key], DictConfig):
            for option in part[key]:
                origins[f"backend.{option}"] = where


def _pop_defaults(cfg: DictConfig, where: Path) -> Any:
    if "defaults" not in cfg:
        return None
    try:
        raw = OmegaConf.to_container(cfg.defaults, resolve=False) if cfg.defaults is not None else None
    except OmegaConfBaseException as error:
        raise ConfigError(f"{where}: defaults: {omegaconf_error_text(error)}") from error
    del cfg["defaults"]
    return raw


def unknown_option(source: ConfigSource, group: str, option: str, context: str) -> str:
    options = source.options(group)
    close = difflib.get_close_matches(option, options, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    listing = f" (options: {', '.join(options)})" if options else f" ({source.root / group} holds no .yaml option)"
    return f"{context}: config group {group!r} has no option {option!r}{hint}{listing}"
