"""Hydra's settings that have a meaning here, mapped onto this package's run settings.

- ``hydra.run.dir`` / ``hydra.sweep.dir`` -> ``out_path``: ``hydra.sweep.dir``
  when the run sweeps (a sweep override, a group sweep, a dimension, a
  sweeper parameter), else ``hydra.run.dir``. ``${now:...}`` and
  ``${hydra.job.name}``-style interpolations keep working (``${hydra.x}``
  becomes ``${hydra:x}``).
- ``hydra.job.chdir`` -> ``chdir``: each experiment runs in its own folder.
- ``hydra/launcher=joblib|submitit_slurm|ray|basic`` -> ``backend=
  multiprocessing|slurm|ray|single``, with the launcher's settings that have
  an equivalent (:data:`LAUNCHERS`).
- ``hydra.sweeper.params`` -> sweep overrides, put before the command line's
  (see :func:`with_sweeper_params`), in a multirun: ``-m``, or ``hydra.mode:
  MULTIRUN`` (see :func:`is_multirun`).

The mapped settings join the composed config as run settings, so ``--cfg``
shows them and run.yaml records them. A run setting of ours given as
explicitly (the command line beats a config file) wins over Hydra's, and the
conflict is named. Everything else a project sets under ``hydra`` is ignored,
named in one :class:`~experiment_runner.errors.IgnoredSettingWarning` line.
"""
from __future__ import annotations

import dataclasses
import os
import re
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from omegaconf import DictConfig, OmegaConf

from ..errors import ConfigError, IgnoredSettingWarning
from .data import VARIATION_KEY
from .files import PACKAGE_CONF, ConfigSource
from .hydra_node import given_settings
from .hydra_resolver import HYDRA_KEY
from .overrides import Override

#: How a Hydra launcher's settings become ours: its key -> (our backend setting, its value from the launcher's).
_Conversions = Dict[str, Tuple[str, Callable[[Any], Any]]]


def _same(value: Any) -> Any:
    return value


def _joblib_workers(n_jobs: Any) -> Any:
    """joblib's n_jobs: -1 is every CPU (our null), -2 all but one, ... ; a positive count as it is."""
    if not isinstance(n_jobs, int) or isinstance(n_jobs, bool) or n_jobs == 0:
        raise ConfigError(f"hydra.launcher.n_jobs must be a whole number other than 0, got {n_jobs!r}")
    if n_jobs > 0:
        return n_jobs
    return None if n_jobs == -1 else max(1, (os.cpu_count() or 1) + 1 + n_jobs)


def _sbatch_option(name: str) -> Tuple[str, Callable[[Any], Any]]:
    return "slurm_additional_parameters", lambda value: {name: value}


#: Per Hydra launcher: our backend and how its settings map (the others are ignored, and named).
LAUNCHERS: Dict[str, Tuple[str, _Conversions]] = {
    "basic": ("single", {}),
    "joblib": ("multiprocessing", {"n_jobs": ("num_workers", _joblib_workers), "timeout": ("timeout", _same)}),
    "submitit_slurm": ("slurm", {
        "partition": ("slurm_partition", _same), "timeout_min": ("slurm_time_limit", _same),
        "cpus_per_task": ("num_cpus", _same), "gpus_per_node": ("num_gpus", _same),
        "mem_gb": ("max_memory", lambda gb: f"{gb}GiB"), "qos": ("slurm_qos", _same),
        "account": ("slurm_account", _same), "array_parallelism": ("slurm_array_parallelism", _same),
        "setup": ("slurm_setup", _same), "additional_parameters": ("slurm_additional_parameters", _same),
        "constraint": _sbatch_option("constraint"), "exclude": _sbatch_option("exclude"),
        "gres": _sbatch_option("gres"), "comment": _sbatch_option("comment"),
    }),
    "ray": ("ray", {
        "ray.init.address": ("address", _same), "ray.remote.num_cpus": ("num_cpus", _same),
        "ray.remote.num_gpus": ("num_gpus", _same), "ray.remote.memory": ("max_memory", _same),
    }),
}

#: Hydra settings that this package reads elsewhere: the resolver's values and the sweeper's parameters.
_READ_ELSEWHERE = ("hydra.job.name", "hydra.job.override_dirname", "hydra.job.config.override_dirname",
                   "hydra.sweeper.params", "hydra.mode")
