"""Crash isolation: the probe helper tries CPU models before the session loads them.

The crash and hang cases use named test doubles for the helper (a process that kills itself
with SIGSEGV, one that never answers); the rest run the real helper on real models.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_edgetpu.core.errors import ModelError
from pytest_edgetpu.device.runtime import load_runtime
from pytest_edgetpu.device.selection import Device
from pytest_edgetpu.engine.probe import ModelProbe
from pytest_edgetpu.engine.session import DeviceSession
from pytest_edgetpu.model.builder import Graph, tflite
from pytest_edgetpu.model.examples import write_example_models

SEGFAULTING_HELPER = (
    sys.executable,
    "-c",
    "import os, signal, sys; sys.stdin.readline(); os.kill(os.getpid(), signal.SIGSEGV)",
)
SILENT_HELPER = (sys.executable, "-c", "import sys, time; sys.stdin.readline(); time.sleep(60)")


def counting_helper(log: Path) -> tuple[str, ...]:
    """A helper double that logs each request and answers ok, except that a model whose path
    holds ``segfault-me`` makes it segfault."""
    script = (
        "import json, os, signal, sys\n"
        "for line in sys.stdin:\n"
        "    if 'segfault-me' in line:\n"
        "        os.kill(os.getpid(), signal.SIGSEGV)\n"
        f"    open({str(log)!r}, 'a').write(line)\n"
        "    print(json.dumps({'id': json.loads(line)['id'], 'answer': 'ok'}), flush=True)\n"
    )
    return (sys.executable, "-c", script)


def requests(log: Path) -> list[tuple[int, str]]:
    """The (threads, path) of each request a counting helper logged."""
    return [(r["threads"], r["path"]) for r in map(json.loads, log.read_text().splitlines())]


@pytest.fixture
def example_model(tmp_path: Path) -> Path:
    return write_example_models(tmp_path)[0]


def test_a_model_that_crashes_the_helper_is_a_model_error(example_model: Path) -> None:
    probe = ModelProbe("LiteRT 2.3.0", SEGFAULTING_HELPER)
    with pytest.raises(ModelError) as caught:
        probe.check(example_model, "sha", 1)
    assert str(caught.value) == (
        f"{example_model}: the probe process running LiteRT 2.3.0 ended with SIGSEGV while "
        "loading or running this model, so the session did not load it; the file is damaged "
        "or hits a runtime bug; re-export or re-download it"
    )


def test_a_model_that_hangs_the_helper_is_a_model_error(example_model: Path) -> None:
    probe = ModelProbe("LiteRT 2.3.0", SILENT_HELPER, timeout_s=0.5)
    with pytest.raises(ModelError, match=r"did not finish within 0\.5 s in a probe process"):
        probe.check(example_model, "sha", 1)


def test_a_crashed_helper_is_replaced_for_the_next_model(
    example_model: Path, tmp_path: Path
) -> None:
    log = tmp_path / "requests.log"
    probe = ModelProbe("LiteRT 2.3.0", counting_helper(log))
    crashing = example_model.with_name("segfault-me.tflite")
    with pytest.raises(ModelError, match="ended with SIGSEGV"):
        probe.check(crashing, "sha-a", 1)
    probe.check(example_model, "sha-b", 1)
    probe.close()
    assert requests(log) == [(1, str(example_model))]


def test_each_model_and_thread_count_is_probed_once(example_model: Path, tmp_path: Path) -> None:
    log = tmp_path / "requests.log"
    probe = ModelProbe("LiteRT 2.3.0", counting_helper(log))
    for threads in (1, 1, 2, 1, 2):
        probe.check(example_model, "sha", threads)
    probe.close()
    assert requests(log) == [(1, str(example_model)), (2, str(example_model))]


def test_the_real_helper_runs_a_real_model(coral_models: Path) -> None:
    probe = ModelProbe(load_runtime().label)
    probe.check(coral_models / "mobilenet_v1_0.25_128_quant.tflite", "sha", 1)
    probe.close()


def test_a_model_the_runtime_refuses_fails_with_the_sessions_own_message(
    coral_models: Path,
) -> None:
    # The helper answers that the model failed; the session then raises the usual error.
    session = DeviceSession(Device("cpu", "cpu:0"), load_runtime())
    session.open()
    path = coral_models / "invalid_model_invoking_error.tflite"
    with pytest.raises(ModelError, match="uses the custom op 'fake-op-double'"):
        session.load(path).run()
    session.close()


def test_a_crashing_model_fails_its_test_and_the_session_goes_on(
    project: pytest.Pytester,
) -> None:
    project.makeconftest(
        f"""
        from pytest_edgetpu.engine import probe

        # A test double for a model that crashes LiteRT: the helper itself segfaults.
        probe.HELPER_COMMAND = {SEGFAULTING_HELPER!r}
        """
    )
    project.makepyfile(
        test_crash="""
        import pytest

        @pytest.mark.tpu_bench(model="models/tiny_conv.tflite")
        def test_first(tpu_bench):
            tpu_bench()

        def test_after():
            pass
        """
    )
    result = project.runpytest_subprocess("--edgetpu", "-p", "no:xdist")
    result.assert_outcomes(passed=1, errors=0, failed=1)
    result.stdout.fnmatch_lines(
        ["*models/tiny_conv.tflite: the probe process running * ended with SIGSEGV*"]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


def test_a_real_model_that_segfaults_litert_fails_its_test_and_the_run_goes_on(
    project: pytest.Pytester, coral_models: Path
) -> None:
    # split_concat.tflite with byte 208 set to 0xFF passes every check of the file, and LiteRT
    # 2.3.0 segfaults preparing it (found by benchmarks/mutants.py --sweep split_concat.tflite).
    damaged = bytearray((coral_models / "split_concat.tflite").read_bytes())
    damaged[208] = 0xFF
    (project.path / "models" / "damaged.tflite").write_bytes(bytes(damaged))
    project.makepyfile(
        test_damaged="""
        import pytest

        @pytest.mark.tpu_bench(model="models/damaged.tflite")
        def test_damaged(tpu_bench):
            tpu_bench()

        @pytest.mark.tpu_bench(model="models/tiny_conv.tflite")
        def test_after(tpu_bench):
            tpu_bench()
        """
    )
    # In a subprocess: were the probe to miss it, the crash must not take this suite down.
    result = project.runpytest_subprocess("--edgetpu", "-p", "no:xdist")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*models/damaged.tflite: the probe process running LiteRT * ended with SIGSEGV while"
            " loading or running this model, so the session did not load it*"
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


def shared_weight_model(path: Path, operators: int) -> None:
    """A model of ``operators`` fully connected layers that all use one 1024x1024 weight: a
    few MB on disk, and about 4 MiB more resident per operator once XNNPACK has packed the
    weight for each."""
    graph = Graph("pytest-edgetpu test: one weight shared by many operators")
    x = graph.tensor("input", (1, 1024))
    weight = graph.constant("weight", np.full((1024, 1024), 0.001, np.float32))
    bias = graph.constant("bias", np.zeros(1024, np.float32))

    def options(b: Any) -> int:
        tflite.FullyConnectedOptionsStart(b)
        return int(tflite.FullyConnectedOptionsEnd(b))

    for index in range(operators):
        out = graph.tensor(f"dense_{index}", (1, 1024))
        graph.op(
            tflite.BuiltinOperator.FULLY_CONNECTED,
            (x, weight, bias),
            (out,),
            tflite.BuiltinOptions.FullyConnectedOptions,
            options,
        )
        x = out
    path.write_bytes(graph.serialize([0], [x]))


def test_a_model_that_grows_past_the_memory_bound_is_refused_in_one_line(
    tmp_path: Path, example_model: Path
) -> None:
    model = tmp_path / "shared.tflite"
    shared_weight_model(model, operators=150)  # about 600 MiB resident
    probe = ModelProbe(load_runtime().label, memory_bound=300 * 2**20)
    try:
        with pytest.raises(ModelError) as refused:
            probe.check(model, "a" * 64, 1)
        assert str(refused.value) == (
            f"{model}: loading it and running two inferences took more than 0.293 GiB of memory "
            "in a probe process (the bound: half this host's memory), so the session did not "
            "load it; find what makes it so large (XNNPACK packs a weight again for each "
            "operator that uses it), or run it on a host with more memory"
        )
        # The next model, within the bound, is probed as before (by a new helper).
        assert probe.check(example_model, "b" * 64, 1) is not None
    finally:
        probe.close()
