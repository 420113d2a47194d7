r"""What a partitioned run puts in a snapshot (:mod:`.snapshot`) and how it comes back.

Each worker's part (:func:`worker_tensors`) is the flat state of its sub-graph at a
window boundary :math:`s`, taken *after* the messages of the window ending at
:math:`s` were injected: every input already emitted but not yet arrived sits in the
pending rings, so the parts together are the whole graph's state at step :math:`s`,
exactly the state one process has there (:func:`restore` merges them with
:func:`~aura_snn.graph.distributed.plan.merge_states`). Plastic projections add their
buffers (``param.<projection>.<buffer>``: learned and plastic weights).

``meta`` (:func:`run_meta`) holds the graph's fingerprint (:func:`fingerprint`: SHA-256
of its structure, ``dt``, dtype and region seeds), the partition that wrote the parts
(needed to read them; a resumed run may use another), and the caller's ``extra``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from ...errors import ShapeError, StateMismatchError
from ..state import from_tensors, to_tensors
from .partition import make_partition
from .plan import merge_states, plan_workers, subgraph
from .snapshot import Snapshot, latest_snapshot, part_name, read_part

if TYPE_CHECKING:
    from ..graph import Graph
    from ..state import GraphState


def fingerprint(graph: Graph) -> str:
    """SHA-256 of what a snapshot must agree with (module docstring)."""
    from ..state_file import structure

    doc = {"structure": structure(graph), "dt": repr(graph.dt), "dtype": str(graph.dtype),
           "seeds": {n: getattr(r, "seed", None) for n, r in graph.regions.items()}}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def worker_tensors(sub: Graph, st: GraphState) -> dict[str, torch.Tensor]:
    """One worker's part: its sub-graph's flat state and its plastic projections'
    buffers."""
    out = {k: v.detach().cpu().contiguous() for k, v in to_tensors(sub, st).items()}
    for p in sub.projections.values():
        if p.rules:
            for k, v in p.state_dict().items():
                out[f"param.{p.name}.{k}"] = v.detach().cpu().contiguous().clone()
    return out


def run_meta(graph: Graph, assignment: Mapping[str, int], extra: Mapping[str, Any]
             ) -> dict[str, Any]:
    """The manifest's ``meta`` (module docstring)."""
    return {"graph": fingerprint(graph), "assignment": dict(assignment), **dict(extra)}


def check_snapshot(graph: Graph, snap: Snapshot) -> None:
    """Raise :class:`~aura_snn.errors.StateMismatchError` naming the folder when
    ``snap`` was written for another graph."""
    if snap.meta.get("graph") != fingerprint(graph):
        raise StateMismatchError(f"resume: snapshot {snap.path} was written by another "
                                 f"network (its structure, dt, dtype or seeds differ)")


def find(graph: Graph, root: str | os.PathLike[str]) -> Snapshot:
    """The newest complete snapshot in ``root`` for ``graph`` (errors name ``root``)."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"resume: no checkpoint folder {os.fspath(root)!r}")
    snap = latest_snapshot(root)
    if snap is None:
        raise FileNotFoundError(f"resume: {os.fspath(root)!r} holds no complete snapshot")
    check_snapshot(graph, snap)
    return snap


@torch.no_grad()
def restore(graph: Graph, snap: Snapshot, batch: int | None = None) -> GraphState:
    """The whole graph's state at ``snap.step``; the plastic buffers (and ``batch``,
    when given) are checked, then written into ``graph``'s projections."""
    check_snapshot(graph, snap)
    part = make_partition(graph, snap.meta["assignment"])
    plans = plan_workers(graph, part)
    states, params = [], {}
    for wp in plans:
        tensors = read_part(snap, part_name(wp.index))
        flat = {k: v for k, v in tensors.items() if not k.startswith("param.")}
        states.append(from_tensors(subgraph(graph, wp), flat))
        for k, v in tensors.items():
            if k.startswith("param."):
                name, buf = k[len("param."):].split(".", 1)
                params.setdefault(name, {})[buf] = v
    if batch is not None and states[0].batch != batch:
        raise ShapeError(f"resume: snapshot {snap.path} has batch {states[0].batch}, the "
                         f"run has {batch}")
    for name in params:
        if name not in graph.projections:
            raise StateMismatchError(f"resume: snapshot {snap.path} has weights of "
                                     f"projection {name!r}, which the graph lacks")
    for name, buffers in params.items():
        p = graph.projections[name]
        if "plastic_weight" in buffers:
            p.make_plastic()
        p.load_state_dict({k: v.to(graph.dtype) if v.is_floating_point() else v
                           for k, v in buffers.items()})
    return merge_states(graph, states, plans)


__all__ = ["check_snapshot", "find", "fingerprint", "restore", "run_meta", "worker_tensors"]
