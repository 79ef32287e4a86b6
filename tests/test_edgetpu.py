"""Edge TPU paths on a machine without an Edge TPU.

No Edge TPU is attached here, so test doubles stand in for the hardware, each named as one:
:class:`FakeLoadDelegate` for the runtime's ``load_delegate`` (libedgetpu plus a device),
:class:`RaisingInterpreter` for an interpreter that fails the way libedgetpu makes it fail,
and ``FakeHost`` (from test_discovery) for /sys and /dev. Everything else is real: LiteRT,
the real Coral models, the baseline store.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from doubles import PCIE, USB2, USB3, FakeHost, FakeLoadDelegate, discovery_of, fake_edgetpu_runtime
from factories import settings

from pytest_edgetpu.cli import main
from pytest_edgetpu.config import session_settings
from pytest_edgetpu.core.errors import (
    ConfigError,
    DeviceError,
    ModelError,
    NeedsEdgeTpuError,
    RuntimeUnavailableError,
)
from pytest_edgetpu.core.stats import summarize
from pytest_edgetpu.device.delegates import check_delegate_options, open_edgetpu_delegate
from pytest_edgetpu.device.discovery import Discovery, EdgeTpu, Thermal
from pytest_edgetpu.device.runtime import Runtime, load_runtime, make_interpreter
from pytest_edgetpu.device.selection import Device
from pytest_edgetpu.engine.bench_result import BenchResult, mapping_note
from pytest_edgetpu.engine.measurement import InstanceSamples, Measurement, MeasureSettings
from pytest_edgetpu.engine.session import DeviceSession
from pytest_edgetpu.engine.station import device_profile
from pytest_edgetpu.judge.baselines import write_entries
from pytest_edgetpu.judge.gate import Pending
from pytest_edgetpu.judge.results import SmokeResult, TimedResult
from pytest_edgetpu.judge.results_file import ResultsFile, result_json
from pytest_edgetpu.judge.verdict import Status
from pytest_edgetpu.model.inspection import EDGETPU_CUSTOM_OP, ModelInfo, inspect_model
from pytest_edgetpu.report.render import markdown_report, result_notes, update_line
from pytest_edgetpu.run import BenchRun, Role

LIBRARY = "libedgetpu.so.1"


# --- opening the delegate: every failure of edgetpu.md §3 (a, b) ------------------------


@pytest.mark.parametrize(
    ("device", "error", "message"),
    [
        (
            Device("usb", "usb:0", USB3),
            OSError("libedgetpu.so.1: cannot open shared object file: No such file or directory"),
            "cannot load libedgetpu.so.1 for usb:0: libedgetpu.so.1: cannot open shared object "
            "file: No such file or directory; fix: install the Edge TPU runtime "
            "(libedgetpu1-std or libedgetpu1-max)",
        ),
        (
            Device("usb", "usb:0", USB3),
            OSError("libusb-1.0.so.0: cannot open shared object file: No such file or directory"),
            "cannot load libedgetpu.so.1 for usb:0: libusb-1.0.so.0: cannot open shared object "
            "file: No such file or directory; fix: apt-get install libusb-1.0-0",
        ),
        (
            Device("usb", "usb:0", USB3),
            ValueError("Failed to load delegate from libedgetpu.so.1\n"),
            "the Edge TPU usb:0 (/sys/bus/usb/devices/2-1) did not open (Failed to load "
            "delegate from libedgetpu.so.1): it is unplugged, held by another process, or not "
            "accessible to you (install the Edge TPU udev rule and join the plugdev group); "
            "run `pytest-edgetpu devices` to see what is attached",
        ),
        (
            Device("pci", "pci:0", PCIE),
            ValueError("Failed to load delegate from libedgetpu.so.1\n"),
            "the Edge TPU pci:0 (/dev/apex_0) did not open (Failed to load delegate from "
            "libedgetpu.so.1): it is held by another process, /dev/apex_0 is not writable by "
            "you (udev rule for the apex group), or the gasket/apex driver (gasket-dkms) is "
            "not loaded; run `pytest-edgetpu devices` to see what is attached",
        ),
    ],
    ids=["libedgetpu-missing", "libusb-missing", "usb-no-device-or-busy", "pcie-busy"],
)
def test_delegate_failures_become_one_line_naming_the_device(
    device: Device, error: BaseException, message: str
) -> None:
    load_delegate = FakeLoadDelegate(error=error)
    with pytest.raises(DeviceError) as info:
        open_edgetpu_delegate(fake_edgetpu_runtime(load_delegate), device)
    assert str(info.value) == message
    assert load_delegate.calls == [(LIBRARY, {"device": device.id})]


def test_delegate_opens_its_explicit_index_with_the_options() -> None:
    load_delegate = FakeLoadDelegate()
    options = {"Performance": "High", "Usb.AlwaysDfu": "False", "Usb.MaxBulkInQueueLength": "32"}
    delegate = open_edgetpu_delegate(
        fake_edgetpu_runtime(load_delegate), Device("usb", "usb:1", USB3), options
    )
    assert delegate.device == "usb:1"
    assert load_delegate.calls == [(LIBRARY, {"device": "usb:1", **options})]


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (
            {"Performance": "Turbo"},
            "Edge TPU delegate option Performance='Turbo' is invalid; use one of Low, Medium, "
            "High, Max",
        ),
        (
            {"Usb.MaxBulkInQueueLength": "300"},
            "Edge TPU delegate option Usb.MaxBulkInQueueLength='300' is invalid; use a whole "
            "number from 0 to 255",
        ),
        (
            {"Usb.AlwaysDfu": "true"},
            "Edge TPU delegate option Usb.AlwaysDfu='true' is invalid; use True or False",
        ),
        (
            {"usb_max_bulk_in_queue_length": "32"},
            "unknown Edge TPU delegate option 'usb_max_bulk_in_queue_length'; did you mean "
            "'Usb.MaxBulkInQueueLength'? (libedgetpu knows Performance, Usb.AlwaysDfu, "
            "Usb.MaxBulkInQueueLength)",
        ),
        (
            {"device": "usb:1"},
            "the delegate option 'device' is set from --edgetpu-device (each process opens "
            "exactly its own device); remove it from the options",
        ),
    ],
    ids=["performance", "queue-length", "always-dfu", "unknown-key", "device-key"],
)
def test_bad_delegate_options_are_refused_before_the_device_is_touched(
    options: dict[str, str], words: str
) -> None:
    load_delegate = FakeLoadDelegate()
    with pytest.raises(ConfigError) as info:
        open_edgetpu_delegate(
            fake_edgetpu_runtime(load_delegate), Device("usb", "usb:0", USB3), options
        )
    assert str(info.value) == f"Edge TPU delegate options for usb:0: {words}"
    assert load_delegate.calls == []


def test_valid_delegate_options_pass() -> None:
    check_delegate_options({"Usb.MaxBulkInQueueLength": "0", "Performance": "Low"}, "here")


# --- the delegate's lifecycle ------------------------------------------------------------


def test_session_opens_the_delegate_once_and_shares_it() -> None:
    load_delegate = FakeLoadDelegate()
    session = DeviceSession(
        Device("usb", "usb:0", USB3),
        fake_edgetpu_runtime(load_delegate),
        delegate_options={"Performance": "Max"},
    )
    session.open()
    session.open()
    other = session.with_threads(4)
    assert other.delegate_options == {"Performance": "Max"}
    assert other.__dict__["_delegates"] is session.__dict__["_delegates"]
    assert load_delegate.calls == [(LIBRARY, {"device": "usb:0", "Performance": "Max"})]
    assert session.delegate_load_ms is not None and session.delegate_load_ms >= 0
    assert other.delegate_load_ms == session.delegate_load_ms


def test_cpu_session_opens_no_delegate() -> None:
    load_delegate = FakeLoadDelegate()
    session = DeviceSession(Device("cpu", "cpu:0", cores=(0,)), fake_edgetpu_runtime(load_delegate))
    session.open()
    assert load_delegate.calls == []
    assert session.delegate_load_ms is None


# --- interpreter creation: edgetpu.md §3 (b, c) -------------------------------------------

RUNTIME_TOO_OLD = (
    "Failed to prepare for TPU. Failed precondition: Package requires runtime version (14), "
    "which is newer than this runtime version (13).Node number 1 (EdgeTpuDelegateForCustomOp) "
    "failed to prepare."
)
ABI_MISMATCH = (
    "Internal: Unsupported data type in custom op handler: 0Node number 1 "
    "(EdgeTpuDelegateForCustomOp) failed to prepare."
)


class RaisingInterpreter:
    """Test double for an interpreter that libedgetpu makes fail: raises ``error`` when built
    (``at="init"``) or when its tensors are allocated (``at="allocate"``)."""

    def __init__(self, error: BaseException, at: str, **_: Any) -> None:
        if at == "init":
            raise error
        self.error = error

    def allocate_tensors(self) -> None:
        raise self.error


def raising_runtime(error: BaseException, at: str, family: str = "litert") -> Runtime:
    version = "2.3.0" if family == "litert" else "2.14.0"
    interpreter = functools.partial(RaisingInterpreter, error, at)
    return Runtime(family, version, interpreter, FakeLoadDelegate())


@pytest.mark.parametrize("at", ["init", "allocate"])
def test_runtime_too_old_for_the_model(tmp_path: Path, at: str) -> None:
    model = tmp_path / "m_edgetpu.tflite"
    with pytest.raises(ModelError) as info:
        make_interpreter(raising_runtime(RuntimeError(RUNTIME_TOO_OLD), at), model, num_threads=1)
    assert str(info.value) == (
        f"{model} needs Edge TPU runtime version 14, but the installed libedgetpu is version "
        "13; fix: upgrade libedgetpu (libedgetpu1-std or libedgetpu1-max; feranick/libedgetpu "
        "releases are built for current TensorFlow Lite), or compile the model again with "
        "edgetpu_compiler --min_runtime_version 13"
    )


def test_libedgetpu_built_for_another_tflite(tmp_path: Path) -> None:
    model = tmp_path / "m_edgetpu.tflite"
    with pytest.raises(ModelError) as info:
        make_interpreter(
            raising_runtime(RuntimeError(ABI_MISMATCH), "allocate"), model, num_threads=1
        )
    assert str(info.value) == (
        f"{model}: the installed libedgetpu does not match LiteRT 2.3.0 ({ABI_MISMATCH}): it "
        "was built against another TensorFlow Lite version; fix: install a libedgetpu built "
        "for this runtime (feranick/libedgetpu releases are built for current TensorFlow "
        "Lite), or the runtime version your libedgetpu was built for"
    )


@pytest.mark.parametrize(
    "error",
    [
        AttributeError("_ARRAY_API not found"),
        SystemError(
            "<built-in method CreateWrapperFromFile of PyCapsule object at 0x7f> returned a "
            "result with an exception set"
        ),
    ],
    ids=["attribute-error", "system-error"],
)
def test_tflite_runtime_under_numpy_2(tmp_path: Path, error: BaseException) -> None:
    runtime = raising_runtime(error, "init", family="tflite-runtime")
    with pytest.raises(RuntimeUnavailableError) as info:
        make_interpreter(runtime, tmp_path / "m.tflite", num_threads=1)
    assert str(info.value) == (
        f"tflite-runtime 2.14.0 cannot run with the installed numpy ({error}); fix: pip install "
        "ai-edge-litert (works with numpy 2), or pip install 'numpy<2'"
    )


def test_real_edgetpu_model_without_the_delegate(coral_models: Path) -> None:
    model = coral_models / "mobilenet_v1_0.25_128_quant_edgetpu.tflite"
    with pytest.raises(NeedsEdgeTpuError, match=r"compiled for the Edge TPU \(edgetpu-custom-op\)"):
        make_interpreter(load_runtime(), model, num_threads=1)


def test_real_model_with_an_unknown_custom_op(coral_models: Path) -> None:
    model = coral_models / "invalid_model_invoking_error.tflite"
    with pytest.raises(ModelError) as info:
        make_interpreter(load_runtime(), model, num_threads=1)
    assert str(info.value) == (
        f"{model} uses the custom op 'fake-op-double', which this runtime does not provide; "
        "register the op or export the model without it"
    )


# --- ops on the Edge TPU vs the CPU --------------------------------------------------------


def bench_result(
    model: ModelInfo | None,
    device_id: str = "usb:0",
    thermal: Thermal | None = None,
    delegate_load_ms: float | None = 2500.0,
) -> BenchResult:
    """A timed result with made-up figures (what the record and verdict code consume)."""
    values = (1.0, 1.1, 0.9, 1.05)
    return BenchResult(
        target=str(model.path) if model else "fn",
        device_id=device_id,
        metric="p50",
        num_threads=1,
        timed=True,
        summary=summarize([int(v * 1e6) for v in values]),
        load_ms=5.0,
        first_inference_ms=30.0,
        warmup_ms=1.2,
        instance_values_ms=values,
        model=model,
        measurement=None,
        delegate_load_ms=delegate_load_ms,
        thermal=thermal,
    )


def test_real_edgetpu_models_are_fully_mapped(coral_models: Path) -> None:
    models = sorted(coral_models.glob("*_edgetpu.tflite"))
    assert len(models) == 4
    for path in models:
        info = inspect_model(path)
        result = SmokeResult.of(
            "t", bench_result(info), device_words="words", workers=1, profile="p"
        )
        assert result.model is not None
        model = (result.model.tpu_subgraphs, result.model.cpu_ops, result.model.partially_mapped)
        assert model == (1, 0, False), path.name
        assert result.notes == ()
        assert result.phases.delegate_load_ms == 2500.0


def test_real_cpu_twin_has_no_tpu_subgraph(coral_models: Path) -> None:
    info = inspect_model(coral_models / "mobilenet_v1_0.25_128_quant.tflite")
    result = SmokeResult.of(
        "t", bench_result(info, "cpu:0"), device_words="w", workers=1, profile="p"
    )
    assert result.model is not None
    assert (result.model.tpu_subgraphs, result.model.cpu_ops) == (0, 31)
    assert result.model.partially_mapped is False


# The split of deeplabv3_mnv2_dm05_pascal_quant_edgetpu (edgetpu.md §2.5), which is not
# among the shared models: one TPU subgraph and eight ops the compiler left on the CPU.
DEEPLAB_OPS = (
    EDGETPU_CUSTOM_OP,
    "RESIZE_BILINEAR",
    "QUANTIZE",
    "RESIZE_BILINEAR",
    "CONCATENATION",
    "CONV_2D",
    "RESIZE_BILINEAR",
    "CONV_2D",
    "ARG_MAX",
)
PARTIAL = ModelInfo(
    path=Path("models/deeplab_edgetpu.tflite"),
    sha256="ab" * 32,
    size_bytes=1000,
    operators=DEEPLAB_OPS,
    edgetpu_ops=1,
    cpu_ops=8,
    unknown_custom_ops=(),
)
PARTIAL_NOTE = (
    "deeplab_edgetpu.tflite is only partly mapped to the Edge TPU: 1 TPU subgraph(s), 8 op(s) "
    "left on the CPU (1 ARG_MAX, 1 CONCATENATION, 2 CONV_2D, 1 QUANTIZE, 3 RESIZE_BILINEAR); "
    "those run on the host between TPU calls, so host load and num_threads change this "
    "latency (the edgetpu_compiler log says why each op was not mapped)"
)


def test_partly_mapped_model_is_flagged(tmp_path: Path) -> None:
    assert mapping_note(PARTIAL) == PARTIAL_NOTE
    run = edgetpu_run(tmp_path, USB3)
    judged = judge(run, "t.py::test_seg", bench_result(PARTIAL))
    assert judged.verdict is not None and judged.verdict.status is Status.NO_BASELINE
    assert run.collector.results == [judged]
    assert judged.model is not None and judged.model.partially_mapped is True
    assert (judged.model.tpu_subgraphs, judged.model.cpu_ops) == (1, 8)
    assert judged.notes == (PARTIAL_NOTE,)
    assert result_notes(judged) == [PARTIAL_NOTE]
    report = markdown_report(run.collector.results, {}, run.collector.profiles)
    assert f"- `t.py::test_seg`: {PARTIAL_NOTE}" in report


def contended(result: BenchResult, share: float) -> BenchResult:
    """``result`` as measured by instances whose thread waited ``share`` of their loops."""
    instances = tuple(
        InstanceSamples(5_000_000, 30_000_000, (), (int(v * 1e6),) * 10, share)
        for v in result.instance_values_ms
    )
    measurement = Measurement(instances, "p50", 1.0, "max_time 1 s reached")
    return replace(result, measurement=measurement)


def test_an_update_does_not_record_a_contended_measurement(tmp_path: Path) -> None:
    run = edgetpu_run(tmp_path, USB3, update_baselines=True)
    busy = judge(run, "t.py::test_a", contended(bench_result(None), 0.4))
    assert busy.verdict is not None and busy.verdict.status is Status.BUSY
    assert not busy.recorded and busy.run_queue_wait == 0.4
    assert busy.verdict.reason == (
        "the host was busy while recording: the benchmark thread waited for a CPU 40% of its "
        "timed loops; record again on a quiet host"
    )
    assert update_line(busy) == (
        "t.py::test_a: not recorded: p50 1.03 ms is BUSY: the host was busy while recording: the "
        "benchmark thread waited for a CPU 40% of its timed loops; record again on a quiet host; "
        "the old entry, if any, is kept; or record it anyway with --edgetpu-accept-unstable"
    )
    quiet = judge(run, "t.py::test_b", contended(bench_result(None), 0.01))
    assert quiet.recorded
    assert quiet.baseline_entry is not None and quiet.baseline_entry.run_queue_wait == 0.01
    assert run.collector.write_baselines()[1] == []
    run.close()
    accepting = edgetpu_run(tmp_path, USB3, update_baselines=True, accept_unstable=True)
    assert judge(accepting, "t.py::test_a", contended(bench_result(None), 0.4)).recorded
    accepting.close()


# --- the device profile and the environment ------------------------------------------------


def remeasure_never() -> BenchResult:
    raise AssertionError("a verdict without a regression measures once")


def judge(run: BenchRun, test_id: str, result: BenchResult) -> TimedResult:
    """``run``'s judgement of a measurement that needs no confirmation (5% threshold)."""
    judged = run.judge(Pending(test_id, result, 0.05, remeasure_never))
    assert isinstance(judged, TimedResult)
    return judged


