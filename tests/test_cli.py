"""The pytest-edgetpu command: output and exit codes of every subcommand."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from factories import CALLABLE_TEST, RECORDING_UPDATE, entry

from pytest_edgetpu.cli import main
from pytest_edgetpu.device.accelerators import accelerator_missing
from pytest_edgetpu.device.discovery import Discovery, EdgeTpu
from pytest_edgetpu.device.profile import Profile
from pytest_edgetpu.judge.baselines import write_entries

TEST = """
import pytest

@pytest.mark.tpu_bench(model="models/tiny_conv.tflite")
def test_conv(tpu_bench):
    tpu_bench()
"""


@pytest.fixture
def measured(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with one measured test and its results file; the cwd is the project."""
    pytester = project
    pytester.makepyfile(test_conv=TEST)
    pytester.runpytest("--edgetpu", "--edgetpu-json=results.json").assert_outcomes(passed=1)
    monkeypatch.chdir(pytester.path)
    return pytester.path


def slow_down(results: Path, factor: float) -> Path:
    document = json.loads(results.read_text())
    for record in document["results"]:
        entry = record["baseline_entry"]
        for holder in (record, entry):
            holder["instance_values_ms"] = [v * factor for v in holder["instance_values_ms"]]
            holder["summary_ms"]["p50"] *= factor
    slower = results.with_name("slower.json")
    slower.write_text(json.dumps(document))
    return slower


