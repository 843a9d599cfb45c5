"""The HTTP server: the standard library's threading server, GET and HEAD only, routed by :data:`ROUTES`.

``/`` is the page, ``/static/<name>`` its files (the package's static folder
and Plotly's bundled script), ``/api/...`` the JSON answers. Bound to
anything but a loopback address, every request needs the access token.
"""
from __future__ import annotations

import functools
import hmac
import http.server
import ipaddress
import json
import mimetypes
import math
import os
import socket
import threading
import traceback
import urllib.parse
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Callable, Dict, FrozenSet, Optional, Tuple

from ..errors import ExperimentRunnerError
from . import api, experiment_api, plots, results_api
from .site import Query, RequestError, Site

__all__ = ["ROUTES", "Server", "is_loopback", "plotly_script"]

Handler = Callable[[Site, Query], Any]
#: Path -> handler of every JSON answer.
ROUTES: Dict[str, Handler] = {**api.ROUTES, **results_api.ROUTES, **experiment_api.ROUTES, **plots.ROUTES}
STATIC = Path(__file__).parent / "static"
PLOTLY_SCRIPT = "plotly.min.js"
TOKEN_COOKIE = "experiment_runner_token"


def plotly_script() -> Optional[Path]:
    """Plotly's bundled script in the installed ``plotly`` package (found without importing it), or None."""
    spec = find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    script = Path(next(iter(spec.submodule_search_locations))) / "package_data" / PLOTLY_SCRIPT
    return script if script.is_file() else None


