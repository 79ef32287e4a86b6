"""A callable against stored baselines, recorded and gated in fresh processes (issue 32): the
process rule on recorded process values, the comparison of every process, the entry's record
of its processes, and the whole path end to end."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from doubles import FakeClock
from factories import RECORDING_UPDATE, git

from pytest_edgetpu.core.errors import BaselineError, HostReadingError
from pytest_edgetpu.core.stats import fastest, shift
from pytest_edgetpu.device.runtime import load_runtime
from pytest_edgetpu.device.selection import Device
from pytest_edgetpu.engine import processes as processes_module
from pytest_edgetpu.engine.host_reference import kernel_name
from pytest_edgetpu.engine.measurement import EarlyStop, InstanceSamples, MeasureSettings
from pytest_edgetpu.engine.processes import (
    FEWEST_PROCESS_PAIRS,
    FEWEST_PROCESSES,
    MOST_PROCESSES,
    PROCESS_STEADY_S,
    measure_processes,
)
from pytest_edgetpu.engine.session import DeviceSession
from pytest_edgetpu.engine.timing import LiveInstance, StartSide
from pytest_edgetpu.judge.baselines import BaselineEntry, Lookup, parse_entry
from pytest_edgetpu.judge.compare import compare, settle_rule
from pytest_edgetpu.judge.verdict import Current, Policy, Status
from pytest_edgetpu.relative import fresh as fresh_module
from pytest_edgetpu.relative import helper as helper_module
from pytest_edgetpu.relative.helper import RevisionTest
from pytest_edgetpu.relative.pool import HelperPool, collected_for
from pytest_edgetpu.relative.serving import Serving

POLICY = Policy(threshold=0.05)
DEVICE = "cpu (x86_64, LiteRT 2.3.0, 1 thread)"

# Recorded on this project's 2-core VM (2026-12-06, quiet), each process's value in us: the
# example suite's test_dense_pipeline (an invoke of a 60 us model and an argmax), whose
# processes differ by up to a fifth, recorded in 8 fresh processes and then gated in 8 more;
# and a numpy product, whose processes agree to a few tenths of a percent.
WIDE_BASELINE = (57.6, 58.0, 60.6, 65.2, 68.6, 68.9, 69.2, 71.1)
WIDE_GATE = (68.5, 67.5, 67.9, 57.1, 58.5, 57.8, 64.6, 57.9)
STEADY_BASELINE = (11.15, 11.16, 11.19, 11.19)
STEADY_GATE = (11.20, 11.20, 11.21, 11.21, 11.22, 11.20, 11.21, 11.22)
# The Coral LSTM's invoke as a callable (benchmarks/relative_gate.py, 2026-12-07), recorded, then
# gated an hour later on a host running a few percent faster: every process of the gate is
# faster, and the interval of the first 4 (-5.3..-2.9%) straddles the -4% from which a speedup
# counts. The 8 processes of the gate read PASS at -3.4% (-4.7..-2.6%), as the first 4 do.
FASTER_HOST_BASELINE = (151.2, 151.3, 151.7, 151.8, 152.3, 152.4, 152.5, 155.7)
FASTER_HOST_GATE = (145.0, 146.0, 147.4, 146.8, 147.7, 145.2, 148.5, 148.4)


class SteadyInstance:
    """A test double of an instance in a fresh process: every call takes ``sample_ns``."""

    def __init__(self, sample_ns: int) -> None:
        self.sample_ns = sample_ns
        self.first_ns = sample_ns
        self.warmup_ns: tuple[int, ...] = ()
        self.taken: list[int] = []

    def block(self, runs: int) -> None:
        self.taken.extend([self.sample_ns] * runs)

    def samples(self) -> InstanceSamples:
        return InstanceSamples(1, self.first_ns, self.warmup_ns, tuple(self.taken))


def processes_reading(values_us: Sequence[float], started: list[int]) -> object:
    """Process ``i`` whose instances all read ``values_us[i]``: inside a process instances
    agree, as an interval computed inside one process would see them."""

    def process(index: int) -> StartSide:
        started.append(index)

        def start() -> LiveInstance:
            return SteadyInstance(round(values_us[index] * 1000))

        return start

    return process


def entry_of(values_us: Sequence[float], processes: int) -> BaselineEntry:
    return BaselineEntry(
        metric="p50",
        instance_values_ms=tuple(v / 1000 for v in values_us),
        summary_ms={"n": 1000, "p50": values_us[0] / 1000},
        load_ms=0.1,
        first_inference_ms=0.1,
        num_threads=1,
        workers=1,
        recorded="2026-12-06T21:00:00+00:00",
        processes=processes,
    )


def current_of(values_us: Sequence[float], processes: int) -> Current:
    values = tuple(v / 1000 for v in values_us)
    return Current("p50", values[0], values, 1, 1, DEVICE, processes=processes)


@pytest.mark.parametrize(
    ("baseline", "gate", "processes", "status"),
    [
        (WIDE_BASELINE, WIDE_GATE, MOST_PROCESSES, Status.PASS),
        (STEADY_BASELINE, STEADY_GATE, FEWEST_PROCESSES, Status.PASS),
        (FASTER_HOST_BASELINE, FASTER_HOST_GATE, FEWEST_PROCESSES, Status.PASS),
    ],
    ids=["processes differ", "processes agree", "no slowdown on a faster host"],
)
def test_processes_are_added_only_while_their_spread_leaves_the_verdict_open(
    baseline: tuple[float, ...], gate: tuple[float, ...], processes: int, status: Status
) -> None:
    started: list[int] = []
    settings = MeasureSettings(warmup=0, min_runs=1, max_time_s=1.0)
    early = EarlyStop(settle_rule(POLICY, processes=True), tuple(v / 1000 for v in baseline))
    measured = measure_processes(
        processes_reading(gate, started),
        settings,
        FakeClock(step_ns=1_000_000),
        early,
    )
    assert started == list(range(processes)), measured.stop_reason
    assert len(measured.process_values) == processes
    # Each process's value is the median of its instances', three of them each.
    assert len(measured.instances) == 3 * processes
    assert measured.instance_values == pytest.approx([v / 1000 for v in gate[:processes]])
    verdict = compare(
        Lookup(Path("b.json"), entry_of(baseline, len(baseline)), ()),
        current_of(gate[:processes], processes),
        POLICY,
    )
    assert verdict.status is status, verdict.message


def test_each_process_times_the_host_s_reference_right_after_its_own_instances() -> None:
    started: list[int] = []
    referenced: list[int] = []
    reference_us = (30.0, 31.0, 29.0, 30.5)

    def reference(index: int) -> StartSide:
        referenced.append(index)
        # The reference of process ``index`` starts after that process's instances, and
        # before the next process's.
        assert started == list(range(index + 1))

        def start() -> LiveInstance:
            return SteadyInstance(round(reference_us[index] * 1000))

        return start

    settings = MeasureSettings(warmup=0, min_runs=1, max_time_s=1.0, precision=0.01)
    measured = measure_processes(
        processes_reading(STEADY_GATE, started),
        settings,
        FakeClock(step_ns=1_000_000),
        None,
        reference,
    )
    assert referenced == started == list(range(FEWEST_PROCESSES))
    assert measured.reference_values == pytest.approx([v / 1000 for v in reference_us])
    # The reference's instances are not the measurement's.
    assert len(measured.instances) == 3 * FEWEST_PROCESSES


def test_a_reference_that_fails_in_a_process_leaves_the_measurement_without_a_reading() -> None:
    started: list[int] = []

    def reference(index: int) -> StartSide:
        def start() -> LiveInstance:
            raise HostReadingError("the host's reference workload failed in a helper of t")

        return start

    settings = MeasureSettings(warmup=0, min_runs=1, max_time_s=1.0, precision=0.01)
    measured = measure_processes(
        processes_reading(STEADY_GATE, started), settings, FakeClock(1_000_000), None, reference
    )
    # The test's own processes are measured as without a reading.
    assert started == list(range(FEWEST_PROCESSES))
    assert measured.reference_values == ()
    assert measured.no_reference == "the host's reference workload failed in a helper of t"


def test_without_a_baseline_processes_are_added_until_their_median_is_known() -> None:
    started: list[int] = []
    settings = MeasureSettings(warmup=0, min_runs=1, max_time_s=1.0, precision=0.01)
    measured = measure_processes(
        processes_reading(STEADY_GATE, started),
        settings,
        FakeClock(step_ns=1_000_000),
    )
    assert started == list(range(FEWEST_PROCESSES))
    assert measured.stop_reason == "p50 of the processes within ±1%"
    started.clear()
    measured = measure_processes(
        processes_reading(WIDE_GATE, started),
        settings,
        FakeClock(step_ns=1_000_000),
    )
    assert started == list(range(MOST_PROCESSES))
    assert measured.stop_reason == f"{MOST_PROCESSES} processes measured"


def test_an_instance_in_a_process_has_a_shorter_steady_phase_than_one_in_this_process() -> None:
    # 1 ms a call: 50 calls in one process's 50 ms, 20 in a fresh process's 20 ms.
    settings = MeasureSettings(warmup=0, min_runs=1, max_time_s=1.5)
    assert settings.steady_s > PROCESS_STEADY_S
    measured = measure_processes(processes_reading([1000.0] * 8, []), settings, FakeClock())
    assert {len(one.samples_ns) for one in measured.instances} == {round(PROCESS_STEADY_S / 1e-3)}


@pytest.mark.parametrize(("instance_ms", "instances"), [(100, 3), (150, 2), (200, 1)])
def test_a_process_measures_the_instances_that_fit_its_share_of_max_time(
    instance_ms: int, instances: int
) -> None:
    # max_time 1.5 s over the fewest 4 processes: 375 ms each. An instance of a slow call (its
    # load, first call, warm-up and timed calls: 200 ms for a 28 ms model) is not started
    # where, at the pace so far, it would end past that: one process, one value.
    settings = MeasureSettings(warmup=0, min_runs=1, max_time_s=1.5)
    measured = measure_processes(
        processes_reading([1000.0] * 8, []), settings, FakeClock(step_ns=instance_ms * 10**6)
    )
    assert len(measured.process_values) == FEWEST_PROCESSES, measured.stop_reason
    assert len(measured.instances) == instances * FEWEST_PROCESSES


def test_every_process_is_compared_not_the_fastest_ones() -> None:
    """A baseline of 8 processes holds more of the rare fast ones than a gate of 4 drawn from
    the same processes: their fastest would read a confirmed +15%."""
    gate = (62.3, 71.5, 70.7, 66.8)  # a later draw of the same test's processes
    fastest_only = shift(fastest(WIDE_BASELINE), fastest(gate))
    assert fastest_only.low > 0.0 and fastest_only.estimate > 0.1
    verdict = compare(
        Lookup(Path("b.json"), entry_of(WIDE_BASELINE, 8), ()), current_of(gate, 4), POLICY
    )
    assert verdict.status is Status.PASS, verdict.message
    assert verdict.change is not None and verdict.change.low < 0.0 < verdict.change.high
    assert verdict.message.startswith("PASS p50 (compared p5) 0.0669 ms -> 0.0688 ms (+3.2%")
    assert (
        "; baseline b.json recorded 2026-12-06 in 8 fresh processes, measured now in 4; "
        "compared: the median p5 of each process's instances, every process of each side "
        "(medians shown)"
    ) in verdict.message
    # A slowdown beyond the processes' spread is a regression all the same.
    slower = compare(
        Lookup(Path("b.json"), entry_of(STEADY_BASELINE, 4), ()),
        current_of([v * 1.1 for v in STEADY_GATE[:4]], 4),
        POLICY,
    )
    assert slower.status is Status.REGRESSION, slower.message


@pytest.mark.parametrize(
    ("entry_processes", "current_processes", "words"),
    [
        (0, 4, "the baseline was measured in one process, this run in fresh processes"),
        (8, 0, "the baseline was measured in 8 fresh processes, this run in its own process only"),
    ],
    ids=["entry-of-one-process", "measured-here"],
)
def test_one_process_and_fresh_processes_are_never_compared(
    entry_processes: int, current_processes: int, words: str
) -> None:
    values = WIDE_BASELINE if entry_processes else WIDE_BASELINE * 2
    verdict = compare(
        Lookup(Path("b.json"), entry_of(values, entry_processes), ()),
        current_of([v * 1.5 for v in WIDE_GATE], current_processes),
        POLICY,
    )
    assert verdict.status is Status.INCOMPARABLE and verdict.change is None
    assert verdict.reason == (
        f"{words} (a benchmark's speed moves with the process it runs in) in b.json; record "
        "again with --edgetpu-update-baselines"
    )


def test_an_entry_keeps_its_processes_and_a_damaged_count_is_one_line() -> None:
    entry = entry_of(WIDE_BASELINE, 8)
    data = entry.to_json()
    assert data["processes"] == 8
    assert parse_entry("b.json", "t.py::test_a", json.loads(json.dumps(data))).processes == 8
    assert "processes" not in entry_of(WIDE_BASELINE, 0).to_json()  # as earlier versions wrote
    for damaged in (7, 1, True, 2.5, "8", 10**9):
        with pytest.raises(BaselineError) as error:
            parse_entry("b.json", "t.py::test_a", {**data, "processes": damaged})
        assert str(error.value).startswith(
            "b.json: entry 't.py::test_a' has a processes count that is not a whole number "
            "from 2 to 4096, one for each of its instance_values_ms"
        )


SMALL_TESTS = """
import os

