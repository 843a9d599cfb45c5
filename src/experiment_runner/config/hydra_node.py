"""The ``hydra`` node: Hydra's own settings, kept apart from the experiment's config.

In a Hydra project the top-level ``hydra:`` block of a config (and the
command line's ``hydra.*=...`` and ``hydra/<group>=...`` overrides, and the
``override hydra/<group>: ...`` entries of defaults lists) configure Hydra,
never the task: Hydra removes the node before the task sees its config. Here
too: each :class:`~.composition.Branch` holds its ``hydra`` node beside its
config, built in Hydra's order (Hydra's own defaults first, then the files in
defaults-list order, then the command line), and no experiment parameter,
config.json or config hash ever holds it.

The node answers the ``${hydra:...}`` resolver (``${hydra:runtime.choices.db}``,
``${hydra:job.name}``, ...) and is what :mod:`.hydra_settings` maps onto this
package's run settings. ``job.name`` is the name of the script that
``@experiment_runner.main`` decorates (its file name without ``.py``, as
Hydra's), or the primary config's name for the ``experiment-runner`` command.
"""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from omegaconf import DictConfig, OmegaConf

from ..errors import ConfigError
from ..serialization import ABSENT, lookup
from . import override_dirname
from .files import ConfigSource
from .hydra_resolver import HYDRA_KEY, attach_hydra_node
from .overrides import DELETE, FORCE_ADD, SET, Override
from .value_overrides import apply_value_override

#: The options Hydra 1.3 selects for its own config groups unless told otherwise.
HYDRA_DEFAULT_CHOICES: Dict[str, Optional[str]] = {
    "hydra/env": "default", "hydra/callbacks": None, "hydra/job_logging": "default",
    "hydra/hydra_logging": "default", "hydra/hydra_help": "default", "hydra/help": "default",
    "hydra/sweeper": "basic", "hydra/launcher": "basic", "hydra/output": "default",
}
#: Hydra 1.3's own settings with its default options, as keys below ``hydra``: a key that is none of these
#: nor inside one cannot be set without ``+`` (Hydra refuses it too). Logging and help configs: their parts.
HYDRA_SETTINGS = frozenset({
    "mode", "searchpath", "env", "callbacks", "output_subdir", "verbose", "run.dir", "sweep.dir", "sweep.subdir",
    "sweeper._target_", "sweeper.max_batch_size", "sweeper.params", "job.name", "job.chdir", "job.override_dirname",
    "job.id", "job.num", "job.config_name", "job.env_set", "job.env_copy", "job.config.override_dirname.kv_sep",
    "job.config.override_dirname.item_sep", "job.config.override_dirname.exclude_keys", "overrides.hydra",
    "overrides.task", "runtime", "help.app_name", "help.header", "help.footer", "help.template",
    "hydra_help.template", "hydra_help.hydra_help",
    *(f"{logging}.{part}" for logging in ("job_logging", "hydra_logging")
      for part in ("version", "formatters", "handlers", "root", "loggers", "disable_existing_loggers")),
})
#: The settings of each Hydra launcher that has an equivalent backend here (``hydra.launcher.<key>``).
LAUNCHER_SETTINGS = {
    "basic": frozenset({"_target_"}),
    "joblib": frozenset({"_target_", "n_jobs", "backend", "prefer", "require", "verbose", "timeout", "pre_dispatch",
                         "batch_size", "temp_folder", "max_nbytes", "mmap_mode"}),
    "submitit_slurm": frozenset({
        "_target_", "submitit_folder", "timeout_min", "cpus_per_task", "gpus_per_node", "tasks_per_node", "mem_gb",
        "nodes", "name", "stderr_to_stdout", "partition", "qos", "comment", "constraint", "exclude", "gres",
        "cpus_per_gpu", "gpus_per_task", "mem_per_gpu", "mem_per_cpu", "account", "signal_delay_s",
        "max_num_timeout", "additional_parameters", "array_parallelism", "setup",
    }),
    "ray": frozenset({"_target_", "ray"}),
}


def is_hydra_override(override: Override) -> bool:
    """``hydra.run.dir=...``, ``+hydra.x=...``, ``hydra/launcher=joblib``: an override of Hydra's settings."""
    return override.key == HYDRA_KEY or override.key.startswith((f"{HYDRA_KEY}.", f"{HYDRA_KEY}/"))


