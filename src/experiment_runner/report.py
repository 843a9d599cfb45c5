"""Report: the recorded results as pandas DataFrames (pandas is imported only here)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Union

from .errors import MissingDependencyError
from .store import RunPaths, read_jsonl

__all__ = ["read_results"]


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as error:
        raise MissingDependencyError(
            "reading results into a DataFrame needs pandas: pip install 'experiment-runner[pandas]'"
        ) from error
    return pandas


def read_results(path: Union[str, Path], failures: bool = False) -> Any:
    """results.jsonl (or failures.jsonl with ``failures=True``) as a flat DataFrame.

    ``path`` is a run's out_path or the .jsonl file itself. Columns are
    flattened like ``pandas.json_normalize``: scores appear as
    ``scores.<metric>``, nested config keys as ``a.b``. Works on a run still
    in progress: a line being written is not read.
    """
    pandas = _pandas()
    path = Path(path)
    if path.is_dir():
        paths = RunPaths(path)
        path = paths.failures if failures else paths.results
    if not path.exists():
        raise FileNotFoundError(f"no {path.name} at {path.parent}: is it a run's out_path?")
    return pandas.json_normalize(list(read_jsonl(path)))
