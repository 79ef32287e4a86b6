"""The session's first CPU interpreter: LiteRT's XNNPACK log line goes nowhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pytest_edgetpu.core.errors import ModelError
from pytest_edgetpu.device.runtime import FIRST_LOG_MODEL, load_runtime, make_interpreter
from pytest_edgetpu.model.builder import Graph
from pytest_edgetpu.model.examples import first_log_model_bytes, write_conv_model

XNNPACK_LINE = "Created TensorFlow Lite XNNPACK delegate for CPU"


def test_the_written_out_first_log_model_is_the_generated_one() -> None:
    assert first_log_model_bytes() == FIRST_LOG_MODEL


def _stderr_of_building(model: Path, consume_first: bool) -> str:
    code = (
        "from pytest_edgetpu.device.runtime import consume_first_cpu_log, load_runtime\n"
        "runtime = load_runtime()\n"
        f"if {consume_first}:\n"
        "    consume_first_cpu_log(runtime)\n"
        f"runtime.interpreter_class(model_path={str(model)!r}, num_threads=1).allocate_tensors()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stderr


def test_the_first_real_model_prints_no_xnnpack_line_once_the_log_is_consumed(
    tmp_path: Path,
) -> None:
    model = write_conv_model(tmp_path / "conv.tflite")
    assert XNNPACK_LINE in _stderr_of_building(model, consume_first=False)
    assert XNNPACK_LINE not in _stderr_of_building(model, consume_first=True)


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


def test_a_model_the_runtime_refuses_without_a_reason_names_its_huge_tensor(
    tmp_path: Path,
) -> None:
    """LiteRT refuses a tensor of 100 GB with an empty RuntimeError; the message says what
    the model declares instead of 'RuntimeError'."""
    graph = Graph("pytest-edgetpu test: a tensor of 93 GiB")
    x = graph.tensor("input", (1000, 25_000_000))
    model = tmp_path / "huge.tflite"
    model.write_bytes(graph.serialize([0], [graph.softmax("output", x, (1000, 25_000_000))]))
    runtime = load_runtime()
    with pytest.raises(ModelError) as refused:
        make_interpreter(runtime, model, num_threads=1)
    assert str(refused.value) == (
        f"{model} failed to prepare: {runtime.label} gave no reason; its largest tensor, "
        "'input' (1000x25000000 float32), takes 93.1 GiB: a shape that large is usually a "
        "mistake of the export; re-export it with the shapes it needs"
    )