def test_sum(tpu_bench):
    tpu_bench(lambda: sum(range(300)))

def test_here_only(tpu_bench):
    if os.getpid() != int(os.environ["STARTED_PID"]):
        raise RuntimeError("runs only in the process the user started")
    tpu_bench(lambda: sum(range(300)))

def test_model(edgetpu, tpu_bench):
    tpu_bench("models/tiny_dense.tflite")
"""


@pytest.mark.parametrize(
    ("node_id", "collected"),
    [
        ("test_a.py::test_x[1]", "test_a.py"),
        ("sub/test_b.py::TestC::test_y", "sub/test_b.py"),
        # The models of a folder share its helpers, which collect the whole folder.
        ("models/a.tflite::latency", "models"),
        ("deep/models/b.tflite::latency", "deep/models"),
        ("top.tflite::latency", "top.tflite"),  # not the whole rootdir
    ],
)
def test_a_helper_collects_the_tests_file_or_the_models_folder(
    node_id: str, collected: str
) -> None:
    assert collected_for(node_id) == collected


class RecordingHelper:
    """A test double of a helper process: what it was told, in order, in ``told``."""

    def __init__(self, number: int, told: list[tuple[str, int]]) -> None:
        self.number = number
        self.told = told
        self.running = True
        self.missing = ""

    def ask(self, node_id: str) -> None:
        self.told.append(("ask", self.number))

    def test(self, node_id: str) -> RevisionTest:
        self.told.append(("wait", self.number))
        return RevisionTest(node_id, self)

    def let_go(self) -> None:
        self.told.append(("end", self.number))

    def wait(self) -> None:
        pass


def test_a_group_of_helpers_is_asked_for_the_test_before_any_is_waited_for() -> None:
    # Their test bodies then run together rather than one after another.
    told: list[tuple[str, int]] = []
    started = iter(range(100))
    pool = HelperPool(
        lambda file, side, index: RecordingHelper(next(started), told),
        ("fresh",),
        FEWEST_PROCESSES,
    )
    pool.ask("test_a.py::test_x", "fresh", range(4))
    served = [pool.test("test_a.py::test_x", "fresh", index) for index in range(4)]
    assert told == [("ask", n) for n in range(4)] + [("wait", n) for n in range(4)]
    assert [test.helper.number for test in served] == [0, 1, 2, 3]
    # A helper that served the test already is not asked again; the next group starts.
    told.clear()
    pool.ask("test_a.py::test_x", "fresh", range(2, 6))
    assert told == [("ask", 4), ("ask", 5)]
    # Another file's test ends this file's helpers first.
    told.clear()
    pool.ask("test_b.py::test_y", "fresh", range(1))
    assert told[:6] == [("end", n) for n in range(6)]
    assert told[6:] == [("ask", 6)]


@pytest.fixture
def short_ini() -> str:
    """The suite's short ini, measuring in fresh processes as a user's run does (the rest of
    the suite measures in its own process, ``edgetpu_processes = one``, to save their starts)."""
    return (
        "[pytest]\nedgetpu_max_time = 0.3\nedgetpu_min_runs = 20\nedgetpu_processes = fresh\n"
        "filterwarnings = ignore::pytest.PytestAssertRewriteWarning\n"
    )


def test_callables_and_models_are_recorded_and_gated_in_fresh_processes(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(test_small=SMALL_TESTS)
    monkeypatch.setenv("STARTED_PID", str(os.getpid()))  # the runs below are in this process
    selected = ("test_small.py", "models/tiny_dense.tflite", "-p", "no:randomly", "--edgetpu")
    recorded = project.runpytest(*selected, *RECORDING_UPDATE)
    recorded.assert_outcomes(passed=4)
    entries = json.loads(next((project.path / "baselines").glob("*.json")).read_text())["entries"]
    for in_processes in (
        "test_small.py::test_sum",
        "test_small.py::test_model",
        "models/tiny_dense.tflite::latency",  # a model file gated with no code
    ):
        entry = entries[in_processes]
        assert FEWEST_PROCESSES <= entry["processes"] <= MOST_PROCESSES
        # The host's reading, taken in the same processes: one value each.
        reading = entry["host_reference"]
        assert reading["kernel"] == kernel_name(in_test_processes=True)
        assert len(reading["values_ms"]) == entry["processes"]
    # A test that does not run in a fresh process as it does here is measured here, and says so;
    # the host's reading is then taken in processes of its own.
    assert "processes" not in entries["test_small.py::test_here_only"]
    assert entries["test_small.py::test_here_only"]["host_reference"]["kernel"] == kernel_name()
    # Where each side is measured is under test here, not a verdict on this host's noise.
    gated = project.runpytest(*selected, "--edgetpu-json=out.json", "--edgetpu-threshold=50%")
    gated.assert_outcomes(passed=4)
    results = {
        r["test_id"]: r for r in json.loads((project.path / "out.json").read_text())["results"]
    }
    for in_processes in ("test_small.py::test_sum", "models/tiny_dense.tflite::latency"):
        result = results[in_processes]
        assert result["verdict"]["status"] in ("PASS", "IMPROVED")
        assert len(result["instance_values_ms"]) >= FEWEST_PROCESSES
        assert "fresh processes, measured now in" in result["verdict"]["message"]
        # The host read in the gate's own processes, one value each, as it was recorded.
        reading = result["baseline_entry"]["host_reference"]
        assert reading["kernel"] == kernel_name(in_test_processes=True)
        assert len(reading["values_ms"]) == len(result["instance_values_ms"])
    here = results["test_small.py::test_here_only"]
    assert any(
        note.startswith(
            "measured in this process, not in fresh ones: test_small.py::test_here_only did not "
            "run in a fresh process as it does in this one: the test fails at the working tree "
            "(RuntimeError: runs only in the process the user started)"
        )
        for note in here["notes"]
    ), here["notes"]


BREAKS_THE_REFERENCE_IN_HELPERS = """
import os

