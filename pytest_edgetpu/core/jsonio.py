"""Files that cross the plugin's boundary: JSON read with limits, text written atomically.

Reading: :func:`read_regular` reads only regular files (a FIFO would hang the run, a device
such as ``/dev/zero`` never ends), and never more than a bound. JSON is plain JSON, no pickle,
no YAML objects, bounded in size and nesting, with every number finite (NaN, Infinity and
``1e999``, which parses as infinity, are refused: a baseline holding one would compare as
nothing), integers of at most 20 digits, and no key given twice in one object (which JSON
parsers otherwise resolve silently, last one wins).

Writing: :func:`write_atomic` replaces a file all at once (temporary file beside it, fsync,
``os.replace``), so a reader, or a run killed in the middle, sees the old file or the new one,
never a part; :func:`check_writable` lets a run refuse a path it could not write before it
spends minutes measuring.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import json
import math
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final, TypeAlias

from .errors import ConfigError, ResultsError
from .limits import MAX_JSON_BYTES, MAX_JSON_DEPTH

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "JsonObject",
    "NotRegularFileError",
    "append_regular",
    "check_header",
    "check_writable",
    "loads_document",
    "loads_limited",
    "locked",
    "process_exists",
    "read_limited",
    "read_regular",
    "write_atomic",
    "write_text",
]

#: A JSON object as it crosses a boundary (a file, an xdist payload): written, or not yet read.
JsonObject: TypeAlias = dict[str, object]

MAX_BYTES: Final = MAX_JSON_BYTES
MAX_DEPTH: Final = MAX_JSON_DEPTH
_MAX_INTEGER_DIGITS: Final = 20


class NotRegularFileError(OSError):
    """The path names a FIFO, a device, a socket or a directory, not a regular file."""

    def __init__(self, mode: int) -> None:
        super().__init__(f"it is {_kind(mode)}, not a regular file")


_KINDS: Final = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    return next((words for test, words in _KINDS if test(mode)), "not a regular file")


def read_regular(
    path: Path, limit: int, *, head: int = 0, check_head: Callable[[bytes], None] | None = None
) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    Raises :class:`NotRegularFileError` for anything but a regular file (found without
    blocking: a FIFO is opened non-blocking), OSError when it cannot be read, and ValueError
    when it holds more than ``limit`` bytes or the path holds a NUL byte. With ``head`` and
    ``check_head``, the first ``head`` bytes are passed to ``check_head`` (which raises to
    refuse them) before the rest is read, so a huge file of the wrong kind costs a few bytes,
    not its size.
    """
    if "\0" in os.fspath(path):
        raise ValueError(f"the path {os.fspath(path)!r} holds a NUL byte, which no file name can")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno != errno.ENXIO:  # what opening a socket says
            raise
        raise NotRegularFileError(os.stat(path).st_mode) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFileError(info.st_mode)
        chunks = []
        if head:
            first = os.read(fd, head)
            if check_head is not None:
                check_head(first)
            chunks.append(first)
        if info.st_size > limit:
            raise ValueError(f"{info.st_size} bytes is more than {limit}")
        total = sum(map(len, chunks))
        # One byte past the limit tells a file that grew since fstat from one that did not.
        while total <= limit and (chunk := os.read(fd, min(1 << 20, limit + 1 - total))):
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise ValueError(f"more than {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def append_regular(path: Path, text: str) -> None:
    """Append ``text`` (UTF-8) to ``path``, created when missing; raises NotRegularFileError,
    without blocking, when it is a FIFO or a device, and OSError when it cannot be written."""
    # Looked at first: opening a FIFO without a reader fails with a less helpful ENXIO.
    if path.exists() and not path.is_file():
        raise NotRegularFileError(path.stat().st_mode)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o666)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFileError(info.st_mode)
        data = memoryview(text.encode("utf-8", errors="backslashreplace"))
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number these files can hold")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INTEGER_DIGITS:
        raise ValueError(f"an integer of {len(text.lstrip('-'))} digits is out of range")
    return int(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"the key {key!r} appears twice in one object")
        document[key] = value
    return document


