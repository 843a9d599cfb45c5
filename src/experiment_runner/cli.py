"""The ``experiment-runner`` command, ``python -m experiment_runner`` and the ``@main`` decorator.

All three compose a sweep with :func:`experiment_runner.config.compose` and
then print it (``--cfg``, ``--list``, ``--help``) or run it. Start-up stays
light: the runner, the backends and pandas are imported only to run. The
flags are read in :mod:`.cli_args`, the run to resume in :mod:`.cli_resume`
(the store reads its run.yaml), and the command line's part of the plan step
(its basecfg, out_path and the wording of its errors) in :mod:`.cli_checks`.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import (TYPE_CHECKING, Any, Callable, Dict, Iterator, List, NoReturn, Optional, Sequence, Tuple,
                    TypeVar, Union)

from .cli_args import App, check_version_base, flags_help, parse_args, shown_path
from .cli_interrupt import InterruptedBeforeTheRun, planning
from .cli_run import plan_run, say_repeated
from .console import drop, flush_standard_streams, say
from .errors import ExperimentRunnerError, ExperimentRunnerWarning
from .errors import UsageError
from .serialization import dumps, mask_secrets, to_jsonable

if TYPE_CHECKING:
    from .cli_resume import Resume
    from .config import Composition
    from .expand import SweepPlan
    from .plan import RunPlan

__all__ = ["console_main", "main", "App", "run_cli", "guarded"]

PROG = "experiment-runner"
EXIT_INTERRUPTED = 130
#: 128 + SIGPIPE: how a shell reports a command whose output's reader left (``| head -1``) before it finished.
EXIT_OUTPUT_GONE = 141


def run_cli(argv: Sequence[str], app: App) -> int:
    """Parse ``argv``, then print or run the sweep; returns the exit code, raises the package's errors."""
    check_version_base(app.version_base)
    args = parse_args(argv, app)
    if args.version:
        from . import __version__

        print(f"{app.prog} {__version__}")
        return _printed()
    with planning():  # until the run starts, a Ctrl-C ends the command in one line (see cli_interrupt.py)
        printed_or_run = _print_or_plan(app, argv, args)
    return printed_or_run if isinstance(printed_or_run, int) else printed_or_run()


def _print_or_plan(app: App, argv: Sequence[str], args: argparse.Namespace) -> Union[int, Callable[[], int]]:
    """What ``--help``, ``--cfg`` or ``--list`` print (returning the exit code), or else the run, planned."""
    resume = _read_resume(args.resume, app) if args.resume else None
    if args.help:
        print(_help_text(app, args, resume))
        return _printed()
    composition = _compose(app, args, resume)
    if args.cfg:
        print(composition.to_yaml(resolve=args.resolve, part=args.cfg_part, package=args.package), end="")
        return _printed()
    from .cli_checks import plan_cli_run, run_basecfg
    from .expand import plan_sweep

    sweep = plan_sweep(composition, sampling_seed=resume.seed if resume is not None else None)
    if args.list:
        plan = plan_cli_run(app, composition, sweep, run_basecfg(app, sweep), resume)
        _print_experiments(sweep, plan, composition)
        return _printed()
    return plan_run(app, argv, composition, sweep, resume)


def _read_resume(out_path: str, app: App) -> "Resume":
    """The run to resume, as its out_path recorded it (read with the run's record files, only to resume)."""
    from .cli_resume import read_resume

    return read_resume(out_path, app)


def _printed(code: int = 0) -> int:
    """``code``, once what went to stdout is out: a reader that left shows here (exit code 141), not at exit."""
    if sys.stdout is not None:
        sys.stdout.flush()
    return code


# ---------------------------------------------------------------- composing


def _compose(app: App, args: argparse.Namespace, resume: Optional[Resume]) -> "Composition":
    """The sweep: composed from the config files, or, to resume, rebuilt from what run.yaml recorded."""
    from .config import compose, recompose

    overrides = list(args.overrides)
    if resume is None:
        return compose(_config_dirs(app, args), _config_name(app, args), overrides, job_name=app.job_name,
                       multirun=args.multirun and not args.run)
    from .cli_resume import check_secrets_typed_again

    check_secrets_typed_again(app, resume, overrides)
    return recompose(
        resume.config_dirs, resume.config_name, resume.branches, resume.overrides, overrides, now=resume.started
    )


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
        primary = shown_path(app.script_dir / args.config_path) if app.script_dir else str(args.config_path)
        _check_is_dir("--config-path", args.config_path, Path(primary))
    if not args.config_dir:
        return [primary]
    if app.script_dir is None:
        _check_is_dir("--config-dir", args.config_dir, Path(args.config_dir))
        return [str(args.config_dir)]
    extra = Path(args.config_dir).resolve()
    if not is_dir(extra):
        raise UsageError(f"--config-dir {args.config_dir}: the additional config directory {extra} does not exist")
    return [primary, str(extra)]


def _check_is_dir(flag: str, given: str, folder: Path) -> None:
    from .config import is_dir

    if not is_dir(folder):
        raise UsageError(f"{flag} {given}: there is no directory {folder}; give the folder that holds the configs")


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


