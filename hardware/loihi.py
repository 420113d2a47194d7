r"""Loihi 2 fixed-point twin of a spiking ``nn.Sequential``, bit-exact with Lava's models.

:func:`quantize` turns a stack of layers ``[Linear] -> LIF | CubaLIF`` into a
:class:`LoihiTwin` that computes, on integer ``torch`` tensors (CPU or GPU), what
Lava 0.10's bit-accurate ``PyDenseModelBitAcc`` and ``PyLifModelBitAcc`` compute
(``lava/proc/dense/models.py``, ``lava/proc/lif/models.py``). Per layer and step, with
integer weights :math:`w` (8-bit, clipped and truncated by sign mode as Lava's
``clip_weights``/``truncate_weights`` do), weight exponent :math:`e`, decay registers
:math:`d_u, d_v` (12 bit), threshold mantissa :math:`\vartheta_m` (17 bit):

.. math::
    a = \operatorname{shift}_e\big(\textstyle\sum_j w_{ij} s_j\big) + b, \qquad
    u \leftarrow \operatorname{wrap}_{24}\big(\operatorname{dec}(u, 4096 - d_u - 1)
        + 2^6 a\big), \\
    v \leftarrow \operatorname{clip}_{24}\big(\operatorname{dec}(v, 4096 - d_v) + u\big),
    \qquad s = [v > 2^6 \vartheta_m], \qquad v \leftarrow 0 \text{ where } s

with :math:`\operatorname{dec}(x, c) = \operatorname{sign}(x)\,(|x| c \gg 12)` (rounds
toward zero), ``shift`` a left shift (or an arithmetic right shift for :math:`e < 0`),
``wrap`` Lava's one-step wrap of :math:`u` beyond :math:`\pm 2^{23}` and ``clip`` to
:math:`[-2^{23}+1, 2^{23}-1]`. The ``+1`` on :math:`d_u` is Lava's ``ds_offset``.

Mapping from the float model (units: volts of the float membrane, relative to
``v_leak``). The neuron is read from its registry spec (:mod:`hardware._loihi_fixed`
:func:`~hardware._loihi_fixed.neuron_map`: the compiled coefficients, one source of
truth): a layer's drive is :math:`g\,(Wx + b)` with the input gain :math:`g` (LIF:
``gain``; CubaLIF: ``coupling``, ``current_first`` only), the decays are
:math:`d = \operatorname{round}(4096 (1 - a))` as in
:func:`~aura_snn.functional.conventions.loihi_decay_from_tau`, and one scale
:math:`\sigma` (integer input units per volt) per layer gives
:math:`w = \operatorname{round}(g W \sigma / 2^e)`, :math:`b = \operatorname{round}(g b\,
\sigma)` and :math:`\vartheta_m = \operatorname{round}((\vartheta - v_\text{leak})
\sigma)`; the membrane is :math:`v_\text{int} \approx 2^6 \sigma (v - v_\text{leak})`.
The bias enters through the input :math:`a` (Lava: an input process), not
``bias_mant``, so it keeps the delays of the spikes it goes with. A layer without a
``Linear`` is an identity. The first layer's input, if not binary, is rounded after
the integer weights: :math:`\operatorname{round}(x w^\top)` (the host computes it in
Lava too). Lava resets to its rest 0 at the spike: a model must have ``v_reset =
v_leak``, and ``reset="subtract"`` is refused unless ``approximate_reset=True``.
Graphs: :mod:`hardware.loihi_graph` (``quantize`` dispatches there).

Like Lava's simulator, the twin does not saturate the input :math:`a` at 16 bits nor
:math:`u` before its 24-bit wrap (integers are int64; Lava's int32 overflows only for
:math:`|a| > 2^{25}`); the automatic scale keeps one weight within 16 bits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from aura_snn.errors import InputValueError, ParameterError, ParameterTypeError
from aura_snn.functional.conventions import LOIHI_DECAY_SCALE

from ._loihi_affine import input_shape_of, per_step, stage_affine, stages_of
from ._loihi_fixed import (
    A_MAX,
    MAX_DELAY,
    SHIFT,
    UV_BITS,
    VTH_MAX,
    NeuronMap,
    auto_scale,
    delayed_current,
    lif_fixed,
    neuron_map,
    quantize_weights,
)


@dataclass(frozen=True)
class LoihiLayer:
    """One ``Dense -> LIF`` stage in Lava's integer encoding and its float twin.

    ``weights`` int64 ``[n_out, n_in]`` as Lava's Dense holds them; ``bias`` int64
    ``[n_out]`` in input units; ``du``/``dv``/``vth`` Lava's LIF registers. Float side
    (Lava ``floating_pt``): ``weights_f = g W``, ``bias_f = g b`` (V), ``du_f``/``dv_f``
    fractions, ``vth_f`` (V). ``delays``: int64 ``[n_out, n_in]`` extra synaptic delays
    in steps (0..63, Lava ``DelaySparse``) or ``None``."""

    name: str
    weights: torch.Tensor
    weight_exp: int
    num_weight_bits: int
    sign_mode: str
    bias: torch.Tensor
    du: int
    dv: int
    vth: int
    scale: float
    sparse: bool
    weights_f: torch.Tensor
    bias_f: torch.Tensor
    du_f: float
    dv_f: float
    vth_f: float
    delays: torch.Tensor | None = None


@dataclass(frozen=True)
class LayerError:
    """Quantisation error of one layer against the float model (V unless stated).

    ``clipped``: weights outside the representable range; ``clipped_max``: the largest
    excess (V of drive) removed by saturation."""

    name: str
    weight_max_err: float
    weight_rel_rmse: float
    bias_max_err: float
    threshold_rel_err: float
    decay_u_err: float
    decay_v_err: float
    clipped: int
    clipped_max: float


def _neuron_map(m: nn.Module, name: str, approximate_reset: bool) -> NeuronMap:
    """A LIF/CubaLIF module in Lava LIF's terms, through its registry spec."""
    return neuron_map(m.spec, m.neuron_parameters(), m.dt, f"layer {name!r}",
                      approximate_reset)


