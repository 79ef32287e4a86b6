"""``pytest-edgetpu bisect``: the search and its decisions on recorded changes, and whole
bisections of real models in real git repositories."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from factories import default_sigint, git, needs_lfs

from pytest_edgetpu.core.stats import Shift
from pytest_edgetpu.judge.bisect import (
    Commit,
    Decision,
    Measured,
    Step,
    boundary,
    decide,
    pooled,
    search,
)
from pytest_edgetpu.judge.verdict import Status
from pytest_edgetpu.model.examples import write_conv_model

TEST = "test_model.py::test_latency"


def change(estimate: float, half_width: float = 0.01) -> Shift:
    return Shift(estimate, estimate - half_width, estimate + half_width, 0.95)


def history(count: int) -> list[Commit]:
    return [Commit(f"{index:040x}", f"commit {index}") for index in range(count)]


def measured(value: Shift | None, problem: str = "") -> Measured:
    if value is None:
        return Measured({}, {}, problem)
    return Measured({TEST: value}, {TEST: Status.PASS})


def run_search(
    commits: list[Commit], at: Callable[[int], Measured], tries: int = 2
) -> tuple[list[int], list[Step], list[Commit]]:
    """The search over ``commits`` with BAD at +15%; which commits it measured, its steps,
    and the candidates it ended with."""
    index = {commit: i for i, commit in enumerate(commits)}
    asked: list[int] = []

    def measure(commit: Commit) -> Measured:
        asked.append(index[commit])
        return at(index[commit])

    steps: list[Step] = []
    found = search(
        commits, measure, {TEST: boundary(0.15)}, tries, lambda step, left: steps.append(step)
    )
    return asked, steps, list(found.candidates)


def test_the_boundary_lies_halfway_on_the_ratio_scale() -> None:
    assert boundary(0.15) == pytest.approx(0.0724, abs=1e-4)
    assert (1 + boundary(1.0)) ** 2 == pytest.approx(2.0)


def test_a_commit_is_like_bad_or_good_only_when_its_interval_is_clear_of_the_boundary() -> None:
    limits = {TEST: 0.07}
    assert decide({TEST: change(0.15)}, limits)[0] is Decision.BAD
    assert decide({TEST: change(0.0)}, limits)[0] is Decision.GOOD
    assert decide({TEST: change(0.07, 0.03)}, limits)[0] is Decision.UNDECIDED
    untestable, reason = decide({}, limits)
    assert untestable is Decision.UNTESTABLE and TEST in reason


def test_one_benchmark_past_its_boundary_makes_the_commit_like_bad() -> None:
    limits = {TEST: 0.07, "other": 0.07}
    assert decide({TEST: change(0.15), "other": change(0.0)}, limits)[0] is Decision.BAD
    assert decide({TEST: change(0.0), "other": change(0.07, 0.05)}, limits)[0] is (
        Decision.UNDECIDED
    )


def test_runs_pool_into_a_narrower_interval_around_their_weighted_centre() -> None:
    wide, narrow = change(0.10, 0.06), change(0.04, 0.02)
    both = pooled([wide, narrow])
    assert both.high - both.low < narrow.high - narrow.low
    assert 0.04 < both.estimate < 0.06  # nearer the narrow run's centre
    assert pooled([narrow]) == narrow


@pytest.mark.parametrize("culprit", [0, 5, 8, 15])
def test_the_search_finds_a_step_in_log2_steps(culprit: int) -> None:
    commits = history(16)
    asked, _, candidates = run_search(
        commits, lambda i: measured(change(0.15 if i >= culprit else 0.0))
    )
    assert candidates == [commits[culprit]]
    assert len(asked) <= 4


def test_a_commit_that_cannot_run_is_skipped_and_its_neighbour_measured() -> None:
    commits = history(16)

    def at(i: int) -> Measured:
        if i == 7:
            return measured(None, "pytest exited 4: ERROR: file not found")
        return measured(change(0.15 if i >= 10 else 0.0))

    asked, steps, candidates = run_search(commits, at)
    assert candidates == [commits[10]]
    assert 7 in asked and asked.count(7) == 1  # never measured twice
    assert [s.decision for s in steps if s.commit == commits[7]] == [Decision.UNTESTABLE]


def test_an_undecided_commit_is_measured_again_then_skipped() -> None:
    commits = history(8)
    undecided = change(0.07, 0.05)

    def at(i: int) -> Measured:
        if i == 3:
            return measured(undecided)
        return measured(change(0.15 if i >= 4 else 0.0))

    asked, steps, candidates = run_search(commits, at, tries=3)
    assert asked.count(3) == 3
    (step,) = [s for s in steps if s.commit == commits[3]]
    assert step.decision is Decision.UNDECIDED and step.runs == 3
    # Left undecided, the first slower commit is one of 3 and 4; the search says so.
    assert candidates == [commits[3], commits[4]]


def test_a_second_run_can_decide_what_the_first_left_open() -> None:
    commits = history(4)
    runs = iter([change(0.07, 0.05), change(0.14, 0.02)])

    def at(i: int) -> Measured:
        return measured(next(runs)) if i == 1 else measured(change(0.15 if i >= 1 else 0.0))

    _, steps, candidates = run_search(commits, at)
    (step,) = [s for s in steps if s.commit == commits[1]]
    assert step.decision is Decision.BAD and step.runs == 2
    assert candidates == [commits[1]]


# --- whole bisections in real repositories --------------------------------------------------


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    # The same input, about four times the work: a step no noise hides.
    write_conv_model(folder / "fast.tflite", image_size=48, filters=8)
    write_conv_model(folder / "slow.tflite", image_size=48, filters=32)
    return folder


def make_history(
    root: Path,
    models: Path,
    count: int,
    slower_from: int,
    absent_at: tuple[int, ...] = (),
    lfs: bool = False,
) -> list[str]:
    """A repository whose model is ``fast`` until commit ``slower_from`` and ``slow`` from
    there; the model is missing at ``absent_at``; with ``lfs``, kept in Git LFS. Its commits,
    oldest first."""
    git(root, "init", "-q")
    if lfs:
        git(root, "lfs", "install", "--local")
        git(root, "lfs", "track", "*.tflite")
    (root / "models").mkdir()
    commits = []
    for index in range(count):
        model = root / "models" / "m.tflite"
        if index in absent_at:
            model.unlink(missing_ok=True)
        else:
            name = "slow" if index >= slower_from else "fast"
            shutil.copyfile(models / f"{name}.tflite", model)
        (root / "notes.txt").write_text(f"commit {index}\n")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", f"commit {index}")
        commits.append(git(root, "rev-parse", "HEAD").strip())
    return commits


def bisect(root: Path, *args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_edgetpu", "bisect", *args],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp)},
        timeout=300,
    )


def left_behind(root: Path, tmp: Path) -> list[str]:
    """What a bisection may leave: worktrees in git's records, scratch directories."""
    worktrees = git(root, "worktree", "list", "--porcelain").count("worktree ")
    return [f"{worktrees - 1} worktree(s)"] * (worktrees > 1) + [p.name for p in tmp.iterdir()]


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    folder = tmp_path / "tmp"
    folder.mkdir()
    return folder


