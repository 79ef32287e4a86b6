"""Which operators of a model a delegate took, and which it left to the CPU's kernels.

A delegate that takes part of a graph replaces each stretch it takes (a partition) with one
``DELEGATE`` node, whose inputs and outputs are that stretch's boundary tensors; the replaced
nodes stay in the node list, out of the execution plan. So an operator ran inside a partition
when its outputs lie between the partition's inputs and its outputs: walking back from each
``DELEGATE`` node's outputs to its inputs finds exactly the nodes it stands for. Every other
operator runs on the CPU's built-in kernels: those are the ones a requirement of full
delegation names.

This reads the interpreter's node list (``_get_ops_details``, the list LiteRT's and
tflite-runtime's Python interpreters both keep); an interpreter without it reports no
delegation rather than a wrong one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Delegation", "delegation_of", "edgetpu_delegation"]

#: The op name the runtime gives a node that stands for a delegated partition.
_DELEGATE_NODE = "DELEGATE"


@dataclass(frozen=True)
class Delegation:
    """How one model ran on a delegate: ``cpu_ops`` names each operator left on the CPU, in
    graph order; ``ops`` is the number of operators in the model."""

    delegate: str  # "XNNPACK", "libvx_delegate.so", "Edge TPU", "LiteRT GPU"
    ops: int
    cpu_ops: tuple[str, ...]
    #: False where the runtime says whether the model is fully accelerated but not which of its
    #: operators are not (LiteRT's CompiledModel): ``cpu_ops`` is then empty even when partial.
    itemized: bool = True
    fully: bool | None = None

    @property
    def fully_delegated(self) -> bool:
        return self.fully if self.fully is not None else not self.cpu_ops

    def words(self) -> str:
        """``fully delegated to XNNPACK (31 ops)`` or ``4 of 31 ops run on the CPU, not on
        XNNPACK: 2 QUANTIZE, 1 SOFTMAX, 1 UNIDIRECTIONAL_SEQUENCE_LSTM``."""
        if self.fully_delegated:
            return f"fully delegated to {self.delegate} ({self.ops} ops)"
        if not self.itemized:
            return f"not fully accelerated by {self.delegate} (LiteRT does not say which ops)"
        counts = Counter(self.cpu_ops)
        names = ", ".join(f"{n} {op}" for op, n in sorted(counts.items()))
        return (
            f"{len(self.cpu_ops)} of {self.ops} ops run on the CPU, not on {self.delegate}: {names}"
        )

    def as_json(self) -> dict[str, object]:
        return {
            "delegate": self.delegate,
            "fully_delegated": self.fully_delegated,
            "ops": self.ops,
            "cpu_ops": list(self.cpu_ops) if self.itemized else None,
        }


def delegation_of(interpreter: Any, delegate: str) -> Delegation | None:
    """What ``delegate`` took of the model in ``interpreter`` (allocated); None when the
    interpreter does not list its nodes."""
    nodes = getattr(interpreter, "_get_ops_details", None)
    if nodes is None:
        return None
    return _partitioned(nodes(), delegate)


def _partitioned(nodes: Sequence[Mapping[str, Any]], delegate: str) -> Delegation:
    originals = [node for node in nodes if node["op_name"] != _DELEGATE_NODE]
    producer = {int(t): node["index"] for node in originals for t in node["outputs"]}
    by_index = {node["index"]: node for node in originals}
    delegated: set[int] = set()
    for partition in (node for node in nodes if node["op_name"] == _DELEGATE_NODE):
        boundary = {int(t) for t in partition["inputs"]}
        pending = [int(t) for t in partition["outputs"]]
        while pending:
            tensor = pending.pop()
            index = producer.get(tensor)
            if tensor in boundary or index is None or index in delegated:
                continue
            delegated.add(index)
            pending.extend(int(t) for t in by_index[index]["inputs"] if int(t) >= 0)
    cpu_ops = tuple(node["op_name"] for node in originals if node["index"] not in delegated)
    return Delegation(delegate, len(originals), cpu_ops)


def edgetpu_delegation(operators: Sequence[str], custom_op: str) -> Delegation:
    """An Edge TPU model's split, which its compiler fixed: every ``custom_op`` node runs on
    the TPU, every other operator on the CPU between TPU calls."""
    return Delegation("Edge TPU", len(operators), tuple(op for op in operators if op != custom_op))
