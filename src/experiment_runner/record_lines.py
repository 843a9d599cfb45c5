"""The lines of a run's JSON-lines files, and the file that takes each whole.

experiments.jsonl lists each experiment (:func:`experiment_line`),
results.jsonl each finished one (:func:`results_line`), failures.jsonl each
failed attempt (:func:`failure_record`); :class:`RecordFile` appends them.
The store (store.py) decides what goes where and when.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Optional

from .experiment import Experiment, Outcome
from .experiment_files import write_whole_line
from .resume_match import SECRET_VERIFIER
from .serialization import SecretVerifier, dumps

__all__ = ["RecordFile", "experiment_line", "results_line", "failure_record"]


class RecordFile:
    """A JSON-lines file that gets one whole line per write, or nothing.

    Lines go straight to the file (no buffer that a later write could flush
    half of); a write that fails, say on a full disk, is cut back to the
    file's length before it, so no torn line stays behind.
    """

    def __init__(self, path: Path):
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)

    def append_line(self, line: str) -> None:
        """Append ``line`` (one line of JSON, without its newline)."""
        write_whole_line(self._fd, line)

    def close(self) -> None:
        os.close(self._fd)


def experiment_line(experiment: Experiment, verifier: SecretVerifier) -> Dict[str, Any]:
    """The experiment as experiments.jsonl lists it: id, config hash, stored config, and its secrets' verifier."""
    line = {"experiment_id": experiment.experiment_id, "hash": experiment.config_hash,
            "config": experiment.stored_config}
    verified = verifier(experiment.secret_values()) if experiment.secret_keys else None
    if verified is not None:
        line[SECRET_VERIFIER] = verified
    return line


def results_line(experiment: Experiment, scores: Any, record: Optional[str] = None,
                 extra: Optional[Dict[str, Any]] = None) -> str:
    """The results.jsonl line of a finished experiment: its record (config.json's text) with ``"scores"`` added.

    Written from the record's text rather than a new dict: the same JSON, one encoding fewer per experiment.
    ``record``: that text as the process that ran the experiment made it (its Outcome's), if it came along;
    ``extra``: keys added after the scores.
    """
    if record is None:
        record = experiment.record_text()  # a JSON object with at least experiment_id and out_path: it ends in "}"
    more = "".join(f", {dumps(key)}: {dumps(value)}" for key, value in extra.items()) if extra else ""
    return f'{record[:-1]}, "scores": {dumps(scores)}{more}}}'


def failure_record(outcome: Outcome, experiment: Experiment, attempt: int) -> Dict[str, Any]:
    # A crash seen from outside does not say which repetition ran; with one repetition there is only one.
    known_run_id = outcome.run_id if outcome.run_id is not None or experiment.repetitions > 1 else 0
    run_id = known_run_id or 0
    return {
        "experiment_id": experiment.experiment_id,
        "run_id": known_run_id,
        "attempt": attempt,
        "status": outcome.status,
        "error_type": outcome.error_type,
        "message": outcome.message,
        "exit_code": outcome.exit_code,
        "host": outcome.host,
        "duration": outcome.duration,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "stdout": str(experiment.paths.stdout(run_id)),
        "stderr": str(experiment.paths.stderr(run_id)),
        "config": experiment.record(),
        "traceback": outcome.traceback,
    }
