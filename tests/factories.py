"""Baseline entries, profiles, files and results for the tests, made in one place."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from pytest_edgetpu.config import SessionSettings, session_settings
from pytest_edgetpu.core.stats import Shift, Summary
from pytest_edgetpu.device.profile import Profile
from pytest_edgetpu.device.runtime import load_runtime
from pytest_edgetpu.device.selection import Device
from pytest_edgetpu.engine.station import device_profile
from pytest_edgetpu.judge.baselines import BaselineEntry, write_entries
from pytest_edgetpu.judge.results import ModelFacts, Phases, Result, SmokeResult, TimedResult
from pytest_edgetpu.judge.verdict import Status, Verdict

PROFILE = "cpu-x86_64-amd-epyc-litert"
#: The options of an update that records whatever the host's noise (a measurement refused as
#: BUSY or UNSTABLE writes nothing): for tests of what is recorded, not of the host.
RECORDING_UPDATE = ("--edgetpu-update-baselines", "--edgetpu-accept-unstable")
PROFILE_FIELDS = {"arch": "x86_64", "cpu_model": "AMD EPYC", "device": "cpu", "runtime": "litert"}
USB_PROFILE = "edgetpu-usb-usb5000-x86_64-direct-litert"
CPU_WORDS = "cpu (x86_64, LiteRT 2.3.0, 1 thread)"
USB_WORDS = "usb (Edge TPU, USB 3, libedgetpu 16.0)"
BASELINE_FILE = f"baselines/{PROFILE}.json"


def cpu_profile() -> Profile:
    """This host's CPU profile, the one a serial run on cpu:0 looks up."""
    return device_profile(Device("cpu", "cpu:0"), load_runtime(), None)


def entry(value_ms: float) -> BaselineEntry:
    """A valid entry of three instances around ``value_ms``."""
    return BaselineEntry(
        metric="p50",
        instance_values_ms=(value_ms, value_ms * 1.01, value_ms * 1.02),
        summary_ms={"n": 30, "p50": value_ms * 1.01},
        load_ms=1.0,
        first_inference_ms=1.0,
        num_threads=1,
        workers=1,
        recorded="2026-11-27T00:00:00+00:00",
    )


def record(project: pytest.Pytester, *test_ids: str, value_ms: float = 1.0) -> Path:
    """A baseline file for this host written directly (no measuring), one entry per id."""
    return write_entries(
        project.path / "baselines", cpu_profile(), {t: entry(value_ms) for t in test_ids}
    )


def summary(p50: float, n: int = 400) -> Summary:
    """A pooled summary around ``p50``: p90 1.2x, p99 1.5x, max 3x of it."""
    return Summary(
        n=n,
        min_ms=p50 * 0.9,
        p50_ms=p50,
        p90_ms=p50 * 1.2,
        p99_ms=p50 * 1.5,
        max_ms=p50 * 3,
        mean_ms=p50 * 1.1,
        stdev_ms=p50 * 0.2,
        mad_ms=p50 * 0.05,
        iqr_ms=p50 * 0.1,
        cv=0.18,
        throughput_per_s=1000 / (p50 * 1.1),
    )


def result(
    test_id: str,
    status: str,
    p50: float,
    *,
    baseline: float | None = None,
    change: tuple[float, float, float] | None = None,
    device: str = "cpu:0",
    confirmed: bool = False,
    recorded: bool = False,
    metric: str = "p50",
    timed: bool = True,
    run_queue_wait: float | None = 0.02,
) -> Result:
    """A judged result as the gate makes it, with fixed figures around ``p50``."""
    words = CPU_WORDS if device.startswith("cpu") else USB_WORDS
    figures = summary(p50)
    name = test_id.split("::")[-1]
    values = tuple(p50 * f for f in (0.97, 0.99, 1.0, 1.01, 1.04))
    compared = entry(baseline) if baseline is not None else None
    # The compared figures, consistent with the change: the baseline's, and it moved by it.
    moved = baseline * (1 + change[0]) if baseline is not None and change is not None else None
    verdict = Verdict(
        status=Status(status),
        metric=metric,
        current_ms=figures.value(metric),
        device_words=words,
        baseline_path=Path(BASELINE_FILE),
        baseline_ms=baseline,
        change=Shift(*change, confidence=0.95) if change is not None else None,
        compared_baseline_ms=baseline if moved is not None else None,
        compared_current_ms=moved,
        confirmed=confirmed,
        baseline_recorded="2026-11-20T09:15:00+00:00" if baseline else None,
        baseline_sha256="cb273c23ee76" + "0" * 52 if baseline else None,
        reason=(
            f"no baseline in {BASELINE_FILE}; record one with --edgetpu-update-baselines"
            if status == "NO_BASELINE"
            else ""
        ),
    )
    smoke = SmokeResult(
        test_id=test_id,
        target=f"models/{name}.tflite",
        device=device,
        device_words=words,
        workers=1,
        profile=PROFILE if device.startswith("cpu") else USB_PROFILE,
        metric=metric,
        num_threads=1,
        summary=figures,
        phases=Phases(load_ms=5.0, first_inference_ms=30.0, warmup_mean_ms=1.2),
        instance_values_ms=values,
        model=ModelFacts(
            path=f"models/{name}.tflite",
            sha256="3cc6d2ca460a" + "0" * 52,
            tpu_subgraphs=0,
            cpu_ops=3,
            partially_mapped=False,
        ),
    )
    if not timed:
        return smoke
    return TimedResult(
        **{field.name: getattr(smoke, field.name) for field in fields(smoke)},
        verdict=verdict,
        compared_entry=compared,
        baseline_entry=entry(p50),
        recorded=recorded,
        quantiles_ms=tuple(p50 * (0.9 + 0.6 * i / 20) for i in range(21)),
        run_queue_wait=run_queue_wait,
    )


