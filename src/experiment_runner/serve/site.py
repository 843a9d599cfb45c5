"""What the server serves: the folder given, the runs under it (kept as :class:`~.run_view.RunView`, the most
recently asked-for few hundred of them), and the one rule of every path: it stays inside that folder."""
from __future__ import annotations

import collections
import os
import threading
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

from ..errors import ExperimentRunnerError
from .run_view import RunView
from .runs import RunMeta, find_runs, inside, read_meta

__all__ = ["Site", "RequestError", "Query"]

#: How many runs the server keeps followers and tables of; the least recently asked for go first.
KEPT_RUNS = 256

Query = Mapping[str, List[str]]
#: How long a request waits for the first reading of a run before it answers with what is read so far.
FIRST_READING_WAIT = 0.5


class RequestError(ExperimentRunnerError):
    """A request that cannot be answered: ``status`` is its HTTP status, the message its one line."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Site:
    """The served folder (resolved) and the runs under it, shared by all requests."""

    def __init__(self, root: Path):
        self.root = Path(os.path.realpath(root))
        #: The folder as it was given (``results``, ``~/runs``...): the page names runs from it.
        self.given = os.fspath(root)
        self._views: "collections.OrderedDict[Path, RunView]" = collections.OrderedDict()
        self._metas: Dict[Path, Tuple[int, RunMeta]] = {}
        self._lock = threading.Lock()
        #: How many runs the folder held when last listed: their views are all kept (the runs list shows each).
        self._listed = 0

    def name_of(self, folder: Path) -> str:
        """A run's name in the API: its path relative to the served folder (``.`` for the folder itself)."""
        return Path(os.path.relpath(folder, self.root)).as_posix()

    def shown_path(self, folder: Path) -> str:
        """A run's folder as the person who started the server would write it: the folder they gave joined with
        the run's name (``results/sweep``), which reads the same on any machine."""
        return os.path.normpath(os.path.join(self.given, self.name_of(folder)))

    def folder_of(self, name: str) -> Path:
        """The run folder that ``name`` (relative to the served folder) names; 404 for anything outside it or no
        run (``..``, an absolute path, a symbolic link leading out)."""
        if not name or "\x00" in name or os.path.isabs(name):
            raise RequestError(404, f"no run {name!r} here")
        folder = Path(os.path.realpath(self.root / name))
        if not inside(self.root, folder) or not (folder / "run.yaml").is_file():
            raise RequestError(404, f"no run {name!r} here")
        return folder

    def view(self, query: Query, key: str = "run") -> RunView:
        """The run that the query's ``run`` names, its records read up to now (see :meth:`RunView.catch_up`)."""
        folder = self.folder_of(one(query, key))
        view = self.view_of(folder)
        view.catch_up(FIRST_READING_WAIT)
        return view

    def view_of(self, folder: Path) -> RunView:
        with self._lock:
            view = self._views.pop(folder, None) or RunView(folder, self.name_of(folder))
            self._views[folder] = view
            while len(self._views) > max(KEPT_RUNS, self._listed):
                self._views.popitem(last=False)
            return view

    def views_of_all(self) -> List[RunView]:
        """The view of every run under the folder, in find_runs' order; all of them are kept from now on, however
        many (the runs list reads each one's counts at every poll: a view dropped would be read again whole)."""
        folders = find_runs(self.root)
        with self._lock:
            self._listed = len(folders)
        return [self.view_of(folder) for folder in folders]

    def meta(self, folder: Path) -> RunMeta:
        """What the run's run.yaml says, read again only when run.yaml changed (a resume rewrites it)."""
        try:
            changed = os.stat(folder / "run.yaml").st_mtime_ns
        except OSError:
            changed = -1
        with self._lock:
            kept = self._metas.get(folder)
        if kept is None or kept[0] != changed:
            kept = (changed, read_meta(folder))
            with self._lock:
                self._metas[folder] = kept
        return kept[1]

    def read_all_runs(self) -> None:
        """Begin reading every run under the folder in the background, so that the page finds them read."""
        for view in self.views_of_all():
            view.catch_up(0.0)

    def folder_inside(self, path: Path) -> bool:
        """Whether ``path`` is a folder inside the served folder (symbolic links resolved)."""
        return inside(self.root, path) and path.is_dir()

    def file_inside(self, path: Path) -> Optional[Path]:
        """``path`` if it is a file inside the served folder (symbolic links resolved), else None."""
        return path if inside(self.root, path) and path.is_file() else None


def one(query: Query, key: str, default: Optional[str] = None) -> str:
    """The query parameter ``key`` (its last value); 400 when it is missing and has no default."""
    values = query.get(key)
    if values:
        return values[-1]
    if default is None:
        raise RequestError(400, f"missing query parameter {key!r}")
    return default


def whole(query: Query, key: str, default: int, minimum: int = 0, maximum: Optional[int] = None) -> int:
    text = one(query, key, str(default))
    try:
        value = int(text)
    except ValueError as error:
        raise RequestError(400, f"{key}={text!r} is not a whole number") from error
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"{minimum} or more"
        raise RequestError(400, f"{key}={value} must be {bound}")
    return value
