"""A measurement's key: its test's node id, with ``#N`` for the test's N-th ``tpu_bench`` call.

The key names the measurement's baseline entry, its result and its JUnit properties. Light on
purpose: the fixtures make keys at plugin start-up cost.
"""

from __future__ import annotations

__all__ = ["call_of", "measurement_key", "owner_of"]


def measurement_key(node_id: str, call: int) -> str:
    """The key of a test's ``call``-th measurement (1: the node id itself)."""
    return node_id if call == 1 else f"{node_id}#{call}"


def _split(key: str) -> tuple[str, int]:
    owner, mark, call = key.rpartition("#")
    # A node id may hold "#" itself (a parameter id): only a trailing "#<digits>" is a call.
    if mark and call.isdigit() and call[0] != "0":
        return owner, int(call)
    return key, 1


def owner_of(key: str) -> str:
    """The node id of the test a measurement belongs to."""
    return _split(key)[0]


def call_of(key: str) -> int:
    """Which of its test's measurements ``key`` is: 1, 2, ..."""
    return _split(key)[1]
