"""What edgetpu_compiler did to a model, read from the compiled file (model room): real
compiled models against figures known from elsewhere, hostile package bytes, and
``pytest-edgetpu inspect``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_edgetpu.cli import main
from pytest_edgetpu.core.errors import ModelError
from pytest_edgetpu.model.compile_report import read_package
from pytest_edgetpu.model.flatbuffer import CorruptError
from pytest_edgetpu.model.inspection import inspect_model

COCOMPILED = "mobilenet_v1_0.25_128_quant_cocompiled_with_3quant_edgetpu.tflite"
MOVENET = "movenet_single_pose_lightning_ptq_edgetpu.tflite"


def test_a_co_compiled_model_streams_what_no_longer_fits_the_cache(
    coral_models: Path, compiled_models: Path
) -> None:
    alone = inspect_model(coral_models / "mobilenet_v1_0.25_128_quant_edgetpu.tflite").compiled
    shared = inspect_model(compiled_models / COCOMPILED).compiled
    assert alone is not None and shared is not None
    # The same network: alone, every parameter is cached on chip and none is streamed;
    # compiled beside three others, 245 KiB of them are streamed on every inference.
    assert (alone.cached_bytes, alone.streamed_bytes) == (566_912, 0)
    assert (shared.cached_bytes, shared.streamed_bytes) == (315_840, 251_072)
    assert alone.cached_bytes + alone.streamed_bytes == shared.cached_bytes + shared.streamed_bytes
    # The caching token of the model compiled alone, as docs/devices.md's source recorded it
    # with an independent parser; co-compiled models get a token of their own.
    assert alone.subgraphs[0].caching_token == 0x6D146C3F97D6648C
    assert shared.subgraphs[0].caching_token not in (0, 0x6D146C3F97D6648C)
    for report in (alone, shared):
        assert len(report.subgraphs) == 1 and report.cpu_ops == ()
        assert report.min_runtime_version == 12
        roles = sorted(e.role for e in report.subgraphs[0].executables)
        assert roles == ["EXECUTION_ONLY", "PARAMETER_CACHING"]


@pytest.mark.parametrize(
    ("name", "counts", "placements"),
    [
        (
            MOVENET,
            {"RESHAPE": 11, "QUANTIZE": 7, "ADD": 6, "CAST": 5, "MUL": 5, "SUB": 4},
            {"before": 2, "after": 57},
        ),
        (
            "posenet_mobilenet_v1_075_353_481_16_quant_decoder_edgetpu.tflite",
            {"PosenetDecoderOp": 1},
            {"after": 1},
        ),
        (
            "ssd_mobilenet_v1_coco_quant_postprocess_segment_3_of_4_edgetpu.tflite",
            {"DEQUANTIZE": 2, "TFLite_Detection_PostProcess": 1},
            {"after": 3},
        ),
    ],
)
def test_ops_left_on_the_cpu_and_where_they_run(
    compiled_models: Path, name: str, counts: dict[str, int], placements: dict[str, int]
) -> None:
    info = inspect_model(compiled_models / name)
    report = info.compiled
    assert report is not None
    assert {op: report.cpu_op_counts[op] for op in counts} == counts
    assert report.placements == placements
    assert len(report.cpu_ops) == info.cpu_ops


def test_every_compiled_model_reads_and_a_plain_one_has_no_report(
    coral_models: Path, compiled_models: Path
) -> None:
    compiled = [*coral_models.glob("*_edgetpu.tflite"), *compiled_models.glob("*_edgetpu.tflite")]
    assert len(compiled) == 8
    for path in compiled:
        report = inspect_model(path).compiled
        assert report is not None and report.subgraphs, path
        assert report.cached_bytes + report.streamed_bytes > 0, path
    for path in (
        *coral_models.glob("*_quant.tflite"),
        compiled_models / MOVENET.replace("_edgetpu", ""),
    ):
        info = inspect_model(path)
        assert info.compiled is None and info.parameter_bytes > 0 and info.tensors > 0, path


@pytest.fixture(scope="module")
def options(compiled_models: Path) -> bytes:
    """The custom options of the co-compiled model's edgetpu-custom-op node, read with the
    ``tflite`` package's own accessors."""
    import tflite

    model = tflite.Model.GetRootAsModel((compiled_models / COCOMPILED).read_bytes(), 0)
    node = model.Subgraphs(0).Operators(0)
    assert model.OperatorCodes(node.OpcodeIndex()).CustomCode() == b"edgetpu-custom-op"
    return bytes(node.CustomOptionsAsNumpy().tobytes())


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_damaged_package_bytes_are_a_corrupt_error_or_a_report(
    options: bytes, data: st.DataObject
) -> None:
    damaged = bytearray(options)
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(damaged) - 1))
        damaged[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(damaged)))
    errors = []
    for candidate in (bytes(damaged), bytes(damaged[:cut]), options[:cut]):
        try:
            read_package(candidate, 0)
        except CorruptError as error:  # anything else escaping is the bug this looks for
            errors.append(str(error))
    assert not [error for error in errors if "\n" in error]


def test_a_corrupt_package_is_one_line_naming_the_file(
    compiled_models: Path, tmp_path: Path
) -> None:
    data = bytearray((compiled_models / COCOMPILED).read_bytes())
    identifier = data.index(b"DWN1")
    data[identifier : identifier + 4] = b"XXXX"
    damaged = tmp_path / "x_edgetpu.tflite"
    damaged.write_bytes(bytes(data))
    with pytest.raises(ModelError) as caught:
        inspect_model(damaged)
    assert str(caught.value) == (
        f"{damaged} is a corrupt Edge TPU model (the package of edgetpu-custom-op node #0 has "
        "no 'DWN1' identifier); compile it again with edgetpu_compiler"
    )


def test_inspect_prints_the_compilers_summary_and_goes_on_past_a_bad_file(
    compiled_models: Path, coral_models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "notes.tflite"
    bad.write_text("not a model")
    plain = coral_models / "mobilenet_v1_0.25_128_quant.tflite"
    code = main(["inspect", str(compiled_models / COCOMPILED), str(bad), str(plain)])
    out, err = capsys.readouterr()
    assert code == 2
    assert "  On-chip memory used for caching model parameters: 308.44 KiB\n" in out
    assert "  Off-chip memory used for streaming uncached model parameters: 245.19 KiB\n" in out
    assert "  Number of Edge TPU subgraphs: 1\n" in out
    assert f"{plain} (sha256 cb273c23ee76, 513.28 KiB): not compiled for the Edge TPU\n" in out
    assert "  operators: 31 (CONV_2D 15, DEPTHWISE_CONV_2D 13, AVERAGE_POOL_2D 1" in out
    assert err.count("\n") == 1 and err.startswith(f"pytest-edgetpu: error: {bad} is not a TFLite")


def test_inspect_json(compiled_models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "--json", str(compiled_models / MOVENET)]) == 0
    (document,) = json.loads(capsys.readouterr().out)
    compiled = document["compiled"]
    assert compiled["edgetpu_subgraphs"] == 1
    assert compiled["cpu_op_placement"] == {"before": 2, "after": 57}
    assert compiled["streamed_bytes"] == 2368
    assert [e["role"] for e in compiled["subgraphs"][0]["executables"]] == [
        "EXECUTION_ONLY",
        "PARAMETER_CACHING",
    ]
