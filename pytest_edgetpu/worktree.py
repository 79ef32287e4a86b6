"""A commit measured against another by a pytest run of its own, in a temporary worktree:
what each ``pytest-edgetpu bisect`` step runs.

The user's working tree, index and branches are never touched: the commits are checked out in
a linked worktree in a private scratch directory, which goes (with git's record of it) when
the bisection ends, is interrupted or is terminated; one left by a killed run goes with the
next one. Each run's temporary files are kept in that directory too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from .core.errors import ResultsError, RevisionError, one_line
from .core.stats import Shift
from .judge.bisect import Commit, Measured
from .judge.results_file import load_results
from .judge.verdict import Status
from .relative.git import git, private_scratch, remove_stale_scratch

__all__ = ["Worktree", "commits_between"]

_SCRATCH_PREFIX: Final = "pytest-edgetpu-bisect-"
#: How long an interrupted run may take to clean up after itself before it is killed.
_GRACE_S: Final = 20.0
#: pytest's exit statuses for a run that tested: all passed, or some failed.
_TESTED: Final = (0, 1)


def commits_between(good: str, bad: str, toplevel: Path) -> list[Commit]:
    """The commits after ``good`` up to ``bad`` along ``bad``'s first parents, oldest first."""
    listing = git(
        "log", "--first-parent", "--ancestry-path", "--format=%H %s", f"{good}..{bad}", cwd=toplevel
    )
    commits = []
    for line in reversed(listing.decode("utf-8", "replace").splitlines()):
        sha, _, subject = line.partition(" ")
        commits.append(Commit(sha, subject))
    return commits


class Worktree:
    """A detached worktree of the repository at ``toplevel``, in which pytest runs ``args``
    from ``subdirectory`` (where the user ran the bisection) with ``--edgetpu-against``."""

    def __init__(self, toplevel: Path, subdirectory: str, args: Sequence[str], start: str) -> None:
        self.toplevel = toplevel
        self.args = tuple(args)
        self._runs = 0
        remove_stale_scratch(_SCRATCH_PREFIX)
        # A worktree whose directory went with a killed run is still in git's records.
        git("worktree", "prune", cwd=toplevel)
        self.scratch = private_scratch(_SCRATCH_PREFIX)
        self.checkout = self.scratch / "checkout"
        self.directory = self.checkout / subdirectory
        (self.scratch / "tmp").mkdir()
        try:
            git("worktree", "add", "--detach", "-q", str(self.checkout), start, cwd=toplevel)
        except RevisionError:
            shutil.rmtree(self.scratch, ignore_errors=True)
            raise

    def close(self) -> None:
        # A checkout that failed half-way cannot be removed by git: prune forgets it once its
        # directory is gone.
        with contextlib.suppress(RevisionError):
            git("worktree", "remove", "--force", "--force", str(self.checkout), cwd=self.toplevel)
        shutil.rmtree(self.scratch, ignore_errors=True)
        with contextlib.suppress(RevisionError):
            git("worktree", "prune", cwd=self.toplevel)

    def __enter__(self) -> Worktree:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def measure(self, commit: Commit, against: str, threshold: float) -> Measured:
        """``commit`` against ``against``, measured by one pytest run in the worktree."""
        start = time.monotonic()
        try:
            git("checkout", "-q", "-f", "--detach", commit.sha, cwd=self.checkout)
            git("clean", "-q", "-f", "-f", "-d", "-x", cwd=self.checkout)
        except RevisionError as error:
            return Measured({}, {}, f"cannot be checked out: {error}", time.monotonic() - start)
        if not self.directory.is_dir():
            return Measured({}, {}, "the directory the bisection runs in is not there")
        self._runs += 1
        results = self.scratch / f"results-{self._runs}.json"
        log = self.scratch / f"pytest-{self._runs}.log"
        command = [
            sys.executable,
            "-m",
            "pytest",
            *self.args,
            f"--edgetpu-against={against}",
            f"--edgetpu-threshold={threshold * 100:.2f}%",
            f"--edgetpu-json={results}",
            "-p",
            "no:cacheprovider",
        ]
        code = self._run(command, log)
        seconds = time.monotonic() - start
        if code not in _TESTED or not results.exists():
            return Measured({}, {}, f"pytest exited {code}: {_last_line(log)}", seconds)
        try:
            document = load_results(results)
        except ResultsError as error:
            return Measured({}, {}, one_line(str(error)), seconds)
        changes: dict[str, Shift] = {}
        statuses: dict[str, Status] = {}
        for result in document.timed:
            statuses[result.test_id] = result.verdict.status
            if result.verdict.change is not None:
                changes[result.test_id] = result.verdict.change
        if not statuses:
            return Measured({}, {}, f"no benchmark ran: {_last_line(log)}", seconds)
        return Measured(changes, statuses, "", seconds)

    def _run(self, command: list[str], log: Path) -> int:
        """The exit status of ``command``, its output kept in ``log``. On an interrupt (or a
        termination made one) the run is interrupted as a terminal would, given time to clean
        up, then killed; the interrupt goes on."""
        environment = _environment(self.scratch / "tmp")
        with open(log, "wb") as output:
            process = subprocess.Popen(
                command,
                cwd=self.directory,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C reaches this process only, which passes it on once.
                start_new_session=True,
            )
            try:
                return process.wait()
            except BaseException:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(_GRACE_S)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                raise


def _environment(temporary: Path) -> Mapping[str, str]:
    """The user's environment for a step's pytest, but its temporary files in the scratch
    directory and no job summary of its own: the bisection reports once."""
    environment = dict(os.environ)
    environment.pop("GITHUB_STEP_SUMMARY", None)
    environment["TMPDIR"] = str(temporary)
    return environment


def _last_line(log: Path) -> str:
    """The last line of a run's output that says something (pytest's summary or error)."""
    try:
        with open(log, "rb") as output:
            output.seek(max(0, os.fstat(output.fileno()).st_size - 8192))
            tail = output.read().decode("utf-8", "replace")
    except OSError:
        return "its output is gone"
    lines = [line.strip(" =") for line in tail.splitlines() if line.strip(" =")]
    return lines[-1][:300] if lines else "no output"
