"""The driver: check everything, prepare the tree, launch, record each outcome, summarise.

Data flows one way: settings and experiments are checked (any bad input stops
here, before anything runs) -> the store prepares out_path -> the launcher
yields outcomes -> the store records each one as it arrives -> the summary.
"""
from __future__ import annotations

import contextlib
import signal
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, FrozenSet, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Type

from .errors import ConfigError, IgnoredSettingWarning, RecordWriteError, UsageError
from .experiment import RESERVED_KEYS, Experiment, Outcome
from .launchers import get_launcher_class, known_settings, owning_backends, secret_options, settings_owner
from .channel import Message
from .launchers.base import Launcher, Session
from .launchers.options import check_options as check_backend_options
from .progress import Progress, RunSummary
from .serialization import ABSENT, dotted_keys, lookup, mask_secrets, secret_paths, to_jsonable, to_stage_values
from .settings import RunSettings, unknown_key_error, whole_number
from .store import RunStore, record_write_error
from .sweep import find_loop, is_omegaconf, plain_config

__all__ = ["run_experiments", "make_experiments", "RunSummary"]


def run_experiments(
    basecfg: Mapping[str, Any],
    cfgs: Iterable[Mapping[str, Any]],
    *,
    run_record: Optional[Dict[str, Any]] = None,
    resume_hint: Optional[str] = None,
    on_start: Optional[Callable[[RunSummary], None]] = None,
    **more_settings: Any,
) -> RunSummary:
    """Run every configuration of ``cfgs`` with the settings of ``basecfg``.

    ``basecfg`` holds the stages (``fit``, optional ``pre`` and ``post``) and
    the run's settings (out_path, backend, repetitions, timeout, ...); each
    cfg is one experiment. Settings given as keyword arguments override
    basecfg's. ``on_start(summary)`` is called once everything is checked and
    the out_path is ready, just before the first experiment starts; or, for a
    backend that first starts something slow (the embedded Ray), before that
    start. Returns a :class:`RunSummary`. Ctrl-C (or SIGTERM) stops the run,
    keeps what finished, and re-raises KeyboardInterrupt. A full disk stops it
    the same way and raises :class:`RecordWriteError`.
    """
    started = time.perf_counter()  # the summary's wall time counts checking, storing and starting too
    settings = RunSettings.from_basecfg(basecfg, more_settings)
    launcher_class = get_launcher_class(settings.backend)
    check_options(settings, launcher_class)
    experiments = make_experiments(cfgs, settings)
    check_secret_keys(settings, [experiment.config for experiment in experiments])
    launcher = launcher_class(settings)
    launcher.check(experiments)
    with _opened_session(launcher, experiments, settings, on_start) as (session, announced):
        with RunStore(settings.out_path) as store:
            experiments, pending = store.prepare(settings.if_exists, experiments)
            store.write_run_record({**_describe_run(settings, len(experiments)), **(run_record or {})},
                                   run_secret_keys(settings))
            summary = RunSummary(str(store.root), total=len(experiments), skipped=len(experiments) - len(pending))
            if on_start is not None and not announced:
                on_start(summary)
            _run_and_summarise(session, pending, settings, store, summary, resume_hint, started)
    return summary


@contextlib.contextmanager
def _opened_session(
    launcher: Launcher,
    experiments: List[Experiment],
    settings: RunSettings,
    on_start: Optional[Callable[[RunSummary], None]],
) -> Iterator[Tuple[Session, bool]]:
    """The launcher's session, open, before anything is written; with whether on_start was called.

    Opening may start the backend (the embedded Ray: seconds, more on a busy
    machine): that follows the run's header and a line saying what starts,
    and Ctrl-C or SIGTERM stops it cleanly, with nothing written yet. A
    backend with nowhere to run (no machine reachable, a partition Slurm
    refuses) raises a UsageError here, before the out_path is touched.
    """
    notice = launcher.start_notice()
    # The folder if_exists=new claims is known only once claimed: that run's header waits for it.
    announced = notice is not None and on_start is not None and settings.if_exists != "new"
    if announced:
        on_start(RunSummary(str(Path(settings.out_path)), total=len(experiments)))
    if notice is not None and settings.verbose:
        Progress.write(notice)
    session = launcher.session(settings.stages)
    try:
        with _interrupting_signals():
            session.__enter__()
    except KeyboardInterrupt:
        Progress.write(f"interrupted: stopped while backend {settings.backend} was starting, before any experiment "
                       "ran; nothing was written, so start the run again to run it")
        raise
    with contextlib.closing(session):
        yield session, announced


def _run_and_summarise(
    session: Session,
    pending: List[Experiment],
    settings: RunSettings,
    store: RunStore,
    summary: RunSummary,
    resume_hint: Optional[str],
    started: float,
) -> None:
    """Run with a progress bar; print the summary however the run ends.

    The wall time counts from ``started``, the start of run_experiments: checking, storing and starting the
    backend are part of the run.
    """
    progress = Progress(summary.total, summary.skipped, settings.verbose)
    discarded = False
    try:
        with progress, _interrupting_signals():
            _run_with_retries(session, pending, settings, store, progress, summary)
    except KeyboardInterrupt:
        summary.interrupted = True
        raise
    except RecordWriteError:
        summary.stopped = True
        raise
    except UsageError:  # the backend has nowhere to run (no machine reachable): bad input, found late
        nothing_recorded = not summary.skipped and not summary.finished and not progress.failed
        discarded = nothing_recorded and store.discard_new_run([e.experiment_id for e in pending])
        raise
    finally:
        summary.wall_time = time.perf_counter() - started
        summary.failed_ids = sorted(progress.failed)
        if not discarded:
            _print_summary(summary, settings.verbose, resume_hint or _python_resume_hint(store))


