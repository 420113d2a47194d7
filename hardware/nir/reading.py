"""Reading and checking NIR graphs: files, nested graphs, parameters.

Files are read with h5py into the dictionary form of ``nir.serialization`` and built
node by node here, so that every problem is reported with the node's name: an unknown
node type, a missing parameter, NaN or infinite values, a bad edge, a nested graph
without exactly one Input and one Output. A file that is not HDF5, is truncated or
holds no NIR graph raises :class:`~aura_snn.errors.CorruptFileError` naming the path.
Nested graphs are flattened into one graph whose node names are ``"sub.node"``; an
edge to or from a nested graph goes to its Input or from its Output node.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from aura_snn.errors import CorruptFileError, ParameterError

from ._compat import import_nir

#: Parameters each node type must have (file keys; ``Input``/``Output`` store ``shape``).
REQUIRED: dict[str, tuple[str, ...]] = {
    "Input": ("shape",), "Output": ("shape",), "Affine": ("weight", "bias"),
    "Linear": ("weight",), "Scale": ("scale",),
    "Conv1d": ("weight", "stride", "padding", "dilation", "groups", "bias"),
    "Conv2d": ("weight", "stride", "padding", "dilation", "groups", "bias"),
    "Delay": ("delay",), "Flatten": ("start_dim", "end_dim"), "I": ("r",),
    "IF": ("r", "v_threshold"), "LI": ("tau", "r", "v_leak"),
    "LIF": ("tau", "r", "v_leak", "v_threshold"),
    "CubaLI": ("tau_syn", "tau_mem", "r", "v_leak"),
    "CubaLIF": ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold"),
    "SumPool2d": ("kernel_size", "stride", "padding"),
    "AvgPool2d": ("kernel_size", "stride", "padding"), "Threshold": ("threshold",),
    "NIRGraph": ("nodes", "edges"),
}
NODE_TYPES = tuple(REQUIRED)
_OPTIONAL_NUMERIC = ("v_reset", "w_in")
_NOT_NUMERIC = {"shape", "nodes", "edges", "padding"}
_POSITIVE = ("tau", "tau_mem", "tau_syn")


def _label(where: str, name: str, kind: str) -> str:
    return f"{where}node {name!r} ({kind})"


def node_from_dict(data: Any, name: str, where: str = "") -> Any:
    """Build one NIR node (recursively for graphs) from its file dictionary."""
    nir = import_nir()
    if not isinstance(data, dict) or "type" not in data:
        raise CorruptFileError(f"{where}node {name!r} has no 'type' entry")
    kind = data["type"]
    if kind not in REQUIRED:
        raise CorruptFileError(f"{where}node {name!r}: unknown NIR node type {kind!r} "
                               f"(known: {', '.join(NODE_TYPES)})")
    missing = [k for k in REQUIRED[kind] if k not in data]
    if missing:
        raise CorruptFileError(f"{_label(where, name, kind)}: missing parameter(s) "
                               f"{', '.join(map(repr, missing))}")
    if kind == "NIRGraph":
        nodes = data["nodes"]
        if not isinstance(nodes, dict):
            raise CorruptFileError(f"{_label(where, name, kind)}: 'nodes' is not a group")
        children = {str(k): node_from_dict(v, f"{name}.{k}" if name else str(k), where)
                    for k, v in nodes.items()}
        try:
            edges = [(_text(a), _text(b)) for a, b in np.asarray(data["edges"]).reshape(-1, 2)]
        except (ValueError, TypeError) as exc:
            raise CorruptFileError(f"{_label(where, name, kind)}: unreadable edges "
                                   f"({exc})") from None
        meta = data.get("metadata", {})
        return nir.NIRGraph(nodes=children, edges=edges,
                            metadata=meta if isinstance(meta, dict) else {}, type_check=False)
    try:
        return nir.dict2NIRNode(dict(data))
    except (TypeError, ValueError, AssertionError, KeyError, IndexError) as exc:
        raise CorruptFileError(f"{_label(where, name, kind)}: {exc}") from None


def _text(v: Any) -> str:
    return v.decode("utf8") if isinstance(v, bytes) else str(v)


def read_file(path: str | os.PathLike[str]) -> Any:
    """Read a NIR HDF5 file into a ``nir.NIRGraph``, node by node (module docstring)."""
    import_nir()
    import h5py
    from nir.serialization import hdf2dict

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such NIR file")
    try:
        with h5py.File(p, "r") as f:
            if "node" not in f:
                raise CorruptFileError(f"{p}: an HDF5 file without a NIR graph (no 'node' "
                                       f"group)")
            data = hdf2dict(f["node"])
    except OSError as exc:
        raise CorruptFileError(f"{p}: not a readable NIR file (not HDF5, or truncated): "
                               f"{exc}") from None
    graph = node_from_dict(data, "", f"{p}: ")
    if type(graph).__name__ != "NIRGraph":
        nir = import_nir()
        graph = nir.NIRGraph.from_list(graph, type_check=False)
    return graph


def check_node(name: str, node: Any, where: str = "") -> None:
    """Known type, required parameters present, numbers finite, time constants > 0."""
    kind = type(node).__name__
    if kind not in REQUIRED:
        raise ParameterError(f"{where}node {name!r}: unknown NIR node type {kind!r} "
                             f"(known: {', '.join(NODE_TYPES)})")
    fields = [k for k in REQUIRED[kind] if k not in _NOT_NUMERIC]
    for k in [*fields, *_OPTIONAL_NUMERIC]:
        if k not in fields and not hasattr(node, k):
            continue
        v = getattr(node, k, None)
        if v is None:
            raise ParameterError(f"{_label(where, name, kind)}: missing parameter {k!r}")
        try:
            arr = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            raise ParameterError(f"{_label(where, name, kind)}: parameter {k!r} is not "
                                 f"numeric ({type(v).__name__})") from None
        bad = ~np.isfinite(arr)
        if bad.any():
            raise ParameterError(f"{_label(where, name, kind)}: parameter {k!r} has "
                                 f"{int(bad.sum())} NaN or infinite value(s)")
        if k in _POSITIVE and bool((arr <= 0).any()):
            raise ParameterError(f"{_label(where, name, kind)}: {k} must be > 0 s, got "
                                 f"{float(arr.min())}")
        if k == "delay" and bool((arr < 0).any()):
            raise ParameterError(f"{_label(where, name, kind)}: delay must be >= 0 s")


def flatten(graph: Any, prefix: str = "", where: str = ""
            ) -> tuple[dict[str, Any], list[tuple[str, str]], list[str], list[str]]:
    """``(nodes, edges, inputs, outputs)`` of ``graph`` with nested graphs inlined."""
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    ins: list[str] = []
    outs: list[str] = []
    entry: dict[str, str] = {}
    leave: dict[str, str] = {}
    for name, node in graph.nodes.items():
        full = prefix + str(name)
        if type(node).__name__ == "NIRGraph":
            sub, sub_edges, sub_in, sub_out = flatten(node, full + ".", where)
            if len(sub_in) != 1 or len(sub_out) != 1:
                raise ParameterError(f"{where}nested graph {full!r} must have one Input and "
                                     f"one Output node, has {len(sub_in)} and {len(sub_out)}")
            nodes.update(sub)
            edges += sub_edges
            entry[str(name)], leave[str(name)] = sub_in[0], sub_out[0]
            continue
        check_node(full, node, where)
        nodes[full] = node
        if type(node).__name__ == "Input":
            ins.append(full)
        elif type(node).__name__ == "Output":
            outs.append(full)
    seen = set()
    for s, d in graph.edges:
        a, b = leave.get(s, prefix + s), entry.get(d, prefix + d)
        for end, flat in ((s, a), (d, b)):
            if flat not in nodes:
                raise ParameterError(f"{where}edge ({prefix + s!r}, {prefix + d!r}): no node "
                                     f"named {prefix + end!r}")
        if (a, b) in seen:
            raise ParameterError(f"{where}edge ({a!r}, {b!r}) appears twice")
        seen.add((a, b))
        edges.append((a, b))
    return nodes, edges, ins, outs


__all__ = ["NODE_TYPES", "REQUIRED", "check_node", "flatten", "node_from_dict", "read_file"]
