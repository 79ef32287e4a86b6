"""A git revision and its files: what ``--edgetpu-against`` and ``pytest-edgetpu diff`` read.

Every git call takes an argument list, never a shell, and user text never stands where git
reads an option. A blob is sized before it is read (a commit can hold a file of any size), and
only regular files count: a symlink or a submodule at the revision is not a model. A file the
repository keeps in Git LFS is read from the clone's own LFS store, as smudging would.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from ..core.errors import RevisionError
from ..core.jsonio import process_exists, read_regular
from ..core.limits import MAX_MODEL_BYTES

__all__ = [
    "Revision",
    "RevisionFiles",
    "git",
    "lfs_pointer",
    "private_scratch",
    "remove_stale_scratch",
]


#: git's modes of a regular file, and what its other modes are, in words.
_REGULAR: Final = ("100644", "100755")
_KINDS: Final = {"120000": "a symbolic link", "160000": "a submodule", "040000": "a directory"}


def git(*args: str, cwd: Path) -> bytes:
    """git's output; a failure is a :class:`RevisionError` with git's own first line."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError:
        raise RevisionError("git is not installed (or not on PATH)") from None
    except OSError as error:  # cwd missing, not a directory
        raise RevisionError(f"git cannot run in {cwd}: {error.strerror}") from None
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RevisionError(f"git {args[0]} failed: {lines[0] if lines else done.returncode}")
    return done.stdout


def commit_of(directory: Path) -> dict[str, str]:
    """The commit checked out where ``directory`` lies, and its commit time in UTC, as a
    results file's environment keeps them (``git_commit``, ``git_commit_time``); empty outside
    a git repository or without git. ``pytest-edgetpu history`` orders runs by that time."""
    try:
        told = git("log", "-1", "--format=%H %ct", cwd=directory).decode("ascii").split()
    except (RevisionError, UnicodeDecodeError):
        return {}
    if len(told) != 2 or not told[1].isdigit():
        return {}
    when = datetime.datetime.fromtimestamp(int(told[1]), datetime.timezone.utc)
    return {"git_commit": told[0], "git_commit_time": when.isoformat(timespec="seconds")}


