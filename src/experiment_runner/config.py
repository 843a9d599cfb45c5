"""Compose: primary config + defaults list + config groups + overrides, on OmegaConf.

Hydra's habits, the subset people type:

- The primary config ``<config_dir>/<config_name>.yaml`` may start with a
  ``defaults`` list: ``- model: forest`` selects ``model/forest.yaml`` of the
  config group ``model`` (a folder), placed under the key ``model`` (its
  *package*); ``# @package _global_`` at the top of an option file places it at
  the top level instead. ``- base`` includes ``base.yaml``; ``optional``
  skips a missing option; ``null`` selects nothing until overridden. An option
  may have a defaults list of its own (its groups are relative to its folder,
  or absolute with a leading ``/``). ``_self_`` places the config's own keys:
  without it they come last and override what the defaults list brought.
- Overrides (see :mod:`experiment_runner.overrides`) are applied after
  composition: group overrides change the defaults list, the others the keys.
- A *dimension* of the sweep is a node whose value is ``${variation:a,b,c}`` in
  YAML or that an override ``key=a,b,c`` (``range()``, ``choice()``) sets; a
  group override ``model=a,b`` composes once per option. Interpolations are
  resolved per experiment, so ``name: ${model.name}_${lr}`` follows the sweep.

The composed config is split by one rule: its top-level keys named in
:data:`RUN_KEYS` (the run settings of :mod:`experiment_runner.settings`, plus
``n_configs`` and ``seed`` of the sweep) and the whole ``backend`` node are
run settings; every other top-level key is an experiment parameter, passed to
pre/fit/post. A ``backend`` node (chosen from the config group ``backend``)
names its backend with ``name`` (default: the option chosen) and carries that
backend's settings (``address``, ``num_cpus``, ...).
"""
from __future__ import annotations

import dataclasses
import difflib
import errno
import io
import itertools
import re
import secrets
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, AbstractSet, Any, Dict, FrozenSet, Iterator, List, Mapping, Optional, Sequence, Set, Tuple

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .errors import ConfigError
from .launchers import BUILTIN_BACKEND_OPTIONS, BUILTIN_LAUNCHERS, available_launchers, get_launcher_class
from .launchers import owning_backends, secret_options, settings_owner
from .overrides import ADD, DELETE, FORCE_ADD, SET, Override, parse_override, parse_overrides
from .serialization import ABSENT as _ABSENT, MASK, dotted_keys as _all_keys, lookup as _lookup, mask_secrets
from .serialization import copy_plain, secret_paths
from .settings import CORE_KEYS

if TYPE_CHECKING:
    from .expand import SweepPlan

__all__ = ["RUN_KEYS", "SWEEP_KEYS", "VARIATION_KEY", "ConfigSource", "Composition", "compose", "register_resolvers"]

#: Top-level keys of the sweep itself: how many configurations to sample, and the sampling seed.
SWEEP_KEYS = frozenset({"n_configs", "seed"})
#: Top-level keys that are run settings; every other top-level key is an experiment parameter.
RUN_KEYS = CORE_KEYS | SWEEP_KEYS
#: What ``${variation:a,b}`` resolves to, and how an override ``key=a,b`` marks its node.
VARIATION_KEY = "_variation_"

#: The config groups the package ships (``backend/<name>.yaml``), searched after the user's config directory.
PACKAGE_CONF = Path(__file__).resolve().parent / "conf"

_PACKAGE_HEADER = re.compile(r"#\s*@package\s+(\S+)")


def register_resolvers(now: datetime) -> None:
    """``${now:%Y-%m-%d}`` (the time the run was composed, the same everywhere) and ``${variation:...}``."""
    _register("now", lambda pattern="%Y-%m-%d_%H-%M-%S": now.strftime(pattern))
    _register("variation", lambda *choices: {VARIATION_KEY: list(choices)})


def _register(name: str, resolver: Any) -> None:
    # OmegaConf 2.4 renamed register_new_resolver to register_resolver and deprecated the old name;
    # in 2.3 register_resolver is the old string-only API.
    if _omegaconf_version() >= (2, 4):
        OmegaConf.register_resolver(name, resolver, replace=True)
    else:
        OmegaConf.register_new_resolver(name, resolver, replace=True)


