"""A test's own code at a git revision, measured on command by a helper pytest process.

Relative mode measures a callable (or a model the test makes itself) at the revision by running
the test there: a helper pytest process in a checkout of the revision runs that one
test under this process's lease (an Edge TPU is never handed to it, see
:mod:`pytest_edgetpu.relative`) and measures each instance on the cores this process's
measuring thread is pinned to (each command names them), records the instances
of each ``tpu_bench`` call instead of measuring them, and, once the test body has
passed, measures one instance of call ``k`` each time this process asks. So both sides
alternate instance by instance although they live in two processes, and only one of them runs
at any moment.

The checkout's directory stays off ``sys.path``: the helper runs this process's
pytest-edgetpu (the protocol is this version's), while the test module and what it imports
from the checkout (pytest's rootdir-based imports) come from the revision. Installed packages
are what this environment has installed.

The protocol is framed like the probe's (:mod:`pytest_edgetpu.probe`): one line of ASCII JSON
per message, on descriptors of their own, so nothing the test prints can pass for an answer.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final

from .errors import RevisionError
from .measure import (
    InstanceRunner,
    InstanceSamples,
    MeasureSettings,
    StartInstance,
    instance_runner,
    pinned,
)

if TYPE_CHECKING:
    from .jsonio import JsonObject

__all__ = ["SERVE_ENV", "RevisionTest", "Serving"]

#: How the helper learns it is one: its descriptors and the test it serves, as JSON.
SERVE_ENV: Final = "PYTEST_EDGETPU_SERVE"
#: How long the helper may take to start, collect and run the test body.
START_TIMEOUT_S: Final = 300.0
#: How long one instance may take at the revision.
INSTANCE_TIMEOUT_S: Final = 120.0
_MAX_LINE: Final = 16 * 1024 * 1024
#: Beyond any core number a host has (Linux allows 8192 CPUs at most).
_MAX_CORE: Final = 8192
#: The helper's main: pytest as its ``pytest`` script starts it, with the checkout (the working
#: directory, which ``-c`` puts first on ``sys.path``) off the path (``-P`` does that from
#: Python 3.11 only).
_HELPER_MAIN: Final = "import sys; del sys.path[0]; import pytest; sys.exit(pytest.console_main())"


def _send(stream: IO[str], message: JsonObject) -> None:
    stream.write(json.dumps(message, ensure_ascii=True) + "\n")
    stream.flush()


def _receive(stream: IO[str], timeout_s: float | None) -> JsonObject | None:
    """The next message; None at the end of the stream, on a timeout or on garbage."""
    if timeout_s is not None:
        with selectors.DefaultSelector() as selector:
            selector.register(stream, selectors.EVENT_READ)
            if not selector.select(timeout_s):
                return None
    line = stream.readline(_MAX_LINE)
    try:
        message = json.loads(line)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


@dataclass(frozen=True)
class Call:
    """One ``tpu_bench`` call of the test at the revision."""

    target: str
    model_sha256: str | None


class RevisionTest:
    """This process's side: one test at the revision, in a helper it starts and stops.

    After :meth:`start`, ``calls`` holds the test's ``tpu_bench`` calls at the revision, or
    ``missing`` says why there are none (a test new since the revision, one that fails or
    cannot be collected there, a helper that did not start)."""

    def __init__(self, checkout: Path, node_id: str, log: Path) -> None:
        self.checkout = checkout
        self.node_id = node_id
        self.log = log
        self.calls: dict[int, Call] = {}
        self.missing = ""
        self._helper: subprocess.Popen[bytes] | None = None
        self._commands: IO[str] | None = None
        self._answers: IO[str] | None = None

    def start(self, revision: str) -> None:
        # The test's file, or the nearest folder of it that exists at the revision: a model
        # file the tests make (the example suite's) appears only once the checkout's conftest
        # has run, and pytest refuses a path that does not exist yet.
        collect = Path(self.node_id.split("::", 1)[0])
        if collect.suffix == ".py" and not (self.checkout / collect).is_file():
            self.missing = f"new since {revision}: no {collect.as_posix()} there"
            return
        while collect != collect.parent and not (self.checkout / collect).exists():
            collect = collect.parent
        commands_read, commands_write = os.pipe()
        answers_read, answers_write = os.pipe()
        environment = {
            **os.environ,
            SERVE_ENV: json.dumps(
                {
                    "commands": commands_read,
                    "answers": answers_write,
                    "node_id": self.node_id,
                    "revision": revision,
                }
            ),
        }
        command = [
            sys.executable, "-c", _HELPER_MAIN, os.fspath(self.checkout / collect),
            "--rootdir", os.fspath(self.checkout),
            "-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:randomly", "-o", "addopts=",
            "-o", "edgetpu_against=", "-q", "--edgetpu-device=cpu",
        ]  # fmt: skip
        with open(self.log, "wb") as log:
            try:
                self._helper = subprocess.Popen(
                    command,
                    cwd=self.checkout,
                    env=environment,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    pass_fds=(commands_read, answers_write),
                )
            finally:
                os.close(commands_read)
                os.close(answers_write)
        self._commands = os.fdopen(commands_write, "w", encoding="ascii")
        self._answers = os.fdopen(answers_read, "r", encoding="ascii")
        first = _receive(self._answers, START_TIMEOUT_S) or {}
        calls, missing = first.get("calls"), first.get("missing")
        if isinstance(calls, list):
            for index, raw in enumerate(calls, start=1):
                target = raw.get("target") if isinstance(raw, dict) else None
                sha = raw.get("model_sha256") if isinstance(raw, dict) else None
                if isinstance(target, str):
                    self.calls[index] = Call(target, sha if isinstance(sha, str) else None)
            return
        if isinstance(missing, str):
            self.missing = missing
        else:
            self.missing = f"the test did not run at {revision}: {self._log_line()}"
        self.close()

    def runner(self, call: int, settings: MeasureSettings) -> InstanceRunner:
        """Measures instances of call ``call`` at the revision, one per call of the runner."""

        def run(runs: int | None) -> InstanceSamples:
            if self._commands is None or self._answers is None:
                raise RevisionError(f"{self.node_id}: the helper at the revision has stopped")
            command: JsonObject = {
                "call": call,
                "runs": runs,
                "warmup": settings.warmup,
                "metric": settings.metric,
                # Both sides of a pair on the cores this thread measures on.
                "cores": _this_threads_cores(),
            }
            with contextlib.suppress(BrokenPipeError, ValueError):
                _send(self._commands, command)  # a dead helper: no answer below says so
            answer = _receive(self._answers, INSTANCE_TIMEOUT_S)
            instance = answer.get("instance") if answer is not None else None
            samples = _instance_from(instance)
            if samples is None:
                self.close()
                raise RevisionError(
                    f"{self.node_id}: the test at the revision stopped answering while "
                    f"measured ({self._log_line()})"
                )
            return samples

        return run

    def _log_line(self) -> str:
        """The line of the helper's output that says most about why it stopped."""
        try:
            with open(self.log, "rb") as log:
                lines = log.read()[-65536:].decode("utf-8", "replace").splitlines()
        except OSError:
            return "no output"
        told = [line for line in lines if line.startswith(("E ", "ERROR", "FAILED"))]
        words = [line.strip() for line in told or lines if line.strip()]
        return (words[0] if told else words[-1]) if words else "no output"

    def close(self) -> None:
        helper, self._helper = self._helper, None
        for stream in (self._commands, self._answers):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._commands = self._answers = None
        if helper is not None:
            try:
                helper.wait(timeout=30)
            except subprocess.TimeoutExpired:
                helper.kill()
                helper.wait()


