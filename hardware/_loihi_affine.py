r"""The connection of one stage of a spiking ``nn.Sequential``: the stateless layers
between two neuron layers (``Linear``, ``Conv1d``, ``Conv2d``, ``AvgPool1d``/``2d``,
``Flatten``, ``Unflatten``, ``Identity``, ``Dropout`` as at inference) composed into
one affine map :math:`y = W x + b` on the flattened per-sample input, which is what a
Lava ``Dense``/``Sparse`` process holds.

:math:`W` is read by probing the layers (in float64, biases zeroed) with the unit
vectors of the input: each output of a convolution or pooling then holds a single
product, so :math:`W` equals the kernel entries (or :math:`1/k` of a pooling window)
exactly; :math:`b` is the output for zero input with the biases kept. A single
``Linear`` is taken as it is (``W = weight``, ``b = bias``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import nn

from aura_snn.errors import ParameterError, ParameterTypeError, ShapeError
from aura_snn.neurons import LIF, CubaLIF

LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.AvgPool1d, nn.AvgPool2d, nn.Flatten,
          nn.Unflatten, nn.Identity, nn.Dropout)


def _zero_bias(m: nn.Module) -> nn.Module:
    m = copy.deepcopy(m).double()
    if getattr(m, "bias", None) is not None:
        with torch.no_grad():
            m.bias.zero_()
    return m


def per_step(mods: Sequence[nn.Module], h: torch.Tensor) -> torch.Tensor:
    """Apply stateless layers to every step of ``h [T, B, ...]`` (time folded into the
    batch)."""
    steps, batch = h.shape[:2]
    y = h.reshape(steps * batch, *h.shape[2:])
    for m in mods:
        y = m(y)
    return y.reshape(steps, batch, *y.shape[1:])


def stage_affine(label: str, mods: Sequence[tuple[str, nn.Module]], in_shape: tuple[int, ...]
                 ) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
    """``(W [n_out, n_in], b [n_out], out_shape)`` (float64) of the layers ``mods``
    applied to one sample of shape ``in_shape`` (module docstring)."""
    if len(mods) == 1 and isinstance(mods[0][1], nn.Linear):
        lin = mods[0][1]
        if in_shape[-1:] != (lin.in_features,) or len(in_shape) != 1:
            raise ShapeError(f"layer {mods[0][0]!r}: Linear expects {lin.in_features} "
                             f"inputs, the previous layer gives shape {in_shape}")
        w = lin.weight.detach().double().cpu()
        b = (lin.bias.detach().double().cpu() if lin.bias is not None
             else torch.zeros(w.shape[0], dtype=torch.float64))
        return w, b, (lin.out_features,)
    for name, m in mods:
        if isinstance(m, (nn.Conv1d, nn.Conv2d)) and m.padding_mode != "zeros":
            raise ParameterError(f"layer {name!r}: padding_mode={m.padding_mode!r} (only "
                                 "zero padding is a fixed linear map here)")
    n = math.prod(in_shape)
    if n > 65536:
        raise ParameterError(f"layer {label!r}: an input of {n} values is too large to "
                             "unroll into one connection matrix (at most 65536)")
    basis = torch.eye(n, dtype=torch.float64).reshape(n, *in_shape)
    zero = torch.zeros(1, *in_shape, dtype=torch.float64)
    try:
        with torch.no_grad():
            y, y0 = basis, zero
            for _, m in mods:
                y = _zero_bias(m).eval()(y)
                y0 = copy.deepcopy(m).double().eval()(y0)
    except RuntimeError as exc:
        raise ShapeError(f"layer {label!r}: the layers {[k for k, _ in mods]} do not "
                         f"take an input of shape {in_shape}: {exc}") from None
    return y.reshape(n, -1).T.contiguous(), y0.reshape(-1), tuple(int(s) for s in y0.shape[1:])


Stage = tuple[str, list[tuple[str, nn.Module]], nn.Module]


def stages_of(source: nn.Module) -> list[Stage]:
    """``(label, connection layers, neuron)`` per stage (label ``"fc1->lif1"``)."""
    if not isinstance(source, nn.Sequential):
        raise ParameterTypeError(f"source must be an nn.Sequential, got {type(source).__name__}")
    stages: list[Stage] = []
    pending: list[tuple[str, nn.Module]] = []
    for name, m in source.named_children():
        if isinstance(m, (LIF, CubaLIF)):
            stages.append(("->".join([k for k, _ in pending] + [name]), pending, m))
            pending = []
        elif isinstance(m, LAYERS):
            pending.append((name, m))
        else:
            raise ParameterError(f"layer {name!r}: {type(m).__name__} is not supported "
                                 "(LIF, CubaLIF and between them Linear, Conv1d, Conv2d, "
                                 "AvgPool1d/2d, Flatten, Unflatten, Identity, Dropout)")
    if pending or not stages:
        raise ParameterError("source must end with a spiking layer (LIF or CubaLIF)"
                             if stages else "source has no spiking layer")
    return stages


def input_shape_of(first: Stage, input_shape: Sequence[int] | None, n_in: int | None
                 ) -> tuple[int, ...]:
    """Per-sample input shape: given, ``(n_in,)``, or a first ``Linear``'s width."""
    if input_shape is not None:
        shape = tuple(int(v) for v in input_shape)
        if not shape or min(shape) < 1:
            raise ParameterError(f"input_shape must be positive sizes, got {input_shape}")
        if n_in is not None and math.prod(shape) != n_in:
            raise ParameterError(f"n_in={n_in} disagrees with input_shape={shape}")
        return shape
    if n_in is not None:
        return (int(n_in),)
    name, mods, _ = first
    if mods and isinstance(mods[0][1], nn.Linear):
        return (mods[0][1].in_features,)
    raise ParameterError(f"layer {name!r}: the per-sample input shape is unknown (the first "
                         "layer is not a Linear): pass input_shape (or n_in)")


__all__ = ["LAYERS", "Stage", "input_shape_of", "per_step", "stage_affine", "stages_of"]
