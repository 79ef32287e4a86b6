"""Every result of a run, and the baseline entries an update will write.

A measuring process adds the results its gate made; an xdist worker hands what it collected to
the controller as a JSON payload (:meth:`Collector.drain`), which the controller's collector
takes over (:meth:`Collector.absorb`). Whoever writes (a serial run, the controller) writes the
queued entries at the end (:meth:`Collector.write_baselines`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from ..core.errors import BaselineError, ResultsError
from ..core.fields import Fields
from ..core.jsonio import JsonObject
from ..device.profile import Profile
from .baselines import BaselineEntry, BaselineStore, parse_entry, write_entries
from .results import Result, TimedResult
from .results_file import read_environment, read_profiles, read_results, result_json
from .structure import StructureStore, StructureVerdict

__all__ = ["Collector"]


class Collector:
    """The results, device profiles and environments of a run, and its queued entries."""

    def __init__(self, baseline_dir: Path, display: Callable[[Path], Path]) -> None:
        self.baseline_dir = baseline_dir
        self.display = display
        self.results: list[Result] = []
        #: The device profiles of everything measured, by key (for the results file).
        self.profiles: dict[str, Profile] = {}
        #: The environments measured in: this process's, or each worker's.
        self.environments: list[Mapping[str, str]] = []
        self._queued: dict[str, tuple[Profile, dict[str, BaselineEntry]]] = {}
        #: Each compiled model's structure verdict, once per test that benchmarks it.
        self.structures: list[StructureVerdict] = []

    @property
    def timed(self) -> list[TimedResult]:
        return [result for result in self.results if isinstance(result, TimedResult)]

    def add(self, result: Result, profile: Profile, environment: Mapping[str, str]) -> None:
        """Keep ``result``; queue its entry when the gate recorded it."""
        self.results.append(result)
        self.profiles[profile.key] = profile
        if environment not in self.environments:
            self.environments.append(environment)
        if isinstance(result, TimedResult) and result.recorded:
            self._queue(profile, {result.test_id: result.baseline_entry})

    def _queue(self, profile: Profile, entries: Mapping[str, BaselineEntry]) -> None:
        self._queued.setdefault(profile.key, (profile, {}))[1].update(entries)

    @property
    def environment(self) -> Mapping[str, str]:
        """The environment the run measured in (under xdist: its first worker's)."""
        return self.environments[0] if self.environments else {}

    def drain(self) -> JsonObject | None:
        """What a worker hands the controller since its last drain (None when nothing new):
        its results, profiles, environment and queued entries, as JSON."""
        if not self.results and not self._queued and not self.structures:
            return None
        payload: JsonObject = {
            "results": [result_json(result) for result in self.results],
            "structures": [verdict.to_json() for verdict in self.structures],
            "environment": dict(self.environment) if self.results else {},
            "profiles": {key: dict(profile.fields) for key, profile in self.profiles.items()},
            "pending": {
                key: {
                    "profile": dict(profile.fields),
                    "entries": {tid: e.to_json() for tid, e in entries.items()},
                }
                for key, (profile, entries) in self._queued.items()
            },
        }
        self.results = []
        self.structures = []
        self._queued.clear()
        return payload

    def absorb(self, payload: object, source: str) -> None:
        """Take over a worker's payload (``source`` names the worker in errors)."""
        if not isinstance(payload, dict):
            raise ResultsError(f"{source} sent a payload that is not an object")
        self.results.extend(read_results(payload.get("results"), source))
        structures = payload.get("structures")
        if not isinstance(structures, list):
            raise ResultsError(f"{source} sent a payload without its compile structures")
        self.structures.extend(
            StructureVerdict.from_fields(
                Fields(raw, f"{source}: structure", fix="a bug: report it", error=ResultsError)
            )
            for raw in structures
        )
        self.profiles.update(read_profiles(payload.get("profiles"), source))
        environment = read_environment(payload.get("environment"), source)
        if environment and environment not in self.environments:
            self.environments.append(environment)
        pending = payload.get("pending")
        if not isinstance(pending, dict):
            raise ResultsError(f"{source} sent a payload without its pending entries")
        for queued in pending.values():
            if not isinstance(queued, dict) or not isinstance(queued.get("entries"), dict):
                raise ResultsError(f"{source} sent pending entries that are not an object")
            (profile,) = read_profiles({"": queued.get("profile")}, source).values()
            entries = {tid: parse_entry(source, tid, raw) for tid, raw in queued["entries"].items()}
            self._queue(profile, entries)

    def kept_not_run(self, store: BaselineStore) -> list[str]:
        """Test ids whose entries stay in a baseline file this update writes although they
        did not run: listed, so that a removed test's entry is never kept or lost unseen."""
        ran: dict[str, set[str]] = {}
        for result in self.timed:
            ran.setdefault(result.profile, set()).add(result.test_id)
        kept = []
        for key in self._queued:
            stored = store.files.get(key)
            if stored is not None:
                kept += [t for t in sorted(stored.entries) if t not in ran.get(key, set())]
        return kept

    def write_baselines(self) -> tuple[list[Path], list[str]]:
        """Write the queued entries (update mode); returns the files written and an error line
        per file that could not be. The results of a file not written say so: nothing that
        was not recorded is reported as recorded."""
        written, errors = [], []
        for key, (profile, entries) in self._queued.items():
            try:
                path = write_entries(self.baseline_dir, profile, entries)
            except BaselineError as error:
                errors.append(str(error))
                self.results = [
                    replace(r, recorded=False, record_error=str(error))
                    if isinstance(r, TimedResult) and r.profile == key and r.recorded
                    else r
                    for r in self.results
                ]
                continue
            written.append(self.display(path))
        self._queued.clear()
        if self.structures:
            recorded = {verdict.model: verdict.current for verdict in self.structures}
            try:
                written.append(self.display(StructureStore(self.baseline_dir).write(recorded)))
            except BaselineError as error:
                errors.append(str(error))
        return written, errors