if os.environ.get("PYTEST_EDGETPU_SERVE") is not None:  # a helper: the reference's process dies
    import pytest_edgetpu.relative.serving as serving

    serving.reference_instance = lambda: os._exit(3)
"""


def test_a_reference_that_fails_in_the_test_s_processes_is_said_not_blamed_on_the_test(
    project: pytest.Pytester, short_ini: str
) -> None:
    project.makeini(short_ini)
    project.makeconftest(BREAKS_THE_REFERENCE_IN_HELPERS)
    project.makepyfile(
        test_sum="def test_sum(tpu_bench):\n    tpu_bench(lambda: sum(range(300)))\n"
    )
    recorded = project.runpytest(
        "--edgetpu-update-baselines", "-p", "no:randomly", "--edgetpu-json=out.json"
    )
    recorded.assert_outcomes(passed=1)
    (result,) = json.loads((project.path / "out.json").read_text())["results"]
    # Still measured in fresh processes (the test ran there as here), the reading's failure
    # in a note of its own; the entry's reading then taken in processes of its own.
    assert FEWEST_PROCESSES <= result["baseline_entry"]["processes"] <= MOST_PROCESSES
    assert result["notes"] == [
        "the host's reference workload failed in a helper of test_sum.py::test_sum (its "
        "process ended with exit status 3)"
    ]
    assert result["baseline_entry"]["host_reference"]["kernel"] == kernel_name()


def test_processes_one_records_in_this_process_and_never_compares_with_fresh_ones(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(
        test_sum="def test_sum(tpu_bench):\n    tpu_bench(lambda: sum(range(300)))\n"
    )
    recorded = project.runpytest(
        "--edgetpu-update-baselines", "--edgetpu-processes=one", "-p", "no:randomly"
    )
    recorded.assert_outcomes(passed=1)
    entries = json.loads(next((project.path / "baselines").glob("*.json")).read_text())["entries"]
    assert "processes" not in entries["test_sum.py::test_sum"]
    gated = project.runpytest("--edgetpu", "-p", "no:randomly")  # fresh, from the ini
    gated.assert_outcomes(passed=1)
    gated.stdout.fnmatch_lines(
        ["*INCOMPARABLE*the baseline was measured in one process, this run in fresh processes*"]
    )


TELLS_ITS_HELPERS_WORDS = """
import os

