"""Relative mode (``--edgetpu-against=REV``): interleaved pairs, git revisions, the helper at a
revision, and whole runs with pytester on real models in real git repositories."""

from __future__ import annotations

import ast
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest
from doubles import USB3, FakeClock, FakeLoadDelegate, discovery_of
from factories import git, needs_lfs, settings

from pytest_edgetpu.cli import main
from pytest_edgetpu.core.errors import RevisionError
from pytest_edgetpu.core.stats import fastest, shift, summarize
from pytest_edgetpu.device.runtime import Runtime, load_runtime
from pytest_edgetpu.engine import processes as processes_module
from pytest_edgetpu.engine.against import Against, NotCompared
from pytest_edgetpu.engine.measurement import EarlyStop, InstanceSamples, MeasureSettings, Settled
from pytest_edgetpu.engine.processes import (
    FEWEST_PROCESS_PAIRS,
    MOST_PROCESS_PAIRS,
    measure_process_pairs,
)
from pytest_edgetpu.engine.session import DeviceSession
from pytest_edgetpu.engine.timing import (
    PAIR_BLOCKS,
    PAIRED_SPAN,
    SUSPECT_SPAN,
    LiveInstance,
    PairedMeasurement,
    StartSide,
    measure_pairs,
)
from pytest_edgetpu.judge.compare import bisect_exit, compare_against, settle_rule, suspect_rule
from pytest_edgetpu.judge.verdict import Current, Policy, Status
from pytest_edgetpu.model.examples import write_conv_model, write_example_models
from pytest_edgetpu.model.inspection import inspect_model
from pytest_edgetpu.relative import helper as helper_module
from pytest_edgetpu.relative.base import Relative
from pytest_edgetpu.relative.git import Revision, RevisionFiles
from pytest_edgetpu.relative.helper import RevisionTest
from pytest_edgetpu.run import BenchRun

# --- interleaved pairs ----------------------------------------------------------------------


@dataclass
class RecordingInstance:
    """A test double of one side's live instance: records each block it times; every call
    takes ``sample_ns``."""

    side: str
    order: list[str]
    sample_ns: int
    first_ns: int = 1
    warmup_ns: tuple[int, ...] = ()
    taken: list[int] = field(default_factory=list)

    def block(self, runs: int) -> None:
        self.order.append(self.side)
        self.taken.extend([self.sample_ns] * runs)

    def samples(self) -> InstanceSamples:
        return InstanceSamples(1, self.first_ns, self.warmup_ns, tuple(self.taken))


def recording_side(side: str, order: list[str], sample_ns: int) -> StartSide:
    def start() -> LiveInstance:
        order.append(f"start {side}")
        return RecordingInstance(side, order, sample_ns)

    return start


def test_pairs_take_turns_block_by_block_and_share_the_heads_sample_count() -> None:
    order: list[str] = []
    settings = MeasureSettings(warmup=0, min_runs=1, max_time_s=3600.0, max_instances=2)
    paired = measure_pairs(
        recording_side("head", order, 2_000), recording_side("base", order, 1_000), settings
    )
    turns = PAIR_BLOCKS // 2
    assert order == [
        *("start head", "start base", *("head", "base", "base", "head") * turns),
        *("start base", "start head", *("base", "head", "head", "base") * turns),
    ]
    assert paired.pairs == 2 and paired.stop_reason == "2 pairs measured"
    # The head's first instance chose the calls per instance (200 of a 1 ns first call).
    counts = {len(i.samples_ns) for i in (*paired.head.instances, *paired.base.instances)}
    assert counts == {PAIR_BLOCKS * math.ceil(200 / PAIR_BLOCKS)}
    assert paired.head.instance_values == (0.002,) * 2
    assert paired.base.instance_values == (0.001,) * 2


def test_pairs_stop_once_both_sides_are_tight_after_two_thirds_of_their_budget() -> None:
    order: list[str] = []
    clock = FakeClock(step_ns=1_000_000)
    settings = MeasureSettings(warmup=0, min_runs=1, max_time_s=0.03, max_instances=10**6)
    paired = measure_pairs(
        recording_side("head", order, 2_000),
        recording_side("base", order, 1_000),
        settings,
        clock,
    )
    # Both sides get twice max_time together; the early stop waits for two thirds of that.
    assert paired.stop_reason == "p50 of each side's fastest instances within ±1%"
    assert paired.elapsed_s >= 0.04 and paired.pairs >= settings.min_instances


def test_pairs_stop_once_the_comparison_with_the_base_side_is_settled() -> None:
    order: list[str] = []
    seen: list[tuple[tuple[float, ...], tuple[float, ...]]] = []

    def rule(base_ms: Sequence[float], head_ms: Sequence[float]) -> Settled | None:
        seen.append((tuple(base_ms), tuple(head_ms)))
        return Settled("settled: below", slower=False)

    settings = MeasureSettings(warmup=0, min_runs=1, max_time_s=3600.0, max_instances=10**6)
    paired = measure_pairs(
        recording_side("head", order, 2_000),
        recording_side("base", order, 1_000),
        settings,
        FakeClock(step_ns=1_000_000),
        early=EarlyStop(rule),
    )
    assert paired.stop_reason == "settled: below" and paired.pairs == settings.min_instances
    # The rule compares the head's values with the base side's, measured beside them.
    assert seen == [((0.001,) * settings.min_instances, (0.002,) * settings.min_instances)]


class ShortAnsweringHelper:
    """A test double of the helper at the revision: starts an instance, then answers every
    block with one sample fewer than asked for."""

    def __init__(self) -> None:
        self.closed = False
        self.commands: list[dict[str, object]] = []

    def measure(
        self, test: object, command: dict[str, object], *, reference: bool = False
    ) -> InstanceSamples:
        self.commands.append(command)
        runs = command.get("block")
        taken = (1_000,) * (int(runs) - 1) if isinstance(runs, int) else ()
        return InstanceSamples(5, 2, (1, 1), taken)

    def close(self) -> None:
        self.closed = True


def test_a_helper_that_answers_a_block_short_stops_the_pair_with_one_line() -> None:
    helper = ShortAnsweringHelper()
    test = RevisionTest("test_a.py::test_model", helper)
    instance = test.side(1, MeasureSettings(warmup=2))()
    assert instance.first_ns == 2 and instance.warmup_ns == (1, 1)
    with pytest.raises(RevisionError, match="answered 4 calls with 3 samples"):
        instance.block(4)
    assert helper.closed
    assert helper.commands[0]["call"] == 1 and helper.commands[1] == {"block": 4}


# --- the verdict against a revision ---------------------------------------------------------


def current(values: tuple[float, ...], sha: str | None = "b" * 64) -> Current:
    return Current("p50", values[0], values, 1, 1, "cpu (x86_64, LiteRT 2.3.0, 1 thread)", sha)


