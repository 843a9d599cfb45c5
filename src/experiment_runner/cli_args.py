"""The command line's arguments: what differs between the entry points, the flags, and Hydra's flags.

Hydra's own flags are accepted where they mean something here (``-m``,
``--cfg job|hydra|all``, ``-cp``, ``-p``), and the others are one line naming
what to use instead, so a command line pasted from a Hydra project runs or
says why not.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import shlex
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, List, NoReturn, Optional, Sequence

from .errors import UsageError
from .serialization import masked_argv

if TYPE_CHECKING:
    from .progress import RunSummary

_OVERRIDES_HELP = """\
overrides (Hydra's grammar):
  key=value          change a key (a.b.c=1 for nested keys); values are typed: 1, 0.1, true, null, [1,2], {a: 1}, 'text'
  group=option       choose an option of a config group (model=forest selects <config-dir>/model/forest.yaml)
  +key=value         add a key that is not in the config (+group=option adds a group)
  ++key=value        add or change a key
  ~key               delete a key (~group removes the group from the defaults list)
  key=a,b,c          a sweep: one experiment per value; also key=range(0,10), key=choice(a,b), group=glob(*),
                     and Hydra's int() float() str() bool() sort() shuffle() tag()
  n_configs=N seed=S sample N unique configurations of the sweep instead of running the whole grid

other commands:
  experiment-runner report --help     tables and plots of recorded results
  experiment-runner serve --help      watch runs in the browser, live
"""


@dataclasses.dataclass
class App:
    """What differs between the console script, ``python -m`` and a decorated script."""

    prog_words: List[str]
    config_dir: str = "conf"
    config_name: str = "config"
    stage_module: Optional[ModuleType] = None
    on_finish: Optional[Callable[["RunSummary"], Any]] = None
    #: What ``${hydra:job.name}`` gives: a decorated script's name, else the primary config's name.
    job_name: Optional[str] = None
    #: A decorated script's folder: Hydra's ``--config-path`` is relative to it.
    script_dir: Optional[Path] = None
    #: A decorated script's ``version_base``, as ``@hydra.main`` takes it (see :func:`check_version_base`).
    version_base: Optional[str] = None

    @property
    def prog(self) -> str:
        return shlex.join(self.prog_words)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter as wide as the terminal, its width found without importing shutil.

    argparse's own formatter imports shutil for ``shutil.get_terminal_size``,
    and shutil imports bz2, lzma and zlib: about 3 ms of every start-up, for
    one number. It is made each time argparse formats (adding a flag does).
    """

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: Optional[int] = None):
        super().__init__(prog, indent_increment, max_help_position, _terminal_columns() - 2 if width is None else width)


def _terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``: ``$COLUMNS``, else the terminal's width, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


class _Parser(argparse.ArgumentParser):
    """argparse that raises a UsageError (one line, exit code 2) instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{_masked_message(message)} (see {self.prog} --help)")


def _masked_message(message: str) -> str:
    """argparse's message, with the value of a flag named like a secret (``--token=S``) masked."""
    head, found, arguments = message.partition("unrecognized arguments: ")
    if not found:
        return message
    return head + found + " ".join(masked_argv(arguments.split(" "), ()))


def _parser(app: App) -> _Parser:
    return _parser_of(app.prog, app.config_dir, app.config_name)