def _omegaconf_version() -> Tuple[int, ...]:
    import omegaconf

    return tuple(int(part) for part in re.findall(r"\d+", omegaconf.__version__)[:2])


# ---------------------------------------------------------------- the config directory


@dataclasses.dataclass(frozen=True)
class ConfigSource:
    """A config directory: the primary config and the config groups (sub-folders of .yaml options).

    Like Hydra's config search path, a config the directory does not hold is
    looked up in the package's own ``conf/`` (the ``backend`` group's options),
    so ``backend=multiprocessing`` works in any project.
    """

    root: Path
    fallback: Optional[Path] = PACKAGE_CONF

    @property
    def _roots(self) -> List[Path]:
        return [self.root] + ([self.fallback] if self.fallback is not None else [])

    def file(self, name: str) -> Path:
        for root in self._roots:
            if is_file(root / f"{name}.yaml"):
                return root / f"{name}.yaml"
        return self.root / f"{name}.yaml"

    def exists(self, name: str) -> bool:
        return is_file(self.file(name))

    def is_group(self, group: str) -> bool:
        return "." not in group and any(is_dir(root / group) for root in self._roots)

    def options(self, group: str) -> List[str]:
        return sorted({path.stem for root in self._roots for path in (root / group).glob("*.yaml")})

    def groups(self) -> Dict[str, List[str]]:
        """Every config group (nested ones as ``a/b``) with its options, the package's included."""
        found = {}
        folders = {f.relative_to(root).as_posix() for root in self._roots if is_dir(root)
                   for f in root.rglob("*") if f.is_dir()}
        for group in sorted(folders):
            if self.options(group):
                found[group] = self.options(group)
        return found

    def load(self, name: str) -> Tuple[DictConfig, Optional[str]]:
        """The config ``name`` and its ``# @package`` header; bad YAML names the file and line."""
        path = self.file(name)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"cannot read {path}: {error.strerror}") from error
        try:
            loaded = OmegaConf.load(io.StringIO(text))
        except yaml.MarkedYAMLError as error:
            raise ConfigError(_yaml_error_text(path, error, text)) from error
        except OmegaConfBaseException as error:
            raise ConfigError(f"{path}: {_omegaconf_error_text(error)}") from error
        if not isinstance(loaded, DictConfig):
            raise ConfigError(f"{path}: a config must be a mapping of keys, got a list")
        return loaded, _package_header(text)


def is_file(path: Path) -> bool:
    """``path.is_file()``, with a name too long for the filesystem (a 300-character key) simply absent."""
    return _holds(path, Path.is_file)


def is_dir(path: Path) -> bool:
    """``path.is_dir()``, with a name too long for the filesystem simply absent."""
    return _holds(path, Path.is_dir)


def _holds(path: Path, test: Any) -> bool:
    try:
        return bool(test(path))
    except OSError as error:
        if error.errno != errno.ENAMETOOLONG:
            raise
        return False


def _yaml_error_text(path: Path, error: yaml.MarkedYAMLError, text: str) -> str:
    """``<path>, line N: bad YAML: ...``, or ``at the end of the file`` where the parser ran out of text.

    There (an unclosed bracket or quote) PyYAML's mark is one line past the
    last, so the line where the unclosed part starts is named instead.
    """
    mark = error.problem_mark or error.context_mark
    context = f" ({error.context})" if error.context else ""
    if mark is None:
        return f"{path}: bad YAML: {error.problem}{context}"
    if mark.line < len(text.splitlines()):
        return f"{path}, line {mark.line + 1}: bad YAML: {error.problem}{context}"
    if error.context and error.context_mark is not None:
        context = f" ({error.context} that starts on line {error.context_mark.line + 1})"
    return f"{path}, at the end of the file: bad YAML: {error.problem}{context}"


#: How OmegaConf words an interpolation that leads back to itself, or to a node that holds it.
_CYCLE_MESSAGES = ("Recursive interpolation detected", "Interpolation to parent node detected", "RecursionError")


def _omegaconf_error_text(error: OmegaConfBaseException) -> str:
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    full_key = getattr(error, "full_key", None)
    if full_key and any(message in first for message in _CYCLE_MESSAGES):
        return (f"{full_key!r} refers to itself: its interpolation leads back to it or to a node holding it "
                "(like a: ${b} with b: ${a})")
    return f"{first} (at {full_key})" if full_key else first


