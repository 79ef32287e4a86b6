"""The helper's side of relative mode: the test asked for, its ``tpu_bench`` calls as it made
them, then instances measured on command, of a call or of the host's reference workload (see
:mod:`pytest_edgetpu.relative.helper`, this process's side, and
:mod:`pytest_edgetpu.relative.serve`, the helper's pytest hooks)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Final

from ..core.errors import exit_words, one_line
from ..core.limits import is_count
from ..engine.cores import pinned
from ..engine.host_reference import reference_instance
from ..engine.measurement import MeasureSettings
from ..engine.timing import StartInstance, TimedInstance
from .channel import MAX_LINE, SERVE_ENV, Call, error_words, receive, send

if TYPE_CHECKING:
    from ..core.jsonio import JsonObject

__all__ = ["Serving"]

#: Beyond any core number a host has (Linux allows 8192 CPUs at most).
_MAX_CORE: Final = 8192


class Serving:
    """The helper's side: the test asked for (:meth:`next_test`), its calls as it made them,
    then measured on command until that test is done."""

    def __init__(
        self, revision: str, commands: IO[bytes], answers: IO[str], *, probe_models: bool = True
    ) -> None:
        self.revision = revision
        # Whether the helper's session tries each model in a probe process first (not where
        # the other side has tried these very files).
        self.probe_models = probe_models
        self._commands = commands
        self._answers = answers
        self._calls: list[tuple[Call, StartInstance]] = []
        self._finished = True

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Serving | None:
        """The helper's channel when this process is one (and the variable is then dropped,
        so that a pytest the test starts is no helper)."""
        raw = environ.get(SERVE_ENV)
        if raw is None:
            return None
        os.environ.pop(SERVE_ENV, None)
        told = json.loads(raw)
        return cls(
            str(told["revision"]),
            # Unbuffered, a byte at a time: an instance's process reads its commands from the
            # same descriptor and must leave the line after its last one unread.
            os.fdopen(int(told["commands"]), "rb", buffering=0),
            os.fdopen(int(told["answers"]), "w", encoding="ascii"),
            probe_models=told.get("probe_models") is not False,
        )

    def next_test(self) -> str | None:
        """The node id of the next test the other side asks for; None once it is done."""
        while True:
            command = receive(self._commands, None)
            if command is None:
                return None
            node_id = command.get("test")
            if isinstance(node_id, str):
                self._calls = []
                self._finished = False
                return node_id

    def register(self, target: str, model_sha256: str | None, start: StartInstance) -> None:
        self._calls.append((Call(target, model_sha256), start))

    def finish(self, missing: str) -> None:
        """Tell the other side there is nothing to measure in this test, and why."""
        if not self._finished:
            self._finished = True
            send(self._answers, {"missing": missing})

    def serve(self) -> None:
        """Say which calls the test made, then measure instances on command until the other
        side is done with the test (or closes its end)."""
        if self._finished:
            return
        self._finished = True
        listed: list[object] = [
            {"target": call.target, "model_sha256": call.model_sha256} for call, _ in self._calls
        ]
        send(self._answers, {"calls": listed})
        command = receive(self._commands, None)
        while command is not None:
            index, warmup = _count(command.get("call"), 1), _count(command.get("warmup"), 0)
            if command.get("reference") is True and warmup is not None:
                # The host's reference workload, timed in this process as the test's calls are.
                start = reference_instance
            elif index is None or index > len(self._calls) or warmup is None:
                return  # {"done": true}, or anything else: the test is over
            else:
                start = self._calls[index - 1][1]
            cores = _cores_from(command.get("cores"))
            command = self._instance_process(start, MeasureSettings(warmup=warmup), cores)

    def _instance_process(
        self, start: StartInstance, settings: MeasureSettings, cores: tuple[int, ...]
    ) -> JsonObject | None:
        """Serve one instance from a process of its own, forked from this one, until a command
        other than a block arrives; return that command.

        Each instance starts from the state the test's body left, as a fresh interpreter does
        for a model, not from what earlier instances allocated. This does not replicate the
        process: forked siblings share their parent's offset
        (``benchmarks/experiments/process_offsets.py``); pairs of helper processes do that
        (:func:`~pytest_edgetpu.engine.processes.measure_process_pairs`)."""
        if not hasattr(os, "fork"):
            return self._instance(start, settings, cores)
        handoff_read, handoff_write = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - the child's coverage is not collected
            os.close(handoff_read)
            status = 1
            try:
                handoff: JsonObject = {"next": self._instance(start, settings, cores)}
                status = 0
            except BaseException as error:
                traceback.print_exc()  # into the helper's log
                handoff = {"failed": error_words(error)}
            finally:
                with contextlib.suppress(OSError):
                    os.write(handoff_write, json.dumps(handoff, ensure_ascii=True).encode())
                sys.stderr.flush()
                os._exit(status)
        os.close(handoff_write)
        with os.fdopen(handoff_read, "rb") as handoff_file:
            told = handoff_file.read(MAX_LINE)
        _, status = os.waitpid(child, 0)
        try:
            handed: object = json.loads(told)
        except ValueError:
            handed = None
        following = handed.get("next") if isinstance(handed, dict) else None
        if isinstance(following, dict):
            return following
        failed = handed.get("failed") if isinstance(handed, dict) else None
        # The test's own code failed while measured (raised, or ended its process): the other
        # side hears why at once, rather than waiting for an answer that will not come.
        why = (
            failed
            if isinstance(failed, str)
            else f"its process ended with {exit_words(os.waitstatus_to_exitcode(status))}"
        )
        with contextlib.suppress(OSError):
            send(self._answers, {"failed": one_line(why)})
        return None

    def _instance(
        self, start: StartInstance, settings: MeasureSettings, cores: tuple[int, ...]
    ) -> JsonObject | None:
        """Serve one instance until a command other than a block arrives; return that command
        (None at the end of the stream)."""
        # The instance keeps the cores of the other side's thread while it lives.
        with pinned(cores):
            instance = TimedInstance(start, settings)
            while True:
                samples = instance.samples()
                send(
                    self._answers,
                    {
                        "instance": {
                            "load_ns": samples.load_ns,
                            "first_ns": samples.first_ns,
                            "warmup_ns": list(samples.warmup_ns),
                            "samples_ns": list(samples.samples_ns),
                            "wait_share": samples.wait_share,
                        }
                    },
                )
                command = receive(self._commands, None)
                runs = _count(command.get("block"), 1) if command is not None else None
                if runs is None:
                    return command
                instance.block(runs)


def _cores_from(raw: object) -> tuple[int, ...]:
    """The cores a command names, or none (unpinned) for anything but a list of core numbers."""
    if not isinstance(raw, list) or not all(
        isinstance(core, int) and not isinstance(core, bool) and 0 <= core < _MAX_CORE
        for core in raw
    ):
        return ()
    return tuple(raw)


def _count(value: object, lowest: int) -> int | None:
    """``value`` when it is a whole number from ``lowest`` to a million, else None."""
    return value if is_count(value, lowest, 10**6) else None
