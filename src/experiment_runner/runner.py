"""The driver: plan, prepare the tree, launch, record each outcome, summarise.

Data flows one way: the plan step checks settings and experiments (any bad
input stops there, before anything runs; see plan.py) -> the store prepares
out_path -> the launcher's session yields outcomes -> the store records each
one as it arrives -> the summary.
"""
from __future__ import annotations

import contextlib
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, Mapping, Optional, Sequence, Tuple

from .environment import EnvironmentProbe
from .errors import RecordWriteError, UsageError
from .experiment import PRUNED, Experiment, Outcome
from .channel import Message
from .metrics import METRICS
from .launchers.base import Launcher, Session
from .plan import RunPlan, make_experiments, plan_run
from .progress import Progress, RunSummary
from .settings import RunSettings
from .sources import ExperimentSource, Listed
from .store import RunStore, check_out_path, claim_fresh_folder, record_write_error, remove_if_empty

__all__ = ["run_experiments", "execute", "make_experiments", "RunSummary"]


def run_experiments(
    basecfg: Mapping[str, Any],
    cfgs: Iterable[Mapping[str, Any]],
    *,
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
    return execute(plan_run(basecfg, cfgs, **more_settings), on_start=on_start, started=started)


def execute(
    plan: RunPlan,
    *,
    on_start: Optional[Callable[[RunSummary], None]] = None,
    resume_hint: Optional[Callable[[str], str]] = None,
    started: Optional[float] = None,
) -> RunSummary:
    """Run a plan, as :func:`run_experiments` does.

    ``resume_hint(out_path)`` says how to finish the run once it stopped
    (by default, in Python terms); ``started`` is when the run began, as
    ``time.perf_counter()``: the summary's wall time counts from there.
    """
    started = time.perf_counter() if started is None else started
    check_out_path(plan.settings.out_path, plan.settings.if_exists)  # before the backend starts: it may be slow
    environment = EnvironmentProbe(plan.secret_keys)
    with _in_its_folder(plan) as plan:
        settings = plan.settings
        hint = resume_hint(settings.out_path) if resume_hint is not None else None
        launcher = plan.launcher()
        launcher.check(plan.experiments)
        with _opened_session(launcher, plan.experiments, settings, on_start) as (session, announced):
            with RunStore(settings.out_path) as store:
                hint = hint or _python_resume_hint(store)
                with _interrupted_before_the_first_experiment(hint):
                    source, summary = _source(plan, store, session)
                    store.write_run_record(plan.record, environment.result())
                    if on_start is not None and not announced:
                        on_start(summary)
                _run_and_summarise(session, source, settings, store, summary, hint, started)
    return summary


@contextlib.contextmanager
def _interrupted_before_the_first_experiment(resume_hint: str) -> Iterator[None]:
    """Ctrl-C while the run's records are written, before any experiment started: say so, and how to go on."""
    try:
        yield
    except KeyboardInterrupt:
        with _interrupts_held(True):
            Progress.write("interrupted: stopped while the run's records were written, before any experiment ran")
            Progress.write(resume_hint)
        raise


def _source(plan: RunPlan, store: RunStore, session: Session) -> Tuple[ExperimentSource, RunSummary]:
    """Where the run's experiments come from, the out_path made ready for it; and the run's summary so far."""
    if plan.search is None:
        experiments, pending = store.prepare(plan.settings.if_exists, plan.experiments)
        summary = RunSummary(str(store.root), total=len(experiments), skipped=len(experiments) - len(pending))
        source: ExperimentSource = Listed(pending)
    else:
        from .search.source import open_search  # imports Optuna: only for a search

        source = search = open_search(plan, store, session)
        summary = RunSummary(str(store.root), total=search.total, skipped=search.skipped, at_once=search.max_in_flight)
    summary.pruned_before = len(store.pruned_ids()) if summary.skipped else 0
    return source, summary


@contextlib.contextmanager
def _in_its_folder(plan: RunPlan) -> Iterator[RunPlan]:
    """The plan; for if_exists=new, moved to the fresh folder claimed for it now (``out_path``, else ``out_path_1``...).

    Claimed before the backend starts, so that the run's header and its resume
    hint name that folder; removed again if the run stops before writing to it.
    """
    if plan.settings.if_exists != "new":
        yield plan
        return
    folder = claim_fresh_folder(Path(plan.settings.out_path))
    try:
        yield plan.in_folder(str(folder))
    except BaseException:
        remove_if_empty(folder)
        raise


@contextlib.contextmanager
def _opened_session(
    launcher: Launcher,
    experiments: Sequence[Experiment],
    settings: RunSettings,
    on_start: Optional[Callable[[RunSummary], None]],
) -> Iterator[Tuple[Session, bool]]:
    """The launcher's session, open, before anything is written; with whether on_start was called.

    Opening may start the backend (the embedded Ray: seconds, more on a busy
    machine): that follows the run's header and a line saying what starts
    ("starting Ray ..."), then that line again with the time it took ("starting
    Ray ... ready in 5.8 s"), which the run's wall time counts too; Ctrl-C or
    SIGTERM stops it cleanly, with nothing written yet. A
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
    starting = time.perf_counter()
    try:
        with _interrupting_signals():
            session = launcher.session(settings.stages)  # may be slow too: the Ray backend imports ray here
            session.__enter__()
    except KeyboardInterrupt:
        Progress.write(f"interrupted: stopped while backend {settings.backend} was starting, before any experiment "
                       "ran; nothing was written, so start the run again to run it")
        raise
    if notice is not None and settings.verbose:
        Progress.write(f"{notice} ready in {time.perf_counter() - starting:.1f} s")
    with contextlib.closing(session):
        yield session, announced


def _run_and_summarise(
    session: Session,
    source: ExperimentSource,
    settings: RunSettings,
    store: RunStore,
    summary: RunSummary,
    resume_hint: str,
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
            _run_with_retries(session, source, settings, store, progress, summary)
    except KeyboardInterrupt:
        summary.interrupted = True
        raise
    except RecordWriteError:
        summary.stopped = True
        raise
    except UsageError:  # the backend has nowhere to run (no machine reachable): bad input, found late
        nothing_recorded = not summary.skipped and not summary.finished and not progress.failed
        discarded = nothing_recorded and store.discard_new_run(range(summary.total))  # a new run: ids 0..n-1
        raise
    finally:
        with _interrupts_held(summary.interrupted):
            summary.wall_time = time.perf_counter() - started
            summary.failed_ids = sorted(progress.failed)
            summary.pruned = len(progress.pruned)
            if not discarded:
                _print_summary(summary, settings.verbose, resume_hint)


def _run_with_retries(
    session: Session,
    source: ExperimentSource,
    settings: RunSettings,
    store: RunStore,
    progress: Progress,
    summary: RunSummary,
) -> None:
    """Run every experiment of ``source``; a failed one is submitted again as soon as it fails, up to ``retries``.

    At most ``session.window`` experiments are submitted and not finished at
    any time (all of them for a session whose window is None): the next ones
    are made and submitted as outcomes arrive, so the driver holds only those
    in flight, however long the sweep. The source learns each final outcome,
    and each intermediate metric, which may make it ask the session to prune.
    """
    in_flight: Dict[int, Experiment] = {}
    attempts: Dict[int, int] = {}
    submit_more = _submitter(session, source, in_flight)

    def _on_message(message: Message) -> None:
        """What a running experiment told the driver: yielded by events(), or handed over as the experiment
        tells it (``session.listener``) by a backend that runs it in this thread (single)."""
        progress.note(message)
        if message.kind == METRICS and source.on_metrics(message.experiment_id, message.data):
            session.prune(message.experiment_id)

    session.listener = _on_message
    submit_more()
    for event in session.events():
        if isinstance(event, Message):
            _on_message(event)
            continue
        experiment = in_flight[event.experiment_id]
        attempt = attempts.get(experiment.experiment_id, 0)
        final = event.ok or event.status == PRUNED or attempt == settings.retries  # a pruned one stopped on purpose
        _stop_if_the_disk_is_full(event, experiment)
        store.record(event, experiment, attempt, source.annotation(event, experiment) if final else None)
        progress.update(event, experiment, final)
        if event.ok:
            summary.finished += 1
        if final:
            del in_flight[experiment.experiment_id]
            attempts.pop(experiment.experiment_id, None)
            source.finished(experiment, event)
            submit_more()
        else:
            attempts[experiment.experiment_id] = attempt + 1
            session.submit(experiment, again=True)


def _submitter(session: Session, source: ExperimentSource, in_flight: Dict[int, Experiment]
               ) -> Callable[[], None]:
    """A function that submits the source's experiments until ``session.window`` of them are in flight
    (or the source has none to give now)."""
    window = session.window

    def submit_more() -> None:
        while window is None or len(in_flight) < window:
            experiment = source.next_experiment()
            if experiment is None:
                return
            in_flight[experiment.experiment_id] = experiment
            session.submit(experiment)

    return submit_more


def _stop_if_the_disk_is_full(outcome: Outcome, experiment: Experiment) -> None:
    """An experiment that found its disk full: every other one would too, so the run stops instead of recording it."""
    if outcome.disk_full is not None:
        cause = f"{outcome.disk_full} (experiment {experiment.experiment_id} in '{experiment.paths.root}')"
        raise record_write_error(cause, disk_full=True)


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
def _interrupts_held(interrupted: bool) -> Iterator[None]:
    """Once a run is interrupted, a further Ctrl-C (or SIGTERM) waits while its summary is printed.

    Someone pressing Ctrl-C again and again still gets what finished and how
    to resume; the signal takes effect as soon as the summary is out.
    """
    if not interrupted or threading.current_thread() is not threading.main_thread() or not hasattr(
            signal, "pthread_sigmask"):
        yield
        return
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


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