def is_hydra_group(group: str) -> bool:
    return group.startswith(f"{HYDRA_KEY}/")


# ---------------------------------------------------------------- defaults lists


@dataclasses.dataclass(frozen=True)
class HydraAwareSource(ConfigSource):
    """A config directory whose defaults lists lose their entries of Hydra's own groups as they are read.

    ``override hydra/launcher: joblib`` (``/hydra/launcher`` in a config of a
    group) selects an option of Hydra's, never a file of the project: each is
    kept in :attr:`choices` (in the order read) for the ``hydra`` node instead.
    """

    choices: List[Tuple[str, Optional[str], str]] = dataclasses.field(default_factory=list, compare=False, hash=False)

    @classmethod
    def of(cls, source: ConfigSource) -> "HydraAwareSource":
        return cls(source.root, source.fallback, source.extra)

    def load(self, name: str) -> Tuple[DictConfig, Optional[str]]:
        cfg, header = super().load(name)
        if isinstance(cfg.get("defaults", None), Sequence) and not isinstance(cfg.defaults, str):
            self._take_hydra_entries(cfg, name)
        return cfg, header

    def _take_hydra_entries(self, cfg: DictConfig, name: str) -> None:
        where = str(self.file(name))
        kept = []
        for entry in OmegaConf.to_container(cfg.defaults, resolve=False):  # type: ignore[union-attr]
            taken = _hydra_entry(entry, name.rpartition("/")[0], where)
            if taken is None:
                kept.append(entry)
            else:
                self.choices.append((*taken, where))
        cfg.defaults = kept


def _hydra_entry(entry: Any, parent: str, where: str) -> Optional[Tuple[str, Optional[str]]]:
    """(group, option) of a defaults entry naming one of Hydra's groups, else None.

    ``parent`` is the group of the config the entry is in ("" for a config at the root): a
    relative group is below it, so ``override job_logging: colorlog`` in an option of the
    ``hydra`` group (``hydra/default.yaml``) chooses Hydra's ``hydra/job_logging``.
    """
    if not (isinstance(entry, dict) and len(entry) == 1):
        return None
    (key, option), = entry.items()
    words = str(key).split()
    group = words[-1]
    if not group.startswith("/") and parent:
        group = f"{parent}/{group}"
    group = group.lstrip("/")
    if not is_hydra_group(group):
        return None
    if words[0] != "override":
        raise ConfigError(
            f"{where}: defaults entry {entry!r}: {group} is one of Hydra's own groups, already in its defaults "
            f"list: write 'override {group}: {option}'"
        )
    if option is not None and not isinstance(option, str):
        raise ConfigError(f"{where}: defaults entry {entry!r}: the option must be one name (or null)")
    return group, option


# ---------------------------------------------------------------- the node


def pop_hydra_node(cfg: DictConfig) -> Optional[DictConfig]:
    """The config's top-level ``hydra`` node, removed from it (None when it has none)."""
    if HYDRA_KEY not in cfg:
        return None
    node = cfg[HYDRA_KEY]
    del cfg[HYDRA_KEY]
    if node is not None and not isinstance(node, DictConfig):
        raise ConfigError(f"the config's hydra node must be a mapping of Hydra's settings, got {node!r}")
    return node


@dataclasses.dataclass
class HydraInputs:
    """What the node of one composition is built from, besides the config files' ``hydra:`` blocks."""

    job_name: str
    config_name: Optional[str]
    #: ``hydra.*`` and ``hydra/<group>`` overrides of the command line, in order.
    overrides: List[Override]
    #: The command line's other overrides: ``job.override_dirname`` is made of them.
    task_overrides: List[Override]
    #: Whether the run is a multirun (``-m``, or a command line that sweeps): Hydra then writes each job's
    #: overrides again from their values, and ``hydra.sweep.dir`` applies.
    multirun: bool = False
    #: Whether ``seed`` is a run setting only here (typed ``seed=N`` for a config without a ``seed`` of its own:
    #: it seeds the sampling), left out of ``job.override_dirname`` as the other run settings are; a project's
    #: own ``seed`` stays in it, as in Hydra.
    seed_is_setting_only: bool = False


