"""Devices beyond the Edge TPU: the CPU with and without XNNPACK, TFLite external delegates,
LiteRT's CompiledModel accelerators, and the requirement of full delegation.

Real LiteRT on real models throughout. The external delegate is a test double,
tests/fake_delegate/fake_delegate.c, built here as a shared object: a real TFLite external
delegate (``tflite_plugin_create_delegate``) that takes the operators its ``claim`` option
names and computes nothing, with no accelerator behind it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from factories import build_shared_object

from pytest_edgetpu.core.errors import ConfigError, DeviceError
from pytest_edgetpu.device.accelerators import accelerator_missing
from pytest_edgetpu.device.delegation import Delegation, _partitioned, edgetpu_delegation
from pytest_edgetpu.device.discovery import Discovery
from pytest_edgetpu.device.runtime import load_runtime
from pytest_edgetpu.device.selection import Device, parse_device_spec, resolve_devices
from pytest_edgetpu.engine.session import DeviceSession
from pytest_edgetpu.model.inspection import EDGETPU_CUSTOM_OP, inspect_model

FAKE_DELEGATE_SOURCE = Path(__file__).parent / "fake_delegate" / "fake_delegate.c"
MOBILENET = "mobilenet_v1_0.25_128_quant.tflite"
LSTM = "keras_lstm_mnist_ptq.tflite"
#: schema.fbs BuiltinOperator codes the fake delegate is told to take.
CONV_2D, DEPTHWISE_CONV_2D = 3, 4
NO_EDGETPU = Discovery((), None, None, None, ())


@pytest.fixture(scope="session")
def fake_delegate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test double tests/fake_delegate/fake_delegate.c, built as libfake_delegate.so."""
    return build_shared_object(
        FAKE_DELEGATE_SOURCE, "libfake_delegate.so", tmp_path_factory, "the fake delegate"
    )


@pytest.fixture
def models(project: pytest.Pytester, coral_models: Path) -> pytest.Pytester:
    """A project whose models/ also holds two real Coral CPU models."""
    for name in (MOBILENET, LSTM):
        shutil.copyfile(coral_models / name, project.path / "models" / name)
    return project


def bench_tests(*markers: str) -> str:
    """One test per marker argument list, each timing the mobilenet."""
    tests = [
        f"@pytest.mark.tpu_bench(model='models/{MOBILENET}'{', ' + args if args else ''})\n"
        f"def test_{i}(tpu_bench):\n    tpu_bench()\n"
        for i, args in enumerate(markers)
    ]
    return "import pytest\n\n\n" + "\n\n".join(tests)


def results(project: pytest.Pytester) -> list[dict[str, object]]:
    found: list[dict[str, object]] = json.loads((project.path / "r.json").read_text())["results"]
    return found


# ---------------------------------------------------------------------------------------------
# which operators a delegate took


def node(index: int, op: str, inputs: list[int], outputs: list[int]) -> dict[str, object]:
    return {"index": index, "op_name": op, "inputs": inputs, "outputs": outputs}


def test_a_partition_stands_for_the_nodes_between_its_inputs_and_outputs() -> None:
    # keras_lstm_mnist_ptq under XNNPACK, as LiteRT lists it: the DELEGATE node took the
    # RESHAPE and the FULLY_CONNECTED (tensors 24 -> 25 -> 26); -1 is an absent input.
    nodes = [
        node(0, "QUANTIZE", [0], [16]),
        node(1, "UNIDIRECTIONAL_SEQUENCE_LSTM", [16, 8, -1, 2], [24]),
        node(2, "RESHAPE", [24, 1], [25]),
        node(3, "FULLY_CONNECTED", [25, 6, 7], [26]),
        node(4, "SOFTMAX", [26], [27]),
        node(5, "QUANTIZE", [27], [28]),
        node(6, "DELEGATE", [1, 6, 7, 24], [26]),
    ]
    delegation = _partitioned(nodes, "XNNPACK")
    assert delegation == Delegation(
        "XNNPACK", 6, ("QUANTIZE", "UNIDIRECTIONAL_SEQUENCE_LSTM", "SOFTMAX", "QUANTIZE")
    )
    assert delegation.words() == (
        "4 of 6 ops run on the CPU, not on XNNPACK: 2 QUANTIZE, 1 SOFTMAX, "
        "1 UNIDIRECTIONAL_SEQUENCE_LSTM"
    )
    everything = _partitioned([*nodes[:6], node(6, "DELEGATE", [0, 1, 2, 6, 7, 8], [28])], "X")
    assert everything.fully_delegated and everything.words() == "fully delegated to X (6 ops)"
    assert _partitioned(nodes[:6], "X").cpu_ops == tuple(n["op_name"] for n in nodes[:6])


