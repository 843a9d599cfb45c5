"""The config as data: the keys the runner reads itself, the resolvers, and plain containers of a config."""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Dict, Tuple

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..errors import ConfigError
from ..settings import CORE_KEYS

#: Top-level keys of the sweep itself: how many configurations to sample, and the sampling seed.
SWEEP_KEYS = frozenset({"n_configs", "seed"})
#: Top-level keys that are run settings; every other top-level key is an experiment parameter.
RUN_KEYS = CORE_KEYS | SWEEP_KEYS
#: Run settings that reach the experiments as parameters too: a project's own ``seed`` (every Hydra
#: project has one) stays its seed, and also seeds the sampling of ``n_configs``.
PARAMETER_KEYS = frozenset({"seed"})
#: What ``${variation:a,b}`` resolves to, and how an override ``key=a,b`` marks its node.
VARIATION_KEY = "_variation_"


def register_resolvers(now: datetime) -> None:
    """``${now:%Y-%m-%d}`` (the time the run was composed, the same everywhere), ``${variation:...}``,
    ``${hydra:...}``."""
    from . import override_dirname
    from .hydra_resolver import resolve_hydra_key

    _register("now", lambda pattern="%Y-%m-%d_%H-%M-%S": now.strftime(pattern))
    _register("variation", lambda *choices: {VARIATION_KEY: list(choices)})
    _register("hydra", resolve_hydra_key)
    _register(override_dirname.RESOLVER, override_dirname.resolve)


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


def is_variation(node: Any) -> bool:
    """True for a dimension as resolved, or as a sweep override marks it: ``{_variation_: [...]}``."""
    return isinstance(node, dict) and VARIATION_KEY in node