def edgetpu_run(
    tmp_path: Path,
    tpu: EdgeTpu,
    load_delegate: FakeLoadDelegate | None = None,
    **cli: object,
) -> BenchRun:
    """A serial run on a test-double Edge TPU ``tpu``, found by a test-double discovery."""
    spec = f"{tpu.kind}:{tpu.index}"
    return BenchRun(
        settings(tmp_path, device=spec, **cli),
        tmp_path,
        discover_devices=lambda: discovery_of(tpu),
        runtime=fake_edgetpu_runtime(load_delegate or FakeLoadDelegate()),
    )


@pytest.mark.parametrize(
    ("tpu", "build", "performance", "fields"),
    [
        (
            USB3,
            "direct",
            None,
            {"device": "edgetpu-usb", "link": "usb5000", "libedgetpu": "direct"},
        ),
        (USB2, "direct", None, {"device": "edgetpu-usb", "link": "usb480", "libedgetpu": "direct"}),
        (
            EdgeTpu("usb", 0, "/sys/bus/usb/devices/2-1", "sysfs"),
            "throttled",
            None,
            {"device": "edgetpu-usb", "link": "usb", "libedgetpu": "throttled"},
        ),
        (PCIE, None, None, {"device": "edgetpu-pci", "link": "pci", "libedgetpu": "unknown"}),
        (
            PCIE,
            "direct",
            "Low",
            {"device": "edgetpu-pci", "link": "pci", "libedgetpu": "direct", "performance": "Low"},
        ),
    ],
    ids=["usb3", "usb2", "usb-unknown-speed-std", "pcie-unknown-build", "pcie-performance"],
)
def test_edgetpu_profile_keys(
    tpu: EdgeTpu, build: str | None, performance: str | None, fields: dict[str, str]
) -> None:
    runtime = fake_edgetpu_runtime(FakeLoadDelegate())
    device = Device(tpu.kind, tpu.device_string, tpu)
    profile = device_profile(device, runtime, discovery_of(tpu, build=build), performance)
    arch = profile.fields["arch"]
    assert dict(profile.fields) == {**fields, "arch": arch, "runtime": "litert"}