def measured_at(values: tuple[float, ...], sha: str | None = "b" * 64) -> Against:
    samples = [int(v * 1e6) for v in values]
    return Against(
        "origin/main (a1b2c3d)",
        "origin/main:models/a.tflite",
        summary=summarize(samples),
        instance_values_ms=values,
        model_sha256=sha,
    )


BASE = tuple(1.0 + 0.001 * i for i in range(12))


def test_pairs_measure_past_their_budget_only_while_a_slowdown_is_suspected() -> None:
    settings = MeasureSettings(warmup=0, min_runs=1, max_time_s=0.1, max_instances=10**6)
    budget_s = settings.max_time_s * PAIRED_SPAN

    def pairs(suspected: Callable[[int], bool]) -> PairedMeasurement:
        order: list[str] = []
        return measure_pairs(
            recording_side("head", order, 2_000),
            recording_side("base", order, 1_000),
            settings,
            FakeClock(step_ns=1_000_000),
            early=EarlyStop(lambda b, h: None, suspects=lambda b, h: suspected(len(h))),
        )

    plain = pairs(lambda count: False)
    assert plain.stop_reason == "2 x max_time 0.1 s reached"
    assert budget_s <= plain.elapsed_s < budget_s + 0.01
    suspected = pairs(lambda count: True)
    assert suspected.stop_reason == (
        "4 x max_time 0.1 s reached, a suspected slowdown still undecided"
    )
    assert budget_s * SUSPECT_SPAN <= suspected.elapsed_s < budget_s * SUSPECT_SPAN + 0.01
    # Measuring on ends as soon as the comparison no longer suspects a slowdown.
    cleared = pairs(lambda count: count < plain.pairs + 5)
    assert cleared.pairs == plain.pairs + 5
    assert cleared.stop_reason == "2 x max_time 0.1 s reached"


# Recorded on this project's 2-core VM (benchmarks/results/process_offsets.json, quiet): the
# change unchanged code showed between pairs of fresh processes, for a dict comprehension, whose
# processes differ, and for numpy's 64x64 product, whose processes do not. Inside each pair of
# processes, the pairs of instances agreed to within a few tenths of a percent.
OFFSET_PROCESS_PAIRS = (0.06, -0.02, 0.02, -0.00, -0.00, 0.01, -0.01, -0.01, 0.03, 0.01)
STEADY_PROCESS_PAIRS = (-0.001, 0.001, 0.002, 0.001, 0.000, 0.001, 0.000, 0.001, -0.002, 0.000)


def process_pairs_of(
    changes: Sequence[float], order: list[str]
) -> Callable[[int], tuple[StartSide, StartSide]]:
    """Process pair ``i`` of unchanged code whose head process reads ``changes[i]`` slower."""

    def pair(pairs: range) -> tuple[StartSide, StartSide]:
        index = pairs.start
        order.append(f"process pair {index}")
        head_ns = round(10_000 * (1 + changes[index % len(changes)]))
        return recording_side("head", order, head_ns), recording_side("base", order, 10_000)

    return pair


def test_a_slow_call_takes_one_pair_of_instances_per_pair_of_processes_and_says_it_overran() -> (
    None
):
    """A call of 300 ms, max_time 1 s: each pair of processes measures one pair of instances
    (the process is the unit counted), not three, and the stop reason says why the
    measurement still ran past its budget."""
    clock = FakeClock(step_ns=1)
    order: list[str] = []

    def slow_side(side: str) -> StartSide:
        def start() -> LiveInstance:
            order.append(f"start {side}")
            clock.now += 4 * 300_000_000  # loaded, called once, warmed up 3 times
            instance = RecordingInstance(side, order, 300_000_000, 300_000_000, (300_000_000,) * 3)
            timed = instance.block

            def block(runs: int) -> None:
                clock.now += runs * 300_000_000
                timed(runs)

            instance.block = block  # type: ignore[method-assign]
            return instance

        return start

    settings = MeasureSettings(warmup=3, max_time_s=1.0)
    paired = measure_process_pairs(
        lambda _: (slow_side("head"), slow_side("base")), settings, clock
    )
    assert paired.pairs == 3 and order.count("start head") == 3
    assert paired.stop_reason.startswith(
        "over max_time 1 s: 18.0 s measuring (2 x max_time is the pairs' budget), as one call "
        "takes about 300 ms and the fewest pairs (3, "
    )


def test_a_pair_of_processes_measures_the_pairs_of_instances_that_fit_its_share() -> None:
    # max_time 1.5 s: a pair of processes has 2 x 375 ms. A pair of instances of a slow call
    # (200 ms an instance, loaded, warmed up and timed) takes 400 ms, and a second would end
    # past the share: each pair of processes measures one.
    clock = FakeClock(step_ns=1)

    def side() -> LiveInstance:
        clock.now += 200_000_000
        return RecordingInstance("side", [], 1_000_000)

    settings = MeasureSettings(warmup=0, min_runs=1, max_time_s=1.5)
    paired = measure_process_pairs(lambda _: (side, side), settings, clock)
    assert paired.pairs >= FEWEST_PROCESS_PAIRS
    assert len(paired.head.instances) == len(paired.base.instances) == paired.pairs