@dataclass(frozen=True)
class Revision:
    """A commit, by the name the user gave it, in the repository at ``toplevel``."""

    name: str  # "origin/main", as given
    commit: str  # the full hash it names now
    toplevel: Path

    @property
    def words(self) -> str:
        """``origin/main (a1b2c3d)``; a commit named by its hash is just ``a1b2c3d``."""
        if self.commit.startswith(self.name.lower()):
            return self.commit[:7] if len(self.name) >= 7 else self.name
        return f"{self.name} ({self.commit[:7]})"

    @classmethod
    def resolve(cls, name: str, directory: Path, source: str) -> Revision:
        """The commit ``name`` names in the repository holding ``directory``; every way that
        fails is one line starting with ``source`` that says what to do."""
        if not name.strip() or name.startswith("-") or not name.isprintable():
            raise RevisionError(
                f"{source}: {name!r} is not a git revision; give one like origin/main, HEAD~1, "
                "a tag or a commit hash"
            )
        try:
            top = git("rev-parse", "--show-toplevel", cwd=directory)
        except RevisionError as error:
            if "not installed" in str(error):
                raise RevisionError(f"{source}: relative mode needs git: {error}") from None
            if "dubious ownership" in str(error):
                raise RevisionError(
                    f"{source}: git refuses the repository holding {directory}: it belongs to "
                    "another user (git's safe.directory check); if you trust it, run git config "
                    "--global --add safe.directory with its path"
                ) from None
            raise RevisionError(
                f"{source}: {directory} is not inside a git repository; relative mode measures "
                "the tests at a revision of the repository they live in (clone it, or gate "
                "against stored baselines without --edgetpu-against)"
            ) from None
        toplevel = Path(os.fsdecode(top.rstrip(b"\n")))
        try:
            # The name alone first: a suffix such as ^{commit} would become part of a
            # ``:/message`` search.
            named = git("rev-parse", "--verify", "--quiet", name, cwd=toplevel).strip()
        except RevisionError:
            shallow = git("rev-parse", "--is-shallow-repository", cwd=toplevel).strip()
            if shallow == b"true":
                raise RevisionError(
                    f"{source}: {name!r} names no commit in this clone of {toplevel}, which is "
                    "shallow; fetch the history (actions/checkout: fetch-depth: 0, or "
                    "git fetch --unshallow)"
                ) from None
            raise RevisionError(
                f"{source}: {name!r} names no commit in {toplevel}; fetch it first (e.g. "
                "git fetch origin) or give a branch, tag or commit hash that exists"
            ) from None
        object_id = named.decode("ascii")
        try:
            commit = git(
                "rev-parse", "--verify", "--quiet", f"{object_id}^{{commit}}", cwd=toplevel
            )
        except RevisionError:
            kind = git("cat-file", "-t", object_id, cwd=toplevel).decode("ascii").strip()
            raise RevisionError(
                f"{source}: {name!r} names a {kind} ({object_id[:12]}), not a commit; give a "
                "branch, tag or commit hash"
            ) from None
        return cls(name, commit.decode("ascii").strip(), toplevel)

    def tracks(self, path: Path) -> bool:
        """Whether ``path`` is a file git tracks in the working tree's index (committed or
        added): a versioned input, rather than something the tests make."""
        relative = self.relative(path)
        if relative is None:
            return False
        listing = git("--literal-pathspecs", "ls-files", "-z", "--", relative, cwd=self.toplevel)
        return os.fsencode(relative) in listing.split(b"\0")

    def relative(self, path: Path) -> str | None:
        """``path`` as git names it in this repository (``models/a.tflite``); None when it
        lies outside the repository."""
        try:
            return path.resolve().relative_to(self.toplevel.resolve()).as_posix()
        except ValueError:
            return None

    def blob(self, relative: str) -> tuple[str, int] | None:
        """The object id and size of the regular file ``relative`` at this revision; None
        when the revision has no regular file there."""
        found = self._entry(relative)
        if found is None or found[0] not in _REGULAR:
            return None
        _, object_id, size = found
        return object_id, int(size)

    def not_a_file(self, relative: str) -> str | None:
        """What the revision holds at ``relative`` when it is there but is not a regular file
        (``a symbolic link``, ``a submodule``, ``a directory``); None otherwise."""
        found = self._entry(relative)
        if found is None or found[0] in _REGULAR:
            return None
        return _KINDS.get(found[0], f"an entry of mode {found[0]}")

    def _entry(self, relative: str) -> tuple[str, str, str] | None:
        """The mode, object id and size (``-`` unless a blob) of ``relative`` at this
        revision."""
        listing = git("ls-tree", "-z", "-l", self.commit, "--", relative, cwd=self.toplevel)
        for record in filter(None, listing.split(b"\0")):
            meta, _, name = record.partition(b"\t")
            mode, _kind, object_id, size = meta.decode("ascii").split()
            if os.fsdecode(name) == relative:
                return mode, object_id, size
        return None

    def read(self, object_id: str) -> bytes:
        return git("cat-file", "blob", object_id, cwd=self.toplevel)

    def lfs_object(self, oid: str, size: int, where: str) -> bytes:
        """The content of the Git LFS object ``oid`` (``size`` bytes) from this clone's local
        LFS store, which ``git lfs fetch`` fills and smudging reads; never from the network.
        ``where`` (``REV:path``) names the file in errors."""
        if size > MAX_MODEL_BYTES:
            raise RevisionError(
                f"{where} is a Git LFS object of {size} bytes, more than a model may hold "
                f"(at most {MAX_MODEL_BYTES})"
            )
        configured = git("config", "--default", "", "lfs.storage", cwd=self.toplevel).strip()
        common = git("rev-parse", "--git-common-dir", cwd=self.toplevel).strip()
        # git-lfs keeps its store in the git directory, or where lfs.storage says (relative
        # to the git directory); either may be absolute.
        git_dir = self.toplevel / os.fsdecode(common)
        storage = git_dir / (os.fsdecode(configured) if configured else "lfs")
        try:
            content = read_regular(storage / "objects" / oid[:2] / oid[2:4] / oid, size)
        except (OSError, ValueError):
            content = None
        if content is None or hashlib.sha256(content).hexdigest() != oid:
            raise RevisionError(
                f"{where} is a Git LFS object that is not in this clone ({oid[:12]}...); fetch "
                f"it with `git lfs fetch origin {self.commit[:12]}` (in CI: check out with "
                "lfs: true and the history)"
            )
        return content