def _help_text(app: App, args: argparse.Namespace, resume: Optional[Resume]) -> str:
    from .config import ConfigSource, is_dir

    source = ConfigSource.at(resume.config_dirs if resume else _config_dirs(app, args))
    groups = source.groups() if is_dir(source.root) else {}
    lines = [flags_help(app), f"== Config groups ({source.root}) =="]
    lines += [f"  {group}: {', '.join(options)}" for group, options in groups.items()] or ["  (none)"]
    name = resume.config_name if resume else _config_name(app, args)
    primary = source.file(name) if name is not None else "no primary config"
    lines.append(f"\n== Config ({primary}, with the overrides given) ==")
    try:
        composition = _compose(app, args, resume)
        lines.append(composition.to_yaml().rstrip())
    except ExperimentRunnerError as error:
        lines.append(f"  (cannot compose it: {_one_line(error)})")
        return "\n".join(lines)
    return "\n".join(lines + _backend_settings_help(composition) + _search_settings_help(composition))


def _backend_settings_help(composition: "Composition") -> List[str]:
    """The settings of the composed config's backend with their defaults and docs (none for an unknown name)."""
    from .launchers import available_launchers, options_class
    from .launchers.options import node_yaml

    node = composition.containers()[0].get("backend", "single")
    name = node.get("name") if isinstance(node, dict) else node
    if not isinstance(name, str) or name not in available_launchers():
        return []
    text = node_yaml(name, options_class(name))
    return [f"\n== Settings of backend={name} (set one with backend.KEY=VALUE) ==",
            *(f"  {line}" for line in text.splitlines())]


def _search_settings_help(composition: "Composition") -> List[str]:
    """An adaptive search's settings with their defaults and docs, once the config selects one (search=optuna)."""
    node = composition.containers()[0].get("search")
    name = node.get("name") if isinstance(node, dict) else node
    if name != "optuna":
        return []
    from .search.settings import search_node_yaml

    return [f"\n== Settings of search={name} (set one with search.KEY=VALUE) ==",
            *(f"  {line}" for line in search_node_yaml(name).splitlines())]


def _print_experiments(sweep: "SweepPlan", plan: "RunPlan", composition: "Composition") -> None:
    """``--list``: the experiments a run of the same command line runs, as the plan step made them;
    for an adaptive search, its space and its budget."""
    if plan.search is not None:
        print("\n".join(f"{name}: {values}" for name, values in plan.search.space.described().items()))
        print(plan.search.settings.budget_line())
        return
    for experiment in plan.experiments:
        print(experiment.experiment_id, dumps(mask_secrets(to_jsonable(experiment.config), composition.secret_keys)))
    print(_sweep_line(sweep))
    say_repeated(sweep)
    if sweep.n_configs is not None and sweep.settings.get("seed") is None:
        say(f"note: no seed given, so a run samples anew; add seed={sweep.seed} to run these experiments")


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
        if argv[:1] and argv[0] in _COMMANDS:
            return _command(argv[0], argv[1:], app)
        return _guarded_run(argv, app)
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
            import traceback

            say(traceback.format_exc().rstrip())
        say(f"{app.prog}: error: {_one_line(error)}")
        return error.exit_code
    except InterruptedBeforeTheRun as interrupted:
        say(interrupted.message)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:  # the run said what it stopped and how to finish it
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


#: The commands beside running a sweep, and the module whose ``main(argv)`` runs each: imported only when asked for.
_COMMANDS = {"report": "report_cli", "serve": "serve.cli"}


def _command(name: str, argv: Sequence[str], app: App) -> int:
    """``experiment-runner report ...`` or ``experiment-runner serve ...``."""
    import importlib

    module_name = f"{__package__}.{_COMMANDS[name]}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        say(f"{app.prog}: error: the {name} command is not available in this installation")
        return 2
    try:
        code = int(module.main(list(argv)) or 0)
    except ExperimentRunnerError as error:
        say(f"{app.prog} {name}: error: {_one_line(error)}")
        return error.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return _printed(code)


def console_main(argv: Optional[Sequence[str]] = None, prog_words: Optional[List[str]] = None) -> NoReturn:
    """The ``experiment-runner`` console script."""
    app = App(prog_words or [PROG])
    sys.exit(guarded(list(sys.argv[1:] if argv is None else argv), app))


F = TypeVar("F", bound=Callable[..., Any])


def _script_name(module: ModuleType, script: str) -> str:
    """A decorated script's name, as Hydra names its job: the file's name without ``.py``."""
    return Path(getattr(module, "__file__", None) or script).stem


def main(config_path: str = "conf", config_name: str = "config",
         version_base: Optional[str] = None) -> Callable[[F], Callable[..., Any]]:
    """Make a script's function its command line, Hydra style.

    ::

        def fit(cfg, _): ...

        @experiment_runner.main(config_path="conf", config_name="config")
        def main(summary):            # called with the RunSummary when the run has finished
            print(summary.results_file)

        if __name__ == "__main__":
            main()                    # python my_exp.py backend=multiprocessing repetitions=5

    ``config_path`` is relative to the script's folder; ``version_base`` is
    taken as ``@hydra.main`` takes it (None, "1.2" or later: the defaults this
    package composes with; an older one is refused). The stages are the
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
            config_dir = shown_path(here / config_path)
            app = App(["python", script], config_dir, config_name, module, function, _script_name(module, script),
                      here, version_base)
            code = guarded(list(sys.argv[1:] if argv is None else argv), app)
            if code:
                sys.exit(code)

        return run

    return decorate
