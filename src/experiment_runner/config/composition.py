"""Composition: the config files of the defaults list merged, then the command line's overrides applied.

A group sweep (``model=a,b``) composes once per combination of options (a
:class:`Branch` each); a value sweep (``lr=0.1,0.01``) marks its node as a
dimension, which :mod:`experiment_runner.expand` turns into experiments.
"""
from __future__ import annotations

import dataclasses
import itertools
from datetime import datetime
from typing import AbstractSet, Any, Dict, FrozenSet, Iterator, List, Mapping, Optional, Sequence

import yaml
from omegaconf import DictConfig, OmegaConf

from ..errors import ConfigError
from ..omegaconf_plain import resolved_container, unresolved_container
from ..serialization import mask_secrets, secret_paths
from .data import PARAMETER_KEYS, is_interval, is_variation
from .defaults_list import Composer
from .files import ConfigSource
from .hydra_node import HydraAwareSource, HydraInputs, build_hydra_node, is_hydra_override, job_override
from .hydra_node import per_experiment_values, pop_hydra_node
from .hydra_resolver import attach_hydra_node
from .hydra_settings import HydraSettings, apply_hydra_settings, choose_launcher_backend, sweeper_params
from .hydra_settings import is_multirun, warn_of_ignored, with_sweeper_params
from .overrides import DELETE, SET, Override, parse_overrides
from .resolvers import register_resolvers
from .secret_keys import declared_secret_keys, derived_in, named_secret_keys, secret_keys_before_composing
from .value_overrides import apply_value_override, check_run_key_typos
from .written import written_dimensions


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
    #: ``${hydra:key}`` that each experiment resolves itself, as interpolations (see :func:`per_experiment_values`).
    per_experiment_hydra: Dict[str, str] = dataclasses.field(default_factory=dict)
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

    def to_yaml(self, resolve: bool = False, part: str = "job", package: Optional[str] = None) -> str:
        """What ``--cfg`` prints: each composition as YAML (secrets as ``***``, dimensions as ``${variation:...}``).

        ``part`` and ``package`` are Hydra's: ``job`` the config, ``hydra`` the
        hydra node, ``all`` the config and its hydra node; ``package`` (``db``)
        only that node of it, headed ``# @package db``.
        """
        texts = []
        written = self.containers() if resolve else [None] * len(self.branches)
        for branch, container, as_written in zip(self.branches, self.containers(resolve), written):
            head = f"# {describe_choices(branch.choices)}\n" if len(self.branches) > 1 else ""
            job = written_dimensions(container, resolve, as_written) if part != "hydra" else {}
            data: Any = {**job, **(self._hydra_part(branch, resolve) if part != "job" else {})}
            if package and package != "_global_":
                data = _node_at(data, package)
                if not isinstance(data, (dict, list)):
                    texts.append(head + f"{data}\n")  # a value alone, as Hydra prints it
                    continue
                head += f"# @package {package}\n"
            texts.append(head + _dump_yaml(data))
        return "---\n".join(texts)

    def _hydra_part(self, branch: Branch, resolve: bool) -> Dict[str, Any]:
        if branch.hydra is None:
            return {}
        node = resolved_container(branch.hydra, "the hydra node") if resolve else unresolved_container(branch.hydra)
        return {"hydra": node["hydra"]}


