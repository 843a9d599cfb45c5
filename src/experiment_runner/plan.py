"""The plan step: from (basecfg, cfgs) to everything a run needs, checked, before anything runs.

:func:`plan_run` is pure: it starts no process, opens no connection and
writes no file. Any bad input (a setting, the backend, an option, a cfg, a
secret key) raises here with one clear line. The Python API, the command
line's run, ``--list`` and ``--resume`` all go through it; the runner then
executes the plan (session, store, progress, summary).
"""
from __future__ import annotations

import dataclasses
import itertools
import warnings
from collections.abc import Sequence as SequenceABC
from typing import (
    Any, Callable, ClassVar, Dict, FrozenSet, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Type,
)

from .errors import ConfigError, IgnoredSettingWarning, ReservedKeyError, stacklevel_of_the_caller
from .experiment import RESERVED_KEYS, Experiment
from .launchers import (
    get_launcher_class, known_settings, owning_backends, plugin_option_names, secret_options, settings_owner,
)
from .launchers.base import Launcher
from .launchers.options import check_options as check_backend_options
from .serialization import (
    ABSENT, dotted_keys, is_mapping, lookup, mask_secrets, secret_paths, to_jsonable, to_stage_values,
)
from .search.settings import SearchSettings, search_settings
from .search.space import Space
from .search.study import check_study, import_optuna
from .settings import RunSettings, unknown_key_error, whole_number
from .sweep import find_loop, is_omegaconf, plain_config

__all__ = [
    "RunPlan", "Experiments", "plan_run", "make_experiments", "check_options", "run_secret_keys",
]


@dataclasses.dataclass(frozen=True)
class SearchPlan:
    """An adaptive search: its settings and its space."""

    settings: SearchSettings
    space: Space


#: A caller's own check, run once the settings and the backend are known, before the backend's options are.
ExtraCheck = Callable[[RunSettings, Type[Launcher]], None]


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """A run, checked and ready to execute.

    ``settings.out_path`` and ``settings.if_exists`` are the out_path policy
    the store applies (which folder, and what to do when it holds files);
    ``record`` is run.yaml's content, secrets masked, which the store writes.
    """

    settings: RunSettings
    launcher_class: Type[Launcher]
    experiments: "Experiments"
    #: The dotted keys whose values the run keeps secret: the user's secret_keys and the backends' secret settings.
    secret_keys: FrozenSet[str]
    record: Dict[str, Any]
    #: An adaptive search (its settings and space), whose trials are made as it runs; None for a sweep's list.
    search: Optional[SearchPlan] = None

    def launcher(self) -> Launcher:
        return self.launcher_class(self.settings)

    def in_folder(self, out_path: str) -> "RunPlan":
        """This plan, writing to ``out_path``: the empty folder claimed for it (if_exists=new), its own."""
        settings = dataclasses.replace(self.settings, out_path=out_path, if_exists="error")
        record = {**self.record, "out_path": out_path}
        return dataclasses.replace(self, settings=settings, experiments=self.experiments.in_folder(out_path),
                                   record=record)


