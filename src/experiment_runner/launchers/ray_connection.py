"""This process's connection to Ray: starting the embedded Ray, or connecting to a cluster, and undoing it.

Ray has one connection per process. :class:`RayConnection` makes it for one
run and ends it when the run ends: it starts an embedded local instance (and
shuts it down), connects to a cluster (and disconnects, which ends the run's
Ray job), or borrows the connection the user opened with ``ray.init`` (and
leaves it open).

Private Ray APIs. Three things here have no public equivalent; each is
guarded, so that a Ray without them still runs, only less carefully:

- ``ray._raylet.Config`` / ``AuthenticationTokenLoader``: Ray reads
  ``RAY_AUTH_*`` once, when it is imported; the run sets them (a token given
  as ``ray_auth_token``, a fresh one for the embedded Ray) after that.
- ``ray._private.utils.set_sigterm_handler`` and
  ``ray._private.ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER``: kept
  from taking SIGTERM over while ``ray.init`` runs (see :func:`_signals_held`).
- ``ray.init(_redis_password=...)``: the only way to give a cluster's Redis
  password (``redis_password``) to ``ray.init``.
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import socket
import threading
from typing import Any, Dict, Iterator, List, Optional

import ray
import ray.exceptions as ray_errors

from ..errors import UsageError
from .ray_options import RayOptions
from .ray_outcomes import first_line

__all__ = ["RayConnection"]

#: How long connecting to a cluster's address, and then its first answer, may take.
ANSWER_TIMEOUT_SECONDS = 10.0
#: What an HTTP/2 client sends first (RFC 9113, section 3.4): the preface and an empty SETTINGS frame.
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
#: The frame type of SETTINGS, which an HTTP/2 server sends first.
_HTTP2_SETTINGS = 4

_AUTH_VARIABLES = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


class RayConnection:
    """This process's connection to Ray for one run, and what it changed in the environment to make it."""

    def __init__(self, options: RayOptions):
        self.options = options
        #: Whether the connection is the user's own (``ray.init`` before the run): used, left open.
        self.borrowed = False
        self._started = False
        self._saved_environment: Dict[str, Optional[str]] = {}

    def open(self) -> None:
        """Connect to the cluster, start the embedded instance, or borrow the user's connection.

        Raises a UsageError when there is nowhere to run, KeyboardInterrupt for
        Ctrl-C or SIGTERM while Ray starts; either way nothing it started is left.
        """
        if ray.is_initialized():
            self._borrow()
            return
        self._saved_environment = {name: os.environ.get(name) for name in _AUTH_VARIABLES}
        self._set_authentication()
        try:
            self._start_or_connect()
        except BaseException:
            self._restore_environment()
            raise
        self._started = True

    def close(self) -> None:
        """Disconnect (shutting the embedded instance down, ending the run's Ray job) and restore the environment."""
        if not self._started:
            return
        self._started = False
        ray.shutdown()
        self._restore_environment()

    def _start_or_connect(self) -> None:
        """ray.init, leaving no Ray process behind when it fails or is interrupted (Ctrl-C, SIGTERM)."""
        if not self.options.embedded:
            _check_answers(self.options.address)
        with _signals_held() as received:
            try:
                ray.init(**self._init_arguments())
            except Exception as error:
                ray.shutdown()
                raise UsageError(_connect_error_message(self.options, error)) from error
        if received:
            ray.shutdown()
            raise KeyboardInterrupt(f"signal {received[0]}")

    def _borrow(self) -> None:
        if self.options.runtime_env is not None:
            raise UsageError(
                "ray_runtime_env cannot be applied: Ray was already initialized in this process "
                "(ray.init was called before the run); pass runtime_env to that ray.init instead"
            )
        self.borrowed = True

    def _init_arguments(self) -> Dict[str, Any]:
        arguments: Dict[str, Any] = {
            "log_to_driver": False,
            "logging_level": "warning",
            "runtime_env": self.options.runtime_env,
        }
        if self.options.embedded:
            arguments["include_dashboard"] = False
            return arguments
        arguments["address"] = self.options.address
        if self.options.redis_password is not None:
            # Private (underscored): ray.init has no public way to give a Redis password. Should Ray drop it,
            # ray.init refuses the unknown keyword and the run stops before anything is written, with a
            # UsageError naming it; the fallback is a cluster without a Redis password (Ray 2's GCS needs none).
            arguments["_redis_password"] = self.options.redis_password
        return arguments

    def _set_authentication(self) -> None:
        """Hand Ray its token through this process's environment only, never a file.

        The embedded instance gets a fresh random token unless the user chose
        an authentication mode; Ray would otherwise generate one and save it
        in ~/.ray/auth_token.
        """
        token = self.options.auth_token
        if token is None and self.options.embedded and "RAY_AUTH_MODE" not in os.environ:
            token = secrets.token_hex(32)
        if token is not None:
            os.environ["RAY_AUTH_MODE"] = "token"
            os.environ["RAY_AUTH_TOKEN"] = token
            os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
        _reload_ray_authentication()

    def _restore_environment(self) -> None:
        for name, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _reload_ray_authentication()


def _reload_ray_authentication() -> None:
    """Make Ray re-read RAY_AUTH_* from the environment.

    Private: Ray caches the authentication mode and token when it is
    imported and has no public way to re-read them; this is what Ray's own
    test utilities and ``ray get-auth-token`` do after changing them. If a
    Ray renames them, the run goes on without reloading: a token given in
    the environment before Ray was imported still works, one given as
    ``ray_auth_token`` is refused by the cluster with an authentication
    error, and the embedded Ray may save its own token in ~/.ray/auth_token.
    Older Rays without token authentication have nothing to reload.
    """
    try:
        from ray._raylet import AuthenticationTokenLoader, Config
    except ImportError:
        return
    if hasattr(Config, "initialize") and hasattr(AuthenticationTokenLoader, "instance"):
        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()


