"""Composition: the config files of the defaults list merged, then the command line's overrides applied.

A group sweep (``model=a,b``) composes once per combination of options (a
:class:`Branch` each); a value sweep (``lr=0.1,0.01``) marks its node as a
dimension, which :mod:`experiment_runner.expand` turns into experiments.
"""
from __future__ import annotations

import dataclasses
import difflib
import itertools
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, AbstractSet, Any, Dict, FrozenSet, Iterator, List, Mapping, Optional, Sequence

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from ..errors import ConfigError
from ..launchers import BUILTIN_BACKEND_OPTIONS, owning_backends, settings_owner
from ..serialization import ABSENT as _ABSENT, MASK, dotted_keys as _all_keys, lookup as _lookup, mask_secrets
from ..serialization import secret_paths
from .data import PARAMETER_KEYS, RUN_KEYS, VARIATION_KEY, is_variation, omegaconf_error_text, register_resolvers
from .data import resolved_container, unresolved_container
from .defaults_list import Composer
from .files import ConfigSource, is_file
from .hydra_node import HydraAwareSource, HydraInputs, attach_hydra_node, build_hydra_node, is_hydra_override
from .hydra_node import pop_hydra_node
from .hydra_settings import HydraSettings, apply_hydra_settings, sweeper_params, warn_of_ignored, with_sweeper_params
from .overrides import ADD, DELETE, SET, Glob, Override, parse_overrides
from .secret_keys import declared_secret_keys, derived_in, named_secret_keys, near_a_secret
from .secret_keys import secret_keys_before_composing

if TYPE_CHECKING:
    from ..expand import SweepPlan


def apply_value_override(
    cfg: DictConfig, override: Override, source: ConfigSource, secret_keys: AbstractSet[str] = frozenset()
) -> None:
    """Apply ``key=value``, ``+key=value``, ``++key=value`` or ``~key`` to ``cfg`` as Hydra does.

    A dict given to an existing dict node is merged into it, not assigned
    (``db={user:root}`` keeps ``db.driver``); ``key=`` may only change keys
    that exist, down to the keys of such a dict. A sweep marks its node as a
    dimension whose values are what each value alone would have made of it.
    """
    plain = OmegaConf.to_container(cfg, resolve=False)
    current = _lookup(plain, override.key)
    exists = current is not _ABSENT
    if override.kind == DELETE:
        _delete(cfg, override, current)
        return
    if override.kind == ADD and exists and current not in (None, MASK, "???") and not any(
        isinstance(value, (dict, list)) for value in override.values
    ):
        raise ConfigError(
            f"override {override.masked_text()!r}: {override.key!r} is already in the config; "
            f"use {override.masked_text()[1:]} to change it (or +{override.masked_text()})"
        )
    if override.kind == SET and not exists and override.key not in RUN_KEYS:
        raise _unknown_key(override, plain, source, secret_keys)
    merged = [_overridden_node(current, value, override) for value in override.values]
    value: Any = {VARIATION_KEY: merged} if override.sweep else merged[0]
    try:
        OmegaConf.update(cfg, override.key, value, merge=False, force_add=True)
    except OmegaConfBaseException as error:
        raise ConfigError(f"override {override.masked_text()!r}: {omegaconf_error_text(error)}") from error


def _overridden_node(current: Any, value: Any, override: Override) -> Any:
    """What the node holding ``current`` holds once ``value`` is merged in (Hydra merges into a struct config).

    A dict merges into a dict (``key=`` cannot add keys to it, ``+``/``++``
    can); a dict or list cannot replace a node of the other kind; anything
    else replaces the node.
    """
    if current is _ABSENT or not isinstance(current, (dict, list)) or current == MASK:
        return value
    if isinstance(current, list) != isinstance(value, list) and isinstance(value, (dict, list)):
        kind = "list" if isinstance(current, list) else "dict"
        raise ConfigError(
            f"override {override.masked_text()!r}: {override.key!r} holds a {kind}; "
            f"give it a {kind}, or delete it first with ~{override.key}"
        )
    if not isinstance(value, dict):
        return value
    node = OmegaConf.create({"node": current})
    OmegaConf.set_struct(node, override.kind == SET)
    try:
        OmegaConf.update(node, "node", value, merge=True, force_add=override.kind != SET)
    except OmegaConfBaseException as error:
        raise _merge_error(override, error) from error
    return OmegaConf.to_container(node, resolve=False)["node"]


def _merge_error(override: Override, error: OmegaConfBaseException) -> ConfigError:
    if isinstance(error, ConfigKeyError) and getattr(error, "key", None) is not None:
        return ConfigError(
            f"override {override.masked_text()!r}: {override.key!r} has no key {str(error.key)!r} to merge into; "
            f"to add keys, use +{override.masked_text()}"
        )
    return ConfigError(f"override {override.masked_text()!r}: {omegaconf_error_text(error)}")


