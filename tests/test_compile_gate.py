"""The Edge TPU compile structure gate, end to end on a host without an Edge TPU (judge room):
compiled models are gated on what the compiler did to them, against the stored structure or
the file at a revision, serially and under xdist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from factories import assert_clean, needs_git

from pytest_edgetpu.cli import main
from pytest_edgetpu.judge.structure import Structure, judge_structure
from pytest_edgetpu.judge.verdict import Status

ALONE = "mobilenet_v1_0.25_128_quant_edgetpu.tflite"
COCOMPILED = "mobilenet_v1_0.25_128_quant_cocompiled_with_3quant_edgetpu.tflite"
MOVENET = "movenet_single_pose_lightning_ptq_edgetpu.tflite"
UNMEASURED = "latency not measured: no Edge TPU attached (this run uses cpu:0)"


@pytest.fixture
def shipped(project: pytest.Pytester, coral_models: Path, compiled_models: Path) -> Path:
    """A project that ships ``models/classifier_edgetpu.tflite`` (MobileNet compiled alone)."""
    model = project.path / "models" / "classifier_edgetpu.tflite"
    shutil.copyfile(coral_models / ALONE, model)
    return model


def test_a_compiled_model_passes_saying_latency_was_not_measured_then_gates_its_structure(
    project: pytest.Pytester, shipped: Path
) -> None:
    first = project.runpytest("--edgetpu", "models/classifier_edgetpu.tflite")
    first.assert_outcomes(passed=1)
    first.stdout.fnmatch_lines(
        [
            "EDGETPU COMPILE NO_BASELINE models/classifier_edgetpu.tflite: 1 Edge TPU subgraph(s),"
            " 553.62 KiB cached, 0 B streamed per inference, 0 op(s) on the CPU; nothing to "
            "compare with in baselines/edgetpu-compile.json; record it with "
            f"--edgetpu-update-baselines; {UNMEASURED}"
        ]
    )
    assert_clean(first)
    update = project.runpytest("--edgetpu-update-baselines", "models/classifier_edgetpu.tflite")
    update.assert_outcomes(passed=1)
    stored = json.loads((project.path / "baselines" / "edgetpu-compile.json").read_text())
    assert stored["models"]["models/classifier_edgetpu.tflite"]["cached_bytes"] == 566_912
    again = project.runpytest("--edgetpu", "models/classifier_edgetpu.tflite")
    again.assert_outcomes(passed=1)
    again.stdout.fnmatch_lines(
        [
            "EDGETPU COMPILE PASS models/classifier_edgetpu.tflite: 1 Edge TPU subgraph(s), "
            "553.62 KiB cached, 0 B streamed per inference, 0 op(s) on the CPU, unchanged; "
            f"against baselines/edgetpu-compile.json; {UNMEASURED}"
        ]
    )


@pytest.mark.parametrize(
    ("swap", "words"),
    [
        (
            COCOMPILED,
            "off-chip parameter streaming 0 B -> 245.19 KiB per inference; on-chip cached "
            "parameters 553.62 KiB -> 308.44 KiB",
        ),
        (
            MOVENET,
            "off-chip parameter streaming 0 B -> 2.31 KiB per inference; 59 op(s) moved to the "
            "CPU (ADD, ARG_MAX, CAST, CONCATENATION, DEQUANTIZE,*",
        ),
    ],
    ids=["co-compiled", "ops-on-the-cpu"],
)
def test_a_structural_regression_fails_naming_what_got_worse(
    project: pytest.Pytester, shipped: Path, compiled_models: Path, swap: str, words: str
) -> None:
    shipped_only = "models/classifier_edgetpu.tflite"  # no latency noise in what is judged
    project.runpytest("--edgetpu-update-baselines", shipped_only).assert_outcomes(passed=1)
    shutil.copyfile(compiled_models / swap, shipped)
    result = project.runpytest("--edgetpu", shipped_only)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"*EDGETPU COMPILE REGRESSION models/classifier_edgetpu.tflite: {words}*; against "
            "baselines/edgetpu-compile.json*"
        ]
    )
    assert_clean(result)


def test_a_plain_model_under_an_edgetpu_name_is_its_own_line(
    project: pytest.Pytester, shipped: Path, coral_models: Path
) -> None:
    shipped_only = "models/classifier_edgetpu.tflite"
    project.runpytest("--edgetpu-update-baselines", shipped_only).assert_outcomes(passed=1)
    shutil.copyfile(coral_models / ALONE.replace("_edgetpu", ""), shipped)
    result = project.runpytest("--edgetpu", shipped_only)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*EDGETPU COMPILE REGRESSION models/classifier_edgetpu.tflite: 31 op(s) moved to the "
            "CPU (AVERAGE_POOL_2D, CONV_2D, DEPTHWISE_CONV_2D, RESHAPE, SOFTMAX); Edge TPU "
            "subgraphs 1 -> 0;*"
        ]
    )


def test_a_corrupt_package_fails_its_item_in_one_line(
    project: pytest.Pytester, shipped: Path
) -> None:
    data = bytearray(shipped.read_bytes())
    at = data.index(b"DWN1")
    data[at : at + 4] = b"XXXX"
    shipped.write_bytes(bytes(data))
    result = project.runpytest("--edgetpu", "models/classifier_edgetpu.tflite")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*models/classifier_edgetpu.tflite is a corrupt Edge TPU model (the package of "
            "edgetpu-custom-op node #0 has no 'DWN1' identifier); compile it again with "
            "edgetpu_compiler*"
        ]
    )
    assert_clean(result)


def test_under_xdist_the_controller_reports_every_workers_structures(
    project: pytest.Pytester, shipped: Path, compiled_models: Path
) -> None:
    project.runpytest("--edgetpu-update-baselines", "models/classifier_edgetpu.tflite")
    shutil.copyfile(compiled_models / COCOMPILED, shipped)
    shutil.copyfile(compiled_models / MOVENET, project.path / "models" / "pose_edgetpu.tflite")
    # The two compiled models only: the example models' latency is not what is judged here.
    models = ("models/classifier_edgetpu.tflite", "models/pose_edgetpu.tflite")
    result = project.runpytest("--edgetpu", "-n", "2", *models, "--edgetpu-json=r.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "EDGETPU COMPILE REGRESSION models/classifier_edgetpu.tflite: off-chip parameter "
            "streaming 0 B -> 245.19 KiB per inference*",
            "EDGETPU COMPILE NO_BASELINE models/pose_edgetpu.tflite: *",
        ],
        consecutive=False,
    )
    written = json.loads((project.path / "r.json").read_text())["edgetpu_compile"]
    assert sorted((v["model"], v["status"]) for v in written) == [
        ("models/classifier_edgetpu.tflite", "REGRESSION"),
        ("models/pose_edgetpu.tflite", "NO_BASELINE"),
    ]


@needs_git
def test_relative_mode_compares_with_the_file_at_the_revision(
    project: pytest.Pytester, shipped: Path, compiled_models: Path
) -> None:
    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=project.path,
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "the model as shipped")
    shutil.copyfile(compiled_models / COCOMPILED, shipped)
    result = project.runpytest("--edgetpu-against=HEAD", "models/classifier_edgetpu.tflite")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*EDGETPU COMPILE REGRESSION models/classifier_edgetpu.tflite: off-chip parameter "
            "streaming 0 B -> 245.19 KiB per inference; *; against HEAD (*):"
            "models/classifier_edgetpu.tflite, the file there*"
        ]
    )


def structure(**changes: object) -> Structure:
    fields: dict[str, object] = {
        "edgetpu_subgraphs": 1,
        "cached_bytes": 1000,
        "streamed_bytes": 0,
        "cpu_ops": {},
        "compiler_versions": ("cl/1",),
        "min_runtime_version": 12,
    }
    fields.update(changes)
    return Structure(**fields)  # type: ignore[arg-type]


def test_the_rules_of_the_structure_verdict() -> None:
    base = structure()
    judged = judge_structure(structure(), base, "m_edgetpu.tflite", "b.json")
    assert judged.status is Status.PASS and not judged.fails(strict=True)
    newer = judge_structure(
        structure(compiler_versions=("cl/2",), min_runtime_version=13), base, "m", "b"
    )
    assert newer.status is Status.PASS
    assert newer.notes == (
        "compiler cl/1 -> cl/2",
        "minimum runtime version 12 -> 13 (an older libedgetpu cannot run it)",
    )
    assert not newer.fails(strict=False) and newer.fails(strict=True)
    split = judge_structure(structure(edgetpu_subgraphs=2, cpu_ops={"ADD": 1}), base, "m", "b")
    assert split.status is Status.REGRESSION
    assert split.findings == ("1 op(s) moved to the CPU (ADD)", "Edge TPU subgraphs 1 -> 2")
    better = judge_structure(structure(), structure(streamed_bytes=2048), "m", "b")
    assert better.status is Status.IMPROVED and not better.fails(strict=True)
    new = judge_structure(structure(), None, "m", "b")
    assert new.status is Status.NO_BASELINE and new.fails(strict=True) and not new.fails(False)


@needs_git
def test_show_diff_and_junit_carry_the_structure(
    project: pytest.Pytester,
    shipped: Path,
    compiled_models: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    shipped_only = "models/classifier_edgetpu.tflite"
    project.runpytest("--edgetpu-update-baselines", shipped_only).assert_outcomes(passed=1)
    monkeypatch.chdir(project.path)
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "recorded"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True)
    shutil.copyfile(compiled_models / COCOMPILED, shipped)
    junit = project.runpytest("--edgetpu", shipped_only, "--junitxml=j.xml")
    junit.assert_outcomes(failed=1)
    xml = (project.path / "j.xml").read_text()
    assert '<property name="edgetpu_compile_verdict" value="REGRESSION"' in xml
    assert '<property name="edgetpu_compile_streamed_bytes" value="251072"' in xml
    project.runpytest("--edgetpu-update-baselines", shipped_only)
    capsys.readouterr()
    assert main(["show"]) == 0
    shown = capsys.readouterr().out
    assert "Edge TPU compile structures (baselines/edgetpu-compile.json):" in shown
    assert re.search(r"models/classifier_edgetpu.tflite +1 +308.44 KiB +245.19 KiB +0 +cl/", shown)
    assert main(["diff", "HEAD"]) == 0
    assert (
        "models/classifier_edgetpu.tflite  off-chip parameter streaming 0 B -> 245.19 KiB per "
        "inference; on-chip cached parameters 553.62 KiB -> 308.44 KiB"
    ) in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{ half", "is not a readable compile structure file (*"),
        ('{"format": "x"}', 'is not a pytest-edgetpu compile structure file (no "format": *'),
    ],
)
def test_a_damaged_structure_file_stops_the_run_in_one_line(
    project: pytest.Pytester, shipped: Path, content: str, words: str
) -> None:
    (project.path / "baselines").mkdir()
    (project.path / "baselines" / "edgetpu-compile.json").write_text(content)
    result = project.runpytest("--edgetpu", "models/classifier_edgetpu.tflite")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: */baselines/edgetpu-compile.json {words}"])
    assert_clean(result)
