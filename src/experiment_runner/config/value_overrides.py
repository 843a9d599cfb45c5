"""Value overrides: ``key=value``, ``+key=value``, ``++key=value`` and ``~key`` applied to a composed config.

As Hydra applies them to its config, which is in struct mode: ``key=`` only
changes keys that exist, a dict merges into a dict node, and each mistake is
one line naming the override and the fix (the closest keys, or whose setting
a ``backend.<key>`` is). Also the check that no top-level key is a run
setting misspelt.
"""
from __future__ import annotations

import dataclasses
import difflib
from typing import AbstractSet, Any, List, Mapping, Optional, Sequence

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from ..errors import ConfigError
from ..launchers import available_launchers, options_class, owning_backends, settings_owner
from ..launchers.options import option_names
from ..omegaconf_plain import omegaconf_error_text
from ..serialization import ABSENT as _ABSENT, MASK, dotted_keys as _all_keys, lookup as _lookup
from .data import RUN_KEYS, VARIATION_KEY
from .files import ConfigSource
from .overrides import ADD, DELETE, SET, Override
from .secret_keys import near_a_secret


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
    foreign = _other_backends_setting_override(override, backend) or _backend_setting_at_the_top(
        override, backend, secret_keys)
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
    """``backend.num_workers=4`` where the backend node is single's (or a plugin's): the error that says whose
    setting it is.

    Without a backend node the run's backend is single, the default.
    """
    name = backend.get("name") if isinstance(backend, dict) else "single" if backend is None else None
    if not override.key.startswith("backend.") or not isinstance(name, str) or name not in available_launchers():
        return None
    setting = override.key.split(".")[1]
    owners = owning_backends(setting, option_names(options_class(name)))
    if not owners:
        return None
    text = override.masked_text()
    return other_backends_setting(f"override {text!r}", setting, owners, name, text.lstrip("+"))


def _backend_setting_at_the_top(override: Override, backend: Any, secret_keys: AbstractSet[str]
                                ) -> Optional[ConfigError]:
    """``num_workers=4``: a backend's setting given as a top-level key, which on the command line is a parameter
    of the experiments; the error says where the setting goes (``backend=multiprocessing backend.num_workers=4``)
    instead of hinting at ``+num_workers=4``, which would make it a parameter of every experiment."""
    if "." in override.key:
        return None
    owners = owning_backends(override.key, frozenset())
    if not owners:
        return None
    if near_a_secret([override.key, f"backend.{override.key}"], secret_keys):
        override = dataclasses.replace(override, secret=True)
    name = backend.get("name") if isinstance(backend, dict) else "single" if backend is None else backend
    setting = f"backend.{override.masked_text().lstrip('+')}"
    fix = setting if name in owners else f"backend={owners[0]} {setting}"
    return ConfigError(f"override {override.masked_text()!r}: {settings_owner([override.key], owners)}, set under "
                       f"backend: write {fix}")


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
