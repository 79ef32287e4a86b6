"""What the fixtures drive: a device session that loads models and measures them.

:class:`DeviceSession` holds one device for the whole run (on an Edge TPU: one delegate,
loaded once because a USB open costs seconds, timed apart from every measurement, and kept
alive longer than every interpreter that uses it). :class:`LoadedModel` is what
``edgetpu.load(path)`` returns. :class:`BenchResult` is what ``tpu_bench(...)`` returns.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ModelError, NeedsEdgeTpuError
from ..core.stats import summarize
from ..device.delegates import open_edgetpu_delegate, open_external_delegate
from ..device.delegation import Delegation, delegation_of, edgetpu_delegation
from ..device.discovery import Thermal, read_apex_temperature, read_apex_trip_point
from ..device.runtime import (
    Interpreter,
    Runtime,
    TensorDetails,
    consume_first_cpu_log,
    make_interpreter,
)
from ..device.selection import Device
from ..model.inspection import EDGETPU_CUSTOM_OP, ModelInfo, inspect_model
from .against import Against, Base
from .bench_result import BenchResult
from .cores import pinned
from .host_reference import HostReading, kernel_name
from .inputs import fill_inputs, random_inputs_for
from .measurement import EarlyStop, MeasureSettings
from .memory import MemoryUse
from .probe import ModelProbe
from .processes import measure_process_pairs, measure_processes
from .timing import StartInstance, StartSide, TimedInstance, measure, measure_pairs, time_once

__all__ = [
    "DeviceSession",
    "FreshProcess",
    "LoadedModel",
    "Thermal",
]


@dataclass(frozen=True)
class FreshProcess:
    """The fresh processes (ones that run the test) a call is measured in."""

    #: Starts instances of the call in process ``index``, under the settings given.
    start: Callable[[int, MeasureSettings], StartSide]
    #: Starts instances of the host's reference workload in process ``index``; None: the
    #: measurement takes no reading of the host.
    reference: Callable[[int], StartSide] | None = None


class LoadedModel:
    """A model loaded onto a device: its interpreter, tensor details and helpers.

    ``reload()`` swaps in a fresh interpreter instance; ``tpu_bench(callable)`` calls it
    between instances, so a callable that runs ``model.run(...)`` is measured over several
    instances like a model is. Code that keeps ``model.interpreter`` itself keeps one instance.
    """

    def __init__(self, session: DeviceSession, info: ModelInfo) -> None:
        self.info = info
        self._session = session
        self._default_inputs: list[np.ndarray] | None = None
        self._inputs_set: Sequence[np.ndarray] | None = None
        self.interpreter: Interpreter = session.new_interpreter(info.path)

    @property
    def path(self) -> Path:
        return self.info.path

    @property
    def input_details(self) -> list[TensorDetails]:
        return self.interpreter.get_input_details()

    @property
    def output_details(self) -> list[TensorDetails]:
        return self.interpreter.get_output_details()

    def random_inputs(self, seed: int = 0) -> list[np.ndarray]:
        """Deterministic inputs matching the model's input tensors."""
        return random_inputs_for(self.input_details, seed)

    def set_inputs(self, inputs: Sequence[np.ndarray] | np.ndarray | None = None) -> None:
        """Copy ``inputs`` (default: ``random_inputs(0)``; one array for a model of one
        input) into the input tensors."""
        if inputs is None:
            if self._default_inputs is None:
                self._default_inputs = self.random_inputs(0)
            inputs = self._default_inputs
        elif isinstance(inputs, np.ndarray):
            inputs = [inputs]
        details = self.input_details
        if len(inputs) != len(details):
            raise ValueError(
                f"{self.path.name} takes {len(details)} input(s), {len(inputs)} were given"
            )
        fill_inputs(self.interpreter, details, inputs)
        self._inputs_set = inputs

    def run(self, inputs: Sequence[np.ndarray] | np.ndarray | None = None) -> list[np.ndarray]:
        """One inference on ``inputs`` (default: ``random_inputs(0)``; one array for a model
        of one input, as ``model.run(preprocess(frame))``); returns the outputs."""
        self.set_inputs(inputs)
        self.interpreter.invoke()
        return [np.copy(self.interpreter.get_tensor(d["index"])) for d in self.output_details]

    def reload(self) -> None:
        """Replace the interpreter with a fresh instance (same model, same device, and the
        inputs last set, so a callable that only invokes still sees the same data)."""
        self.interpreter = self._session.new_interpreter(self.path)
        if self._inputs_set is not None:
            self.set_inputs(self._inputs_set)


