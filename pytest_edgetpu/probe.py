"""Crash isolation for CPU models: each model is tried once in a helper process first.

LiteRT trusts the model file. A damaged one that passes its checks can crash the process with a
segfault (2 of 8000 mutants of the Coral models did, ``benchmarks/mutants.py``), and that would
end the whole pytest session without a word about which file did it. So before a CPU session
loads a model for the first time, a helper process builds an interpreter from it and runs two
inferences on generated inputs, the same steps a test takes. When the helper dies or hangs, the
model gets a :class:`~pytest_edgetpu.errors.ModelError` that says so and the session goes on.
When the helper reports an ordinary error, the session loads the model itself and raises that
error with its usual message.

Never on an Edge TPU: a second process opening a USB Accelerator resets it under the first
(``edgetpu.md`` §1.7), and the helper would hold the device the session needs.

One helper serves a whole session, one model after another, so a session pays for one
interpreter import, not one per model; a helper that crashed is replaced for the next model.

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
from collections.abc import Sequence
from pathlib import Path

from .errors import ModelError

__all__ = ["HELPER_COMMAND", "PROBE_TIMEOUT_S", "ModelProbe"]

#: How long one model may take to load and run twice in the helper.
PROBE_TIMEOUT_S = 120.0
HELPER_COMMAND = (sys.executable, "-m", "pytest_edgetpu.probe")
_OK, _FAILED = "ok", "failed"


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
    ) -> None:
        self._runtime_label = runtime_label
        self._command = tuple(command) if command is not None else None
        self._timeout_s = timeout_s
        self._helper: subprocess.Popen[str] | None = None
        self._safe: set[tuple[str, int]] = set()
        self._numbers = itertools.count(1)

    def start(self) -> None:
        """Start the helper now, so its imports overlap the session's own start."""
        if self._helper is None or self._helper.poll() is not None:
            self._helper = subprocess.Popen(
                self._command or HELPER_COMMAND,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )

    def check(self, path: Path, sha256: str, num_threads: int) -> None:
        """Raise ModelError when ``path`` crashes or hangs the helper; once per model."""
        if (sha256, num_threads) in self._safe:
            return
        self.start()
        helper = self._helper
        assert helper is not None and helper.stdin is not None and helper.stdout is not None
        number = next(self._numbers)
        # ensure_ascii: a path that is not valid UTF-8 (surrogate escapes) travels as \udcXX.
        request = json.dumps({"id": number, "threads": num_threads, "path": os.fspath(path)})
        try:
            helper.stdin.write(request + "\n")
            helper.stdin.flush()
        except BrokenPipeError:
            pass  # the helper died at start; its exit status below says how
        answer = _read_answer(helper, number, self._timeout_s)
        if answer in (_OK, _FAILED):
            # A model the runtime refuses cleanly raises the same error in the session, with
            # the session's own message; only crashes and hangs are the probe's to report.
            self._safe.add((sha256, num_threads))
            return
        self.close()
        if answer is None:
            raise ModelError(
                f"{path}: loading it and running two inferences did not finish within "
                f"{self._timeout_s:g} s in a probe process, so the session did not load it; "
                "the file is damaged or the model is far too large for this CPU"
            )
        raise ModelError(
            f"{path}: the probe process running {self._runtime_label} ended with "
            f"{_exit_words(helper.returncode)} while loading or running this model, so the "
            "session did not load it; the file is damaged or hits a runtime bug; re-export "
            "or re-download it"
        )

    def close(self) -> None:
        """Stop the helper (the session ends, or the helper is no use any more)."""
        helper, self._helper = self._helper, None
        if helper is None:
            return
        if helper.poll() is None:
            helper.kill()
        helper.wait()
        for stream in (helper.stdin, helper.stdout):
            if stream is not None:
                stream.close()


def _read_answer(helper: subprocess.Popen[str], number: int, timeout_s: float) -> str | None:
    """The helper's answer to request ``number``; ``""`` when it died, None when it did not
    answer in time. A line that is not that answer (which would be a protocol bug) counts as
    a dead helper: the session never loads a model on a stale or garbled "ok"."""
    assert helper.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(helper.stdout, selectors.EVENT_READ)
        if not selector.select(timeout_s):
            return None
    line = helper.stdout.readline()
    try:
        reply = json.loads(line)
    except ValueError:
        reply = None
    if not isinstance(reply, dict) or reply.get("id") != number:
        helper.kill()
        helper.wait()
        return ""
    return str(reply.get("answer"))


def _exit_words(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


def _serve() -> None:
    """The helper: for each request line, try the model and answer on a private descriptor."""
    answers = os.fdopen(os.dup(1), "w", encoding="ascii")
    os.dup2(2, 1)  # what the runtime prints goes where stderr goes, never into an answer
    from .inputs import fill_inputs, random_inputs_for
    from .runtime import load_runtime, make_interpreter

    runtime = load_runtime()
    for line in sys.stdin:
        request = json.loads(line)
        try:
            interpreter = make_interpreter(
                runtime, Path(request["path"]), num_threads=int(request["threads"])
            )
            details = interpreter.get_input_details()
            fill_inputs(interpreter, details, random_inputs_for(details))
            interpreter.invoke()
            interpreter.invoke()
        except Exception:  # the session raises it again, in its own words
            answer = _FAILED
        else:
            answer = _OK
        print(json.dumps({"id": request["id"], "answer": answer}), file=answers, flush=True)


if __name__ == "__main__":
    _serve()