def build_hydra_node(
    user_node: Optional[DictConfig], inputs: HydraInputs, choices: Mapping[str, Optional[str]],
    defaults_choices: Sequence[Tuple[str, Optional[str], str]],
) -> DictConfig:
    """The ``hydra`` node (as ``{hydra: ...}``, so that ``${hydra.job.name}`` inside it resolves).

    Hydra's defaults, then ``user_node`` (the files' blocks, merged in
    defaults-list order), then the command line's ``hydra.*`` overrides.
    """
    hydra_choices = {**HYDRA_DEFAULT_CHOICES, **{group: option for group, option, _ in defaults_choices}}
    for override in inputs.overrides:
        if "/" in override.key:
            hydra_choices[override.key] = _hydra_group_option(override)
    defaults = {
        "job": {
            "name": inputs.job_name, "config_name": inputs.config_name, "chdir": None,
            "override_dirname": "???", "id": "???", "num": "???",
            "config": {"override_dirname": {"kv_sep": "=", "item_sep": ",", "exclude_keys": []}},
        },
        "runtime": {"choices": {**choices, **hydra_choices}, "output_dir": "???", "cwd": os.getcwd()},
        "sweeper": {"params": None},
    }
    root = OmegaConf.create({HYDRA_KEY: defaults})
    if user_node is not None:
        root = OmegaConf.merge(root, {HYDRA_KEY: user_node})
    assert isinstance(root, DictConfig)
    for override in inputs.overrides:
        if "/" not in override.key:
            _apply_hydra_override(root, override, hydra_choices["hydra/launcher"], hydra_choices["hydra/sweeper"])
    _set_override_dirname(root, inputs)
    attach_hydra_node(root, root)  # ${hydra:...} inside the node's own values
    return root


def _hydra_group_option(override: Override) -> Optional[str]:
    if override.sweep:
        raise ConfigError(f"override {override.text!r}: Hydra's settings cannot be swept: a run has one {override.key}")
    if override.kind == DELETE:
        return None
    if override.value is not None and not isinstance(override.value, str):
        raise ConfigError(f"override {override.text!r}: the option must be one name")
    return override.value


def _apply_hydra_override(root: DictConfig, override: Override, launcher: Optional[str], sweeper: Optional[str]
                          ) -> None:
    """A ``hydra.*`` override, on the node as Hydra applies it: any key of Hydra's settings may be set.

    Under another sweeper than basic (``hydra/sweeper=optuna``), that sweeper's settings are taken as given:
    choosing it is refused later with the line that says what to use instead (hydra_settings.py)."""
    if override.sweep:
        raise ConfigError(f"override {override.text!r}: Hydra's settings cannot be swept: a run has one {override.key}")
    key = override.key.partition(".")[2]
    if not key and override.kind != DELETE and not isinstance(override.value, dict):
        raise ConfigError(
            f"override {override.text!r}: there is no config group 'hydra' to choose {override.value!r} from "
            f"(a hydra/ folder of the config directory, in the defaults list as '- hydra: NAME')"
        )
    other_sweepers = sweeper not in (None, "basic") and key.startswith("sweeper.")
    if override.kind == SET and not other_sweepers and not _is_hydra_setting(key, launcher):
        raise ConfigError(
            f"override {override.text!r}: Hydra's settings have no key {override.key!r} "
            f"(to add one, use +{override.text})"
        )
    if override.kind == DELETE and _is_hydra_schema_key(key, launcher):
        raise ConfigError(
            f"override {override.text!r}: {override.key} is one of Hydra's own settings, which Hydra cannot delete; "
            f"give it another value instead"
        )
    _refuse_null_parent(root, override)
    _refuse_scalar_parent(root, override)
    if override.kind == SET:
        override = dataclasses.replace(override, kind=FORCE_ADD)
    apply_value_override(root, override, ConfigSource(Path("."), fallback=None))


def _is_hydra_setting(key: str, launcher: Optional[str]) -> bool:
    """Whether ``key`` (below ``hydra``) is one of Hydra's settings, or inside one, with ``launcher`` chosen."""
    if key.startswith("launcher."):
        key, known = key.partition(".")[2], LAUNCHER_SETTINGS.get(str(launcher), frozenset())
    else:
        known = HYDRA_SETTINGS
    return not key or any(key == setting or key.startswith(f"{setting}.") or setting.startswith(f"{key}.")
                          for setting in known)