def _package_header(text: str) -> Optional[str]:
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line.lstrip().startswith("#"):
            return None
        match = _PACKAGE_HEADER.match(line.strip())
        if match:
            return match.group(1)
    return None


# ---------------------------------------------------------------- the defaults list


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


class _Composer:
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
            _record_origins(self.origins, placed, str(where))
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
                _record_origins(self.origins, placed, f"override {override.text!r}" if override else str(where))
                return
            context = f"override {override.text!r}" if override is not None else f"{where}: defaults list"
            raise ConfigError(_unknown_option(self.source, group, option, context))
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


def _record_origins(origins: Dict[str, str], part: DictConfig, where: str) -> None:
    """Where each top-level key (and each key of the backend node) was last set: a file or an override."""
    for key in part:
        origins[str(key)] = where
        if key == "backend" and isinstance(part[key], DictConfig):
            for option in part[key]:
                origins[f"backend.{option}"] = where


def _is_plugin_backend(name: str) -> bool:
    """A backend an installed plugin registers (it ships no option file; its node is just its name)."""
    from .launchers import available_launchers

    return name in available_launchers()


def _pop_defaults(cfg: DictConfig, where: Path) -> Any:
    if "defaults" not in cfg:
        return None
    try:
        raw = OmegaConf.to_container(cfg.defaults, resolve=False) if cfg.defaults is not None else None
    except OmegaConfBaseException as error:
        raise ConfigError(f"{where}: defaults: {_omegaconf_error_text(error)}") from error
    del cfg["defaults"]
    return raw


def _group_not_in_defaults(override: Override) -> str:
    if override.kind == DELETE:
        return f"override {override.text!r}: config group {override.key!r} is not in the defaults list"
    return (
        f"override {override.text!r}: config group {override.key!r} is not in the defaults list; "
        f"to add it, use +{override.key}={override.value}"
    )


