"""Graph state files: the flat state of :mod:`aura_snn.graph.state` in safetensors.

A file (``version`` 2) holds the tensors of :func:`aura_snn.graph.state.to_tensors` and,
when saved with ``weights``, every parameter and buffer of the graph under
``param.<name>`` (learned and plastic weights, synapse indices and delays alike). Its
header metadata holds

============== ===========================================================================
``format``     ``"aura-snn.graph-state"``; ``version``: ``"2"``
``dt``         the graph's step (s), ``repr`` of the float
``graph``      JSON of :func:`structure`: each region's kind, size, input size, receptors
               and neuron model; each projection's ends, receptor, storage, shape, number
               of synapses, delays, sign, rule slots and types, traces and synapse model
``checksums``  CRC-32 of every tensor; ``header_checksum``: CRC-32 of the rest of the
               header and of every tensor's name, dtype and shape (:mod:`aura_snn._io`)
============== ===========================================================================

It is written to a temporary file and renamed (:func:`aura_snn._io.atomic_path`);
reading never unpickles anything. :func:`load` is all or nothing: it reads the file,
verifies the header and every tensor against their checksums, compares the stored
structure with the graph, checks every parameter's name, shape and dtype, the synapse
indices (within ``[0, n_pre)`` x ``[0, n_post)``, in ``(pre, post)`` order) and delays
(equal to the graph's: ring lengths and delay groups are fixed when a projection is
built), builds the new state, and only then writes into the graph. A damaged file raises
:class:`~aura_snn.errors.CorruptFileError`; an intact file saved from another graph
raises :class:`~aura_snn.errors.StateMismatchError`; both name the file and the first
bad entry, and leave the graph as it was.

A projection's plastic part follows the file: a file with a plastic part gives one to a
projection that has none yet (:meth:`~aura_snn.graph.projection.Projection.make_plastic`),
a file without one clears the projection's (the saved graph had a zero plastic part).
"""

from __future__ import annotations

import json
import math
import os
from typing import TYPE_CHECKING, Any

import torch

from .._io import read_safetensors, verify_safetensors, write_safetensors
from ..errors import AuraError, CorruptFileError, ParameterError, StateMismatchError
from .state import GraphState, from_tensors, to_tensors

if TYPE_CHECKING:
    from .graph import Graph

STATE_FORMAT = "aura-snn.graph-state"
STATE_VERSION = "2"

_REGION_FIELDS = ("kind", "size", "input_size", "receptors", "model")
_PROJECTION_FIELDS = ("pre", "post", "receptor", "sparse", "n_pre", "n_post", "synapses",
                      "max_delay", "uniform_delay", "same_step", "sign", "learnable",
                      "rules", "traces", "synapse")


def structure(graph: Graph) -> dict[str, list[dict[str, Any]]]:
    """What a state file records of the graph it came from (module docstring)."""
    regions = [{"name": name, "kind": type(r).__name__, "size": int(r.size),
                "input_size": int(r.input_size), "receptors": list(r.receptors),
                "model": getattr(r, "model", None)} for name, r in graph.regions.items()]
    projections = [{
        "name": name, "pre": p.pre, "post": p.post, "receptor": p.receptor,
        "sparse": bool(p.sparse), "n_pre": int(p.n_pre), "n_post": int(p.n_post),
        "synapses": int(p.nnz), "max_delay": int(p.max_delay),
        "uniform_delay": bool(p.uniform_delay), "same_step": bool(p.same_step),
        "sign": p.sign, "learnable": bool(p.learnable),
        "rules": [f"{rule.slot}:{type(rule).__name__}" for rule in p.rules],
        "traces": p.trace_taus is not None,
        "synapse": None if p.synapse is None else type(p.synapse).__name__,
    } for name, p in graph.projections.items()]
    return {"regions": regions, "projections": projections}


