r"""``to_nir``: our models as NIR graphs.

A **stack** (an ``nn.Sequential`` run on time-major ``[T, B, ...]``, or one neuron
module) exports layer by layer, in order, ``Input -> layer... -> Output``:

=============================== =======================================================
layer                           NIR node
=============================== =======================================================
``nn.Linear``                   ``Affine`` (``Linear`` without bias); weight ``[out, in]``
``nn.Conv1d`` / ``nn.Conv2d``   ``Conv1d`` / ``Conv2d`` (applied to each step; zeros
                                padding only), bias zeros if absent
``nn.AvgPool2d``                ``AvgPool2d`` (``count_include_pad``, no ``ceil_mode``)
``nn.Flatten``                  ``Flatten`` with dims counted without ``T`` and ``B``: a
                                time-major stack flattens from ``start_dim >= 2``
``PerStep(layer)``              as ``layer``, whose dims count the merged ``T B`` batch
``nn.Dropout``, ``nn.Identity`` nothing (identity at inference)
neuron module                   ``LIF`` / ``CubaLIF`` / ``IF`` from its model spec's
                                compiled coefficients (:mod:`.conventions`), a one-step
                                ``Delay`` first for ``order="voltage_first"``
=============================== =======================================================

An :class:`aura_snn.graph.Graph` exports region by region (:mod:`.export_graph`).

What NIR cannot state raises ``ParameterError`` naming the layer (or region) and the
feature, unless the caller lists the feature in ``approximate`` (each use warns):

====================== ================================================================
feature                approximation
====================== ================================================================
``"reset"``            reset by subtraction or no reset: written as NIR's reset to
                       ``v_reset``; metadata ``aura_snn_reset`` keeps the mode, so
                       :func:`~hardware.nir.from_nir` restores it exactly (other
                       readers reset to ``v_reset``)
``"next_step_reset"``  snnTorch-style reset at the next step: as above, metadata
                       ``aura_snn_reset_at="next_step"``
``"refractory"``       the refractory period is dropped
``"adaptation"``       ALIF's adaptive threshold is dropped (a LIF with threshold
                       :math:`\vartheta_0`)
``"poisson"``          a Poisson region becomes an Input node (the caller feeds spikes)
``"init"``             a region's initial values (``init``) are dropped: NIR's neuron
                       nodes have no initial-state field, so the export starts at rest
====================== ================================================================
"""

from __future__ import annotations

import warnings
from collections.abc import Collection
from typing import Any

import numpy as np
import torch
from torch import nn

from aura_snn._checks import check_choice
from aura_snn.errors import ParameterError, ParameterTypeError, ShapeError
from aura_snn.functional.firing import RESETS
from aura_snn.neurons.base import SpikingNeuron

from . import conventions as C
from ._compat import import_nir
from .imports import out_shape
from .modules import Flatten, PerStep

APPROXIMATIONS = ("reset", "next_step_reset", "refractory", "adaptation", "poisson", "init")


def check_approximate(approximate: Collection[str]) -> frozenset[str]:
    """The set of allowed approximations (each one of :data:`APPROXIMATIONS`)."""
    if isinstance(approximate, str):
        approximate = (approximate,)
    for a in approximate:
        check_choice("approximate", a, APPROXIMATIONS)
    return frozenset(approximate)


def allow(feature: str, what: str, detail: str, allowed: frozenset[str]) -> None:
    """Raise naming ``what`` and the feature unless ``feature`` is allowed (then warn)."""
    if feature not in allowed:
        raise ParameterError(f"{what}: {detail}, which NIR cannot express; pass "
                             f"approximate={{{feature!r}}} to export it approximately "
                             f"(see hardware.nir.export)")
    warnings.warn(f"{what}: {detail}: exported approximately ({feature!r})", stacklevel=4)