def test_cpu_profile_keys() -> None:
    runtime = fake_edgetpu_runtime(FakeLoadDelegate())
    profile = device_profile(Device("cpu", "cpu:0"), runtime, None, "Max")
    assert set(profile.fields) == {"device", "arch", "cpu_model", "runtime"}


def test_usb2_run_is_never_compared_with_a_usb3_baseline(tmp_path: Path) -> None:
    usb3 = edgetpu_run(tmp_path, USB3, update_baselines=True)
    judge(usb3, "t.py::test_a", bench_result(None))
    usb3.collector.write_baselines()
    usb3.close()

    verdict = judge(edgetpu_run(tmp_path, USB2), "t.py::test_a", bench_result(None)).verdict
    assert verdict is not None and verdict.status is Status.INCOMPARABLE
    assert verdict.reason.startswith(
        "baselines exist only for other device profiles: edgetpu-usb-usb5000-"
    )
    assert "(link 'usb5000' vs 'usb480'); never compared with edgetpu-usb-usb480-" in (
        verdict.reason
    )


def test_environment_and_profile_of_an_edgetpu_run(tmp_path: Path) -> None:
    load_delegate = FakeLoadDelegate()
    run = edgetpu_run(tmp_path, USB3, load_delegate, performance="max")
    run.start()  # opens the delegate once, before any test
    assert load_delegate.calls == [(LIBRARY, {"device": "usb:0", "Performance": "Max"})]
    assert run.station.profile.fields["performance"] == "Max"
    environment = run.station.environment
    assert {k: environment[k] for k in environment if "edgetpu" in k} == {
        "edgetpu_path": "/sys/bus/usb/devices/2-1",
        "edgetpu_link": "USB 3 (5000 Mbit/s)",
        "libedgetpu_build": "direct",
        "libedgetpu_version": "RuntimeVersion(14)",
        "edgetpu_performance": "Max",
    }
    assert float(environment["delegate_load_ms"]) >= 0
    run.close()


