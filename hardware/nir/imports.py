r"""``from_nir``: a NIR graph (object or HDF5 file) as a module running our kernels.

Each node becomes a :mod:`hardware.nir.modules` module with the per-step equations
of :mod:`hardware.nir.conventions` (``dt`` in s, ``integration`` ``"euler"`` or
``"exact"``). Shapes are inferred from the Input nodes along the edges and checked:
a node whose inputs disagree, or whose parameters do not fit its input, is reported
with its name and both shapes. What our neuron modules cannot hold is refused by
name: per-neuron ``v_leak`` or ``v_reset`` (they take one value), thresholds <= 0,
time constants not above ``dt``, delays that are not whole steps. Reset and reset
timing that NIR cannot state (``subtract``, ``none``, ``next_step``) are read from the
node metadata keys ``aura_snn_reset`` / ``aura_snn_reset_at`` that :func:`to_nir`
writes when asked to (other readers ignore them).
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import torch
from torch import nn

from aura_snn._checks import check_choice
from aura_snn.errors import ParameterError, ShapeError
from aura_snn.neurons import LIF, CubaLIF

from . import conventions as C
from . import modules as M
from ._compat import import_nir
from .executor import NIRModule, _order
from .reading import flatten, read_file

_NEURONS = ("LIF", "LI", "CubaLIF", "CubaLI", "IF", "I")


def _pair(v: Any) -> tuple[int, ...]:
    a = np.atleast_1d(np.asarray(v)).astype(int)
    return (int(a[0]), int(a[0])) if a.size == 1 else tuple(int(x) for x in a[:2])


def _pool_out(n: int, k: int, s: int, p: int, d: int = 1) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _conv_geometry(node: Any, dims: int) -> tuple[tuple[int, ...], ...]:
    k = tuple(node.weight.shape[2:])
    def tup(v: Any) -> tuple[int, ...]:
        a = np.atleast_1d(np.asarray(v)).astype(int)
        return tuple(int(a[0]) for _ in range(dims)) if a.size == 1 else tuple(map(int, a))
    if isinstance(node.padding, str):
        pad = tuple((d - 1) * kk // 2 for kk, d in zip(k, tup(node.dilation), strict=True)) \
            if node.padding == "same" else (0,) * dims
    else:
        pad = tup(node.padding)
    return k, tup(node.stride), pad, tup(node.dilation)


def out_shape(name: str, node: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Per-sample output shape of ``node`` for input ``shape``; raises ``ShapeError``
    naming the node when its parameters do not fit."""
    kind = type(node).__name__

    def need(want: tuple[int, ...], what: str) -> None:
        if tuple(want) != tuple(shape):
            raise ShapeError(f"node {name!r} ({kind}): {what} needs input of shape "
                             f"{list(want)}, but its input has shape {list(shape)}")

    if kind in ("Affine", "Linear"):
        w = np.asarray(node.weight)
        if w.ndim != 2:
            raise ShapeError(f"node {name!r} ({kind}): weight must be 2-D [out, in], got "
                             f"shape {list(w.shape)}")
        need((w.shape[1],), f"weight {list(w.shape)}")
        if kind == "Affine" and np.asarray(node.bias).shape not in ((), (w.shape[0],)):
            raise ShapeError(f"node {name!r} (Affine): bias shape {list(np.shape(node.bias))} "
                             f"does not match {w.shape[0]} outputs")
        return (w.shape[0],)
    if kind in ("Conv1d", "Conv2d"):
        dims = 1 if kind == "Conv1d" else 2
        w = np.asarray(node.weight)
        if w.ndim != dims + 2 or len(shape) != dims + 1:
            raise ShapeError(f"node {name!r} ({kind}): weight {list(w.shape)} and input "
                             f"{list(shape)} must be {dims + 2}-D and {dims + 1}-D")
        need((w.shape[1] * int(node.groups), *shape[1:]), f"weight {list(w.shape)}")
        k, s, p, d = _conv_geometry(node, dims)
        return (w.shape[0], *(_pool_out(n, kk, ss, pp, dd)
                              for n, kk, ss, pp, dd in zip(shape[1:], k, s, p, d, strict=True)))
    if kind in ("SumPool2d", "AvgPool2d"):
        if len(shape) != 3:
            raise ShapeError(f"node {name!r} ({kind}): needs [C, H, W] input, got "
                             f"{list(shape)}")
        k, s, p = _pair(node.kernel_size), _pair(node.stride), _pair(node.padding)
        return (shape[0], *(_pool_out(n, kk, ss, pp)
                            for n, kk, ss, pp in zip(shape[1:], k, s, p, strict=True)))
    if kind == "Flatten":
        return tuple(M.Flatten(node.start_dim, node.end_dim).run(
            torch.empty((1, 1, *shape)))[0].shape[2:])
    if kind == "Output":
        declared = node.output_type.get("output") if node.output_type else None
        if declared is not None and tuple(int(v) for v in np.atleast_1d(declared)) != shape:
            need(tuple(int(v) for v in np.atleast_1d(declared)), "its declared shape")
        return tuple(shape)
    if kind in ("Input", "NIRGraph"):
        return tuple(shape)
    field = {"Scale": "scale", "Delay": "delay", "Threshold": "threshold", "I": "r",
             "IF": "v_threshold", "LI": "v_leak", "LIF": "v_threshold", "CubaLI": "v_leak",
             "CubaLIF": "v_threshold"}[kind]
    for k in ("tau", "tau_mem", "tau_syn", "r", "v_leak", "v_threshold", "v_reset", "w_in",
              field):
        v = getattr(node, k, None)
        if v is not None and np.shape(v) not in ((), tuple(shape)):
            need(np.shape(v), f"parameter {k!r} of shape {list(np.shape(v))}")
    return tuple(shape)


