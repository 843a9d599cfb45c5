"""The out_path tree's run-level files, and how their JSON-lines records are read (by the store and the report)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Dict, Iterator, Tuple

from .errors import CorruptRecordError


@dataclasses.dataclass(frozen=True)
class RunPaths:
    """Every run-level path of the out_path tree."""

    root: Path

    @property
    def run_yaml(self) -> Path:
        return self.root / "run.yaml"

    @property
    def environment(self) -> Path:
        return self.root / "environment.json"

    @property
    def experiments(self) -> Path:
        return self.root / "experiments.jsonl"

    @property
    def results(self) -> Path:
        return self.root / "results.jsonl"

    @property
    def failures(self) -> Path:
        return self.root / "failures.jsonl"

    @property
    def run_files(self) -> Tuple[Path, ...]:
        """The run-level files a run writes (what overwriting or discarding a run removes)."""
        return (self.results, self.failures, self.environment, self.run_yaml, self.experiments)


def read_jsonl(path: Path) -> Iterator[Dict[str, Any]]:
    """The records of a JSON-lines file; a torn last line (a killed writer) is skipped.

    Any other line that is not a JSON object raises :class:`CorruptRecordError`.
    """
    if not path.exists():
        return
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.endswith(b"\n"):
                return
            if line.strip():
                yield _parse_record(line, path, number)


def _parse_record(line: bytes, path: Path, number: int) -> Dict[str, Any]:
    try:
        record = json.loads(line.decode("utf-8"))
    except ValueError as error:  # not JSON, or not UTF-8
        problem = f"not JSON ({error})"
    else:
        if isinstance(record, dict):
            return record
        problem = f"a JSON {type(record).__name__}, not a record"
    raise CorruptRecordError(
        f"{path}, line {number}: {problem}; repair or delete that line (each line is one whole record)"
    )