_SCRATCH_PREFIX: Final = "pytest-edgetpu-against-"


def private_scratch(prefix: str) -> Path:
    """A new private directory (mode 0700) in the temporary directory, named ``prefix``, this
    process's id and a random part; the ones named so after a process that is gone (a run that
    was killed) go first."""
    remove_stale_scratch(prefix)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-"))


def remove_stale_scratch(prefix: str) -> None:
    """Remove the scratch directories this user's runs left when they were killed: those
    named ``prefix`` and the id of a process that is gone. Another user's, or a live
    process's, stay; a link is never followed."""
    for path in Path(tempfile.gettempdir()).glob(f"{prefix}*-*"):
        pid = path.name.removeprefix(prefix).split("-")[0]
        try:
            info = path.lstat()
        except OSError:
            continue
        if (
            pid.isdigit()
            and stat.S_ISDIR(info.st_mode)
            and info.st_uid == os.getuid()
            and not process_exists(int(pid))
        ):
            shutil.rmtree(path, ignore_errors=True)


_CHUNK: Final = 1 << 20
_MAX_POINTER_BYTES: Final = 1024
#: The first line of a Git LFS pointer file (git-lfs's spec v1).
_LFS_VERSION: Final = b"version https://git-lfs.github.com/spec/v1\n"
_LFS_OID: Final = re.compile(rb"^oid sha256:([0-9a-f]{64})$", re.M)
_LFS_SIZE: Final = re.compile(rb"^size ([0-9]{1,15})$", re.M)


def lfs_pointer(content: bytes) -> tuple[str, int] | None:
    """The object id and size a Git LFS pointer names; None for any other content (a pointer
    is a few lines of text under 1 KiB)."""
    if len(content) > _MAX_POINTER_BYTES or not content.startswith(_LFS_VERSION):
        return None
    oid, size = _LFS_OID.search(content), _LFS_SIZE.search(content)
    if oid is None or size is None:
        return None
    return oid.group(1).decode("ascii"), int(size.group(1))


