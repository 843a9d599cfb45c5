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
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional

from .errors import ConfigError
from .experiment import RESERVED_KEYS, Experiment
from .launchers import BUILTIN_OPTION_NAMES, get_launcher_class
from .launchers.base import Launcher
from .progress import Progress, RunSummary
from .serialization import mask_secrets, to_jsonable
from .settings import CORE_KEYS, RunSettings, unknown_key_error, whole_number
from .store import RunStore

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
    keeps what finished, and re-raises KeyboardInterrupt.
    """
    settings = RunSettings.from_basecfg({**basecfg, **more_settings})
    launcher_class = get_launcher_class(settings.backend)
    check_options(settings, launcher_class)
    experiments = make_experiments(cfgs, settings)
    launcher = launcher_class(settings)
    started = time.perf_counter()
    announced = _start_backend(launcher, experiments, settings, on_start)

    with RunStore(settings.out_path) as store:
        experiments, pending = store.prepare(settings.if_exists, experiments)
        store.write_run_record({**_describe_run(settings, len(experiments)), **(run_record or {})})
        summary = RunSummary(str(store.root), total=len(experiments), skipped=len(experiments) - len(pending))
        if on_start is not None and not announced:
            on_start(summary)
        _launch_and_summarise(launcher, pending, settings, store, summary, resume_hint, started)
    return summary


def _start_backend(
    launcher: Launcher,
    experiments: List[Experiment],
    settings: RunSettings,
    on_start: Optional[Callable[[RunSummary], None]],
) -> bool:
    """The launcher's check, which may start its backend first; returns whether on_start was called.

    A slow start (the embedded Ray: seconds, more on a busy machine) follows
    the run's header and a line saying what starts, and Ctrl-C or SIGTERM
    stops it cleanly: nothing has been written yet.
    """
    notice = launcher.start_notice()
    # The folder if_exists=new claims is known only once claimed: that run's header waits for it.
    announced = notice is not None and on_start is not None and settings.if_exists != "new"
    if announced:
        on_start(RunSummary(str(Path(settings.out_path)), total=len(experiments)))
    if notice is not None and settings.verbose:
        Progress.write(notice)
    try:
        with _interrupting_signals():
            launcher.check(experiments)
    except KeyboardInterrupt:
        Progress.write(f"interrupted: stopped while backend {settings.backend} was starting, before any experiment "
                       "ran; nothing was written, so start the run again to run it")
        raise
    return announced


def _launch_and_summarise(
    launcher: Launcher,
    pending: List[Experiment],
    settings: RunSettings,
    store: RunStore,
    summary: RunSummary,
    resume_hint: Optional[str],
    started: float,
) -> None:
    """Launch with a progress bar; print the summary however the launch ends.

    The wall time counts from ``started``, before the launcher's check: starting the backend is part of the run.
    """
    progress = Progress(summary.total, summary.skipped, settings.verbose)
    try:
        with progress, _interrupting_signals():
            _launch_with_retries(launcher, pending, settings, store, progress, summary)
    except KeyboardInterrupt:
        summary.interrupted = True
        raise
    finally:
        summary.wall_time = time.perf_counter() - started
        summary.failed_ids = sorted(progress.failed)
        _print_summary(summary, settings.verbose, resume_hint or _python_resume_hint(store))


def _launch_with_retries(
    launcher: Launcher,
    pending: List[Experiment],
    settings: RunSettings,
    store: RunStore,
    progress: Progress,
    summary: RunSummary,
) -> None:
    """Launch in rounds: a round reruns the experiments that failed in the one before."""
    by_id = {experiment.experiment_id: experiment for experiment in pending}
    for attempt in range(settings.retries + 1):
        final = attempt == settings.retries
        failed = []
        with contextlib.closing(launcher.launch(pending, settings.stages)) as outcomes:
            for outcome in outcomes:
                experiment = by_id[outcome.experiment_id]
                store.record(outcome, experiment, attempt)
                progress.update(outcome, experiment, final or outcome.ok)
                if outcome.ok:
                    summary.finished += 1
                else:
                    failed.append(experiment)
        if not failed:
            return
        pending = failed


def make_experiments(cfgs: Iterable[Mapping[str, Any]], settings: RunSettings) -> List[Experiment]:
    """One Experiment per cfg, numbered from 0; each cfg must be a JSON-able dict without reserved keys."""
    experiments = []
    for experiment_id, cfg in enumerate(cfgs):
        where = f"cfgs[{experiment_id}]"
        if not isinstance(cfg, Mapping):
            raise ConfigError(f"{where} must be a dict, got {type(cfg).__name__}: {cfg!r:.60}")
        reserved = [key for key in RESERVED_KEYS if key in cfg]
        if reserved:
            raise ConfigError(
                f"{where} sets {', '.join(reserved)}, which the runner sets for each experiment; rename the key"
            )
        config = to_jsonable(cfg, where)
        repetitions = whole_number(config.get("repetitions", settings.repetitions), f"{where}.repetitions", 1)
        experiments.append(Experiment(experiment_id, config, settings.out_path, repetitions, settings.timeout))
    return experiments


def check_options(settings: RunSettings, launcher_class: type) -> None:
    """A basecfg key that neither the core nor any backend reads is most likely a typo."""
    known = CORE_KEYS | BUILTIN_OPTION_NAMES | launcher_class.option_names
    for key in settings.options:
        if key not in known:
            raise unknown_key_error(key, known)


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
            **to_jsonable(mask_secrets(_storable(settings.options)), "options"),
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
    lines = summary.lines() if verbose or summary.failed or summary.interrupted else []
    if summary.interrupted:
        lines = ["interrupted: stopped the experiments in flight; finished results are kept", *lines, resume_hint]
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