def test_a_device_that_does_not_open_stops_the_run_at_start(tmp_path: Path) -> None:
    failing = FakeLoadDelegate(error=ValueError("Failed to load delegate from libedgetpu.so.1\n"))
    run = edgetpu_run(tmp_path, USB3, failing)
    with pytest.raises(DeviceError, match=r"^the Edge TPU usb:0 \(/sys/bus/usb/devices/2-1\)"):
        run.start()
    run.close()


# --- the performance option ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("cli", "ini", "expected"),
    [
        ({}, {}, None),
        ({"performance": "max"}, {}, "Max"),
        ({}, {"performance": "Medium"}, "Medium"),
    ],
)
def test_performance_option(
    tmp_path: Path, cli: dict[str, str], ini: dict[str, str], expected: str | None
) -> None:
    assert session_settings(cli, ini, tmp_path, "pytest.ini").performance == expected


@pytest.mark.parametrize(
    ("cli", "ini", "where"),
    [
        ({"performance": "Turbo"}, {}, "--edgetpu-performance"),
        ({}, {"performance": "Turbo"}, "ini edgetpu_performance in pytest.ini"),
    ],
)
def test_bad_performance_level_names_its_source(
    tmp_path: Path, cli: dict[str, str], ini: dict[str, str], where: str
) -> None:
    with pytest.raises(ConfigError) as info:
        session_settings(cli, ini, tmp_path, "pytest.ini")
    assert str(info.value) == (
        f"{where}: unknown Edge TPU performance level 'Turbo'; use one of Low, Medium, High, "
        "Max (or leave it unset for libedgetpu's own default)"
    )