words = os.environ.get("PYTEST_EDGETPU_SERVE")
if words is not None:  # in a helper: what it was told, for the test to read
    with open(os.path.join(os.path.dirname(__file__), f"told-{os.getpid()}.json"), "w") as told:
        told.write(words)
"""


def test_fresh_helpers_leave_the_models_to_this_process_s_probe(
    project: pytest.Pytester,
) -> None:
    # The session tried the model in its probe before the helpers load it: a probe in each
    # helper would be one more process per helper, and one more try of every model.
    project.makeconftest(TELLS_ITS_HELPERS_WORDS)
    project.makepyfile(
        test_model="def test_model(tpu_bench):\n    tpu_bench('models/tiny_dense.tflite')\n"
    )
    project.runpytest("--edgetpu-update-baselines", "-p", "no:randomly").assert_outcomes(passed=1)
    told = [json.loads(path.read_text()) for path in project.path.glob("told-*.json")]
    assert len(told) >= FEWEST_PROCESSES
    assert all(words["probe_models"] is False for words in told)


def test_the_revision_s_models_are_tried_by_its_first_helper_alone(
    project: pytest.Pytester,
) -> None:
    # The revision's first helper runs each test before the others there do, and they run the
    # same checkout's code: one probe tries the revision's models (four cost 2 s a group of
    # helpers on the 11 models of benchmarks/relative_gate.py).
    told_in = project.path / "told"
    told_in.mkdir()
    project.makeconftest(
        TELLS_ITS_HELPERS_WORDS.replace("os.path.dirname(__file__)", repr(str(told_in)))
    )
    project.makepyfile(
        test_model="""