def save(graph: Graph, path: str | os.PathLike[str], *, weights: bool = True) -> None:
    """Write ``graph``'s state (and with ``weights`` its parameters and buffers)."""
    if graph.state is None:
        raise ParameterError("the graph has no state yet: run it or set graph.state")
    tensors = {k: v.detach().cpu().contiguous() for k, v in
               to_tensors(graph, graph.state).items()}
    if weights:
        for k, v in graph.state_dict().items():
            tensors[f"param.{k}"] = v.detach().cpu().contiguous().clone()
    meta = {"format": STATE_FORMAT, "version": STATE_VERSION, "dt": repr(graph.dt),
            "graph": json.dumps(structure(graph), sort_keys=True)}
    write_safetensors(path, tensors, meta)


def load(graph: Graph, path: str | os.PathLike[str], *, weights: bool = True) -> GraphState:
    """Read a file of :func:`save`, all or nothing (module docstring): returns the new
    state; writes the stored weights into ``graph`` when stored and ``weights``."""
    name = os.fspath(path)
    if not os.path.exists(name):
        raise FileNotFoundError(f"no state file at {name!r}")
    meta, tensors = read_safetensors(name)
    if meta.get("format") != STATE_FORMAT:
        raise CorruptFileError(f"{name}: not an aura-snn graph state (format "
                               f"{meta.get('format')!r})")
    if meta.get("version") != STATE_VERSION:
        raise CorruptFileError(f"{name}: graph state version {meta.get('version')!r} is not "
                               f"supported (this version reads {STATE_VERSION}; version 1 "
                               f"files carry no checksums: save them again)")
    verify_safetensors(name, meta, tensors)
    try:
        saved = json.loads(meta["graph"])
        dt = float(meta["dt"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptFileError(f"{name}: header entry {exc} is missing or unreadable") from None
    _compare(name, saved, structure(graph))
    if not math.isclose(dt, graph.dt, rel_tol=1e-12):
        raise StateMismatchError(f"{name}: state was saved with dt={meta['dt']} s, the graph "
                                 f"has dt={graph.dt} s")
    params = {k[len("param."):]: v for k, v in tensors.items() if k.startswith("param.")}
    state_t = {k: v for k, v in tensors.items() if not k.startswith("param.")}
    if weights and params:
        _check_params(name, graph, params)
    try:
        state = from_tensors(graph, state_t)
    except AuraError as exc:
        raise CorruptFileError(f"{name}: the state tensors disagree with the file's own "
                               f"header (t, batch, sizes): {exc}") from None
    extra = sorted(set(state_t) - set(to_tensors(graph, state)))
    if extra:
        raise CorruptFileError(f"{name}: tensor {extra[0]!r} belongs to no part of the "
                               f"graph the header describes")
    if weights and params:
        _swap_params(graph, params)
    return state


def _compare(name: str, saved: Any, have: dict[str, list[dict[str, Any]]]) -> None:
    """Raise :class:`StateMismatchError` at the first difference of two structures."""
    if not isinstance(saved, dict) or not all(
            isinstance(saved.get(k), list) and all(isinstance(e, dict) and "name" in e
                                                   for e in saved[k])
            for k in ("regions", "projections")):
        raise CorruptFileError(f"{name}: header entry 'graph' is not a graph structure")
    for kind, fields in (("region", _REGION_FIELDS), ("projection", _PROJECTION_FIELDS)):
        ours = {e["name"]: e for e in have[f"{kind}s"]}
        theirs = {e["name"]: e for e in saved[f"{kind}s"]}
        for n in theirs:
            if n not in ours:
                raise StateMismatchError(f"{name}: {kind} {n!r} is in the file but not in "
                                         f"the graph")
        for n, e in ours.items():
            if n not in theirs:
                raise StateMismatchError(f"{name}: {kind} {n!r} is in the graph but not in "
                                         f"the file")
            for f in fields:
                if theirs[n].get(f) != e[f]:
                    raise StateMismatchError(f"{name}: {kind} {n!r}: {f} is "
                                             f"{theirs[n].get(f)!r} in the file, {e[f]!r} in "
                                             f"the graph")


def _plastic_key(graph: Graph, key: str) -> bool:
    parts = key.split(".")
    return (len(parts) == 3 and parts[0] == "projections" and parts[2] == "plastic_weight"
            and parts[1] in graph.projections)


def _check_params(name: str, graph: Graph, params: dict[str, torch.Tensor]) -> None:
    """Names, shapes and dtypes against the graph; synapse indices and delays."""
    have = graph.state_dict()
    for key in sorted(set(params) | set(have)):
        if _plastic_key(graph, key):
            p = graph.projections[key.split(".")[1]]
            want: tuple[tuple[int, ...], torch.dtype] | None = (
                tuple(p.weight.shape), p.weight.dtype)
        elif key in have:
            want = (tuple(have[key].shape), have[key].dtype)
        else:
            want = None
        if want is None:
            raise StateMismatchError(f"{name}: the file has weights 'param.{key}' that the "
                                     f"graph does not have")
        if key not in params:
            if _plastic_key(graph, key):
                continue  # no plastic part saved: it is cleared
            raise StateMismatchError(f"{name}: the file has no weights 'param.{key}'")
        x = params[key]
        if tuple(x.shape) != want[0]:
            raise StateMismatchError(f"{name}: 'param.{key}' has shape {tuple(x.shape)} in "
                                     f"the file, {want[0]} in the graph")
        if x.dtype != want[1] and not (x.is_floating_point() and want[1].is_floating_point):
            raise StateMismatchError(f"{name}: 'param.{key}' has dtype {x.dtype} in the file, "
                                     f"{want[1]} in the graph")
    for pname, p in graph.projections.items():
        prefix = f"projections.{pname}"
        d = params[f"{prefix}.delay"]
        if not torch.equal(d, have[f"{prefix}.delay"].cpu()):
            diff = (d != have[f"{prefix}.delay"].cpu()).reshape(-1).nonzero()
            k = int(diff[0]) if d.dim() else 0
            raise StateMismatchError(
                f"{name}: 'param.{prefix}.delay' differs from the graph's delays (entry {k}: "
                f"{int(d.reshape(-1)[k])} in the file, "
                f"{int(have[f'{prefix}.delay'].reshape(-1)[k])} in the graph); delays are "
                f"fixed when a projection is built")
        if p.sparse:
            pre, post = params[f"{prefix}.pre_idx"], params[f"{prefix}.post_idx"]
            for key, idx, n in (("pre_idx", pre, p.n_pre), ("post_idx", post, p.n_post)):
                bad = ((idx < 0) | (idx >= n)).nonzero()
                if bad.numel():
                    k = int(bad[0])
                    raise CorruptFileError(f"{name}: 'param.{prefix}.{key}[{k}]' = "
                                           f"{int(idx[k])} is outside [0, {n})")
            pair = pre * p.n_post + post
            down = (pair[1:] < pair[:-1]).nonzero()
            if down.numel():
                k = int(down[0]) + 1
                raise CorruptFileError(f"{name}: synapses of 'param.{prefix}' are not in "
                                       f"(pre, post) order at entry {k} "
                                       f"({int(pre[k])} -> {int(post[k])} after "
                                       f"{int(pre[k - 1])} -> {int(post[k - 1])})")


@torch.no_grad()
def _swap_params(graph: Graph, params: dict[str, torch.Tensor]) -> None:
    """Write checked parameters into the graph (no check can fail any more)."""
    for pname, p in graph.projections.items():
        if f"projections.{pname}.plastic_weight" in params:
            p.make_plastic()
    for key, t in graph.state_dict(keep_vars=True).items():
        if key in params:
            t.copy_(params[key])
        elif _plastic_key(graph, key):
            t.zero_()


__all__ = ["STATE_FORMAT", "STATE_VERSION", "load", "save", "structure"]
