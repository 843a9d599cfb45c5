"""The contract every backend implements: a launcher and the sessions it opens.

A launcher decides *where* experiments run, nothing else. The driver opens one
session for the whole run::

    with launcher.session(stages) as session:      # the pool, the connection, the cluster: held till the end
        submit the first session.window experiments
        for event in session.events():              # Outcomes (and Messages) as experiments finish
            ...                                     # a failed experiment may be submitted again at once,
                                                    # and for each one finished the next is submitted

The driver keeps at most :attr:`Session.window` experiments submitted and not
finished, and submits more from inside the ``events()`` iteration as outcomes
arrive: a session must accept :meth:`Session.submit` at any time while
``events()`` runs, and keep yielding until every submitted experiment has its
outcome. A backend that needs every experiment at once (Slurm's job arrays)
sets ``window = None``.

A session runs each experiment with
:func:`experiment_runner.experiment.run_experiment` somewhere and yields one
:class:`Outcome` per submitted experiment, in the order they finish. It never
writes results.jsonl or failures.jsonl: the driver's store records what it
yields. Leaving the ``with`` block, however it is left (the run ended, Ctrl-C,
an error), stops every experiment still in flight and releases every process,
thread and connection.

The channel back. Besides outcomes, :meth:`Session.events` may yield
:class:`Message` objects: what a running experiment tells the driver before
it ends (that it started, for the progress bar; intermediate metrics, for an
adaptive search). An experiment sends them with
:func:`experiment_runner.channel.tell_driver`; a backend that carries them
installs a sink with :func:`experiment_runner.channel.set_driver_channel`
where the experiment runs, and yields what arrives. A backend that does not
carry them yet simply never yields a Message. A backend that runs the
experiment in the driver's own thread, inside ``events()`` (single), hands
each message to :attr:`Session.listener` as the experiment tells it, when the
driver set one, instead of yielding it: the driver can then answer while the
experiment still runs.

The way back (pruning). An adaptive search may ask a running experiment to
stop early with :meth:`Session.prune`, from the driver's handling of a
message (while it iterates ``events()``, or inside the listener). The
experiment learns it from :func:`experiment_runner.metrics.should_prune` and
ends with status ``pruned``. How a request travels is the backend's: a
message to the process that runs the experiment where the session holds a
live channel to it (multiprocessing, malocher; single sets it directly), else
a marker file in the experiment's folder on the shared filesystem
(:data:`experiment_runner.metrics.PRUNE_MARKER`, ray and slurm, which also
follow each running experiment's metrics.jsonl to yield its metrics
messages). A backend that cannot reach a running experiment keeps the default
:meth:`Session.prune`, which does nothing: its experiments run to their end.
"""
from __future__ import annotations

import abc
import dataclasses
import functools
from collections import deque
from typing import Any, Callable, ClassVar, Deque, FrozenSet, Iterator, Optional, Sequence, Type, Union

from ..channel import STARTED, Message
from ..errors import ConfigError
from ..experiment import Experiment, Outcome, Stages
from ..settings import RunSettings
from .options import BackendOptions, option_names, secret_names, typed_options, undeclared_options

__all__ = ["Launcher", "Session", "Message", "Event", "STARTED", "pickle_stages"]

#: What :meth:`Session.events` yields.
Event = Union[Outcome, Message]


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


