r"""The spiking part of a :class:`~hybrid.model.HippocampalTransformer` as ``aura_snn``
modules, and FFN replacement for generation and measurement.

:func:`ffn_module` hands layer :math:`\ell`'s :class:`~hybrid.spiking_ffn.SpikingFFN` over as
an :class:`EventFFN`: the same ``fc1`` (``nn.Linear``), ``lif``
(:class:`aura_snn.neurons.LIF`) and ``fc2`` modules (shared, not copied), computed in the
event-driven form a neuromorphic chip uses. For the ``N`` tokens ``x`` of a forward:

.. math::
    c = W_1 x + b_1 \;(\text{once per token}), \qquad
    s_t = \mathrm{LIF}(c, \dots, c)_t, \qquad
    y = \frac{1}{T}\sum_{t=1}^{T} (W_2 s_t + b_2) = W_2 \frac{1}{T}\sum_t s_t + b_2 ,

so ``fc2`` sees the binary spikes of each step (an operation counter classes its
products as accumulates, one per spike and output) and ``y`` equals the fused
:class:`~hybrid.spiking_ffn.SpikingFFN` up to float summation order (``W_2`` is linear).
With ``readout="membrane"`` ``fc2`` sees :math:`v_t` (V) instead. :meth:`EventFFN.stack`
is the exportable ``nn.Sequential(fc1, lif)`` whose input is ``x`` held for ``T`` steps
(``[T, N, d_model]``, :meth:`EventFFN.drive`): what :mod:`hardware` quantises and runs in
Lava; :meth:`EventFFN.readout_of` maps its spikes ``[T, N, d_ff]`` back to ``y``.

:func:`replaced_ffns` swaps any layer's FFN for any callable ``x [..., d_model] ->
y [..., d_model]`` for the duration of a ``with`` block (generation, evaluation, counting),
restoring the original modules on exit, errors included. No hardware is imported here:
the caller brings the callable (e.g. a Lava run of :meth:`EventFFN.stack`).
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping

import torch
from torch import nn

from aura_snn.errors import ParameterError, ParameterTypeError, ShapeError

from .model import HippocampalTransformer
from .spiking_ffn import SpikingFFN

FFNCallable = Callable[[torch.Tensor], torch.Tensor]


class EventFFN(nn.Module):
    """Event-driven form of a :class:`SpikingFFN` (module docstring), sharing its modules.

    ``forward(x [..., d_model]) -> y [..., d_model]``; ``fc1``, ``lif`` and ``fc2`` are the
    source FFN's own modules, so training one trains the other."""

    def __init__(self, ffn: SpikingFFN) -> None:
        super().__init__()
        if not isinstance(ffn, SpikingFFN):
            raise ParameterTypeError(f"ffn must be a SpikingFFN, got {type(ffn).__name__}")
        self.fc1, self.lif, self.fc2 = ffn.fc1, ffn.lif, ffn.fc2
        self.T, self.readout, self.d_model = ffn.T, ffn.readout, ffn.d_model

    def stack(self) -> nn.Sequential:
        """``nn.Sequential(fc1, lif)`` (shared modules): input ``[T, N, d_model]`` (the token
        held for ``T`` steps), output spikes ``[T, N, d_ff]``; a stage
        ``Linear -> LIF`` as :func:`hardware.loihi.quantize` and :mod:`hardware.lava` take."""
        return nn.Sequential(OrderedDict(fc1=self.fc1, lif=self.lif))

    def drive(self, x: torch.Tensor) -> torch.Tensor:
        """``x [..., d_model]`` flattened to ``N`` tokens and held for ``T`` steps:
        ``[T, N, d_model]``, the input of :meth:`stack`."""
        flat = self._flat(x)
        return flat.unsqueeze(0).expand(self.T, *flat.shape)

    def readout_of(self, spikes: torch.Tensor, shape: torch.Size | None = None) -> torch.Tensor:
        """:math:`\\frac{1}{T}\\sum_t (W_2 s_t + b_2)` of ``spikes [T, N, d_ff]``
        (``readout="rate"`` only), reshaped to ``shape`` (default ``[N, d_model]``)."""
        if self.readout != "rate":
            raise ParameterError(f"readout_of needs readout='rate' (spikes only), this FFN "
                                 f"reads out {self.readout!r}")
        d_ff = self.fc1.out_features
        if spikes.dim() != 3 or spikes.shape[0] != self.T or spikes.shape[2] != d_ff:
            raise ShapeError(f"spikes must have shape [{self.T}, N, {d_ff}], got "
                             f"{tuple(spikes.shape)}")
        y = self.fc2(spikes.to(self.fc2.weight.dtype)).mean(0)
        return y if shape is None else y.reshape(shape)

    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.d_model:
            raise ShapeError(f"x must have shape [..., {self.d_model}], got {tuple(x.shape)}")
        return x.reshape(-1, self.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``y`` of ``x`` (module docstring): ``fc1`` once per token, ``fc2`` per step."""
        c = self.fc1(self._flat(x))
        out = self.lif.run(c.unsqueeze(0).expand(self.T, *c.shape),
                           record_v=self.readout == "membrane")
        a = out.spikes if self.readout == "rate" else out.v
        return self.fc2(a).mean(0).reshape(x.shape)

    def extra_repr(self) -> str:
        return f"T={self.T}, readout={self.readout!r}"


class CallableFFN(nn.Module):
    """An FFN slot filled by a plain callable ``fn(x [..., d]) -> y [..., d]``; the
    output's shape is checked against the input's."""

    def __init__(self, fn: FFNCallable) -> None:
        super().__init__()
        if not callable(fn):
            raise ParameterTypeError(f"fn must be callable, got {type(fn).__name__}")
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fn(x)
        if not isinstance(y, torch.Tensor) or y.shape != x.shape:
            raise ShapeError(f"the replacement FFN must return a tensor of shape "
                             f"{tuple(x.shape)}, got {getattr(y, 'shape', type(y).__name__)}")
        return y


def _layer(model: HippocampalTransformer, layer: int) -> int:
    if not isinstance(model, HippocampalTransformer):
        raise ParameterTypeError(f"model must be a HippocampalTransformer, got "
                                 f"{type(model).__name__}")
    if isinstance(layer, bool) or not isinstance(layer, int):
        raise ParameterTypeError(f"layer must be an int, got {layer!r}")
    n = len(model.blocks)
    if not 0 <= layer < n:
        raise ParameterError(f"layer {layer} is past the depth (n_layers={n}: 0..{n - 1})")
    return layer


def ffn_module(model: HippocampalTransformer, layer: int) -> EventFFN:
    """Layer ``layer``'s spiking FFN as an :class:`EventFFN` (shared modules). A dense
    layer raises :class:`~aura_snn.errors.ParameterError` naming the spiking layers."""
    ffn = model.blocks[_layer(model, layer)].ffn
    if isinstance(ffn, EventFFN):
        return ffn
    if not isinstance(ffn, SpikingFFN):
        raise ParameterError(f"layer {layer}'s FFN is {type(ffn).__name__}, not spiking; "
                             f"spiking layers: {list(model.config.spiking_layers)}")
    return EventFFN(ffn)


@contextlib.contextmanager
def replaced_ffns(model: HippocampalTransformer,
                  replacements: Mapping[int, nn.Module | FFNCallable]) -> Iterator[None]:
    """Within the block, layer ``i``'s FFN is ``replacements[i]`` (an ``nn.Module`` as it
    is, another callable wrapped in :class:`CallableFFN`); the originals come back on
    exit. Layers are checked before anything is swapped."""
    if not isinstance(replacements, Mapping):
        raise ParameterTypeError(f"replacements must be a mapping {{layer: callable}}, got "
                                 f"{type(replacements).__name__}")
    new = {}
    for i, fn in replacements.items():
        new[_layer(model, i)] = fn if isinstance(fn, nn.Module) else CallableFFN(fn)
    old = {i: model.blocks[i].ffn for i in new}
    try:
        for i, mod in new.items():
            model.blocks[i].ffn = mod
        yield
    finally:
        for i, mod in old.items():
            model.blocks[i].ffn = mod


def event_view(model: HippocampalTransformer) -> contextlib.AbstractContextManager[None]:
    """:func:`replaced_ffns` with every spiking layer in its :class:`EventFFN` form (same
    outputs; an operation counter then sees spikes enter ``fc2``)."""
    return replaced_ffns(model, {i: ffn_module(model, i) for i in model.config.spiking_layers})


__all__ = ["CallableFFN", "EventFFN", "event_view", "ffn_module", "replaced_ffns"]
