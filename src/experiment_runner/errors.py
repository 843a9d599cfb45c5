"""The package's own exceptions.

Every error a user can cause derives from :class:`ExperimentRunnerError`; the
command line catches that one class, prints its message on one line and exits
with its ``exit_code``. Each class also derives from the matching builtin so
callers can catch either (``except ValueError`` keeps working).
"""
from __future__ import annotations

import errno
import sys
from typing import Optional, Sequence

#: The errors of a full disk, or of a full quota on it: no experiment can write then.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class ExperimentRunnerError(Exception):
    """Root of the package's errors; ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class UsageError(ExperimentRunnerError, ValueError):
    """Bad input found before any experiment ran (exit code 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """A configuration that cannot be used: unknown key, bad value, not JSON-able."""


class ReservedKeyError(ConfigError):
    """A configuration that sets a key the runner sets for each experiment (``experiment_id``, ``run_id``)."""

    def __init__(self, message: str, keys: Sequence[str]):
        super().__init__(message)
        self.keys = list(keys)


class UnknownBackendError(UsageError):
    """A backend name that no launcher is registered for."""


class BackendPluginError(UsageError):
    """An installed plugin's backend that cannot be used: its entry point fails to load or is no Launcher."""


class StageImportError(UsageError, ImportError):
    """A stage function named by import path that cannot be imported; ``advice`` says what to do, where known."""

    def __init__(self, problem: str, advice: str = ""):
        super().__init__(f"{problem}; {advice}" if advice else problem)
        #: The message without the advice (a caller that knows better advice gives its own).
        self.problem = problem


class OutPathError(UsageError, OSError):
    """An out_path that cannot be used: it cannot be created, or it is a file."""


class OutPathExistsError(OutPathError, FileExistsError):
    """The out_path already holds files and the run was not asked to resume or overwrite."""


class OutPathHoldsFilesError(OutPathExistsError):
    """A fixed out_path that holds files (most likely a run) with if_exists=error; ``out_path`` names it."""

    def __init__(self, message: str, *, out_path: str):
        super().__init__(message)
        self.out_path = out_path


class RunInProgressError(OutPathError):
    """Another run still holds the out_path."""


class ResumeMismatchError(UsageError):
    """A resumed sweep whose experiments differ from the ones recorded in the tree."""


class ReportError(UsageError):
    """A report that cannot be made as asked: an unknown metric, parameter or format."""


class NoResultsError(ReportError, FileNotFoundError):
    """A report of a path that is not a run, or of a run without finished experiments yet."""


class CorruptRecordError(UsageError):
    """A line of a record file of the out_path tree (results.jsonl, ...) that is not a JSON record.

    A torn last line is what a killed writer leaves and is skipped; a bad line
    before others (an edit, a disk fault) is an error naming the file and line,
    since skipping it would silently lose that record.
    """


class WorkerStartError(ExperimentRunnerError, RuntimeError):
    """Worker processes that cannot start, or cannot load the stage functions, so no experiment can run."""


class RecordWriteError(ExperimentRunnerError, OSError):
    """The run cannot write its records (a full disk, a quota): it stopped, keeping what it recorded.

    Exit code 3, neither failed experiments (1) nor bad input (2): nothing is
    wrong with the sweep, and resuming the run once there is space finishes it.
    """

    exit_code = 3


def os_error_text(error: OSError, path: Optional[object] = None) -> str:
    """An OSError in words for a one-line message: ``no space left on device writing 'out/results.jsonl'``."""
    reason = (error.strerror or str(error)).lower()
    where = path if path is not None else error.filename
    return reason if where is None else f"{reason} writing '{where}'"


def disk_full_text(error: BaseException) -> Optional[str]:
    """What ``error``, or an error it came from, says when it is a full disk (see os_error_text); else None."""
    seen = set()
    cause: Optional[BaseException] = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, OSError) and cause.errno in DISK_FULL_ERRNOS:
            return os_error_text(cause)
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


class MetricsError(ExperimentRunnerError, ValueError):
    """A call of ``report_metrics`` that cannot be recorded: outside a running experiment, or with bad values.

    Raised inside the stage that called it, it fails that experiment like any error there.
    """


class MissingDependencyError(ExperimentRunnerError, ImportError):
    """An optional dependency (pandas, ray, ...) that a feature needs is not installed."""

    exit_code = 2


class ExperimentRunnerWarning(UserWarning):
    """Root of the package's warnings: the run goes on, differently from what was asked.

    The command line shows each as one line, ``experiment-runner: warning: ...``.
    """


def stacklevel_of_the_caller() -> int:
    """The ``stacklevel`` of the first frame outside this package: a warning then points at the user's call.

    Counted from the function that calls :func:`warnings.warn`, whether the user
    called run_experiments, plan_run or the command line.
    """
    package = f"{__name__.partition('.')[0]}."
    frame, level = sys._getframe(2), 2  # the function that warns is level 1
    while frame is not None and str(frame.f_globals.get("__name__", "")).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


class ShadowedBackendWarning(ExperimentRunnerWarning):
    """An installed plugin registers a backend under a built-in's name; the built-in one is used."""


class IgnoredSettingWarning(ExperimentRunnerWarning):
    """A basecfg holds settings of another backend than the one that runs, which ignores them."""


class ExperimentTimeout(BaseException):
    """Raised inside a running experiment when its timeout expires.

    A BaseException, like KeyboardInterrupt, so that a stage's own
    ``except Exception`` cannot swallow it.
    """