@pytest.mark.parametrize(
    ("cores", "past_the_fewest"),
    [(4, [range(4, 6), range(5, 6)]), (2, [range(4, 5), range(5, 6)])],
)
def test_pairs_of_processes_past_the_fewest_start_as_many_as_the_budget_has_room_for(
    cores: int, past_the_fewest: list[range], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each instance takes 100 ms to start, so a pair of processes measures for 0.6 s (three
    # pairs of instances) and the fewest take 2.4 s of the 3.6 s budget: room for two more,
    # started together where the cores can start both at once, where starting the rest up to
    # the most would start two for nothing; on 2 cores, one pair at a time.
    monkeypatch.setattr(processes_module, "usable_cores", lambda: list(range(cores)))
    clock = FakeClock(step_ns=1)
    asked: list[range] = []

    def side(sample_ns: int) -> StartSide:
        def start() -> LiveInstance:
            clock.now += 100_000_000
            return RecordingInstance("side", [], sample_ns)

        return start

    def process_pair(pairs: range) -> tuple[StartSide, StartSide]:
        asked.append(pairs)
        change = OFFSET_PROCESS_PAIRS[pairs.start]
        return side(round(10_000 * (1 + change))), side(10_000)

    early = EarlyStop(settle_rule(Policy(0.05), paired=True))
    settings = MeasureSettings(warmup=0, min_runs=1, max_time_s=1.8)
    paired = measure_process_pairs(process_pair, settings, clock, early)
    assert paired.pairs == 6 and paired.stop_reason.startswith("2 x max_time 1.8 s reached")
    assert asked == [range(4), range(1, 4), range(2, 4), range(3, 4), *past_the_fewest]


@pytest.mark.parametrize(
    ("changes", "pairs_of_processes"),
    [(OFFSET_PROCESS_PAIRS, 7), (STEADY_PROCESS_PAIRS, FEWEST_PROCESS_PAIRS)],
    ids=["processes differ", "processes agree"],
)
def test_processes_are_added_only_while_their_offsets_leave_the_verdict_open(
    changes: Sequence[float], pairs_of_processes: int
) -> None:
    # Each pair of instances inside one pair of processes agrees exactly, as a verdict computed
    # inside one pair of processes would see it: only the processes' offsets vary.
    order: list[str] = []
    policy = Policy(0.05)
    settings = MeasureSettings(warmup=0, min_runs=1, max_time_s=0.1, max_instances=12)
    early = EarlyStop(settle_rule(policy, paired=True), suspects=suspect_rule(policy, paired=True))
    paired = measure_process_pairs(
        process_pairs_of(changes, order), settings, FakeClock(step_ns=1_000_000), early
    )
    # Where processes differ, pairs of them are added (up to MOST_PROCESS_PAIRS) until the
    # interval across them is settled.
    assert paired.processes and paired.pairs == pairs_of_processes, paired.stop_reason
    assert FEWEST_PROCESS_PAIRS <= pairs_of_processes <= MOST_PROCESS_PAIRS
    assert order.count("start head") == order.count("start base") >= 3 * pairs_of_processes
    verdict = compare_against(
        Against(
            "HEAD (a1b2c3d)", "HEAD:t.py::test_a", paired.base.summary,
            paired.base.instance_values, in_processes=True,
        ),
        current(paired.head.instance_values),
        policy,
    )  # fmt: skip
    # The offset of the first pair of processes (+6%) alone would be a confirmed REGRESSION
    # (its instances agree); over the pairs of processes it is one of many.
    assert verdict.status is Status.PASS, verdict.message
    assert verdict.change is not None and verdict.change.low < 0 < verdict.change.high
    assert (
        f"measured now, {pairs_of_processes} pairs of processes; compared: the median p5 of "
        "each process's instances, pair of processes by pair" in verdict.message
    )


def test_a_slowdown_measured_beside_the_revision_is_a_regression_that_names_it() -> None:
    verdict = compare_against(
        measured_at(BASE), current(tuple(v * 1.2 for v in BASE)), Policy(0.05)
    )
    assert verdict.status is Status.REGRESSION
    assert verdict.change is not None and verdict.change.estimate == pytest.approx(0.2, abs=0.01)
    # The medians of each side's pair values: 1.0055 and 1.2066.
    assert verdict.message.startswith(
        "REGRESSION p50 (compared p5) 1.01 ms -> 1.21 ms (+20.0%, 95% CI "
    ), verdict.message
    assert (
        "on cpu (x86_64, LiteRT 2.3.0, 1 thread) against origin/main (a1b2c3d), measured now, "
        "12 interleaved pairs; compared: the p5 of each side, pair by pair (medians shown)"
    ) in verdict.message
    assert str(verdict.baseline_path) == "origin/main:models/a.tflite"


def test_pairs_are_compared_pair_by_pair_so_the_hosts_drift_cancels() -> None:
    # The host's speed moved by a third from pair to pair; each pair's head took 6% longer
    # than its base, give or take 0.2%.
    drift = (1.0, 1.3, 1.05, 1.25, 1.1, 1.33, 1.0, 1.2, 1.15, 1.3, 1.02, 1.28)
    base = tuple(drift)
    head = tuple(v * (1.06 + 0.002 * (-1) ** i) for i, v in enumerate(drift))
    verdict = compare_against(measured_at(base), current(head), Policy(0.05))
    assert verdict.status is Status.REGRESSION, verdict.message
    assert verdict.change is not None
    assert 0.057 < verdict.change.low <= verdict.change.estimate <= verdict.change.high < 0.063
    # Judged as two unpaired sets, the same values give an interval ten times wider.
    unpaired = shift(fastest(base), fastest(head))
    paired_width = verdict.change.high - verdict.change.low
    assert unpaired.high - unpaired.low > 10 * paired_width


def test_an_unchanged_benchmark_passes_and_a_swapped_model_is_flagged() -> None:
    assert compare_against(measured_at(BASE), current(BASE), Policy(0.05)).status is Status.PASS
    swapped = compare_against(measured_at(BASE, "a" * 64), current(BASE), Policy(0.05))
    assert swapped.status is Status.MODEL_CHANGED
    assert swapped.reason == "model changed since origin/main (a1b2c3d): aaaaaaaa -> bbbbbbbb"


def test_nothing_measured_at_the_revision_is_no_baseline_with_the_reason() -> None:
    missing = NotCompared("HEAD (a1b2c3d)", "HEAD:t.py::test_x", "new since HEAD (a1b2c3d)")
    verdict = compare_against(missing, current(BASE), Policy(0.05))
    assert verdict.status is Status.NO_BASELINE and not verdict.fails(strict=False)
    assert verdict.fails(strict=True)
    assert verdict.message == (
        "NO_BASELINE p50 1.00 ms on cpu (x86_64, LiteRT 2.3.0, 1 thread): new since HEAD (a1b2c3d)"
    )


def test_a_busy_host_is_no_excuse_in_relative_mode() -> None:
    """Both sides waited alike; the stored-baseline BUSY rule does not apply."""
    slow = current(tuple(v * 1.2 for v in BASE))
    busy = Current(**{**slow.__dict__, "wait_share": 0.5})
    assert compare_against(measured_at(BASE), busy, Policy(0.05)).status is Status.REGRESSION


# --- git revisions --------------------------------------------------------------------------


def commit_all(repo: Path, message: str = "a commit") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    write_example_models(root / "models")
    commit_all(root, "models")
    return root


def test_a_revision_resolves_to_its_commit_and_says_so_in_words(repo: Path) -> None:
    revision = Revision.resolve("HEAD", repo / "models", "--edgetpu-against")
    assert revision.commit == git(repo, "rev-parse", "HEAD").strip()
    assert revision.words == f"HEAD ({revision.commit[:7]})"
    assert revision.toplevel.resolve() == repo.resolve()
    # A hash is not said twice ("62b8d8d (62b8d8d)").
    for given in (revision.commit, revision.commit[:10].upper(), revision.commit[:7]):
        named = Revision.resolve(given, repo / "models", "--edgetpu-against")
        assert named.words == revision.commit[:7]


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("nosuch", "'nosuch' names no commit in "),
        ("--output=x", "'--output=x' is not a git revision; give one like origin/main"),
        ("a\nb", "'a\\nb' is not a git revision"),
    ],
    ids=["unknown", "option-like", "control-character"],
)
def test_a_bad_revision_is_one_line_naming_the_option(repo: Path, name: str, words: str) -> None:
    with pytest.raises(RevisionError) as info:
        Revision.resolve(name, repo, "--edgetpu-against")
    assert str(info.value).startswith(f"--edgetpu-against: {words}")