@contextlib.contextmanager
def _signals_held() -> Iterator[List[int]]:
    """Hold Ctrl-C and SIGTERM while ray.init runs; yields the list of those that came meanwhile.

    Interrupted halfway, ray.init leaves Ray's processes running that nothing
    stops, or a half-connected driver that may crash later. Ray also takes
    SIGTERM over while it starts: a handler of its own that exits at once,
    and a C++ handler that aborts the driver. Both are kept out (the latter
    only for this driver, not for its workers), and the caller acts on what
    came once ray.init has returned: it takes seconds, more on a busy machine.
    """
    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    received: List[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    handlers = {signum: signal.signal(signum, lambda signum, frame: received.append(signum)) for signum in held}
    try:
        with _ray_leaving_sigterm_alone():
            yield received
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


@contextlib.contextmanager
def _ray_leaving_sigterm_alone() -> Iterator[None]:
    """Keep ray.init from installing its SIGTERM handlers (see _signals_held).

    Private, with no public equivalent: ray.init calls
    ``ray._private.utils.set_sigterm_handler`` (a Python handler that exits
    at once), and the core worker installs a C++ failure signal handler
    unless ``ray._private.ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER``
    (read from the environment when Ray is imported, too late to set here,
    and inherited by the workers if set in the environment) is true. Both are
    swapped for the time of ray.init only. A Ray without them is left as is:
    SIGTERM during ray.init then ends the driver at once instead of after
    Ray is up, and the run's handlers are back as soon as ray.init returns.
    """
    try:
        from ray._private import ray_constants, utils
    except ImportError:
        yield
        return
    stand_ins = [(utils, "set_sigterm_handler", _keep_sigterm_handler),
                 (ray_constants, "RAY_DISABLE_FAILURE_SIGNAL_HANDLER", True)]
    present = [(module, name, stand_in) for module, name, stand_in in stand_ins if hasattr(module, name)]
    originals = [(module, name, getattr(module, name)) for module, name, _ in present]
    for module, name, stand_in in present:
        setattr(module, name, stand_in)
    try:
        yield
    finally:
        for module, name, original in originals:
            setattr(module, name, original)


def _keep_sigterm_handler(handler: Any) -> None:
    """Stands in for Ray's set_sigterm_handler while ray.init runs: the run's handler stays."""


def _check_answers(address: Optional[str]) -> None:
    """Fail fast unless something answers at ``host:port`` as a Ray cluster does.

    ray.init retries for minutes where nothing listens, and waits longer still
    on a server that is not Ray's (one that never answers, a web server). The
    head's GCS, which ray.init connects to, is a gRPC server: it answers an
    HTTP/2 client's first bytes with a SETTINGS frame at once. With
    RAY_USE_TLS that exchange is encrypted, so only the connection is checked.
    """
    match = re.fullmatch(r"\[?([^\]/]+?)\]?:(\d+)", address or "")
    if match is None:
        return
    try:
        connection = socket.create_connection((match.group(1), int(match.group(2))), timeout=ANSWER_TIMEOUT_SECONDS)
    except OSError as error:
        raise UsageError(f"cannot connect to the Ray cluster at address={address!r}: {error}") from error
    with connection:
        if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
            return
        problem = _http2_problem(connection)
    if problem is not None:
        raise UsageError(
            f"cannot connect to the Ray cluster at address={address!r}: something listens there, but nothing "
            f"Ray-like answers ({problem}); give the address of the head node (`ray start --head` prints it)"
        )


def _http2_problem(connection: socket.socket) -> Optional[str]:
    """None if the server answers the HTTP/2 preface with a SETTINGS frame, as a gRPC server does; else what it did."""
    connection.settimeout(ANSWER_TIMEOUT_SECONDS)
    try:
        connection.sendall(_HTTP2_PREFACE)
        with connection.makefile("rb") as reply:
            frame_header = reply.read(9)
            if _is_settings_frame(frame_header):
                return None
            if not frame_header:
                return "it closed the connection without a reply"
            reply_line = (frame_header + reply.readline(60)).decode("ascii", "replace").strip().splitlines()[0]
    except TimeoutError:
        return f"no reply within {ANSWER_TIMEOUT_SECONDS:g} s"
    except OSError as error:
        return f"the connection broke: {error}"
    return f"it replied {reply_line!r}"


def _is_settings_frame(frame_header: bytes) -> bool:
    """Whether these 9 bytes head an HTTP/2 SETTINGS frame of the connection (stream 0)."""
    return len(frame_header) == 9 and frame_header[3] == _HTTP2_SETTINGS and frame_header[5:] == bytes(4)


def _connect_error_message(options: RayOptions, error: Exception) -> str:
    cause = error.__cause__ or error
    if isinstance(cause, ray_errors.AuthenticationError) or "authentication" in str(cause).lower():
        return (
            f"the Ray cluster at address={options.address!r} refused this driver's authentication: give "
            "its token with ray_auth_token (or the environment variables RAY_AUTH_MODE=token and RAY_AUTH_TOKEN)"
        )
    if options.embedded:
        return f"cannot start the embedded Ray: {first_line(cause)}"
    return f"cannot connect to the Ray cluster at address={options.address!r}: {first_line(cause)}"