def _node_at(data: Dict[str, Any], package: str) -> Any:
    node: Any = data
    for part in package.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"--package {package}: the config has no node {package!r}")
        node = node[part]
    return node


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
    multirun: bool = False,
) -> Composition:
    """Compose ``<config_dir>/<config_name>.yaml`` with its defaults list and ``overrides``.

    ``config_name=None`` composes without a primary config, as Hydra does:
    the config is what the overrides add (``+db=postgresql``, ``+lr=0.1``).
    ``job_name`` is what ``${hydra:job.name}`` gives (default: ``config_name``).
    ``multirun`` is Hydra's ``-m``, as is ``hydra.mode: MULTIRUN`` (on the
    command line or in a config's ``hydra:`` block): the config's
    ``hydra.sweeper.params`` then come before ``overrides``, as Hydra's basic
    sweeper puts them (an override of the same key wins), and
    ``hydra.sweep.dir`` is the out_path even when nothing sweeps. Without it
    they are named in the ignored-settings line, as Hydra's plain run ignores
    them (``overrides`` may still sweep here).
    Raises :class:`ConfigError` (one line naming the file and line, or the
    override) for anything that cannot be composed.
    """
    source = ConfigSource.at(config_dir)
    if config_name is not None and not source.exists(config_name):
        raise ConfigError(
            f"no primary config {source.file(config_name)}: create it, or choose one with "
            "--config-dir DIR and --config-name NAME"
        )
    now = now or datetime.now()
    register_resolvers(now)
    secret_keys = secret_keys_before_composing(source, config_name, overrides)
    parsed = parse_overrides(list(overrides), secret_keys)
    job_name = job_name or config_name or ""
    notes: List[str] = []
    composition: Optional[Composition] = None
    failure: Optional[ConfigError] = None
    try:
        composition = _compose(source, config_name, parsed, now, secret_keys, job_name, multirun)
        node = composition.branches[0].hydra
    except ConfigError as error:  # it may compose once the sweeper's parameters apply (defaults: [db: ???])
        failure, node = error, _written_hydra_node(source, config_name, parsed, job_name, multirun)
    params = sweeper_params(node)
    as_multirun = is_multirun(node, multirun, notes)
    if failure is not None and not (params and as_multirun):
        raise failure
    if params and as_multirun:
        parsed = with_sweeper_params(parse_overrides(params, secret_keys), parsed)
    elif params:
        notes.append("hydra.sweeper.params (they apply with -m/--multirun or hydra.mode=MULTIRUN, as in Hydra)")
    if composition is None or as_multirun != multirun or (params and as_multirun):
        composition = _compose(source, config_name, parsed, now, secret_keys, job_name, as_multirun)
    warn_of_ignored([*notes, *(name for branch in composition.branches for name in branch.ignored_hydra_settings)])
    _check_intervals_are_searched(composition)
    return composition


def _check_intervals_are_searched(composition: Composition) -> None:
    """An override ``key=interval(a,b)`` is a range to sample: only an adaptive search (``search=optuna``) can."""
    search = composition.config.get("search")
    if search is not None and (search.get("name") if isinstance(search, DictConfig) else search) != "grid":
        return
    for override in composition.overrides:
        if any(is_interval(value) for value in override.values):
            raise ConfigError(f"override {override.masked_text()!r}: interval() needs an adaptive search: add "
                              "search=optuna (or sweep over choice() or range() values)")


def _written_hydra_node(
    source: ConfigSource, config_name: Optional[str], parsed: List[Override], job_name: str, multirun: bool,
) -> Optional[DictConfig]:
    """The hydra node of the primary config's own ``hydra`` block and the command line's ``hydra.*`` overrides.

    Where the sweeper's parameters are when the config cannot compose without
    them (``defaults: [db: ???]`` swept by ``hydra.sweeper.params.db``): the
    command line changes them here too, as Hydra applies its overrides first.
    """
    if config_name is None:
        return None
    hydra_source = HydraAwareSource.of(source)
    cfg, _ = hydra_source.load(config_name)
    hydra_overrides = [o for o in parsed if is_hydra_override(o) and not is_group_override(source, o)]
    inputs = HydraInputs(job_name, config_name, hydra_overrides,
                         [o for o in parsed if not is_hydra_override(o)], multirun or any(o.sweep for o in parsed))
    return build_hydra_node(pop_hydra_node(cfg), inputs, {}, hydra_source.choices)


