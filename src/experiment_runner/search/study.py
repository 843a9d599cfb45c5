"""The Optuna study of a search, kept in the out_path tree: its sampler, its pruner, its storage.

The study is stored with Optuna's journal storage in ``<out_path>/study.journal``,
not its RDB storage on a SQLite file. The journal is an append-only file of
JSON lines, one per change (a trial asked, a value reported, a trial told):
a driver killed with ``kill -9`` mid-write leaves at most one torn last line,
which Optuna skips when it reads the file again, and nothing before it can be
damaged. SQLite recovers from a killed writer too (through its rollback
journal), but it relies on POSIX byte-range locks, which NFS and other shared
filesystems (where a cluster's out_path lives) often break, corrupting the
database; the journal's own lock is a file made by a single link() call,
which those filesystems honour. The file also reads with a text editor.

A driver killed while it held that lock leaves its lock file behind, which
Optuna would wait 30 s to take over: the driver holds the out_path's own lock
(store.py) whenever it opens the study, so no other process writes the
journal, and a leftover lock file is removed then.
"""
from __future__ import annotations

import importlib
import inspect
import math
from pathlib import Path
from typing import Any, Dict, Mapping, Sequence

from ..errors import ConfigError, MissingDependencyError
from .settings import PRUNERS, SAMPLERS, Named, SearchSettings

__all__ = ["STUDY_NAME", "import_optuna", "open_study", "load_study", "check_study", "trial_budget"]

#: The name of the study in that file (one per run).
STUDY_NAME = "search"


def import_optuna() -> Any:
    """optuna, or a MissingDependencyError saying how to install it."""
    try:
        return importlib.import_module("optuna")
    except ImportError as error:
        if error.name is None or not error.name.startswith("optuna"):
            raise
        raise MissingDependencyError(
            "search=optuna needs Optuna, which is not installed: pip install 'experiment-runner[search]'"
        ) from error


def open_study(path: Path, settings: SearchSettings, distributions: Mapping[str, Any]) -> Any:
    """The run's study in the journal file ``path``: created, or loaded as the run that stopped left it.

    Call it holding the out_path's lock (see the module docstring).
    """
    optuna = import_optuna()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress bar and results.jsonl say what ran
    Path(f"{path}.lock").unlink(missing_ok=True)  # left by a driver killed while it wrote
    storage = JournalStorage(JournalFileBackend(str(path)))
    return optuna.create_study(
        storage=storage, study_name=STUDY_NAME, load_if_exists=True, directions=list(settings.directions),
        sampler=make_sampler(settings, distributions), pruner=make_pruner(settings.pruner),
    )


def load_study(path: Path) -> Any:
    """The study in the journal file ``path``, to read (the report's plots)."""
    optuna = import_optuna()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=STUDY_NAME, storage=JournalStorage(JournalFileBackend(str(path))))


def trial_budget(settings: SearchSettings, distributions: Mapping[str, Any]) -> int:
    """n_trials; for the grid sampler at most the grid's size, as Hydra's Optuna sweeper does (more would only
    repeat points of the grid)."""
    name, arguments = _split(settings.sampler)
    if name != "grid":
        return settings.n_trials
    grid = arguments.get("search_space") or _grid_space(distributions)
    return min(settings.n_trials, math.prod(len(values) for values in grid.values()))


def check_study(settings: SearchSettings, distributions: Mapping[str, Any], conditional: Sequence[str] = ()) -> None:
    """Make the sampler and the pruner once, so that Optuna's refusal of an argument comes before anything runs.

    The grid sampler is refused a conditional space: it would walk the grid of every dimension, those a trial does
    not search included, and run the same configuration again and again (bruteforce walks a conditional space)."""
    if conditional and _split(settings.sampler)[0] == "grid":
        raise ConfigError("search.sampler=grid needs every trial to search the same "
                          f"dimensions, but {conditional[0]} is searched under some choices only: run the grid "
                          "(search=grid), which runs each configuration once")
    make_sampler(settings, distributions)
    make_pruner(settings.pruner)


def make_sampler(settings: SearchSettings, distributions: Mapping[str, Any]) -> Any:
    """The sampler ``settings.sampler`` names, with its arguments and the search's seed."""
    name, arguments = _split(settings.sampler)
    sampler_class = getattr(importlib.import_module("optuna.samplers"), SAMPLERS[name])
    if name == "grid" and "search_space" not in arguments:
        arguments["search_space"] = _grid_space(distributions)
    if settings.seed is not None and "seed" in inspect.signature(sampler_class).parameters:
        arguments.setdefault("seed", settings.seed)
    if name in _STOPPING:
        sampler_class = type(sampler_class.__name__, (sampler_class,), {"after_trial": _keep_going})
    return _made(sampler_class, arguments, f"search.sampler={name}")


#: Samplers that stop the study once their space is exhausted: a call made for study.optimize only, which raises
#: when trials are told (ask and tell). Here the search's budget ends it: set n_trials to the space's size.
_STOPPING = ("grid", "bruteforce")


def _keep_going(self: Any, *args: Any) -> None:
    """after_trial of a sampler of _STOPPING: nothing (the budget, n_trials, stops the search)."""


def make_pruner(pruner: Named) -> Any:
    name, arguments = _split(pruner)
    return _made(getattr(importlib.import_module("optuna.pruners"), PRUNERS[name]), arguments, f"search.pruner={name}")


def _split(named: Named) -> tuple:
    if isinstance(named, Mapping):
        arguments = dict(named)
        return arguments.pop("name"), arguments
    return named, {}


def _made(cls: Any, arguments: Dict[str, Any], what: str) -> Any:
    try:
        return cls(**arguments)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{what}: Optuna's {cls.__name__} refuses {arguments!r}: {error}") from error


def _grid_space(distributions: Mapping[str, Any]) -> Dict[str, list]:
    """The grid sampler's values of each dimension: a categorical's choices, a stepped range's steps."""
    from optuna.distributions import CategoricalDistribution

    grid = {}
    for name, distribution in distributions.items():
        if isinstance(distribution, CategoricalDistribution):
            grid[name] = list(distribution.choices)
        elif distribution.step is not None and not distribution.log:
            count = int(round((distribution.high - distribution.low) / distribution.step)) + 1
            grid[name] = [distribution.low + i * distribution.step for i in range(count)]
        else:
            raise ConfigError(f"search.sampler=grid needs a finite space: {name} is a continuous range; "
                              "give it a step, or a Variation of values")
    return grid
