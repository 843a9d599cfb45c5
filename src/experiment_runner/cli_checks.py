"""What a run from the command line checks and settles before anything starts (``--list`` checks the same).

The stages import, the settings and the backend node hold only what the
backend knows, no experiment sets a reserved key, and out_path is chosen
(a timestamped one claimed, a fixed one that holds a run refused).
"""
from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Type

from .cli_args import App
from .cli_resume import Resume, from_where_the_run_started, resume_command
from .errors import ConfigError, StageImportError

if TYPE_CHECKING:
    from .config import Composition
    from .expand import SweepPlan
    from .launchers.base import Launcher

DEFAULT_OUT_PATH = "results/${now:%Y-%m-%d_%H-%M-%S}"
STAGE_NAMES = ("pre", "fit", "post")


def check_run(
    app: App, composition: "Composition", plan: "SweepPlan", resume: Optional[Resume] = None
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
        raise from_where_the_run_started(error, app, resume) from error
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
    from .launchers import known_settings, owning_backends
    from .settings import unknown_key_error

    known = known_settings(launcher_class)
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


def check_out_path(app: App, basecfg: Dict[str, Any], composition: "Composition", resume: Optional[Resume]) -> None:
    """A fixed out_path that holds a run is an error worded for the command line (before any banner)."""
    if resume is not None or basecfg.get("out_path") in (None, "") or "${now:" in str(composition.written("out_path")):
        return
    if basecfg.get("if_exists", "error") != "error":
        return
    from .config import is_dir

    folder = Path(str(basecfg["out_path"]))
    if is_dir(folder) and any(folder.iterdir()):
        command = resume_command(app, str(basecfg["out_path"]))
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


def choose_out_path(basecfg: Dict[str, Any], composition: "Composition", resume: Optional[Resume]) -> Optional[Path]:
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