def test_devices_says_none_is_attached_and_which_runtime(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("runtime: LiteRT ")
    cpus = ", ".join(f"cpu:{i}" for i in range(len(os.sched_getaffinity(0))))
    assert f"cpu: {cpus} (one per usable core; " in out
    assert f"cpu-builtin: {cpus.replace('cpu', 'cpu-builtin')} (the same cores, XNNPACK off)" in out
    assert "litert-cpu: available (LiteRT CompiledModel)" in out
    for accelerator in ("gpu", "npu"):
        missing = accelerator_missing(accelerator)  # type: ignore[arg-type]
        assert f"litert-{accelerator}: {missing or 'available (LiteRT CompiledModel)'}" in out
    if not Path("/sys/class/apex").exists() and not Path("/sys/bus/usb/devices").exists():
        assert (
            f"Edge TPUs: none attached; --edgetpu-device=auto runs on the CPU ({cpus}; -n auto"
            " starts one worker per CPU device)"
        ) in out
        assert "note: no /sys/class/apex: PCIe driver (gasket-dkms) not loaded" in out


def test_devices_lists_attached_edge_tpus_in_a_table(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    usb = EdgeTpu("usb", 0, "/sys/bus/usb/devices/2-1\x1b[2J\nfake", "sysfs", usb_speed_mbps=5000)
    pci = EdgeTpu("pci", 0, "/dev/apex_0", "libedgetpu", temperature_c=41.25)
    found = Discovery((pci, usb), None, None, None, ())
    monkeypatch.setattr("pytest_edgetpu.cli.discover", lambda: found)
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("device  ") :].splitlines()
    assert re.fullmatch(r"device +path +link +dfu +temperature +found by", table[0])
    assert re.fullmatch(r"pci:0 +/dev/apex_0 +PCIe +41\.2 °C +libedgetpu", table[1])
    # A sysfs path reaches the terminal on one line, without its escape sequence.
    assert table[2].startswith("usb:0   /sys/bus/usb/devices/2-1")
    assert "\x1b" not in out and "fake" in table[2]


def test_accept_then_show_then_compare_passes(
    measured: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["accept", "results.json"]) == 0
    out = capsys.readouterr().out
    assert "test_conv.py::test_conv: p50 " in out and "ms (new)" in out
    assert "baselines written to baselines/cpu-" in out
    assert main(["show"]) == 0
    table = capsys.readouterr().out
    assert "test_conv.py::test_conv" in table and "cpu-" in table and "p50 ms" in table
    assert main(["compare", "results.json"]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "0 regressed of 1" in out


def test_accept_writes_what_an_update_run_writes(
    measured: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["accept", "results.json", "--baseline-dir", "accepted"]) == 0
    (accepted,) = (measured / "accepted").glob("*.json")
    entry = json.loads(accepted.read_text())["entries"]["test_conv.py::test_conv"]
    record = json.loads((measured / "results.json").read_text())["results"][0]
    assert entry == record["baseline_entry"]


def test_accept_refuses_an_unstable_measurement_unless_told(
    measured: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads((measured / "results.json").read_text())
    document["results"][0]["verdict"]["status"] = "UNSTABLE"
    unstable = measured / "unstable.json"
    unstable.write_text(json.dumps(document))
    assert main(["accept", str(unstable)]) == 1  # a CI accept step fails when it refused
    out = capsys.readouterr().out
    assert "test_conv.py::test_conv: not accepted: its measurement was UNSTABLE" in out
    assert out.endswith("1 measurement(s) not accepted (see above)\n")
    assert not (measured / "baselines").exists()
    assert main(["accept", str(unstable), "--accept-unstable"]) == 0
    assert "baselines written to" in capsys.readouterr().out


def tighten(results: Path) -> None:
    """Give the measured test twelve instance values within 1%: this test is about exit codes,
    and a noisy minute on the shared host can leave a real measurement too wide to decide."""
    document = json.loads(results.read_text())
    for record in document["results"]:
        # Four significant digits, as a baseline file keeps them: accepting the entry then
        # rounds nothing, and a slow-down by 1.5 measures +50.0% exactly. The same values on
        # both sides: the record's p50 and its entry's (rounded) differ in the last digits, and
        # values drawn from each would not round alike.
        p50 = record["summary_ms"]["p50"]
        values = [float(f"{p50 * (1 + 0.001 * i):.4g}") for i in range(12)]
        for holder in (record, record["baseline_entry"]):
            holder["instance_values_ms"] = values
    results.write_text(json.dumps(document))


def test_compare_exits_1_on_a_regression(
    measured: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tighten(measured / "results.json")
    main(["accept", "results.json"])
    capsys.readouterr()
    slower = slow_down(measured / "results.json", 1.5)
    assert main(["compare", str(slower)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION p50 (compared p5) " in out and "(+50.0%, 95% CI +" in out
    assert "1 regressed of 1" in out
    # A change short of four fifths of the threshold passes.
    assert main(["compare", str(slower), "--threshold", "63%"]) == 0


def test_compare_without_baselines_reports_no_baseline(
    measured: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compare", "results.json"]) == 0
    assert "NO_BASELINE" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "is not a readable results file"),
        ('{"format": "something-else"}', "is not a pytest-edgetpu results file"),
        (
            '{"format": "pytest-edgetpu-results", "schema_version": 7}',
            "has schema version 7, newer than this pytest-edgetpu reads (1); upgrade",
        ),
        ("[" * 50 + "]" * 50, "nested deeper than 8 levels"),
    ],
    ids=["corrupt", "foreign", "future", "deep"],
)
@pytest.mark.parametrize("command", ["compare", "accept"])
def test_bad_results_files_exit_2_naming_the_file(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    content: str,
    message: str,
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert main([command, str(bad), "--baseline-dir", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pytest-edgetpu: error: {bad}") and message in err
    assert not (tmp_path / "b").exists()


def test_show_names_a_corrupt_baseline_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cpu-x.json").write_text("{")
    assert main(["show", "--baseline-dir", str(tmp_path)]) == 2
    assert f"{tmp_path / 'cpu-x.json'} is not a readable baseline file" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_diff_shows_what_changed_since_a_revision(
    measured: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=measured, check=True, capture_output=True)

    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "0")
    main(["accept", "results.json"])
    git("add", "baselines")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "baselines")
    capsys.readouterr()
    assert main(["diff", "HEAD"]) == 0
    assert capsys.readouterr().out.strip() == "baselines unchanged since HEAD"
    main(["accept", str(slow_down(measured / "results.json", 2.0))])
    capsys.readouterr()
    assert main(["diff", "HEAD"]) == 0
    out = capsys.readouterr().out
    # Twice as slow; each file rounds to four digits, so the change reads +99.9..+100.1%.
    assert "test_conv.py::test_conv" in out
    assert re.search(r" \+(99\.9|100\.0|100\.1)% ", out), out
    assert main(["diff", "HEAD~1"]) == 0
    assert "added" in capsys.readouterr().out
    assert main(["diff", "no-such-rev"]) == 2
    assert capsys.readouterr().err == (
        f"pytest-edgetpu: error: diff: 'no-such-rev' names no commit in {measured.resolve()}; "
        "fetch it first (e.g. git fetch origin) or give a branch, tag or commit hash that exists\n"
    )
    # Text that git would read as an option never reaches it (git show --output=FILE writes).
    assert main(["diff", "--", "--output=pwned"]) == 2
    assert "'--output=pwned' is not a git revision" in capsys.readouterr().err
    assert not (measured / "pwned").exists()


def test_module_entry_point_prints_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_edgetpu", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0
    for command in ("devices", "show", "compare", "accept", "diff"):
        assert command in done.stdout


def test_show_prints_three_significant_digits_and_the_workers(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project.makepyfile(test_pipe=CALLABLE_TEST.replace("current", "tiny_dense"))
    project.runpytest(*RECORDING_UPDATE).assert_outcomes(passed=1)  # whatever the host's noise
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
    project.runpytest(*RECORDING_UPDATE).assert_outcomes(passed=1)  # whatever the host's noise
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
    assert main(["accept", "r.json"]) == 1
    assert capsys.readouterr().out.splitlines()[0] == (
        "test_pipe.py::test_pipeline: not accepted: its measurement was REGRESSION against the"
        " baseline; fix it, or if it is intended, accept it anyway with --accept-regression"
    )
    assert baseline.read_bytes() == before
    assert main(["accept", "r.json", "--accept-regression"]) == 0
    assert ", accepted although REGRESSION)" in capsys.readouterr().out


def test_devices_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    command = f"{sys.executable} -m pytest_edgetpu devices | head -1"
    done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=60)
    assert done.stdout.startswith("runtime: ")
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


def test_devices_says_what_it_found_and_nothing_of_litert_s_own_logging() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_edgetpu", "devices"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0
    assert "litert-cpu: " in done.stdout
    # The accelerators probed for those lines are released while their log is read.
    assert "DestroyAccelerator" not in done.stdout + done.stderr


def test_diff_given_an_option_as_revision_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "--output=x", "--baseline-dir", "."]) == 2
    assert capsys.readouterr().err == (
        "pytest-edgetpu: error: diff: '--output=x' is not a git revision; give one like "
        "origin/main, HEAD~1, a tag or a commit hash\n"
    )


def test_an_ascii_terminal_gets_a_non_ascii_test_id_escaped(tmp_path: Path) -> None:
    profile = Profile({"device": "cpu", "runtime": "litert"})
    write_entries(tmp_path / "baselines", profile, {"tests/test_ü.py::test_😀": entry(1.0)})
    done = subprocess.run(
        [sys.executable, "-m", "pytest_edgetpu", "show"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONIOENCODING": "ascii"},
        capture_output=True,
        text=True,
        encoding="ascii",
        errors="strict",
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "tests/test_\\xfc.py::test_\\U0001f600" in done.stdout


def test_a_model_file_named_without_edgetpu_says_how_to_benchmark_it(
    project: pytest.Pytester,
) -> None:
    result = project.runpytest("-rs", "models/tiny_dense.tflite")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED ?1? models/tiny_dense.tflite:1: models/tiny_dense.tflite is a benchmark only"
            " with --edgetpu: run pytest --edgetpu models/tiny_dense.tflite"
        ]
    )