def test_a_revision_naming_another_kind_of_object_says_which(repo: Path) -> None:
    blob = git(repo, "rev-parse", "HEAD:models/tiny_conv.tflite").strip()
    for name, kind in (("HEAD^{tree}", "a tree"), (blob, "a blob")):
        with pytest.raises(RevisionError) as info:
            Revision.resolve(name, repo, "--edgetpu-against")
        assert str(info.value).startswith(f"--edgetpu-against: {name!r} names {kind} (")
        assert str(info.value).endswith("not a commit; give a branch, tag or commit hash")
    # A search of the commit messages names a commit, as git reads it.
    assert Revision.resolve(":/models", repo, "x").commit == git(repo, "rev-parse", "HEAD").strip()


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to give the repository away"
)
def test_a_repository_of_another_user_says_why_git_refuses_it(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)  # no safe.directory of this host's
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    subprocess.run(["chown", "-R", "65534:65534", str(repo)], check=True)
    with pytest.raises(RevisionError) as info:
        Revision.resolve("HEAD", repo, "--edgetpu-against")
    assert "git refuses the repository holding" in str(info.value)
    assert "safe.directory" in str(info.value)


def test_a_link_at_the_models_path_at_the_revision_is_not_a_model(
    pytester: pytest.Pytester, short_ini: str
) -> None:
    root = pytester.path
    pytester.makeini(short_ini)
    git(root, "init", "-q")
    write_example_models(root / "models")
    (root / "models" / "linked.tflite").symlink_to("tiny_conv.tflite")
    commit_all(root, "a link")
    (root / "models" / "linked.tflite").unlink()
    shutil.copyfile(root / "models" / "tiny_conv.tflite", root / "models" / "linked.tflite")
    result = pytester.runpytest("--edgetpu", "--edgetpu-against=HEAD", "models/linked.tflite")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*HEAD:models/linked.tflite is a symbolic link there, not a model file (a revision's "
            "links and submodules are not followed); not compared*"
        ]
    )
    result.stdout.no_fnmatch_line("*new since*")


def test_a_shallow_clone_says_to_fetch_the_history(repo: Path, tmp_path: Path) -> None:
    (repo / "second.txt").write_text("2\n")
    commit_all(repo, "second")
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", repo.as_uri(), str(shallow)],
        check=True,
        capture_output=True,
    )
    with pytest.raises(RevisionError, match=r"shallow; fetch the history \(actions/checkout: "):
        Revision.resolve("HEAD~1", shallow, "--edgetpu-against")


def test_outside_a_repository_is_one_line(tmp_path: Path) -> None:
    outside = tmp_path / "plain"
    outside.mkdir()
    with pytest.raises(RevisionError, match="is not inside a git repository"):
        Revision.resolve("HEAD", outside, "ini edgetpu_against in pytest.ini")


def test_files_at_a_revision(repo: Path) -> None:
    conv = repo / "models" / "tiny_conv.tflite"
    committed = conv.read_bytes()
    conv.write_bytes(b"changed since")
    (repo / "models" / "link.tflite").symlink_to("tiny_conv.tflite")
    (repo / "new.tflite").write_bytes(b"new")
    (repo / "models" / "[t]*.tflite").write_bytes(b"a name git could read as a pattern")
    commit_all(repo, "a symlink, a new file")
    files = RevisionFiles(Revision.resolve("HEAD~1", repo, "--edgetpu-against"), 10**8)
    try:
        written = files.file(conv)
        assert written is not None and written.read_bytes() == committed
        assert written.name == "tiny_conv.tflite"
        assert written.parent.parent.stat().st_mode & 0o777 == 0o700
        assert files.file(repo / "new.tflite") is None  # new since the revision
        link = repo / "models" / "link.tflite"
        link.unlink()
        link.write_bytes(committed)  # a regular file now, a symlink at the revision
        at_head = RevisionFiles(Revision.resolve("HEAD", repo, "--edgetpu-against"), 10**8)
        assert at_head.file(link) is None  # a symlink at the revision is no model
        pattern = at_head.file(repo / "models" / "[t]*.tflite")
        assert pattern is not None and pattern.read_bytes().startswith(b"a name git")
        assert files.file(repo.parent / "elsewhere.tflite") is None  # outside the repository
        tiny = RevisionFiles(files.revision, 1000)
        with pytest.raises(RevisionError, match="bytes is more than a model may hold"):
            tiny.file(conv)
        checkout = files.checkout()
        assert (checkout / "models" / "tiny_conv.tflite").read_bytes() == committed
        assert not (checkout / "new.tflite").exists()
        at_head.close()
    finally:
        files.close()
    assert not written.exists()


# --- an Edge TPU: one process, one delegate --------------------------------------------------


class DelegateIgnoringInterpreter:
    """Test double for an interpreter built with the Edge TPU delegate: real LiteRT runs the
    model on the CPU, and the delegates it was given are recorded, not used (this machine has
    no Edge TPU)."""

    delegates_seen: ClassVar[list[object]] = []

    def __new__(cls, **kwargs: object) -> object:  # type: ignore[misc]
        cls.delegates_seen.extend(kwargs.pop("experimental_delegates") or [])  # type: ignore[call-overload]
        interpreter_class = load_runtime().interpreter_class
        return interpreter_class(**kwargs)


def test_on_an_edge_tpu_both_sides_share_the_one_delegate_and_no_helper_starts(
    repo: Path,
) -> None:
    opened: list[str] = []
    load_delegate = FakeLoadDelegate(on_open=opened.append)
    runtime = Runtime("litert", "2.3.0", DelegateIgnoringInterpreter, load_delegate)
    run = BenchRun(
        settings(repo, device="usb:0"),
        repo,
        discover_devices=lambda: discovery_of(USB3),
        runtime=runtime,
    )
    relative = Relative.resolve("HEAD", repo, "--edgetpu-against")
    session: DeviceSession = run.station.session
    try:
        info = inspect_model(repo / "models" / "tiny_conv.tflite")
        base = relative.model(session, info, "t.py::test_model", 1)
        assert not isinstance(base, NotCompared)
        quick = MeasureSettings(warmup=1, min_runs=1, max_time_s=0.05, min_instances=2)
        result = session.bench_model(info, quick, base)
        assert isinstance(result.against, Against) and result.against.pairs >= 2
        assert opened == ["usb:0"]  # one open, in this process, for both sides
        assert DelegateIgnoringInterpreter.delegates_seen
        callable_base = relative.test_call(session, "t.py::test_callable", 1)
        assert isinstance(callable_base, NotCompared)
        assert "an Edge TPU is open in one process at a time (usb:0 is this one's)" in (
            callable_base.why
        )
    finally:
        relative.close()
        run.close()


# --- whole runs -----------------------------------------------------------------------------

RELATIVE_INI = """
[pytest]
edgetpu_max_time = 0.2
edgetpu_min_runs = 20
filterwarnings = ignore::pytest.PytestAssertRewriteWarning
"""