def _t(v: Any, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.from_numpy(C.as_array(v, shape))


def _uniform(name: str, kind: str, field: str, v: Any) -> float:
    arr = np.asarray(v, dtype=np.float64)
    if arr.size and not np.all(arr == arr.flat[0]):
        raise ParameterError(f"node {name!r} ({kind}): per-neuron {field} is not supported "
                             f"(our neuron modules take one value); got {arr.min()}..{arr.max()}")
    return float(arr.flat[0]) if arr.size else 0.0


def _gain(g: np.ndarray) -> torch.Tensor | None:
    return None if np.all(g == 1.0) else torch.from_numpy(g)


def _neuron(name: str, node: Any, shape: tuple[int, ...], dt: float,
            integration: str) -> M.Node:
    kind = type(node).__name__
    meta = getattr(node, "metadata", None) or {}
    reset = str(meta.get("aura_snn_reset", "zero"))
    reset_at = str(meta.get("aura_snn_reset_at", "spike"))
    fires = kind in ("LIF", "CubaLIF", "IF")
    r = C.as_array(node.r, shape)
    common: dict[str, Any] = dict(dt=dt)
    if fires:
        common.update(threshold=_t(node.v_threshold, shape), reset=reset,
                      v_reset=_uniform(name, kind, "v_reset", node.v_reset))
    else:
        common.update(threshold=M.NEVER, reset="none")
    if kind in ("I", "IF"):
        g = C.integrator_gain(r, dt)
        if kind == "I":
            return M.Integrator(torch.from_numpy(g))
        return M.Neuron(M.IFNeuron(**common), _gain(g))
    common.update(v_leak=_uniform(name, kind, "v_leak", node.v_leak), integration=integration,
                  input_scaling="ode", reset_at=reset_at if fires else "spike")
    if kind in ("LIF", "LI"):
        neuron = LIF(_t(node.tau, shape), **common)
        g = C.lif_gain(r)
    else:
        tau_syn = C.as_array(node.tau_syn, shape)
        neuron = CubaLIF(_t(node.tau_mem, shape), torch.from_numpy(tau_syn),
                         order="current_first", **common)
        g = C.cuba_gain(r, C.as_array(node.w_in, shape), tau_syn, dt, integration)
    return M.Neuron(neuron, _gain(g), "spikes" if fires else "v")


def build_node(name: str, node: Any, shape: tuple[int, ...], dt: float, integration: str,
               dtype: torch.dtype) -> M.Node:
    """The module of one (non-graph) NIR node whose input has per-sample ``shape``."""
    kind = type(node).__name__

    def tensor(v: Any) -> torch.Tensor:
        return torch.as_tensor(np.asarray(v, dtype=np.float64), dtype=dtype)

    if kind in ("Input", "Output"):
        return M.Scale(torch.ones((), dtype=torch.float64))
    if kind in ("Affine", "Linear"):
        w = tensor(node.weight)
        lin = nn.Linear(w.shape[1], w.shape[0], bias=kind == "Affine", dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(w)
            if kind == "Affine":
                lin.bias.copy_(tensor(node.bias).expand(w.shape[0]))
        return M.PerStep(lin)
    if kind in ("Conv1d", "Conv2d"):
        dims = 1 if kind == "Conv1d" else 2
        w = tensor(node.weight)
        k, s, p, d = _conv_geometry(node, dims)
        cls = nn.Conv1d if dims == 1 else nn.Conv2d
        conv = cls(w.shape[1] * int(node.groups), w.shape[0], k, stride=s, padding=p,
                   dilation=d, groups=int(node.groups), bias=True, dtype=dtype)
        with torch.no_grad():
            conv.weight.copy_(w)
            conv.bias.copy_(tensor(node.bias).expand(w.shape[0]))
        return M.PerStep(conv)
    if kind in ("SumPool2d", "AvgPool2d"):
        k, s, p = _pair(node.kernel_size), _pair(node.stride), _pair(node.padding)
        pool = nn.AvgPool2d(k, s, p, divisor_override=1 if kind == "SumPool2d" else None)
        return M.PerStep(pool)
    if kind == "Flatten":
        return M.Flatten(node.start_dim, node.end_dim)
    if kind == "Scale":
        return M.Scale(_t(node.scale, shape))
    if kind == "Threshold":
        return M.Threshold(_t(node.threshold, shape))
    if kind == "Delay":
        steps = C.as_array(node.delay, shape) / dt
        whole = np.round(steps)
        if np.any(np.abs(steps - whole) > 1e-6 * np.maximum(1.0, whole)):
            raise ParameterError(f"node {name!r} (Delay): delay {np.asarray(node.delay)} s is "
                                 f"not a whole number of steps of dt={dt} s")
        return M.Delay(torch.from_numpy(whole.astype(np.int64)))
    try:
        return _neuron(name, node, shape, dt, integration)
    except ParameterError as exc:
        if str(exc).startswith(f"node {name!r}"):
            raise
        raise ParameterError(f"node {name!r} ({kind}): {exc}") from None


def from_nir(graph_or_path: Any, *, dt: float | None = None, integration: str = "euler",
             dtype: torch.dtype | None = None) -> NIRModule:
    """A NIR graph as a :class:`~hardware.nir.executor.NIRModule` (``[T, B, ...]`` in,
    output spikes ``[T, B, ...]`` out).

    Args:
        graph_or_path: a ``nir.NIRGraph``, one ``nir`` node, or the path of a NIR file.
        dt: step (s); ``None`` takes the graph metadata's ``dt`` (written by
            :func:`~hardware.nir.to_nir`), else raises.
        integration: ``"euler"`` (default; snnTorch's and Norse's convention) or
            ``"exact"``: how each time constant becomes a per-step decay
            (:mod:`hardware.nir.conventions`).
        dtype: dtype of weights (default: torch's default dtype).
    """
    nir = import_nir()
    check_choice("integration", integration, C.INTEGRATIONS)
    where = ""
    if isinstance(graph_or_path, (str, os.PathLike)):
        where = f"{os.fspath(graph_or_path)}: "
        graph = read_file(graph_or_path)
    elif isinstance(graph_or_path, nir.NIRGraph):
        graph = graph_or_path
    elif isinstance(graph_or_path, nir.NIRNode):
        graph = nir.NIRGraph.from_list(graph_or_path, type_check=False)
    else:
        raise ParameterError(f"graph_or_path must be a nir.NIRGraph, a nir node or a file "
                             f"path, got {type(graph_or_path).__name__}")
    meta = dict(graph.metadata or {})
    if dt is None:
        if "dt" not in meta:
            raise ParameterError("dt (s) is required: the graph's metadata has no 'dt'")
        dt = float(np.asarray(meta["dt"]))
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise ParameterError(f"dt must be finite and > 0 s, got {dt!r}")
    nodes, edges, ins, outs = flatten(graph, where=where)
    if not ins or not outs:
        raise ParameterError(f"{where}the graph needs Input and Output nodes, has "
                             f"{len(ins)} and {len(outs)}")
    order, back = _order(list(nodes), edges, ins)
    shapes: dict[str, tuple[int, ...]] = {}
    in_shapes: dict[str, tuple[int, ...]] = {}
    for n in order:
        node = nodes[n]
        if n in ins:
            declared = node.input_type.get("input") if node.input_type else None
            if declared is None:
                raise ShapeError(f"{where}Input node {n!r} has no shape")
            shape = tuple(int(v) for v in np.atleast_1d(declared))
        else:
            srcs = [(s, shapes[s]) for s, d in edges if d == n and (s, d) not in back]
            if not srcs:
                raise ParameterError(f"{where}node {n!r} is not reachable from an Input node")
            shape = srcs[0][1]
            for s, sh in srcs[1:]:
                if sh != shape:
                    raise ShapeError(f"{where}node {n!r}: inputs do not agree: {srcs[0][0]!r} "
                                     f"gives {list(shape)}, {s!r} gives {list(sh)}")
        in_shapes[n] = shape
        try:
            shapes[n] = out_shape(n, node, shape)
        except ShapeError as exc:
            raise ShapeError(f"{where}{exc}") from None
    for s, d in back:
        if shapes[s] != in_shapes[d]:
            raise ShapeError(f"{where}recurrent edge ({s!r}, {d!r}): {s!r} gives "
                             f"{list(shapes[s])}, {d!r} takes {list(in_shapes[d])}")
    dtype = dtype or torch.get_default_dtype()
    built = {n: build_node(n, nodes[n], in_shapes[n], dt, integration, dtype) for n in nodes}
    meta.update(dt=dt, integration=integration)
    return NIRModule(built, edges, shapes, in_shapes, ins, outs, meta)


__all__ = ["build_node", "from_nir", "out_shape"]