@functools.lru_cache(maxsize=1)
def _static_names() -> FrozenSet[str]:
    """The page's files, by name: the only names /static/ answers (besides Plotly's script)."""
    return frozenset(entry.name for entry in os.scandir(STATIC) if entry.is_file() and not entry.name.startswith("."))


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or a name for one (localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Server(http.server.ThreadingHTTPServer):
    """Serves one :class:`Site`; ``token`` (None on loopback) is what every request must carry."""

    daemon_threads = True

    def __init__(self, site: Site, address: Tuple[str, int], token: Optional[str]):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.site = site
        self.token = token
        self.plotly = plotly_script()
        super().__init__(address, RequestHandler)


class RequestHandler(http.server.BaseHTTPRequestHandler):
    server: Server
    server_version = "experiment-runner"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        self._answer(with_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(with_body=False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        """Requests are not logged: the terminal shows the address and nothing else."""

    def _answer(self, with_body: bool) -> None:
        """Answer the request; what no handler foresaw is one line of 500 to the client, its traceback here."""
        try:
            self._answer_request(with_body)
        except Exception:  # the server goes on serving; the traceback goes to its terminal
            self.log_error("%s", traceback.format_exc())
            self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR,
                            {"error": "the server failed to answer this request (its terminal has the traceback)"},
                            with_body)

    def _answer_request(self, with_body: bool) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        path = urllib.parse.unquote(url.path)
        if self.server.token is None and not self._host_is_loopback():
            self._send_json(HTTPStatus.FORBIDDEN, {"error": "this server answers only to a loopback address such "
                                                   "as 127.0.0.1 or localhost"}, with_body)
            return
        if not self._authorised(query):
            self._send_json(HTTPStatus.FORBIDDEN, {"error": "an access token is needed: open the address "
                                                   "that experiment-runner serve printed"}, with_body)
            return
        cookie = self._token_cookie(query)
        if path in ROUTES:
            self._send_api(ROUTES[path], query, with_body, cookie)
        elif path in ("/", "/index.html"):
            self._send_file(STATIC / "index.html", with_body, cookie)
        elif path.startswith("/static/"):
            self._send_file(self._static_file(path[len("/static/"):]), with_body, cookie)
        else:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {path}"}, with_body)

    # ------------------------------------------------------------ access token

    def _host_is_loopback(self) -> bool:
        """Whether the request names a loopback host (Host: 127.0.0.1:8765, localhost, [::1]). Without a token,
        another name is refused: a web page whose name was made to point at 127.0.0.1 (DNS rebinding) must not
        read the runs through the visitor's browser."""
        host = self.headers.get("Host", "")
        name = host.rpartition("]")[0].lstrip("[") if host.startswith("[") else host.partition(":")[0]
        return is_loopback(name)

    def _authorised(self, query: Query) -> bool:
        token = self.server.token
        if token is None:
            return True
        given = [*query.get("token", [])]
        authorization = self.headers.get("Authorization", "")
        if authorization.startswith("Bearer "):
            given.append(authorization[len("Bearer "):].strip())
        cookie = self._cookies().get(TOKEN_COOKIE)
        if cookie is not None:
            given.append(cookie.value)
        return any(hmac.compare_digest(text.encode(), token.encode()) for text in given)

    def _cookies(self) -> SimpleCookie:
        cookies: SimpleCookie = SimpleCookie()
        try:
            cookies.load(self.headers.get("Cookie", ""))
        except CookieError:
            return SimpleCookie()  # a malformed Cookie header carries no token
        return cookies

    def _token_cookie(self, query: Query) -> Optional[str]:
        """The Set-Cookie header that lets the page's own requests carry the token given in the address."""
        if self.server.token is None or not query.get("token"):
            return None
        return f"{TOKEN_COOKIE}={self.server.token}; Path=/; HttpOnly; SameSite=Strict"

    # ------------------------------------------------------------ answers

    def _send_api(self, handler: Handler, query: Query, with_body: bool, cookie: Optional[str]) -> None:
        try:
            answer = handler(self.server.site, query)
        except RequestError as error:
            self._send_json(error.status, {"error": str(error)}, with_body, cookie)
            return
        except ExperimentRunnerError as error:  # the package's own: a record it cannot read, say
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": " ".join(str(error).split())}, with_body, cookie)
            return
        except OSError as error:  # a file of the run that cannot be read (no permission, gone meanwhile)
            problem = f"cannot read {error.filename or 'a file of the run'}: {error.strerror or error}"
            self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": problem}, with_body, cookie)
            return
        self._send_json(HTTPStatus.OK, answer, with_body, cookie)

    def _static_file(self, name: str) -> Optional[Path]:
        """A file of the static folder by its plain name (no folders), or Plotly's script; None for anything else."""
        if name == PLOTLY_SCRIPT:
            return self.server.plotly
        return STATIC / name if name in _static_names() else None

    def _send_file(self, path: Optional[Path], with_body: bool, cookie: Optional[str]) -> None:
        try:
            data = path.read_bytes() if path is not None else None
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            data = None
        if data is None:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no such file: {self.path.split('?')[0]}"}, with_body)
            return
        kind = mimetypes.guess_type(str(path))[0] or "application/octet-stream"
        if kind.startswith("text/") or kind.endswith("javascript"):
            kind += "; charset=utf-8"
        self._send(HTTPStatus.OK, data, kind, with_body, cookie, cache="no-cache")

    def _send_json(self, status: int, answer: Any, with_body: bool, cookie: Optional[str] = None) -> None:
        data = json_bytes(answer)
        self._send(status, data, "application/json", with_body, cookie, cache="no-store")

    def _send(self, status: int, data: bytes, kind: str, with_body: bool, cookie: Optional[str], cache: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", cache)
        self.send_header("X-Content-Type-Options", "nosniff")
        if cookie:
            self.send_header("Set-Cookie", cookie)
        self.end_headers()
        if with_body:
            self.wfile.write(data)


def start(site: Site, host: str, port: int, token: Optional[str]) -> Tuple[Server, threading.Thread]:
    """A server bound to (host, port), serving in a daemon thread."""
    server = Server(site, (host, port), token)
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), name="experiment-runner serve", daemon=True)
    thread.start()
    return server, thread


def json_bytes(answer: Any) -> bytes:
    """``answer`` as JSON that browsers read: NaN and infinities (JSON has none) as null."""
    try:
        return json.dumps(answer, allow_nan=False, default=str).encode("utf-8")
    except ValueError:  # a NaN or an infinity somewhere in it
        return json.dumps(_finite(answer), default=str).encode("utf-8")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value