def test_xnnpack_on_and_off_on_real_models(coral_models: Path) -> None:
    runtime = load_runtime()
    for name in (MOBILENET, LSTM):
        info = inspect_model(coral_models / name)
        on = DeviceSession(Device("cpu", "cpu:0"), runtime).delegation(info)
        off = DeviceSession(Device("cpu", "cpu-builtin:0", xnnpack=False), runtime).delegation(info)
        assert on is not None and off is not None
        assert on.delegate == "XNNPACK" and on.ops == off.ops == len(info.operators)
        # Without its default delegate, LiteRT runs every operator on its own kernels.
        assert off.cpu_ops == tuple(info.operators)
        assert len(on.cpu_ops) < len(off.cpu_ops)


def test_an_edgetpu_models_split_is_the_compilers(coral_models: Path) -> None:
    mapped = inspect_model(coral_models / "mobilenet_v1_0.25_128_quant_edgetpu.tflite")
    assert edgetpu_delegation(mapped.operators, EDGETPU_CUSTOM_OP).fully_delegated
    # Every Coral model here is mapped whole; a partly mapped one keeps its CPU ops in order.
    split = edgetpu_delegation(("QUANTIZE", EDGETPU_CUSTOM_OP, "SOFTMAX"), EDGETPU_CUSTOM_OP)
    assert split == Delegation("Edge TPU", 3, ("QUANTIZE", "SOFTMAX"))
    assert split.words() == "2 of 3 ops run on the CPU, not on Edge TPU: 1 QUANTIZE, 1 SOFTMAX"


# ---------------------------------------------------------------------------------------------
# the device grammar and leases


@pytest.mark.parametrize(
    ("device_id", "words"),
    [
        ("cpu:1", "cpu"),
        ("cpu-builtin:0", "cpu-builtin"),  # a helper keeps XNNPACK off too
        ("litert-cpu:3", "litert-cpu"),
        ("litert-gpu", "litert-gpu"),
        ("delegate:/opt/lib:1.so", "delegate:/opt/lib:1.so"),  # a path, not an index
    ],
)
def test_a_helper_names_the_sessions_kind_of_device_without_its_index(
    device_id: str, words: str
) -> None:
    """A helper process inherits its worker's cores, on which the worker's cpu:1 is cpu:0."""
    assert Device("cpu", device_id).kind_words == words


def test_every_cpu_variant_of_a_core_is_one_physical_device(tmp_path: Path) -> None:
    def devices(spec: str) -> tuple[Device, ...]:
        return resolve_devices(parse_device_spec(spec, "--edgetpu-device"), NO_EDGETPU, "where")

    plain, builtin, compiled = (
        devices(f"{kind}:0")[0] for kind in ("cpu", "cpu-builtin", "litert-cpu")
    )
    assert (builtin.id, builtin.xnnpack, compiled.accelerator) == ("cpu-builtin:0", False, "cpu")
    assert plain.lease_id == builtin.lease_id == compiled.lease_id == "cpu:0"
    if len(os.sched_getaffinity(0)) > 1:
        assert [d.id for d in devices("cpu:0,cpu-builtin:1")] == ["cpu:0", "cpu-builtin:1"]
    with pytest.raises(ConfigError) as info:
        devices("cpu:0,cpu-builtin:0")
    assert str(info.value) == (
        "where: cpu:0 and cpu-builtin:0 are the same physical device (cpu:0), which one run "
        "holds once; compare them in two runs, or give each its own cores (cpu:0,cpu-builtin:1)"
    )


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("delegate:", "'delegate:' in 'delegate:' does not name a delegate library"),
        ("delegate:libfoo.so", "'delegate:libfoo.so' in 'delegate:libfoo.so' does not name"),
        ("delegate:./a\nb.so", "'delegate:./a\\nb.so' in 'delegate:./a\\nb.so' does not name"),
        ("delegate:./a.so,delegate:./b.so", "names more than one external delegate"),
    ],
    ids=["empty", "bare-name", "newline", "two"],
)
def test_a_delegate_spec_that_names_no_one_library_is_a_config_error(spec: str, words: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(words)):
        parse_device_spec(spec, "--edgetpu-device")


