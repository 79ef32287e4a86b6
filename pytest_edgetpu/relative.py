"""Relative mode (``--edgetpu-against=REV``): each benchmark's counterpart at a git revision.

A model benchmark's counterpart is the model file as it is at the revision (``git show
REV:path``), loaded in this process on this device beside the current one: one delegate serves
both sides, so an Edge TPU is never open in two processes. A callable's counterpart is the
test's own code at the revision, run by a helper pytest process in a checkout of it
(:mod:`pytest_edgetpu.remote`). Either side may be missing: a benchmark new since the revision,
a model outside the repository, code that cannot run at the revision. Those are measured alone
and say why they were not compared.
"""

from __future__ import annotations

from pathlib import Path

from .bench import Base, DeviceSession
from .compare import Against
from .errors import EdgeTpuError
from .gitrev import Revision, RevisionFiles
from .limits import MAX_MODEL_BYTES
from .models import ModelInfo

__all__ = ["Relative"]


class Relative:
    """The revision a run gates against, and the files of it this process wrote out."""

    def __init__(self, revision: Revision) -> None:
        self.revision = revision
        self.files = RevisionFiles(revision, MAX_MODEL_BYTES)

    @classmethod
    def resolve(cls, name: str, rootdir: Path, source: str) -> Relative:
        return cls(Revision.resolve(name, rootdir, source))

    @property
    def words(self) -> str:
        return self.revision.words

    def model(self, session: DeviceSession, info: ModelInfo) -> Base | Against:
        """The base side of ``info``'s model, or why it has none."""
        relative = self.revision.relative(info.path)
        if relative is None:
            return Against(
                self.words,
                str(info.path),
                missing=(
                    f"{info.path} lies outside the git repository {self.revision.toplevel}, so "
                    f"{self.revision.name} has no version of it; not compared"
                ),
            )
        where = f"{self.revision.name}:{relative}"
        try:
            path = self.files.file(info.path)
            if path is None:
                return Against(self.words, where, missing=f"new since {self.words}: no {where}")
            base = session.inspect(path)
        except EdgeTpuError as error:
            return Against(
                self.words, where, missing=f"{where} cannot be measured ({error}); not compared"
            )
        return session.model_base(base, self.words, where)

    def close(self) -> None:
        self.files.close()