def test_the_culprit_is_found_confirmed_and_the_users_checkout_untouched(
    tmp_path: Path, models: Path, scratch: Path
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    commits = make_history(root, models, 8, slower_from=5)
    (root / "notes.txt").write_text("work in progress\n")  # the user's uncommitted change
    git(root, "add", "notes.txt")
    before = git(root, "status", "--porcelain"), git(root, "rev-parse", "HEAD")
    report = tmp_path / "bisect.json"
    done = bisect(
        root,
        "--json",
        str(report),
        commits[0],
        "HEAD",
        "--",
        "--edgetpu",
        "models/m.tflite",
        tmp=scratch,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"bisect: 7 commit(s) after GOOD {commits[0][:7]}")
    assert any(line.startswith("BAD ") and "regressed" in line for line in lines)
    assert any(line.startswith("step 1/~3: ") for line in lines)
    assert lines[-1].startswith(f'first slower commit: {commits[5][:7]} "commit 5": +')
    assert lines[-1].endswith("against its parent")
    assert any(line.startswith(f"confirm {commits[5][:7]} against its parent") for line in lines)
    # At most log2(7) + 1 steps, then the confirmation.
    assert sum(line.startswith("step ") for line in lines) <= 4
    written = json.loads(report.read_text())
    assert written["culprit"]["commit"] == commits[5] and written["culprit"]["confirmed"]
    assert (git(root, "status", "--porcelain"), git(root, "rev-parse", "HEAD")) == before
    assert left_behind(root, scratch) == []


def test_a_commit_where_the_benchmark_cannot_run_is_skipped(
    tmp_path: Path, models: Path, scratch: Path
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    commits = make_history(root, models, 6, slower_from=4, absent_at=(2,))
    done = bisect(root, commits[0], "HEAD", "--", "--edgetpu", "models/m.tflite", tmp=scratch)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        f'step 1/~3: {commits[2][:7]} "commit 2": cannot test: pytest exited 4: ERROR: file or '
        "directory not found: models/m.tflite; 3 commit(s) left" in done.stdout
    )
    assert f"first slower commit: {commits[4][:7]}" in done.stdout
    assert left_behind(root, scratch) == []


@needs_lfs
def test_models_kept_in_git_lfs_are_bisected_as_their_real_files(
    tmp_path: Path, models: Path, scratch: Path
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    commits = make_history(root, models, 4, slower_from=2, lfs=True)
    assert git(root, "cat-file", "-p", "HEAD:models/m.tflite").startswith("version https://git-lfs")
    done = bisect(root, commits[0], "HEAD", "--", "--edgetpu", "models/m.tflite", tmp=scratch)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"first slower commit: {commits[2][:7]}" in done.stdout
    assert left_behind(root, scratch) == []


def test_no_regression_from_good_to_bad_is_nothing_to_bisect(
    tmp_path: Path, models: Path, scratch: Path
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    commits = make_history(root, models, 3, slower_from=99)
    done = bisect(root, commits[0], "HEAD", "--", "--edgetpu", "models/m.tflite", tmp=scratch)
    assert done.returncode == 1
    assert "no benchmark regressed from GOOD to BAD beyond 5.0%" in done.stdout
    assert "nothing to bisect" in done.stdout
    assert left_behind(root, scratch) == []


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["HEAD", "HEAD~2"], "is not an ancestor of BAD"),
        (["HEAD", "HEAD"], "GOOD and BAD are the same commit"),
        (["nosuch", "HEAD"], "bisect GOOD: 'nosuch' names no commit"),
        (["--tries", "0", "HEAD~1", "HEAD"], "--tries 0 must be at least 1"),
    ],
)
def test_bad_revisions_are_one_line(
    tmp_path: Path, models: Path, scratch: Path, arguments: list[str], words: str
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    make_history(root, models, 3, slower_from=2)
    done = bisect(root, *arguments, tmp=scratch)
    assert done.returncode == 2
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("pytest-edgetpu: error: ") and words in line
    assert left_behind(root, scratch) == []


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_bisection_leaves_nothing_behind(
    tmp_path: Path, models: Path, scratch: Path, how: signal.Signals
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    commits = make_history(root, models, 4, slower_from=2)
    command = ["bisect", commits[0], "HEAD", "--", "--edgetpu", "models/m.tflite"]
    running = subprocess.Popen(
        [sys.executable, "-m", "pytest_edgetpu", *command],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(scratch)},
        preexec_fn=default_sigint,
    )
    deadline = time.monotonic() + 60
    # Interrupted while a step's pytest runs in the worktree.
    while not list(scratch.glob("pytest-edgetpu-bisect-*/pytest-1.log")):
        assert time.monotonic() < deadline and running.poll() is None
        time.sleep(0.05)
    time.sleep(0.5)
    running.send_signal(how)
    out, err = running.communicate(timeout=60)
    assert running.returncode == 130, out + err
    assert err.strip().endswith("bisect: interrupted; its worktree and files are removed")
    assert "Traceback" not in err
    assert left_behind(root, scratch) == []


class RecordedSteps:
    """A test double of a worktree's pytest runs: each commit's change against GOOD (by its
    subject's index) is recorded; a real worktree is still made and removed around them."""

    def __init__(self, changes: dict[int, list[Shift]]) -> None:
        self.changes = changes
        self.asked: list[str] = []

    def measure(self, commit: Commit) -> Measured:
        self.asked.append(commit.subject)
        index = int(commit.subject.split()[-1])
        runs = self.changes[index]
        value = runs.pop(0) if len(runs) > 1 else runs[0]
        return Measured(
            {TEST: value}, {TEST: Status.REGRESSION if value.low > 0.05 else Status.PASS}
        )


def test_an_undecided_commit_is_measured_again_then_named_among_the_candidates(
    tmp_path: Path,
    models: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pytest_edgetpu.cli import main

    root = tmp_path / "repo"
    root.mkdir()
    commits = make_history(root, models, 5, slower_from=3)
    recorded = RecordedSteps(
        {
            1: [change(0.0)],
            2: [change(0.07, 0.04), change(0.08, 0.04)],  # at the boundary, twice
            3: [change(0.15)],
            4: [change(0.15)],
        }
    )
    monkeypatch.setattr(
        "pytest_edgetpu.worktree.Worktree.measure",
        lambda worktree, commit, against, threshold: recorded.measure(commit),
    )
    monkeypatch.chdir(root)
    status = main(["bisect", commits[0], "HEAD", "--", "--edgetpu", "models/m.tflite"])
    out = capsys.readouterr().out
    assert status == 1, out
    assert (
        f'{commits[2][:7]} "commit 2": +7.0% (95% CI +3.0..+11.0%)' not in out
    )  # the two runs are pooled, not the first shown
    assert (
        f'{commits[2][:7]} "commit 2": +7.5% (95% CI +4.7..+10.4%): undecided: its interval ' in out
    )
    assert "holds the boundary; " in out and "2 runs)" in out
    candidates = f'{commits[2][:7]} "commit 2", {commits[3][:7]} "commit 3"'
    last = out.rstrip().splitlines()[-1]
    assert last.startswith(
        f"no single commit found: the first slower one is one of 2: {candidates}"
    )
    assert recorded.asked.count("commit 2") == 2
    assert git(root, "worktree", "list").count("\n") == 1


class RecordedLevels:
    """A test double of a worktree's pytest runs from each commit's recorded level (by its
    subject's index; GOOD is commit 0 at 1.0): a run at a commit against another measures the
    ratio of their levels, within ±0.5%."""

    def __init__(self, commits: list[str], levels: list[float]) -> None:
        self.index = {sha: number for number, sha in enumerate(commits)}
        self.levels = levels

    def measure(self, commit: Commit, against: str) -> Measured:
        ratio = self.levels[self.index[commit.sha]] / self.levels[self.index[against]]
        value = change(ratio - 1, 0.005)
        return Measured(
            {TEST: value}, {TEST: Status.REGRESSION if value.low > 0.05 else Status.PASS}
        )


@pytest.mark.parametrize(
    ("levels", "last_line"),
    [
        # One step of +20% at commit 3.
        ([1.0, 1.0, 1.0, 1.2, 1.2, 1.2], 'first slower commit: {3} "commit 3": +20.0% '),
        # +10% at commit 2, +9% more at commit 4: the first is found, and said to be a part.
        (
            [1.0, 1.0, 1.1, 1.1, 1.2, 1.2],
            'first slower commit: {2} "commit 2": +10.0% (95% CI +9.5..+10.5%) against its '
            "parent; its step is smaller than the whole slowdown (test_model.py::test_latency "
            "+10.0% of BAD's +20.0%): the rest came in other commits (bisect again from {2} to "
            "BAD)",
        ),
    ],
    ids=["one-step", "two-steps"],
)
def test_the_culprit_is_measured_against_its_parent_and_a_part_of_the_slowdown_is_said(
    tmp_path: Path,
    models: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    levels: list[float],
    last_line: str,
) -> None:
    from pytest_edgetpu.cli import main

    root = tmp_path / "repo"
    root.mkdir()
    commits = make_history(root, models, len(levels), slower_from=99)
    recorded = RecordedLevels(commits, levels)
    monkeypatch.setattr(
        "pytest_edgetpu.worktree.Worktree.measure",
        lambda worktree, commit, against, threshold: recorded.measure(commit, against),
    )
    monkeypatch.chdir(root)
    status = main(["bisect", commits[0], "HEAD", "--", "--edgetpu", "models/m.tflite"])
    out = capsys.readouterr().out
    assert status == 0, out
    expected = last_line.format(*(sha[:7] for sha in commits))
    assert out.rstrip().splitlines()[-1].startswith(expected)