def test_model(edgetpu, tpu_bench):
    model = edgetpu.load("models/tiny_dense.tflite")
    model.set_inputs()
    tpu_bench(model.interpreter.invoke)
"""
    )
    (project.path / ".gitignore").write_text("told/\n")
    git(project.path, "init", "-q")
    git(project.path, "add", "-A")
    git(project.path, "commit", "-q", "-m", "base")
    project.runpytest("--edgetpu-against=HEAD", "-p", "no:randomly").assert_outcomes(passed=1)
    told = [json.loads(path.read_text()) for path in told_in.glob("told-*.json")]
    at_revision = [words for words in told if words["revision"] != "the working tree"]
    assert len(at_revision) >= FEWEST_PROCESS_PAIRS
    assert len(told) == 2 * len(at_revision)
    assert sorted(words["probe_models"] for words in at_revision) == [False] * (
        len(at_revision) - 1
    ) + [True]
    assert all(words["probe_models"] is False for words in told if words not in at_revision)


NOTES_ITS_HELPERS_STORES = """
import os

from pytest_edgetpu.judge import baselines

if "PYTEST_EDGETPU_SERVE" in os.environ:  # in a helper: note each baseline store it opens
    opened = baselines.BaselineStore.__init__

    def noting(self, directory, source):
        with open(os.path.join(NOTES, f"store-{os.getpid()}"), "a") as note:
            note.write(f"{directory}\\n")
        opened(self, directory, source)

    baselines.BaselineStore.__init__ = noting