SUITE_AT_BOTH = """
import pytest


def work(n):
    total = 0
    for i in range(n):
        total += i * i
    return total


@pytest.mark.tpu_bench(model="models/model.tflite")
def test_model(tpu_bench):
    tpu_bench()


# How often an unchanged test fails is for benchmarks/ to measure; here a wide threshold keeps a
# noisy host from turning the plumbing check into a coin flip.
@pytest.mark.tpu_bench(threshold="50%")
def test_callable_unchanged(tpu_bench):
    tpu_bench(lambda: work(3000))
"""

TESTS_AT_BASE = (
    SUITE_AT_BOTH
    + """

def test_callable_slower(tpu_bench):
    tpu_bench(lambda: work(3000))


def test_fails_at_base(tpu_bench):
    assert False, "broken at the base"
"""
)

TESTS_AT_HEAD = (
    SUITE_AT_BOTH
    + """

def test_callable_slower(tpu_bench):
    tpu_bench(lambda: work(9000))


def test_fails_at_base(tpu_bench):
    tpu_bench(lambda: work(3000))


def test_new(tpu_bench):
    tpu_bench(lambda: work(3000))
"""
)


@pytest.fixture
def changed(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project in git: the base commit benchmarks the small dense model, and the working
    tree swaps in a conv model of four times the example conv model's pixels (2.6x the dense
    model's latency on an Intel Xeon, where the example conv model alone is the faster one),
    changes the tests (TESTS_AT_HEAD) and adds a test file (test_fresh.py)."""
    pytester.makeini(RELATIVE_INI)
    write_example_models(pytester.path / "generated")
    models = pytester.path / "models"
    models.mkdir()
    (models / "model.tflite").write_bytes(
        (pytester.path / "generated" / "tiny_dense.tflite").read_bytes()
    )
    pytester.makepyfile(test_suite=TESTS_AT_BASE)
    git(pytester.path, "init", "-q")
    commit_all(pytester.path, "base")
    write_conv_model(models / "model.tflite", image_size=128, filters=32)
    pytester.makepyfile(test_suite=TESTS_AT_HEAD)
    pytester.makepyfile(test_fresh="def test_fresh(tpu_bench):\n    tpu_bench(lambda: None)\n")
    return pytester


def statuses(path: Path) -> dict[str, dict[str, object]]:
    results = json.loads(path.read_text(encoding="utf-8"))["results"]
    return {r["test_id"].split("::")[1]: r for r in results}


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_every_kind_of_benchmark_is_gated_against_the_revision(
    changed: pytest.Pytester, workers: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = changed.path / "results.json"
    result = changed.runpytest(
        "--edgetpu-against=HEAD",
        f"--edgetpu-json={out}",
        "--junitxml=junit.xml",
        "--edgetpu-report=report.md",
        "-p",
        "no:randomly",
        *workers,
    )
    head = git(changed.path, "rev-parse", "--short=7", "HEAD").strip()
    records = statuses(out)
    verdicts = {name: r["verdict"]["status"] for name, r in records.items()}
    assert verdicts["test_model"] == "REGRESSION", result.stdout.str()
    assert verdicts["test_callable_slower"] == "REGRESSION", result.stdout.str()
    assert verdicts["test_callable_unchanged"] in ("PASS", "UNSTABLE", "IMPROVED")
    assert verdicts["test_fails_at_base"] == "NO_BASELINE"
    assert verdicts["test_new"] == "NO_BASELINE"
    assert verdicts["test_fresh"] == "NO_BASELINE"
    result.assert_outcomes(failed=2, passed=4)
    model = records["test_model"]
    assert model["against"]["revision"] == f"HEAD ({head})"
    assert model["against"]["where"] == "HEAD:models/model.tflite"
    assert len(model["against"]["instance_values_ms"]) == len(model["instance_values_ms"])
    assert model["verdict"]["model_changed"] is True
    # Memory too is compared with the file at the revision (the conv model's arena is smaller).
    assert set(model["against"]["memory_kib"]) == set(model["memory"]["kib"])
    assert model["memory_verdict"] == {"regressed": [], "message": ""}
    unchanged = records["test_callable_unchanged"]
    assert unchanged["against"]["where"] == "HEAD:test_suite.py::test_callable_unchanged"
    assert unchanged["verdict"]["pairs"] == len(unchanged["instance_values_ms"]) >= 3
    assert records["test_fails_at_base"]["verdict"]["reason"] == (
        f"the test fails at HEAD ({head}) (AssertionError: broken at the base)"
    )
    assert records["test_new"]["verdict"]["reason"] == (
        f"new since HEAD ({head}): no test test_suite.py::test_new there"
    )
    assert records["test_fresh"]["verdict"]["reason"] == (
        f"new since HEAD ({head}): no test_fresh.py there"
    )
    result.stdout.re_match_lines(
        [
            r"test_suite.py::test_model: REGRESSION p50 \(compared p5\) "
            rf"\S+ ms -> \S+ ms \(\+\d+\.\d%, 95% CI "
            rf".*\) on cpu \(.*\) against HEAD \({head}\), measured now, \d+ interleaved pairs; "
        ]
    )
    junit = (changed.path / "junit.xml").read_text(encoding="utf-8")
    assert f'name="edgetpu_against" value="HEAD ({head})"' in junit
    assert 'name="edgetpu_against_p50_ms"' in junit
    report = (changed.path / "report.md").read_text(encoding="utf-8")
    assert f"Relative mode: against `HEAD ({head})`, measured in this run" in report
    # Without pytest, a relative run's results are judged against the side measured beside them.
    capsys.readouterr()
    assert main(["compare", str(out)]) == 1
    compared = capsys.readouterr().out
    assert "test_suite.py::test_model: REGRESSION p50 (compared p5) " in compared
    assert f"against HEAD ({head}), measured now, " in compared


CORES_RECORDED = """
import os
from pathlib import Path


def test_cores(tpu_bench):
    def work():
        Path({folder!r}, "{side}.cores").write_text(repr(sorted(os.sched_getaffinity(0))))

    tpu_bench(work)
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="this OS cannot pin threads")
def test_both_sides_of_the_pairs_measure_on_one_core_and_the_run_is_unpinned_after(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(RELATIVE_INI)
    pytester.makepyfile(test_cores=CORES_RECORDED.format(folder=str(pytester.path), side="base"))
    git(pytester.path, "init", "-q")
    commit_all(pytester.path)
    pytester.makepyfile(test_cores=CORES_RECORDED.format(folder=str(pytester.path), side="head"))
    before = os.sched_getaffinity(0)
    # In this process, so that its affinity after is the run's. The two sides write different
    # files: where they ran is what is compared here, not how fast.
    result = pytester.runpytest("--edgetpu-against=HEAD", "--edgetpu-threshold=500%")
    result.assert_outcomes(passed=1)
    head, base = ((pytester.path / f"{side}.cores").read_text() for side in ("head", "base"))
    assert head == base
    assert len(ast.literal_eval(head)) == 1
    assert os.sched_getaffinity(0) == before


HELPER_AT_BASE = """
import os
from pathlib import Path

import pytest


def ran_in(name):
    with open(Path({folder!r}, name), "a") as pids:
        print(os.getpid(), file=pids)


def test_first(tpu_bench):
    ran_in("first")
    tpu_bench(lambda: None)


def test_second(tpu_bench):
    ran_in("second")
    tpu_bench(lambda: None)


@pytest.mark.skip(reason="not at the base")
def test_skipped(tpu_bench):
    tpu_bench(lambda: None)


def test_ends_the_process(tpu_bench):
    os._exit(3)


def test_after_that(tpu_bench):
    ran_in("after")
    tpu_bench(lambda: None)
"""

HELPER_AT_HEAD = "".join(
    f"def test_{name}(tpu_bench):\n    tpu_bench(lambda: None)\n\n\n"
    for name in ("first", "second", "skipped", "ends_the_process", "after_that")
)


def test_one_helper_serves_the_tests_of_a_file_and_a_new_one_follows_a_dead_one(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(RELATIVE_INI)
    pytester.makepyfile(test_file=HELPER_AT_BASE.format(folder=str(pytester.path)))
    git(pytester.path, "init", "-q")
    commit_all(pytester.path)
    pytester.makepyfile(test_file=HELPER_AT_HEAD)
    out = pytester.path / "results.json"
    result = pytester.runpytest(
        "--edgetpu-against=HEAD", "--edgetpu-threshold=500%", f"--edgetpu-json={out}",
        "-p", "no:randomly",
    )  # fmt: skip
    result.assert_outcomes(passed=5)
    head = git(pytester.path, "rev-parse", "--short=7", "HEAD").strip()
    records = statuses(out)
    compared = ("first", "second", "after_that")
    verdicts = {name: records[f"test_{name}"]["verdict"] for name in compared}
    assert {name: v["status"] for name, v in verdicts.items()} == dict.fromkeys(compared, "PASS"), (
        verdicts
    )
    assert records["test_skipped"]["verdict"]["reason"] == (
        f"the test is skipped at HEAD ({head}) (not at the base)"
    )
    assert records["test_ends_the_process"]["verdict"]["reason"].startswith(
        f"the test did not run at HEAD ({head}): "
    )
    # The same helpers (the revision's) ran both tests; the one that ended was replaced. A test
    # may take one pair of processes more than the one before it (its pairs are added until its
    # verdict is settled), so only most of the second test's helpers ran the first.
    first, second, after = (
        set((pytester.path / name).read_text().split()) for name in ("first", "second", "after")
    )
    assert len(first) >= 3 and len(second & first) >= 3 and after - first


def test_a_model_whose_arena_grew_since_the_revision_fails_on_memory(
    pytester: pytest.Pytester,
) -> None:
    # The base commit times the small conv model; the working tree swaps in the dense one, whose
    # arena is five times the size. Which of the two invokes faster depends on the CPU, so a
    # wide threshold keeps latency out of the verdict: memory fails on its own.
    pytester.makeini(RELATIVE_INI)
    generated = pytester.path / "generated"
    write_example_models(generated)
    model = pytester.path / "models" / "model.tflite"
    model.parent.mkdir()
    model.write_bytes((generated / "tiny_conv.tflite").read_bytes())
    pytester.makepyfile(
        test_arena="import pytest\n\n\n"
        "@pytest.mark.tpu_bench(model='models/model.tflite', threshold='500%')\n"
        "def test_arena(tpu_bench):\n    tpu_bench()\n"
    )
    git(pytester.path, "init", "-q")
    commit_all(pytester.path, "base")
    model.write_bytes((generated / "tiny_dense.tflite").read_bytes())
    outcome = pytester.runpytest("--edgetpu-against=HEAD", "--edgetpu-json=r.json")
    outcome.assert_outcomes(failed=1)
    head = git(pytester.path, "rev-parse", "--short=7", "HEAD").strip()
    outcome.stdout.fnmatch_lines(
        [
            "*MEMORY *allocate_anon (private memory added by allocate_tensors) * KiB -> * KiB "
            f"(+* KiB, +*%; spread over 3 processes * KiB)*; on cpu (*); against HEAD ({head}), "
            "measured now"
        ]
    )
    (result,) = json.loads((pytester.path / "r.json").read_text())["results"]
    assert result["verdict"]["status"] != "REGRESSION"
    assert set(result["against"]["memory_kib"]) == set(result["memory"]["kib"])
    assert "allocate_anon" in result["memory_verdict"]["regressed"]


def test_a_model_the_tests_make_is_made_by_the_test_at_the_revision(
    pytester: pytest.Pytester,
) -> None:
    """The example suite's way: a conftest generates the models, which git does not track;
    the helper at the revision makes them as the revision's conftest does, and the file it made
    is measured in this process beside the current one, as a tracked model is (memory too)."""
    pytester.makeini(RELATIVE_INI)
    made_at = """
        from pathlib import Path
        from pytest_edgetpu.model.examples import write_conv_model, write_example_models

        def pytest_configure(config):
            write_example_models(Path(__file__).parent / "made")
            write_conv_model(Path(__file__).parent / "made" / "tiny_conv.tflite", filters={})
        """
    pytester.makeconftest(made_at.format(16))
    pytester.makepyfile(
        test_made="""
        import pytest

        @pytest.mark.tpu_bench(model="made/tiny_conv.tflite")
        def test_made(tpu_bench):
            tpu_bench()
        """
    )
    (pytester.path / ".gitignore").write_text("made/\n")
    git(pytester.path, "init", "-q")
    commit_all(pytester.path)
    pytester.makeconftest(made_at.format(8))  # the working tree makes a smaller model
    out = pytester.path / "results.json"
    result = pytester.runpytest(
        "--edgetpu-against=HEAD", f"--edgetpu-json={out}", "--edgetpu-threshold=500%"
    )
    record = statuses(out)["test_made"]
    against = record["against"]
    assert against["where"] == "HEAD:test_made.py::test_made", result.stdout.str()
    assert record["verdict"]["change"] is not None
    assert against["in_processes"] is False  # one process, as a tracked model
    assert record["verdict"]["model_changed"] is True
    assert set(against["memory_kib"]) == set(record["memory"]["kib"])
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ["--edgetpu-against=nosuch"],
            "ERROR: --edgetpu-against: 'nosuch' names no commit in ",
        ),
        (
            ["--edgetpu-against=HEAD", "--edgetpu-update-baselines"],
            "ERROR: --edgetpu-against: relative mode gates against a revision measured now and "
            "writes no baselines, so it cannot go with --edgetpu-update-baselines; drop one of "
            "them",
        ),
    ],
    ids=["unknown-revision", "with-update"],
)
def test_usage_errors(changed: pytest.Pytester, args: list[str], words: str) -> None:
    result = changed.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines[0].startswith(words), result.stderr.str()
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_no_repository_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makepyfile(test_x="def test_x(): pass")
    result = project.runpytest("--edgetpu-against=origin/main")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert " is not inside a git repository; relative mode measures " in result.stderr.str()


