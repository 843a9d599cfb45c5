"""``--resume``: the recorded run (read by the store's reader of run.yaml) and how to tell the user to resume."""
from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from .cli_args import App, shown_path
from .errors import StageImportError, UsageError
from .run_files import RecordedRun, read_recorded_run
from .serialization import MASK


#: What --resume reads of a run: what its run.yaml recorded, read by the store's reader.
Resume = RecordedRun


def typed_secrets(resume: Resume) -> List[Tuple[str, str, bool]]:
    """The secrets the run's command line set, which run.yaml holds as ``key=***``.

    Each as (override as recorded, its key, whether it was a sweep); deleting one (``~key=***``) sets none.
    """
    from .config.overrides import parse_override

    typed = [parse_override(text) for text in resume.overrides if text.endswith(f"={MASK}") and text[:1] != "~"]
    return [(override.text, override.key, override.key in resume.dimensions) for override in typed]


def read_resume(out_path: str, app: App) -> Resume:
    """The run in ``out_path``, as its run.yaml recorded it, once it is one that this command line can resume."""
    run = read_recorded_run(out_path)
    if not run.from_command_line:
        raise UsageError(
            f"cannot resume '{out_path}' from the command line: its run.yaml records no config and overrides "
            "(it was started from Python); run it again there with if_exists='resume'"
        )
    if run.script and app.stage_module is None:
        raise UsageError(
            f"'{out_path}' was started by the script {run.script}, whose stages and code it runs: "
            f"resume it with that script: {shlex.join(['python', run.script, '--resume', out_path])}"
        )
    return run


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
        error.problem, f"the run started in '{start_folder}', where its stages import: resume it from there: "
        f"{resume_command(app, resume.out_path, start_folder)}"
    )


def check_secrets_typed_again(app: App, resume: Resume, overrides: Sequence[str]) -> None:
    """A secret typed on the command line of the run must be typed again to resume it, whatever the files hold.

    run.yaml keeps it as ``key=***``; taking another value from the config
    files instead would quietly run the rest of the sweep with another secret.
    """
    given = [text.lstrip("+").partition("=")[0].strip() for text in overrides if "=" in text and text[:1] != "~"]
    missing = [(text, key, swept) for text, key, swept in typed_secrets(resume)
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
    swept = [key for _, key, sweep in (typed_secrets(resume) if resume else []) if sweep]
    if not swept:
        return ""
    return (f"; the recorded run swept the secret {', '.join(swept)} on the command line: type that sweep again "
            "after --resume, with the same values")
