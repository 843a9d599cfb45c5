"""What the user sees while a run goes on: a progress bar, failures once, a summary."""
from __future__ import annotations

import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, List, Optional, Set, Tuple

from .channel import STARTED, Message
from .console import dropped_if_gone
from .experiment import PRUNED, Experiment, Outcome


@dataclass
class RunSummary:
    """What :func:`run_experiments` returns: where the results are and how the run went."""

    out_path: str
    total: int
    finished: int = 0
    skipped: int = 0
    failed_ids: List[int] = field(default_factory=list)
    #: Experiments an adaptive search stopped early (status pruned): neither finished nor failed.
    pruned: int = 0
    #: Of ``skipped`` (done in earlier runs of a resumed run), those that were pruned; the others finished.
    pruned_before: int = 0
    wall_time: float = 0.0
    #: An adaptive search's trials in flight at most (search.max_in_flight, by default what the backend runs at
    #: once); None for a sweep.
    at_once: Optional[int] = None
    interrupted: bool = False
    #: True when the run stopped because it could not record (a full disk): see :class:`RecordWriteError`.
    stopped: bool = False
    #: How many of the best experiments :meth:`lines` lists.
    shown_best: ClassVar[int] = 3

    @property
    def failed(self) -> int:
        return len(self.failed_ids)

    @property
    def results_file(self) -> Path:
        return Path(self.out_path) / "results.jsonl"

    @property
    def failures_file(self) -> Path:
        return Path(self.out_path) / "failures.jsonl"

    def lines(self) -> List[str]:
        noun = "experiment" if self.total == 1 else "experiments"
        finished_before = self.skipped - self.pruned_before
        done = f"{self.finished + finished_before} of {self.total} {noun} finished"
        if finished_before:
            done += f" ({finished_before} in earlier runs)"
        if self.pruned + self.pruned_before:
            done += f", {self.pruned + self.pruned_before} pruned"
        if self.failed:
            done += f", {self.failed} failed (see {self.failures_file})"
        if self.interrupted or self.stopped:
            pending = self.total - self.finished - self.skipped - self.failed - self.pruned
            done += f", {pending} not run ({'interrupted' if self.interrupted else 'stopped'})"
        at_once = f", {self.at_once} at once" if self.at_once else ""
        return [f"{done}{at_once}, in {self.wall_time:.1f} s", f"results: {self.results_file}", *self.best_lines()]

    def best_lines(self) -> List[str]:
        """The best finished experiments by the first metric, read back from results.jsonl.

        Read with json, not pandas, streaming and keeping only the best few,
        so it stays cheap for long runs; it covers earlier runs of a resumed one.
        """
        from .report_records import format_stat, lower_is_better, top_experiments  # at the end of a run only
        from .search.best import best_trial_lines

        try:
            searched = best_trial_lines(Path(self.out_path))  # an adaptive search: by its metric and direction
            if searched:
                return searched
            metric, best = top_experiments(self.results_file, self.shown_best)
        except (OSError, ValueError):  # an unreadable file must not turn a finished run into a failed one
            return []
        if metric is None or not best:
            return []
        best_is = "lowest" if lower_is_better(metric) else "highest"
        lines = [f"{best_is} {metric} (all: experiment-runner report {shlex.quote(self.out_path)}):"]
        for experiment in best:
            params = " ".join(f"{key}={value}" for key, value in experiment.params.items())
            line = f"  #{experiment.experiment_id}  {format_stat(experiment.mean, experiment.std)}  {params}"
            lines.append(_shorten(line.rstrip(), 120))
        return lines


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