class DeviceSession:
    """One device held for the run, with the runtime and (on an Edge TPU, or with an external
    delegate) its delegate.

    ``delegate_options`` are libedgetpu's (e.g. ``{"Performance": "Max"}``), checked before
    the device is opened. On the CPU, every model is tried in a :class:`ModelProbe` helper
    process before the session loads it (``probe`` replaces the default helper; none with
    ``probe_models`` False, in a helper whose parent has tried its models); never on a device
    that may be open in one process only.
    """

    def __init__(
        self,
        device: Device,
        runtime: Runtime,
        num_threads: int = 1,
        delegate_options: Mapping[str, str] | None = None,
        probe: ModelProbe | None = None,
        *,
        probe_models: bool = True,
    ) -> None:
        self.device = device
        self.runtime = runtime
        self.num_threads = num_threads
        self.delegate_options = dict(delegate_options or {})
        self.delegate_load_ms: float | None = None
        if probe is None and probe_models and not device.exclusive:
            probe = ModelProbe(runtime.label)
        self.probe = probe
        #: Why this device cannot measure here (a LiteRT accelerator this host lacks); its
        #: benchmarks are skipped with it. Known once the session is open.
        self.unavailable: str | None = None
        self._delegations: dict[tuple[str, int], Delegation | None] = {}
        self._memory: dict[tuple[str, int], MemoryUse | None] = {}

    @property
    def _shares_delegate(self) -> bool:
        return self.device.is_edgetpu or self.device.delegate is not None

    @functools.cached_property
    def _delegates(self) -> tuple[Any, ...]:
        if not self._shares_delegate:
            return ()
        start = time.perf_counter_ns()
        if self.device.delegate is not None:
            delegate = open_external_delegate(self.runtime, self.device.delegate)
        else:
            delegate = open_edgetpu_delegate(self.runtime, self.device, self.delegate_options)
        self.delegate_load_ms = (time.perf_counter_ns() - start) / 1e6
        return (delegate,)

    def open(self, *, early_probe: bool = True) -> None:
        """Open the device's delegate now, before anything is measured: a USB open costs
        seconds, and a device that cannot open should stop the run before its first test. On
        the CPU, start the probe helper (``early_probe``), so its imports overlap the
        collection; otherwise it starts with the first model it tries."""
        if self.probe is not None and early_probe:
            self.probe.start()
        if self.device.kind == "cpu":
            consume_first_cpu_log(self.runtime)
        if self.device.accelerator is not None:
            from ..device.accelerators import accelerator_missing

            self.unavailable = accelerator_missing(self.device.accelerator)
        _ = self._delegates

    def close(self) -> None:
        """Stop the probe helper; the delegate goes with the last interpreter that uses it."""
        if self.probe is not None:
            self.probe.close()

    def with_threads(self, num_threads: int) -> DeviceSession:
        """This session with another CPU thread count (the delegate is shared)."""
        if num_threads == self.num_threads:
            return self
        other = DeviceSession(
            self.device, self.runtime, num_threads, self.delegate_options, self.probe
        )
        other.unavailable = self.unavailable
        other._delegations = self._delegations
        other._memory = self._memory
        if not self._shares_delegate:
            return other
        other.__dict__["_delegates"] = self._delegates
        other.delegate_load_ms = self.delegate_load_ms
        return other

    def inspect(self, path: str | Path) -> ModelInfo:
        """Inspect a model file, refusing Edge TPU models when this device is a CPU and, on
        the CPU, models that crash or hang the probe helper."""
        info = inspect_model(path)
        if info.needs_edgetpu and not self.device.is_edgetpu:
            raise NeedsEdgeTpuError(
                f"{info.path} is compiled for the Edge TPU ({info.edgetpu_ops} "
                f"edgetpu-custom-op node(s)) and this run uses {self.device.id}; attach an "
                "Edge TPU (see `pytest-edgetpu devices`) or benchmark the CPU twin (the file "
                "without the _edgetpu suffix)"
            )
        if self.probe is not None:
            memory = self.probe.check(info.path, info.sha256, self.num_threads, self._kernels)
            self._memory[(info.sha256, self.num_threads)] = memory
        return info

    @property
    def _kernels(self) -> str:
        """What runs a model here, as the probe helper must run it to measure its memory."""
        if self.device.kind == "litert":
            return "litert-cpu"
        return "default" if self.device.xnnpack else "builtin"

    def memory(self, info: ModelInfo) -> MemoryUse | None:
        """``info``'s memory per phase, measured by the probe helper when the model was first
        inspected; None on a device the helper does not open, or where it cannot be read."""
        return self._memory.get((info.sha256, self.num_threads))

    def new_interpreter(self, path: Path) -> Interpreter:
        if self.device.accelerator is not None:
            from ..device.accelerators import CompiledInterpreter

            return CompiledInterpreter(path, self.device.accelerator, self.num_threads)
        return make_interpreter(
            self.runtime,
            path,
            num_threads=self.num_threads,
            delegates=self._delegates,
            # An external delegate's partitions are then the only ones, so they can be told
            # apart; what it leaves runs on the built-in kernels, as benchmark_model runs it.
            default_delegates=self.device.xnnpack and self.device.delegate is None,
        )

    def delegation(self, info: ModelInfo) -> Delegation | None:
        """Which of ``info``'s operators this device's delegate runs and which the CPU runs
        (once per model and thread count); None where the runtime does not say."""
        key = (info.sha256, self.num_threads)
        if key not in self._delegations:
            self._delegations[key] = self._delegation(info)
        return self._delegations[key]

    def _delegation(self, info: ModelInfo) -> Delegation | None:
        if self.device.is_edgetpu:
            return edgetpu_delegation(info.operators, EDGETPU_CUSTOM_OP)
        interpreter = self.new_interpreter(info.path)
        if self.device.accelerator is not None:
            from ..device.accelerators import CompiledInterpreter

            if isinstance(interpreter, CompiledInterpreter):  # what new_interpreter makes here
                return interpreter.delegation(len(info.operators))
        if self.device.delegate is not None:
            name = self.device.delegate.name
        else:
            name = "XNNPACK" if self.device.xnnpack else "a delegate (cpu-builtin runs none)"
        return delegation_of(interpreter, name)

    def load(self, path: str | Path) -> LoadedModel:
        """Load a model onto this device."""
        return LoadedModel(self, self.inspect(path))

    def model_instances(self, info: ModelInfo) -> StartInstance:
        """Makes fresh instances of ``info``'s model on this device, inputs set."""

        def start_instance() -> Callable[[], object]:
            # Every instance is a fresh interpreter that pays its own first inference (on an
            # Edge TPU: the parameter upload) and warm-up before its samples are taken. When
            # another model ran on this TPU in between, it evicted this model's parameters,
            # and that re-upload lands in the first inference, never in the steady state.
            model = LoadedModel(self, info)
            model.set_inputs()
            return model.interpreter.invoke

        return start_instance

    def model_base(self, info: ModelInfo, revision: str, where: str) -> Base:
        """``info``'s model, the file as it is at ``revision``, as the base side of a
        relative measurement on this device (in this process: one delegate serves both)."""
        instances = self.model_instances(info)
        return Base(
            revision,
            where,
            lambda settings: functools.partial(TimedInstance, instances, settings),
            info.sha256,
            self.memory(info),
        )

    def bench_model(
        self,
        info: ModelInfo,
        settings: MeasureSettings | None,
        base: Base | None = None,
        early: EarlyStop | None = None,
        fresh: FreshProcess | None = None,
    ) -> BenchResult:
        """Time ``info``'s model on fresh instances; ``settings`` None means one smoke run;
        with a ``base``, in pairs interleaved with it; with ``fresh`` (and no ``base``), in
        fresh processes that run the test; ``early``: until its verdict is settled."""
        try:
            instances = self.model_instances(info)
            result = self._bench(str(info.path), instances, settings, info, base, early, fresh)
            return replace(result, delegations=(self.delegation(info),), memory=self.memory(info))
        except RuntimeError as exc:
            # A damaged model can load and then have a kernel refuse its data at the first
            # inference (LiteRT: "Node number 1 (SPLIT) failed to invoke"): that is the file's
            # fault, worth one line, not the runtime's traceback. A callable's errors stay the
            # user's own.
            words = str(exc).strip().splitlines() or [type(exc).__name__]
            raise ModelError(
                f"{info.path} failed to run on {self.device.id} ({words[0]}); the file is "
                "damaged or needs what this runtime lacks: re-export or re-download it"
            ) from None

    def bench_callable(
        self,
        fn: Callable[[], object],
        models: Sequence[LoadedModel],
        settings: MeasureSettings | None,
        base: Base | None = None,
        early: EarlyStop | None = None,
        fresh: FreshProcess | None = None,
    ) -> BenchResult:
        """Time a user's callable; the ``models`` it uses are reloaded for each instance. With
        ``fresh`` (and no ``base``), in fresh processes that run the test instead of this one."""
        __tracebackhide__ = True  # the callable's exception shows the user's frames only
        name = getattr(fn, "__qualname__", None) or type(fn).__name__
        instances = self.callable_instances(fn, models)
        result = self._bench(name, instances, settings, None, base, early, fresh)
        return replace(
            result,
            callable_models=tuple(model.info for model in models),
            delegations=tuple(self.delegation(model.info) for model in models),
        )

    @staticmethod
    def callable_instances(
        fn: Callable[[], object], models: Sequence[LoadedModel]
    ) -> StartInstance:
        """Makes fresh instances of a callable: its ``models`` reloaded, then ``fn``."""

        # A callable that runs two models on one TPU makes it switch on every call, and unless
        # the models were compiled together each switch re-uploads parameters: that cost is
        # inside each timed call on purpose, as it is in the pipeline the callable stands for.
        def start_instance() -> Callable[[], object]:
            for model in models:
                model.reload()
            return fn

        return start_instance

    def _bench(
        self,
        target: str,
        start_instance: StartInstance,
        settings: MeasureSettings | None,
        info: ModelInfo | None,
        base: Base | None,
        early: EarlyStop | None,
        fresh: FreshProcess | None = None,
    ) -> BenchResult:
        __tracebackhide__ = True
        apex_dir = self.device.edgetpu.apex_dir if self.device.edgetpu else None
        before_c = read_apex_temperature(apex_dir) if apex_dir else None
        result = (
            self._smoke(target, start_instance, info)
            if settings is None
            else self._timed(target, start_instance, settings, info, base, early, fresh)
        )
        thermal = (
            Thermal(before_c, read_apex_temperature(apex_dir), read_apex_trip_point(apex_dir))
            if apex_dir
            else None
        )
        return replace(result, delegate_load_ms=self.delegate_load_ms, thermal=thermal)

    def _timed(
        self,
        target: str,
        start_instance: StartInstance,
        settings: MeasureSettings,
        info: ModelInfo | None,
        base: Base | None,
        early: EarlyStop | None,
        fresh: FreshProcess | None,
    ) -> BenchResult:
        __tracebackhide__ = True
        against = None
        if base is None and fresh is not None:
            result = measure_processes(
                lambda index: fresh.start(index, settings),
                settings,
                early=early,
                reference=fresh.reference,
            )
        elif base is None:
            result = measure(start_instance, settings, early=early)
        else:
            process_pair = base.process_pair
            with pinned(self._pair_cores()):
                if process_pair is None:
                    paired = measure_pairs(
                        functools.partial(TimedInstance, start_instance, settings),
                        base.side(settings),
                        settings,
                        early=early,
                    )
                else:
                    paired = measure_process_pairs(
                        lambda pairs: process_pair(pairs, settings), settings, early=early
                    )
            result = paired.head
            against = Against(
                base.revision,
                base.where,
                summary=paired.base.summary,
                instance_values_ms=paired.base.instance_values,
                model_sha256=base.model_sha256,
                memory_kib=dict(base.memory.kib) if base.memory is not None else None,
                in_processes=paired.processes,
            )
        return BenchResult(
            target=target,
            device_id=self.device.id,
            metric=settings.metric,
            num_threads=self.num_threads,
            timed=True,
            summary=result.summary,
            load_ms=result.load_ms,
            first_inference_ms=result.first_inference_ms,
            warmup_ms=result.warmup_ms,
            instance_values_ms=result.instance_values,
            model=info,
            measurement=result,
            against=against,
            processes=len(result.process_values) if base is None else 0,
            host_reading=(
                HostReading(kernel_name(in_test_processes=True), result.reference_values)
                if result.reference_values
                else None
            ),
        )

    def _pair_cores(self) -> tuple[int, ...]:
        """The cores both sides of a pair measure on: the device's, where its threads fit
        (an Edge TPU, or a CPU benchmark with more threads than cores, stays unpinned)."""
        cores = self.device.cores
        return cores if self.num_threads <= len(cores) else ()

    def _smoke(
        self,
        target: str,
        start_instance: StartInstance,
        info: ModelInfo | None,
    ) -> BenchResult:
        __tracebackhide__ = True
        load_start = time.perf_counter_ns()
        fn = start_instance()
        load_ns = time.perf_counter_ns() - load_start
        first_ns = time_once(fn)
        # A model gets one more, steady inference; a user's callable, which may be costly or
        # have side effects, runs exactly once.
        steady_ns = time_once(fn) if info is not None else first_ns
        summary = summarize([steady_ns])
        return BenchResult(
            target=target,
            device_id=self.device.id,
            metric="p50",
            num_threads=self.num_threads,
            timed=False,
            summary=summary,
            load_ms=load_ns / 1e6,
            first_inference_ms=first_ns / 1e6,
            warmup_ms=0.0,
            instance_values_ms=(summary.p50_ms,),
            model=info,
            measurement=None,
        )