class Experiments(SequenceABC):
    """The experiments of a run, made from its cfgs as they are read: a run of a million holds none of them.

    Reading experiment ``i`` makes it from ``cfgs[i]`` again (the plan step
    checked every cfg once already). A run of at most :attr:`keep_at_most`
    experiments keeps those the plan step made instead: a few megabytes, and
    its driver then makes each experiment once, as before experiments streamed.
    """

    #: Up to this many experiments, the plan step's are kept (see the class docstring).
    keep_at_most: ClassVar[int] = 10_000

    def __init__(self, cfgs: Sequence[Mapping[str, Any]], maker: "_ExperimentMaker",
                 kept: Optional[List[Experiment]] = None):
        self._cfgs = cfgs
        self._maker = maker
        self._kept = kept

    def __len__(self) -> int:
        return len(self._cfgs)

    def __getitem__(self, index: int) -> Experiment:  # type: ignore[override]
        if not isinstance(index, int):
            raise TypeError(f"experiments are read one at a time, by an int index, not {type(index).__name__}")
        if self._kept is not None:
            return self._kept[index]
        if index < 0:
            index += len(self._cfgs)
        return self._maker.make(index, self._cfgs[index])

    def __iter__(self) -> Iterator[Experiment]:
        if self._kept is not None:
            return iter(self._kept)
        return itertools.starmap(self._maker.make, enumerate(self._cfgs))

    def make(self, experiment_id: int, cfg: Mapping[str, Any]) -> Experiment:
        """Experiment ``experiment_id`` of ``cfg``, checked, made as this run makes its experiments."""
        return self._maker.make(experiment_id, cfg)

    def in_folder(self, out_path: str) -> "Experiments":
        """These experiments, in ``out_path``."""
        kept = None if self._kept is None else [dataclasses.replace(e, out_path=out_path) for e in self._kept]
        return Experiments(self._cfgs, dataclasses.replace(self._maker, out_path=out_path), kept)


def plan_run(
    basecfg: Mapping[str, Any],
    cfgs: Iterable[Mapping[str, Any]],
    *,
    run_record: Optional[Mapping[str, Any]] = None,
    check_first: Optional[ExtraCheck] = None,
    **more_settings: Any,
) -> RunPlan:
    """The plan of running every cfg of ``cfgs`` with the settings of ``basecfg`` (and ``more_settings``).

    Takes what :func:`~experiment_runner.runner.run_experiments` takes and
    raises the same errors for bad input, without running or writing
    anything. ``run_record`` is what run.yaml keeps beyond the settings (the
    command line records how to compose the sweep again); ``check_first``
    a check of the caller's, run before the backend's options are checked.

    ``cfgs`` is read again as the run goes: a sequence (a list, a sweep's
    lazy sequence) is read where it is; any other iterable (a generator) is
    listed once, first.
    """
    settings = RunSettings.from_basecfg(basecfg, more_settings)
    launcher_class = get_launcher_class(settings.backend)
    if check_first is not None:
        check_first(settings, launcher_class)
    check_options(settings, launcher_class)
    secret_keys = run_secret_keys(settings, launcher_class)
    search = search_settings(settings.search)
    if search is not None:
        return _search_plan(settings, launcher_class, cfgs, search, secret_keys, run_record)
    source = _rereadable(cfgs)
    maker = _ExperimentMaker.of(settings, secret_keys)
    experiments = Experiments(source, maker, _check_each(source, maker, settings))
    record = {**describe_run(settings, len(experiments), secret_keys), **(run_record or {})}
    return RunPlan(settings, launcher_class, experiments, secret_keys, record)


def _search_plan(settings: RunSettings, launcher_class: Type[Launcher], space_cfg: Any, search: SearchSettings,
                 secret_keys: FrozenSet[str], run_record: Optional[Mapping[str, Any]]) -> RunPlan:
    """The plan of an adaptive search over the space ``space_cfg``: its trials are made as the study asks them."""
    if isinstance(space_cfg, SequenceABC) and not isinstance(space_cfg, str) and len(space_cfg) == 1:
        space_cfg = space_cfg[0]  # [space], as a sweep's one configuration is given
    space = space_cfg if isinstance(space_cfg, Space) else Space(plain_config(space_cfg, "the search space"))
    maker = _ExperimentMaker.of(settings, secret_keys)
    _check_each(space.examples(), maker, settings)  # a bad configuration (a reserved key, say) is found now
    import_optuna()  # a search needs it: without it, one line saying how to install it, before its space is read
    check_study(search, space.distributions(), space.conditional)
    record = {**describe_run(settings, search.n_trials, secret_keys),
              "search": {"name": "optuna", **dataclasses.asdict(search), "space": space.described()},
              **(run_record or {})}
    return RunPlan(settings, launcher_class, Experiments([], maker), secret_keys, record, SearchPlan(search, space))


