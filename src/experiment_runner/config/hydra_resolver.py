"""The ``${hydra:...}`` resolver: values of the hydra node a composed config carries, as a task would read them.

Each composition's node is attached to its config (see
:func:`attach_hydra_node`); a value that each experiment of a sweep has for
itself (``job.override_dirname``, ``runtime.output_dir``) is left for the
experiment's own resolution, or for the runner.
"""
from __future__ import annotations

import re
import weakref
from typing import Any, Dict, Mapping, Optional, Tuple

from omegaconf import DictConfig, OmegaConf

from ..errors import ConfigError
from ..serialization import ABSENT
#: The top-level key of Hydra's settings, kept apart from the experiment's config.
HYDRA_KEY = "hydra"
#: What Hydra knows only once it runs a job; here each experiment has its own, known only when it runs.
_PER_EXPERIMENT = {
    "job.num": "each experiment's number is its experiment_id, set when it runs (cfg['experiment_id'] in a stage)",
    "job.id": "each experiment's number is its experiment_id, set when it runs (cfg['experiment_id'] in a stage)",
    "job.override_dirname": "each experiment of the sweep has its own, resolved in its config",
}


#: Each composed config's hydra node, by the config's identity (the resolver receives the config's root).
_NODES: Dict[int, Tuple["weakref.ReferenceType[DictConfig]", DictConfig]] = {}


def attach_hydra_node(config: DictConfig, node: DictConfig) -> None:
    """Make ``node`` what ``${hydra:...}`` reads in ``config``."""
    key = id(config)
    _NODES[key] = (weakref.ref(config, lambda _: _NODES.pop(key, None)), node)


def hydra_node_of(config: Any) -> Optional[DictConfig]:
    found = _NODES.get(id(config))
    return found[1] if found is not None and found[0]() is config else None


_HYDRA_INTERPOLATION = re.compile(r"\$\{hydra:([\w./-]+)\}")


def inline_hydra_values(node: Any, config: DictConfig, per_experiment: Mapping[str, str] = {}) -> Any:
    """``node`` (plain data of ``config``) with each ``${hydra:key}`` replaced by its value.

    For a copy of the config that is resolved apart from it (each experiment of
    a sweep), where the hydra node of ``config`` is not known. A key of
    ``per_experiment`` becomes its interpolation, which each experiment resolves.
    """
    if isinstance(node, dict):
        return {key: inline_hydra_values(value, config, per_experiment) for key, value in node.items()}
    if isinstance(node, list):
        return [inline_hydra_values(value, config, per_experiment) for value in node]
    if not isinstance(node, str) or "${hydra:" not in node:
        return node

    def inlined(match: "re.Match[str]", whole: bool) -> Any:
        key = match.group(1)
        if key in per_experiment:
            return per_experiment[key]
        if key == "runtime.output_dir":
            return _output_dir().replace("${", "\\${")  # kept as text through the experiment's resolution
        value = resolve_hydra_key(key, config)
        return value if whole and not isinstance(value, str) else str(value).replace("${", "\\${")

    whole = _HYDRA_INTERPOLATION.fullmatch(node)
    if whole:
        return inlined(whole, True)
    return _HYDRA_INTERPOLATION.sub(lambda match: inlined(match, False), node)


def replayed_hydra_node(config: DictConfig, recorded: Any) -> Optional[DictConfig]:
    """The hydra node a run recorded (run.yaml's ``hydra``), attached to ``config`` again; None if none was."""
    if not isinstance(recorded, dict):
        return None
    node = OmegaConf.create({HYDRA_KEY: recorded})
    attach_hydra_node(config, node)
    return node


def _output_dir() -> str:
    """The experiment's folder as a stage's cfg holds it, read from the experiment's module when a value needs it:
    composing a config (``--help``, ``--cfg``) does not import what runs experiments."""
    from ..experiment import OUTPUT_DIR

    return OUTPUT_DIR


def resolve_hydra_key(key: str, _root_: Any) -> Any:
    """``${hydra:job.name}``: the value of ``key`` in the hydra node of the config being resolved."""
    if key == "runtime.output_dir":
        return _output_dir()  # the experiment's folder: the runner puts it in when it makes a stage's cfg
    root = hydra_node_of(_root_)
    if root is None:
        raise ConfigError(f"${{hydra:{key}}} has no value here: only a config composed from config files has one")
    path = f"{HYDRA_KEY}.{key}"
    value = OmegaConf.select(root, path, default=ABSENT, throw_on_missing=False)
    if key == "job.override_dirname" and OmegaConf.is_missing(root[HYDRA_KEY].job, "override_dirname"):
        # a sweep over values: each experiment resolves its own (see per_experiment_values); the config as a
        # whole keeps the interpolation as text, as it keeps the experiment's folder
        return f"${{hydra:{key}}}"
    if value is ABSENT or value is None and key in _PER_EXPERIMENT:
        reason = _PER_EXPERIMENT.get(key, "experiment-runner does not keep that Hydra setting")
        raise ConfigError(f"${{hydra:{key}}} has no value when the config is composed: {reason}")
    if OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    return value