def test_a_delegate_library_that_is_not_a_file_is_refused_before_loading(tmp_path: Path) -> None:
    fifo = tmp_path / "libfifo.so"
    os.mkfifo(fifo)
    for path, words in (
        (fifo, "is not a regular file"),
        (tmp_path / "absent.so", "cannot be read (No such file or directory)"),
        (tmp_path, "is not a regular file"),
    ):
        request = parse_device_spec(f"delegate:{path}", "--edgetpu-device")
        with pytest.raises(DeviceError, match=re.escape(words)):
            resolve_devices(request, NO_EDGETPU, "--edgetpu-device")


# ---------------------------------------------------------------------------------------------
# end to end: XNNPACK on and off


def test_cpu_builtin_measures_without_xnnpack_into_its_own_baselines(
    models: pytest.Pytester,
) -> None:
    models.makepyfile(test_delegated=bench_tests(""))
    outcome = models.runpytest(
        "--edgetpu-device=cpu-builtin",
        "--edgetpu-update-baselines",
        "--edgetpu-accept-unstable",
        "--edgetpu-json=r.json",
    )
    outcome.assert_outcomes(passed=1)
    outcome.stdout.fnmatch_lines(["*recording baselines on cpu-builtin (x86_64, LiteRT *"])
    (result,) = results(models)
    assert result["device"] == "cpu-builtin:0"
    assert str(result["profile"]).startswith("cpu-builtin-")
    (delegation,) = result["delegation"]  # type: ignore[misc]
    assert delegation["fully_delegated"] is False
    assert delegation["cpu_ops"] == list(
        inspect_model(models.path / "models" / MOBILENET).operators
    )
    (written,) = (models.path / "baselines").iterdir()
    assert written.name == f"{result['profile']}.json"
    entry = json.loads(written.read_text())["entries"]["test_delegated.py::test_0"]
    assert entry["environment"]["delegation"].startswith("31 of 31 ops run on the CPU")

    # The default CPU path is another device profile: no baseline of its own yet.
    models.runpytest("--edgetpu", "--edgetpu-json=r.json").assert_outcomes(passed=1)
    (plain,) = results(models)
    assert plain["verdict"]["status"] == "INCOMPARABLE"  # type: ignore[index]
    assert "cpu-builtin-" in plain["verdict"]["reason"]  # type: ignore[index]
    assert plain["delegation"][0]["delegate"] == "XNNPACK"  # type: ignore[index]


def test_a_custom_op_missing_without_xnnpack_says_where_it_may_be(
    project: pytest.Pytester, coral_models: Path
) -> None:
    model = "invalid_model_invoking_error.tflite"  # a custom op no runtime here provides
    shutil.copyfile(coral_models / model, project.path / "models" / model)
    project.makepyfile(test_delegated=bench_tests("").replace(MOBILENET, model))
    outcome = project.runpytest("--edgetpu-device=cpu-builtin", "--edgetpu")
    outcome.assert_outcomes(failed=1)
    outcome.stdout.fnmatch_lines(
        [
            f"*models/{model} uses the custom op 'fake-op-double', which LiteRT's built-in "
            "kernels do not provide, and this device runs without XNNPACK, which provides some "
            "(MediaPipe's Convolution2DTransposeBias among them); run it on cpu, or register "
            "the op"
        ]
    )