def _check_each(cfgs: Sequence[Mapping[str, Any]], maker: "_ExperimentMaker", settings: RunSettings
                ) -> Optional[List[Experiment]]:
    """Make each experiment once, so that any bad cfg is found now; the experiments, if few enough to keep.

    Also checks, as it goes, that each secret key is a parameter of some experiment (a secret key that is
    none is most likely misspelt, and its secret would be stored), holding only the first config besides.
    """
    kept: Optional[List[Experiment]] = []
    unseen = [key for key in settings.secret_keys if key not in settings.options]
    first: Optional[Dict[str, Any]] = None
    for experiment in itertools.starmap(maker.make, enumerate(cfgs)):
        if first is None:
            first = experiment.config
        if unseen:
            unseen = [key for key in unseen if lookup(experiment.config, key) is ABSENT]
        if kept is not None:
            kept.append(experiment)
            if len(kept) > Experiments.keep_at_most:
                kept = None
    if unseen:
        raise _no_such_parameter(unseen[0], first)
    return kept


def make_experiments(cfgs: Iterable[Mapping[str, Any]], settings: RunSettings,
                     run_secrets: Optional[FrozenSet[str]] = None) -> List[Experiment]:
    """One Experiment per cfg, numbered from 0; each cfg must be a JSON-able dict without reserved keys.

    ``run_secrets``: the run's secret keys, if the caller has them already (see :func:`run_secret_keys`).
    """
    maker = _ExperimentMaker.of(settings, run_secret_keys(settings) if run_secrets is None else run_secrets)
    return list(itertools.starmap(maker.make, enumerate(_rereadable(cfgs))))