def neuron_nodes(what: str, spec: Any, params: Any, dt: float, shape: tuple[int, ...],
                 integration: str, allowed: frozenset[str]) -> tuple[Any, Any | None]:
    """``(neuron node, one-step Delay node or None)`` of a population of model ``spec``
    with parameters ``params``; ``what`` names it in errors."""
    nir = import_nir()
    if spec is None or spec.compile is None:
        raise ParameterError(f"{what}: model {getattr(spec, 'name', '?')!r} has no compiled "
                             f"coefficients to export")
    fam = spec.compile(params, dt)
    meta: dict[str, Any] = {}
    if fam.n_ref:
        allow("refractory", what, f"a refractory period of {fam.n_ref} steps", allowed)
        fam = fam._replace(n_ref=0)
    if np.any(C.as_array(fam.a_adapt, shape) != 0) or np.any(C.as_array(fam.beta, shape) != 0):
        allow("adaptation", what, "an adaptive threshold (ALIF)", allowed)
    reset = RESETS[fam.reset]
    if reset != "zero":
        allow("reset", what, f"reset={reset!r}", allowed)
        meta["aura_snn_reset"] = reset
    if fam.next_step:
        allow("next_step_reset", what, "reset_at='next_step'", allowed)
        meta["aura_snn_reset_at"] = "next_step"
    try:
        kind, fields, late = C.family_to_nir(fam, dt, integration, shape)
    except ValueError as exc:
        raise ParameterError(f"{what}: {exc}") from None
    node = getattr(nir, kind)(**fields, metadata=meta)
    delay = nir.Delay(delay=np.full(shape, dt)) if late else None
    return node, delay


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _layer_node(name: str, layer: nn.Module, shape: tuple[int, ...], batch_dims: int,
                dt: float, integration: str, allowed: frozenset[str]) -> list[Any]:
    """NIR node(s) of one layer; ``batch_dims`` leading dims its own dims count."""
    nir = import_nir()
    what = f"layer {name!r} ({type(layer).__name__})"
    if isinstance(layer, PerStep):
        return _layer_node(name, layer.layer, shape, 1, dt, integration, allowed)
    if isinstance(layer, SpikingNeuron):
        node, delay = neuron_nodes(what, layer.spec, layer.neuron_parameters(), layer.dt,
                                   shape, integration, allowed)
        return [delay, node] if delay is not None else [node]
    if isinstance(layer, nn.Linear):
        w = _np(layer.weight)
        if layer.bias is None:
            return [nir.Linear(weight=w)]
        return [nir.Affine(weight=w, bias=_np(layer.bias))]
    if isinstance(layer, (nn.Conv1d, nn.Conv2d)):
        if layer.padding_mode != "zeros":
            raise ParameterError(f"{what}: padding_mode={layer.padding_mode!r}; NIR "
                                 f"convolutions pad with zeros")
        bias = _np(layer.bias) if layer.bias is not None else \
            np.zeros(layer.out_channels, dtype=_np(layer.weight).dtype)
        pad = layer.padding if isinstance(layer.padding, str) else np.array(layer.padding)
        kw = dict(weight=_np(layer.weight), stride=np.array(layer.stride), padding=pad,
                  dilation=np.array(layer.dilation), groups=layer.groups, bias=bias)
        if isinstance(layer, nn.Conv1d):
            return [nir.Conv1d(input_shape=int(shape[-1]), **kw)]
        return [nir.Conv2d(input_shape=tuple(int(s) for s in shape[1:]), **kw)]
    if isinstance(layer, nn.AvgPool2d):
        if layer.ceil_mode or not layer.count_include_pad or layer.divisor_override:
            raise ParameterError(f"{what}: ceil_mode, count_include_pad=False and "
                                 f"divisor_override have no NIR equivalent")
        k = np.broadcast_to(np.array(layer.kernel_size), (2,)).copy()
        s = k if layer.stride is None else np.broadcast_to(np.array(layer.stride), (2,)).copy()
        return [nir.AvgPool2d(kernel_size=k, stride=s,
                              padding=np.broadcast_to(np.array(layer.padding), (2,)).copy())]
    if isinstance(layer, (nn.Flatten, Flatten)):
        off = 0 if isinstance(layer, Flatten) else batch_dims
        start, end = layer.start_dim, layer.end_dim
        if 0 <= start < off or 0 <= end < off:
            raise ParameterError(f"{what}: start_dim={start} merges the time/batch "
                                 f"dimension(s) of [T, B, ...]; use start_dim >= {off}")
        start = start - off if start >= 0 else start
        end = end - off if end >= 0 else end
        return [nir.Flatten(input_type={"input": np.array(shape)}, start_dim=start,
                            end_dim=end)]
    if isinstance(layer, (nn.Dropout, nn.Identity)):
        return []
    raise ParameterTypeError(f"{what} cannot be exported to NIR (supported: Linear, "
                             f"Conv1d, Conv2d, AvgPool2d, Flatten, Dropout, Identity, "
                             f"PerStep and the aura_snn.neurons modules)")