def _unknown_option(source: ConfigSource, group: str, option: str, context: str) -> str:
    options = source.options(group)
    close = difflib.get_close_matches(option, options, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    listing = f" (options: {', '.join(options)})" if options else f" ({source.root / group} holds no .yaml option)"
    return f"{context}: config group {group!r} has no option {option!r}{hint}{listing}"


# ---------------------------------------------------------------- value overrides


def _apply_value_override(
    cfg: DictConfig, override: Override, source: ConfigSource, secret_keys: AbstractSet[str] = frozenset()
) -> None:
    plain = OmegaConf.to_container(cfg, resolve=False)
    current = _lookup(plain, override.key)
    exists = current is not _ABSENT
    value: Any = {VARIATION_KEY: list(override.values)} if override.sweep else override.value
    if override.kind == DELETE:
        _delete(cfg, override, current)
        return
    if override.kind == ADD and exists and current != MASK:
        raise ConfigError(
            f"override {override.masked_text()!r}: {override.key!r} is already in the config; "
            f"use {override.masked_text()[1:]} to change it (or ++{override.masked_text()[1:]})"
        )
    if override.kind == SET and not exists and override.key not in RUN_KEYS:
        raise _unknown_key(override, plain, source, secret_keys)
    try:
        OmegaConf.update(cfg, override.key, value, merge=False, force_add=True)
    except OmegaConfBaseException as error:
        raise ConfigError(f"override {override.masked_text()!r}: {_omegaconf_error_text(error)}") from error


def _delete(cfg: DictConfig, override: Override, current: Any) -> None:
    if current is _ABSENT:
        raise ConfigError(f"override {override.masked_text()!r}: there is no key {override.key!r} to delete")
    if override.values and current != override.value:
        held = "not the value given" if override.secret else f"{current!r}, not {override.value!r}"
        raise ConfigError(f"override {override.masked_text()!r}: {override.key!r} is {held}")
    parent_key, _, last = override.key.rpartition(".")
    parent: Any = OmegaConf.select(cfg, parent_key) if parent_key else cfg
    del parent[int(last) if isinstance(parent, Sequence) else last]


def _unknown_key(override: Override, plain: Any, source: ConfigSource, secret_keys: AbstractSet[str]) -> ConfigError:
    """The error of an override whose key the config lacks, naming the closest keys.

    When one of them is a secret (or holds or lies inside one), the override most
    likely meant to set it, so its value is masked in the whole message.
    """
    if "/" in override.key:
        groups = list(source.groups())
        close = difflib.get_close_matches(override.key, groups, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return ConfigError(f"override {override.masked_text()!r}: there is no config group {override.key!r}{hint}")
    backend = plain.get("backend") if isinstance(plain, dict) else None
    foreign = _other_backends_setting_override(override, backend)
    if foreign is not None:
        return foreign
    if override.key.startswith("backend.") and isinstance(backend, str):
        return ConfigError(
            f"override {override.masked_text()!r}: the config has no key {override.key!r}: backend is {backend!r}, "
            f"a name without the backend's settings; choose its option with backend=NAME, then set "
            f"{override.masked_text()}"
        )
    keys = list(dict.fromkeys([*_all_keys(plain), *sorted(RUN_KEYS - set(plain)), *source.groups()]))
    close = _closest(override.key, keys)
    if _near_a_secret(close, secret_keys):
        override = dataclasses.replace(override, secret=True)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return ConfigError(
        f"override {override.masked_text()!r}: the config has no key {override.key!r}{hint} "
        f"(to add a new key, use +{override.masked_text()})"
    )


def _other_backends_setting_override(override: Override, backend: Any) -> Optional[ConfigError]:
    """``backend.num_workers=4`` where the backend node is single's: the error that says whose setting it is.

    Without a backend node the run's backend is single, the default.
    """
    name = backend.get("name") if isinstance(backend, dict) else "single" if backend is None else None
    if not override.key.startswith("backend.") or not isinstance(name, str) or name not in BUILTIN_BACKEND_OPTIONS:
        return None
    setting = override.key.split(".")[1]
    owners = owning_backends(setting, BUILTIN_BACKEND_OPTIONS[name])
    if not owners:
        return None
    text = override.masked_text()
    return other_backends_setting(f"override {text!r}", setting, owners, name, text.lstrip("+"))


def other_backends_setting(
    where: str, key: str, owners: Sequence[str], backend: str, override_text: Optional[str] = None
) -> ConfigError:
    """Another backend's setting in the backend node: whose it is and how to choose that backend.

    ``override_text`` is the override that set it, as it may be shown
    (``backend.num_workers=4``); None when a config file set it.
    """
    choose = f"backend={owners[0]}"
    fix = f"({choose} {override_text})" if override_text else "or remove it there"
    return ConfigError(f"{where}: {settings_owner([key], owners)}, not of backend={backend}; choose {choose} {fix}")


def _near_a_secret(keys: Sequence[str], secret_keys: AbstractSet[str]) -> bool:
    """Whether one of ``keys`` is a secret, lies inside one (``db.password.old``) or holds one (``db``)."""
    return any(key == path or key.startswith(f"{path}.") or path.startswith(f"{key}.")
               for key in keys for path in secret_keys)


def _closest(key: str, keys: List[str]) -> List[str]:
    """Close matches on the whole dotted key, else on its last part (``lrr`` finds ``model.lr``).

    The key's own parents (``data`` for ``data.sise``) are no suggestion.
    """
    keys = [k for k in keys if not key.startswith(f"{k}.")]
    close = difflib.get_close_matches(key, keys, n=3)
    if close:
        return close
    last = key.rsplit(".", 1)[-1]
    lasts = {k: k.rsplit(".", 1)[-1] for k in keys}
    names = set(difflib.get_close_matches(last, set(lasts.values()), n=3))
    return [k for k, name in lasts.items() if name in names][:3]


# ---------------------------------------------------------------- composition


@dataclasses.dataclass
class Branch:
    """One composition: a group sweep (``model=a,b``) makes one per combination of options."""

    config: DictConfig
    choices: Dict[str, Optional[str]]
    #: Where each top-level key and each ``backend.<key>`` was last set: a file, or ``override '...'``.
    origins: Dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Composition:
    """The composed config(s) of a sweep, and where they came from."""

    source: ConfigSource
    config_name: str
    overrides: List[Override]
    now: datetime
    branches: List[Branch]
    #: The dotted keys whose values are secret (see :func:`experiment_runner.serialization.secret_paths`),
    #: ``derived_secret_keys`` included.
    secret_keys: FrozenSet[str] = frozenset()
    #: The keys whose values read a secret through an interpolation (see :func:`derived_secret_keys`).
    derived_secret_keys: FrozenSet[str] = frozenset()

    @property
    def config(self) -> DictConfig:
        return self.branches[0].config

    @property
    def choices(self) -> Dict[str, Optional[str]]:
        return self.branches[0].choices

    def written(self, key: str) -> Any:
        """A top-level key's value as written, before interpolations are resolved (None if absent)."""
        return unresolved_container(self.config).get(key)

    def resolve_text(self, text: str) -> Any:
        """``text`` resolved with this composition's resolvers (``${now:...}`` gives its time)."""
        register_resolvers(self.now)
        return OmegaConf.create({"value": text}).value

    def containers(self, resolve: bool = False) -> List[Dict[str, Any]]:
        """Each branch as plain data, secrets masked; resolved, dimensions show as ``{_variation_: [...]}``."""
        register_resolvers(self.now)
        container = resolved_container if resolve else unresolved_container
        return [mask_secrets(container(branch.config), self.secret_keys) for branch in self.branches]

    def to_yaml(self, resolve: bool = False) -> str:
        """What ``--cfg`` prints: each composition as YAML (secrets as ``***``, dimensions as ``${variation:...}``)."""
        from .expand import written_dimensions

        texts = []
        written = self.containers() if resolve else [None] * len(self.branches)
        for branch, container, as_written in zip(self.branches, self.containers(resolve), written):
            head = f"# {describe_choices(branch.choices)}\n" if len(self.branches) > 1 else ""
            texts.append(head + _dump_yaml(written_dimensions(container, resolve, as_written)))
        return "---\n".join(texts)

    def plan(self) -> "SweepPlan":
        """Expand the sweep into the run's settings and its experiments (see :mod:`.expand`)."""
        from .expand import plan_sweep

        return plan_sweep(self)


def describe_choices(choices: Mapping[str, Optional[str]]) -> str:
    return " ".join(f"{group}={option}" for group, option in choices.items())


def _dump_yaml(data: Any) -> str:
    """Block style, with lists of scalars and variations on one line (``lr: {_variation_: [0.1, 0.01]}``)."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


class _Dumper(yaml.SafeDumper):
    """A YAML dumper that keeps short, flat collections on one line."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flat = all(not isinstance(item, (dict, list)) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


def _represent_dict(dumper: yaml.SafeDumper, data: dict) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=is_variation(data) or None)


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(dict, _represent_dict)


def compose(
    config_dir: Any,
    config_name: str = "config",
    overrides: Sequence[str] = (),
    now: Optional[datetime] = None,
) -> Composition:
    """Compose ``<config_dir>/<config_name>.yaml`` with its defaults list and ``overrides``.

    Raises :class:`ConfigError` (one line naming the file and line, or the
    override) for anything that cannot be composed.
    """
    source = ConfigSource(Path(config_dir))
    if not is_file(source.root / f"{config_name}.yaml"):
        raise ConfigError(
            f"no primary config {source.file(config_name)}: create it, or choose one with "
            "--config-dir DIR and --config-name NAME"
        )
    now = now or datetime.now()
    register_resolvers(now)
    secret_keys = _secret_keys_before_composing(source, config_name, overrides)
    parsed = parse_overrides(list(overrides), secret_keys)
    group_overrides = [o for o in parsed if source.is_group(o.key)]
    value_overrides = [o for o in parsed if not source.is_group(o.key)]
    branches = [
        _compose_branch(source, config_name, fixed, value_overrides, secret_keys)
        for fixed in _group_combinations(group_overrides)
    ]
    secret_keys = secret_keys.union(*(declared_secret_keys(branch) for branch in branches))
    derived = _derived_in(branches, secret_keys)
    secret_keys |= derived
    parsed = [override.with_secret_keys(secret_keys) for override in parsed]
    return Composition(source, config_name, parsed, now, branches, secret_keys, derived)


def _secret_keys_before_composing(source: ConfigSource, config_name: str, texts: Sequence[str]) -> FrozenSet[str]:
    """The secret keys known before composing, so that no message about an override shows a secret.

    The backends' secret settings, and the ``secret_keys`` that the primary
    config or an override names; an option file that sets ``secret_keys``
    counts from its composition on.
    """
    names = []
    try:
        names += _named_secret_keys(unresolved_container(source.load(config_name)[0]).get("secret_keys"))
    except ConfigError:
        pass  # composing loads it again and raises this error then
    for text in texts:
        if text.lstrip("+").partition("=")[0].strip() == "secret_keys":
            try:
                names += _named_secret_keys(parse_override(text).value)
            except ConfigError:
                pass  # parsing every override raises this error next
    return secret_paths(names, secret_options())


def declared_secret_keys(branch: "Branch") -> FrozenSet[str]:
    """The secret keys of a composed config: its ``secret_keys``, and its backend's secret settings."""
    container = unresolved_container(branch.config)
    names = _named_secret_keys(container.get("secret_keys"))
    return secret_paths(names, secret_options(_plugin_backend_class(container, branch.choices)))


def _derived_in(branches: Sequence["Branch"], secret_keys: FrozenSet[str]) -> FrozenSet[str]:
    return frozenset().union(*(derived_secret_keys(branch.config, secret_keys) for branch in branches))


def derived_secret_keys(config: Any, secret_keys: AbstractSet[str]) -> FrozenSet[str]:
    """The keys of ``config`` whose values read one of ``secret_keys`` through an interpolation: secrets too.

    ``header: Bearer ${api_key}``, ``${.api_key}`` (relative), ``${oc.select:api_key,none}``, or a key
    that reads such a key. ``config`` is a DictConfig or its unresolved container. Each value that
    interpolates is resolved in a copy of the config whose secrets hold a marker: a value that then holds
    the marker reads a secret, whatever form its interpolation takes. One that cannot be resolved here (an
    unset environment variable) counts as reading a secret when its text names one.
    """
    plain = config if isinstance(config, dict) else unresolved_container(config)
    present = frozenset(path for path in secret_keys if _lookup(plain, path) is not _ABSENT)
    if not present:
        return frozenset()
    marker = f"secret-marker-{secrets.token_hex(8)}"
    probe = copy_plain(plain)
    for path in present:
        _put_marker(probe, path, marker)
    probe_config = OmegaConf.create(probe)
    return frozenset(
        path for path, node in _interpolating_values(plain)
        if not _near_a_secret([path], present) and _reads_marker(probe_config, path, node, marker, present)
    )


def _put_marker(config: Dict[str, Any], path: str, marker: str) -> None:
    """Replace each value of the secret at ``path`` (each leaf of a dict or list) by ``marker``."""
    def marked(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: marked(child) for key, child in value.items()}
        if isinstance(value, list):
            return [marked(child) for child in value]
        return marker

    parent_path, _, last = path.rpartition(".")
    parent = _lookup(config, parent_path) if parent_path else config
    key: Any = int(last) if isinstance(parent, list) else last
    parent[key] = marked(parent[key])


def _interpolating_values(node: Any, path: str = "") -> Iterator[Tuple[str, Any]]:
    """(dotted key, value) of each value that holds ``${...}``; a dimension counts as one value."""
    if isinstance(node, str) or is_variation(node):
        if "${" in str(node):
            yield path, node
        return
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield from _interpolating_values(child, f"{path}.{key}" if path else str(key))


def _reads_marker(probe: DictConfig, path: str, written: Any, marker: str, secret_keys: AbstractSet[str]) -> bool:
    try:
        value = OmegaConf.select(probe, path)
        if isinstance(value, (DictConfig, ListConfig)):
            value = OmegaConf.to_container(value, resolve=True)
    except OmegaConfBaseException:
        names = {key.rpartition(".")[2] for key in secret_keys}
        return any(re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", str(written)) for name in names)
    return marker in str(value)


def _named_secret_keys(value: Any) -> List[str]:
    """The names a ``secret_keys`` setting gives (a malformed one is an error of the run's settings, later)."""
    if isinstance(value, str):
        return [value]
    return [name for name in value if isinstance(name, str)] if isinstance(value, list) else []


def _plugin_backend_class(container: Dict[str, Any], choices: Mapping[str, Optional[str]]) -> Optional[type]:
    """The launcher class of a backend that a plugin registers, which may declare secret settings of its own."""
    node = container.get("backend")
    name = (node.get("name") if isinstance(node, dict) else node) or choices.get("backend")
    if not isinstance(name, str) or name in BUILTIN_LAUNCHERS or name not in available_launchers():
        return None
    return get_launcher_class(name)


def _group_combinations(group_overrides: List[Override]) -> Iterator[Dict[str, Override]]:
    """One dict group -> single-option override per combination of the group sweeps."""
    per_group = [
        [dataclasses.replace(o, values=(value,), sweep=False) for value in o.values] if o.sweep else [o]
        for o in group_overrides
    ]
    for combination in itertools.product(*per_group):
        yield {override.key: override for override in combination}


def _compose_branch(
    source: ConfigSource, config_name: str, group_overrides: Dict[str, Override], value_overrides: List[Override],
    secret_keys: FrozenSet[str],
) -> Branch:
    composer = _Composer(source, group_overrides)
    cfg = composer.compose(config_name)
    origins = composer.origins
    secret_keys |= secret_paths(_named_secret_keys(unresolved_container(cfg).get("secret_keys")))
    for override in [override.with_secret_keys(secret_keys) for override in value_overrides]:
        _apply_value_override(cfg, override, source, secret_keys)
        if override.kind != DELETE:
            origins[override.key] = f"override {override.masked_text()!r}"
            if override.key == "backend" and isinstance(override.value, dict):
                origins.update({f"backend.{k}": origins["backend"] for k in override.value})
    check_run_key_typos(cfg, origins)
    return Branch(cfg, composer.choices, origins)


#: Parameter names that real projects use and that happen to be one edit away from a run setting.
_COMMON_PARAMETER_NAMES = frozenset({"secret_key"})


def check_run_key_typos(cfg: DictConfig, origins: Mapping[str, str]) -> None:
    """A top-level key one typo away from a run setting (``repetitons``) is an error, not a parameter.

    One edit (insert, delete, substitute, swap two neighbours) away, at least
    5 characters long, and not just the setting's name plus ``s`` (a
    ``seeds`` list is a legitimate parameter) nor a common parameter name
    (``secret_key``, beside the setting ``secret_keys``).
    """
    for key in cfg:
        key = str(key)
        if key in RUN_KEYS or len(key) < 5:
            continue
        for name in sorted(RUN_KEYS):
            if key != f"{name}s" and key not in _COMMON_PARAMETER_NAMES and _one_edit_apart(key, name):
                where = origins.get(key, "the config")
                raise ConfigError(
                    f"{where}: top-level key {key!r} looks like the run setting {name!r} misspelt; "
                    f"write {name} (or rename the parameter if it is one)"
                )


def _one_edit_apart(a: str, b: str) -> bool:
    """True when one insertion, deletion, substitution or swap of neighbours turns ``a`` into ``b``."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    short, long = (a, b) if len(a) < len(b) else (b, a)
    for i in range(len(long)):
        if long[:i] + long[i + 1:] == short:
            return True
    return False


def recompose(
    config_dir: Any,
    config_name: str,
    recorded: Sequence[Mapping[str, Any]],
    recorded_overrides: Sequence[str],
    overrides: Sequence[str] = (),
    now: Optional[datetime] = None,
) -> Composition:
    """The sweep a run recorded, rebuilt from run.yaml rather than from the config files now.

    ``recorded`` holds, per branch, ``config`` (the composed config as
    written, secrets as ``***``), ``choices`` and ``origins``. ``overrides``
    are applied on top (a group override loads its option from the files).
    A secret was not recorded: an override gives it again, else it is taken
    from the config files as they are now, else it is an error.
    """
    source = ConfigSource(Path(config_dir))
    now = now or datetime.now()
    register_resolvers(now)
    secret_keys = _secret_keys_before_composing(source, config_name, overrides) | secret_paths(
        name for branch in recorded for name in _named_secret_keys(dict(branch["config"]).get("secret_keys"))
    )
    replayed = parse_overrides([o for o in recorded_overrides if not o.endswith(f"={MASK}")], secret_keys)
    parsed = parse_overrides(list(overrides), secret_keys)
    branches = []
    for index, branch in enumerate(recorded):
        cfg = OmegaConf.create(dict(branch["config"]))
        origins = dict(branch.get("origins") or {})
        choices = dict(branch.get("choices") or {})
        for override in parsed:
            if source.is_group(override.key):
                _reselect_group(cfg, override, source, choices, origins)
            else:
                _apply_value_override(cfg, override, source, secret_keys)
                if override.kind != DELETE:
                    origins[override.key] = f"override {override.masked_text()!r}"
        check_run_key_typos(cfg, origins)
        branches.append(Branch(cfg, choices, origins))
    _fill_secrets(branches, source, config_name, replayed, now)
    secret_keys = secret_keys.union(*(declared_secret_keys(branch) for branch in branches))
    derived = _derived_in(branches, secret_keys)
    secret_keys |= derived
    overrides_now = [override.with_secret_keys(secret_keys) for override in replayed + parsed]
    return Composition(source, config_name, overrides_now, now, branches, secret_keys, derived)


def _reselect_group(
    cfg: DictConfig, override: Override, source: ConfigSource, choices: Dict[str, Optional[str]],
    origins: Dict[str, str],
) -> None:
    """``group=option`` on a recomposed config: the group's node is replaced by the option's."""
    if override.sweep:
        raise ConfigError(f"override {override.text!r}: a resumed run cannot sweep a config group")
    package = override.key.replace("/", ".")
    if OmegaConf.select(cfg, package) is not None or package in cfg:
        parent_key, _, last = package.rpartition(".")
        parent: Any = OmegaConf.select(cfg, parent_key) if parent_key else cfg
        del parent[last]
    if override.kind == DELETE or override.value is None:
        choices[override.key] = None
        return
    option = str(override.value)
    if not source.exists(f"{override.key}/{option}"):
        raise ConfigError(_unknown_option(source, override.key, option, f"override {override.text!r}"))
    composer = _Composer(source, {})
    composer._visit(f"{override.key}/{option}", override.key)
    merged = OmegaConf.merge(cfg, *composer.parts)
    assert isinstance(merged, DictConfig)
    for key in list(cfg):
        del cfg[key]
    cfg.merge_with(merged)
    choices[override.key] = option
    origins.update(composer.origins)


def _masked_paths(node: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if value == MASK:
                yield path
            else:
                yield from _masked_paths(value, path)


def _fill_secrets(
    branches: List[Branch], source: ConfigSource, config_name: str, replayed: List[Override], now: datetime
) -> None:
    """Secrets still ``***``: their value as the config files give it now, else an error."""
    current: Optional[List[Branch]] = None
    for index, branch in enumerate(branches):
        for path in list(_masked_paths(unresolved_container(branch.config))):
            if current is None:
                try:
                    current = compose(source.root, config_name, [o.text for o in replayed], now=now).branches
                except ConfigError:
                    current = []
            found = _ABSENT
            if current:
                found = _lookup(unresolved_container(current[min(index, len(current) - 1)].config), path)
            if found is _ABSENT or found == MASK:
                raise ConfigError(
                    f"the secret {path!r} was not recorded in run.yaml and the config files do not give it: "
                    f"pass it again, e.g. {path}=..."
                )
            OmegaConf.update(branch.config, path, found, merge=False)


def unresolved_container(cfg: DictConfig) -> Dict[str, Any]:
    """The config as plain data, ``${...}`` left as written."""
    container = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(container, dict)
    return container


def resolved_container(cfg: DictConfig, where: str = "the config") -> Dict[str, Any]:
    """The config as plain data, interpolations resolved (a dimension becomes ``{_variation_: [...]}``)."""
    try:
        container = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as error:
        raise ConfigError(f"cannot resolve {where}: {_omegaconf_error_text(error)}") from error
    assert isinstance(container, dict)
    return container


def is_variation(node: Any) -> bool:
    """True for a dimension as resolved, or as a sweep override marks it: ``{_variation_: [...]}``."""
    return isinstance(node, dict) and VARIATION_KEY in node
