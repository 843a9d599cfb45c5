"""The registry of backends: a name maps to its launcher class and to the declaration of its settings.

Launcher modules are imported only when their backend is asked for, so a
backend's heavy dependency (ray, an SSH library) is never imported otherwise;
the built-in backends' settings are declared in the light ``options`` module.
Third-party packages add backends through the entry point group
``experiment_runner.launchers`` (name = backend name, value = ``module:Class``,
a subclass of :class:`~experiment_runner.launchers.base.Launcher`). A plugin
that registers a built-in's name is ignored with a warning: ``backend=ray``
always means the built-in Ray backend, whatever else is installed.
"""
from __future__ import annotations

import difflib
import functools
import sys
import warnings
from importlib import import_module
from typing import TYPE_CHECKING, AbstractSet, Dict, FrozenSet, Iterable, Iterator, List, Optional, Sequence, Tuple
from typing import Type

from ..errors import BackendPluginError, ShadowedBackendWarning, UnknownBackendError
from ..core_keys import CORE_KEYS
from .options import BUILTIN_OPTIONS, BackendOptions, option_names, secret_names
from .plugin_points import PluginPoint, entry_points_in

if TYPE_CHECKING:
    from .base import Launcher

ENTRY_POINT_GROUP = "experiment_runner.launchers"

BUILTIN_LAUNCHERS: Dict[str, str] = {
    "single": "experiment_runner.launchers.single:SingleLauncher",
    "ray": "experiment_runner.launchers.ray_launcher:RayLauncher",
    "multiprocessing": "experiment_runner.launchers.process_pool:ProcessPoolLauncher",
    "malocher": "experiment_runner.launchers.ssh_launcher:SSHLauncher",
    "slurm": "experiment_runner.launchers.slurm_launcher:SlurmLauncher",
}

#: The settings each built-in backend reads beyond the core ones, from their declarations (options.py).
BUILTIN_BACKEND_OPTIONS: Dict[str, FrozenSet[str]] = {
    name: option_names(options) for name, options in BUILTIN_OPTIONS.items()
}

#: Settings of the built-in backends. A basecfg may hold those of other backends than the one it
#: runs (the original package's scripts switch backends with one key): they are ignored, with a warning.
BUILTIN_OPTION_NAMES = frozenset().union(*BUILTIN_BACKEND_OPTIONS.values())

#: The built-in backends' secret settings: masked whichever backend runs, without importing any backend.
BUILTIN_SECRET_OPTIONS = frozenset().union(*(secret_names(options) for options in BUILTIN_OPTIONS.values()))


def secret_options(launcher_class: Optional[Type[Launcher]] = None, keys: Iterable[str] = ()) -> FrozenSet[str]:
    """The settings whose values are secret: the built-in backends', those of ``launcher_class`` (a plugin's),
    and those of ``keys`` that are the secret settings of another installed plugin."""
    own = launcher_class.secret_options if launcher_class is not None else frozenset()
    others = {key for key in keys if key not in BUILTIN_OPTION_NAMES and key not in own
              and any(key in launcher.secret_options for _, launcher in _plugins_reading(key))}
    return BUILTIN_SECRET_OPTIONS | own | others


def known_settings(launcher_class: Type[Launcher]) -> FrozenSet[str]:
    """The core settings and every built-in backend's, besides this one's; another installed plugin's settings
    are found by :func:`owning_backends`, which loads the plugins. Another backend's settings are ignored."""
    return CORE_KEYS | BUILTIN_OPTION_NAMES | launcher_class.option_names


def owning_backends(key: str, reads: AbstractSet[str]) -> List[str]:
    """The backends whose setting ``key`` is, unless it is one of ``reads`` (the running backend's).

    The built-in backends' first; only a key that is none of theirs is looked
    for among the installed plugins, which are then loaded (one that cannot
    be is left out: selecting it says why).
    """
    if key in reads:
        return []
    return [name for name, options in BUILTIN_BACKEND_OPTIONS.items() if key in options] or [
        name for name, _ in _plugins_reading(key)]


