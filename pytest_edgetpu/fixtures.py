"""The fixtures ``edgetpu_device``, ``edgetpu`` and ``tpu_bench``: thin wiring to the engine.

A ``tpu_bench`` call measures at once and returns the result; the verdict is decided when
the test body has finished (see ``plugin.pytest_runtest_call``), so a regression fails the
test it belongs to, with the measurement's numbers in the message.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, NoReturn

import pytest

from .config import SessionSettings, Sourced, TestSettings, test_settings
from .core.errors import ConfigError, EdgeTpuError, NeedsEdgeTpuError, one_line
from .core.keys import measurement_key

if TYPE_CHECKING:
    from .engine.bench_result import BenchResult
    from .engine.session import DeviceSession, LoadedModel
    from .judge.gate import Pending
    from .model.inspection import ModelInfo
    from .run import BenchRun

__all__ = ["HeldDevice", "LazyRun", "ModelLoader", "TpuBench"]


class LazyRun:
    """The session's :class:`~pytest_edgetpu.run.BenchRun`, made on first use.

    A suite that benchmarks nothing then never imports numpy or a TFLite runtime: the
    plugin costs next to nothing where it is installed but not used.
    """

    def __init__(self, settings: SessionSettings, make: Callable[[], BenchRun]) -> None:
        self.settings = settings
        self._make = make
        self.made: BenchRun | None = None

    def get(self) -> BenchRun:
        if self.made is None:
            self.made = self._make()
        return self.made


RUN_KEY: Final = pytest.StashKey[LazyRun]()
PENDING_KEY: Final = pytest.StashKey[list["Pending"]]()


@dataclass(frozen=True)
class HeldDevice:
    """The device this process holds for the run (the ``edgetpu_device`` fixture)."""

    kind: str  # "cpu", "usb", "pci", "delegate" or "litert"
    id: str  # "cpu:0", "cpu-builtin:0", "usb:0", "delegate:libfoo.so", "litert-gpu", ...
    runtime: str  # "LiteRT 2.3.0"
    runtime_version: str
    libedgetpu_version: str | None
    link: str | None  # "USB 3 (5000 Mbit/s)", "PCIe"; None for the CPU
    delegate_path: str | None = None  # an external delegate's library
    delegate_sha256: str | None = None
    delegate_version: str | None = None  # where its file name carries one


def report_model_error(error: EdgeTpuError, strict: bool) -> NoReturn:
    """Skip a test whose Edge TPU model has no Edge TPU; fail any other model error.

    Raised ``from None``: the message says it all, and pytest would otherwise print the
    runtime's exception and this one chained, the message twice.
    """
    if isinstance(error, NeedsEdgeTpuError) and not strict:
        # Reported at the test's own location, like a skip marker, not at this line.
        raise pytest.skip.Exception(str(error), _use_item_location=True) from None
    raise pytest.fail.Exception(str(error), pytrace=False) from None


class ModelLoader:
    """Loads models onto the held device: ``edgetpu.load(path) -> LoadedModel``.

    With ``fully_delegated`` set, a model whose operators are not all run by the device's
    delegate fails its test, with those operators named, before anything is measured.
    """

    def __init__(
        self,
        session: DeviceSession,
        run: BenchRun,
        item: pytest.Item,
        fully_delegated: Sourced[bool] | None = None,
    ) -> None:
        self.session = session
        self.run = run
        self.item = item
        self.rootdir = run.rootdir
        self.strict = run.settings.strict
        self.fully_delegated = fully_delegated
        self.models: list[LoadedModel] = []
        #: Why an Edge TPU model's latency was not measured, once a test was skipped for it
        #: (a zero-code item, which measures nothing else, passes instead).
        self.unmeasured = ""
        #: The compile structure verdict's line of each Edge TPU model inspected, by path.
        self.structures: dict[Path, str] = {}

    @classmethod
    def for_test(cls, run: BenchRun, settings: TestSettings, item: pytest.Item) -> ModelLoader:
        """The loader of one test, on the session's device with the test's thread count; the
        test is skipped when that device cannot run on this host."""
        session = run.station.session.with_threads(settings.num_threads)
        if session.unavailable is not None:
            raise pytest.skip.Exception(
                f"{session.device.id}: {session.unavailable}", _use_item_location=True
            )
        return cls(session, run, item, settings.fully_delegated)

    def resolve(self, path: str | Path) -> Path:
        """Relative model paths are resolved from the rootdir; ``~`` and ``~user`` expand
        (a user this system does not know stays as written, and its model is not found)."""
        return self.rootdir / os.path.expanduser(path)

    def inspect(self, path: str | Path) -> ModelInfo:
        try:
            info = self.session.inspect(self.resolve(path))
            self._check_structure(info)
            self._check_delegation(info)
        except NeedsEdgeTpuError as error:
            self._structure_only(self.resolve(path), error)
        except EdgeTpuError as error:
            report_model_error(error, self.strict)
        return info

    def load(self, path: str | Path) -> LoadedModel:
        """Load ``path`` (relative to the rootdir) onto the device."""
        try:
            model = self.session.load(self.resolve(path))
            self._check_structure(model.info)
            self._check_delegation(model.info)
        except NeedsEdgeTpuError as error:
            self._structure_only(self.resolve(path), error)
        except EdgeTpuError as error:
            report_model_error(error, self.strict)
        self.models.append(model)
        return model

    def _check_structure(self, info: ModelInfo, unmeasured: str = "") -> str:
        """Gate what edgetpu_compiler did to the model (on any host: the file says it); a
        structural regression fails the test before anything is measured. Returns the
        verdict's line ("" where no structure is gated)."""
        verdict = self.run.judge_structure(info, unmeasured)
        if verdict is None:
            return ""
        from .report.junit import structure_properties

        self.item.user_properties.extend(structure_properties(verdict))
        if verdict.fails(self.strict) and not self.run.settings.update:
            # From None: raised while an Edge TPU model's "no Edge TPU" is being handled too.
            raise pytest.fail.Exception(one_line(verdict.message), pytrace=False) from None
        self.structures[info.path] = verdict.message
        return verdict.message

    def _structure_only(self, path: Path, error: NeedsEdgeTpuError) -> NoReturn:
        """An Edge TPU model and no Edge TPU: its compile structure is still gated, and the
        test says that its latency was not measured (it fails with ``--edgetpu-strict``)."""
        from .model.inspection import inspect_model

        if not self.run.settings.enabled or self.strict:
            report_model_error(error, self.strict)
        why = f"no Edge TPU attached (this run uses {self.session.device.id})"
        self.unmeasured = one_line(self._check_structure(inspect_model(path), why) or str(error))
        raise pytest.skip.Exception(self.unmeasured, _use_item_location=True) from None

    def _check_delegation(self, info: ModelInfo) -> None:
        required = self.fully_delegated
        if required is None or not required.value:
            return
        delegation = self.session.delegation(info)
        device = self.session.device.id
        if delegation is None:
            why = "the runtime does not list the interpreter's operators, so it cannot be told"
        elif delegation.fully_delegated:
            return
        else:
            why = delegation.words()
        raise pytest.fail.Exception(
            f"{info.path} is not fully delegated on {device}: {why} (required by "
            f"{required.source}); move those ops to ones the delegate supports, or drop the "
            "requirement",
            pytrace=False,
        )