#: Hydra 1.3's own values of settings ignored here (as written, ${hydra:x} for ${hydra.x}): a project
#: that gives one changes nothing, so it is not named.
_HYDRA_DEFAULT_VALUES = {"hydra.sweep.subdir": "${hydra:job.num}", "hydra.output_subdir": ".hydra",
                         "hydra.verbose": False, "hydra.searchpath": []}
#: Why an ignored setting has no equivalent, where a reason says more than "no equivalent here".
_REASONS = {"hydra.sweep.subdir": "the out_path tree's layout is fixed: <out_path>/<experiment_id>"}

# Levels of how explicitly a setting was given: not at all (or a package default), in a config file,
# on the command line.
_ABSENT_LEVEL, _FILE, _COMMAND_LINE = 0, 1, 2


@dataclasses.dataclass
class HydraSettings:
    """Hydra's settings of one branch: the node, where each was given, and what the run makes of them."""

    root: DictConfig
    #: Dotted key (``hydra.run.dir``) or group (``hydra/launcher``) -> the level it was given at.
    given: Dict[str, int]
    #: Override text of each setting the command line gave.
    typed: Dict[str, str]
    ignored: List[str] = dataclasses.field(default_factory=list)
    #: The Hydra launcher the settings choose (see :func:`choose_launcher_backend`), and whether its backend
    #: is the run's (ours given as explicitly wins).
    launcher: Optional[str] = None
    launcher_applies: bool = False

    @classmethod
    def of(cls, root: DictConfig, user_node: Optional[DictConfig], overrides: Sequence[Override],
           defaults_choices: Sequence[Tuple[str, Optional[str], str]]) -> "HydraSettings":
        given = {key: _FILE for key in given_settings(user_node)}
        given.update({group: _FILE for group, _, _ in defaults_choices})
        typed = {}
        for override in overrides:
            for key in [k for k in given if k == override.key or k.startswith(f"{override.key}.")]:
                del given[key]  # a node set whole replaces what the files gave inside it
            given[override.key] = _COMMAND_LINE
            typed[override.key] = override.masked_text()
        return cls(root, given, typed)

    def value(self, key: str) -> Any:
        return OmegaConf.select(self.root, key, default=None, throw_on_missing=False)

    def written(self, key: str) -> Any:
        """The value as written, ``${hydra.x}`` as ``${hydra:x}`` (it leaves the node for the config)."""
        value = OmegaConf.to_container(self.root, resolve=False)
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return _hydra_interpolations_as_resolver(value)

    def level(self, key: str) -> int:
        return max((level for given, level in self.given.items()
                    if given == key or given.startswith(f"{key}.") or key.startswith(f"{given}.")), default=0)

    def origin(self, key: str) -> str:
        typed = next((text for given, text in self.typed.items() if key == given or key.startswith(f"{given}.")), None)
        return f"override {typed!r}" if typed else f"the config's {key}"

    def described(self, key: str) -> str:
        if "/" in key:
            return f"{key}={self.value(f'{HYDRA_KEY}.runtime.choices') [key]}"
        return key


def _hydra_interpolations_as_resolver(value: Any) -> Any:
    if isinstance(value, str):
        return re.sub(r"\$\{hydra\.", "${hydra:", value)
    return value


def apply_hydra_settings(cfg: DictConfig, origins: Dict[str, str], settings: HydraSettings, sweeping: bool) -> None:
    """Put the run settings that Hydra's settings map to into ``cfg`` (see the module's docstring).

    The launcher's backend is chosen before, by :func:`choose_launcher_backend`.
    """
    _refuse_other_sweepers(settings)
    consumed = set(_READ_ELSEWHERE) | {"hydra/sweeper", "hydra.sweeper._target_"}
    _map_out_path(cfg, origins, settings, sweeping or _has_dimension(OmegaConf.to_container(cfg, resolve=False)),
                  consumed)
    _map_setting(cfg, origins, settings, "chdir", "hydra.job.chdir", consumed)
    _map_launcher_settings(cfg, origins, settings, consumed)
    for key in settings.given:
        if key in _HYDRA_DEFAULT_VALUES and settings.written(key) == _HYDRA_DEFAULT_VALUES[key]:
            continue
        if not any(key == c or key.startswith(f"{c}.") for c in consumed):
            reason = _REASONS.get(key)
            settings.ignored.append(f"{settings.described(key)} ({reason})" if reason else settings.described(key))