class Progress:
    """A tqdm bar over experiments; each distinct failure's traceback printed once above it.

    When stderr is not a terminal (a log file, a CI job), a bar would write
    its ``\\r`` frames into the log: a plain line every :attr:`log_interval`
    seconds says how far the run is instead (none for shorter runs).
    """

    #: Seconds between two progress lines when stderr is not a terminal.
    log_interval: ClassVar[float] = 5.0

    def __init__(self, total: int, initial: int, verbose: bool):
        self.verbose = verbose
        self.failed: Set[int] = set()
        #: Experiments stopped early (status pruned): no failures, shown apart.
        self.pruned: Set[int] = set()
        #: Experiments whose session said they started and that have no outcome yet.
        self.running: Set[int] = set()
        self._counts_shown = False
        self._shown: Set[Tuple[Optional[str], Optional[str]]] = set()
        lines = verbose and not _is_terminal(sys.stderr)
        self._lines = _ProgressLines(total, initial, self.log_interval) if lines else None
        self._bar = _bar(total, initial) if verbose and not lines else _NoBar()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._bar.close()

    def note(self, message: Message) -> None:
        """A message from a running experiment: those that started are shown as running."""
        if message.kind == STARTED:
            self.running.add(message.experiment_id)
            self._show_counts()

    def update(self, outcome: Outcome, experiment: Experiment, final: bool) -> None:
        """Count an outcome; ``final`` is False for a failure that will be retried."""
        self.running.discard(experiment.experiment_id)
        if outcome.ok:
            self.failed.discard(experiment.experiment_id)
            self._bar.update(1)
        elif outcome.status == PRUNED:
            self.failed.discard(experiment.experiment_id)
            self.pruned.add(experiment.experiment_id)
            self._bar.update(1)
        else:
            self._show_failure(outcome, experiment, final)
            if final:
                self.failed.add(experiment.experiment_id)
                self._bar.update(1)
        self._show_counts()
        if self._lines is not None and (outcome.ok or final):
            self._lines.count(outcome.ok or outcome.status == PRUNED, len(self.failed))

    def _show_counts(self) -> None:
        if self._bar.disable:  # no bar (verbose=False, or lines instead): nothing to show, at no cost per experiment
            return
        counts = {"running": len(self.running)} if self.running else {}
        if self.pruned:
            counts["pruned"] = len(self.pruned)
        if self.failed:
            counts["failed"] = len(self.failed)
        if counts or self._counts_shown:
            self._bar.set_postfix(counts, refresh=False)
            self._counts_shown = bool(counts)

    def _show_failure(self, outcome: Outcome, experiment: Experiment, final: bool) -> None:
        retry = "" if final else " (will retry)"
        where = f", repetition {outcome.run_id}" if outcome.run_id is not None and experiment.repetitions > 1 else ""
        head = (f"experiment {experiment.experiment_id} {outcome.status}{where}{retry}: "
                f"{outcome.error_type}: {outcome.message}")
        key = (outcome.error_type, outcome.message)
        if key in self._shown:  # its traceback was shown already
            self.write(head)
            return
        run_id = outcome.run_id or 0
        logs = [str(log) for log in (experiment.paths.stdout(run_id), experiment.paths.stderr(run_id)) if log.exists()]
        lines = [head, *([f"logs: {', '.join(logs)}"] if logs else [])]  # a crash's logs: what it printed
        if outcome.traceback:
            self._shown.add(key)
            lines.insert(1, outcome.traceback.rstrip())
        self.write("\n".join(lines))

    @staticmethod
    def write(text: str) -> None:
        """Print above the bar without breaking it; nothing once nobody reads stderr any more (console.py)."""
        from tqdm import tqdm

        with dropped_if_gone(sys.stderr):
            tqdm.write(text, file=sys.stderr)


def _bar(total: int, initial: int) -> Any:
    from tqdm import tqdm  # when a run shows its bar: importing the package, or a quiet run, stays light

    return tqdm(total=total, initial=initial, unit="exp", file=sys.stderr, dynamic_ncols=True)


class _NoBar:
    """The bar of a run that shows none (verbose=False, or progress lines instead)."""

    disable = True

    def update(self, count: int = 1) -> None:
        """Nothing to count on."""

    def close(self) -> None:
        """Nothing to close."""


def _is_terminal(stream: Any) -> bool:
    """A terminal, or a Jupyter notebook's output (which draws a bar's ``\\r`` frames in place too)."""
    if type(stream).__module__.startswith("ipykernel"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class _ProgressLines:
    """``12/100 finished, 1 failed, ETA 3m``: at most one line per interval, for logs that are not terminals."""

    def __init__(self, total: int, initial: int, interval: float):
        self.total = total
        self.finished = initial
        self.done_here = 0  # finished or failed in this run: the pace of the ETA
        self.interval = interval
        self.started = self.last = time.monotonic()

    def count(self, ok: bool, failed: int) -> None:
        """One more experiment finished (ok) or failed for good; ``failed`` is how many have so far."""
        self.finished += int(ok)
        self.done_here += 1
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            Progress.write(self.line(failed, now - self.started))

    def line(self, failed: int, elapsed: float) -> str:
        text = f"{self.finished}/{self.total} finished"
        if failed:
            text += f", {failed} failed"
        remaining = self.total - self.finished - failed
        if remaining > 0 and self.done_here:
            text += f", ETA {_duration(elapsed / self.done_here * remaining)}"
        return text


def _duration(seconds: float) -> str:
    """``45s``, ``12m``, ``2h05m``: the precision a wait needs."""
    if seconds < 90:
        return f"{max(1, round(seconds))}s"
    minutes = round(seconds / 60)
    return f"{minutes}m" if minutes < 90 else f"{minutes // 60}h{minutes % 60:02d}m"