def _instance_from(raw: object) -> InstanceSamples | None:
    if not isinstance(raw, dict):
        return None
    numbers = [raw.get(key) for key in ("load_ns", "first_ns")]
    warmup, samples, wait = raw.get("warmup_ns"), raw.get("samples_ns"), raw.get("wait_share")
    if not (
        all(_is_duration(n) for n in numbers)
        and isinstance(warmup, list)
        and isinstance(samples, list)
        and samples
        and all(_is_duration(n) for n in [*warmup, *samples])
        and (wait is None or (isinstance(wait, float | int) and 0.0 <= wait <= 1.0))
    ):
        return None
    return InstanceSamples(
        load_ns=int(numbers[0]),  # type: ignore[arg-type]
        first_ns=int(numbers[1]),  # type: ignore[arg-type]
        warmup_ns=tuple(int(n) for n in warmup),
        samples_ns=tuple(int(n) for n in samples),
        wait_share=float(wait) if wait is not None else None,
    )


def _this_threads_cores() -> list[object]:
    if not hasattr(os, "sched_getaffinity"):
        return []
    return [*sorted(os.sched_getaffinity(0))]


def _cores_from(raw: object) -> tuple[int, ...]:
    """The cores a command names, or none (unpinned) for anything but a list of core numbers."""
    if not isinstance(raw, list) or not all(
        isinstance(core, int) and not isinstance(core, bool) and 0 <= core < _MAX_CORE
        for core in raw
    ):
        return ()
    return tuple(raw)


def _is_duration(value: object) -> bool:
    # A nanosecond count of at most an hour: anything else is not a sample.
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 3_600 * 10**9


class Serving:
    """The helper's side: the test's calls as it made them, then measured on command."""

    def __init__(self, node_id: str, revision: str, commands: IO[str], answers: IO[str]) -> None:
        self.node_id = node_id
        self.revision = revision
        self._commands = commands
        self._answers = answers
        self._calls: list[tuple[Call, StartInstance]] = []
        self._finished = False

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
            str(told["node_id"]),
            str(told["revision"]),
            os.fdopen(int(told["commands"]), "r", encoding="ascii"),
            os.fdopen(int(told["answers"]), "w", encoding="ascii"),
        )

    def register(self, target: str, model_sha256: str | None, start: StartInstance) -> None:
        self._calls.append((Call(target, model_sha256), start))

    def finish(self, missing: str) -> None:
        """Tell the other side there is nothing to measure here, and why."""
        if not self._finished:
            self._finished = True
            _send(self._answers, {"missing": missing})

    def serve(self) -> None:
        """Say which calls the test made, then measure instances on command until told to
        stop (the other side closes its end)."""
        if self._finished:
            return
        self._finished = True
        listed: list[object] = [
            {"target": call.target, "model_sha256": call.model_sha256} for call, _ in self._calls
        ]
        _send(self._answers, {"calls": listed})
        while True:
            command = _receive(self._commands, None)
            if command is None:
                return
            index, runs = command.get("call"), command.get("runs")
            warmup, metric = command.get("warmup"), command.get("metric")
            if not (
                isinstance(index, int)
                and 1 <= index <= len(self._calls)
                and isinstance(warmup, int)
                and isinstance(metric, str)
            ):
                return
            settings = MeasureSettings(metric=metric, warmup=warmup)
            run = instance_runner(self._calls[index - 1][1], settings)
            with pinned(_cores_from(command.get("cores"))):
                samples = run(runs if isinstance(runs, int) and runs > 0 else None)
            _send(
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
