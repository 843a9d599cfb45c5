"""The command's run: planned from the composed sweep (while a Ctrl-C is still one line, see cli_interrupt.py),
then executed, with the banner, the resume hint and run.yaml's record of how to compose the sweep again."""
from __future__ import annotations

import shlex
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Sequence

from .cli_args import App
from .console import say
from .errors import OutPathHoldsFilesError, ResumeMismatchError
from .serialization import masked_argv

if TYPE_CHECKING:
    from .cli_resume import Resume
    from .config import Composition
    from .expand import SweepPlan
    from .progress import RunSummary


def plan_run(app: App, argv: Sequence[str], composition: "Composition", sweep: "SweepPlan",
             resume: Optional["Resume"]) -> Callable[[], int]:
    """The command's run, planned and checked: a function that runs it and returns the exit code (1 if an
    experiment failed). What the run needs is imported here too, so that only the run itself comes after."""
    from .cli_checks import choose_out_path, out_path_holds_files, plan_cli_run, run_basecfg
    from .cli_resume import other_start_folder, resume_command, secret_sweep_advice
    from .runner import execute

    started = time.perf_counter()  # the summary's wall time counts planning too, as run_experiments's does
    basecfg = run_basecfg(app, sweep)
    choose_out_path(basecfg, composition, resume)
    record = _run_record(app, argv, composition, sweep, resume)
    plan = plan_cli_run(app, composition, sweep, basecfg, resume, run_record=record)

    def hint(out_path: str) -> str:
        return f"to finish it, run: {resume_command(app, out_path, other_start_folder(resume))}"

    def banner(summary: "RunSummary") -> None:
        noun = "experiment" if summary.total == 1 else "experiments"
        if summary.skipped == summary.total:
            say(f"{app.prog}: nothing left to run: {summary.total} of {summary.total} {noun} finished; "
                f"results: {summary.results_file}")
            raise _NothingLeftToRun(summary)
        if plan.settings.verbose:
            at_once = f" ({summary.at_once} at once)" if summary.at_once else ""
            say(f"{app.prog}: {summary.total} {noun}, backend {plan.settings.backend}{at_once}, "
                f"out_path {summary.out_path}")
        say_repeated(sweep)

    def run() -> int:
        try:
            summary = execute(plan, resume_hint=hint, on_start=banner, started=started)
        except _NothingLeftToRun as finished:
            summary = finished.summary
        except OutPathHoldsFilesError as error:
            raise out_path_holds_files(app, error) from error
        except ResumeMismatchError as error:
            advice = secret_sweep_advice(resume)
            if not advice:
                raise
            raise ResumeMismatchError(f"{error}{advice}") from error
        if app.on_finish is not None:
            app.on_finish(summary)
        return 1 if summary.failed else 0

    return run


class _NothingLeftToRun(Exception):
    """A resumed run whose experiments all finished before: it ends before the backend starts."""

    def __init__(self, summary: "RunSummary"):
        super().__init__("nothing left to run")
        self.summary = summary


def _run_record(
    app: App, argv: Sequence[str], composition: "Composition", sweep: "SweepPlan", resume: Optional["Resume"] = None
) -> Dict[str, Any]:
    """What run.yaml keeps beyond the settings: enough to compose the same sweep again (the store reads it back).

    A resumed run keeps the command that started it, and lists those that resumed it under ``resumed``.
    """
    command = shlex.join([*app.prog_words, *masked_argv(argv, composition.secret_keys)])
    commands: Dict[str, Any] = {"command": command}
    if resume is not None and resume.command:
        commands = {"command": resume.command, "resumed": [*resume.resumed, command]}
    unresolved, resolved = composition.containers(), composition.containers(resolve=True)
    single = len(composition.branches) == 1
    hydra_nodes = composition.hydra_containers()
    return {
        **commands,
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
        "sweep": {"size": sweep.size, "dimensions": sweep.dimensions, "n_configs": sweep.n_configs,
                  "seed": sweep.seed},
        "config": unresolved[0] if single else unresolved,
        "resolved_config": resolved[0] if single else resolved,
    }


def say_repeated(plan: "SweepPlan") -> None:
    if plan.repeated:
        say(f"note: {', '.join(plan.repeated)} lists a value twice: equal configurations run once "
            "(Hydra would launch each; repetitions=N repeats an experiment)")
