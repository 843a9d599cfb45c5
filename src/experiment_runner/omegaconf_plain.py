"""An OmegaConf config as plain data, and OmegaConf's errors as one line.

Apart from the ``config`` package so that modules below it (``sweep``, which
takes OmegaConf containers from the Python API) can use them without it.
"""
from __future__ import annotations

from typing import Any, Dict

from .errors import ConfigError
from .omegaconf_import import omegaconf_without_attrs

#: OmegaConf, imported here first in the package: without importing attrs (see omegaconf_import.py).
omegaconf = omegaconf_without_attrs()
DictConfig, OmegaConf = omegaconf.DictConfig, omegaconf.OmegaConf
OmegaConfBaseException = omegaconf.errors.OmegaConfBaseException


#: How OmegaConf words an interpolation that leads back to itself, or to a node that holds it.
_CYCLE_MESSAGES = ("Recursive interpolation detected", "Interpolation to parent node detected", "RecursionError")


def omegaconf_error_text(error: OmegaConfBaseException) -> str:
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    full_key = getattr(error, "full_key", None)
    if full_key and any(message in first for message in _CYCLE_MESSAGES):
        return (f"{full_key!r} refers to itself: its interpolation leads back to it or to a node holding it "
                "(like a: ${b} with b: ${a})")
    return f"{first} (at {full_key})" if full_key else first


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
        raise ConfigError(f"cannot resolve {where}: {omegaconf_error_text(error)}") from error
    assert isinstance(container, dict)
    return container
