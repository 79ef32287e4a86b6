"""A newcomer's first hour (issue 16): what confused them, each now behaviour with a test."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from pytest_edgetpu.cli import main
from pytest_edgetpu.judge.verdict import format_ms

CALLABLE_TEST = """
def test_pipeline(edgetpu, tpu_bench):
    model = edgetpu.load("models/current.tflite")
    tpu_bench(lambda: model.run())
"""


def test_model_folders_in_testpaths_are_collected(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\ntestpaths = tests models\nedgetpu_max_time = 0.05\n")
    (project.path / "tests").mkdir()
    (project.path / "tests" / "test_plain.py").write_text("def test_plain():\n    pass\n")
    result = project.runpytest("--edgetpu", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "tests/test_plain.py::test_plain",
            "models/tiny_conv.tflite::latency",
            "models/tiny_dense.tflite::latency",
        ],
        consecutive=False,
    )
    # Without testpaths, a model file somewhere in the project is data, not a benchmark.
    project.makeini("[pytest]\n")
    bare = project.runpytest("--edgetpu", "--collect-only", "-q")
    bare.stdout.no_fnmatch_line("*.tflite::latency*")


def test_a_model_swapped_inside_a_callable_is_model_changed(project: pytest.Pytester) -> None:
    models = project.path / "models"
    shutil.copy(models / "tiny_dense.tflite", models / "current.tflite")
    project.makepyfile(test_pipe=CALLABLE_TEST)
    project.runpytest("--edgetpu-update-baselines").assert_outcomes(passed=1)
    (entry,) = json.loads(next((project.path / "baselines").glob("*.json")).read_text())[
        "entries"
    ].values()
    assert entry["model_path"] == "models/current.tflite"
    assert entry["model_sha256"] is not None
    shutil.copy(models / "tiny_conv.tflite", models / "current.tflite")
    result = project.runpytest("--edgetpu", "--edgetpu-json=r.json")
    result.stdout.fnmatch_lines(["*model changed since the baseline (*"])
    (record,) = json.loads((project.path / "r.json").read_text())["results"]
    assert record["verdict"]["model_changed"] is True
    assert 0.0 <= record["run_queue_wait"] <= 1.0
    assert [m["path"] for m in record["model"]["models"]] == [str(models / "current.tflite")]


def test_show_prints_three_significant_digits_and_the_workers(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project.makepyfile(test_pipe=CALLABLE_TEST.replace("current", "tiny_dense"))
    project.runpytest("--edgetpu-update-baselines").assert_outcomes(passed=1)
    monkeypatch.chdir(project.path)
    capsys.readouterr()
    assert main(["show"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[3:8] == ["p50", "ms", "p90", "ms", "p99"]
    assert "workers" in header.split()
    figures = row.split()[3:6]
    assert all(len(f.replace("0.", "").lstrip("0").replace(".", "")) == 3 for f in figures), row


def test_accept_refuses_a_regression_unless_told(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project.makepyfile(test_pipe=CALLABLE_TEST.replace("current", "tiny_dense"))
    project.runpytest("--edgetpu-update-baselines").assert_outcomes(passed=1)
    # Its verdict is set by hand below; a generous threshold keeps the run itself green.
    gate = project.runpytest("--edgetpu", "--edgetpu-json=r.json", "--edgetpu-threshold=200%")
    gate.assert_outcomes(passed=1)
    monkeypatch.chdir(project.path)
    results = project.path / "r.json"
    document = json.loads(results.read_text())
    document["results"][0]["verdict"]["status"] = "REGRESSION"
    results.write_text(json.dumps(document))
    baseline = next((project.path / "baselines").glob("*.json"))
    before = baseline.read_bytes()
    capsys.readouterr()
    assert main(["accept", "r.json"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "test_pipe.py::test_pipeline: not accepted: its measurement was REGRESSION against the"
        " baseline; fix it, or if it is intended, accept it anyway with --accept-regression"
    )
    assert baseline.read_bytes() == before
    assert main(["accept", "r.json", "--accept-regression"]) == 0
    assert ", accepted although REGRESSION)" in capsys.readouterr().out


def test_two_tpu_bench_calls_write_unique_junit_properties(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_two="""
        def test_two(tpu_bench):
            tpu_bench("models/tiny_dense.tflite")
            tpu_bench("models/tiny_conv.tflite")
        """
    )
    project.runpytest("--edgetpu", "--junitxml=j.xml").assert_outcomes(passed=1)
    names = [p.get("name") for p in ElementTree.parse(project.path / "j.xml").iter("property")]
    assert len(names) == len(set(names)) and "edgetpu_verdict" in names
    assert "edgetpu_2_verdict" in names and "edgetpu_2_p50_ms" in names


def test_devices_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    command = f"{sys.executable} -m pytest_edgetpu devices | head -1"
    done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=60)
    assert done.stdout.startswith("runtime: ")
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


def test_diff_given_an_option_as_revision_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "--output=x", "--baseline-dir", "."]) == 2
    assert capsys.readouterr().err == (
        "pytest-edgetpu: error: diff: '--output=x' is not a git revision; give one like "
        "origin/main, HEAD~1, a tag or a commit hash\n"
    )


def test_litert_info_line_is_not_in_a_failing_tests_output(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_fail="""
        def test_fail(tpu_bench):
            tpu_bench("models/tiny_dense.tflite")
            assert False
        """
    )
    result = project.runpytest_subprocess("--edgetpu", "-p", "no:xdist")
    result.assert_outcomes(failed=1)
    assert "XNNPACK delegate" not in result.stdout.str() + result.stderr.str()


def test_a_figure_shows_the_same_from_a_run_and_from_its_baseline_file() -> None:
    # 0.23751 is recorded as 0.2375 (four significant digits): both read 0.238.
    assert format_ms(0.23751) == format_ms(0.2375) == "0.238"
    assert format_ms(0.23746) == format_ms(0.2375)
    assert format_ms(1.0) == "1.00" and format_ms(12.34) == "12.3" and format_ms(0.0566) == "0.0566"


def test_the_plot_shows_the_tail() -> None:
    pytest.importorskip("matplotlib.figure")
    from matplotlib.figure import Figure

    from pytest_edgetpu.report.plots import _distribution

    axes = Figure().subplots()
    summary = {"min": 0.1, "p50": 0.11, "p90": 0.12, "p99": 0.15, "max": 2.0}
    _distribution(axes, [0.1] * 21, [("this run", [0.1, 0.11], summary, "C0")])
    assert axes.get_xlim()[1] >= 2.0 and axes.get_xscale() == "log"