def _quantize_layer(name: str, w: torch.Tensor, b: torch.Tensor, m: nn.Module,
                    scale: float | None, weight_exp: int | None, num_weight_bits: int,
                    allow_saturation: bool, approximate_reset: bool,
                    ) -> tuple[LoihiLayer, LayerError]:
    nm = _neuron_map(m, name, approximate_reset)
    th = nm.threshold
    if not (torch.isfinite(w).all() and torch.isfinite(b).all()):
        raise InputValueError(f"layer {name!r} has NaN or infinite weights or bias")
    wg, bg = nm.gain * w, nm.gain * b
    if scale is None:
        mixed = bool((wg < 0).any() and (wg > 0).any())
        scale, auto_exp = auto_scale(float(wg.abs().max()), th, mixed)
        weight_exp = auto_exp if weight_exp is None else weight_exp
    elif weight_exp is None:
        weight_exp = 0
    vth = round(th * scale)
    if not 1 <= vth <= VTH_MAX:
        raise ParameterError(f"layer {name!r}: threshold {th} V at scale {scale} gives "
                             f"vth={vth}, outside Lava's 17-bit range [1, {VTH_MAX}]")
    wi, sign, over = quantize_weights(wg, scale, weight_exp, num_weight_bits)
    braw = torch.round(bg * scale)
    bover = (braw - braw.clamp(-A_MAX, A_MAX)).abs()
    clipped = int((over > 0).sum() + (bover > 0).sum())
    clipped_max = max(float(over.max()) * 2.0 ** weight_exp, float(bover.max())) / scale
    if clipped and not allow_saturation:
        raise ParameterError(f"layer {name!r}: {clipped} weights/biases overflow Loihi's "
                             f"range (largest excess {clipped_max:.4g} V); pass "
                             "allow_saturation=True to clip them")
    bi = braw.clamp(-A_MAX, A_MAX).long()
    d_v, du = nm.dv, nm.du(f"layer {name!r}")
    werr = wi.double() * 2.0 ** weight_exp / scale - wg
    err = LayerError(
        name=name, weight_max_err=float(werr.abs().max()),
        weight_rel_rmse=float(werr.pow(2).mean().sqrt()
                              / wg.pow(2).mean().sqrt().clamp_min(1e-300)),
        bias_max_err=float((bi.double() / scale - bg).abs().max()),
        threshold_rel_err=abs(vth / scale - th) / th,
        decay_u_err=abs((LOIHI_DECAY_SCALE - du - 1) / LOIHI_DECAY_SCALE - nm.a_u),
        decay_v_err=abs((LOIHI_DECAY_SCALE - d_v) / LOIHI_DECAY_SCALE - nm.a_v),
        clipped=clipped, clipped_max=clipped_max)
    sparse = float((w == 0).double().mean()) > 0.5
    layer = LoihiLayer(name=name, weights=wi, weight_exp=int(weight_exp),
                       num_weight_bits=num_weight_bits, sign_mode=sign, bias=bi, du=du,
                       dv=d_v, vth=vth, scale=float(scale), sparse=sparse, weights_f=wg,
                       bias_f=bg, du_f=1.0 - nm.a_u, dv_f=1.0 - nm.a_v, vth_f=th)
    return layer, err


