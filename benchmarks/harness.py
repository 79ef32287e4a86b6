"""What the benchmark scripts share: the real models they measure, pytest runs of a scratch
suite (also with the plugin of another revision), memory-streaming neighbour processes, and the
interval of a detection rate."""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

from saved import ROOT

CORAL = ROOT.parent / "shared" / "models" / "coral"


CORAL_MODELS = {
    "lstm": "keras_lstm_mnist_ptq.tflite",
    "mnv1_025": "mobilenet_v1_0.25_128_quant.tflite",
    "mnv2": "mobilenet_v2_1.0_224_quant.tflite",
}


def pytest_run(
    cwd: Path, args: list[str], slowdown: float, plugin_at: Path | None = None
) -> tuple[int, float, str]:
    env = {**os.environ, "SLOWDOWN": str(slowdown), "PYTHONDONTWRITEBYTECODE": "1"}
    if plugin_at is not None:  # the plugin as it was at another revision, imported first
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(plugin_at), env.get("PYTHONPATH"))))
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, time.perf_counter() - start, done.stdout[-4000:]


def plugin_at(revision: str, directory: Path) -> tuple[str, Path]:
    """The plugin's source tree at ``revision``, unpacked into ``directory``."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", revision], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    if not commit:
        sys.exit(f"--also {revision}: no such revision in {ROOT}")
    archive = subprocess.run(
        ["git", "archive", commit, "pytest_edgetpu"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    directory.mkdir()
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive, check=True)
    bytecode_compiled(directory)
    return commit, directory


def bytecode_compiled(folder: Path = ROOT / "pytest_edgetpu") -> None:
    """Compile the plugin's modules under ``folder`` once, as installing it does: the timed
    runs import it with PYTHONDONTWRITEBYTECODE set (so that they write nothing into the
    trees they import), and every process of theirs would otherwise compile each module it
    imports again (a fresh-process helper's start took 0.37 s instead of 0.3 s)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(folder)], check=True)


def wilson(successes: int, n: int) -> str:
    if n == 0:
        return "n/a"
    z = 1.96
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low, high = max(0.0, centre - half), min(1.0, centre + half)
    return f"{successes}/{n} = {p:.0%} (95% CI {low:.0%}..{high:.0%})"


MEDIAPIPE = "mediapipe==0.10.14"


MEDIAPIPE_MODELS = (
    "hand_recrop",
    "iris_landmark",
    "face_detection_short_range",
    "face_landmark",
    "selfie_segmentation_landscape",
    "face_detection_full_range_sparse",
    "selfie_segmentation",
    "hand_landmark_lite",
)


CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pytest-edgetpu-bench"


def fetch_mediapipe_models() -> dict[str, str]:
    """MediaPipe's published models, from its wheel on PyPI, cached between runs."""
    folder = CACHE / MEDIAPIPE.replace("==", "-")
    if not all((folder / f"{name}.tflite").is_file() for name in MEDIAPIPE_MODELS):
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "-q",
                "-d",
                str(folder),
                MEDIAPIPE,
            ],
            check=True,
        )
        (wheel,) = folder.glob("mediapipe-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            for info in archive.infolist():
                name = Path(info.filename).stem
                if info.filename.endswith(".tflite") and name in MEDIAPIPE_MODELS:
                    (folder / f"{name}.tflite").write_bytes(archive.read(info))
        wheel.unlink()
    return {name: str(folder / f"{name}.tflite") for name in MEDIAPIPE_MODELS}


@contextlib.contextmanager
def beside(condition: str) -> Iterator[None]:
    """Run the block under ``condition``: quiet, or beside ``memN`` memory-streaming
    neighbour processes, killed after it."""
    neighbours = start_neighbours(condition)
    try:
        yield
    finally:
        for neighbour in neighbours:
            neighbour.kill()


def start_neighbours(condition: str) -> list[subprocess.Popen[bytes]]:
    count = int(condition[3:]) if condition.startswith("mem") else 0
    return [subprocess.Popen([sys.executable, "-c", NEIGHBOURS["mem"]]) for _ in range(count)]


NEIGHBOURS = {
    "cpu": "while True:\n    sum(i for i in range(10000))\n",
    "mem": (
        "import numpy as np\n"
        "a = np.ones(64 * 1024 * 1024 // 8); b = np.empty_like(a)\n"
        "while True:\n"
        "    np.copyto(b, a)\n"
    ),
}
