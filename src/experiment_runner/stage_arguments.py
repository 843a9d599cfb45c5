"""How a stage is called: with the cfg as it asks for it, and with the arguments it takes.

A stage's signature is read once per run (``Stages.calls`` keeps what these
functions say): for an experiment that does nothing, reading signatures would
cost more than the experiment itself.
"""
from __future__ import annotations

import inspect
import re
from typing import Any, Callable, Dict


def as_dictconfig(cfg: Dict[str, Any]) -> Any:
    """``cfg`` as the OmegaConf DictConfig that a stage whose first parameter says ``DictConfig`` gets.

    A Hydra task function (``def train(cfg: DictConfig)``, reading ``cfg.db.driver``)
    then runs as a stage unchanged, with the config as Hydra gives it: in
    struct mode (a misspelt key is an error) and its values as resolved
    (a ``${`` that was escaped stays text). Every other stage gets the plain dict
    (:func:`wants_dictconfig` tells which).
    """
    from omegaconf import OmegaConf

    config = OmegaConf.create(_interpolations_escaped(cfg))
    OmegaConf.set_struct(config, True)
    return config


_ESCAPED_INTERPOLATION = re.compile(r"(\\*)\$\{")


def _interpolations_escaped(value: Any) -> Any:
    """``value`` with each ``${`` of its text escaped (``\\${``, backslashes before doubled): OmegaConf reads text."""
    if isinstance(value, str):
        return _ESCAPED_INTERPOLATION.sub(lambda m: m.group(1) * 2 + "\\${", value) if "${" in value else value
    if isinstance(value, dict):
        return {key: _interpolations_escaped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolations_escaped(item) for item in value]
    return value


def wants_dictconfig(stage: Callable[..., Any]) -> bool:
    try:
        parameters = list(inspect.signature(stage).parameters.values())
    except (TypeError, ValueError):
        return False
    if not parameters:
        return False
    annotation = parameters[0].annotation
    name = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return name.rpartition(".")[2] == "DictConfig"


def takes_one_argument(function: Callable[..., Any]) -> bool:
    """``fit(cfg)``: scripts for the original package without a pre stage define fit with one parameter."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # builtins and C callables: call them the documented way
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    variadic = any(p.kind == p.VAR_POSITIONAL for p in parameters)
    return len(positional) == 1 and not variadic
