"""Test configuration shared by the project's own test suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CORAL_MODELS = Path(__file__).resolve().parent.parent / "shared" / "models" / "coral"
COMPILED_MODELS = CORAL_MODELS.parent / "edgetpu-compiled"

# Short measurements keep the suite fast; the verdict logic is the same at any length.
SHORT_INI = """
[pytest]
edgetpu_max_time = 0.3
edgetpu_min_runs = 20
edgetpu_processes = one
filterwarnings = ignore::pytest.PytestAssertRewriteWarning
"""


@pytest.fixture(scope="session")
def coral_models() -> Path:
    """The folder of real Coral models; tests that need it skip when it is absent."""
    if not (CORAL_MODELS / "mobilenet_v1_0.25_128_quant.tflite").is_file():
        pytest.skip(f"real Coral models not found at {CORAL_MODELS} (the shared/ checkout)")
    return CORAL_MODELS


@pytest.fixture(scope="session")
def compiled_models() -> Path:
    """The folder of real compiled Edge TPU models of several shapes (co-compiled, partially
    mapped, a pipeline segment, a CPU custom op); tests that need it skip when it is absent."""
    if not (COMPILED_MODELS / "movenet_single_pose_lightning_ptq_edgetpu.tflite").is_file():
        pytest.skip(
            f"compiled Edge TPU models not found at {COMPILED_MODELS} (the shared/ checkout)"
        )
    return COMPILED_MODELS


@pytest.fixture(autouse=True)
def private_lease_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Device leases of the tests' own pytest runs live apart from any real session's."""
    directory = tmp_path_factory.mktemp("leases")
    monkeypatch.setenv("PYTEST_EDGETPU_LEASE_DIR", str(directory))
    return directory


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    """A FIFO where a file is expected: reading it would block until someone writes."""
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


@pytest.fixture
def short_ini() -> str:
    """The ini of the tests' own pytest runs (a test module may override it)."""
    return SHORT_INI


@pytest.fixture
def project(pytester: pytest.Pytester, short_ini: str) -> pytest.Pytester:
    """A user's project: the short ini and the two generated models under models/."""
    from pytest_edgetpu.model.examples import write_example_models

    pytester.makeini(short_ini)
    write_example_models(pytester.path / "models")
    return pytester
