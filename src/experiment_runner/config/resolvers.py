"""The resolvers a composed config uses: ``${now:...}``, ``${variation:...}``, ``${hydra:...}`` and Hydra's
override_dirname."""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Tuple

from omegaconf import OmegaConf

from . import override_dirname
from .data import VARIATION_KEY
from .hydra_resolver import resolve_hydra_key


def register_resolvers(now: datetime) -> None:
    """``${now:%Y-%m-%d}`` (the time the run was composed, the same everywhere), ``${variation:...}``,
    ``${hydra:...}``."""
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