# ---------------------------------------------------------------------------------------------
# end to end: an external delegate


def test_an_external_delegate_is_a_device_with_its_identity_in_the_profile(
    models: pytest.Pytester, fake_delegate: Path
) -> None:
    models.makepyfile(
        test_delegated=bench_tests("") + "\n\ndef test_device(edgetpu_device):\n"
        "    print('DELEGATE', edgetpu_device.kind, edgetpu_device.delegate_path)\n"
    )
    outcome = models.runpytest(
        "-s",
        f"--edgetpu-device=delegate:{fake_delegate}",
        "--edgetpu-delegate-options=claim:all",
        "--edgetpu-fully-delegated",
        "--edgetpu-update-baselines",
        "--edgetpu-accept-unstable",
        "--edgetpu-json=r.json",
    )
    outcome.assert_outcomes(passed=2)
    outcome.stdout.fnmatch_lines([f"*DELEGATE delegate {fake_delegate}"])
    (result,) = results(models)
    assert result["device"] == "delegate:libfake_delegate.so"
    assert result["delegation"] == [
        {"delegate": "libfake_delegate.so", "fully_delegated": True, "ops": 31, "cpu_ops": []}
    ]
    (written,) = (models.path / "baselines").iterdir()
    document = json.loads(written.read_text())
    sha256 = document["profile"]["delegate_sha256"]
    assert document["profile"]["delegate"] == "libfake_delegate.so"
    assert document["profile"]["delegate_options"] == "claim:all"
    environment = document["entries"]["test_delegated.py::test_0"]["environment"]
    assert environment["delegate_path"] == str(fake_delegate)
    assert environment["delegate_sha256"].startswith(sha256)
    assert environment["delegation"] == "fully delegated to libfake_delegate.so (31 ops)"

    # Other options are another device profile: nothing to compare with yet.
    models.runpytest(
        f"--edgetpu-device=delegate:{fake_delegate}",
        "--edgetpu-delegate-options=claim:3",
        "--edgetpu-json=r.json",
        "-k",
        "test_0",
    ).assert_outcomes(passed=1)
    assert results(models)[0]["verdict"]["status"] == "NO_BASELINE"  # type: ignore[index]


def test_a_model_left_partly_on_the_cpu_fails_the_requirement_naming_the_ops(
    models: pytest.Pytester, fake_delegate: Path
) -> None:
    models.makepyfile(
        test_delegated=bench_tests("fully_delegated=True", "")
        + "\n\n@pytest.mark.tpu_bench(fully_delegated=True)\n"
        "def test_loaded(edgetpu, tpu_bench):\n"
        f"    model = edgetpu.load('models/{LSTM}')\n"
        "    tpu_bench(lambda: model.run())\n"
    )
    outcome = models.runpytest(
        f"--edgetpu-device=delegate:{fake_delegate}",
        f"--edgetpu-delegate-options=claim:{CONV_2D},{DEPTHWISE_CONV_2D}",
        "--edgetpu",
    )
    outcome.assert_outcomes(passed=1, failed=2)
    outcome.stdout.fnmatch_lines(
        [
            f"*models/{MOBILENET} is not fully delegated on delegate:libfake_delegate.so: 3 of "
            "31 ops run on the CPU, not on libfake_delegate.so: 1 AVERAGE_POOL_2D, 1 RESHAPE, "
            "1 SOFTMAX (required by tpu_bench(fully_delegated=...) on test_delegated.py::test_0); "
            "move those ops to ones the delegate supports, or drop the requirement",
            f"*models/{LSTM} is not fully delegated on delegate:libfake_delegate.so: 6 of 6 ops "
            "run on the CPU*",
        ]
    )
    assert "Traceback" not in outcome.stdout.str()