def _run_with_retries(
    session: Session,
    pending: List[Experiment],
    settings: RunSettings,
    store: RunStore,
    progress: Progress,
    summary: RunSummary,
) -> None:
    """Submit every pending experiment; a failed one is submitted again as soon as it fails, up to ``retries``."""
    by_id = {experiment.experiment_id: experiment for experiment in pending}
    attempts: Dict[int, int] = {}
    for experiment in pending:
        session.submit(experiment)
    for event in session.events():
        if isinstance(event, Message):
            progress.note(event)
            continue
        experiment = by_id[event.experiment_id]
        attempt = attempts.get(experiment.experiment_id, 0)
        final = event.ok or attempt == settings.retries
        _stop_if_the_disk_is_full(event, experiment)
        store.record(event, experiment, attempt)
        progress.update(event, experiment, final)
        if event.ok:
            summary.finished += 1
        elif not final:
            attempts[experiment.experiment_id] = attempt + 1
            session.submit(experiment)


def _stop_if_the_disk_is_full(outcome: Outcome, experiment: Experiment) -> None:
    """An experiment that found its disk full: every other one would too, so the run stops instead of recording it."""
    if outcome.disk_full is not None:
        cause = f"{outcome.disk_full} (experiment {experiment.experiment_id} in '{experiment.paths.root}')"
        raise record_write_error(cause, disk_full=True)


def make_experiments(cfgs: Iterable[Mapping[str, Any]], settings: RunSettings) -> List[Experiment]:
    """One Experiment per cfg, numbered from 0; each cfg must be a JSON-able dict without reserved keys."""
    if isinstance(cfgs, (Mapping, str, bytes)) or not isinstance(cfgs, Iterable):
        one = ": to run one configuration, pass [cfg]" if isinstance(cfgs, Mapping) else ""
        raise ConfigError(f"cfgs must be a list of configurations (dicts), got {type(cfgs).__name__}{one}")
    experiments = []
    secret_keys = tuple(sorted(run_secret_keys(settings)))
    for experiment_id, cfg in enumerate(cfgs):
        where = f"cfgs[{experiment_id}]"
        if not isinstance(cfg, Mapping):
            raise ConfigError(f"{where} must be a dict, got {type(cfg).__name__}: {cfg!r:.60}")
        own_secret_keys = _with_derived_secret_keys(cfg, secret_keys, settings)
        cfg = plain_config(cfg, where)
        reserved = [key for key in RESERVED_KEYS if key in cfg]
        if reserved:
            raise ConfigError(
                f"{where} sets {', '.join(reserved)}, which the runner sets for each experiment; rename the key"
            )
        config, holds_non_json = _stage_values(cfg, where)
        repetitions = whole_number(config.get("repetitions", settings.repetitions), f"{where}.repetitions", 1)
        experiments.append(
            Experiment(experiment_id, config, settings.out_path, repetitions, settings.timeout, own_secret_keys,
                       settings.chdir, holds_non_json)
        )
    return experiments


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


def run_secret_keys(settings: RunSettings) -> FrozenSet[str]:
    """The dotted keys whose values the run keeps secret: its secret_keys and the backends' secret settings."""
    return secret_paths(settings.secret_keys, secret_options(get_launcher_class(settings.backend)))


def check_secret_keys(settings: RunSettings, configs: Sequence[Mapping[str, Any]]) -> None:
    """A secret key that is no parameter of any experiment is most likely misspelt: its secret would be stored."""
    for key in settings.secret_keys:
        if key not in settings.options and all(lookup(config, key) is ABSENT for config in configs):
            known = set(dotted_keys(configs[0])) if configs else set()
            raise unknown_key_error(key, known, "secret_keys: no experiment has this parameter")


def check_options(settings: RunSettings, launcher_class: Type[Launcher]) -> None:
    """The backend's settings, valid; a key that neither the core nor any backend reads is most likely a typo.

    Settings of other backends are ignored with a warning: scripts written for
    the original package keep every backend's settings in one basecfg.
    """
    known = known_settings(launcher_class)
    for key in settings.options:
        if key not in known:
            raise unknown_key_error(key, known)
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
            IgnoredSettingWarning, stacklevel=4,  # at the caller of run_experiments
        )


def _describe_run(settings: RunSettings, n_experiments: int) -> Dict[str, Any]:
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
            **to_jsonable(mask_secrets(_storable(settings.options), run_secret_keys(settings)), "options"),
        },
    }


def _storable(options: Dict[str, Any]) -> Dict[str, Any]:
    """Options as they can be stored: callables by their import path."""
    return {k: _qualified_name(v) if callable(v) else v for k, v in options.items()}


def _qualified_name(function: Optional[Callable[..., Any]]) -> Optional[str]:
    if function is None:
        return None
    return f"{getattr(function, '__module__', '?')}:{getattr(function, '__qualname__', repr(function))}"


def _python_resume_hint(store: RunStore) -> str:
    return f"to finish it, run again with out_path='{store.root}' and if_exists='resume'"


def _print_summary(summary: RunSummary, verbose: bool, resume_hint: str) -> None:
    lines = summary.lines() if verbose or summary.failed or summary.interrupted or summary.stopped else []
    if summary.interrupted:
        lines = ["interrupted: stopped the experiments in flight; finished results are kept", *lines, resume_hint]
    elif summary.stopped:  # the error saying why comes right after
        lines = [*lines, resume_hint]
    for line in lines:
        Progress.write(line)


@contextlib.contextmanager
def _interrupting_signals() -> Iterator[None]:
    """SIGTERM, and SIGHUP (the terminal closed) unless ignored (nohup), stop the run like Ctrl-C.

    Only the main thread can set signal handlers; elsewhere the defaults stay.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, interrupt)}
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, interrupt)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
