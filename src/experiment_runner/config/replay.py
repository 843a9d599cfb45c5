"""Replay: the sweep a run recorded in run.yaml, rebuilt for ``--resume`` without reading the config files again.

What a resumed run composes is what it recorded, so editing a config file
between the first run and the resume changes nothing; overrides given with
``--resume`` apply on top. Secrets were never recorded: they come from the
command line again, or from the config files as they are now.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

from omegaconf import DictConfig, OmegaConf

from ..errors import ConfigError
from ..omegaconf_plain import unresolved_container
from ..serialization import ABSENT as _ABSENT, MASK, lookup as _lookup, secret_paths
from .composition import Branch, Composition, apply_to_branch, compose, is_group_override, settings_only_after
from .defaults_list import Composer, unknown_option
from .files import ConfigSource
from .hydra_node import HydraInputs, is_hydra_override, job_override, per_experiment_values
from .hydra_resolver import replayed_hydra_node
from .overrides import ADD, DELETE, Override, parse_overrides
from .resolvers import register_resolvers
from .value_overrides import check_run_key_typos
from .secret_keys import declared_secret_keys, derived_in, named_secret_keys, secret_keys_before_composing


def recompose(
    config_dir: Any,
    config_name: Optional[str],
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
    source = ConfigSource.at(config_dir)
    now = now or datetime.now()
    register_resolvers(now)
    secret_keys = secret_keys_before_composing(source, config_name, overrides) | secret_paths(
        name for branch in recorded for name in named_secret_keys(dict(branch["config"]).get("secret_keys"))
    )
    replayed = parse_overrides([o for o in recorded_overrides if not o.endswith(f"={MASK}")], secret_keys)
    parsed = [override for override in parse_overrides(list(overrides), secret_keys)
              if not any(_same_setting(override, other) for other in replayed)]
    branches = []
    values = [override for override in parsed if not is_group_override(source, override)]
    for index, branch in enumerate(recorded):
        config = OmegaConf.create(dict(branch["config"]))
        settings_only = settings_only_after(config, values, [str(key) for key in branch.get("settings_only") or []])
        replayed_branch = Branch(config, dict(branch.get("choices") or {}), dict(branch.get("origins") or {}),
                                 settings_only)
        for override in parsed:
            if is_group_override(source, override):
                _reselect_group(replayed_branch.config, override, source, replayed_branch.choices,
                                replayed_branch.origins)
            else:
                apply_to_branch(replayed_branch, override, source, secret_keys)
        check_run_key_typos(replayed_branch.config, replayed_branch.origins)
        replayed_branch.hydra = replayed_hydra_node(replayed_branch.config, branch.get("hydra"))
        branches.append(replayed_branch)
    _fill_secrets(branches, source, config_name, replayed, now)
    secret_keys = secret_keys.union(*(declared_secret_keys(branch) for branch in branches))
    derived = derived_in(branches, secret_keys)
    secret_keys |= derived
    overrides_now = [override.with_secret_keys(secret_keys) for override in _given_again_last(replayed, parsed)]
    for branch in branches:
        branch.per_experiment_hydra = _per_experiment_hydra(branch, overrides_now, source)
    return Composition(source, config_name, overrides_now, now, branches, secret_keys, derived)


def _same_setting(override: Override, recorded: Override) -> bool:
    """``q=5`` given with ``--resume`` where the run recorded ``+q=5`` (or ``q=5``): the same key and value, so
    the recorded override stays as it was typed (its ``+`` is part of override_dirname, so of the hashes)."""
    return (override.key == recorded.key and DELETE not in (override.kind, recorded.kind)
            and (override.values, override.sweep, override.range) == (recorded.values, recorded.sweep, recorded.range))


def _given_again_last(replayed: List[Override], parsed: List[Override]) -> List[Override]:
    """The run's overrides now: the recorded ones, but for those whose key an override given with ``--resume``
    sets to another value (a secret typed again, ``seed=...``), then those given with ``--resume``. run.yaml
    records them: each resume adds what is new, not the same override once more (one with the key and value
    of a recorded one is left out before: see :func:`_same_setting`)."""
    given = {override.key for override in parsed}
    return [override for override in replayed if override.key not in given] + parsed


def _per_experiment_hydra(branch: Branch, overrides: Sequence[Override], source: ConfigSource) -> Dict[str, str]:
    """What each experiment of the recomposed sweep resolves for itself (``${hydra:job.override_dirname}``),
    made as the first run made it: from the command line's overrides, each group sweep at the branch's option,
    with the ``exclude_keys`` and separators of the recorded hydra node."""
    if branch.hydra is None:
        return {}
    task = [job_override(o, branch.choices.get(o.key)) if _sweeps_a_group(o, source) else o
            for o in overrides if not is_hydra_override(o)]
    # only a sweep leaves each experiment its own override_dirname, and a sweep is a multirun
    inputs = HydraInputs("", None, [], task, multirun=True, seed_is_setting_only="seed" in branch.settings_only)
    return per_experiment_values(branch.hydra, inputs)


def _sweeps_a_group(override: Override, source: ConfigSource) -> bool:
    """``db=mysql,postgresql`` or ``db=glob(*)``: each branch of the sweep has one of the options."""
    from .sweep_functions import Glob  # imported with the overrides read (see overrides.py)

    return is_group_override(source, override) and (override.sweep or isinstance(override.value, Glob))


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
        raise ConfigError(unknown_option(source, override.key, option, f"override {override.text!r}"))
    composer = Composer(source, [Override(f"+{override.key}={option}", ADD, override.key, (option,))])
    merged = OmegaConf.merge(cfg, composer.compose(None))
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
    branches: List[Branch], source: ConfigSource, config_name: Optional[str], replayed: List[Override], now: datetime
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
