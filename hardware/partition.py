"""Hybrid ANN-SNN partition of an ``nn.Sequential``: dense parts in PyTorch, spiking
parts in Lava (or in the fixed-point twin), joined through Lava's input and output
processes.

:func:`partition` splits the layers into maximal segments: a spiking segment is a run
of ``[Linear] -> LIF | CubaLIF`` stages (a ``Linear`` belongs to it when a neuron
follows it), everything else (``ReLU``, ``LayerNorm``, a readout ``Linear``, ...) is an
ANN segment. :func:`run_partitioned` runs ANN segments in PyTorch on every time step
(time folded into the batch: they are stateless) and each spiking segment with
:func:`hardware.lava.run` (``target="lava"``: its input enters the first ``LIF``
through a ``RingBuffer`` source, its spikes leave through a ``RingBuffer`` sink) or
with the twin (``target="twin"``: :func:`hardware.loihi.quantize` in ``fixed_pt``, the
float segment itself in ``floating_pt``). In ``floating_pt`` the result equals the
all-PyTorch run; in ``fixed_pt`` Lava's equals the twin's. Graphs:
:mod:`hardware.partition_graph`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from aura_snn._checks import check_choice
from aura_snn.errors import ParameterError, ParameterTypeError, ShapeError
from aura_snn.neurons import LIF, CubaLIF

TARGETS = ("lava", "twin")


@dataclass(frozen=True)
class Segment:
    """``kind`` ``"ann"`` or ``"snn"``, its layers as one ``nn.Sequential`` and their
    names in the source."""

    kind: str
    module: nn.Sequential
    names: tuple[str, ...]


def partition(source: nn.Module) -> list[Segment]:
    """Split ``source`` (an ``nn.Sequential``) into alternating ANN and SNN segments."""
    if not isinstance(source, nn.Sequential):
        raise ParameterTypeError(f"source must be an nn.Sequential, got {type(source).__name__}")
    items = list(source.named_children())
    kinds = []
    for i, (_, m) in enumerate(items):
        nxt = items[i + 1][1] if i + 1 < len(items) else None
        spiking = isinstance(m, (LIF, CubaLIF)) or (
            isinstance(m, nn.Linear) and isinstance(nxt, (LIF, CubaLIF)))
        kinds.append("snn" if spiking else "ann")
    segments: list[Segment] = []
    for (name, m), kind in zip(items, kinds, strict=True):
        if segments and segments[-1].kind == kind:
            last = segments[-1]
            last.module.add_module(name, m)
            segments[-1] = Segment(kind, last.module, (*last.names, name))
        else:
            seq = nn.Sequential()
            seq.add_module(name, m)
            segments.append(Segment(kind, seq, (name,)))
    return segments


def _ann(module: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """A stateless module on every step of time-major ``h`` ``[T, B, ...]``."""
    steps, batch = h.shape[:2]
    with torch.no_grad():
        y = module(h.reshape(steps * batch, *h.shape[2:]))
    return y.reshape(steps, batch, *y.shape[1:])


def run_partitioned(source: nn.Module, x: torch.Tensor, mode: str = "floating_pt",
                    target: str = "lava", **quantize_kwargs: Any) -> torch.Tensor:
    """Run ``source`` on ``x`` ``[T, B, ...]`` with its spiking segments on ``target``
    (module docstring); returns the last segment's output ``[T, B, ...]`` (float64).
    ``quantize_kwargs`` (scalars) go to :func:`hardware.loihi.quantize` for every
    spiking segment."""
    from .lava import MODES, run
    from .loihi import quantize

    check_choice("mode", mode, MODES)
    check_choice("target", target, TARGETS)
    if not isinstance(x, torch.Tensor) or x.ndim < 3:
        raise ShapeError(f"x must be a time-major [T, B, ...] tensor, got "
                         f"{getattr(x, 'shape', type(x).__name__)}")
    segments = partition(copy.deepcopy(source).double())  # the caller's model stays as is
    if not any(s.kind == "snn" for s in segments):
        raise ParameterError("source has no spiking layer (LIF or CubaLIF) to run on Loihi")
    h = x.detach().double()
    for seg in segments:
        if seg.kind == "ann":
            h = _ann(seg.module, h)
            continue
        if h.ndim != 3:
            raise ShapeError(f"spiking segment {seg.names[0]!r} needs input [T, B, n], got "
                             f"{tuple(h.shape)} (add nn.Flatten before it)")
        kw = dict(quantize_kwargs, n_in=h.shape[-1])
        if target == "lava":
            h = run(seg.module, h, mode, **kw)
        elif mode == "fixed_pt":
            h = quantize(seg.module, **kw)(h)
        else:
            with torch.no_grad():
                h = seg.module(h)
    return h