def build_shared_object(
    source: Path, name: str, tmp_path_factory: pytest.TempPathFactory, what: str
) -> Path:
    """``source`` (one C file of a test double) compiled as the shared object ``name``;
    skips, naming ``what``, where there is no Linux or no C compiler."""
    if sys.platform != "linux":
        pytest.skip(f"{what} is built as a Linux shared object")
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip(f"no C compiler (cc or gcc) to build {what}")
    library = tmp_path_factory.mktemp(source.stem) / name
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-o", str(library), str(source)],
        check=True,
        capture_output=True,
    )
    return library


#: Whatever pytest prints when something escaped the plugin's error handling: a traceback, a
#: chained exception, a frame of the plugin's own code, a worker that went down.
NOT_CLEAN = (
    "Traceback",
    "INTERNALERROR",
    "node down",
    "During handling",
    "direct cause",
    "pytest_edgetpu/",
)
#: How long a test waits for a pytest process it started.
TIMEOUT_S = 60
#: A uid no account on the test host has: the "other user" of the hostile-host tests.
OTHER_UID = 54321

needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="making a file another user's needs root (chown); CI runs as root",
)


def assert_clean(result: pytest.RunResult) -> None:
    """Nothing escaped the plugin's error handling in ``result``'s output."""
    output = result.stdout.str() + result.stderr.str()
    for words in NOT_CLEAN:
        assert words not in output, words
    # "E   " starts the lines of an exception pytest shows with its frames.
    assert not [line for line in output.splitlines() if line.startswith("E   ")]


def bench_file(*names: str, marker: str = 'model="models/tiny_dense.tflite"') -> str:
    """A test file of one ``tpu_bench()`` test per name, each timing the marker's model."""
    tests = [
        f"@pytest.mark.tpu_bench({marker})\ndef {name}(tpu_bench):\n    tpu_bench()\n"
        for name in names
    ]
    return "import pytest\n\n\n" + "\n\n".join(tests)


def single_bench_file(marker: str = 'model="models/tiny_dense.tflite"', call: str = "") -> str:
    """A test file of one test, ``test_a``, calling ``tpu_bench(call)`` under ``marker``."""
    return (
        "import pytest\n\n\n"
        f"@pytest.mark.tpu_bench({marker})\n"
        f"def test_a(tpu_bench):\n    tpu_bench({call})\n"
    )


def snapshot(directory: Path) -> dict[str, tuple[str, int]]:
    """Every file below ``directory``: its content hash and modification time."""
    return {
        os.fspath(p.relative_to(directory)): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
        )
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def entries_of(path: Path) -> list[str]:
    """The test ids a baseline file holds entries for."""
    return sorted(json.loads(path.read_text(encoding="utf-8"))["entries"])


def commit_everything(directory: Path, message: str) -> None:
    """A new git repository at ``directory`` with every file in one commit."""
    names = {
        f"GIT_{who}_{what}": "t" for who in ("AUTHOR", "COMMITTER") for what in ("NAME", "EMAIL")
    }
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", message]):
        subprocess.run(["git", *args], cwd=directory, check=True, env={**os.environ, **names})


def git(repo: Path, *args: str) -> str:
    """git's output for ``args`` in ``repo``, as a test's own author and committer."""
    done = subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


needs_lfs = pytest.mark.skipif(
    shutil.which("git-lfs") is None,
    reason="git-lfs is not installed (Debian: apt-get install git-lfs)",
)
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def settings(tmp_path: Path, **cli: object) -> SessionSettings:
    values: dict[str, object] = {"": True, "baseline_dir": str(tmp_path / "baselines")}
    values.update(cli)
    return session_settings(values, {}, tmp_path, "pytest.ini")


CALLABLE_TEST = """
def test_pipeline(edgetpu, tpu_bench):
    model = edgetpu.load("models/current.tflite")
    tpu_bench(lambda: model.run())
"""


def default_sigint() -> None:
    """A child's SIGINT as a foreground job has it: a shell starts background jobs with SIGINT
    ignored, and Python then installs no KeyboardInterrupt handler (``preexec_fn``)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
