"""A device profile: what makes two measurements comparable, and the key that files them.

Device kind and connection, host CPU architecture and model for CPU runs, libedgetpu build for
Edge TPUs, runtime family: two measurements whose profiles differ are never compared. The key
is a baseline file's name, e.g. ``baselines/cpu-x86_64-amd-epyc-litert.json``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

__all__ = ["Profile"]

#: How a profile's ``workers`` field writes its count: ``2-workers``.
_WORKERS: Final = "-workers"

# Profile fields in the order they read best in a file name: cpu-x86_64-amd-epyc-litert.
_KEY_ORDER: Final = {
    name: i
    for i, name in enumerate(
        (
            "device",
            "delegate",
            "delegate_sha256",
            "link",
            "arch",
            "cpu_model",
            "libedgetpu",
            "runtime",
            "performance",
            "delegate_options",
            "workers",
        )
    )
}


@dataclass(frozen=True)
class Profile:
    """A device profile: the fields that must match for two measurements to be compared."""

    fields: Mapping[str, str]

    @property
    def key(self) -> str:
        """The file stem: the fields' values joined, reduced to ``[a-z0-9._-]``."""
        names = sorted(self.fields, key=lambda n: (_KEY_ORDER.get(n, len(_KEY_ORDER)), n))
        return _slug("-".join(self.fields[name] for name in names))

    def with_workers(self, workers: int) -> Profile:
        """The profile of this device measured beside ``workers - 1`` other xdist workers
        (they slow each other down); a serial run's profile has no ``workers`` field."""
        serial = {k: v for k, v in self.fields.items() if k != "workers"}
        return Profile({**serial, "workers": f"{workers}{_WORKERS}"} if workers > 1 else serial)

    @property
    def workers(self) -> int:
        """How many xdist workers measured side by side (1: a serial run)."""
        count = self.fields.get("workers", "").removesuffix(_WORKERS)
        return int(count) if count.isdigit() else 1

    def differences(self, other: Profile) -> list[str]:
        """Human words for every field that differs, e.g. ``cpu_model 'A' vs 'B'``."""
        names = sorted(set(self.fields) | set(other.fields))
        return [
            f"{name} {self.fields.get(name, '-')!r} vs {other.fields.get(name, '-')!r}"
            for name in names
            if self.fields.get(name) != other.fields.get(name)
        ]


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9._]+", "-", text.lower()).strip("-.")
    return slug[:120] or "profile"