def _first_shape(layers: list[tuple[str, nn.Module]]) -> tuple[int, ...]:
    for _, m in layers:
        m = m.layer if isinstance(m, PerStep) else m
        if isinstance(m, nn.Linear):
            return (m.in_features,)
        if isinstance(m, (nn.Dropout, nn.Identity)):
            continue
        break
    raise ParameterError("input_shape (the per-sample input shape, without T and B) is "
                         "required: the first layer does not state it")


def stack_to_nir(model: nn.Module, *, dt: float | None, input_shape: Any,
                 integration: str, approximate: Collection[str]) -> Any:
    """NIR graph of a stack of layers (module docstring); see :func:`to_nir`."""
    nir = import_nir()
    check_choice("integration", integration, C.INTEGRATIONS)
    allowed = check_approximate(approximate)
    if isinstance(model, nn.Sequential):
        layers = list(model.named_children())
    elif isinstance(model, SpikingNeuron):
        layers = [("neuron", model)]
    else:
        raise ParameterTypeError(f"source must be an nn.Sequential, a neuron module or an "
                                 f"aura_snn.graph.Graph, got {type(model).__name__}")
    neurons = [m for _, m in layers if isinstance(m, SpikingNeuron)]
    if not neurons:
        raise ParameterError("the model has no spiking layer (no aura_snn.neurons module)")
    dts = {m.dt for m in neurons}
    if len(dts) > 1 or (dt is not None and dts != {float(dt)}):
        raise ParameterError(f"dt must agree with every neuron module's dt; modules have "
                             f"{sorted(dts)}, dt={dt}")
    dt = dts.pop()
    shape = tuple(int(s) for s in input_shape) if input_shape is not None \
        else _first_shape(layers)
    taken = {n for n, _ in layers}
    names = {k: next(c for c in (k, f"{k}_", f"{k}__") if c not in taken)
             for k in ("input", "output")}
    nodes: dict[str, Any] = {names["input"]: nir.Input(input_type=np.array(shape))}
    prev = names["input"]
    edges: list[tuple[str, str]] = []
    for name, layer in layers:
        parts = _layer_node(name, layer, shape, 2, dt, integration, allowed)
        for k, node in enumerate(parts):
            key = name if k == len(parts) - 1 else f"{name}_delay"
            try:
                shape = out_shape(key, node, shape)
            except ShapeError as exc:
                raise ShapeError(f"layer {name!r} ({type(layer).__name__}): {exc}") from None
            nodes[key] = node
            edges.append((prev, key))
            prev = key
    nodes[names["output"]] = nir.Output(output_type=np.array(shape))
    edges.append((prev, names["output"]))
    meta = {"dt": float(dt), "integration": integration, "source": "aura-snn"}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=False)


def to_nir(source: Any, *, dt: float | None = None, input_shape: Any = None,
           integration: str = "euler", approximate: Collection[str] = (),
           outputs: Collection[str] | None = None) -> Any:
    """Export ``source`` as a ``nir.NIRGraph`` (tables in the module docstring).

    Args:
        source: an ``nn.Sequential`` of layers and neuron modules (or one neuron
            module), or an :class:`aura_snn.graph.Graph`.
        dt: step (s); must equal the modules' (or graph's) ``dt`` when given.
        input_shape: per-sample input shape (without ``T``, ``B``) of a stack whose
            first layer does not state it (a convolution).
        integration: ``"euler"`` (default) or ``"exact"``: the discretisation a reader
            is assumed to use; parameters are written so that it reproduces our
            per-step update (:mod:`hardware.nir.conventions`). Stored in the metadata.
        approximate: features NIR cannot express that may be exported approximately.
        outputs: graph regions to expose as Output nodes (:mod:`.export_graph`).
    """
    from aura_snn.graph import Graph

    if isinstance(source, Graph):
        from .export_graph import graph_to_nir

        return graph_to_nir(source, dt=dt, integration=integration, approximate=approximate,
                            outputs=outputs)
    if outputs is not None:
        raise ParameterError("outputs= applies to graphs; a stack has one output")
    return stack_to_nir(source, dt=dt, input_shape=input_shape, integration=integration,
                        approximate=approximate)


__all__ = ["APPROXIMATIONS", "allow", "check_approximate", "neuron_nodes", "stack_to_nir",
           "to_nir"]
