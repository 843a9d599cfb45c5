"""What a run from the command line settles before anything starts (``--list`` plans the same).

The plan step (plan.py) checks the settings, the backend and the
experiments; here the basecfg is made from the composed sweep, the backend
node is checked, errors are worded for the command line, and out_path is
chosen (the default one; a timestamped one run with if_exists=new, so that the
run claims a fresh folder; a resumed run's own).
"""
from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any, Dict, Optional, Type

from .cli_args import App
from .cli_resume import Resume, from_where_the_run_started, resume_command
from .errors import OutPathHoldsFilesError, ReservedKeyError, StageImportError

if TYPE_CHECKING:
    from .config import Composition
    from .expand import SweepPlan
    from .launchers.base import Launcher
    from .plan import RunPlan
    from .settings import RunSettings

DEFAULT_OUT_PATH = "results/${now:%Y-%m-%d_%H-%M-%S}"
STAGE_NAMES = ("pre", "fit", "post")


def run_basecfg(app: App, sweep: "SweepPlan") -> Dict[str, Any]:
    """The run's basecfg as the sweep composed it, with a decorated script's own stages."""
    basecfg = dict(sweep.basecfg)
    _add_module_stages(basecfg, app.stage_module)
    return basecfg


def plan_cli_run(
    app: App,
    composition: "Composition",
    sweep: "SweepPlan",
    basecfg: Dict[str, Any],
    resume: Optional[Resume] = None,
    run_record: Optional[Dict[str, Any]] = None,
) -> "RunPlan":
    """The plan step for a run and for ``--list``, its errors worded for the command line.

    Beyond what the plan checks, the backend node holds only the keys of the
    backend that runs; a stage that a resumed run cannot import here and a
    reserved key are named as the command line and the config files gave them.
    """
    from .plan import plan_run

    def check_backend_node(settings: "RunSettings", launcher_class: Type["Launcher"]) -> None:
        backend_node = sweep.settings.get("backend")
        if isinstance(backend_node, dict):
            _check_backend_node(backend_node, settings.backend, launcher_class, composition)

    try:
        return plan_run(basecfg, sweep.experiments, run_record=run_record, check_first=check_backend_node)
    except StageImportError as error:
        raise from_where_the_run_started(error, app, resume) from error
    except ReservedKeyError as error:
        where = composition.branches[0].origins.get(error.keys[0], "the config")
        raise ReservedKeyError(
            f"{where} sets {error.keys[0]}, which the runner sets for each experiment: rename that parameter",
            error.keys,
        ) from error


def _check_backend_node(
    node: Dict[str, Any], backend: str, launcher_class: Type["Launcher"], composition: "Composition"
) -> None:
    """Each key of the backend node is a setting of the backend that runs: not a typo, not another backend's."""
    from .config import other_backends_setting
    from .launchers import known_settings, owning_backends
    from .settings import unknown_key_error

    known = known_settings(launcher_class)
    origins = composition.branches[0].origins
    for key in (key for key in node if key != "name"):
        where = origins.get(f"backend.{key}") or origins.get("backend") or "the config"
        owners = owning_backends(key, launcher_class.option_names)
        if key not in known and not owners:
            raise unknown_key_error(key, known, f"the backend node (backend.{key}, from {where})")
        if owners:
            text = _setting_override_text(composition, f"backend.{key}")
            where = f"override {text!r}" if text else where
            raise other_backends_setting(where, key, owners, backend, text and text.lstrip("+"))


def _setting_override_text(composition: "Composition", key: str) -> Optional[str]:
    """The last override that set ``key`` or a key inside it, as it may be shown; None if a config file set it."""
    from .config.overrides import DELETE

    setting = [o for o in composition.overrides if o.kind != DELETE and (o.key + ".").startswith(key + ".")]
    return setting[-1].masked_text() if setting else None


def out_path_holds_files(app: App, error: OutPathHoldsFilesError) -> OutPathHoldsFilesError:
    """The store's refusal of a fixed out_path that holds a run, worded for the command line."""
    command = resume_command(app, error.out_path)
    return OutPathHoldsFilesError(
        f"out_path '{error.out_path}' already holds files: choose another out_path=..., finish that run with "
        f"'{command}', or replace it with if_exists=overwrite",
        out_path=error.out_path,
    )


def _add_module_stages(basecfg: Dict[str, Any], module: Optional[ModuleType]) -> None:
    """A decorated script's own pre/fit/post, unless the config names other ones."""
    if module is None:
        return
    for name in STAGE_NAMES:
        function = getattr(module, name, None)
        if basecfg.get(name) is None and callable(function):
            basecfg[name] = function


def choose_out_path(basecfg: Dict[str, Any], composition: "Composition", resume: Optional[Resume]) -> None:
    """Set out_path and if_exists as the command line chooses them.

    A resumed run's own out_path; else the one given, or the default
    ``results/${now:...}`` with the composition's time. A timestamped out_path
    (the default, or any written with ``${now:...}``) is run with
    ``if_exists=new``, unless if_exists is given: the run then claims
    ``<path>``, else ``<path>_1``, ..., so two runs started in the same second
    never share a folder.
    """
    if resume is not None:
        basecfg.update(out_path=resume.out_path, if_exists="resume")
        return
    written = composition.written("out_path")
    if basecfg.get("out_path") in (None, ""):
        written = DEFAULT_OUT_PATH
        basecfg["out_path"] = composition.resolve_text(DEFAULT_OUT_PATH)
    if "${now:" in str(written) and "if_exists" not in basecfg:
        basecfg["if_exists"] = "new"