@pytest.mark.parametrize(
    ("library", "options", "message"),
    [
        (
            "fake",
            "refuse:1",
            "ERROR: the delegate library */libfake_delegate.so refused to create a delegate "
            "with options 'refuse:1' (fake delegate: refused by its options); fix "
            "--edgetpu-delegate-options, or check*",
        ),
        (
            "model",
            "",
            "ERROR: cannot load the delegate library */models/tiny_dense.tflite: *invalid ELF "
            "header; check that it is a TFLite external delegate built for this machine*",
        ),
        (
            "zlib",
            "",
            "ERROR: the library *libz.so* is not a TFLite external delegate: it exports no "
            "tflite_plugin_create_delegate and no tflite_plugin_destroy_delegate; give the "
            "delegate's own .so",
        ),
        (
            "absent",
            "",
            "ERROR: --edgetpu-device: the delegate library */absent.so cannot be read (No such "
            "file or directory); give the path of a TFLite external delegate*",
        ),
        (
            "none",
            "claim:all",
            "ERROR: --edgetpu-delegate-options: delegate options are given to a delegate:PATH "
            "library, and --edgetpu-device (default) names none ('auto'); add "
            "--edgetpu-device=delegate:PATH, or drop the options",
        ),
        (
            "fake",
            "claim",
            "ERROR: --edgetpu-delegate-options: 'claim' in 'claim' is not a delegate option; "
            "write them as key:value;key:value*",
        ),
    ],
    ids=["refused-options", "not-a-library", "no-entry-points", "absent", "no-delegate", "bad"],
)
def test_a_delegate_that_cannot_run_stops_the_run_in_one_line(
    project: pytest.Pytester, fake_delegate: Path, library: str, options: str, message: str
) -> None:
    zlib = next(Path("/usr/lib").rglob("libz.so.1"), None) or next(
        Path("/lib").rglob("libz.so.1"), None
    )
    paths = {
        "fake": fake_delegate,
        "model": project.path / "models" / "tiny_dense.tflite",
        "zlib": zlib,
        "absent": project.path / "absent.so",
    }
    if library == "zlib" and zlib is None:
        pytest.skip("no libz.so.1 on this host to stand for a library that is no delegate")
    project.makepyfile(test_delegated=bench_tests("").replace(MOBILENET, "tiny_dense.tflite"))
    args = ["--edgetpu"]
    if library in paths:
        args.append(f"--edgetpu-device=delegate:{paths[library]}")
    if options:
        args.append(f"--edgetpu-delegate-options={options}")
    outcome = project.runpytest(*args)
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    outcome.stderr.fnmatch_lines([message])
    assert "Traceback" not in outcome.stderr.str() + outcome.stdout.str()


# ---------------------------------------------------------------------------------------------
# end to end: LiteRT CompiledModel accelerators


def test_litert_cpu_measures_a_compiled_model(models: pytest.Pytester) -> None:
    models.makepyfile(test_delegated=bench_tests(""))
    models.runpytest(
        "--edgetpu-device=litert-cpu", "--edgetpu", "--edgetpu-json=r.json"
    ).assert_outcomes(passed=1)
    (result,) = results(models)
    assert result["device"] == "litert-cpu:0" and str(result["profile"]).startswith("litert-cpu-")
    assert result["summary_ms"]["n"] > 1  # type: ignore[index]
    (delegation,) = result["delegation"]  # type: ignore[misc]
    assert delegation["delegate"] == "LiteRT CPU" and delegation["cpu_ops"] is None


@pytest.mark.parametrize("accelerator", ["gpu", "npu"])
def test_an_accelerator_this_host_lacks_skips_its_benchmarks_with_the_reason(
    project: pytest.Pytester, accelerator: str
) -> None:
    missing = accelerator_missing(accelerator)  # type: ignore[arg-type]
    if missing is None:
        pytest.skip(f"this host has LiteRT's {accelerator.upper()} accelerator")
    project.makepyfile(test_delegated=bench_tests("").replace(MOBILENET, "tiny_dense.tflite"))
    outcome = project.runpytest(f"--edgetpu-device=litert-{accelerator}", "--edgetpu", "-rs")
    outcome.assert_outcomes(skipped=1)
    outcome.stdout.fnmatch_lines(
        [
            f"SKIPPED *test_delegated.py:*: litert-{accelerator}: LiteRT {accelerator.upper()} "
            "is not available on this host: it could not run a one-layer dense model alone (*)"
        ]
    )