class TpuBench:
    """``tpu_bench()``, ``tpu_bench(model_or_path)`` or ``tpu_bench(callable)``."""

    def __init__(
        self, run: BenchRun, edgetpu: ModelLoader, settings: TestSettings, node_id: str
    ) -> None:
        self.run = run
        self.edgetpu = edgetpu
        self.settings = settings
        self.node_id = node_id
        self.pending: list[Pending] = []

    def __call__(
        self, target: str | Path | LoadedModel | Callable[[], object] | None = None
    ) -> BenchResult:
        # An exception in the user's callable shows their frames, not this plugin's.
        __tracebackhide__ = True
        from .bench_call import BenchCall
        from .judge.gate import Pending

        number = len(self.pending) + 1
        try:
            call = BenchCall(
                run=self.run,
                session=self.edgetpu.session.with_threads(self.settings.num_threads),
                settings=self.settings,
                node_id=self.node_id,
                call=number,
                key=measurement_key(self.node_id, number),
                timed=self._what_to_time(target),
                models=tuple(self.edgetpu.models),
            )
            result = call.measure()
        except ConfigError as error:
            raise pytest.fail.Exception(str(error), pytrace=False) from None
        except EdgeTpuError as error:
            report_model_error(error, self.edgetpu.strict)
        if self.run.serving is not None:
            # A helper's calls are judged by the process it serves. Judged here too, they
            # would read the working tree's stored baselines, of which the revision's helpers
            # have none: see BenchRun.start.
            self.run.serving.register(result.target, result.model_sha256, call.instances())
            return result
        remeasure = functools.partial(call.measure, confirming=True)
        timed_paths = [model.path for model in result.models]
        structure = "; ".join(
            self.edgetpu.structures[path] for path in timed_paths if path in self.edgetpu.structures
        )
        threshold = self.settings.threshold.value
        self.pending.append(Pending(call.key, result, threshold, remeasure, structure))
        return result

    def _what_to_time(
        self, target: str | Path | LoadedModel | Callable[[], object] | None
    ) -> ModelInfo | Callable[[], object]:
        """The model ``target`` names, or the callable it is; a ConfigError for a target that
        is neither."""
        from .engine.session import LoadedModel

        if target is None or isinstance(target, (str, Path)):
            path = target if target is not None else self.settings.model
            if path is None:
                raise ConfigError(
                    f"{self.node_id}: tpu_bench() has no model to time; give the marker "
                    "one (@pytest.mark.tpu_bench(model=...)) or pass a path, a loaded "
                    "model or a callable"
                )
            return self.edgetpu.inspect(path)
        if isinstance(target, LoadedModel):
            return target.info
        if callable(target):
            return target
        raise ConfigError(
            f"{self.node_id}: tpu_bench() takes a model path, a loaded model or a "
            f"callable, not {type(target).__name__}"
        )


