"""Fixtures shared by the test suite.

The contract suite (test_contract.py) runs over every backend listed in
CONTRACT_BACKENDS. Each backend has a fixture named ``<name>_backend`` that
returns the basecfg settings selecting it (starting whatever it needs: a Ray
cluster, SSH servers); a backend that runs experiments in processes it can
replace is also listed in ISOLATING_BACKENDS, which adds the crash tests.
"""
import json
from pathlib import Path

import pytest

import stages

CONTRACT_BACKENDS = ["single"]
ISOLATING_BACKENDS = []


@pytest.fixture
def single_backend():
    return {"backend": "single"}


@pytest.fixture(params=CONTRACT_BACKENDS)
def backend(request):
    """basecfg settings for each backend of the contract suite."""
    return request.getfixturevalue(f"{request.param}_backend")


@pytest.fixture(params=ISOLATING_BACKENDS or [pytest.param(None, marks=pytest.mark.skip(reason="no backend yet"))])
def isolating_backend(request):
    return request.getfixturevalue(f"{request.param}_backend")


@pytest.fixture
def basecfg(tmp_path):
    """A quiet basecfg with the test stages, writing to a fresh out_path."""
    return {"out_path": str(tmp_path / "run"), "pre": stages.pre, "fit": stages.fit, "post": stages.post,
            "verbose": False}


def read_lines(path):
    """The JSON lines of a file, asserting each line is complete."""
    text = Path(path).read_text()
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]