def test_bad_performance_level_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--edgetpu-performance=Turbo")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --edgetpu-performance: unknown Edge TPU performance level 'Turbo'*"]
    )


# --- PCIe temperature and throttling -------------------------------------------------------


def pcie_session(host: FakeHost, temp: str, trip: str | None = None) -> DeviceSession:
    host.apex(0, temp=temp)
    if trip is not None:
        (host.sys / "class" / "apex" / "apex_0" / "trip_point0_temp").write_text(trip + "\n")
    (tpu,) = host.discover().devices
    runtime = fake_edgetpu_runtime(FakeLoadDelegate())
    return DeviceSession(Device("pci", tpu.device_string, tpu), runtime)


def heats_to(host: FakeHost, millicelsius: str) -> Callable[[], None]:
    """A callable under test that stands in for work that heats the chip."""

    def work() -> None:
        (host.sys / "class" / "apex" / "apex_0" / "temp").write_text(millicelsius + "\n")

    return work


QUICK = MeasureSettings(warmup=0, min_runs=1, max_time_s=0.001, min_instances=1)
THROTTLED_NOTE = (
    "the Edge TPU reached 91.0 °C, at or above its first trip point 85.0 °C "
    "(trip_point0_temp), so the apex driver throttled its clock during this measurement; "
    "cool the card and measure again"
)