def _delete(cfg: DictConfig, override: Override, current: Any) -> None:
    if current is _ABSENT:
        raise ConfigError(f"override {override.masked_text()!r}: there is no key {override.key!r} to delete")
    if override.values and current != override.value:
        held = "not the value given" if override.secret else f"{current!r}, not {override.value!r}"
        raise ConfigError(f"override {override.masked_text()!r}: {override.key!r} is {held}")
    parent_key, _, last = override.key.rpartition(".")
    parent: Any = OmegaConf.select(cfg, parent_key) if parent_key else cfg
    if isinstance(parent, Sequence):
        raise ConfigError(
            f"override {override.masked_text()!r}: cannot delete an item of the list {parent_key!r}; "
            f"give the whole list instead ({parent_key}=[...])"
        )
    del parent[last]


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
    if near_a_secret(close, secret_keys):
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


@dataclasses.dataclass
class Branch:
    """One composition: a group sweep (``model=a,b``) makes one per combination of options."""

    config: DictConfig
    choices: Dict[str, Optional[str]]
    #: Where each top-level key and each ``backend.<key>`` was last set: a file, or ``override '...'``.
    origins: Dict[str, str] = dataclasses.field(default_factory=dict)
    #: Keys of :data:`PARAMETER_KEYS` that only the command line's ``key=value`` gave, on a config without
    #: them (``seed=7`` to seed the sampling): run settings only, as Hydra's config would not hold them.
    settings_only: List[str] = dataclasses.field(default_factory=list)
    #: Hydra's settings, as ``{hydra: ...}``: never part of the config (see :mod:`.hydra_node`).
    hydra: Optional[DictConfig] = None
    #: The Hydra settings this composition ignores, each named (with why, where a reason says more).
    ignored_hydra_settings: List[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Composition:
    """The composed config(s) of a sweep, and where they came from."""

    source: ConfigSource
    #: The primary config; None when composed without one.
    config_name: Optional[str]
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

    def hydra_containers(self) -> List[Optional[Dict[str, Any]]]:
        """Each branch's hydra node as written (what run.yaml keeps for ``${hydra:...}`` on resume)."""
        return [None if branch.hydra is None else unresolved_container(branch.hydra)["hydra"]
                for branch in self.branches]

    def to_yaml(self, resolve: bool = False) -> str:
        """What ``--cfg`` prints: each composition as YAML (secrets as ``***``, dimensions as ``${variation:...}``)."""
        from ..expand import written_dimensions

        texts = []
        written = self.containers() if resolve else [None] * len(self.branches)
        for branch, container, as_written in zip(self.branches, self.containers(resolve), written):
            head = f"# {describe_choices(branch.choices)}\n" if len(self.branches) > 1 else ""
            texts.append(head + _dump_yaml(written_dimensions(container, resolve, as_written)))
        return "---\n".join(texts)

    def plan(self) -> "SweepPlan":
        """Expand the sweep into the run's settings and its experiments (see :mod:`.expand`)."""
        from ..expand import plan_sweep

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
    config_name: Optional[str] = "config",
    overrides: Sequence[str] = (),
    now: Optional[datetime] = None,
    job_name: Optional[str] = None,
) -> Composition:
    """Compose ``<config_dir>/<config_name>.yaml`` with its defaults list and ``overrides``.

    ``config_name=None`` composes without a primary config, as Hydra does:
    the config is what the overrides add (``+db=postgresql``, ``+lr=0.1``).
    ``job_name`` is what ``${hydra:job.name}`` gives (default: ``config_name``).
    The ``hydra.sweeper.params`` of the config come before ``overrides``, as
    Hydra's basic sweeper puts them (an override of the same key wins).
    Raises :class:`ConfigError` (one line naming the file and line, or the
    override) for anything that cannot be composed.
    """
    source = ConfigSource(Path(config_dir))
    if config_name is not None and not is_file(source.root / f"{config_name}.yaml"):
        raise ConfigError(
            f"no primary config {source.file(config_name)}: create it, or choose one with "
            "--config-dir DIR and --config-name NAME"
        )
    now = now or datetime.now()
    register_resolvers(now)
    secret_keys = secret_keys_before_composing(source, config_name, overrides)
    parsed = parse_overrides(list(overrides), secret_keys)
    job_name = job_name or config_name or ""
    try:
        composition = _compose(source, config_name, parsed, now, secret_keys, job_name)
        params = sweeper_params(composition.branches[0].hydra)
    except ConfigError:
        params = sweeper_params(_written_hydra_node(source, config_name))
        if not params:
            raise
    if params:
        parsed = with_sweeper_params(parse_overrides(params, secret_keys), parsed)
        composition = _compose(source, config_name, parsed, now, secret_keys, job_name)
    warn_of_ignored(name for branch in composition.branches for name in branch.ignored_hydra_settings)
    return composition


def _written_hydra_node(source: ConfigSource, config_name: Optional[str]) -> Optional[DictConfig]:
    """The primary config's own ``hydra`` block, as ``{hydra: ...}``: where the sweeper's parameters usually are."""
    if config_name is None:
        return None
    cfg, _ = source.load(config_name)
    return OmegaConf.create({"hydra": cfg.hydra}) if "hydra" in cfg and cfg.hydra is not None else None