def _rereadable(cfgs: Iterable[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
    """``cfgs`` as a sequence the run can read again: as it is if it is one, else listed (a generator)."""
    if isinstance(cfgs, (Mapping, str, bytes)) or not isinstance(cfgs, Iterable):
        one = ": to run one configuration, pass [cfg]" if isinstance(cfgs, Mapping) else ""
        raise ConfigError(f"cfgs must be a list of configurations (dicts), got {type(cfgs).__name__}{one}")
    return cfgs if isinstance(cfgs, SequenceABC) else list(cfgs)


@dataclasses.dataclass(frozen=True)
class _ExperimentMaker:
    """Makes experiment ``i`` of a run from its cfg, checking the cfg: the same every time it is asked."""

    settings: RunSettings
    secret_keys: Tuple[str, ...]
    out_path: str

    @classmethod
    def of(cls, settings: RunSettings, secret_keys: FrozenSet[str]) -> "_ExperimentMaker":
        return cls(settings, tuple(sorted(secret_keys)), settings.out_path)

    def make(self, experiment_id: int, cfg: Mapping[str, Any]) -> Experiment:
        settings = self.settings
        where = f"cfgs[{experiment_id}]"
        if not is_mapping(cfg):
            raise ConfigError(f"{where} must be a dict, got {type(cfg).__name__}: {cfg!r:.60}")
        own_secret_keys = _with_derived_secret_keys(cfg, self.secret_keys, settings)
        cfg = plain_config(cfg, where)
        reserved = [key for key in RESERVED_KEYS if key in cfg]
        if reserved:
            raise ReservedKeyError(
                f"{where} sets {', '.join(reserved)}, which the runner sets for each experiment; rename the key",
                reserved,
            )
        config, holds_non_json = _stage_values(cfg, where)
        repetitions = whole_number(config.get("repetitions", settings.repetitions), f"{where}.repetitions", 1)
        return Experiment(experiment_id, config, self.out_path, repetitions, settings.timeout, own_secret_keys,
                          settings.chdir, holds_non_json)


def _with_derived_secret_keys(cfg: Mapping[str, Any], secret_keys: Tuple[str, ...], settings: RunSettings
                              ) -> Tuple[str, ...]:
    """``secret_keys``, and for an OmegaConf cfg its keys that interpolate a secret (``Bearer ${api_key}``)."""
    if not settings.secret_keys or not is_omegaconf(cfg):
        return secret_keys
    from .config import derived_secret_keys

    derived = derived_secret_keys(cfg, frozenset(secret_keys))
    return tuple(sorted({*secret_keys, *derived})) if derived else secret_keys


def _stage_values(cfg: Mapping[str, Any], where: str) -> Tuple[Dict[str, Any], bool]:
    """``cfg`` as plain data (see :func:`to_stage_values`); a cfg that contains itself is an error naming the loop.

    The loop is looked for only once the conversion overflowed the stack, so
    a run of a million configurations does not walk each of them twice.
    """
    try:
        return to_stage_values(cfg, where)
    except RecursionError:
        loop = find_loop(cfg, where)
        if loop is None:
            raise
        raise loop from None  # the overflow's thousands of lines say nothing more


def run_secret_keys(settings: RunSettings, launcher_class: Optional[Type[Launcher]] = None) -> FrozenSet[str]:
    """The dotted keys whose values the run keeps secret: its secret_keys and the backends' secret settings."""
    launcher_class = launcher_class or get_launcher_class(settings.backend)
    return secret_paths(settings.secret_keys, secret_options(launcher_class, settings.options))


def _no_such_parameter(key: str, first_config: Optional[Mapping[str, Any]]) -> ConfigError:
    known = set(dotted_keys(first_config)) if first_config is not None else set()
    return unknown_key_error(key, known, "secret_keys: no experiment has this parameter")


def check_options(settings: RunSettings, launcher_class: Type[Launcher]) -> None:
    """The backend's settings, valid; a key that neither the core nor any backend reads is most likely a typo.

    Settings of other backends are ignored with a warning: scripts written for
    the original package keep every backend's settings in one basecfg.
    """
    known = known_settings(launcher_class)
    for key in settings.options:
        if key not in known and not owning_backends(key, launcher_class.option_names):  # not even a plugin's
            raise unknown_key_error(key, known | plugin_option_names())
    _warn_of_other_backends_settings(settings, launcher_class)
    check_backend_options(launcher_class.Options, settings)


def _warn_of_other_backends_settings(settings: RunSettings, launcher_class: Type[Launcher]) -> None:
    """One IgnoredSettingWarning per other backend whose settings basecfg holds."""
    by_owners: Dict[Tuple[str, ...], List[str]] = {}
    for key in settings.options:
        owners = tuple(owning_backends(key, launcher_class.option_names))
        if owners:
            by_owners.setdefault(owners, []).append(key)
    for owners, keys in by_owners.items():
        pronoun = "it" if len(keys) == 1 else "them"
        warnings.warn(
            f"{settings_owner(keys, owners)}; backend={settings.backend} ignores {pronoun}",
            IgnoredSettingWarning, stacklevel=stacklevel_of_the_caller(),
        )


def describe_run(settings: RunSettings, n_experiments: int, secret_keys: FrozenSet[str]) -> Dict[str, Any]:
    """run.yaml's record of the run's settings, secrets masked."""
    stages = {name: _qualified_name(getattr(settings.stages, name)) for name in ("pre", "fit", "post")}
    return {
        "out_path": settings.out_path,
        "backend": settings.backend,
        "experiments": n_experiments,
        "stages": stages,
        "settings": {
            "repetitions": settings.repetitions,
            "timeout": settings.timeout,
            "retries": settings.retries,
            "num_cpus": settings.num_cpus,
            "num_gpus": settings.num_gpus,
            "max_memory": settings.max_memory,
            "secret_keys": list(settings.secret_keys),
            "chdir": settings.chdir,
            **to_jsonable(mask_secrets(_storable(settings.options), secret_keys), "options"),
        },
    }


def _storable(options: Dict[str, Any]) -> Dict[str, Any]:
    """Options as they can be stored: callables by their import path."""
    return {k: _qualified_name(v) if callable(v) else v for k, v in options.items()}


def _qualified_name(function: Optional[Callable[..., Any]]) -> Optional[str]:
    if function is None:
        return None
    return f"{getattr(function, '__module__', '?')}:{getattr(function, '__qualname__', repr(function))}"
