"""Hydra's ``job.override_dirname``: each job's overrides as one text, per experiment of a sweep.

Hydra gives every job of a multirun its own: the job's overrides (each
sweep at the job's value, the others as typed), excluding
``hydra.job.config.override_dirname.exclude_keys``, sorted, joined by
``item_sep``, with every ``=`` made ``kv_sep`` (``db=pg,lr=3``).

Here a group sweep composes a branch per option, so a branch knows its
choices; a value sweep (``lr=1,3``) becomes a dimension, whose value only
each experiment knows. For such a branch ``${hydra:job.override_dirname}``
becomes :func:`template`: an interpolation of the dimensions' nodes that each
experiment resolves with its own values (see :mod:`experiment_runner.expand`).

This package's run settings typed on the command line (``backend=...``,
``out_path=...``, ``repetitions=2``: :data:`~.data.RUN_KEYS`) are left out,
as Hydra leaves out its ``hydra.*`` overrides, which they stand for: an
experiment's override_dirname, and so its parameters and config hash, are the
same whichever backend runs it and wherever its results go.
"""
from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

from .data import PARAMETER_KEYS, RUN_KEYS, is_variation
from .overrides import Override

#: The resolver each experiment's ``${hydra:job.override_dirname}`` becomes in a sweep over values.
RESOLVER = "_hydra_override_dirname_"
#: The characters that a value of the override grammar escapes with a backslash.
_SPECIAL = re.compile(r"([\\()\[\]{}:=, \t])")


def escape_special_characters(text: str) -> str:
    """``text`` as the override grammar writes it: ``a\\,b`` for ``a,b``."""
    return _SPECIAL.sub(r"\\\1", text)


def quoted_argument(text: str, escape_interpolations: bool = True) -> str:
    """``'text'`` as a resolver's argument: backslashes before a quote (or the end) doubled, quotes escaped,
    and ``${`` escaped unless it is to be resolved."""
    escaped = re.sub(r"(\\+)(?='|$)", r"\1\1", text).replace("'", "\\'")
    if escape_interpolations:
        escaped = escaped.replace("${", "\\${")
    return f"'{escaped}'"


def element_text(value: Any) -> str:
    """A value as Hydra writes it in a job's override (``null``, ``True``, ``[1,2]``, ``{a:1}``, ``a\\,b``)."""
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ",".join(element_text(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{element_text(key)}:{element_text(item)}" for key, item in value.items()) + "}"
    if isinstance(value, str):
        return escape_special_characters(value)
    return str(value)


def key_element(override: Override) -> str:
    """The override's text before ``=``: its prefix, key and package (``+db@backup``)."""
    return override.text.partition("=")[0].strip()


def fixed_item(override: Override, multirun: bool) -> str:
    """``key=value`` of an override that does not sweep (a secret as ``***``): as typed, or in a multirun
    written again from its value, as Hydra's sweeper writes each job's overrides (a quoted text keeps its quotes)."""
    key, has_value, value = override.masked_text().partition("=")
    value = value.strip()
    if multirun and has_value and not override.secret and not value.startswith(("'", '"')):
        value = element_text(override.value)
    return f"{key.strip()}={value}" if has_value else key.strip()


def joined(items: Sequence[str], options: Mapping[str, Any]) -> str:
    """Hydra's rule: sorted, joined by ``item_sep``, every ``=`` replaced by ``kv_sep``."""
    return str(options["item_sep"]).join(sorted(items)).replace("=", str(options["kv_sep"]))


def kept(overrides: Sequence[Override], options: Mapping[str, Any], seed_is_setting_only: bool = False
         ) -> List[Override]:
    """The overrides override_dirname is made of: not in ``exclude_keys``, and none of the run's settings."""
    exclude = set(options.get("exclude_keys") or [])
    return [override for override in overrides
            if override.key not in exclude and not is_run_setting(override.key, seed_is_setting_only)]


def is_run_setting(key: str, seed_is_setting_only: bool) -> bool:
    """Whether an override of ``key`` (``backend``, ``backend.num_workers``, ``out_path``) sets a run setting.

    ``seed`` is a parameter too (:data:`~.data.PARAMETER_KEYS`): it counts as a
    setting only where it is nothing else (``seed_is_setting_only``: ``seed=N``
    typed for a config without a ``seed`` of its own, to seed the sampling). A
    project's own ``seed`` is a parameter the stages receive: it stays, as in
    Hydra, even where it also seeds the sampling of ``n_configs``.
    """
    top = re.split(r"[./@]", key, maxsplit=1)[0]
    if top in PARAMETER_KEYS:
        return seed_is_setting_only
    return top in RUN_KEYS


def template(fixed: Sequence[str], swept: Sequence[Override], options: Mapping[str, Any]) -> str:
    """The interpolation that resolves to an experiment's override_dirname from its values of ``swept``."""
    spec = json.dumps({"items": list(fixed), "keys": [key_element(o) for o in swept],
                       "kv_sep": options["kv_sep"], "item_sep": options["item_sep"]})
    return "${" + RESOLVER + ":" + ",".join([quoted_argument(spec), *("${" + o.key + "}" for o in swept)]) + "}"


def resolve(spec: str, *values: Any) -> Optional[str]:
    """The resolver of :func:`template`; while the values are still a sweep's, the interpolation as written."""
    from omegaconf import OmegaConf

    plain = [OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v for v in values]
    if any(is_variation(value) for value in plain):
        return "${hydra:job.override_dirname}"
    parsed: Dict[str, Any] = json.loads(spec)
    items = [*parsed["items"], *(f"{key}={element_text(value)}" for key, value in zip(parsed["keys"], plain))]
    return joined(items, parsed)
