"""The backends: one module each, and the registry that maps a backend's name to its launcher class.

The registry (registry.py) is read through this package's names, imported
when first asked for: a worker process of backend=multiprocessing imports
its own modules from this package, and needs neither the registry nor the
declarations of every backend's settings that it reads.
"""
from __future__ import annotations

from typing import Any

#: The registry's public names (see registry.py).
_REGISTRY_NAMES = frozenset({
    "secret_options",
    "known_settings",
    "owning_backends",
    "plugin_option_names",
    "settings_owner",
    "available_launchers",
    "get_launcher_class",
    "options_class",
    "ENTRY_POINT_GROUP",
    "BUILTIN_LAUNCHERS",
    "BUILTIN_BACKEND_OPTIONS",
    "BUILTIN_OPTION_NAMES",
    "BUILTIN_SECRET_OPTIONS",
})


def __getattr__(name: str) -> Any:
    if name in _REGISTRY_NAMES:
        from . import registry

        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
