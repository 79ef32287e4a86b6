"""Memory per phase, measured in fresh processes forked by the probe helper, and its verdict.

Real LiteRT on real models: the Coral models, and generated dense models whose arena is made to
grow by widening a layer (the tensor arena holds the activations, so a wider hidden layer is a
real, bigger arena).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from factories import RECORDING_UPDATE, record

from pytest_edgetpu.cli import main
from pytest_edgetpu.core.errors import BaselineError, ModelError
from pytest_edgetpu.engine.memory import (
    MEMORY_PHASES,
    MemoryPolicy,
    MemoryUse,
    compare_memory,
    memory_readable,
)
from pytest_edgetpu.engine.probe import ModelProbe
from pytest_edgetpu.judge.baselines import parse_entry
from pytest_edgetpu.model.examples import dense_model_bytes

needs_proc = pytest.mark.skipif(
    not memory_readable(), reason="this system does not let a process read its memory per phase"
)
CORAL = ("keras_lstm_mnist_ptq", "mobilenet_v1_0.25_128_quant", "mobilenet_v2_1.0_224_quant")


def use(**kib: float) -> MemoryUse:
    figures = {phase: kib.get(phase, 1000.0) for phase in MEMORY_PHASES}
    return MemoryUse(figures, dict.fromkeys(MEMORY_PHASES, 4.0), 3)


# ---------------------------------------------------------------------------------------------
# the verdict


def test_a_figure_fails_beyond_its_share_plus_the_slack() -> None:
    policy = MemoryPolicy(relative=0.10, absolute_kib=64)
    baseline = dict.fromkeys(MEMORY_PHASES, 1000.0)
    assert not compare_memory(baseline, use(allocate_anon=1164), policy).failed  # 100 + 64
    grown = compare_memory(baseline, use(allocate_anon=1300, invoke_anon=1165), policy)
    assert grown.regressed == ("allocate_anon", "invoke_anon")
    assert grown.message == (
        "MEMORY allocate_anon (private memory added by allocate_tensors) 1,000 KiB -> 1,300 "
        "KiB (+300 KiB, +30.0%; spread over 3 processes 4 KiB); invoke_anon (private memory "
        "added by the first inferences) 1,000 KiB -> 1,165 KiB (+165 KiB, +16.5%; spread over 3 "
        "processes 4 KiB); tolerance 10% + 64 KiB"
    )
    # Resident figures count the file pages a phase maps, which move with the page cache
    # (a fresh clone's example models: load_rss 4,792 -> 10,784 KiB): reported, not judged.
    resident = use(load_rss=10784, allocate_rss=5000, invoke_rss=5000, peak_rss=17332)
    assert not compare_memory(baseline, resident, policy).failed
    # A tiny figure moves by pages: the slack keeps it from failing on a few of them.
    assert not compare_memory({"invoke_anon": 4.0}, use(invoke_anon=60.0), policy).failed
    # Less memory never fails, and a phase the baseline lacks is not judged.
    assert not compare_memory({"load_rss": 2000.0}, use(load_rss=10.0), policy).failed
    assert not compare_memory({}, use(peak_rss=1e6), policy).failed


@pytest.mark.parametrize(
    "memory",
    [{"peak_rss": "big"}, {"peak_rss": 1e999}, {"heap": 1.0}, [1, 2], {"peak_rss": True}],
    ids=["text", "infinite", "unknown-phase", "list", "bool"],
)
def test_a_hostile_memory_figure_in_a_baseline_is_named(memory: object) -> None:
    raw = {
        "metric": "p50",
        "instance_values_ms": [1.0, 1.1],
        "summary_ms": {"p50": 1.0, "n": 10},
        "load_ms": 1.0,
        "first_inference_ms": 1.0,
        "num_threads": 1,
        "workers": 1,
        "recorded": "2026-12-01T00:00:00+00:00",
        "memory_kib": memory,
    }
    with pytest.raises(BaselineError, match="'t' has a memory_kib that is not load_rss"):
        parse_entry(Path("b.json"), "t", raw)


# ---------------------------------------------------------------------------------------------
# measuring


@needs_proc
def test_the_helper_measures_each_coral_model_alike_in_fresh_processes(
    coral_models: Path,
) -> None:
    first, second = ModelProbe("LiteRT"), ModelProbe("LiteRT")
    try:
        for name in CORAL:
            path = coral_models / f"{name}.tflite"
            one, other = first.check(path, name, 1), second.check(path, name, 1)
            assert one is not None and other is not None and one.runs == 3
            for phase in MEMORY_PHASES:
                # Within a few pages in a session, and across sessions within a few pages or,
                # for the peak of a larger model, 2% (benchmarks/experiments/memory.py: at most
                # 1.7%).
                bound = max(256.0, 0.02 * abs(one.kib[phase]))
                assert one.spread_kib[phase] <= bound, (name, phase, one)
                assert abs(one.kib[phase] - other.kib[phase]) <= bound, (name, phase)
            assert one.kib["peak_rss"] > 0 and one.kib["load_rss"] > 0
        # The bigger model's arena is the bigger one.
        small = first.check(coral_models / f"{CORAL[1]}.tflite", CORAL[1], 1)
        large = first.check(coral_models / f"{CORAL[2]}.tflite", CORAL[2], 1)
        assert small is not None and large is not None
        assert large.kib["allocate_anon"] > small.kib["allocate_anon"]
    finally:
        first.close()
        second.close()


@needs_proc
def test_the_first_inferences_count_the_model_not_the_harness(tmp_path: Path) -> None:
    # A small model's first two inferences add a few pages of scratch. The input generator's
    # first use (numpy.random's import) adds 1.3 MiB of private memory: made in the measured
    # child, it was counted as the model's.
    path = tmp_path / "small.tflite"
    path.write_bytes(dense_model_bytes())
    probe = ModelProbe("LiteRT")
    try:
        measured = probe.check(path, "small", 1)
    finally:
        probe.close()
    assert measured is not None
    assert measured.kib["invoke_anon"] < 1024, measured


@needs_proc
def test_without_xnnpack_no_packed_weights_are_allocated(coral_models: Path) -> None:
    probe = ModelProbe("LiteRT")
    path = coral_models / "mobilenet_v2_1.0_224_quant.tflite"
    try:
        packed, plain = probe.check(path, "m", 1), probe.check(path, "m", 1, "builtin")
    finally:
        probe.close()
    assert packed is not None and plain is not None
    assert packed.kib["allocate_anon"] > plain.kib["allocate_anon"] + 1024


def test_a_model_that_crashes_a_forked_child_is_a_model_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A test double for a model that crashes LiteRT: the helper's own code, in the forked child
    # that runs the model, segfaults; the helper survives and says how its child ended.
    helper = (
        "import os, signal\n"
        "import pytest_edgetpu.engine.probe as probe\n"
        "probe._try_model = lambda runtime, request: os.kill(os.getpid(), signal.SIGSEGV)\n"
        "probe.serve()\n"
    )
    probe = ModelProbe("LiteRT 2.3.0", (sys.executable, "-c", helper))
    model = tmp_path / "m.tflite"
    model.write_bytes(dense_model_bytes(input_size=4, hidden=(4,), outputs=2))
    with pytest.raises(ModelError, match="ended with SIGSEGV while loading or running"):
        probe.check(model, "sha", 1)
    probe.close()


# ---------------------------------------------------------------------------------------------
# end to end


BENCH = """
import pytest