def plugin_option_names() -> FrozenSet[str]:
    """Every setting of the installed plugins (which are loaded): the names a typo may have meant."""
    return frozenset().union(*(launcher.option_names for _, launcher in _loadable_plugins()))


def _plugins_reading(key: str) -> List[Tuple[str, Type[Launcher]]]:
    """The installed plugins whose setting ``key`` is, with their launcher class."""
    return [(name, launcher) for name, launcher in _loadable_plugins() if key in launcher.option_names]


def _loadable_plugins() -> Iterator[Tuple[str, Type[Launcher]]]:
    """The installed plugins that load and are not shadowed by a built-in backend, loaded."""
    for name, point in _plugin_entry_points().items():
        if name in BUILTIN_LAUNCHERS:
            continue
        try:
            yield name, _load_plugin(point)
        except BackendPluginError:
            continue


def settings_owner(keys: Sequence[str], owners: Sequence[str]) -> str:
    """``num_workers is a setting of backend=multiprocessing``, for one key or several."""
    noun = "is a setting" if len(keys) == 1 else "are settings"
    return f"{', '.join(keys)} {noun} of {' or '.join(f'backend={name}' for name in owners)}"


def _plugin_entry_points() -> Dict[str, PluginPoint]:
    return _entry_points_on(tuple(sys.path))


@functools.lru_cache(maxsize=4)
def _entry_points_on(path: Tuple[str, ...]) -> Dict[str, PluginPoint]:
    """The plugins' entry points as installed on ``path``: scanned once, since a plan looks them up many times."""
    return {point.name: point for point in entry_points_in(ENTRY_POINT_GROUP, path)}


def available_launchers() -> Dict[str, str]:
    """Backend name -> ``module:Class`` for the built-in backends and the installed plugins."""
    return {**{name: point.value for name, point in _plugin_entry_points().items()}, **BUILTIN_LAUNCHERS}


def get_launcher_class(name: str) -> Type[Launcher]:
    """The launcher class registered for ``name``; an unknown name is an error listing the valid ones."""
    plugins = _plugin_entry_points()
    if name in BUILTIN_LAUNCHERS:
        if name in plugins:
            warnings.warn(f"{_describe(plugins[name])} registers backend {name!r}, the name of a built-in backend: "
                          f"it is ignored and backend={name} is the built-in one", ShadowedBackendWarning, stacklevel=2)
        module_name, _, class_name = BUILTIN_LAUNCHERS[name].partition(":")
        return getattr(import_module(module_name), class_name)
    if name in plugins:
        return _load_plugin(plugins[name])
    known = sorted({*BUILTIN_LAUNCHERS, *plugins})
    close = difflib.get_close_matches(str(name), known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UnknownBackendError(f"unknown backend {name!r}{hint}: expected one of {', '.join(known)}")


def options_class(name: str) -> Type[BackendOptions]:
    """The declaration of backend ``name``'s settings; a plugin's is read from its launcher class."""
    if name in BUILTIN_OPTIONS:
        return BUILTIN_OPTIONS[name]
    return get_launcher_class(name).Options


def _load_plugin(point: PluginPoint) -> Type[Launcher]:
    from .base import Launcher  # with the plugin: the registry itself (--help, --cfg) runs no backend

    try:
        loaded = point.load()
    except Exception as error:
        raise BackendPluginError(f"cannot load {_describe(point)}: {type(error).__name__}: {error}") from error
    if not (isinstance(loaded, type) and issubclass(loaded, Launcher)):
        raise BackendPluginError(
            f"{_describe(point)} is not a backend: {point.value} is {loaded!r}, not a subclass of "
            "experiment_runner.launchers.base.Launcher"
        )
    return loaded


def _describe(point: PluginPoint) -> str:
    """``the entry point 'x = pkg:Cls' of the distribution pkg-dist``, as a plugin's author finds it."""
    dist = getattr(point, "dist", None)  # Python >= 3.10
    text = f"the entry point '{point.name} = {point.value}' (group {ENTRY_POINT_GROUP})"
    return f"{text} of the distribution {dist.name}" if dist is not None else text
