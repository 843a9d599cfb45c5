"""``--resume``: what a run's run.yaml recorded to compose its sweep again, and how to tell the user to resume."""
from __future__ import annotations

import dataclasses
import json
import os
import shlex
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .cli_args import App, shown_path
from .errors import StageImportError, UsageError
from .serialization import MASK


@dataclasses.dataclass
class Resume:
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
    #: The command line that started the run, and those that resumed it before (run.yaml keeps them all).
    command: Optional[str] = None
    resumed: List[str] = dataclasses.field(default_factory=list)

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


def read_resume(out_path: str, app: App) -> Resume:
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
    return Resume(
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
        command=str(record["command"]) if record.get("command") else None,
        resumed=[str(command) for command in record.get("resumed") or []],
    )


def _recorded_cwd(environment_json: Path) -> Optional[Path]:
    """The working directory that a run's environment.json recorded, or None if it holds none."""
    try:
        environment = json.loads(environment_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    cwd = environment.get("cwd") if isinstance(environment, dict) else None
    return Path(cwd) if isinstance(cwd, str) and cwd else None


def other_start_folder(resume: Optional[Resume]) -> Optional[Path]:
    """The folder a resumed run started in, when that is not the working directory (and still exists)."""
    folder = resume.started_in if resume is not None else None
    if folder is None:
        return None
    try:
        return None if os.path.samefile(folder, os.getcwd()) else folder
    except OSError:  # that folder is gone (moved, deleted): there is no going back to it
        return None


def resume_command(app: App, out_path: str, start_folder: Optional[Path] = None) -> str:
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
    folder = shown_path(Path(os.path.abspath(out_path)), start=start_folder)
    command = shlex.join([*words, "--resume", folder])
    return command if start_folder is None else f"cd {shlex.quote(str(start_folder))} && {command}"


def from_where_the_run_started(error: StageImportError, app: App, resume: Optional[Resume]) -> StageImportError:
    """A stage that a resumed run cannot import here, because the run started (and imports) in another folder."""
    start_folder = other_start_folder(resume)
    if resume is None or start_folder is None:
        return error
    return StageImportError(
        f"{error}; the run started in '{start_folder}', where its stages import: resume it from there: "
        f"{resume_command(app, resume.out_path, start_folder)}"
    )


def check_secrets_typed_again(app: App, resume: Resume, overrides: Sequence[str]) -> None:
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


def secret_sweep_advice(resume: Optional[Resume]) -> str:
    """What a resume that does not match must know when the recorded run swept a secret typed on the command line."""
    swept = [key for _, key, sweep in (resume.typed_secrets() if resume else []) if sweep]
    if not swept:
        return ""
    return (f"; the recorded run swept the secret {', '.join(swept)} on the command line: type that sweep again "
            "after --resume, with the same values")


def _recorded_config_name(record: Mapping[str, Any]) -> Optional[str]:
    """run.yaml's primary config: ``null`` for a run composed without one (an older run.yaml may lack the key)."""
    if "config_name" not in record:
        return "config"
    name = record["config_name"]
    return None if name is None else str(name)
