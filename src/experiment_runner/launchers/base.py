"""The contract every backend implements.

A launcher decides *where* experiments run, nothing else: it receives the
experiments and the stages, runs each experiment with
:func:`experiment_runner.experiment.run_experiment` somewhere, and yields one
:class:`Outcome` per experiment as each finishes. It never writes
results.jsonl or failures.jsonl: the driver's store records what it yields.
"""
from __future__ import annotations

import abc
from typing import ClassVar, FrozenSet, Iterator, Optional, Sequence

from ..errors import ConfigError
from ..experiment import Experiment, Outcome, Stages
from ..settings import RunSettings


def pickle_stages(stages: Stages, backend: str) -> bytes:
    """The stages as cloudpickle bytes for other processes or hosts.

    Functions of importable modules travel by reference, those of a script's
    ``__main__`` by value. Stages that cannot be pickled (a lambda closing
    over a lock, say) are a ConfigError naming the backend, before anything runs.
    """
    import cloudpickle

    try:
        return cloudpickle.dumps(stages)
    except Exception as error:
        raise ConfigError(
            f"backend={backend} cannot send the stage functions to where its experiments run "
            f"(cloudpickle failed): {type(error).__name__}: {error}"
        ) from error


class Launcher(abc.ABC):
    """Base class of the backends; a subclass is registered under ``name``."""

    #: The backend name users select (``backend=<name>``).
    name: ClassVar[str] = ""
    #: basecfg keys this backend reads beyond the core ones (see settings.CORE_KEYS).
    option_names: ClassVar[FrozenSet[str]] = frozenset()
    #: Those of its options whose values are secret (passwords, tokens): ``***`` in every file and message.
    secret_options: ClassVar[FrozenSet[str]] = frozenset()

    def __init__(self, settings: RunSettings):
        self.settings = settings

    @classmethod
    def validate_options(cls, settings: RunSettings) -> None:
        """Raise a UsageError for a setting this backend cannot accept (a bad value, a bad combination).

        Validation only: it starts no process, connects nowhere and writes
        nothing, so ``--list`` runs it as a real run does.
        """

    def start_notice(self) -> Optional[str]:
        """A line to show before :meth:`check` when it first starts something slow (the embedded Ray), else None."""
        return None

    def check(self, experiments: Sequence[Experiment]) -> None:
        """Raise a UsageError for anything this backend cannot honour, before anything runs.

        Only a real run calls it, after :meth:`validate_options`: here a
        backend may start or reach what it runs on (Ray, ``sbatch --test-only``).
        Ctrl-C or SIGTERM may interrupt it (KeyboardInterrupt): it must then
        release whatever it started.
        """

    @abc.abstractmethod
    def launch(self, experiments: Sequence[Experiment], stages: Stages) -> Iterator[Outcome]:
        """Run ``experiments`` and yield one Outcome each, in the order they finish.

        The driver may stop iterating at any time (Ctrl-C, SIGTERM) and close
        the generator: closing must stop every experiment still in flight and
        release every process, thread and connection the launcher holds.
        """
