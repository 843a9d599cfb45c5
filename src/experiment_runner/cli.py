"""The ``experiment-runner`` command, ``python -m experiment_runner`` and the ``@main`` decorator.

All three compose a sweep with :func:`experiment_runner.config.compose` and
then print it (``--cfg``, ``--list``, ``--help``) or run it. Start-up stays
light: the runner, the backends and pandas are imported only to run.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import os
import shlex
import sys
import traceback
import warnings
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import (
    TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Mapping, NoReturn, Optional, Sequence, Tuple, Type, TypeVar,
)

from .console import drop, flush_standard_streams, say
from .errors import (
    ConfigError, ExperimentRunnerError, ExperimentRunnerWarning, ResumeMismatchError, StageImportError,
    UsageError,
)
from .serialization import MASK, dumps, mask_secrets, masked_argv, to_jsonable

if TYPE_CHECKING:
    from .config import Composition
    from .expand import SweepPlan
    from .launchers.base import Launcher
    from .progress import RunSummary

__all__ = ["console_main", "main", "App", "run_cli", "guarded"]

PROG = "experiment-runner"
EXIT_INTERRUPTED = 130
#: 128 + SIGPIPE: how a shell reports a command whose output's reader left (``| head -1``) before it finished.
EXIT_OUTPUT_GONE = 141
DEFAULT_OUT_PATH = "results/${now:%Y-%m-%d_%H-%M-%S}"
STAGE_NAMES = ("pre", "fit", "post")

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

    @property
    def prog(self) -> str:
        return shlex.join(self.prog_words)


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
    parser = _Parser(
        prog=app.prog,
        add_help=False,
        allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    parser.add_argument("-cd", "--config-dir", help=f"the config directory (default: {app.config_dir})")
    parser.add_argument("-cn", "--config-name", help=f"the primary config in it (default: {app.config_name})")
    parser.add_argument(
        "--resume", metavar="OUT_PATH", help="finish an interrupted run: its sweep is recomposed from OUT_PATH/run.yaml"
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    parser.add_argument("-cp", "--config-path",
                        help="as Hydra's: the config directory, relative to the script (for the command: to here)")
    parser.add_argument("-p", "--package", help="with --cfg: print only this node of the config (db, db.user)")
    parser.add_argument("-m", "--multirun", action="store_true",
                        help="accepted so that Hydra command lines work as pasted; changes nothing (any command line "
                        "may sweep)")
    parser.add_argument("-r", "--run", action="store_true", help=argparse.SUPPRESS)
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


def run_cli(argv: Sequence[str], app: App) -> int:
    """Parse ``argv``, then print or run the sweep; returns the exit code, raises the package's errors."""
    args = _parser(app).parse_intermixed_args(_with_cfg_part(argv))
    _check_hydra_flags(args)
    if args.version:
        from . import __version__

        print(f"{app.prog} {__version__}")
        return _printed()
    resume = _read_resume(args.resume, app) if args.resume else None
    if args.help:
        print(_help_text(app, args, resume))
        return _printed()
    composition = _compose(app, args, resume)
    if args.cfg:
        print(composition.to_yaml(resolve=args.resolve, part=args.cfg_part, package=args.package), end="")
        return _printed()
    plan = composition.plan()
    if args.list:
        _check_run(app, composition, plan, resume)
        _print_experiments(plan, composition)
        return _printed()
    return _run(app, argv, composition, plan, resume)


def _printed(code: int = 0) -> int:
    """``code``, once what went to stdout is out: a reader that left shows here (exit code 141), not at exit."""
    if sys.stdout is not None:
        sys.stdout.flush()
    return code


# ---------------------------------------------------------------- composing