class Session(abc.ABC):
    """One run's hold on a backend: opened once, experiments submitted to it, closed once.

    Use it as a context manager. ``__enter__`` calls :meth:`open`, which
    starts or reaches what the experiments run on (a pool, Ray, SSH
    connections); it may raise a UsageError when there is nowhere to run, or
    KeyboardInterrupt (Ctrl-C, SIGTERM) while starting, and must then release
    what it started. ``__exit__`` calls :meth:`close`.
    """

    #: At most this many experiments are submitted and not finished at a time: the driver submits the next as
    #: outcomes arrive, and so holds only those (see the module docstring). None: every one at once.
    window: ClassVar[Optional[int]] = 4096

    #: Set by the driver before it iterates :meth:`events`: a backend that runs experiments in the driver's own
    #: thread calls it with each Message as the experiment tells it (and does not yield that Message). None: not set.
    listener: Optional[Callable[[Message], None]] = None

    def __init__(self, stages: Stages):
        self.stages = stages
        #: Submitted experiments not handed to the backend yet, in the order they go out (retries first).
        self.waiting: Deque[Experiment] = deque()

    def __enter__(self) -> "Session":
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def open(self) -> None:
        """Start or reach what the experiments run on; by default there is nothing to start."""

    def submit(self, experiment: Experiment, *, again: bool = False) -> None:
        """Queue ``experiment``; it starts as soon as the backend has room.

        The driver may submit while it iterates :meth:`events` (a retry): the
        iteration then goes on until that experiment's outcome too. An
        experiment submitted ``again`` (a retry) goes before those not handed
        to the backend yet, so that it runs as soon as it failed, not after them.
        """
        if again:
            self.waiting.appendleft(experiment)
        else:
            self.waiting.append(experiment)

    @property
    def slots(self) -> Optional[int]:
        """How many experiments this session runs at the same time, known once it is open; None: unknown.

        An adaptive search keeps that many trials in flight unless
        ``search.max_in_flight`` says otherwise (with None, the driver
        machine's CPU count). It is what the backend can run at once, not how
        many experiments the driver may submit ahead (:attr:`window`).
        """
        return None

    def prune(self, experiment_id: int) -> None:
        """Ask the running experiment ``experiment_id`` to stop early (an adaptive search's pruner decided so).

        From then on its ``should_prune()`` answers True (see metrics.py); an
        experiment that stops on it ends with status ``pruned``. Asking for an
        experiment that is not running (finished, or not started) does
        nothing: a search decides from intermediate metrics, which only a
        running experiment reports. Never blocks. By default a backend cannot
        reach a running experiment: nothing happens, and the experiment runs
        to its end (see the module docstring for how each backend carries it).
        """

    @abc.abstractmethod
    def events(self) -> Iterator[Event]:
        """Yield one Outcome per submitted experiment as each finishes (and Messages before them).

        The iteration ends once every submitted experiment has its outcome.
        The driver may stop iterating at any time; :meth:`close` then stops
        what is still in flight.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Stop every experiment still in flight and release every process, thread and connection.

        Called exactly once per session by ``__exit__``, also after a failed
        :meth:`open`; it must not raise for what was never started.
        """


class Launcher(abc.ABC):
    """Base class of the backends; a subclass is registered under ``name``."""

    #: The backend name users select (``backend=<name>``).
    name: ClassVar[str] = ""
    #: The declaration of this backend's settings (see :mod:`experiment_runner.launchers.options`).
    Options: ClassVar[Type[BackendOptions]] = BackendOptions
    #: basecfg keys this backend reads beyond the core ones (see settings.CORE_KEYS), from ``Options``.
    #: A class that sets only these two (as launchers did before declarations) gets an ``Options`` of
    #: untyped settings, null by default.
    option_names: ClassVar[FrozenSet[str]] = frozenset()
    #: Those of its options whose values are secret (passwords, tokens): ``***`` in every file and message.
    secret_options: ClassVar[FrozenSet[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "Options" not in cls.__dict__ and "option_names" in cls.__dict__:
            cls.Options = undeclared_options(cls.__name__, cls.option_names, cls.secret_options)
        if not (isinstance(cls.Options, type) and issubclass(cls.Options, BackendOptions)
                and dataclasses.is_dataclass(cls.Options)):
            raise TypeError(f"{cls.__name__}.Options must be a dataclass that subclasses "
                            f"experiment_runner.launchers.options.BackendOptions, got {cls.Options!r}")
        cls.option_names = option_names(cls.Options)
        cls.secret_options = secret_names(cls.Options)

    def __init__(self, settings: RunSettings):
        self.settings = settings

    @functools.cached_property
    def typed_options(self) -> BackendOptions:
        """This backend's settings as its ``Options`` instance: typed, the ones not given at their defaults."""
        return typed_options(self.Options, self.settings.options)

    def start_notice(self) -> Optional[str]:
        """A line to show before a session opens when opening starts something slow (the embedded Ray), else None."""
        return None

    def check(self, experiments: Sequence[Experiment]) -> None:
        """Raise a UsageError for an experiment this backend cannot honour, before anything runs.

        Pure: it starts nothing, connects nowhere and writes nothing. What can
        only be found out by reaching the backend (a cluster too small, a
        partition Slurm refuses) is raised by :meth:`Session.open`. ``experiments``
        is made as it is read (``len`` is free; iterating it makes every experiment
        of the sweep): read what all experiments share (a timeout, say) from the settings.
        """

    @abc.abstractmethod
    def session(self, stages: Stages) -> Session:
        """A session that runs experiments with ``stages``; the driver opens one per run."""