def _refuse_other_sweepers(settings: HydraSettings) -> None:
    """``hydra/sweeper=optuna``: an adaptive search is a search group here (``search=optuna``), not a sweeper."""
    sweeper = settings.value(f"{HYDRA_KEY}.runtime.choices")["hydra/sweeper"]
    if sweeper != "basic":
        typed = settings.typed.get("hydra/sweeper")
        where = f"override {typed!r}" if typed else f"hydra/sweeper={sweeper} (in a defaults list)"
        raise ConfigError(
            f"{where}: Hydra's sweepers other than basic are not used here; for an adaptive search choose "
            "search=optuna and remove the sweeper choice (hydra.sweeper.n_trials is search.n_trials, "
            ".direction search.direction, .sampler.seed search.seed; .params are the overrides themselves)"
        )


def _level_of_ours(origin: Optional[str]) -> int:
    if origin is None:
        return _ABSENT_LEVEL
    if origin.startswith("override "):
        return _COMMAND_LINE
    return _ABSENT_LEVEL if Path(origin).parent.parent == PACKAGE_CONF else _FILE


def _wins(ours_level: int, settings: HydraSettings, hydra_key: str, ours: str, ours_value: Any,
          value: Any) -> bool:
    """Whether Hydra's setting applies; when ours wins over a different value, Hydra's is named as ignored."""
    if settings.level(hydra_key) > ours_level:
        return True
    if ours_value != value:
        settings.ignored.append(f"{settings.described(hydra_key)} ({ours} is given)")
    return False


def _map_out_path(cfg: DictConfig, origins: Dict[str, str], settings: HydraSettings, sweeping: bool,
                  consumed: set) -> None:
    used, other = ("hydra.sweep.dir", "hydra.run.dir") if sweeping else ("hydra.run.dir", "hydra.sweep.dir")
    consumed.add(other)  # the one for the other kind of run, as in Hydra: not named
    _map_setting(cfg, origins, settings, "out_path", used, consumed)


def _map_setting(cfg: DictConfig, origins: Dict[str, str], settings: HydraSettings, ours: str, hydra_key: str,
                 consumed: set) -> None:
    """One of Hydra's settings onto our top-level run setting ``ours``."""
    if not settings.level(hydra_key):
        return
    consumed.add(hydra_key)
    value = settings.written(hydra_key)
    if value is None:
        return
    current = cfg.get(ours) if ours in cfg else None
    if _wins(_level_of_ours(origins.get(ours)), settings, hydra_key, ours, current, value):
        cfg[ours] = value
        origins[ours] = settings.origin(hydra_key)


def choose_launcher_backend(
    cfg: DictConfig, origins: Dict[str, str], choices: Dict[str, Optional[str]], settings: HydraSettings,
    source: ConfigSource, backend_on_command_line: bool,
) -> None:
    """``hydra/launcher=joblib`` -> ``backend=multiprocessing``, before the command line's ``backend.<key>``
    overrides are checked against the backend's settings."""
    group = "hydra/launcher"
    if not settings.level(group):
        return
    launcher = settings.value(f"{HYDRA_KEY}.runtime.choices")[group]
    if launcher not in LAUNCHERS:
        known = ", ".join(LAUNCHERS)
        raise ConfigError(
            f"{settings.origin(group) if group in settings.typed else 'the defaults list'}: hydra/launcher={launcher} "
            f"has no equivalent backend here: use hydra/launcher={known.replace(', ', '|')} or backend=NAME"
        )
    settings.launcher = launcher
    backend = LAUNCHERS[launcher][0]
    ours_level = _COMMAND_LINE if backend_on_command_line else _FILE if choices.get("backend") or (
        "backend" in cfg and _level_of_ours(origins.get("backend"))) else _ABSENT_LEVEL
    current = cfg.backend.get("name", choices.get("backend")) if isinstance(cfg.get("backend"), DictConfig) else (
        cfg.get("backend") or choices.get("backend"))
    if not _wins(ours_level, settings, group, f"backend={current}", current, backend):
        return
    settings.launcher_applies = True
    if current != backend:
        node, _ = source.load(f"backend/{backend}")
        cfg.backend = node
        for key in node:
            origins[f"backend.{key}"] = str(source.file(f"backend/{backend}"))
    origins["backend"] = settings.origin(group)
    choices["backend"] = backend


