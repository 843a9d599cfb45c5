"""The ``experiment-runner`` command, ``python -m experiment_runner`` and the ``@main`` decorator.

All three compose a sweep with :func:`experiment_runner.config.compose` and
then print it (``--cfg``, ``--list``, ``--help``) or run it. Start-up stays
light: the runner, the backends and pandas are imported only to run.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import shlex
import sys
import traceback
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Dict, List, NoReturn, Optional, Sequence, TypeVar

from .errors import ConfigError, ExperimentRunnerError, UsageError
from .serialization import dumps, mask_secrets, masked_argv, to_jsonable

if TYPE_CHECKING:
    from .config import Composition
    from .expand import SweepPlan
    from .progress import RunSummary

__all__ = ["console_main", "main", "App", "run_cli", "guarded"]

PROG = "experiment-runner"
EXIT_INTERRUPTED = 130
DEFAULT_OUT_PATH = "results/${now:%Y-%m-%d_%H-%M-%S}"
STAGE_NAMES = ("pre", "fit", "post")

_OVERRIDES_HELP = """\
overrides (Hydra's grammar):
  key=value          change a key (a.b.c=1 for nested keys); values are typed: 1, 0.1, true, null, [1,2], {a: 1}, 'text'
  group=option       choose an option of a config group (model=forest selects <config-dir>/model/forest.yaml)
  +key=value         add a key that is not in the config (+group=option adds a group)
  ++key=value        add or change a key
  ~key               delete a key (~group removes the group from the defaults list)
  key=a,b,c          a sweep: one experiment per value; also key=range(0,10) and key=choice(a,b)
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

    @property
    def prog(self) -> str:
        return shlex.join(self.prog_words)


class _Parser(argparse.ArgumentParser):
    """argparse that raises a UsageError (one line, exit code 2) instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


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
    parser.add_argument("-c", "--cfg", action="store_true", help="print the composed config (secrets as ***) and exit")
    parser.add_argument("--resolve", action="store_true", help="with --cfg: resolve ${...} interpolations")
    parser.add_argument("-l", "--list", action="store_true", help="print the experiments of the sweep and their count")
    parser.add_argument("-cd", "--config-dir", help=f"the config directory (default: {app.config_dir})")
    parser.add_argument("-cn", "--config-name", help=f"the primary config in it (default: {app.config_name})")
    parser.add_argument(
        "--resume", metavar="OUT_PATH", help="finish an interrupted run: its sweep is recomposed from OUT_PATH/run.yaml"
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return parser


def run_cli(argv: Sequence[str], app: App) -> int:
    """Parse ``argv``, then print or run the sweep; returns the exit code, raises the package's errors."""
    args = _parser(app).parse_intermixed_args(list(argv))
    if args.version:
        from . import __version__

        print(f"{app.prog} {__version__}")
        return 0
    resume = _read_resume(args.resume, app) if args.resume else None
    if args.help:
        print(_help_text(app, args, resume))
        return 0
    composition = _compose(app, args, resume)
    if args.cfg:
        print(composition.to_yaml(resolve=args.resolve), end="")
        return 0
    plan = composition.plan()
    if args.list:
        _check_run(app, composition, plan)
        _print_experiments(plan)
        return 0
    return _run(app, argv, composition, plan, resume)


# ---------------------------------------------------------------- composing


@dataclasses.dataclass
class _Resume:
    """What a run's run.yaml recorded to recompose its sweep."""

    out_path: str
    config_dir: str
    config_name: str
    overrides: List[str]
    started: Optional[datetime]
    #: Per branch of the sweep: the composed config as recorded (``config``), ``choices`` and ``origins``.
    branches: List[Dict[str, Any]]
    seed: Optional[int]


def _read_resume(out_path: str, app: App) -> _Resume:
    import yaml

    run_yaml = Path(out_path) / "run.yaml"
    if not run_yaml.is_file():
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
    sweep = record.get("sweep") or {}
    started = record.get("started")
    return _Resume(
        out_path=out_path,
        config_dir=str(record["config_dir"]),
        config_name=str(record.get("config_name", "config")),
        overrides=[str(o) for o in record["overrides"]],
        started=datetime.fromisoformat(started) if isinstance(started, str) else None,
        branches=[{"config": c, "choices": ch, "origins": o} for c, ch, o in zip(configs, choices, origins)],
        seed=sweep.get("seed") if sweep.get("n_configs") is not None else None,
    )


def _compose(app: App, args: argparse.Namespace, resume: Optional[_Resume]) -> "Composition":
    """The sweep: composed from the config files, or, to resume, rebuilt from what run.yaml recorded."""
    from .config import compose, recompose

    overrides = list(args.overrides)
    if resume is None:
        return compose(_config_dir(app, args), args.config_name or app.config_name, overrides)
    if resume.seed is not None and not any(o.lstrip("+").startswith("seed=") for o in overrides):
        overrides.insert(0, f"++seed={resume.seed}")
    return recompose(
        resume.config_dir, resume.config_name, resume.branches, resume.overrides, overrides, now=resume.started
    )


def _config_dir(app: App, args: argparse.Namespace) -> str:
    return args.config_dir or app.config_dir


def _help_text(app: App, args: argparse.Namespace, resume: Optional[_Resume]) -> str:
    from .config import ConfigSource

    source = ConfigSource(Path(resume.config_dir if resume else _config_dir(app, args)))
    groups = source.groups() if source.root.is_dir() else {}
    lines = [_parser(app).format_help(), f"== Config groups ({source.root}) =="]
    lines += [f"  {group}: {', '.join(options)}" for group, options in groups.items()] or ["  (none)"]
    name = resume.config_name if resume else args.config_name or app.config_name
    lines.append(f"\n== Config ({source.file(name)}, with the overrides given) ==")
    try:
        lines.append(_compose(app, args, resume).to_yaml().rstrip())
    except ExperimentRunnerError as error:
        lines.append(f"  (cannot compose it: {_one_line(error)})")
    return "\n".join(lines)


def _print_experiments(plan: "SweepPlan") -> None:
    for experiment_id, config in enumerate(plan.experiments):
        print(experiment_id, dumps(mask_secrets(to_jsonable(config))))
    how = f"{plan.n_configs} sampled (seed {plan.seed})" if plan.n_configs is not None else "the whole grid"
    dims = f" over {', '.join(plan.dimensions)}" if plan.dimensions else ""
    print(f"{len(plan.experiments)} experiments: {how} of {plan.size} configurations{dims}")
    if plan.n_configs is not None and plan.settings.get("seed") is None:
        print(f"note: no seed given, so a run samples anew; add seed={plan.seed} to run these experiments",
              file=sys.stderr)


# ---------------------------------------------------------------- running


def _run(
    app: App, argv: Sequence[str], composition: "Composition", plan: "SweepPlan", resume: Optional[_Resume]
) -> int:
    from .runner import run_experiments

    basecfg = _check_run(app, composition, plan)
    _check_out_path(app, basecfg, composition, resume)
    claimed = _choose_out_path(basecfg, composition, resume)
    hint = f"to finish it, run: {shlex.join([*app.prog_words, '--resume', basecfg['out_path']])}"

    def banner(summary: "RunSummary") -> None:
        if basecfg.get("verbose", True):
            noun = "experiment" if summary.total == 1 else "experiments"
            print(f"{app.prog}: {summary.total} {noun}, backend {basecfg.get('backend', 'single')}, "
                  f"out_path {summary.out_path}", file=sys.stderr)

    try:
        summary = run_experiments(
            basecfg, plan.experiments, run_record=_run_record(app, argv, composition, plan), resume_hint=hint,
            on_start=banner,
        )
    except (ExperimentRunnerError, KeyboardInterrupt):  # stopped before anything was written: no empty run folder
        if claimed is not None and claimed.is_dir() and not any(claimed.iterdir()):
            claimed.rmdir()
        raise
    if app.on_finish is not None:
        app.on_finish(summary)
    return 1 if summary.failed else 0


def _check_run(app: App, composition: "Composition", plan: "SweepPlan") -> Dict[str, Any]:
    """What a run checks before anything runs, for a run and for ``--list``; returns the run's basecfg.

    Stages importable, settings valid, the backend known, the backend node
    holding only that backend's keys, no stray setting, no reserved key in
    an experiment.
    """
    from .launchers import BUILTIN_OPTION_NAMES, get_launcher_class
    from .runner import check_options
    from .settings import CORE_KEYS, RunSettings, unknown_key_error

    basecfg = dict(plan.basecfg)
    _add_module_stages(basecfg, app.stage_module)
    settings = RunSettings.from_basecfg(basecfg)
    launcher_class = get_launcher_class(settings.backend)
    known = CORE_KEYS | BUILTIN_OPTION_NAMES | launcher_class.option_names | {"name"}
    backend_node = plan.settings.get("backend")
    if isinstance(backend_node, dict):
        origins = composition.branches[0].origins
        for key in backend_node:
            if key not in known:
                where = origins.get(f"backend.{key}") or origins.get("backend") or "the config"
                raise unknown_key_error(key, known - {"name"}, f"the backend node (backend.{key}, from {where})")
    check_options(settings, launcher_class)
    _check_reserved_keys(plan.experiments, composition)
    return basecfg


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
    folder = Path(str(basecfg["out_path"]))
    if folder.is_dir() and any(folder.iterdir()):
        command = shlex.join([*app.prog_words, "--resume", str(basecfg["out_path"])])
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
    return {
        "command": shlex.join([*app.prog_words, *masked_argv(argv)]),
        "config_dir": str(composition.source.root.resolve()),
        "config_name": composition.config_name,
        "overrides": [override.masked_text() for override in composition.overrides],
        "started": composition.now.isoformat(timespec="seconds"),
        "choices": composition.choices if single else [b.choices for b in composition.branches],
        "origins": composition.branches[0].origins if single else [b.origins for b in composition.branches],
        **({"script": app.prog_words[-1]} if app.stage_module is not None else {}),
        "sweep": {"size": plan.size, "dimensions": plan.dimensions, "n_configs": plan.n_configs, "seed": plan.seed},
        "config": unresolved[0] if single else unresolved,
        "resolved_config": resolved[0] if single else resolved,
    }


# ---------------------------------------------------------------- entry points


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def guarded(argv: Sequence[str], app: App) -> int:
    """run_cli with the package's errors as one line on stderr and their exit code; Ctrl-C exits 130."""
    if argv[:1] == ["report"]:
        return _report(argv[1:], app)
    debug = "--debug" in argv
    try:
        if app.stage_module is None and str(Path.cwd()) not in sys.path:
            sys.path.append(str(Path.cwd()))  # so the config can name stages like 'mypkg.exp:fit'
        return run_cli(argv, app)
    except ExperimentRunnerError as error:
        if debug:
            traceback.print_exc()
        print(f"{app.prog}: error: {_one_line(error)}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _report(argv: Sequence[str], app: App) -> int:
    """``experiment-runner report ...``: the report command, imported only when asked for."""
    try:
        from .report_cli import main as report_main
    except ModuleNotFoundError as error:
        if error.name != "experiment_runner.report_cli":
            raise
        print(f"{app.prog}: error: the report command is not available in this installation", file=sys.stderr)
        return 2
    try:
        return int(report_main(list(argv)) or 0)
    except ExperimentRunnerError as error:
        print(f"{app.prog} report: error: {_one_line(error)}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def console_main(argv: Optional[Sequence[str]] = None, prog_words: Optional[List[str]] = None) -> NoReturn:
    """The ``experiment-runner`` console script."""
    app = App(prog_words or [PROG])
    sys.exit(guarded(list(sys.argv[1:] if argv is None else argv), app))


F = TypeVar("F", bound=Callable[..., Any])


def _shown_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (shorter in messages), else absolute."""
    relative = os.path.relpath(path)
    return path.as_posix() if relative.startswith("..") else relative


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
            app = App(["python", script], config_dir, config_name, module, function)
            code = guarded(list(sys.argv[1:] if argv is None else argv), app)
            if code:
                sys.exit(code)

        return run

    return decorate