def _compose(
    source: ConfigSource, config_name: Optional[str], parsed: List[Override], now: datetime,
    secret_keys: FrozenSet[str], job_name: str,
) -> Composition:
    parsed = [_options_of_glob(override, source) for override in parsed]
    hydra_overrides = [o for o in parsed if is_hydra_override(o)]
    task_overrides = [o for o in parsed if not is_hydra_override(o)]
    group_overrides = [o for o in task_overrides if is_group_override(source, o)]
    value_overrides = [o for o in task_overrides if not is_group_override(source, o)]
    for override in value_overrides:
        if override.package is not None:
            raise ConfigError(f"override {override.masked_text()!r}: '@' places a config group's option, "
                              f"but there is no config group {override.key!r}")
    hydra_inputs = HydraInputs(job_name, config_name, hydra_overrides, task_overrides)
    branches = [
        _compose_branch(source, config_name, fixed, value_overrides, secret_keys, hydra_inputs,
                        any(o.sweep for o in group_overrides))
        for fixed in _group_combinations(group_overrides)
    ]
    secret_keys = secret_keys.union(*(declared_secret_keys(branch) for branch in branches))
    derived = derived_in(branches, secret_keys)
    secret_keys |= derived
    parsed = [override.with_secret_keys(secret_keys) for override in parsed]
    return Composition(source, config_name, parsed, now, branches, secret_keys, derived)


def is_group_override(source: ConfigSource, override: Override) -> bool:
    """``group=option`` chooses an option; a dict given to a group's key (``db={user: x}``) is merged into its node."""
    return source.is_group(override.key) and not any(isinstance(value, dict) for value in override.values)


def _options_of_glob(override: Override, source: ConfigSource) -> Override:
    """``group=glob(...)``: a sweep over the group's options whose names match (by name, as Hydra lists them)."""
    if not isinstance(override.value, Glob):
        return override
    if not source.is_group(override.key):
        raise ConfigError(
            f"override {override.masked_text()!r}: glob() selects options of a config group, and {override.key!r} "
            "is not one; sweep a value with key=a,b or key=choice(a,b)"
        )
    options = override.value.select(source.options(override.key))
    if not options:
        raise ConfigError(
            f"override {override.masked_text()!r}: no option of {override.key!r} matches, so no experiment would run; "
            f"its options are {', '.join(source.options(override.key))}"
        )
    return dataclasses.replace(override, values=tuple(options), sweep=True)


def _group_combinations(group_overrides: List[Override]) -> Iterator[List[Override]]:
    """The group overrides of one composition, per combination of the group sweeps."""
    per_group = [
        [dataclasses.replace(o, values=(value,), sweep=False) for value in o.values] if o.sweep else [o]
        for o in group_overrides
    ]
    for combination in itertools.product(*per_group):
        yield list(combination)


def _compose_branch(
    source: ConfigSource, config_name: Optional[str], group_overrides: List[Override],
    value_overrides: List[Override], secret_keys: FrozenSet[str], hydra_inputs: HydraInputs,
    group_sweep: bool = False,
) -> Branch:
    hydra_source = HydraAwareSource.of(source)
    composer = Composer(hydra_source, group_overrides)
    cfg = composer.compose(config_name)
    user_hydra = pop_hydra_node(cfg)
    origins = composer.origins
    origins.pop("hydra", None)
    secret_keys |= secret_paths(named_secret_keys(unresolved_container(cfg).get("secret_keys")))
    branch = Branch(cfg, composer.choices, origins)
    for override in [override.with_secret_keys(secret_keys) for override in value_overrides]:
        apply_to_branch(branch, override, source, secret_keys)
    branch.hydra = build_hydra_node(user_hydra, hydra_inputs, composer.choices, hydra_source.choices)
    settings = HydraSettings.of(branch.hydra, user_hydra, hydra_inputs.overrides, hydra_source.choices)
    branch.ignored_hydra_settings = settings.ignored
    apply_hydra_settings(cfg, origins, composer.choices, settings, source,
                         any(o.key == "backend" for o in group_overrides), group_sweep)
    attach_hydra_node(cfg, branch.hydra)
    check_run_key_typos(cfg, origins)
    return branch


def apply_to_branch(branch: Branch, override: Override, source: ConfigSource, secret_keys: AbstractSet[str]) -> None:
    """:func:`apply_value_override` on a branch, noting where the key was set and whether it is a setting only."""
    if override.kind == SET and override.key in PARAMETER_KEYS and override.key not in branch.config:
        branch.settings_only.append(override.key)
    if override.kind == DELETE and override.key in branch.settings_only:
        branch.settings_only.remove(override.key)
    apply_value_override(branch.config, override, source, secret_keys)
    if override.kind != DELETE:
        branch.origins[override.key] = f"override {override.masked_text()!r}"
        if override.key == "backend" and isinstance(override.value, dict):
            branch.origins.update({f"backend.{k}": branch.origins["backend"] for k in override.value})


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
