"""Crash isolation for CPU models, and their memory: each model is tried in fresh processes
first.

LiteRT trusts the model file. A damaged one that passes its checks can crash the process with a
segfault (2 of 8000 mutants of the Coral models did, ``benchmarks/mutants.py``), and that would
end the whole pytest session without a word about which file did it. So before a CPU session
loads a model for the first time, a helper process builds an interpreter from it and runs two
inferences on generated inputs, the same steps a test takes. When the helper dies or hangs, the
model gets a :class:`~pytest_edgetpu.core.errors.ModelError` that says so and the session goes on.
When the helper reports an ordinary error, the session loads the model itself and raises that
error with its usual message.

Never on an Edge TPU: a second process opening a USB Accelerator resets it under the first
(``docs/devices.md``), and the helper would hold the device the session needs.

One helper serves a whole session, one model after another, so a session pays for one
interpreter import, not one per model: for each model it forks :data:`MEMORY_RUNS` children,
one after another, and each loads the model and runs its two inferences in a process that has
done nothing else, measuring its memory per phase (:mod:`pytest_edgetpu.engine.memory`) on the way.
A child that dies is answered as the model's crash; a helper that died or hangs is replaced for
the next model (it leads a process group of its own, so a hung child goes with it). A child whose
resident memory passes the bound (half the host's memory) is killed there and the model refused
in one line, before the host's out-of-memory killer picks a process of its own (a 9 MB model of
6000 operators sharing one weight grows to 24 GB, as XNNPACK packs the weight for each).

The protocol is framed: each request and each answer is one line of JSON (a path with a
newline in it stays inside its string), each answer repeats its request's number, and the
helper answers on a descriptor of its own, so nothing the runtime prints to standard output
can pass for an answer.
"""

from __future__ import annotations

import itertools
import json
import os
import selectors
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..core.errors import ModelError, exit_words
from ..core.fields import Fields
from .memory import MEMORY_PHASES, MEMORY_RUNS, MemoryUse

__all__ = ["HELPER_COMMAND", "PROBE_TIMEOUT_S", "ModelProbe", "serve"]

#: How long one model may take in the helper: loaded and run twice, in each of its processes.
PROBE_TIMEOUT_S = 120.0
#: Not ``-m``: that puts the working directory first on ``sys.path``, where a project's own
#: ``selectors.py`` or ``json.py`` would stand in for the standard library's.
HELPER_COMMAND = (
    sys.executable,
    "-c",
    "import sys; del sys.path[0]; from pytest_edgetpu.engine.probe import serve; serve()",
)
#: How often the helper reads a child's resident memory while it runs.
_MEMORY_WATCH_S = 0.02
_OK, _FAILED, _CRASHED, _OVER_MEMORY = "ok", "failed", "crashed", "over_memory"


def memory_bound_bytes() -> int | None:
    """What one model's probe may hold resident: half the host's memory (None where the
    host does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return None


@dataclass(frozen=True)
class _Helper:
    """The helper process and its two streams: requests in, answers out."""

    process: subprocess.Popen[str]
    requests: IO[str]
    answers: IO[str]


@dataclass(frozen=True)
class _Answer:
    """The helper's answer to one request: ``ok``, ``failed`` (the runtime refused the model
    cleanly) or ``crashed`` (with how its child ended), and the model's memory per phase."""

    answer: str
    exit_words: str | None = None
    memory: MemoryUse | None = None


#: What a helper that died or garbled its answer said: nothing a session may trust.
_NO_ANSWER = _Answer("")


