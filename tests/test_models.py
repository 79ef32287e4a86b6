"""Tests for pytest_edgetpu.model.inspection (inspection, bad-file errors) and .example_models."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
import pytest
import tflite
from factories import (
    TIMEOUT_S,
    assert_clean,
    bench_file,
    single_bench_file,
)

from pytest_edgetpu.core.errors import ModelError
from pytest_edgetpu.model.examples import (
    EXAMPLE_MODELS,
    conv_model_bytes,
    dense_model_bytes,
    write_conv_model,
    write_dense_model,
    write_example_models,
)
from pytest_edgetpu.model.inspection import EDGETPU_CUSTOM_OP, ModelInfo, inspect_model, sha256_of

CPU_MOBILENET = "mobilenet_v1_0.25_128_quant.tflite"
EDGETPU_MOBILENET = "mobilenet_v1_0.25_128_quant_edgetpu.tflite"


def run_model(path: Path) -> tuple[dict[str, Any], np.ndarray[Any, Any]]:
    """Run one invoke of the model in LiteRT on a seeded input; return input details, output."""
    interpreter_module = pytest.importorskip("ai_edge_litert.interpreter")
    interpreter = interpreter_module.Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    (input_details,) = interpreter.get_input_details()
    (output_details,) = interpreter.get_output_details()
    rng = np.random.default_rng(0)
    x = rng.standard_normal(input_details["shape"]).astype(input_details["dtype"])
    interpreter.set_tensor(input_details["index"], x)
    interpreter.invoke()
    return input_details, interpreter.get_tensor(output_details["index"])


def reference_operator_names(data: bytes) -> tuple[str, ...]:
    """Operator names read with the generated tflite accessors, to cross-check the reader."""
    model = tflite.Model.GetRootAsModel(data, 0)
    names = []
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for o in range(subgraph.OperatorsLength()):
            opcode = model.OperatorCodes(subgraph.Operators(o).OpcodeIndex())
            if opcode.BuiltinCode() == tflite.BuiltinOperator.CUSTOM:
                names.append(opcode.CustomCode().decode())
            else:
                names.append(tflite.utils.BUILTIN_OPCODE2NAME[opcode.BuiltinCode()])
    return tuple(names)


# --- Real Coral models -------------------------------------------------------------------


def test_edgetpu_model_is_one_edgetpu_op(coral_models: Path) -> None:
    info = inspect_model(coral_models / EDGETPU_MOBILENET)
    assert info.operators == (EDGETPU_CUSTOM_OP,)
    assert info.edgetpu_ops == 1
    assert info.cpu_ops == 0
    assert info.needs_edgetpu
    assert not info.partially_mapped
    assert info.unknown_custom_ops == ()
    assert info.size_bytes == (coral_models / EDGETPU_MOBILENET).stat().st_size


def test_cpu_model_has_only_builtin_ops(coral_models: Path) -> None:
    info = inspect_model(str(coral_models / CPU_MOBILENET))
    assert info.edgetpu_ops == 0
    assert not info.needs_edgetpu
    assert info.cpu_ops == len(info.operators) > 20
    assert {"CONV_2D", "DEPTHWISE_CONV_2D"} <= set(info.operators)
    assert info.operators[-1] == "SOFTMAX"
    assert info.unknown_custom_ops == ()
    assert info.path == coral_models / CPU_MOBILENET


def test_unknown_custom_op_is_listed(coral_models: Path) -> None:
    info = inspect_model(coral_models / "invalid_model_invoking_error.tflite")
    assert info.unknown_custom_ops == ("fake-op-double",)
    assert not info.needs_edgetpu


def test_sha256_matches_readme(coral_models: Path) -> None:
    readme = (coral_models / "README.md").read_text()
    listed = {
        name: digest
        for digest, name in re.findall(r"^([0-9a-f]{64})\s+(\S+)$", readme, re.MULTILINE)
    }
    path = coral_models / "keras_lstm_mnist_ptq.tflite"
    assert sha256_of(path) == listed["keras_lstm_mnist_ptq.tflite"]
    assert inspect_model(path).sha256 == listed["keras_lstm_mnist_ptq.tflite"]


def test_operators_agree_with_tflite_accessors(coral_models: Path) -> None:
    for path in sorted(coral_models.glob("*.tflite")):
        assert inspect_model(path).operators == reference_operator_names(path.read_bytes()), path


def test_partially_mapped_needs_both_kinds() -> None:
    def info(edgetpu_ops: int, cpu_ops: int) -> ModelInfo:
        return ModelInfo(
            path=Path("m.tflite"),
            sha256="0" * 64,
            size_bytes=1,
            operators=(),
            edgetpu_ops=edgetpu_ops,
            cpu_ops=cpu_ops,
            unknown_custom_ops=(),
        )

    assert info(1, 2).partially_mapped
    assert info(1, 2).needs_edgetpu
    assert not info(1, 0).partially_mapped
    assert not info(0, 2).partially_mapped
    assert not info(0, 2).needs_edgetpu


# --- Bad files ----------------------------------------------------------------------------


def model_error(path: Path) -> str:
    with pytest.raises(ModelError) as excinfo:
        inspect_model(path)
    message = str(excinfo.value)
    assert str(path) in message
    assert "\n" not in message
    return message


def test_missing_file(tmp_path: Path) -> None:
    message = model_error(tmp_path / "models" / "x.tflite")
    assert message.startswith(f"model file not found: {tmp_path / 'models' / 'x.tflite'}")
    assert "relative paths are resolved from" in message


def test_directory(tmp_path: Path) -> None:
    message = model_error(tmp_path)
    assert "is a directory, not a TFLite model" in message
    assert "SavedModel" in message


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.tflite"
    path.write_bytes(b"")
    message = model_error(path)
    assert "is not a TFLite model" in message
    assert "empty" in message


def test_shorter_than_header(tmp_path: Path) -> None:
    path = tmp_path / "short.tflite"
    path.write_bytes(b"\x10\x00\x00\x00TF")
    assert "no 'TFL3' flatbuffer identifier" in model_error(path)


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "random.tflite"
    path.write_bytes(np.random.default_rng(1234).bytes(4096))
    message = model_error(path)
    assert "is not a TFLite model (no 'TFL3' flatbuffer identifier" in message
    assert "truncated download" in message


def test_json_renamed(tmp_path: Path) -> None:
    path = tmp_path / "model.tflite"
    path.write_text(json.dumps({"format": "layers-model", "modelTopology": {}}))
    message = model_error(path)
    assert "no 'TFL3' flatbuffer identifier" in message
    assert "JSON" in message


def test_git_lfs_pointer(tmp_path: Path) -> None:
    path = tmp_path / "model.tflite"
    path.write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 1\n"
    )
    assert "git lfs pull" in model_error(path)


def test_truncated_real_model(coral_models: Path, tmp_path: Path) -> None:
    data = (coral_models / CPU_MOBILENET).read_bytes()
    path = tmp_path / "half.tflite"
    path.write_bytes(data[: len(data) // 2])
    message = model_error(path)
    assert "is a corrupt TFLite model (" in message
    assert "re-export or re-download it" in message


@pytest.mark.parametrize(
    "name",
    [
        "split_concat_edgetpu.tflite",
        "keras_lstm_mnist_ptq.tflite",
        "keras_lstm_mnist_ptq_edgetpu.tflite",
    ],
)
def test_every_truncation_is_an_error(coral_models: Path, tmp_path: Path, name: str) -> None:
    # These files end with the flatbuffer (the mobilenets carry a labels zip after it, whose
    # loss leaves a loadable model), so every cut must be reported.
    data = (coral_models / name).read_bytes()
    path = tmp_path / name
    for size in [*range(8, len(data), max(1, len(data) // 97)), len(data) - 1]:
        path.write_bytes(data[:size])
        with pytest.raises(ModelError, match=r"corrupt TFLite model|not a TFLite model"):
            inspect_model(path)


def test_zeroed_ranges_never_crash(coral_models: Path, tmp_path: Path) -> None:
    data = (coral_models / "split_concat.tflite").read_bytes()
    path = tmp_path / "zeroed.tflite"
    outcomes = set()
    for start in range(8, len(data), 24):
        for length in (4, 64):
            damaged = bytearray(data)
            damaged[start : start + length] = bytes(len(damaged[start : start + length]))
            path.write_bytes(bytes(damaged))
            try:
                info = inspect_model(path)
            except ModelError as exc:
                message = str(exc)
                outcomes.add("error")
            else:
                message = str(info.path)
                outcomes.add("info")
            assert str(path) in message
    assert outcomes == {"error", "info"}


def test_random_damage_never_crashes(coral_models: Path, tmp_path: Path) -> None:
    data = (coral_models / "keras_lstm_mnist_ptq.tflite").read_bytes()
    rng = np.random.default_rng(7)
    path = tmp_path / "damaged.tflite"
    for _ in range(150):
        damaged = bytearray(data)
        start = int(rng.integers(8, len(data)))
        chunk = rng.bytes(int(rng.integers(1, 64)))
        damaged[start : start + len(chunk)] = chunk
        path.write_bytes(bytes(damaged[: len(data)]))
        with contextlib.suppress(ModelError):
            inspect_model(path)


def test_other_schema_version(tmp_path: Path) -> None:
    data = bytearray(dense_model_bytes(hidden=()))
    table = tflite.Model.GetRootAsModel(data, 0)._tab
    data[table.Pos + table.Offset(4)] = 2
    path = tmp_path / "v2.tflite"
    path.write_bytes(bytes(data))
    assert "schema version 2" in model_error(path)


def test_aliased_offsets_do_not_hang(tmp_path: Path) -> None:
    # 4000 subgraphs that all point at one subgraph of 4000 operators: 16 million nodes
    # from a 32 kB file, unless the reader notices that the vectors overlap.
    b = flatbuffers.Builder(0)
    tflite.OperatorStart(b)
    operator = tflite.OperatorEnd(b)
    tflite.SubGraphStartOperatorsVector(b, 4000)
    for _ in range(4000):
        b.PrependUOffsetTRelative(operator)
    operators = b.EndVector()
    tflite.SubGraphStart(b)
    tflite.SubGraphAddOperators(b, operators)
    subgraph = tflite.SubGraphEnd(b)
    tflite.ModelStartSubgraphsVector(b, 4000)
    for _ in range(4000):
        b.PrependUOffsetTRelative(subgraph)
    subgraphs = b.EndVector()
    tflite.OperatorCodeStart(b)
    tflite.OperatorCodeAddBuiltinCode(b, tflite.BuiltinOperator.ADD)
    opcode = tflite.OperatorCodeEnd(b)
    tflite.ModelStartOperatorCodesVector(b, 1)
    b.PrependUOffsetTRelative(opcode)
    opcodes = b.EndVector()
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, opcodes)
    tflite.ModelAddSubgraphs(b, subgraphs)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    path = tmp_path / "alias.tflite"
    path.write_bytes(bytes(b.Output()))
    assert "more elements than the file can hold" in model_error(path)


# --- Generated models ---------------------------------------------------------------------


def test_generation_is_deterministic(tmp_path: Path) -> None:
    first = write_dense_model(tmp_path / "a.tflite", seed=3)
    second = write_dense_model(tmp_path / "b.tflite", seed=3)
    assert sha256_of(first) == sha256_of(second)
    assert conv_model_bytes(seed=3) == conv_model_bytes(seed=3)
    assert conv_model_bytes(seed=3) != conv_model_bytes(seed=4)
    assert dense_model_bytes(seed=3) != dense_model_bytes(seed=4)


def test_generated_models_follow_tflite_conventions() -> None:
    model = tflite.Model.GetRootAsModel(dense_model_bytes(), 0)
    assert tflite.Model.ModelBufferHasIdentifier(dense_model_bytes(), 0)
    assert model.Version() == 3
    assert model.Buffers(0).DataLength() == 0
    assert model.Description().startswith(b"pytest-edgetpu example")
    assert model.SubgraphsLength() == 1
    subgraph = model.Subgraphs(0)
    assert subgraph.Tensors(subgraph.Inputs(0)).Name() == b"input"
    assert subgraph.Tensors(subgraph.Outputs(0)).Name() == b"output"


@pytest.mark.parametrize(
    ("write", "kwargs", "input_shape", "operators"),
    [
        (
            write_dense_model,
            {},
            [1, 64],
            ("FULLY_CONNECTED", "FULLY_CONNECTED", "FULLY_CONNECTED", "SOFTMAX"),
        ),
        (write_dense_model, {"hidden": (), "outputs": 3}, [1, 64], ("FULLY_CONNECTED", "SOFTMAX")),
        (
            write_conv_model,
            {},
            [1, 32, 32, 3],
            ("CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"),
        ),
        (
            write_conv_model,
            {"image_size": 7, "channels": 1, "filters": 4, "outputs": 2},
            [1, 7, 7, 1],
            ("CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"),
        ),
    ],
)
def test_generated_models_run_in_litert(
    tmp_path: Path,
    write: Any,
    kwargs: dict[str, Any],
    input_shape: list[int],
    operators: tuple[str, ...],
) -> None:
    path = write(tmp_path / "model.tflite", **kwargs)
    info = inspect_model(path)
    assert info.operators == operators
    assert info.cpu_ops == len(operators)
    assert not info.needs_edgetpu
    input_details, output = run_model(path)
    assert list(input_details["shape"]) == input_shape
    assert input_details["dtype"] == np.float32
    assert output.shape == (1, kwargs.get("outputs", 10))
    assert output.dtype == np.float32
    assert np.all(output >= 0)
    assert float(output.sum()) == pytest.approx(1.0, abs=1e-5)


def test_example_models(tmp_path: Path) -> None:
    directory = tmp_path / "examples" / "models"
    paths = write_example_models(directory)
    assert [path.name for path in paths] == list(EXAMPLE_MODELS)
    assert all(path.parent == directory for path in paths)
    for path in paths:
        _, output = run_model(path)
        assert output.shape == (1, 10)
        assert float(output.sum()) == pytest.approx(1.0, abs=1e-5)

    mtimes = [path.stat().st_mtime_ns for path in paths]
    assert write_example_models(directory) == paths
    assert [path.stat().st_mtime_ns for path in paths] == mtimes
    assert sorted(p.name for p in directory.iterdir()) == sorted(EXAMPLE_MODELS)

    # A damaged copy is replaced; the intact one is left alone.
    good = paths[0].read_bytes()
    paths[0].write_bytes(b"stale")
    write_example_models(directory)
    assert paths[0].read_bytes() == good
    assert paths[1].stat().st_mtime_ns == mtimes[1]


def test_the_committed_example_baselines_name_the_generated_models(tmp_path: Path) -> None:
    # Model bytes that drift (a numpy release, a change to the graph builder) would turn the
    # README's main job into MODEL_CHANGED against the baselines committed with the project.
    generated = {sha256_of(path) for path in write_example_models(tmp_path)}
    named = [
        entry["model_sha256"]
        for file in (Path(__file__).parent.parent / "baselines").glob("*.json")
        for entry in json.loads(file.read_text())["entries"].values()
        if entry.get("model_sha256")
    ]
    assert len(named) >= 2
    assert set(named) <= generated


@pytest.mark.parametrize(
    "kwargs", [{"input_size": 0}, {"hidden": (8, -1)}, {"outputs": True}, {"input_size": 2.5}]
)
def test_dense_rejects_bad_sizes(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be a positive integer"):
        write_dense_model(tmp_path / "m.tflite", **kwargs)
    assert not (tmp_path / "m.tflite").exists()


def test_conv_rejects_bad_sizes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="filters must be a positive integer"):
        write_conv_model(tmp_path / "m.tflite", filters=0)


def test_writing_the_example_models_follows_no_planted_symlink_and_waits_on_no_fifo(
    tmp_path: Path,
) -> None:
    # A shared models folder: another user plants a symlink where a temporary file with the
    # writer's pid would go, and a FIFO where a model goes (reading it would block forever).
    directory = tmp_path / "models"
    directory.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    dense, conv = EXAMPLE_MODELS
    (directory / f".{dense}.{os.getpid()}.tmp").symlink_to(victim)
    os.mkfifo(directory / conv)
    # In a process of its own: a writer that opens the FIFO blocks, and the timeout says so.
    code = (
        "from pytest_edgetpu.model.examples import write_example_models\n"
        f"write_example_models({str(directory)!r})\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    paths = [directory / dense, directory / conv]
    assert victim.read_text() == "keep me"
    assert all(path.is_file() and not path.is_symlink() for path in paths)
    assert [inspect_model(path).size_bytes for path in paths] == [p.stat().st_size for p in paths]


# ---------------------------------------------------------------------------------------------
# bad models: the test fails (or skips) with one line naming the file and the fix


def test_bad_model_files_fail_their_test_with_one_line(project: pytest.Pytester) -> None:
    models = project.path / "models"
    (models / "random.tflite").write_bytes(bytes(range(256)) * 8)
    (models / "empty.tflite").write_bytes(b"")
    (models / "truncated.tflite").write_bytes((models / "tiny_conv.tflite").read_bytes()[:3000])
    (models / "renamed.tflite").write_text('{"format": "layers-model"}', encoding="utf-8")
    project.makepyfile(
        test_bad_models="""
        import pytest

        @pytest.mark.parametrize(
            "name", ["missing", "random", "empty", "truncated", "renamed"]
        )
        def test_model(tpu_bench, name):
            tpu_bench(f"models/{name}.tflite")
        """
    )
    result = project.runpytest("--edgetpu")
    result.assert_outcomes(failed=5)
    root = project.path
    result.stdout.fnmatch_lines(
        [
            f"model file not found: {root}/models/missing.tflite (check the model path given to"
            " the test, the marker or the command line; relative paths are resolved from the"
            " pytest rootdir)",
            f"{root}/models/random.tflite is not a TFLite model (no 'TFL3' flatbuffer"
            " identifier at bytes 4..8; is it a SavedModel, an ONNX file or a truncated"
            " download?)",
            f"{root}/models/empty.tflite is not a TFLite model (the file is empty; an"
            " interrupted download or write? re-export or re-download it)",
            f"{root}/models/truncated.tflite is a corrupt TFLite model (* lies outside the"
            " 3000-byte file); re-export or re-download it",
            f"{root}/models/renamed.tflite is not a TFLite model (no 'TFL3' flatbuffer"
            " identifier at bytes 4..8; it looks like JSON, not a .tflite flatbuffer: convert"
            " the model to TFLite)",
        ],
        consecutive=False,
    )
    assert_clean(result)


def test_a_bad_model_file_named_on_the_command_line_fails_its_item(
    project: pytest.Pytester,
) -> None:
    (project.path / "models" / "broken.tflite").write_bytes(b"\x00" * 64)
    result = project.runpytest("--edgetpu", "models/broken.tflite")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ tpu_bench broken.tflite _*",
            f"{project.path}/models/broken.tflite is not a TFLite model (no 'TFL3' flatbuffer"
            " identifier at bytes 4..8; is it a SavedModel, an ONNX file or a truncated"
            " download?)",
        ]
    )
    assert_clean(result)


def test_unknown_custom_op_fails_and_an_edgetpu_model_skips(
    project: pytest.Pytester, coral_models: Path
) -> None:
    model = project.path / "models" / "invalid_model_invoking_error.tflite"
    model.write_bytes((coral_models / model.name).read_bytes())
    tpu_model = project.path / "models" / "split_concat_edgetpu.tflite"
    tpu_model.write_bytes((coral_models / tpu_model.name).read_bytes())
    project.makepyfile(
        test_op=bench_file("test_op", marker=f"model={str(model)!r}"),
        test_tpu=bench_file("test_tpu", marker=f"model={str(tpu_model)!r}"),
    )
    # Through the marker, and as files collected from the command line.
    result = project.runpytest(
        "--edgetpu", "-rs", "test_op.py", "test_tpu.py", f"models/{model.name}"
    )
    result.assert_outcomes(failed=2, skipped=1)
    message = (
        f"{model} uses the custom op 'fake-op-double*', which this runtime does not provide;"
        " register the op or export the model without it"
    )
    result.stdout.fnmatch_lines(
        [
            "*_ test_op _*",
            message,
            f"*_ tpu_bench {model.name} _*",
            message,
            "SKIPPED ?1? test_tpu.py:4: EDGETPU COMPILE NO_BASELINE models/split_concat_edgetpu"
            ".tflite: 1 Edge TPU subgraph(s), 192 B cached, 0 B streamed per inference, 0 op(s)"
            " on the CPU; nothing to compare with in baselines/edgetpu-compile.json; record it"
            " with --edgetpu-update-baselines; latency not measured: no Edge TPU attached (this"
            " run uses cpu:0)",
        ]
    )
    assert_clean(result)
    # Without --edgetpu, nothing is gated and the model's reason is the runtime's.
    smoke = project.runpytest("-rs", "test_tpu.py")
    smoke.stdout.fnmatch_lines(
        [
            f"SKIPPED ?1? test_tpu.py:4: {tpu_model} is compiled for the Edge TPU (1"
            " edgetpu-custom-op node(s)) and this run uses cpu:0; attach an Edge TPU (see"
            " `pytest-edgetpu devices`) or benchmark the CPU twin (the file without the"
            " _edgetpu suffix)",
        ]
    )


# ---------------------------------------------------------------------------------------------
# any character in a model path


def test_a_newline_in_a_model_path_keeps_the_probe_in_step(
    project: pytest.Pytester, coral_models: Path
) -> None:
    models = project.path / "models"
    shutil.copy(models / "tiny_conv.tflite", models / "good\nname.tflite")
    # A model that segfaults LiteRT (test_probe.py): were the probe one answer behind, the
    # session would load it itself and die with SIGSEGV.
    damaged = bytearray((coral_models / "split_concat.tflite").read_bytes())
    damaged[208] = 0xFF
    (models / "damaged.tflite").write_bytes(bytes(damaged))
    project.makepyfile(
        test_paths=(
            "import pytest\n\n"
            "@pytest.mark.parametrize('name', ['good\\nname', 'damaged'])\n"
            "def test_model(tpu_bench, name):\n    tpu_bench(f'models/{name}.tflite')\n"
        )
    )
    result = project.runpytest_subprocess("--edgetpu", "-p", "no:xdist", timeout=TIMEOUT_S * 2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*models/damaged.tflite: the probe process running * SIGSEGV*"])


def test_a_nul_in_a_model_path_is_one_line(project: pytest.Pytester) -> None:
    project.makepyfile(test_call=single_bench_file(marker="", call="'models/tiny\\0conv.tflite'"))
    called = project.runpytest("--edgetpu")
    called.assert_outcomes(failed=1)
    called.stdout.fnmatch_lines(
        [
            "*cannot read model file */models/tiny\\x00conv.tflite: the path * holds a NUL"
            " byte, which no file name can"
        ]
    )
    assert_clean(called)
    project.makepyfile(test_call=single_bench_file(marker="model='models/tiny\\0conv.tflite'"))
    marked = project.runpytest("--edgetpu")
    marked.assert_outcomes(errors=1)
    marked.stdout.fnmatch_lines(
        [
            "tpu_bench(model=...) on test_call.py::test_a: 'models/tiny\\x00conv.tflite' holds"
            " a NUL byte, which no path can"
        ]
    )
    assert_clean(marked)


def test_an_error_naming_a_path_with_a_newline_or_escape_is_one_line(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(
        test_a=single_bench_file(marker="", call="'models/no\\nsuch\\x1b[2J.tflite'")
    )
    result = project.runpytest("--edgetpu")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*model file not found: */models/no\\nsuch\\x1b[2J.tflite (*"])
    assert "\x1b[2J" not in result.stdout.str()
