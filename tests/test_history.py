"""A gate's history: series of runs, the steps found in them, and ``pytest-edgetpu history``
(judge room)."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest
from factories import PROFILE, PROFILE_FIELDS, result

from pytest_edgetpu.cli import main
from pytest_edgetpu.device.profile import Profile
from pytest_edgetpu.history import dataframe, load_history
from pytest_edgetpu.judge.history import Point, find_steps
from pytest_edgetpu.judge.results_file import ResultsFile
from pytest_edgetpu.judge.verdict import Status


def points(levels: list[float], statuses: dict[int, Status] | None = None) -> list[Point]:
    """Runs at ``levels`` (ms), each off by up to 1% as real runs are."""
    return [
        Point(
            f"r{i:02d}.json",
            f"2026-12-{1 + i // 24:02d}T{i % 24:02d}:00",
            level * (1 + 0.01 * math.sin(i * 2.3)),
            (statuses or {}).get(i, Status.PASS),
        )
        for i, level in enumerate(levels)
    ]


def test_a_step_is_found_where_it_is_and_a_flat_series_has_none() -> None:
    (step,) = find_steps(points([1.0] * 12 + [1.2] * 10), 0.05)
    assert step.index == 12
    assert 0.18 < step.change.estimate < 0.22 and step.change.low > 0
    assert step.before_ms == pytest.approx(1.0, rel=0.02)
    assert step.after_ms == pytest.approx(1.2, rel=0.02)
    assert find_steps(points([1.0] * 22), 0.05) == ()
    # Two steps: up, then back down.
    up, down = find_steps(points([1.0] * 10 + [1.3] * 10 + [1.0] * 10), 0.05)
    assert (up.index, down.index) == (10, 20)
    assert up.change.estimate > 0 > down.change.estimate
    # A change smaller than the threshold counts for is no step, however sure.
    assert find_steps(points([1.0] * 12 + [1.03] * 12), 0.05) == ()


def test_runs_the_gate_did_not_trust_make_no_step_on_their_own() -> None:
    busy = dict.fromkeys(range(15, 22), Status.BUSY)
    assert find_steps(points([1.0] * 15 + [1.4] * 7, busy), 0.05) == ()


def write_runs(tmp_path: Path, levels: list[float]) -> list[Path]:
    """One results file per level, written in a shuffled order: the history orders them."""
    paths = []
    for i, level in enumerate(levels):
        run = result("t.py::test_a", "PASS", level * (1 + 0.01 * math.sin(i * 2.3)))
        document = ResultsFile(
            (run,), {}, {PROFILE: Profile(PROFILE_FIELDS)}, created=f"2026-12-01T{i:02d}:00:00"
        )
        path = tmp_path / f"run-{(i * 7) % len(levels):02d}.json"
        path.write_text(document.dumps())
        paths.append(path)
    return sorted(paths)


def test_history_reports_the_step_and_fails_on_a_newest_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = write_runs(tmp_path, [1.0] * 14 + [1.25] * 10)
    assert main(["history", *map(str, runs), "--plot", str(tmp_path / "plots")]) == 1
    out = capsys.readouterr().out
    assert "| test | profile | first run after the step | change (95% CI) |" in out
    assert f"| `t.py::test_a` | `cpu-x86_64-amd-epyc-litert` | {tmp_path}/run-" in out
    assert "| +25." in out
    assert "newest step is a regression: t.py::test_a on cpu-x86_64-amd-epyc-litert: +25." in out
    assert len(list((tmp_path / "plots").glob("*.png"))) == 1
    frame = dataframe(load_history(runs))
    assert list(frame["step"]).index(True) == 14 and len(frame) == 24


def test_runs_are_ordered_by_the_commit_they_measured_and_a_step_names_its_commits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Twenty commits measured newest first (a backfill of nightly runs): by the time each
    # file was made, the +25% would be an improvement at the first runs; by commit time it is
    # a regression between commit 11 and commit 12.
    paths = []
    for commit in range(20):
        level = 1.25 if commit >= 12 else 1.0
        run = result("t.py::test_a", "PASS", level * (1 + 0.01 * math.sin(commit * 2.3)))
        environment = {
            "git_commit": f"{commit:02d}" + "c" * 38,
            "git_commit_time": f"2026-11-{1 + commit:02d}T12:00:00+00:00",
        }
        document = ResultsFile(
            (run,), environment, {PROFILE: Profile(PROFILE_FIELDS)},
            created=f"2026-12-01T{19 - commit:02d}:00:00",
        )  # fmt: skip
        path = tmp_path / f"commit-{commit:02d}.json"
        path.write_text(document.dumps())
        paths.append(str(path))
    assert main(["history", *paths]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path}/commit-11.json .. {tmp_path}/commit-12.json | `11ccccc..12ccccc` |" in out
    assert "| +25." in out


def test_a_gate_run_names_the_commit_it_measured(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="def test_a(tpu_bench):\n    tpu_bench(lambda: None)\n")
    for args in (
        ["init", "-q"],
        ["add", "."],
        ["-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "a"],
    ):
        subprocess.run(["git", *args], cwd=pytester.path, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=pytester.path, capture_output=True, text=True
    ).stdout.strip()
    out = pytester.path / "results.json"
    pytester.runpytest("--edgetpu", f"--edgetpu-json={out}")
    environment = json.loads(out.read_text())["environment"]
    assert environment["git_commit"] == head
    assert environment["git_commit_time"].endswith("+00:00")


def test_history_of_steady_runs_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", *map(str, write_runs(tmp_path, [1.0] * 20))]) == 0
    assert "- `t.py::test_a` on `cpu-x86_64-amd-epyc-litert`: no step in 20 run(s)" in (
        capsys.readouterr().out
    )


def test_history_of_a_file_that_is_no_results_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fifo: Path
) -> None:
    runs = write_runs(tmp_path, [1.0] * 6)
    damaged = json.loads(runs[0].read_text())
    damaged["results"][0]["instance_values_ms"] = [1e999]
    runs[0].write_text(json.dumps(damaged).replace("Infinity", "1e999"))
    for bad in (runs[0], fifo, tmp_path / "missing.json"):
        assert main(["history", str(bad), *map(str, runs[1:])]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"pytest-edgetpu: error: {bad}") and err.count("\n") == 1, err
    assert main(["history"]) == 2
    capsys.readouterr()
    # A --plot that names a file: one line, before any results file is read.
    assert main(["history", *map(str, runs[1:]), "--plot", str(runs[1])]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"pytest-edgetpu: error: --plot: {runs[1]} is a file, not a directory; choose a directory\n"
    )


def test_a_series_is_per_benchmark_and_profile(tmp_path: Path) -> None:
    runs = write_runs(tmp_path, [1.0] * 4)
    other = json.loads(runs[0].read_text())
    other["results"].append({**other["results"][0], "test_id": "t.py::test_b"})
    runs[0].write_text(json.dumps(other))
    series = load_history(runs)
    assert [(s.test_id, len(s.points)) for s in series] == [
        ("t.py::test_a", 4),
        ("t.py::test_b", 1),
    ]