@functools.lru_cache(maxsize=4)
def _parser_of(prog: str, config_dir: str, config_name: str) -> _Parser:
    """The parser of a program, made once: ``--help`` reads the command line with it, then shows its flags."""
    parser = _Parser(
        prog=prog,
        add_help=False,
        allow_abbrev=False,
        formatter_class=_Formatter,
        description="Compose a sweep of experiments from YAML config groups and overrides, and run it.",
        epilog=_OVERRIDES_HELP,
    )
    parser.add_argument("overrides", nargs="*", metavar="OVERRIDE", help="see 'overrides' below")
    parser.add_argument("-h", "--help", action="store_true", help="show this help, the config groups and the config")
    parser.add_argument("--version", action="store_true", help="show the version and exit")
    parser.add_argument("-c", "--cfg", action="store_true",
                        help="print the composed config (secrets as ***) and exit; as in Hydra, --cfg hydra prints "
                        "the hydra node instead and --cfg all both (--cfg job: the config)")
    parser.add_argument("--cfg-part", choices=_CFG_PARTS, default="job", help=argparse.SUPPRESS)
    parser.add_argument("--resolve", action="store_true", help="with --cfg: resolve ${...} interpolations")
    parser.add_argument("-l", "--list", action="store_true", help="print the experiments of the sweep and their count")
    parser.add_argument("-cd", "--config-dir", help=f"the config directory (default: {config_dir})")
    parser.add_argument("-cn", "--config-name", help=f"the primary config in it (default: {config_name})")
    parser.add_argument(
        "--resume", metavar="OUT_PATH", help="finish an interrupted run: its sweep is recomposed from OUT_PATH/run.yaml"
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    parser.add_argument("-cp", "--config-path",
                        help="as Hydra's: the config directory, relative to the script (for the command: to here)")
    parser.add_argument("-p", "--package", help="with --cfg: print only this node of the config (db, db.user)")
    parser.add_argument("-m", "--multirun", action="store_true",
                        help="as in Hydra: the config's hydra.sweeper.params sweep and hydra.sweep.dir is the out_path "
                        "(any command line may sweep without it)")
    parser.add_argument("-r", "--run", action="store_true",
                        help="as in Hydra: without -m's sweeper params and sweep dir (the default; overrides still "
                        "sweep)")
    for flags, takes_value in _UNSUPPORTED_HYDRA_FLAGS:
        dest = flags[-1].lstrip("-").replace("-", "_")
        if takes_value:
            parser.add_argument(*flags, nargs="?", const=True, dest=dest, help=argparse.SUPPRESS)
        else:
            parser.add_argument(*flags, action="store_const", const=True, dest=dest, help=argparse.SUPPRESS)
    return parser


#: Hydra's flags without an equivalent here (flags, whether one takes a value), and what to use instead.
_UNSUPPORTED_HYDRA_FLAGS = [
    (("--info",), True), (("--hydra-help",), False), (("-sc", "--shell-completion"), False),
    (("--experimental-rerun",), True),
]
_INSTEAD = {
    "info": "--help shows the config groups and the composed config, --cfg the config, --list the experiments",
    "hydra_help": "--help shows the flags, the config groups and the config",
    "shell_completion": "there is no shell completion yet",
    "experimental_rerun": "--resume OUT_PATH runs a recorded run again (what has not finished)",
}


def _check_hydra_flags(args: argparse.Namespace) -> None:
    """One line for a Hydra flag that has no equivalent here, and for ``--resolve`` or ``--package`` alone."""
    for name, instead in _INSTEAD.items():
        if getattr(args, name) is not None:
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"Hydra's {flag} is not supported here: {instead}")
    if args.run and args.multirun:
        raise UsageError("-r/--run and -m/--multirun ask for opposite things: give one of them, as Hydra requires")
    if args.resolve and not (args.cfg or args.help):
        raise UsageError("--resolve works only with --cfg (or --help), as in Hydra: add --cfg to print the config")
    if args.package and not args.cfg:
        raise UsageError("--package works only with --cfg: add --cfg to print that node of the config")


#: What Hydra's ``--cfg`` takes: the task's config, the hydra node, or both.
_CFG_PARTS = ("job", "hydra", "all")


def _with_cfg_part(argv: Sequence[str]) -> List[str]:
    """Hydra's ``--cfg job`` (``hydra``, ``all``; ``--cfg=job``) as ``--cfg --cfg-part=job``.

    A word after ``--cfg`` that is no part stays an override: ``--cfg lr=0.1``
    prints the config with that override, as it always has.
    """
    words: List[str] = []
    for word in argv:
        flag, equals, part = word.partition("=")
        if equals and flag == "--cfg" and part in _CFG_PARTS:
            words += ["--cfg", f"--cfg-part={part}"]
        elif word in _CFG_PARTS and words and words[-1] in ("-c", "--cfg"):
            words.append(f"--cfg-part={word}")
        else:
            words.append(word)
    return words


def parse_args(argv: Sequence[str], app: App) -> argparse.Namespace:
    """The flags and overrides of ``argv``; a UsageError (one line) for what cannot be read."""
    args = _parser(app).parse_intermixed_args(_with_cfg_part(argv))
    _check_hydra_flags(args)
    return args


#: The oldest ``version_base`` whose defaults are the ones composed here: Hydra 1.2 changed them (the job no
#: longer changes its working directory, ``config_path`` names no folder unless given, ...).
OLDEST_VERSION_BASE = (1, 2)


def check_version_base(version_base: Optional[str]) -> None:
    """A UsageError for a ``version_base`` older than the Hydra defaults this package composes with."""
    if version_base is None:
        return
    try:
        given = tuple(int(part) for part in str(version_base).split(".")[:2])
    except ValueError:
        given = ()
    if len(given) < 2 or given < OLDEST_VERSION_BASE:
        raise UsageError(
            f"version_base={version_base!r}: configs are composed with the defaults of Hydra 1.2 and later; "
            "give version_base=None (or \"1.2\", \"1.3\") and set what differs (hydra.job.chdir=true) in the config"
        )


def flags_help(app: App) -> str:
    """The flags' part of ``--help``."""
    return _parser(app).format_help()


def shown_path(path: Path, start: Optional[Path] = None) -> str:
    """``path`` relative to ``start`` (default: the working directory) if it is below it, else absolute."""
    relative = os.path.relpath(path, start)
    return path.as_posix() if relative.startswith("..") else relative