@dataclasses.dataclass
class _Resume:
    """What a run's run.yaml recorded to recompose its sweep."""

    out_path: str
    config_dir: str
    config_name: Optional[str]
    overrides: List[str]
    started: Optional[datetime]
    #: Per branch of the sweep: the composed config as recorded (``config``), ``choices`` and ``origins``.
    branches: List[Dict[str, Any]]
    seed: Optional[int]
    #: The sweep's dimensions as recorded (dotted keys).
    dimensions: List[str] = dataclasses.field(default_factory=list)
    #: The working directory the run started in (environment.json's ``cwd``), if recorded.
    started_in: Optional[Path] = None
    #: Config directories searched after ``config_dir`` (a decorated script's ``-cd``).
    extra_config_dirs: List[str] = dataclasses.field(default_factory=list)

    @property
    def config_dirs(self) -> List[str]:
        return [self.config_dir, *self.extra_config_dirs]

    def typed_secrets(self) -> List[Tuple[str, str, bool]]:
        """The secrets the run's command line set, which run.yaml holds as ``key=***``.

        Each as (override as recorded, its key, whether it was a sweep); deleting one (``~key=***``) sets none.
        """
        from .config.overrides import parse_override

        typed = [parse_override(text) for text in self.overrides if text.endswith(f"={MASK}") and text[:1] != "~"]
        return [(override.text, override.key, override.key in self.dimensions) for override in typed]


def _read_resume(out_path: str, app: App) -> _Resume:
    import yaml

    from .config import is_file

    run_yaml = Path(out_path) / "run.yaml"
    if not is_file(run_yaml):
        raise UsageError(f"cannot resume '{out_path}': it holds no run.yaml, so it is not a run of experiment-runner")
    record = yaml.safe_load(run_yaml.read_text(encoding="utf-8")) or {}
    if not isinstance(record.get("overrides"), list) or "config_dir" not in record or "config" not in record:
        raise UsageError(
            f"cannot resume '{out_path}' from the command line: its run.yaml records no config and overrides "
            "(it was started from Python); run it again there with if_exists='resume'"
        )
    script = record.get("script")
    if script and app.stage_module is None:
        raise UsageError(
            f"'{out_path}' was started by the script {script}, whose stages and code it runs: "
            f"resume it with that script: {shlex.join(['python', str(script), '--resume', out_path])}"
        )
    configs = record["config"] if isinstance(record["config"], list) else [record["config"]]
    choices = record.get("choices")
    choices = choices if isinstance(choices, list) else [choices or {}] * len(configs)
    origins = record.get("origins")
    origins = origins if isinstance(origins, list) else [origins or {}] * len(configs)
    settings_only = record.get("settings_only") or []
    hydra = record.get("hydra")
    hydra = hydra if isinstance(hydra, list) else [hydra] * len(configs)
    sweep = record.get("sweep") or {}
    started = record.get("started")
    return _Resume(
        out_path=out_path,
        config_dir=str(record["config_dir"]),
        config_name=_recorded_config_name(record),
        overrides=[str(o) for o in record["overrides"]],
        started=datetime.fromisoformat(started) if isinstance(started, str) else None,
        branches=[{"config": c, "choices": ch, "origins": o, "hydra": h, "settings_only": settings_only}
                  for c, ch, o, h in zip(configs, choices, origins, hydra)],
        seed=sweep.get("seed") if sweep.get("n_configs") is not None else None,
        dimensions=[str(d) for d in sweep.get("dimensions") or []],
        started_in=_recorded_cwd(Path(out_path) / "environment.json"),
        extra_config_dirs=[str(d) for d in record.get("config_search_path") or []],
    )