class RevisionFiles:
    """Files of a revision written out where the runtime can load them: a private directory
    (mode 0700, made for this process) that goes when the run ends."""

    def __init__(self, revision: Revision, max_bytes: int) -> None:
        self.revision = revision
        self.max_bytes = max_bytes
        self._directory: Path | None = None
        self._checkout: Path | None = None
        self._written: dict[str, Path | None] = {}

    def file(self, path: Path) -> Path | None:
        """A copy of ``path`` as it is at the revision; None when it does not exist there."""
        relative = self.revision.relative(path)
        if relative is None:
            return None
        if relative not in self._written:
            self._written[relative] = self._write(relative)
        return self._written[relative]

    def _write(self, relative: str) -> Path | None:
        found = self.revision.blob(relative)
        if found is None:
            return None
        object_id, size = found
        if size > self.max_bytes:
            raise RevisionError(
                f"{self.revision.name}:{relative}: {size} bytes is more than a model may hold "
                f"(at most {self.max_bytes})"
            )
        content = self.revision.read(object_id)
        pointer = lfs_pointer(content)
        if pointer is not None:
            content = self.revision.lfs_object(*pointer, f"{self.revision.name}:{relative}")
        # One folder per file keeps its own name (a ``_edgetpu`` suffix means something).
        folder = self.scratch() / str(len(self._written))
        folder.mkdir()
        target = folder / Path(relative).name
        target.write_bytes(content)
        return target

    def checkout(self) -> Path:
        """A checkout of the revision, made once: every regular file git tracks there, as the
        test at the revision sees it (``export-ignore`` does not apply, and a model kept in Git
        LFS is its real file where the clone has it), written by this process into its private
        directory. Symbolic links and submodules are not made (a link may lead anywhere), and a
        file larger than a model may be is left out: the helper runs tests, not data sets."""
        if self._checkout is None:
            target = self.scratch() / "checkout"
            target.mkdir()
            listing = git(
                "ls-tree", "-r", "-z", "-l", self.revision.commit, cwd=self.revision.toplevel
            )
            files = []
            for record in filter(None, listing.split(b"\0")):
                meta, _, name = record.partition(b"\t")
                mode, kind, object_id, size = meta.split()
                relative = Path(os.fsdecode(name))
                if (
                    kind == b"blob"
                    and mode in (b"100644", b"100755")
                    and int(size) <= self.max_bytes
                    and not relative.is_absolute()
                    and ".." not in relative.parts
                ):
                    files.append((object_id.decode("ascii"), int(size), relative, mode))
            try:
                self._write_files(target, files)
            except OSError as error:
                raise RevisionError(f"its files could not be checked out ({error})") from None
            self._checkout = target
        return self._checkout

    def _write_files(self, target: Path, files: list[tuple[str, int, Path, bytes]]) -> None:
        """Write ``files`` (object id, size, path, mode) below ``target``, read through one
        ``git cat-file --batch``; the requests go in from a thread of their own, so that
        reading the answers never waits for a round trip per file."""
        with subprocess.Popen(
            ["git", "cat-file", "--batch"],
            cwd=self.revision.toplevel,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        ) as batch:
            requests, answers = batch.stdin, batch.stdout
            if requests is None or answers is None:  # PIPE gives both; typeshed cannot tell
                raise OSError("git cat-file started without its pipes")
            asking = threading.Thread(
                target=_ask, args=(requests, [object_id for object_id, *_ in files]), daemon=True
            )
            asking.start()
            try:
                made: set[Path] = set()
                for _, size, relative, mode in files:
                    header = answers.readline().split()
                    if len(header) != 3 or header[2] != str(size).encode("ascii"):
                        raise OSError(f"git cat-file answered {b' '.join(header)!r} for {relative}")
                    path = target / relative
                    if path.parent not in made:
                        path.parent.mkdir(parents=True, exist_ok=True)
                        made.add(path.parent)
                    self._write_one(path, size, answers, relative)
                    answers.read(1)  # the newline after each object
                    if mode == b"100755":
                        path.chmod(0o755)
            finally:
                batch.kill()  # stops the feeding thread too, should writing fail half-way
                asking.join()

    def _write_one(self, path: Path, size: int, answers: IO[bytes], relative: Path) -> None:
        """Write the ``size`` bytes of one object from ``answers`` to ``path``: a small one
        whole (a Git LFS pointer is replaced by its object where the clone has it), a large
        one in chunks (it may be as large as a model may be)."""
        if size <= _MAX_POINTER_BYTES:
            content = answers.read(size)
            if len(content) != size:
                raise OSError(f"git cat-file ended in the middle of {relative}")
            if pointer := lfs_pointer(content):
                with contextlib.suppress(RevisionError):  # not in the clone: the pointer
                    content = self.revision.lfs_object(*pointer, str(relative))
            path.write_bytes(content)
            return
        with open(path, "wb") as out:
            left = size
            while left:
                chunk = answers.read(min(left, _CHUNK))
                if not chunk:
                    raise OSError(f"git cat-file ended in the middle of {relative}")
                out.write(chunk)
                left -= len(chunk)

    def scratch(self) -> Path:
        """This process's private directory for the revision's files (made on first use; the
        directories of runs that were killed before removing theirs go first)."""
        if self._directory is None:
            self._directory = private_scratch(_SCRATCH_PREFIX)
        return self._directory

    def close(self) -> None:
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = self._checkout = None


def _ask(requests: IO[bytes], object_ids: list[str]) -> None:
    """Feed ``git cat-file --batch`` its requests, then close its input (a killed one ends the
    feeding early)."""
    with contextlib.suppress(OSError), requests:
        for object_id in object_ids:
            requests.write(object_id.encode("ascii") + b"\n")
