"""Graph state files: the flat state of :mod:`aura_snn.graph.state` in safetensors.

A file holds the tensors of :func:`aura_snn.graph.state.to_tensors` and, when saved
with ``weights``, every parameter and buffer of the graph under ``param.<name>``
(learned and plastic weights alike), plus a header naming the format, ``dt`` and the
region and projection names. It is written to a temporary file and renamed
(:func:`aura_snn._io.atomic_path`); reading never unpickles anything.
"""

from __future__ import annotations

import json
import math
import os
from typing import TYPE_CHECKING

from .._io import atomic_path
from ..errors import CorruptFileError, ParameterError
from .state import GraphState, from_tensors, to_tensors

if TYPE_CHECKING:
    from .graph import Graph

STATE_FORMAT = "aura-snn.graph-state"
STATE_VERSION = "1"


def save(graph: Graph, path: str | os.PathLike[str], *, weights: bool = True) -> None:
    """Write ``graph``'s state (and with ``weights`` its parameters and buffers)."""
    from safetensors.torch import save_file

    if graph.state is None:
        raise ParameterError("the graph has no state yet: run it or set graph.state")
    tensors = {k: v.cpu().contiguous() for k, v in to_tensors(graph, graph.state).items()}
    if weights:
        for k, v in graph.state_dict().items():
            tensors[f"param.{k}"] = v.detach().cpu().contiguous().clone()
    meta = {"format": STATE_FORMAT, "version": STATE_VERSION, "dt": repr(graph.dt),
            "regions": json.dumps(list(graph.regions)),
            "projections": json.dumps(list(graph.projections))}
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load(graph: Graph, path: str | os.PathLike[str], *, weights: bool = True) -> GraphState:
    """Read a file of :func:`save`: returns the state; loads the weights into ``graph``
    when stored and ``weights``."""
    from safetensors import safe_open

    if not os.path.exists(path):
        raise FileNotFoundError(f"no state file at {os.fspath(path)!r}")
    try:
        with safe_open(os.fspath(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types
        raise CorruptFileError(f"{os.fspath(path)}: not a readable safetensors file "
                               f"({exc})") from None
    if meta.get("format") != STATE_FORMAT:
        raise CorruptFileError(f"{os.fspath(path)}: not an aura-snn graph state (format "
                               f"{meta.get('format')!r})")
    if not math.isclose(float(meta.get("dt", "nan")), graph.dt, rel_tol=1e-12):
        raise ParameterError(f"state was saved with dt={meta.get('dt')} s, the graph has "
                             f"dt={graph.dt} s")
    params = {k[len("param."):]: v for k, v in tensors.items() if k.startswith("param.")}
    if weights and params:
        graph.load_state_dict(params, strict=True)
    return from_tensors(graph, tensors)


__all__ = ["STATE_FORMAT", "STATE_VERSION", "load", "save"]