class ModelProbe:
    """A helper process that tries models before the session loads them.

    ``command`` starts the helper (default: :data:`HELPER_COMMAND`, looked up when the helper
    starts); tests give a named test double instead.
    """

    def __init__(
        self,
        runtime_label: str,
        command: Sequence[str] | None = None,
        timeout_s: float = PROBE_TIMEOUT_S,
        memory_bound: int | None = None,
    ) -> None:
        self._runtime_label = runtime_label
        self._command = tuple(command) if command is not None else None
        self._timeout_s = timeout_s
        self._memory_bound = memory_bound if memory_bound is not None else memory_bound_bytes()
        self._helper: _Helper | None = None
        self._safe: dict[tuple[str, int, str], MemoryUse | None] = {}
        self._numbers = itertools.count(1)

    def start(self) -> None:
        """Start the helper now, so its imports overlap the session's own start."""
        self._running()

    def _running(self) -> _Helper:
        """The helper, started anew when there is none or it has ended."""
        if self._helper is None or self._helper.process.poll() is not None:
            self._helper = self._started()
        return self._helper

    def _started(self) -> _Helper:
        process = subprocess.Popen(
            self._command or HELPER_COMMAND,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        if process.stdin is None or process.stdout is None:  # PIPE gives both; typeshed can't tell
            raise OSError(f"{self._runtime_label} probe helper started without its pipes")
        return _Helper(process, process.stdin, process.stdout)

    def check(
        self, path: Path, sha256: str, num_threads: int, kernels: str = "default"
    ) -> MemoryUse | None:
        """Raise ModelError when ``path`` crashes or hangs the helper, else return its memory
        per phase (None where it cannot be measured); once per model, thread count and
        ``kernels`` (``default``, ``builtin`` without XNNPACK, ``litert-cpu``)."""
        key = (sha256, num_threads, kernels)
        if key in self._safe:
            return self._safe[key]
        helper = self._running()
        number = next(self._numbers)
        # ensure_ascii: a path that is not valid UTF-8 (surrogate escapes) travels as \udcXX.
        request = json.dumps(
            {
                "id": number,
                "threads": num_threads,
                "kernels": kernels,
                "path": os.fspath(path),
                "memory_bound": self._memory_bound,
            }
        )
        try:
            helper.requests.write(request + "\n")
            helper.requests.flush()
        except BrokenPipeError:
            pass  # the helper died at start; its exit status below says how
        reply = _read_answer(helper, number, self._timeout_s)
        if reply is not None and reply.answer in (_OK, _FAILED):
            # A model the runtime refuses cleanly raises the same error in the session, with
            # the session's own message; only crashes and hangs are the probe's to report.
            self._safe[key] = reply.memory if reply.answer == _OK else None
            return self._safe[key]
        self.close()
        if reply is not None and reply.answer == _OVER_MEMORY and self._memory_bound is not None:
            raise ModelError(
                f"{path}: loading it and running two inferences took more than "
                f"{_gib(self._memory_bound)} of memory in a probe process (the bound: half this "
                "host's memory), so the session did not load it; find what makes it so large "
                "(XNNPACK packs a weight again for each operator that uses it), or run it on a "
                "host with more memory"
            )
        if reply is None:
            raise ModelError(
                f"{path}: loading it and running two inferences did not finish within "
                f"{self._timeout_s:g} s in a probe process, so the session did not load it; "
                "the file is damaged or the model is far too large for this CPU"
            )
        raise ModelError(
            f"{path}: the probe process running {self._runtime_label} ended with "
            f"{reply.exit_words or exit_words(helper.process.returncode)} while loading or "
            "running this "
            "model, so the session did not load it; the file is damaged or hits a runtime bug; "
            "re-export or re-download it"
        )

    def close(self) -> None:
        """Stop the helper (the session ends, or the helper is no use any more)."""
        helper, self._helper = self._helper, None
        if helper is None:
            return
        if helper.process.poll() is None:
            # The group: a child stuck in a model goes with the helper that forked it.
            try:
                os.killpg(helper.process.pid, signal.SIGKILL)
            except OSError:
                helper.process.kill()
        helper.process.wait()
        helper.requests.close()
        helper.answers.close()


def _gib(count: int) -> str:
    return f"{count / 2**30:.3g} GiB"


def _read_answer(helper: _Helper, number: int, timeout_s: float) -> _Answer | None:
    """The helper's answer to request ``number``; :data:`_NO_ANSWER` when it died, None when
    it did not answer in time. A line that is not that answer (which would be a protocol bug)
    counts as a dead helper: the session never loads a model on a stale or garbled "ok"."""
    with selectors.DefaultSelector() as selector:
        selector.register(helper.answers, selectors.EVENT_READ)
        if not selector.select(timeout_s):
            return None
    line = helper.answers.readline()
    try:
        fields = Fields(json.loads(line), "answer", fix="", error=ModelError)
        if fields.raw("id") != number:
            raise fields.problem("answers another request")
        return _Answer(fields.text("answer"), fields.optional_text("exit"), _memory_of(fields))
    except (ValueError, ModelError):
        helper.process.kill()
        helper.process.wait()
        return _NO_ANSWER


def _memory_of(answer: Fields) -> MemoryUse | None:
    """The model's memory per phase, from the runs the answer lists; None where there are
    none, or they are not all measured in every phase (an answer of another version)."""
    runs = answer.optional_children("memory") or []
    try:
        return MemoryUse.of_runs([{p: run.number(p) for p in MEMORY_PHASES} for run in runs])
    except ModelError:
        return None


def serve() -> None:
    """The helper: for each request, try the model in fresh children and answer on a private
    descriptor."""
    answers = os.fdopen(os.dup(1), "w", encoding="ascii")
    os.dup2(2, 1)  # what the runtime prints goes where stderr goes, never into an answer
    from ..device.runtime import load_runtime
    from .inputs import random_inputs_for

    runtime = load_runtime()
    # The input generator's first use imports numpy.random: done here, each child inherits it.
    # Done in a child, it counted in the model's first inferences (6 MiB of a small model's
    # invoke_rss, 1.3 MiB of its invoke_anon) and cost every child 20 ms.
    random_inputs_for(())
    for line in sys.stdin:
        request = json.loads(line)
        reply: dict[str, Any] = {"id": request["id"], "answer": _OK, "memory": []}
        for _ in range(MEMORY_RUNS):
            answer, ended, memory = _in_child(runtime, request)
            if answer != _OK:
                reply.update(answer=answer, exit=ended, memory=None)
                break
            if memory is not None:
                reply["memory"].append(memory)
        print(json.dumps(reply), file=answers, flush=True)


def _in_child(runtime: Any, request: Mapping[str, Any]) -> tuple[str, str, dict[str, float] | None]:
    """Run the request's model in a forked child: its answer, the words of how it ended, and
    its memory per phase (None where it cannot be measured)."""
    reading, writing = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report on the pipe and leave without running anything else
        os.close(reading)
        try:
            outcome = {"answer": _OK, "memory": _try_model(runtime, request)}
        except Exception:  # the session raises it again, in its own words
            outcome = {"answer": _FAILED, "memory": None}
        os.write(writing, json.dumps(outcome).encode("ascii"))
        os._exit(0)
    os.close(writing)
    bound = request.get("memory_bound")
    report, over = _watched_report(pid, reading, bound if isinstance(bound, int) else None)
    _, status = os.waitpid(pid, 0)
    if over:
        return _OVER_MEMORY, "", None
    if os.WIFSIGNALED(status) or not report:
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        return _CRASHED, exit_words(code), None
    outcome = json.loads(report)
    return str(outcome["answer"]), "", outcome["memory"]


def _watched_report(pid: int, reading: int, bound: int | None) -> tuple[bytes, bool]:
    """Child ``pid``'s report, read from descriptor ``reading`` (closed after), its resident
    memory read while it runs: past ``bound`` bytes the child is killed, and the second value
    is True."""
    report = bytearray()
    statm = f"/proc/{pid}/statm"
    page = os.sysconf("SC_PAGE_SIZE") if bound is not None else 0
    with selectors.DefaultSelector() as selector, open(reading, "rb", buffering=0) as pipe:
        selector.register(pipe, selectors.EVENT_READ)
        while True:
            if selector.select(_MEMORY_WATCH_S if bound is not None else None):
                chunk = pipe.read(65536)
                if not chunk:
                    return bytes(report), False
                report += chunk
                continue
            try:
                with open(statm, "rb") as pages:
                    resident = int(pages.read().split()[1]) * page
            except (OSError, ValueError, IndexError):
                continue  # no /proc: not watched
            if bound is not None and resident > bound:
                os.kill(pid, signal.SIGKILL)
                return bytes(report), True


def _try_model(runtime: Any, request: Mapping[str, Any]) -> dict[str, float] | None:
    """Load the model and run two inferences on generated inputs, the steps a test takes,
    measuring memory on the way where this system lets a process read its own."""
    from ..device.runtime import resolver_options
    from .inputs import fill_inputs, random_inputs_for
    from .memory import memory_readable, phase_memory

    path, threads, kernels = Path(request["path"]), int(request["threads"]), request["kernels"]

    def build() -> Any:
        if kernels == "litert-cpu":
            from ..device.accelerators import CompiledInterpreter

            return CompiledInterpreter(path, "cpu", threads)
        return runtime.interpreter_class(
            model_path=str(path),
            num_threads=threads,
            **resolver_options(runtime, kernels != "builtin"),
        )

    def run(interpreter: Any) -> None:
        details = interpreter.get_input_details()
        fill_inputs(interpreter, details, random_inputs_for(details))
        interpreter.invoke()
        interpreter.invoke()

    def allocate(interpreter: Any) -> None:
        interpreter.allocate_tensors()

    if not memory_readable():
        interpreter = build()
        allocate(interpreter)
        run(interpreter)
        return None
    return phase_memory(build, allocate, run)