def _check_depth(value: object, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        for child in value.values():
            _check_depth(child, depth + 1)
    elif isinstance(value, list):
        for child in value:
            _check_depth(child, depth + 1)


def loads_limited(text: str) -> Any:
    """Parse ``text``; raises ValueError (with the reason) for anything out of bounds."""
    if len(text) > MAX_BYTES:
        raise ValueError(f"{len(text)} characters is more than {MAX_BYTES}")
    try:
        document = json.loads(
            text,
            parse_constant=_no_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
            object_pairs_hook=_unique_keys,
        )
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels") from None
    _check_depth(document)
    return document


def check_header(
    document: object,
    source: object,
    *,
    kind: str,
    what: str,
    newest: int,
    foreign_fix: str,
    error: type[Exception],
) -> JsonObject:
    """``document`` as a ``what`` file (format ``kind``) this code reads; raises ``error`` that
    says why not (foreign, malformed or a newer version) with the fix. ``source`` names it."""
    if not isinstance(document, dict) or document.get("format") != kind:
        raise error(f'{source} is not a {what} file (no "format": "{kind}"); {foreign_fix}')
    version = document.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise error(f"{source}: invalid schema_version {version!r}; restore it from git")
    if version > newest:
        raise error(
            f"{source} has schema version {version}, newer than this pytest-edgetpu reads "
            f"({newest}); upgrade pytest-edgetpu"
        )
    return document


def loads_document(
    text: str,
    source: object,
    *,
    kind: str,
    what: str,
    newest: int,
    foreign_fix: str,
    damaged_fix: str,
    error: type[Exception],
) -> JsonObject:
    """Parse the text of a ``pytest-edgetpu <what>`` file (format ``kind``) and check its
    header; ``error`` says what is wrong with it, naming ``source``: unreadable JSON
    (``damaged_fix``), a foreign file (``foreign_fix``), a version newer than ``newest``."""
    try:
        document = loads_limited(text)
    except ValueError as exc:
        raise error(f"{source} is not a readable {what} file ({exc}); {damaged_fix}") from None
    return check_header(
        document,
        source,
        kind=kind,
        what=f"pytest-edgetpu {what}",
        newest=newest,
        foreign_fix=foreign_fix,
        error=error,
    )


def read_limited(path: Path) -> Any:
    """Read and parse a JSON file; raises OSError or ValueError (UnicodeDecodeError too)."""
    return loads_limited(read_regular(path, MAX_BYTES).decode("utf-8"))


def _temp_prefix(path: Path, pid: int) -> str:
    # Hidden and ending in .tmp, so no *.json glob ever picks one up; the writer's pid tells
    # a file whose writer was killed from one being written right now.
    return f".{path.name}.{pid}."


def _remove_stale_temp_files(path: Path) -> None:
    """Remove the temporary files that writers of ``path`` killed (SIGKILL) between creating
    and renaming them left behind; those of live writers stay."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = stale.name[len(path.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not process_exists(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()


def process_exists(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the host-wide lock of ``directory`` (an exclusive ``flock`` on the directory
    itself: no lock file is left behind in a git checkout)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str | bytes) -> None:
    """Replace ``path`` with ``text`` (UTF-8, or bytes as they are) in one step; raises OSError.

    A symlink at ``path`` is replaced, never written through.

    A failure the process survives (disk full, KeyboardInterrupt) removes the temporary file;
    a process killed between creating and renaming it leaves a hidden ``.tmp`` beside the
    untouched old file, which the next write of ``path`` removes.
    """
    # A lone surrogate (a test id under pytest's disable_test_id_escaping option) cannot be
    # encoded; the escaped form keeps the file valid UTF-8 rather than failing the write.
    data = text if isinstance(text, bytes) else text.encode("utf-8", errors="backslashreplace")
    _remove_stale_temp_files(path)
    fd, temp = tempfile.mkstemp(
        prefix=_temp_prefix(path, os.getpid()), suffix=".tmp", dir=path.parent
    )
    try:
        # mkstemp makes the file 0600; the new file is as readable as the one it replaces.
        old = path.lstat() if os.path.lexists(path) else None
        keep = old is not None and stat.S_ISREG(old.st_mode)
        os.fchmod(fd, old.st_mode & 0o777 if old is not None and keep else 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def check_writable(path: Path, where: str, *, directory: bool) -> None:
    """Raise ConfigError, naming ``where`` and the fix, when ``path`` (a directory, or a file
    to be created or replaced) could not be written. Leaves nothing behind."""
    if directory and path.exists() and not path.is_dir():
        raise ConfigError(f"{where}: {path} is a file, not a directory; choose a directory")
    if not directory and path.is_dir():
        raise ConfigError(f"{where}: {path} is a directory; give the path of a file")
    if not directory and path.exists() and not path.is_file():
        # Replacing /dev/stdout or a FIFO with a regular file is never what was meant.
        raise ConfigError(
            f"{where}: {path} is {_kind(path.stat().st_mode)}, not a regular file; give the "
            "path of a file"
        )
    probe = path if directory else path.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(
            f"{where}: {probe} is a file, so {path} cannot be created; choose another path"
        )
    try:
        # A real file created and removed: permission bits miss a read-only mount, and they
        # tell root nothing.
        fd, name = tempfile.mkstemp(prefix=".pytest-edgetpu-probe.", suffix=".tmp", dir=probe)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise ConfigError(
            f"{where}: cannot write {path} ({probe}: {exc.strerror or exc}); choose a "
            "writable location or fix its permissions"
        ) from None


def write_text(path: Path, text: str, append: bool = False) -> None:
    """Write ``text`` to ``path`` atomically (or append it), creating parent folders; any
    failure is a ResultsError naming the file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not append:
            write_atomic(path, text)
            return
        append_regular(path, text)
    except OSError as exc:
        # An fsync's "No space left on device" names no file; this message does.
        raise ResultsError(f"cannot write {path}: {exc.strerror or exc}") from exc