"""


def test_helpers_of_both_sides_leave_the_stored_baselines_alone(
    project: pytest.Pytester,
) -> None:
    # The working tree's baselines are not versioned, so the revision's checkout has none: a
    # helper that read them would do more before measuring on one side than on the other (a
    # list comprehension's processes read 5% slower there, pair after pair). The helpers'
    # calls are judged by the process they serve.
    notes = project.path / "notes"
    notes.mkdir()
    project.makeconftest(f"NOTES = {str(notes)!r}\n" + NOTES_ITS_HELPERS_STORES)
    project.makepyfile(
        test_small="def test_small(tpu_bench):\n    tpu_bench(lambda: sum(range(300)))\n"
    )
    (project.path / ".gitignore").write_text("notes/\nbaselines/\n")
    git(project.path, "init", "-q")
    git(project.path, "add", "-A")
    git(project.path, "commit", "-q", "-m", "base")
    project.runpytest("--edgetpu-update-baselines").assert_outcomes(passed=1)
    out = project.path / "results.json"
    result = project.runpytest(
        "--edgetpu-against=HEAD", "--edgetpu-threshold=500%", f"--edgetpu-json={out}"
    )
    result.assert_outcomes(passed=1)
    (compared,) = json.loads(out.read_text())["results"]
    assert len(compared["against"]["instance_values_ms"]) >= FEWEST_PROCESS_PAIRS
    assert [path.read_text() for path in notes.iterdir()] == []


class StartCountingProbe:
    """A test double of the probe helper: how often it was started."""

    def __init__(self) -> None:
        self.starts = 0

    def start(self) -> None:
        self.starts += 1

    def close(self) -> None:
        pass


def test_a_helper_s_probe_starts_with_its_first_model_not_with_its_session() -> None:
    # Its tests may load no model at all (the session's own probe starts early, so that its
    # imports overlap the collection).
    probe = StartCountingProbe()
    session = DeviceSession(Device("cpu", "cpu:0"), load_runtime(), probe=probe)
    session.open(early_probe=False)
    assert probe.starts == 0
    session.open()
    assert probe.starts == 1


def test_a_helper_s_session_probes_its_models_unless_told_not_to() -> None:
    device, runtime = Device("cpu", "cpu:0"), load_runtime()
    assert DeviceSession(device, runtime).probe is not None
    assert DeviceSession(device, runtime, probe_models=False).probe is None
    for words, probes in (({}, True), ({"probe_models": False}, False)):
        commands, answers = os.pipe()  # the Serving owns (and closes) them
        told = {"commands": commands, "answers": answers, "revision": "HEAD", **words}
        serving = Serving.from_environment({"PYTEST_EDGETPU_SERVE": json.dumps(told)})
        assert serving is not None
        assert serving.probe_models is probes


KILLS_ITS_HELPER = """
import os
import signal