def _map_launcher_settings(cfg: DictConfig, origins: Dict[str, str], settings: HydraSettings, consumed: set) -> None:
    """The chosen launcher's settings that have an equivalent onto the backend's."""
    if settings.launcher is None:
        return
    consumed.update({"hydra/launcher", "hydra.launcher._target_"})
    if not settings.launcher_applies:
        return
    for name, (setting, convert) in LAUNCHERS[settings.launcher][1].items():
        key = f"hydra.launcher.{name}"
        if settings.level(key):
            consumed.add(key)
            _map_backend_option(cfg, origins, settings, key, setting, convert(settings.value(key)))


def _map_backend_option(cfg: DictConfig, origins: Dict[str, str], settings: HydraSettings, hydra_key: str,
                        setting: str, value: Any) -> None:
    top, nested = origins.get(setting), origins.get(f"backend.{setting}")
    ours_level = max(_level_of_ours(top) if setting in cfg else 0, _level_of_ours(nested))
    current = cfg.backend.get(setting)
    if isinstance(value, dict) and isinstance(current, DictConfig):
        value = {**OmegaConf.to_container(current, resolve=False), **value}  # sbatch options add up
        ours_level = _ABSENT_LEVEL
    if _wins(ours_level, settings, hydra_key, setting, current, value):
        cfg.backend[setting] = value
        origins[f"backend.{setting}"] = settings.origin(hydra_key)


def _has_dimension(node: Any) -> bool:
    if isinstance(node, dict):
        return VARIATION_KEY in node or any(_has_dimension(value) for value in node.values())
    if isinstance(node, list):
        return any(_has_dimension(value) for value in node)
    return isinstance(node, str) and "${variation:" in node


def warn_of_ignored(ignored: Iterable[str]) -> None:
    """The one line naming every Hydra setting the run ignores."""
    names = list(dict.fromkeys(ignored))
    if names:
        warnings.warn(
            f"Hydra settings without an equivalent here, ignored: {', '.join(names)}",
            IgnoredSettingWarning, stacklevel=3,
        )


# ---------------------------------------------------------------- multirun or not, and the sweeper's parameters

#: ``hydra.mode``'s values (Hydra's RunMode, by name): whether the run is a multirun.
_MODES = {"RUN": False, "MULTIRUN": True}


def is_multirun(root: Optional[DictConfig], multirun: bool, ignored: List[str]) -> bool:
    """Whether the run is a multirun, as Hydra 1.3 decides: ``-m`` (``multirun``), or ``hydra.mode: MULTIRUN``.

    ``root`` is the hydra node as composed (``{hydra: ...}``): the mode may come from the command line
    (``hydra.mode=MULTIRUN``) or any config's ``hydra:`` block. ``-m`` with ``hydra.mode=RUN`` is a multirun,
    as in Hydra (which warns): that mode is added to ``ignored``.
    """
    mode = OmegaConf.select(root, f"{HYDRA_KEY}.mode", default=None) if root is not None else None
    if mode is None:
        return multirun
    if not isinstance(mode, str) or mode not in _MODES:
        raise ConfigError(f"hydra.mode is RUN or MULTIRUN (or null), as in Hydra, not {mode!r}")
    if multirun and not _MODES[mode]:
        ignored.append("hydra.mode=RUN (-m/--multirun makes the run a multirun, as in Hydra)")
    return multirun or _MODES[mode]


def sweeper_params(root: Optional[DictConfig]) -> List[str]:
    """``hydra.sweeper.params`` as overrides (``key=value``), as Hydra's basic sweeper reads them."""
    params = OmegaConf.select(root, f"{HYDRA_KEY}.sweeper.params", default=None) if root is not None else None
    if not params:
        return []
    return [f"{key}={value}" for key, value in OmegaConf.to_container(params, resolve=False).items()]


def with_sweeper_params(params: Sequence[Override], command_line: Sequence[Override]) -> List[Override]:
    """The sweeper's parameters, then the command line's overrides; one of the same key replaces a parameter.

    As Hydra's basic sweeper: the parameter keeps its place, the command line's value wins.
    """
    by_key: Dict[str, Override] = {}
    for override in [*params, *command_line]:
        by_key[_key_element(override)] = override
    return list(by_key.values())


def _key_element(override: Override) -> str:
    return override.text.partition("=")[0].strip()