@pytest.mark.tpu_bench(model="models/dense.tflite")
def test_dense(tpu_bench):
    tpu_bench()
"""


def write_dense(project: pytest.Pytester, width: int) -> None:
    content = dense_model_bytes(input_size=256, hidden=(1024, width), outputs=16)
    (project.path / "models" / "dense.tflite").write_bytes(content)


@needs_proc
def test_an_arena_grown_by_30_percent_fails_naming_the_phase(
    project: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    project.makepyfile(test_dense=BENCH)
    write_dense(project, 1024)
    project.runpytest(*RECORDING_UPDATE).assert_outcomes(passed=1)
    (written,) = (project.path / "baselines").iterdir()
    recorded = json.loads(written.read_text())["entries"]["test_dense.py::test_dense"]
    assert set(recorded["memory_kib"]) == set(MEMORY_PHASES)

    # The same model again: memory within its tolerance (whatever the latency verdict).
    project.runpytest("--edgetpu", "--edgetpu-json=r.json")
    result = json.loads((project.path / "r.json").read_text())["results"][0]
    assert result["memory_verdict"] == {"regressed": [], "message": ""}
    assert result["memory"]["runs"] == 3

    # A wider second layer: a bigger arena (its weights and activations), +29 to +30% here.
    write_dense(project, 1400)
    outcome = project.runpytest(
        "--edgetpu", "--edgetpu-memory-threshold=10%", "--edgetpu-json=r.json"
    )
    outcome.assert_outcomes(failed=1)
    outcome.stdout.fnmatch_lines(
        [
            "*MEMORY *allocate_anon (private memory added by allocate_tensors) * KiB -> * KiB "
            "(+* KiB, +[23]?.?%; spread over 3 processes * KiB)*; tolerance 10% + 512 KiB; on cpu "
            "(x86_64, LiteRT *, 1 thread); baseline baselines/cpu-*.json recorded *"
        ]
    )
    result = json.loads((project.path / "r.json").read_text())["results"][0]
    assert "allocate_anon" in result["memory_verdict"]["regressed"]
    # Without pytest, the results file is judged on memory the same way.
    capsys.readouterr()
    assert (
        main(["compare", str(project.path / "r.json"), "--baseline-dir", str(written.parent)]) == 1
    )
    compared = capsys.readouterr().out
    assert "test_dense.py::test_dense: MEMORY " in compared and "grew in memory" in compared
    assert (
        main(
            [
                "compare",
                str(project.path / "r.json"),
                "--baseline-dir",
                str(written.parent),
                "--memory-threshold=80%",
                "--threshold=900%",
            ]
        )
        == 0
    )

    # A wider tolerance lets its memory pass (its latency grew too: the layer is wider); an
    # update records the new figures.
    project.runpytest("--edgetpu", "--edgetpu-memory-threshold=50%", "--edgetpu-json=r.json")
    result = json.loads((project.path / "r.json").read_text())["results"][0]
    assert result["memory_verdict"]["regressed"] == []
    project.runpytest(*RECORDING_UPDATE).assert_outcomes(passed=1)
    grown = json.loads(written.read_text())["entries"]["test_dense.py::test_dense"]
    assert grown["memory_kib"]["allocate_anon"] > recorded["memory_kib"]["allocate_anon"] * 1.2


@needs_proc
def test_a_real_model_swapped_for_a_bigger_one_fails_on_memory(
    project: pytest.Pytester, coral_models: Path
) -> None:
    model = project.path / "models" / "dense.tflite"
    project.makepyfile(test_dense=BENCH)
    shutil.copyfile(coral_models / "mobilenet_v1_0.25_128_quant.tflite", model)
    project.runpytest(*RECORDING_UPDATE).assert_outcomes(passed=1)
    shutil.copyfile(coral_models / "mobilenet_v1_0.5_160_quant.tflite", model)
    outcome = project.runpytest("--edgetpu", "--edgetpu-json=r.json", "--edgetpu-report=r.md")
    outcome.assert_outcomes(failed=1)
    outcome.stdout.fnmatch_lines(["*MEMORY *allocate_anon (private memory added by *"])
    result = json.loads((project.path / "r.json").read_text())["results"][0]
    # Its arena is twice the size (1.2 -> 2.5 MiB).
    assert "allocate_anon" in result["memory_verdict"]["regressed"]
    assert "1 grew in memory" in (project.path / "r.md").read_text()


def test_an_entry_without_memory_figures_gates_latency_only(project: pytest.Pytester) -> None:
    project.makepyfile(test_dense=BENCH)
    write_dense(project, 64)
    record(project, "test_dense.py::test_dense", value_ms=1.0)  # an entry of an earlier version
    project.runpytest("--edgetpu", "--edgetpu-json=r.json").assert_outcomes(passed=1)
    result = json.loads((project.path / "r.json").read_text())["results"][0]
    assert "memory_verdict" not in result


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--edgetpu-memory-slack=-1"], "ERROR: --edgetpu-memory-slack: -1 is below the smallest*"),
        (
            ["--edgetpu-memory-threshold=lots"],
            "ERROR: --edgetpu-memory-threshold: threshold 'lots'*",
        ),
    ],
    ids=["slack", "threshold"],
)
def test_bad_memory_tolerances_are_usage_errors(
    project: pytest.Pytester, args: list[str], message: str
) -> None:
    project.makepyfile(test_dense=BENCH)
    outcome = project.runpytest("--edgetpu", *args)
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    outcome.stderr.fnmatch_lines([message])