def test_temperature_before_and_after_a_cool_measurement(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    session = pcie_session(host, "48250")
    result = session.bench_callable(heats_to(host, "52000"), [], None)
    assert result.thermal == Thermal(48.25, 52.0, 85.0)
    assert not result.thermal.throttled
    assert result.notes == ()


def test_throttling_is_recorded_and_noted_in_the_verdict(tmp_path: Path) -> None:
    (tmp_path / "host").mkdir()
    host = FakeHost(tmp_path / "host")
    session = pcie_session(host, "80000")
    result = session.bench_callable(heats_to(host, "91000"), [], QUICK)
    assert result.thermal == Thermal(80.0, 91.0, 85.0)
    assert result.thermal.throttled
    run = edgetpu_run(tmp_path, session.device.edgetpu or PCIE)
    judged = judge(run, "t.py::test_hot", result)
    verdict = judged.verdict
    assert verdict is not None and verdict.reason.endswith(f"; {THROTTLED_NOTE}")
    assert judged.thermal == Thermal(80.0, 91.0, 85.0)
    assert result_json(judged)["thermal"] == {
        "before_c": 80.0,
        "after_c": 91.0,
        "trip_point_c": 85.0,
        "throttled": True,
    }
    assert judged.notes == (THROTTLED_NOTE,)
    # Shown once: the verdict line already holds it.
    assert result_notes(judged, verdict.message) == []


def test_compare_words_each_verdict_as_the_test_run_did(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A throttled Edge TPU's note and a BUSY verdict: pytest-edgetpu compare, run where the
    # test run ran, prints each verdict's line as the run's summary did.
    (tmp_path / "host").mkdir()
    host = FakeHost(tmp_path / "host")
    session = pcie_session(host, "80000")
    hot = session.bench_callable(heats_to(host, "91000"), [], QUICK)
    run = edgetpu_run(tmp_path, session.device.edgetpu or PCIE)
    quiet = (1.0, 1.01, 1.02, 1.0, 1.03, 1.01, 1.0, 1.02)
    busy = contended(replace(hot, instance_values_ms=tuple(v * 1.3 for v in quiet)), 0.35)
    quiet_run = contended(replace(hot, instance_values_ms=quiet, thermal=None), 0.0)
    hot = contended(replace(hot, instance_values_ms=quiet), 0.0)
    recorded = run.gate._entry(hot, None)
    write_entries(tmp_path / "baselines", run.station.profile, {"t.py::test_busy": recorded})
    run.close()
    run = edgetpu_run(tmp_path, session.device.edgetpu or PCIE)  # reads the entry just written
    structure = (
        "EDGETPU COMPILE PASS models/x_edgetpu.tflite: 1 Edge TPU subgraph(s), 553.62 KiB "
        "cached, 0 B streamed per inference, 0 op(s) on the CPU, unchanged; against "
        "baselines/edgetpu-compile.json"
    )
    compiled = run.judge(
        Pending("t.py::test_compiled", quiet_run, 0.05, remeasure_never, structure)
    )
    assert isinstance(compiled, TimedResult)
    judged = [judge(run, "t.py::test_hot", hot), judge(run, "t.py::test_busy", busy), compiled]
    assert [r.verdict.status for r in judged] == [
        Status.NO_BASELINE,
        Status.BUSY,
        Status.NO_BASELINE,
    ]
    assert judged[0].verdict.reason.endswith(THROTTLED_NOTE)
    # With an Edge TPU attached, the structure verdict is part of the latency verdict's line.
    assert compiled.verdict.message.endswith(f"; {structure}")
    document = ResultsFile(tuple(run.collector.results), {}, run.collector.profiles)
    (tmp_path / "results.json").write_text(document.dumps())
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    code = main(["compare", "results.json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out = captured.out.splitlines()
    for result in judged:
        assert f"{result.test_id}: {result.verdict.message}" in out


def test_the_cards_own_trip_point_counts(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    session = pcie_session(host, "91000", trip="95000")
    result = session.bench_callable(heats_to(host, "91000"), [], None)
    assert result.thermal == Thermal(91.0, 91.0, 95.0)
    assert not result.thermal.throttled


def test_usb_sticks_and_cpus_have_no_thermal_record(tmp_path: Path) -> None:
    for device in (Device("usb", "usb:0", USB3), Device("cpu", "cpu:0", cores=(0,))):
        session = DeviceSession(device, fake_edgetpu_runtime(FakeLoadDelegate()))
        assert session.bench_callable(lambda: None, [], None).thermal is None


# --- DFU priming on the xdist controller ----------------------------------------------------


class DfuHost:
    """FakeHost with three USB sticks, two still in DFU mode, and a ``load_delegate`` test
    double that does what a first open does to a DFU stick: load its firmware, after which
    the stick re-enumerates with the app-mode ids (unless ``firmware_loads`` is False)."""

    def __init__(self, root: Path, firmware_loads: bool = True) -> None:
        root.mkdir()
        self.host = FakeHost(root)
        self.host.usb_stick("2-1")
        self.host.usb_stick("2-2", dfu=True)
        self.host.usb_stick("2-3", dfu=True)
        self.firmware_loads = firmware_loads
        self.opened: list[str] = []  # sysfs names, in the order they were opened
        self.load_delegate = FakeLoadDelegate(on_open=self.open)

    def discover(self) -> Discovery:
        return self.host.discover()

    def open(self, device_string: str) -> None:
        stick = next(d for d in self.discover().devices if d.device_string == device_string)
        self.opened.append(Path(stick.path).name)
        if self.firmware_loads:
            (Path(stick.path) / "idVendor").write_text("18d1\n")
            (Path(stick.path) / "idProduct").write_text("9302\n")

    def controller(self, tmp_path: Path, device: str = "auto") -> BenchRun:
        return BenchRun(
            settings(tmp_path, device=device),
            tmp_path,
            role=Role.CONTROLLER,
            workers=3,
            discover_devices=self.discover,
            runtime=fake_edgetpu_runtime(self.load_delegate),
        )


def test_controller_loads_firmware_into_dfu_sticks_before_handing_out_devices(
    tmp_path: Path,
) -> None:
    dfu = DfuHost(tmp_path / "host")
    assert [d.dfu_mode for d in dfu.discover().devices] == [True, True, False]
    run = dfu.controller(tmp_path)
    devices = run.devices
    # One at a time, always the first DFU stick (usb:0); the app-mode stick is never opened.
    assert [options for _, options in dfu.load_delegate.calls] == [{"device": "usb:0"}] * 2
    assert dfu.opened == ["2-2", "2-3"]
    assert [Path(d.edgetpu.path).name for d in devices if d.edgetpu] == ["2-1", "2-2", "2-3"]
    assert [d.id for d in devices] == ["usb:0", "usb:1", "usb:2"]
    assert not any(d.dfu_mode for d in run.discovery.devices)
    assert [Path(p).name for p in run.primed] == ["2-2", "2-3"]


def test_controller_of_a_cpu_run_opens_no_stick(tmp_path: Path) -> None:
    dfu = DfuHost(tmp_path / "host")
    run = dfu.controller(tmp_path, device="cpu")
    _ = run.devices
    assert dfu.load_delegate.calls == []


def test_serial_run_does_not_prime(tmp_path: Path) -> None:
    dfu = DfuHost(tmp_path / "host")
    run = BenchRun(
        settings(tmp_path, device="auto"),
        tmp_path,
        discover_devices=dfu.discover,
        runtime=fake_edgetpu_runtime(dfu.load_delegate),
    )
    assert [d.dfu_mode for d in run.discovery.devices] == [True, True, False]
    assert dfu.load_delegate.calls == []


def test_a_stick_that_stays_in_dfu_mode_stops_the_run(tmp_path: Path) -> None:
    dfu = DfuHost(tmp_path / "host", firmware_loads=False)
    run = dfu.controller(tmp_path)
    with pytest.raises(DeviceError) as info:
        _ = run.devices
    stick = dfu.host.usb_devices / "2-2"
    assert str(info.value) == (
        f"the USB Edge TPU usb:0 ({stick}) is still in DFU mode (1a6e:089a) after its firmware "
        "was loaded; replug it, into a port or powered hub that supplies 900 mA, and check "
        "`pytest-edgetpu devices`"
    )
    assert dfu.opened == ["2-2"]


def test_profile_key_reads_as_a_file_name(tmp_path: Path) -> None:
    run = edgetpu_run(tmp_path, USB3, performance="High")
    key = run.station.profile.key
    assert key.startswith("edgetpu-usb-usb5000-") and key.endswith("-direct-litert-high")
    run.close()
