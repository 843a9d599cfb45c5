"""The registry of backends: a name maps to the import path of its launcher class.

Launcher modules are imported only when their backend is asked for, so a
backend's heavy dependency (ray, an SSH library) is never imported otherwise.
Third-party packages add backends through the entry point group
``experiment_runner.launchers`` (name = backend name, value = ``module:Class``).
"""
from __future__ import annotations

import difflib
from importlib import import_module
from importlib.metadata import entry_points
from typing import Dict, Type

from ..errors import UnknownBackendError
from .base import Launcher

ENTRY_POINT_GROUP = "experiment_runner.launchers"

BUILTIN_LAUNCHERS: Dict[str, str] = {
    "single": "experiment_runner.launchers.single:SingleLauncher",
}

#: Settings of the built-in backends. Accepted whichever backend runs, so one
#: basecfg can switch backends (the original package's keys among them).
BUILTIN_OPTION_NAMES = frozenset(
    {
        "address", "redis_password",
        "malocher_machines", "malocher_user", "malocher_port", "malocher_key", "malocher_dir",
    }
)


def _plugin_launchers() -> Dict[str, str]:
    found = entry_points()
    group = found.select(group=ENTRY_POINT_GROUP) if hasattr(found, "select") else found.get(ENTRY_POINT_GROUP, [])
    return {point.name: point.value for point in group}


def available_launchers() -> Dict[str, str]:
    """Backend name -> ``module:Class`` for the built-in backends and the installed plugins."""
    return {**_plugin_launchers(), **BUILTIN_LAUNCHERS}


def get_launcher_class(name: str) -> Type[Launcher]:
    """The launcher class registered for ``name``; an unknown name is an error listing the valid ones."""
    launchers = available_launchers()
    if name not in launchers:
        close = difflib.get_close_matches(str(name), launchers, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownBackendError(
            f"unknown backend {name!r}{hint}: expected one of {', '.join(sorted(launchers))}"
        )
    module_name, _, class_name = launchers[name].partition(":")
    return getattr(import_module(module_name), class_name)
