"""The package's own exceptions.

Every error a user can cause derives from :class:`ExperimentRunnerError`; the
command line catches that one class, prints its message on one line and exits
with its ``exit_code``. Each class also derives from the matching builtin so
callers can catch either (``except ValueError`` keeps working).
"""
from __future__ import annotations


class ExperimentRunnerError(Exception):
    """Root of the package's errors; ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class UsageError(ExperimentRunnerError, ValueError):
    """Bad input found before any experiment ran (exit code 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """A configuration that cannot be used: unknown key, bad value, not JSON-able."""


class UnknownBackendError(UsageError):
    """A backend name that no launcher is registered for."""


class StageImportError(UsageError, ImportError):
    """A stage function named by import path that cannot be imported."""


class OutPathError(UsageError, OSError):
    """An out_path that cannot be used: it cannot be created, or it is a file."""


class OutPathExistsError(OutPathError, FileExistsError):
    """The out_path already holds files and the run was not asked to resume or overwrite."""


class RunInProgressError(OutPathError):
    """Another run still holds the out_path."""


class ResumeMismatchError(UsageError):
    """A resumed sweep whose experiments differ from the ones recorded in the tree."""


class ReportError(UsageError):
    """A report that cannot be made as asked: an unknown metric, parameter or format."""


class NoResultsError(ReportError, FileNotFoundError):
    """A report of a path that is not a run, or of a run without finished experiments yet."""


class WorkerStartError(ExperimentRunnerError, RuntimeError):
    """Worker processes that cannot start, or cannot load the stage functions, so no experiment can run."""


class MissingDependencyError(ExperimentRunnerError, ImportError):
    """An optional dependency (pandas, ray, ...) that a feature needs is not installed."""

    exit_code = 2


class ExperimentRunnerWarning(UserWarning):
    """Root of the package's warnings: the run goes on, differently from what was asked.

    The command line shows each as one line, ``experiment-runner: warning: ...``.
    """


class ExperimentTimeout(BaseException):
    """Raised inside a running experiment when its timeout expires.

    A BaseException, like KeyboardInterrupt, so that a stage's own
    ``except Exception`` cannot swallow it.
    """
