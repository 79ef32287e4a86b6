"""The cores a measuring thread runs on."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection, Iterator

__all__ = ["pinned"]


@contextlib.contextmanager
def pinned(cores: Collection[int]) -> Iterator[None]:
    """This thread on ``cores`` for the block, and back where it was after it; unchanged when
    ``cores`` is empty or the host cannot pin (another OS, a container's narrower cpuset).

    Both sides of an interleaved pair measure on the same core: on a shared VM each core's
    speed drifts by itself (a neighbour on the host's sibling thread), and two processes left
    to the scheduler stay on different cores for seconds, so the pairs compared two cores."""
    before = os.sched_getaffinity(0) if cores and hasattr(os, "sched_setaffinity") else None
    if before is not None:
        try:
            os.sched_setaffinity(0, cores)
        except OSError:
            before = None
    try:
        yield
    finally:
        if before is not None:
            os.sched_setaffinity(0, before)