class LoihiTwin(nn.Module):
    """The fixed-point twin: ``forward(x [T, B, *input_shape]) -> spikes [T, B,
    *output_shape]`` (0/1 in ``x``'s float dtype), bit-exact with Lava ``fixed_pt``
    (module docstring); :meth:`run` gives every layer's spikes flattened."""

    def __init__(self, layers: Sequence[LoihiLayer], errors: Sequence[LayerError],
                 input_shape: Sequence[int] | None = None,
                 output_shape: Sequence[int] | None = None) -> None:
        super().__init__()
        self.layers, self.errors = tuple(layers), tuple(errors)
        self.input_shape = tuple(input_shape or (int(layers[0].weights.shape[1]),))
        self.output_shape = tuple(output_shape or (int(layers[-1].weights.shape[0]),))

    def input_current(self, x: torch.Tensor) -> torch.Tensor:
        """First layer's integer input ``a`` (int64 ``[T, B, n]``) for input ``x``
        (``[T, B, *input_shape]`` or flat ``[T, B, n]``)."""
        n = self.layers[0].weights.shape[1]
        if x.ndim < 3 or (tuple(x.shape[2:]) not in (self.input_shape, (n,))):
            shape = ", ".join(map(str, self.input_shape))
            raise ParameterError(f"x must be [T, B, {shape}], got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise InputValueError("x contains NaN or infinite values")
        return self._current(x.reshape(*x.shape[:2], n).double(), self.layers[0])

    @staticmethod
    def _current(s: torch.Tensor, layer: LoihiLayer) -> torch.Tensor:
        """``shift_e(round(s w^T)) + b``; with delays, per delay ``k`` (as Lava's
        ``DelaySparse``): ``sum_k shift_e(round(s[t - k] (w [d = k])^T))``."""
        return (delayed_current(s, layer.weights, layer.weight_exp, layer.delays)
                + layer.bias.to(s.device))

    def run(self, x: torch.Tensor, backend: str = "auto") -> list[torch.Tensor]:
        """Spikes (bool ``[T, B, n]``) of every layer for input ``x`` (``backend`` of
        :func:`lif_fixed`)."""
        a, out = self.input_current(x), []
        for k, layer in enumerate(self.layers):
            if k:
                a = self._current(out[-1].double(), layer)
            out.append(lif_fixed(a, layer.du, layer.dv, layer.vth, backend))
        return out

    def spike_error(self, source: nn.Module, x: torch.Tensor) -> list[dict[str, float]]:
        """Per layer, twin against the float ``source`` on ``x``: the fraction of
        (step, sample, neuron) entries whose spike differs (``mismatch``), both mean
        firing probabilities per step (``rate_float``, ``rate_twin``), and the error of
        the layer's input current (``current_max_err``, ``current_mean_err``, V of
        drive): the twin's integer current over the scale against the float drive
        :math:`g (W h + b)`, both from the float model's input ``h`` to the layer
        (stateless layers run on every step, time folded into the batch)."""
        twin = self.run(x)
        out, ins, h = [], [], x.double()
        with torch.no_grad():
            for _, mods, m in stages_of(source):
                ins.append(h.reshape(*h.shape[:2], -1))
                h = m(per_step([c for _, c in mods], h) if mods else h)
                out.append(h.reshape(*h.shape[:2], -1))
        rows = []
        for lay, f, t, hin in zip(self.layers, out, twin, ins, strict=True):
            hin = hin.double()
            diff = (self._current(hin, lay).double() / lay.scale
                    - (hin @ lay.weights_f.T.to(hin.device) + lay.bias_f.to(hin.device))).abs()
            rows.append({"name": lay.name, "mismatch": float((f.bool() != t).double().mean()),
                         "rate_float": float(f.double().mean()),
                         "rate_twin": float(t.double().mean()),
                         "current_max_err": float(diff.max()),
                         "current_mean_err": float(diff.mean())})
        return rows

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
        out = self.run(x)[-1].to(dtype)
        return out.reshape(*out.shape[:2], *self.output_shape)


def quantize(source: nn.Module, *, scale: Any = None, weight_exp: Any = None,
             num_weight_bits: int = 8, allow_saturation: bool = False,
             approximate_reset: bool = False, n_in: int | None = None,
             delays: Mapping[str, torch.Tensor] | None = None,
             input_shape: Sequence[int] | None = None) -> Any:
    """The Loihi 2 fixed-point twin of ``source``: an ``nn.Sequential`` of ``[connection]
    -> LIF | CubaLIF`` stages, the connection one ``Linear`` or stateless layers that
    :mod:`hardware._loihi_affine` composes (convolutions, pooling, flattening).

    ``scale`` (input units per volt) and ``weight_exp``, per layer, default to the
    largest that fit (no clipping); with a given scale, weights beyond the 8-bit range
    raise unless ``allow_saturation``. ``input_shape`` (per sample, e.g. ``(C, H, W)``)
    is needed when the first layer is not a ``Linear``; ``n_in`` is the same for a flat
    input (a first neuron layer: an identity input). ``delays`` maps a stage's first
    connection layer's name to its synaptic delays in steps (int ``[n_out, n_in]``,
    0..63; Lava ``DelaySparse``: delay 0 is the plain ``Dense`` timing).
    ``twin.errors`` holds one :class:`LayerError` per layer. A
    :class:`~aura_snn.graph.Graph` source goes to
    :func:`hardware.loihi_graph.quantize_graph` (``scale``/``weight_exp`` then one value
    or a mapping by region/projection name) and gives a
    :class:`~hardware.loihi_graph.GraphTwin`."""
    from aura_snn.graph import Graph

    if isinstance(source, Graph):
        if n_in is not None or delays or input_shape is not None:
            raise ParameterError("n_in, input_shape and delays are for a Sequential source; "
                                 "a graph has its own input sizes and delays")
        from .loihi_graph import quantize_graph

        return quantize_graph(source, scale=scale, weight_exp=weight_exp,
                              num_weight_bits=num_weight_bits,
                              allow_saturation=allow_saturation,
                              approximate_reset=approximate_reset)
    if not 1 <= int(num_weight_bits) <= 8:
        raise ParameterError(f"num_weight_bits must be in 1..8, got {num_weight_bits}")
    stages = stages_of(source)
    n = len(stages)
    scales = list(scale) if isinstance(scale, Sequence) else [scale] * n
    exps = list(weight_exp) if isinstance(weight_exp, Sequence) else [weight_exp] * n
    if len(scales) != n or len(exps) != n:
        raise ParameterError(f"scale and weight_exp need one value per layer ({n})")
    for s in scales:
        if s is not None:
            _check_scale(float(s))
    delays = dict(delays or {})
    unknown = set(delays) - {mods[0][0] for _, mods, _ in stages if mods}
    if unknown:
        raise ParameterError(f"delays name no Linear (connection) layer of source: "
                             f"{sorted(unknown)}")
    shape = input_shape_of(stages[0], input_shape, n_in)
    first_shape = shape
    layers, errors = [], []
    for (name, mods, m), s, e in zip(stages, scales, exps, strict=True):
        if mods:
            w, b, shape = stage_affine(name, mods, shape)
        else:  # a neuron layer fed directly: the identity
            w = torch.eye(math.prod(shape), dtype=torch.float64)
            b = torch.zeros(w.shape[0], dtype=torch.float64)
        layer, err = _quantize_layer(name, w, b, m, s, e, int(num_weight_bits),
                                     allow_saturation, approximate_reset)
        if mods and mods[0][0] in delays:
            layer = replace(layer, delays=_check_delays(mods[0][0], delays[mods[0][0]],
                                                        tuple(layer.weights.shape)))
        layers.append(layer)
        errors.append(err)
    return LoihiTwin(layers, errors, first_shape, shape)


def _check_delays(name: str, d: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    d = torch.as_tensor(d)
    if d.is_floating_point() or d.dtype == torch.bool:
        raise ParameterTypeError(f"delays[{name!r}] must be an integer tensor, got {d.dtype}")
    if tuple(d.shape) != shape:
        raise ParameterError(f"delays[{name!r}] must have shape {shape}, got {tuple(d.shape)}")
    if d.numel() and (int(d.min()) < 0 or int(d.max()) > MAX_DELAY):
        raise ParameterError(f"delays[{name!r}] must be in 0..{MAX_DELAY} steps (Loihi 2's "
                             f"6 bits), got {int(d.min())}..{int(d.max())}")
    return d.long().cpu()


def _check_scale(x: float) -> None:
    if not math.isfinite(x) or x <= 0:
        raise ParameterError(f"scale must be positive and finite, got {x}")


__all__ = ["A_MAX", "SHIFT", "UV_BITS", "VTH_MAX", "LayerError", "LoihiLayer", "LoihiTwin",
           "lif_fixed", "quantize"]