def _compose(
    source: ConfigSource, config_name: Optional[str], parsed: List[Override], now: datetime,
    secret_keys: FrozenSet[str], job_name: str, multirun: bool,
) -> Composition:
    parsed = [_options_of_glob(override, source) for override in parsed]
    # hydra=default chooses an option of the project's own hydra group: a group override, yet Hydra's
    # (not in job.override_dirname)
    hydra_overrides = [o for o in parsed if is_hydra_override(o) and not is_group_override(source, o)]
    task_overrides = [o for o in parsed if not is_hydra_override(o)]
    group_overrides = [o for o in parsed if is_group_override(source, o)]
    value_overrides = [o for o in task_overrides if not is_group_override(source, o)]
    for override in value_overrides:
        if override.package is not None:
            raise ConfigError(f"override {override.masked_text()!r}: '@' places a config group's option, "
                              f"but there is no config group {override.key!r}")
    hydra_inputs = HydraInputs(job_name, config_name, hydra_overrides, task_overrides,
                               multirun or any(o.sweep for o in parsed))
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
    from .sweep_functions import Glob  # imported with the overrides read: none, none imported (overrides.py)

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
    branch = Branch(cfg, composer.choices, origins, settings_only_after(cfg, value_overrides))
    hydra_inputs = dataclasses.replace(hydra_inputs, task_overrides=_job_overrides(hydra_inputs, group_overrides),
                                       seed_is_setting_only="seed" in branch.settings_only)
    branch.hydra = build_hydra_node(user_hydra, hydra_inputs, composer.choices, hydra_source.choices)
    branch.per_experiment_hydra = per_experiment_values(branch.hydra, hydra_inputs)
    settings = HydraSettings.of(branch.hydra, user_hydra, hydra_inputs.overrides, hydra_source.choices)
    branch.ignored_hydra_settings = settings.ignored
    choose_launcher_backend(cfg, origins, composer.choices, settings, source,
                            any(o.key == "backend" for o in group_overrides))
    unswept = cfg.copy()
    for override in [override.with_secret_keys(secret_keys) for override in value_overrides]:
        apply_to_branch(branch, override, source, secret_keys)
        if not override.sweep:
            apply_value_override(unswept, override, source, secret_keys)
    apply_hydra_settings(cfg, origins, settings, group_sweep or hydra_inputs.multirun)
    if origins.get("out_path") == settings.origin("hydra.sweep.dir"):
        _sweep_dir_without_the_sweep(cfg, unswept, branch.hydra)
    attach_hydra_node(cfg, branch.hydra)
    check_run_key_typos(cfg, origins)
    return branch


def _sweep_dir_without_the_sweep(cfg: DictConfig, unswept: DictConfig, hydra: DictConfig) -> None:
    """``hydra.sweep.dir: logs/${task_name}`` with ``task_name=a,b``: Hydra resolves the sweep's folder once,
    from the config without the sweep's values; so does the out_path it becomes, where the sweep changes it."""
    unswept.out_path = unresolved_container(cfg)["out_path"]
    attach_hydra_node(unswept, hydra)
    attach_hydra_node(cfg, hydra)
    once = resolved_container(unswept, "hydra.sweep.dir")["out_path"]
    try:
        swept = resolved_container(cfg)["out_path"]
    except ConfigError:
        swept = None
    if swept != once:
        cfg.out_path = once


def _job_overrides(hydra_inputs: HydraInputs, group_overrides: List[Override]) -> List[Override]:
    """The task's overrides as this branch's jobs have them: each group sweep at the branch's option."""
    chosen = {o.text: o for o in group_overrides}
    return [job_override(o, chosen[o.text].value) if o.sweep and o.text in chosen else o
            for o in hydra_inputs.task_overrides]


def settings_only_after(config: DictConfig, overrides: Sequence[Override], settings_only: Sequence[str] = ()
                        ) -> List[str]:
    """The keys of :data:`PARAMETER_KEYS` that are run settings only once ``overrides`` apply to ``config``
    (see :attr:`Branch.settings_only`): set by ``key=value`` where the config has no such key (``seed=7`` on a
    config without ``seed`` seeds the sampling), not added by ``+key=value``, nor deleted since."""
    only = list(settings_only)
    present = {key for key in PARAMETER_KEYS if key in config}
    for override in overrides:
        if override.key not in PARAMETER_KEYS:
            continue
        if override.kind == DELETE:
            present.discard(override.key)
            only = [key for key in only if key != override.key]
            continue
        if override.kind == SET and override.key not in present:
            only.append(override.key)
        present.add(override.key)
    return only


def apply_to_branch(branch: Branch, override: Override, source: ConfigSource, secret_keys: AbstractSet[str]) -> None:
    """:func:`apply_value_override` on a branch, noting where the key was set."""
    apply_value_override(branch.config, override, source, secret_keys)
    if override.kind != DELETE:
        branch.origins[override.key] = f"override {override.masked_text()!r}"
        if override.key == "backend" and isinstance(override.value, dict):
            branch.origins.update({f"backend.{k}": branch.origins["backend"] for k in override.value})