def test_the_ini_key_turns_relative_mode_on(changed: pytest.Pytester) -> None:
    changed.makeini(RELATIVE_INI + "edgetpu_against = HEAD\n")
    result = changed.runpytest("-k", "test_new")
    result.stdout.fnmatch_lines(
        ["edgetpu: gating against HEAD (*), measured now in interleaved pairs, on cpu*"]
    )
    result.assert_outcomes(passed=1)


# ---------------------------------------------------------------------------------------------
# Git LFS: a model repository's files at the revision, read from the clone's LFS store


@needs_lfs
def test_a_model_kept_in_git_lfs_is_compared_with_its_version_at_the_revision(
    pytester: pytest.Pytester, short_ini: str
) -> None:
    root = pytester.path
    pytester.makeini(short_ini)
    git(root, "init", "-q")
    git(root, "lfs", "install", "--local")
    git(root, "lfs", "track", "*.tflite")
    write_example_models(root / "models")
    commit_all(root, "models in LFS")
    assert git(root, "cat-file", "-p", "HEAD:models/tiny_dense.tflite").startswith(
        "version https://git-lfs.github.com/spec/v1"
    )
    # The working tree's model becomes another, and much slower, one.
    shutil.copyfile(root / "models" / "tiny_conv.tflite", root / "models" / "tiny_dense.tflite")
    result = pytester.runpytest(
        "--edgetpu-against=HEAD", "--edgetpu-threshold=500%", "models/tiny_dense.tflite"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*MODEL_CHANGED*against HEAD (*), measured now*"])
    result.stdout.no_fnmatch_line("*Git LFS pointer*")
    # Without the object in the clone's store: one line that says how to fetch it.
    shutil.rmtree(root / ".git" / "lfs" / "objects")
    missing = pytester.runpytest("--edgetpu-against=HEAD", "models/tiny_dense.tflite")
    missing.stdout.fnmatch_lines(
        [
            "*HEAD:models/tiny_dense.tflite is a Git LFS object that is not in this clone (*); "
            "fetch it with `git lfs fetch origin *` (in CI: check out with lfs: true and the "
            "history)*"
        ]
    )


CALLABLE_AT_HEAD = """
def test_sum(tpu_bench):
    tpu_bench(lambda: sum(range(2000)))
"""


def test_the_helper_has_an_environment_of_its_own(
    pytester: pytest.Pytester, short_ini: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The run's own outputs and options, set for the run in the environment, are not the
    # helper's: it neither writes them nor takes the options meant for the run.
    pytester.makeini(short_ini)
    pytester.makepyfile(test_sum=CALLABLE_AT_HEAD)
    git(pytester.path, "init", "-q")
    commit_all(pytester.path, "a callable")
    summary = pytester.path / "summary.md"
    addopts = "--edgetpu-against=HEAD --edgetpu-json=r.json --edgetpu-threshold=500%"
    monkeypatch.setenv("PYTEST_ADDOPTS", addopts)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    (written,) = json.loads((pytester.path / "r.json").read_text())["results"]
    assert written["timed"] and written["against"]["missing"] == "", written["against"]
    assert summary.read_text().count("## pytest-edgetpu latency gate") == 1


def test_a_project_module_named_like_the_standard_librarys_is_not_the_probes(
    project: pytest.Pytester,
) -> None:
    # The probe helper imports selectors and json: a project's own files of those names, in
    # the directory pytest runs from, must not stand in for them.
    project.makepyfile(selectors="raise SystemExit('the project selectors.py ran')")
    result = project.runpytest("--edgetpu", "models/tiny_dense.tflite")
    result.assert_outcomes(passed=1)


def test_the_checkout_at_the_revision_holds_what_export_ignore_and_links_would_hide(
    pytester: pytest.Pytester, short_ini: str
) -> None:
    # A common .gitattributes keeps tests out of archives, and a tree may hold a link to an
    # absolute path: neither may cost a benchmark its side at the revision.
    pytester.makeini(short_ini)
    tests = pytester.path / "tests"
    tests.mkdir()
    (tests / "test_sum.py").write_text(CALLABLE_AT_HEAD)
    (pytester.path / ".gitattributes").write_text("/tests export-ignore\n")
    (pytester.path / "py").symlink_to("/usr/bin/python3")
    git(pytester.path, "init", "-q")
    commit_all(pytester.path, "tests kept out of archives, and a link")
    result = pytester.runpytest(
        "--edgetpu-against=HEAD", "--edgetpu-threshold=500%", "--edgetpu-json=r.json", "tests"
    )
    result.assert_outcomes(passed=1)
    (written,) = json.loads((pytester.path / "r.json").read_text())["results"]
    assert written["against"]["missing"] == "" and written["against"]["instance_values_ms"]
    result.stdout.fnmatch_lines(["against HEAD (*): 1 of 1 compared"])
    # A test new since the revision: measured alone, and the summary counts it apart.
    (tests / "test_new.py").write_text(CALLABLE_AT_HEAD.replace("test_sum", "test_new"))
    both = pytester.runpytest("--edgetpu-against=HEAD", "--edgetpu-threshold=500%", "tests")
    both.assert_outcomes(passed=2)
    both.stdout.fnmatch_lines(
        ["against HEAD (*): 1 of 2 compared, 1 not (each line above says why)"]
    )


def test_a_scratch_directory_left_by_a_killed_run_goes_with_the_next_one(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SIGKILL or SIGTERM leaves a run's files of the revision behind: the next run that makes
    # its own removes those of processes that are gone (and no other user's, nor a live one's).
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"pytest-edgetpu-against-{dead.pid}-abc123"
    (stale / "checkout").mkdir(parents=True)
    alive = tmp_path / f"pytest-edgetpu-against-{os.getpid()}-def456"
    alive.mkdir()
    files = RevisionFiles(Revision.resolve("HEAD", repo, "--edgetpu-against"), 10**8)
    try:
        files.file(repo / "models" / "tiny_conv.tflite")
        assert not stale.exists() and alive.exists()
    finally:
        files.close()


# ---------------------------------------------------------------------------------------------
# git bisect run: exit codes that tell a bad commit from one that cannot be tested


def test_bisect_exit_codes() -> None:
    assert bisect_exit([Status.PASS, Status.REGRESSION], failed=True, completed=True) == 1
    assert bisect_exit([Status.PASS, Status.IMPROVED], failed=False, completed=True) == 0
    for undecided in (Status.UNSTABLE, Status.BUSY, Status.NO_BASELINE, Status.INCOMPARABLE):
        assert bisect_exit([Status.PASS, undecided], failed=False, completed=True) == 125
    assert bisect_exit([Status.PASS], failed=True, completed=True) == 125  # another failure
    assert bisect_exit([Status.PASS], failed=False, completed=False) == 125  # interrupted
    assert bisect_exit([], failed=False, completed=True) == 125  # nothing compared


def test_a_relative_run_for_git_bisect_says_bad_good_or_skip(
    pytester: pytest.Pytester, short_ini: str
) -> None:
    pytester.makeini(short_ini)
    write_example_models(pytester.path / "models")
    git(pytester.path, "init", "-q")
    commit_all(pytester.path, "good")
    run = ("--edgetpu-against=HEAD", "--edgetpu-bisect", "models/tiny_dense.tflite")
    good = pytester.runpytest(*run, "--edgetpu-threshold=500%")
    assert good.ret == 0, good.stdout.str()
    write_conv_model(pytester.path / "models" / "tiny_dense.tflite", image_size=128, filters=64)
    bad = pytester.runpytest(*run, "--edgetpu-threshold=25%")
    assert bad.ret == 1, bad.stdout.str()
    shutil.copyfile(pytester.path / "models" / "tiny_conv.tflite", pytester.path / "new.tflite")
    skip = pytester.runpytest("--edgetpu-against=HEAD", "--edgetpu-bisect", "new.tflite")
    assert skip.ret == 125, skip.stdout.str()  # new since GOOD: nothing to decide on
    alone = pytester.runpytest("--edgetpu-bisect", "models")
    assert alone.ret == pytest.ExitCode.USAGE_ERROR
    alone.stderr.fnmatch_lines(["ERROR: --edgetpu-bisect: git bisect's exit codes judge a *"])


@pytest.mark.parametrize("failure", ["checkout", "helper"])
def test_machinery_that_fails_at_the_revision_fails_the_test_in_one_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    """A full disk while checking out the revision, or a helper that cannot start, is the
    plugin's failure, not the test's at the revision: the test fails rather than passing as
    "not compared"."""
    pytester.makeini(RELATIVE_INI)
    pytester.makepyfile(test_a="def test_a(tpu_bench):\n    tpu_bench(lambda: sum(range(99)))\n")
    git(pytester.path, "init", "-q")
    commit_all(pytester.path, "base")

    def no_space(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    if failure == "checkout":
        monkeypatch.setattr(RevisionFiles, "_write_files", no_space)
        why = "its files could not be checked out (*No space left on device)"
    else:
        monkeypatch.setattr(sys, "executable", str(pytester.path / "no-such-python"))
        why = "its helper process could not start (*No such file or directory*)"
    result = pytester.runpytest("--edgetpu-against=HEAD")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [f"*relative mode could not run test_a.py::test_a at HEAD (*): {why}"]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


AT_BASE_MID_WAY = """
import os
import signal
import time

calls = [0]


def later(then):
    def call():
        calls[0] += STEP
        if calls[0] > 20:
            then()
        return sum(range(300))

    return call


def broken():
    raise ValueError("broken mid-way at the base")


def test_raises(tpu_bench):
    tpu_bench(later(broken))


def test_crashes(tpu_bench):
    tpu_bench(later(lambda: os.kill(os.getpid(), signal.SIGSEGV)))


def test_hangs_while_measured(tpu_bench):
    tpu_bench(later(lambda: time.sleep(3600)))


def test_interrupts(tpu_bench):
    if STEP:
        raise KeyboardInterrupt
    tpu_bench(lambda: sum(range(300)))


def test_after_the_interrupt(tpu_bench):
    tpu_bench(lambda: sum(range(300)))


def test_kills_its_helper(tpu_bench):
    tpu_bench(later(lambda: os.kill(os.getppid(), signal.SIGKILL)))
"""

HANGS_AT_BASE = """
import time


def test_hangs(tpu_bench):
    if STEP:
        time.sleep(3600)
    tpu_bench(lambda: sum(range(300)))


def test_later(tpu_bench):
    tpu_bench(lambda: sum(range(300)))
"""


def test_a_test_that_fails_mid_way_at_the_revision_is_not_compared_and_a_dead_helper_fails(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test's own code failing at the revision while measured (it raises, crashes its
    process, hangs, raises KeyboardInterrupt) is said at once and the benchmark measured alone;
    the helper itself dying (killed from outside) is the machinery's failure: the test fails.
    A test body that hangs there is waited for once per file."""
    monkeypatch.setattr(helper_module, "INSTANCE_TIMEOUT_S", 3.0)
    monkeypatch.setattr(helper_module, "START_TIMEOUT_S", 8.0)
    pytester.makeini(RELATIVE_INI)
    pytester.makepyfile(
        test_mid_way="STEP = 1\n" + AT_BASE_MID_WAY, test_hang="STEP = 1\n" + HANGS_AT_BASE
    )
    git(pytester.path, "init", "-q")
    commit_all(pytester.path)
    pytester.makepyfile(
        test_mid_way="STEP = 0\n" + AT_BASE_MID_WAY, test_hang="STEP = 0\n" + HANGS_AT_BASE
    )
    out = pytester.path / "results.json"
    result = pytester.runpytest(
        "--edgetpu-against=HEAD", "--edgetpu-threshold=500%", f"--edgetpu-json={out}",
        "-p", "no:randomly",
    )  # fmt: skip
    result.assert_outcomes(passed=7, failed=1)
    head = f"HEAD ({git(pytester.path, 'rev-parse', '--short=7', 'HEAD').strip()})"
    reasons = {name: r["verdict"].get("reason") for name, r in statuses(out).items()}
    in_helper = f"the test fails while measured in its helper for {head}"
    assert reasons["test_raises"] == f"{in_helper} (ValueError: broken mid-way at the base)"
    assert reasons["test_crashes"] == f"{in_helper} (its process ended with SIGSEGV)"
    assert reasons["test_hangs_while_measured"] == (
        f"the test gave no answer within 3 s while measured in its helper for {head} (stopped)"
    )
    assert reasons["test_interrupts"] == f"the test fails at {head} (KeyboardInterrupt)"
    assert reasons["test_after_the_interrupt"] == ""  # compared
    assert reasons["test_hangs"] == (
        f"the test did not finish at {head} within 8 s (its helper is stopped)"
    )
    assert reasons["test_later"] == (
        f"test_hang.py::test_hangs did not finish at {head} within 8 s, so the file's later "
        "tests are not run there"
    )
    result.stdout.fnmatch_lines(
        [
            "*test_kills_its_helper*",
            f"could not measure test_mid_way.py::test_kills_its_helper: its helper "
            f"for {head} ended with SIGKILL while measuring (a SIGKILL is often the kernel's "
            "out-of-memory killer: check the host's memory); run the tests again",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")
