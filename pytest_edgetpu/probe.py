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
"""

from __future__ import annotations

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
        try:
            helper.stdin.write(f"{num_threads}\t{path}\n")
            helper.stdin.flush()
        except BrokenPipeError:
            pass  # the helper died at start; its exit status below says how
        answer = _read_line(helper, self._timeout_s)
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


def _read_line(helper: subprocess.Popen[str], timeout_s: float) -> str | None:
    """The helper's answer; ``""`` when it died, None when it did not answer in time."""
    assert helper.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(helper.stdout, selectors.EVENT_READ)
        if not selector.select(timeout_s):
            return None
    answer = helper.stdout.readline().strip()
    if not answer:
        helper.wait()
    return answer


def _exit_words(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


def _serve() -> None:
    """The helper: for each ``num_threads<TAB>path`` line, try the model and answer."""
    from .bench import random_inputs_for
    from .runtime import load_runtime, make_interpreter

    runtime = load_runtime()
    for line in sys.stdin:
        threads, _, path = line.rstrip("\n").partition("\t")
        try:
            interpreter = make_interpreter(runtime, Path(path), num_threads=int(threads))
            details = interpreter.get_input_details()
            for detail, array in zip(details, random_inputs_for(details), strict=True):
                interpreter.set_tensor(detail["index"], array)
            interpreter.invoke()
            interpreter.invoke()
        except Exception:  # the session raises it again, in its own words
            answer = _FAILED
        else:
            answer = _OK
        print(answer, flush=True)


if __name__ == "__main__":
    _serve()
