"""The registry of backends: a name maps to the import path of its launcher class.

Launcher modules are imported only when their backend is asked for, so a
backend's heavy dependency (ray, an SSH library) is never imported otherwise.
Third-party packages add backends through the entry point group
``experiment_runner.launchers`` (name = backend name, value = ``module:Class``).
"""
from __future__ import annotations

import difflib
from importlib import import_module
from typing import AbstractSet, Dict, FrozenSet, List, Optional, Sequence, Type

from ..errors import UnknownBackendError
from .base import Launcher

ENTRY_POINT_GROUP = "experiment_runner.launchers"

BUILTIN_LAUNCHERS: Dict[str, str] = {
    "single": "experiment_runner.launchers.single:SingleLauncher",
    "ray": "experiment_runner.launchers.ray_launcher:RayLauncher",
    "multiprocessing": "experiment_runner.launchers.process_pool:ProcessPoolLauncher",
    "malocher": "experiment_runner.launchers.ssh_launcher:SSHLauncher",
    "slurm": "experiment_runner.launchers.slurm_launcher:SlurmLauncher",
}

#: The settings each built-in backend reads beyond the core ones (its launcher class's ``option_names``),
#: listed here so that a setting can be traced to its backend without importing every backend.
BUILTIN_BACKEND_OPTIONS: Dict[str, FrozenSet[str]] = {
    "single": frozenset(),
    "ray": frozenset(
        {"address", "redis_password", "ray_auth_token", "ray_resources", "ray_max_in_flight", "ray_runtime_env"}
    ),
    "multiprocessing": frozenset({"num_workers", "gpus", "max_experiments_per_worker"}),
    "malocher": frozenset({
        "malocher_machines", "malocher_user", "malocher_port", "malocher_key", "malocher_dir",
        "malocher_passphrase", "malocher_password", "malocher_slots", "malocher_python", "malocher_known_hosts",
        "malocher_trust_on_first_use", "malocher_keep_jobs", "malocher_connect_timeout",
    }),
    "slurm": frozenset({
        "slurm_partition", "slurm_time_limit", "slurm_account", "slurm_qos", "slurm_additional_parameters",
        "slurm_setup", "slurm_array_size", "slurm_array_parallelism", "slurm_poll_interval", "slurm_job_name",
    }),
}

#: Settings of the built-in backends. A basecfg may hold those of other backends than the one it
#: runs (the original package's scripts switch backends with one key): they are ignored, with a warning.
BUILTIN_OPTION_NAMES = frozenset().union(*BUILTIN_BACKEND_OPTIONS.values())

#: The built-in backends' secret settings: declared here, next to their names, so that they are masked
#: whichever backend runs without importing every backend; each launcher class has its own as ``secret_options``.
BUILTIN_SECRET_OPTIONS = frozenset({"redis_password", "ray_auth_token", "malocher_passphrase", "malocher_password"})


def secret_options(launcher_class: Optional[Type[Launcher]] = None) -> FrozenSet[str]:
    """The settings whose values are secret: the built-in backends' and those of ``launcher_class`` (a plugin's)."""
    return BUILTIN_SECRET_OPTIONS | (launcher_class.secret_options if launcher_class is not None else frozenset())


def owning_backends(key: str, reads: AbstractSet[str]) -> List[str]:
    """The built-in backends whose setting ``key`` is, unless it is one of ``reads`` (the running backend's)."""
    if key in reads:
        return []
    return [name for name, options in BUILTIN_BACKEND_OPTIONS.items() if key in options]


def settings_owner(keys: Sequence[str], owners: Sequence[str]) -> str:
    """``num_workers is a setting of backend=multiprocessing``, for one key or several."""
    noun = "is a setting" if len(keys) == 1 else "are settings"
    return f"{', '.join(keys)} {noun} of {' or '.join(f'backend={name}' for name in owners)}"


def _plugin_launchers() -> Dict[str, str]:
    from importlib.metadata import entry_points  # read only when asked: it slows every start-up otherwise

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
