"""``experiment-runner serve [PATH]``: serve the runs under PATH to the browser until Ctrl-C."""
from __future__ import annotations

import argparse
import signal
import sys
from typing import Any, Optional, Sequence

from . import DEFAULT_HOST, DEFAULT_PORT, serve

PROG = "experiment-runner serve"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Watch runs in the browser: each run's progress, results table, failures and plots, "
        "updated live as the run records them. Read-only: nothing under PATH is written.",
    )
    parser.add_argument("path", nargs="?", default="results", metavar="PATH",
                        help="a run's out_path, or a folder of runs (default: results)")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"the address to listen on (default: {DEFAULT_HOST}, this machine only); any other "
                        "address needs the access token the printed address carries")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT,
                        help=f"the port to listen on (default: {DEFAULT_PORT}; 0: a free one)")
    parser.add_argument("--token", help="the access token to require (default: a random one when --host is not "
                        "a loopback address; none on loopback)")
    parser.add_argument("--open", action="store_true", help="open the page in the default browser")
    return parser


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
    return port


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    serving = serve(args.path, host=args.host, port=args.port, token=args.token)
    print(f"serving {args.path} at {serving.url}", flush=True)
    if args.open:
        import webbrowser

        webbrowser.open(serving.url)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        serving.wait()
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        serving.close()
    return 0


def _interrupt(*_: Any) -> None:
    """SIGTERM stops the server as Ctrl-C does."""
    raise KeyboardInterrupt