def _recorded_cwd(environment_json: Path) -> Optional[Path]:
    """The working directory that a run's environment.json recorded, or None if it holds none."""
    try:
        environment = json.loads(environment_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    cwd = environment.get("cwd") if isinstance(environment, dict) else None
    return Path(cwd) if isinstance(cwd, str) and cwd else None


def _other_start_folder(resume: Optional[_Resume]) -> Optional[Path]:
    """The folder a resumed run started in, when that is not the working directory (and still exists)."""
    folder = resume.started_in if resume is not None else None
    if folder is None:
        return None
    try:
        return None if os.path.samefile(folder, os.getcwd()) else folder
    except OSError:  # that folder is gone (moved, deleted): there is no going back to it
        return None


def _resume_command(app: App, out_path: str, start_folder: Optional[Path] = None) -> str:
    """The command that finishes the run in ``out_path``, to type in the working directory.

    A run resumes from the folder it started in (its stages import from
    there, and relative paths mean what they meant): when that is another
    folder (``start_folder``), ``cd <start_folder> &&`` comes first. The
    out_path is relative when it is below the folder the command runs in,
    else absolute.
    """
    words = list(app.prog_words)
    if start_folder is not None and app.stage_module is not None:  # the script as typed here: by its full path
        words[-1] = os.path.abspath(words[-1])
    folder = _shown_path(Path(os.path.abspath(out_path)), start=start_folder)
    command = shlex.join([*words, "--resume", folder])
    return command if start_folder is None else f"cd {shlex.quote(str(start_folder))} && {command}"


def _from_where_the_run_started(error: StageImportError, app: App, resume: Optional[_Resume]) -> StageImportError:
    """A stage that a resumed run cannot import here, because the run started (and imports) in another folder."""
    start_folder = _other_start_folder(resume)
    if resume is None or start_folder is None:
        return error
    return StageImportError(
        f"{error}; the run started in '{start_folder}', where its stages import: resume it from there: "
        f"{_resume_command(app, resume.out_path, start_folder)}"
    )


def _compose(app: App, args: argparse.Namespace, resume: Optional[_Resume]) -> "Composition":
    """The sweep: composed from the config files, or, to resume, rebuilt from what run.yaml recorded."""
    from .config import compose, recompose

    overrides = list(args.overrides)
    if resume is None:
        return compose(_config_dirs(app, args), _config_name(app, args), overrides, job_name=app.job_name)
    _check_secrets_typed_again(app, resume, overrides)
    if resume.seed is not None and not any(o.lstrip("+").startswith("seed=") for o in overrides):
        overrides.insert(0, f"seed={resume.seed}")
    return recompose(
        resume.config_dirs, resume.config_name, resume.branches, resume.overrides, overrides, now=resume.started
    )


def _check_secrets_typed_again(app: App, resume: _Resume, overrides: Sequence[str]) -> None:
    """A secret typed on the command line of the run must be typed again to resume it, whatever the files hold.

    run.yaml keeps it as ``key=***``; taking another value from the config
    files instead would quietly run the rest of the sweep with another secret.
    """
    given = [text.lstrip("+").partition("=")[0].strip() for text in overrides if "=" in text and text[:1] != "~"]
    missing = [(text, key, swept) for text, key, swept in resume.typed_secrets()
               if not any(g == key or g.startswith(f"{key}.") or key.startswith(f"{g}.") for g in given)]
    if not missing:
        return
    names = [f"{key} (a sweep)" if swept else key for _, key, swept in missing]
    one = len(missing) == 1
    subject = f"the secret {names[0]} was" if one else f"the secrets {', '.join(names)} were"
    values = "value" if one and not missing[0][2] else "values"
    again = [f"{text[:-len(MASK)]}{'...,...' if swept else '...'}" for text, _, swept in missing]
    raise UsageError(
        f"cannot resume '{resume.out_path}': {subject} typed on the command line, and run.yaml keeps no secret: "
        f"type {'it' if one else 'them'} again, with the same {values}: "
        f"{shlex.join([*app.prog_words, '--resume', resume.out_path, *again])}"
    )


def _secret_sweep_advice(resume: Optional[_Resume]) -> str:
    """What a resume that does not match must know when the recorded run swept a secret typed on the command line."""
    swept = [key for _, key, sweep in (resume.typed_secrets() if resume else []) if sweep]
    if not swept:
        return ""
    return (f"; the recorded run swept the secret {', '.join(swept)} on the command line: type that sweep again "
            "after --resume, with the same values")


def _config_dirs(app: App, args: argparse.Namespace) -> List[str]:
    """The config directory, and a decorated script's ``--config-dir``, searched after it as in Hydra.

    For the ``experiment-runner`` command, which has no ``config_path`` of
    its own, ``--config-dir`` is the config directory (as for a Hydra app
    with ``config_path=None``); Hydra's ``--config-path`` replaces a script's
    ``config_path`` (relative to the script) or the default ``conf``.
    """
    from .config import is_dir

    primary = app.config_dir
    if args.config_path:
        primary = _shown_path(app.script_dir / args.config_path) if app.script_dir else str(args.config_path)
    if not args.config_dir:
        return [primary]
    if app.script_dir is None:
        return [str(args.config_dir)]
    extra = Path(args.config_dir).resolve()
    if not is_dir(extra):
        raise UsageError(f"--config-dir {args.config_dir}: the additional config directory {extra} does not exist")
    return [primary, str(extra)]


def _config_name(app: App, args: argparse.Namespace) -> Optional[str]:
    """The primary config; None (compose without one, as Hydra does) where the command line builds the config.

    That is: no ``--config-name``, no ``<config dir>/<default name>.yaml``,
    and an override that adds to the config (``+db=postgresql``, ``+fit=m:fit``).
    Otherwise a missing primary config is the error that says how to create it.
    """
    from .config import is_file

    if args.config_name:
        name = str(args.config_name)
        return name[: -len(".yaml")] if name.endswith(".yaml") else name  # Hydra takes config.yaml too
    found = any(is_file(Path(folder) / f"{app.config_name}.yaml") for folder in _config_dirs(app, args))
    adds = any(text.startswith("+") for text in args.overrides)
    return None if adds and not found else app.config_name


def _recorded_config_name(record: Mapping[str, Any]) -> Optional[str]:
    """run.yaml's primary config: ``null`` for a run composed without one (an older run.yaml may lack the key)."""
    if "config_name" not in record:
        return "config"
    name = record["config_name"]
    return None if name is None else str(name)


def _help_text(app: App, args: argparse.Namespace, resume: Optional[_Resume]) -> str:
    from .config import ConfigSource, is_dir

    source = ConfigSource.at(resume.config_dirs if resume else _config_dirs(app, args))
    groups = source.groups() if is_dir(source.root) else {}
    lines = [_parser(app).format_help(), f"== Config groups ({source.root}) =="]
    lines += [f"  {group}: {', '.join(options)}" for group, options in groups.items()] or ["  (none)"]
    name = resume.config_name if resume else _config_name(app, args)
    primary = source.file(name) if name is not None else "no primary config"
    lines.append(f"\n== Config ({primary}, with the overrides given) ==")
    try:
        lines.append(_compose(app, args, resume).to_yaml().rstrip())
    except ExperimentRunnerError as error:
        lines.append(f"  (cannot compose it: {_one_line(error)})")
    return "\n".join(lines)


def _print_experiments(plan: "SweepPlan", composition: "Composition") -> None:
    for experiment_id, config in enumerate(plan.experiments):
        print(experiment_id, dumps(mask_secrets(to_jsonable(config), composition.secret_keys)))
    print(_sweep_line(plan))
    _say_repeated(plan)
    if plan.n_configs is not None and plan.settings.get("seed") is None:
        say(f"note: no seed given, so a run samples anew; add seed={plan.seed} to run these experiments")


def _say_repeated(plan: "SweepPlan") -> None:
    if plan.repeated:
        say(f"note: {', '.join(plan.repeated)} lists a value twice: equal configurations run once "
            "(Hydra would launch each; repetitions=N repeats an experiment)")


def _sweep_line(plan: "SweepPlan") -> str:
    """``--list``'s last line: how many experiments, how they were chosen, and the dimensions in grid order."""
    size = _count(plan.size, "configuration")
    after = ""
    if plan.n_configs is None:
        how = f"the whole grid of {size}"
    elif plan.n_configs > plan.size:
        how = f"all {size}"
        after = f", shuffled with seed {plan.seed} (n_configs={plan.n_configs} is more than the sweep has)"
    else:
        how = f"{plan.n_configs} sampled (seed {plan.seed}) of {size}"
    return f"{_count(len(plan.experiments), 'experiment')}: {how}{_dimensions_text(plan)}{after}"


def _dimensions_text(plan: "SweepPlan") -> str:
    """`` over a, b``; for a group sweep whose options vary different dimensions, those of each option."""
    if not plan.dimensions_per_option:
        return f" over {', '.join(plan.dimensions)}" if plan.dimensions else ""
    shared = [d for d in plan.dimensions if all(d not in dims for _, dims in plan.dimensions_per_option)]
    options: Dict[Tuple[str, ...], List[str]] = {}
    for option, dims in plan.dimensions_per_option:
        options.setdefault(tuple(dims), []).append(option)
    each = "; ".join(f"for {', '.join(names)}: {', '.join(dims) or 'none'}" for dims, names in options.items())
    return f" over {', '.join(shared)}, then {each}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# ---------------------------------------------------------------- running


def _run(
    app: App, argv: Sequence[str], composition: "Composition", plan: "SweepPlan", resume: Optional[_Resume]
) -> int:
    from .runner import run_experiments

    basecfg = _check_run(app, composition, plan, resume)
    _check_out_path(app, basecfg, composition, resume)
    claimed = _choose_out_path(basecfg, composition, resume)
    hint = f"to finish it, run: {_resume_command(app, basecfg['out_path'], _other_start_folder(resume))}"

    def banner(summary: "RunSummary") -> None:
        noun = "experiment" if summary.total == 1 else "experiments"
        if summary.skipped == summary.total:
            say(f"{app.prog}: nothing left to run: {summary.total} of {summary.total} {noun} finished; "
                f"results: {summary.results_file}")
            raise _NothingLeftToRun(summary)
        if basecfg.get("verbose", True):
            say(f"{app.prog}: {summary.total} {noun}, backend {basecfg.get('backend', 'single')}, "
                f"out_path {summary.out_path}")
        _say_repeated(plan)

    try:
        summary = run_experiments(
            basecfg, plan.experiments, run_record=_run_record(app, argv, composition, plan), resume_hint=hint,
            on_start=banner,
        )
    except _NothingLeftToRun as finished:
        summary = finished.summary
    except ResumeMismatchError as error:
        advice = _secret_sweep_advice(resume)
        if not advice:
            raise
        raise ResumeMismatchError(f"{error}{advice}") from error
    except (ExperimentRunnerError, KeyboardInterrupt):  # stopped before anything was written: no empty run folder
        if claimed is not None and claimed.is_dir() and not any(claimed.iterdir()):
            claimed.rmdir()
        raise
    if app.on_finish is not None:
        app.on_finish(summary)
    return 1 if summary.failed else 0


class _NothingLeftToRun(Exception):
    """A resumed run whose experiments all finished before: it ends before the backend starts."""

    def __init__(self, summary: "RunSummary"):
        super().__init__("nothing left to run")
        self.summary = summary


def _check_run(
    app: App, composition: "Composition", plan: "SweepPlan", resume: Optional[_Resume] = None
) -> Dict[str, Any]:
    """What a run checks before anything runs, for a run and for ``--list``; returns the run's basecfg.

    Stages importable, settings valid, the backend known, the backend node
    holding only that backend's keys, no stray setting, no reserved key in
    an experiment.
    """
    from .launchers import get_launcher_class
    from .runner import check_options, check_secret_keys
    from .settings import RunSettings

    basecfg = dict(plan.basecfg)
    _add_module_stages(basecfg, app.stage_module)
    try:
        settings = RunSettings.from_basecfg(basecfg)
    except StageImportError as error:
        raise _from_where_the_run_started(error, app, resume) from error
    launcher_class = get_launcher_class(settings.backend)
    backend_node = plan.settings.get("backend")
    if isinstance(backend_node, dict):
        _check_backend_node(backend_node, settings.backend, launcher_class, composition)
    check_options(settings, launcher_class)
    check_secret_keys(settings, plan.experiments)
    _check_reserved_keys(plan.experiments, composition)
    return basecfg


def _check_backend_node(
    node: Dict[str, Any], backend: str, launcher_class: Type["Launcher"], composition: "Composition"
) -> None:
    """Each key of the backend node is a setting of the backend that runs: not a typo, not another backend's."""
    from .config import other_backends_setting
    from .launchers import BUILTIN_OPTION_NAMES, owning_backends
    from .settings import CORE_KEYS, unknown_key_error

    known = CORE_KEYS | BUILTIN_OPTION_NAMES | launcher_class.option_names
    origins = composition.branches[0].origins
    for key in (key for key in node if key != "name"):
        where = origins.get(f"backend.{key}") or origins.get("backend") or "the config"
        if key not in known:
            raise unknown_key_error(key, known, f"the backend node (backend.{key}, from {where})")
        owners = owning_backends(key, launcher_class.option_names)
        if owners:
            text = _setting_override_text(composition, f"backend.{key}")
            where = f"override {text!r}" if text else where
            raise other_backends_setting(where, key, owners, backend, text and text.lstrip("+"))


def _setting_override_text(composition: "Composition", key: str) -> Optional[str]:
    """The last override that set ``key`` or a key inside it, as it may be shown; None if a config file set it."""
    from .config.overrides import DELETE

    setting = [o for o in composition.overrides if o.kind != DELETE and (o.key + ".").startswith(key + ".")]
    return setting[-1].masked_text() if setting else None


def _check_reserved_keys(experiments: List[Dict[str, Any]], composition: "Composition") -> None:
    """An experiment parameter the runner sets itself (experiment_id, run_id), named as the user set it."""
    from .experiment import RESERVED_KEYS

    for config in experiments[:1]:
        for key in RESERVED_KEYS:
            if key in config:
                where = composition.branches[0].origins.get(key, "the config")
                raise ConfigError(
                    f"{where} sets {key}, which the runner sets for each experiment: rename that parameter"
                )


def _check_out_path(app: App, basecfg: Dict[str, Any], composition: "Composition", resume: Optional[_Resume]) -> None:
    """A fixed out_path that holds a run is an error worded for the command line (before any banner)."""
    if resume is not None or basecfg.get("out_path") in (None, "") or "${now:" in str(composition.written("out_path")):
        return
    if basecfg.get("if_exists", "error") != "error":
        return
    from .config import is_dir

    folder = Path(str(basecfg["out_path"]))
    if is_dir(folder) and any(folder.iterdir()):
        command = _resume_command(app, str(basecfg["out_path"]))
        raise ConfigError(
            f"out_path '{folder}' already holds files: choose another out_path=..., finish that run with "
            f"'{command}', or replace it with if_exists=overwrite"
        )


def _add_module_stages(basecfg: Dict[str, Any], module: Optional[ModuleType]) -> None:
    """A decorated script's own pre/fit/post, unless the config names other ones."""
    if module is None:
        return
    for name in STAGE_NAMES:
        function = getattr(module, name, None)
        if basecfg.get(name) is None and callable(function):
            basecfg[name] = function


def _choose_out_path(basecfg: Dict[str, Any], composition: "Composition", resume: Optional[_Resume]) -> Optional[Path]:
    """Set out_path and if_exists; return the folder claimed for a fresh timestamped run.

    A timestamped out_path (the default, or any written with ``${now:...}``)
    is claimed here as ``if_exists=new`` would claim it (``<path>``, else
    ``<path>_1``, ...), so two runs started in the same second never share a
    folder, and the resume hint names the exact folder.
    """
    from .store import claim_fresh_folder

    if resume is not None:
        basecfg.update(out_path=resume.out_path, if_exists="resume")
        return None
    written = composition.written("out_path")
    if basecfg.get("out_path") in (None, ""):
        written = DEFAULT_OUT_PATH
        basecfg["out_path"] = composition.resolve_text(DEFAULT_OUT_PATH)
    if "${now:" not in str(written) or "if_exists" in basecfg:
        return None
    claimed = claim_fresh_folder(Path(basecfg["out_path"]))
    basecfg.update(out_path=str(claimed), if_exists="error")
    return claimed


def _run_record(app: App, argv: Sequence[str], composition: "Composition", plan: "SweepPlan") -> Dict[str, Any]:
    """What run.yaml keeps beyond the settings: enough to compose the same sweep again."""
    unresolved, resolved = composition.containers(), composition.containers(resolve=True)
    single = len(composition.branches) == 1
    hydra_nodes = composition.hydra_containers()
    return {
        "command": shlex.join([*app.prog_words, *masked_argv(argv, composition.secret_keys)]),
        "config_dir": str(composition.source.root.resolve()),
        **({"config_search_path": [str(d.resolve()) for d in composition.source.extra]}
           if composition.source.extra else {}),
        "config_name": composition.config_name,
        "overrides": [override.masked_text() for override in composition.overrides],
        "started": composition.now.isoformat(timespec="seconds"),
        "choices": composition.choices if single else [b.choices for b in composition.branches],
        "origins": composition.branches[0].origins if single else [b.origins for b in composition.branches],
        **({"settings_only": composition.branches[0].settings_only} if composition.branches[0].settings_only else {}),
        "hydra": hydra_nodes[0] if single else hydra_nodes,
        **({"script": app.prog_words[-1]} if app.stage_module is not None else {}),
        "sweep": {"size": plan.size, "dimensions": plan.dimensions, "n_configs": plan.n_configs, "seed": plan.seed},
        "config": unresolved[0] if single else unresolved,
        "resolved_config": resolved[0] if single else resolved,
    }


# ---------------------------------------------------------------- entry points


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def guarded(argv: Sequence[str], app: App) -> int:
    """run_cli with the package's errors as one line on stderr and their exit code; Ctrl-C exits 130.

    Output whose reader left is no error: a run goes on without printing
    (see console.py) and exits as it would have; a command whose product is
    its output (``--list``, ``--cfg``, ``report``) ends quietly with 141.
    """
    try:
        return _report(argv[1:], app) if argv[:1] == ["report"] else _guarded_run(argv, app)
    except BrokenPipeError:
        drop(sys.stdout)  # what is still buffered for it goes nowhere, instead of failing at exit
        return EXIT_OUTPUT_GONE
    finally:
        flush_standard_streams()


def _guarded_run(argv: Sequence[str], app: App) -> int:
    debug = "--debug" in argv
    try:
        if app.stage_module is None and str(Path.cwd()) not in sys.path:
            sys.path.append(str(Path.cwd()))  # so the config can name stages like 'mypkg.exp:fit'
        with _warnings_as_lines(app.prog):
            return run_cli(argv, app)
    except ExperimentRunnerError as error:
        if debug:
            say(traceback.format_exc().rstrip())
        say(f"{app.prog}: error: {_one_line(error)}")
        return error.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


@contextlib.contextmanager
def _warnings_as_lines(prog: str) -> Iterator[None]:
    """The package's warnings shown once each, as one line on stderr like its errors; other warnings as usual."""
    with warnings.catch_warnings():
        warnings.simplefilter("default", ExperimentRunnerWarning)
        show_other = warnings.showwarning

        def show(message: Any, category: type, *where: Any, **more: Any) -> None:
            if issubclass(category, ExperimentRunnerWarning):
                say(f"{prog}: warning: {_one_line(message)}")
            else:
                show_other(message, category, *where, **more)

        warnings.showwarning = show
        yield


def _report(argv: Sequence[str], app: App) -> int:
    """``experiment-runner report ...``: the report command, imported only when asked for."""
    try:
        from .report_cli import main as report_main
    except ModuleNotFoundError as error:
        if error.name != "experiment_runner.report_cli":
            raise
        say(f"{app.prog}: error: the report command is not available in this installation")
        return 2
    try:
        code = int(report_main(list(argv)) or 0)
    except ExperimentRunnerError as error:
        say(f"{app.prog} report: error: {_one_line(error)}")
        return error.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return _printed(code)


def console_main(argv: Optional[Sequence[str]] = None, prog_words: Optional[List[str]] = None) -> NoReturn:
    """The ``experiment-runner`` console script."""
    app = App(prog_words or [PROG])
    sys.exit(guarded(list(sys.argv[1:] if argv is None else argv), app))


F = TypeVar("F", bound=Callable[..., Any])


def _shown_path(path: Path, start: Optional[Path] = None) -> str:
    """``path`` relative to ``start`` (default: the working directory) if it is below it, else absolute."""
    relative = os.path.relpath(path, start)
    return path.as_posix() if relative.startswith("..") else relative


def _script_name(module: ModuleType, script: str) -> str:
    """A decorated script's name, as Hydra names its job: the file's name without ``.py``."""
    return Path(getattr(module, "__file__", None) or script).stem


def main(config_path: str = "conf", config_name: str = "config") -> Callable[[F], Callable[..., Any]]:
    """Make a script's function its command line, Hydra style.

    ::

        def fit(cfg, _): ...

        @experiment_runner.main(config_path="conf", config_name="config")
        def main(summary):            # called with the RunSummary when the run has finished
            print(summary.results_file)

        if __name__ == "__main__":
            main()                    # python my_exp.py backend=multiprocessing repetitions=5

    ``config_path`` is relative to the script's folder. The stages are the
    script's ``pre``, ``fit`` and ``post`` unless the config names others.
    Calling ``main()`` reads ``sys.argv`` (or ``main(argv)``) and exits the
    process with a non-zero code on an error, a failed experiment or Ctrl-C.
    """

    def decorate(function: F) -> Callable[..., Any]:
        @functools.wraps(function)
        def run(argv: Optional[Sequence[str]] = None) -> None:
            module = sys.modules[function.__module__]
            here = Path(getattr(module, "__file__", None) or ".").resolve().parent
            script = sys.argv[0] if sys.argv and sys.argv[0] else getattr(module, "__file__", "script.py")
            config_dir = _shown_path(here / config_path)
            app = App(["python", script], config_dir, config_name, module, function, _script_name(module, script),
                      here)
            code = guarded(list(sys.argv[1:] if argv is None else argv), app)
            if code:
                sys.exit(code)

        return run

    return decorate