@pytest.fixture(scope="session")
def edgetpu_device(pytestconfig: pytest.Config) -> HeldDevice:
    """The device this process holds for the run."""
    run = pytestconfig.stash[RUN_KEY].get()
    try:
        session = run.station.session
    except EdgeTpuError as error:
        raise pytest.fail.Exception(str(error), pytrace=False) from None
    device = session.device
    delegate = device.delegate
    return HeldDevice(
        kind=device.kind,
        id=device.id,
        runtime=run.runtime.label,
        runtime_version=run.runtime.version,
        libedgetpu_version=run.discovery.libedgetpu_version if device.is_edgetpu else None,
        link=device.edgetpu.link if device.edgetpu else None,
        delegate_path=str(delegate.path) if delegate else None,
        delegate_sha256=delegate.sha256 if delegate else None,
        delegate_version=delegate.version if delegate else None,
    )


@pytest.fixture
def edgetpu(request: pytest.FixtureRequest, edgetpu_device: HeldDevice) -> ModelLoader:
    """Loads models onto the held device: ``edgetpu.load(path) -> model``."""
    run = request.config.stash[RUN_KEY].get()
    return ModelLoader.for_test(run, _test_settings(request), request.node)


@pytest.fixture
def tpu_bench(request: pytest.FixtureRequest, edgetpu: ModelLoader) -> TpuBench:
    """Measures a model or callable; the verdict is applied when the test ends."""
    run = request.config.stash[RUN_KEY].get()
    bench = TpuBench(run, edgetpu, _test_settings(request), request.node.nodeid)
    request.node.stash[PENDING_KEY] = bench.pending
    return bench


def _test_settings(request: pytest.FixtureRequest) -> TestSettings:
    settings = request.config.stash[RUN_KEY].settings
    marker = request.node.get_closest_marker("tpu_bench")
    args, kwargs = (marker.args, marker.kwargs) if marker else ((), {})
    return test_settings(settings, args, kwargs, request.node.nodeid)