def _is_hydra_schema_key(key: str, launcher: Optional[str]) -> bool:
    """Whether ``key`` (below ``hydra``) is one of Hydra's settings or holds some: not a key inside one's value."""
    if key.startswith("launcher."):
        key, known = key.partition(".")[2], LAUNCHER_SETTINGS.get(str(launcher), frozenset())
    else:
        known = HYDRA_SETTINGS
    return not key or any(key == setting or setting.startswith(f"{key}.") for setting in known)


def _refuse_scalar_parent(root: DictConfig, override: Override) -> None:
    """``hydra.sweeper.params.db.timeout=7`` while ``params.db`` is ``glob(*)``: a value has no keys to set."""
    plain = OmegaConf.to_container(root, resolve=False)
    parts = override.key.split(".")
    for length in range(1, len(parts)):
        node = ".".join(parts[:length])
        value = lookup(plain, node)
        if value is not ABSENT and value is not None and not isinstance(value, dict):
            raise ConfigError(
                f"override {override.text!r}: {node} holds the value {value!r}, which has no keys to set; "
                f"give {node} a new value instead"
            )


def _refuse_null_parent(root: DictConfig, override: Override) -> None:
    """``hydra.sweeper.params={a: 1}`` or ``+hydra.sweeper.params.a=1`` while ``params`` is null: Hydra cannot
    merge into a null node either, so the sweeper's parameters go in a config's ``hydra:`` block."""
    plain = OmegaConf.to_container(root, resolve=False)
    parts = override.key.split(".")
    depth = len(parts) if isinstance(override.value, dict) and override.kind != DELETE else len(parts) - 1
    for length in range(1, depth + 1):
        node = ".".join(parts[:length])
        if lookup(plain, node) is None:
            raise ConfigError(
                f"override {override.text!r}: {node} is null, and Hydra merges nothing into a null node; "
                f"give {node} in the config's hydra block instead"
            )


def _set_override_dirname(root: DictConfig, inputs: HydraInputs) -> None:
    """Hydra's ``job.override_dirname`` (see :mod:`.override_dirname`); unknown (``???``) while a value sweeps."""
    job = root[HYDRA_KEY].job
    if not OmegaConf.is_missing(job, "override_dirname"):
        return
    options = OmegaConf.to_container(job.config.override_dirname, resolve=True)
    kept = override_dirname.kept(inputs.task_overrides, options, inputs.seed_is_setting_only)
    if not any(o.sweep for o in kept):
        items = [override_dirname.fixed_item(o, inputs.multirun) for o in kept]
        # resolved as Hydra resolves it, but an override of its own (+odn=${hydra:job.override_dirname}) stays
        # as typed rather than leading back to itself
        text = override_dirname.joined(items, options)
        job.override_dirname = re.sub(r"\$\{(hydra[:.]job\.override_dirname)\}", r"\\${\1}", text)


def per_experiment_values(root: DictConfig, inputs: HydraInputs) -> Dict[str, str]:
    """What each experiment of a sweep over values resolves for itself: ``job.override_dirname``, as an
    interpolation of the swept nodes (empty when the node knows it, or when nothing sweeps)."""
    job = root[HYDRA_KEY].job
    if not OmegaConf.is_missing(job, "override_dirname"):
        return {}
    options = OmegaConf.to_container(job.config.override_dirname, resolve=True)
    kept = override_dirname.kept(inputs.task_overrides, options, inputs.seed_is_setting_only)
    fixed = [override_dirname.fixed_item(o, inputs.multirun) for o in kept if not o.sweep]
    return {"job.override_dirname": override_dirname.template(fixed, [o for o in kept if o.sweep], options)}


def job_override(override: Override, option: Any) -> Override:
    """A swept group override as one job of the sweep has it: ``db=mysql`` of ``db=mysql,postgresql``."""
    text = f"{override_dirname.key_element(override)}={override_dirname.element_text(option)}"
    return dataclasses.replace(override, text=text, values=(option,), sweep=False)


def given_settings(user_node: Optional[DictConfig]) -> Iterator[str]:
    """The dotted keys (``hydra.run.dir``) of each value a ``hydra:`` block gives."""
    if user_node is None:
        return
    yield from (f"{HYDRA_KEY}.{key}" for key in _leaves(OmegaConf.to_container(user_node, resolve=False)))


def _leaves(node: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else str(key))
    elif prefix:
        yield prefix
