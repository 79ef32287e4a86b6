"""A test's own code at a git revision, measured on command by a helper pytest process.

Relative mode measures a callable (or a model the test makes itself) at the revision by running
the test there: a helper pytest process in a checkout of the revision collects the test's file
and runs the tests this process asks for, one at a time, under this process's lease (an Edge
TPU is never handed to it, see :mod:`pytest_edgetpu.relative.base`). Of each test it records the
instances of each ``tpu_bench`` call instead of measuring them, and, once the test body has
passed, makes an instance of call ``k`` when this process asks, on the cores this process's
measuring thread is pinned to (the command names them), and times blocks of its calls on
command while this process's own instance waits. So the two sides of a pair take turns block by
block although they live in two processes, and only one of them runs at any moment. One
helper serves every test of its file that this process measures, in turn.

The checkout's directory stays off ``sys.path``: the helper runs this process's
pytest-edgetpu (the protocol is this version's), while the test module and what it imports
from the checkout (pytest's rootdir-based imports) come from the revision. Installed packages
are what this environment has installed.

The channel is :mod:`pytest_edgetpu.relative.channel`; the helper's side of it is
:mod:`pytest_edgetpu.relative.serving`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final

from ..core.errors import FailedAtRevisionError, HostReadingError, RevisionError, exit_words
from ..core.fields import Fields
from ..core.limits import MAX_DURATION_MS
from ..engine.host_reference import REFERENCE_SETTINGS
from ..engine.measurement import InstanceSamples, MeasureSettings
from ..engine.timing import LiveInstance, StartSide
from .channel import SERVE_ENV, Call, receive, send

if TYPE_CHECKING:
    from ..core.jsonio import JsonObject

__all__ = ["RevisionHelper", "RevisionTest"]

#: How long the helper may take to start and collect (the first test), and to run a test body.
START_TIMEOUT_S: Final = 300.0
#: How long one instance may take at the revision.
INSTANCE_TIMEOUT_S: Final = 120.0
_MAX_NS: Final = int(MAX_DURATION_MS * 1e6)
#: The helper's main: pytest as its ``pytest`` script starts it, with the checkout (the working
#: directory, which ``-c`` puts first on ``sys.path``) off the path (``-P`` does that from
#: Python 3.11 only).
_HELPER_MAIN: Final = "import sys; del sys.path[0]; import pytest; sys.exit(pytest.main())"
#: What the helper does not inherit: the run's own outputs and pytest options (the helper's
#: command line is its own), and anything that would keep the plugin from loading there.
_NOT_INHERITED: Final = (
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
    "GITHUB_STEP_SUMMARY",
)


class RevisionHelper:
    """This process's side: a helper at the revision that runs the tests of one file there, one
    at a time, each when this process asks for it (:meth:`test`).

    One helper serves every test of its file, so its start (Python, pytest, the runtime, the
    file's imports) is paid once per file rather than once per test."""

    def __init__(
        self, checkout: Path, file: str, log: Path, device: str, *, probe_models: bool = True
    ) -> None:
        self.checkout = checkout
        self.file = file
        self.log = log
        # The device the tests' models load on there: this session's (a cpu-builtin session's
        # helper loads them with XNNPACK off too), borrowed, not leased.
        self.device = device
        # False where another process has tried the helper's models already: this one (the
        # working tree's), or the revision's first helper (the rest of the revision's).
        self.probe_models = probe_models
        self.missing = ""
        self.revision = ""
        self._helper: subprocess.Popen[bytes] | None = None
        self._commands: IO[str] | None = None
        self._answers: IO[str] | None = None
        self._serving: RevisionTest | None = None
        # The test asked for whose answer is not read yet.
        self._asked: str | None = None

    @property
    def running(self) -> bool:
        return self._helper is not None and self._helper.poll() is None

    def start(self, revision: str) -> None:
        self.revision = revision
        # The test's file, or the nearest folder of it that exists at the revision: a model
        # file the tests make (the example suite's) appears only once the checkout's conftest
        # has run, and pytest refuses a path that does not exist yet.
        collect = Path(self.file)
        if collect.suffix == ".py" and not (self.checkout / collect).is_file():
            self.missing = f"new since {revision}: no {collect.as_posix()} there"
            return
        while collect != collect.parent and not (self.checkout / collect).exists():
            collect = collect.parent
        commands_read, commands_write = os.pipe()
        answers_read, answers_write = os.pipe()
        environment = {
            **{name: value for name, value in os.environ.items() if name not in _NOT_INHERITED},
            SERVE_ENV: json.dumps(
                {
                    "commands": commands_read,
                    "answers": answers_write,
                    "revision": revision,
                    "probe_models": self.probe_models,
                }
            ),
        }
        command = [
            sys.executable, "-c", _HELPER_MAIN, os.fspath(self.checkout / collect),
            "--rootdir", os.fspath(self.checkout),
            "-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:randomly",
            "-p", "no:hypothesispytest", "-o", "addopts=",
            "-o", "edgetpu_against=", "-q", f"--edgetpu-device={self.device}",
        ]  # fmt: skip
        try:
            with open(self.log, "wb") as log:
                self._helper = subprocess.Popen(
                    command,
                    cwd=self.checkout,
                    env=environment,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    pass_fds=(commands_read, answers_write),
                    # Its own process group: a helper that hangs is killed with the instance
                    # process it forked (the parent's Ctrl-C ends it by closing its pipes).
                    start_new_session=True,
                )
        except OSError as error:
            for descriptor in (commands_write, answers_read):
                os.close(descriptor)
            raise RevisionError(f"its helper process could not start ({error})") from None
        finally:
            os.close(commands_read)
            os.close(answers_write)
        self._commands = os.fdopen(commands_write, "w", encoding="ascii")
        self._answers = os.fdopen(answers_read, "r", encoding="ascii")

    def test(self, node_id: str) -> RevisionTest:
        """Test ``node_id`` run at the revision: its ``tpu_bench`` calls there, ready to be
        measured, or why it has none. The test served before it is done."""
        test = RevisionTest(node_id, self)
        if self.missing:
            test.missing = self.missing
            return test
        self.ask(node_id)
        self._asked = None
        first = self._receive(START_TIMEOUT_S) or {}
        calls, missing = first.get("calls"), first.get("missing")
        if isinstance(calls, list):
            for index, raw in enumerate(calls, start=1):
                target = raw.get("target") if isinstance(raw, dict) else None
                sha = raw.get("model_sha256") if isinstance(raw, dict) else None
                if isinstance(target, str):
                    test.calls[index] = Call(target, sha if isinstance(sha, str) else None)
            self._serving = test
        elif isinstance(missing, str):
            test.missing = missing
        elif self._ended() is None:
            self.kill()
            test.missing = (
                f"the test did not finish at {self.revision} within {START_TIMEOUT_S:.0f} s "
                "(its helper is stopped)"
            )
            # One hang per test file is waited for: the file's later tests are not run there.
            self.missing = (
                f"{node_id} did not finish at {self.revision} within {START_TIMEOUT_S:.0f} s, "
                "so the file's later tests are not run there"
            )
        else:
            test.missing = f"the test did not run at {self.revision}: {self._log_line()}"
            self.close()
        return test

    def ask(self, node_id: str) -> None:
        """Ask the helper to run test ``node_id`` (the test served before it is done) without
        waiting for it to get there: :meth:`test` hears how it went."""
        if self.missing or self._asked == node_id:
            return
        if self._asked is not None:
            self.test(self._asked)  # its answer comes first
        self.done()
        if self._commands is not None:
            with contextlib.suppress(BrokenPipeError, ValueError):
                send(self._commands, {"test": node_id})
        self._asked = node_id

    def done(self) -> None:
        """Let the test being served finish at the revision."""
        if self._serving is not None and self._commands is not None:
            with contextlib.suppress(BrokenPipeError, ValueError):
                send(self._commands, {"done": True})
        self._serving = None

    def measure(
        self, test: RevisionTest, command: JsonObject, *, reference: bool = False
    ) -> InstanceSamples:
        """The samples of the instance ``command`` starts or times: of one of the test's
        calls, or with ``reference`` of the host's reference workload."""
        if self._serving is not test or self._commands is None:
            raise RevisionError(f"{test.node_id}: the helper at the revision has moved on")
        with contextlib.suppress(BrokenPipeError, ValueError):
            send(self._commands, command)  # a dead helper: no answer below says so
        answer = self._receive(INSTANCE_TIMEOUT_S)
        failed = answer.get("failed") if answer is not None else None
        if isinstance(failed, str):
            self._serving = None
            if reference:
                raise HostReadingError(
                    f"the host's reference workload failed in a helper of {test.node_id} ({failed})"
                )
            raise FailedAtRevisionError(
                f"the test fails while measured in its helper for {self.revision} ({failed})"
            )
        samples = _instance_from(answer.get("instance") if answer is not None else None)
        if samples is not None:
            return samples
        ended = self._ended()
        if ended is None:
            # Alive but silent: the test's own code hangs in the instance being measured.
            self.kill()
            raise FailedAtRevisionError(
                f"the test gave no answer within {INSTANCE_TIMEOUT_S:.0f} s while measured in "
                f"its helper for {self.revision} (stopped)"
            )
        self.close()
        why = (
            "a SIGKILL is often the kernel's out-of-memory killer: check the host's memory"
            if ended == -signal.SIGKILL
            else f"its last line: {self._log_line()}"
        )
        raise RevisionError(
            f"could not measure {test.node_id}: its helper for {self.revision} "
            f"ended with {exit_words(ended)} while measuring ({why}); run the tests again"
        )

    def _ended(self) -> int | None:
        """The helper's return code once it has ended (waiting a few seconds for one that
        closed its end); None while it runs."""
        if self._helper is None:
            return 0
        try:
            return self._helper.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None

    def _receive(self, timeout_s: float) -> JsonObject | None:
        return None if self._answers is None else receive(self._answers, timeout_s)

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
        self.let_go()
        self.wait()

    def let_go(self) -> None:
        """Tell the helper it is done (its pytest session then ends) without waiting for it:
        several helpers end together."""
        self._serving = self._asked = None
        for stream in (self._commands, self._answers):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._commands = self._answers = None

    def kill(self) -> None:
        """End a helper that stopped answering at once, with the instance process it forked."""
        if self._helper is not None and self._helper.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(self._helper.pid, signal.SIGKILL)
        self.close()

    def wait(self) -> None:
        """Wait for the helper to end, killing it after 30 s."""
        helper, self._helper = self._helper, None
        if helper is not None:
            try:
                helper.wait(timeout=30)
            except subprocess.TimeoutExpired:
                helper.kill()
                helper.wait()


class RevisionTest:
    """One test as it runs at the revision: its ``tpu_bench`` calls there (``calls``, by
    number), or ``missing``, why it has none (new since the revision, fails or cannot be
    collected there, a helper that did not start)."""

    def __init__(self, node_id: str, helper: RevisionHelper) -> None:
        self.node_id = node_id
        self.calls: dict[int, Call] = {}
        self.missing = ""
        self.helper = helper

    def side(self, call: int, settings: MeasureSettings) -> StartSide:
        """Starts instances of call ``call`` at the revision, each alive in the helper until
        the next one starts."""

        return self._side({"call": call}, settings, reference=False)

    def reference_side(self) -> StartSide:
        """Starts instances of the host's reference workload in the helper, after the test's
        body, as its calls' are (:mod:`pytest_edgetpu.engine.host_reference`); one that fails
        there is a :class:`HostReadingError`."""
        return self._side({"reference": True}, REFERENCE_SETTINGS, reference=True)

    def _side(self, what: JsonObject, settings: MeasureSettings, *, reference: bool) -> StartSide:
        def start() -> LiveInstance:
            command: JsonObject = {
                **what,
                "warmup": settings.warmup,
                # Both sides of a pair on the cores this thread measures on.
                "cores": _this_threads_cores(),
            }
            started = self.helper.measure(self, command, reference=reference)
            return _HelperInstance(self, started, reference)

        return start


class _HelperInstance:
    """This process's handle on the instance the helper keeps alive: each block is a command,
    each answer the instance's samples so far."""

    def __init__(self, test: RevisionTest, started: InstanceSamples, reference: bool) -> None:
        self._test = test
        self._latest = started
        self._reference = reference

    @property
    def first_ns(self) -> int:
        return self._latest.first_ns

    @property
    def warmup_ns(self) -> tuple[int, ...]:
        return self._latest.warmup_ns

    def block(self, runs: int) -> None:
        before = len(self._latest.samples_ns)
        latest = self._test.helper.measure(self._test, {"block": runs}, reference=self._reference)
        if len(latest.samples_ns) != before + runs:
            self._test.helper.close()
            raise RevisionError(
                f"{self._test.node_id}: the helper at the revision answered {runs} calls with "
                f"{len(latest.samples_ns) - before} samples"
            )
        self._latest = latest

    def samples(self) -> InstanceSamples:
        return self._latest


def _instance_from(raw: object) -> InstanceSamples | None:
    """The instance an answer describes; None when the answer is not one (the helper died
    mid-answer): every duration a nanosecond count from 1 ns to an hour."""
    try:
        fields = Fields(raw, "instance", fix="", error=RevisionError)
        words = "a duration from 1 ns to 1 h in nanoseconds"
        return InstanceSamples(
            load_ns=fields.count("load_ns", 1, _MAX_NS, words),
            first_ns=fields.count("first_ns", 1, _MAX_NS, words),
            warmup_ns=fields.counts("warmup_ns", 1, _MAX_NS, words),
            samples_ns=fields.counts("samples_ns", 1, _MAX_NS, words),
            wait_share=fields.share("wait_share"),
        )
    except RevisionError:
        return None


def _this_threads_cores() -> list[object]:
    if not hasattr(os, "sched_getaffinity"):
        return []
    return [*sorted(os.sched_getaffinity(0))]