calls = [0]


def call():
    calls[0] += 1
    if calls[0] > 20 and os.getpid() != int(os.environ["STARTED_PID"]):
        os.kill(os.getppid(), signal.SIGKILL)  # in a fresh process: its helper, from outside
    return sum(range(300))


def test_kills_its_helper(tpu_bench):
    tpu_bench(call)
"""


def test_a_fresh_process_that_dies_while_measuring_fails_the_test(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The machinery failing (a helper killed from outside, as the OOM killer does) is never
    measured around: the test fails, in one line."""
    monkeypatch.setattr(helper_module, "INSTANCE_TIMEOUT_S", 3.0)
    monkeypatch.setenv("STARTED_PID", str(os.getpid()))
    project.makepyfile(test_kill=KILLS_ITS_HELPER)
    result = project.runpytest("--edgetpu", "-p", "no:randomly")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*could not measure test_kill.py::test_kills_its_helper: its helper for the working "
            "tree ended with SIGKILL while measuring (a SIGKILL is often the kernel's "
            "out-of-memory killer: check the host's memory); run the tests again*",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


@pytest.mark.parametrize(
    ("cores", "started"),
    [
        # The fewest together, then as many at a time as the cores could start at once.
        (2, [4, 1, 1, 1, 2, 1, 2, 1]),
        (1, [4, 1, 1, 1, 1, 1, 1, 1]),
        (16, [4, 1, 1, 1, 4, 1, 1, 1]),
    ],
)
def test_processes_beyond_the_fewest_start_as_many_at_a_time_as_there_are_cores(
    cores: int, started: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(processes_module, "usable_cores", lambda: list(range(cores)))
    assert [fresh_module.processes_started_with(i) for i in range(MOST_PROCESSES)] == started


SESSION_MARKS = """
import os

import pytest

MARKS = os.path.join(os.path.dirname(__file__), "marks.txt")


def mark(what):
    with open(MARKS, "a") as marks:
        marks.write(f"{what} {os.getpid()}\\n")


@pytest.fixture(scope="session")
def held():
    yield
    mark("torn-down")


def pytest_sessionfinish():
    mark("finished")
"""


def test_a_helper_finishes_its_session_before_it_ends(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A helper ends without the interpreter's teardown, once its session is over: the
    # project's session fixtures and session hooks still run in each of them.
    project.makeconftest(SESSION_MARKS)
    project.makepyfile(test_held="def test_held(held, tpu_bench):\n    tpu_bench(lambda: 1)\n")
    result = project.runpytest("--edgetpu", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    marks = [line.split() for line in (project.path / "marks.txt").read_text().splitlines()]
    helpers = {pid for what, pid in marks if pid != str(os.getpid())}
    assert len(helpers) >= FEWEST_PROCESSES
    for what in ("torn-down", "finished"):
        assert {pid for told, pid in marks if told == what} >= helpers, marks
