"""``experiment-runner serve``: a live view of runs in the browser, read from their out_path trees.

:func:`serve` is the Python twin of the command: it starts the server in a
background thread and returns it. Nothing else in the package imports this
package; its one dependency (Plotly's bundled script, the ``serve`` extra) is
found on disk, never imported.
"""
from __future__ import annotations

import errno
import re
import secrets
import socket
import threading
import urllib.parse
from pathlib import Path
from typing import Any, Optional, Union

from ..errors import MissingDependencyError, UsageError

__all__ = ["serve", "Serving", "DEFAULT_HOST", "DEFAULT_PORT", "NEEDS_EXTRA"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
#: What an access token may be made of: it travels unescaped in the printed address and in a cookie.
TOKEN_CHARACTERS = re.compile(r"[A-Za-z0-9._~-]+")
NEEDS_EXTRA = "needs the serve extra: pip install 'experiment-runner[serve]'"


class Serving:
    """A server at work: ``url`` is its address (with ``?token=`` when one is needed); :meth:`close` stops it."""

    def __init__(self, server: Any, thread: threading.Thread, root: Path, host: str, token: Optional[str]):
        self._server = server
        self._thread = thread
        self.root = root
        self.host = host
        self.port: int = server.server_address[1]
        self.token = token
        shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
        shown = f"[{shown}]" if ":" in shown else shown
        query = f"?{urllib.parse.urlencode({'token': token})}" if token else ""
        self.url = f"http://{shown}:{self.port}/{query}"

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the server stops (or ``timeout`` seconds pass); True once it has stopped."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> "Serving":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def serve(path: Union[str, Path] = "results", host: str = DEFAULT_HOST, port: int = 0,
          token: Optional[str] = None) -> Serving:
    """Serve the run at ``path`` (an out_path) or the runs below it (a folder of runs) at ``host:port``.

    Bound to anything but a loopback address, every request needs an access
    token: ``token``, or one made here; :attr:`Serving.url` carries it.
    Raises :class:`UsageError` for a ``path`` that is no folder or an address
    that cannot be bound, :class:`MissingDependencyError` without Plotly.
    """
    from .server import is_loopback, plotly_script, start
    from .site import Site

    folder = Path(path)
    if not folder.is_dir():
        what = "a file, not a folder" if folder.exists() else "no folder"
        raise UsageError(f"'{path}' is {what}: give the out_path of a run, or the folder that holds runs")
    if plotly_script() is None:
        raise MissingDependencyError(NEEDS_EXTRA)
    if token is None and not is_loopback(host):
        token = secrets.token_urlsafe(24)
    if token is not None and not TOKEN_CHARACTERS.fullmatch(token):
        raise UsageError("the access token must be one or more letters, digits or the characters . _ ~ - "
                         "(it travels in the address and a cookie); leave --token out to have one made")
    site = Site(folder)
    try:
        server, thread = start(site, host, port, token)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} on {host} is in use: choose another with --port "
                             "(--port 0 picks a free one)") from error
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror or error}") from error
    threading.Thread(target=site.read_all_runs, name="finding runs", daemon=True).start()
    return Serving(server, thread, folder, host, token)
