r"""Loihi 2 fixed-point primitives shared by the twins of :mod:`hardware.loihi` (stacks of
layers) and :mod:`hardware.loihi_graph` (graphs), written from Lava 0.10's bit-accurate
models (``lava/proc/lif/models.py`` ``AbstractPyLifModelFixed``/``PyLifModelBitAcc``,
``lava/proc/dense/models.py`` and ``lava/proc/sparse/models.py``, ``lava/utils/
weightutils.py``); the equations are in :mod:`hardware.loihi`.

The float-to-integer mapping of a neuron is read from the model's spec in the registry
(:func:`aura_snn.functional.registry.get`, ``spec.compile(p, dt)``: the coefficients
the engine and fused kernels run), never re-derived: with the compiled family's
receptor coefficients :math:`(k, b, c)` the input current obeys
:math:`\hat\imath_t = b c\,\hat\imath_{t-1} + x_t` and drives the membrane by
:math:`k\hat\imath_t`, which is Lava's :math:`u` for the input :math:`k x` with
:math:`1 - d_u/4096 = b c`; the membrane keeps :math:`a_m = 1 - d_v/4096`.
Potentials are taken relative to :math:`v_\text{leak}` (Lava's rest and reset are 0),
so a model must reset to its resting potential.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from aura_snn._checks import check_choice
from aura_snn.errors import ParameterError
from aura_snn.functional.conventions import LOIHI_DECAY_SCALE

UV_BITS = 24  # u, v precision
VTH_MAX = (1 << 17) - 1  # vth mantissa, unsigned 17 bit
SHIFT = 6  # vth and activation MSB alignment
A_MAX = (1 << 15) - 1  # 16-bit activation (Dense a_out)
MAX_DELAY = 63  # Loihi 2 synaptic delays: 6 bits


def shift(x: torch.Tensor, e: int) -> torch.Tensor:
    """Lava's weight-exponent shift: ``x << e`` for ``e > 0``, else ``x >> -e``
    (arithmetic, rounds toward minus infinity)."""
    return x << e if e > 0 else x >> -e


def decay(x: torch.Tensor, keep: int) -> torch.Tensor:
    """Lava's ``sign(x) * ((|x| * keep) >> 12)`` (rounds toward zero)."""
    return torch.sign(x) * ((x.abs() * keep) >> 12)


def lif_registers(du: int, dv: int, vth: int) -> tuple[int, int, int, int]:
    """``(keep_u, keep_v, threshold, limit)`` of Lava's LIF registers: ``du`` carries
    Lava's ``ds_offset`` of 1, the threshold is ``vth << 6``, ``limit`` is 2**23."""
    return (LOIHI_DECAY_SCALE - du - 1, LOIHI_DECAY_SCALE - dv, vth << SHIFT,
            1 << (UV_BITS - 1))


def lif_step(u: torch.Tensor, v: torch.Tensor, a: torch.Tensor, regs: tuple[int, ...]
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of ``PyLifModelBitAcc`` (bias 0) on int64 ``u``, ``v``, input ``a``:
    ``(spikes, u, v)``; ``regs`` from :func:`lif_registers`."""
    keep_u, keep_v, th, lim = regs
    c = decay(u, keep_u) + (a << SHIFT)
    w = torch.where(c > lim, c - 2 * lim, c)
    u = torch.where(w <= -lim, c + 2 * lim, w)
    v = (decay(v, keep_v) + u).clamp(-lim + 1, lim - 1)
    s = v > th
    return s, u, torch.where(s, torch.zeros_like(v), v)


def lif_fixed(a: torch.Tensor, du: int, dv: int, vth: int,
              backend: str = "auto") -> torch.Tensor:
    """Lava ``PyLifModelBitAcc`` (bias 0) over int64 input ``a`` ``[T, B, n]``: spikes
    (bool). ``backend``: ``"auto"`` (a Numba kernel on CPU, torch ops elsewhere),
    ``"torch"`` or ``"numba"``; all compute the same integers."""
    check_choice("backend", backend, ("auto", "torch", "numba"))
    regs = lif_registers(du, dv, vth)
    if backend == "numba" or (backend == "auto" and a.device.type == "cpu"):
        from ._loihi_cpu import lif_fixed_cpu

        flat = a.detach().cpu().reshape(a.shape[0], -1).contiguous().numpy()
        out = lif_fixed_cpu(flat, regs[0], regs[1], regs[2], SHIFT, regs[3])
        return torch.from_numpy(out).reshape(a.shape).to(a.device)
    u = torch.zeros_like(a[0])
    v = torch.zeros_like(a[0])
    out = torch.empty_like(a, dtype=torch.bool)
    for t in range(a.shape[0]):
        out[t], u, v = lif_step(u, v, a[t], regs)
    return out


def delayed_current(s: torch.Tensor, w: torch.Tensor, weight_exp: int,
                    delays: torch.Tensor | None, offset: int = 0) -> torch.Tensor:
    r"""Integer input ``a [T, B, n_out]`` of a connection process fed ``s [T, B, n_in]``
    (0/1 spikes, or real values rounded after the integer weights): per delay ``k``,
    :math:`a[t] \mathrel{+}= \operatorname{shift}_e(\operatorname{round}(s[t - o - k]\,
    (w \odot [d = k])^\top))`, as ``DelaySparse`` shifts each delay's sum (``o`` =
    ``offset`` steps before the first delay; ``delays`` ``None``: all 0)."""
    wd = w.double().to(s.device)
    steps = s.shape[0]
    out = torch.zeros(*s.shape[:-1], w.shape[0], dtype=torch.long, device=s.device)
    groups = [(0, wd)] if delays is None else \
        [(k, wd * (delays.to(s.device) == k)) for k in torch.unique(delays).tolist()]
    for k, wk in groups:
        lag = offset + int(k)
        if lag >= steps:
            continue
        out[lag:] += shift(torch.round(s[:steps - lag] @ wk.T).long(), weight_exp)
    return out


@dataclass(frozen=True)
class NeuronMap:
    """A neuron model in Lava LIF's terms (floats, from the registry's compiled form):
    input gain ``gain`` (V of membrane drive per V of input), current decay ``a_u``
    (0: no current), membrane decay ``a_v``, ``threshold`` above rest (V) and the rest
    ``v_leak`` (V) the potentials are shifted by."""

    gain: float
    a_u: float
    a_v: float
    threshold: float
    v_leak: float

    @property
    def dv(self) -> int:
        """Lava's ``dv``: ``round(4096 (1 - a_v))``."""
        return int(min(LOIHI_DECAY_SCALE, max(0, round(LOIHI_DECAY_SCALE * (1 - self.a_v)))))

    def du(self, what: str) -> int:
        """Lava's ``du`` register (``round(4096 (1 - a_u))`` less the ``ds_offset`` 1;
        4095 without a current)."""
        if self.a_u == 0.0:
            return LOIHI_DECAY_SCALE - 1
        d = round(LOIHI_DECAY_SCALE * (1 - self.a_u))
        if d < 1:
            raise ParameterError(f"{what}: the current decay {self.a_u} gives du=0, below "
                                 "Lava's ds_offset of 1")
        return int(d) - 1


def _scalar(x: Any) -> float | None:
    """``x`` as one float (a Python number keeps its double precision), ``None`` if it
    holds different values."""
    if isinstance(x, (int, float)):
        return float(x)
    t = torch.as_tensor(x).detach().double()
    if t.numel() != 1 and not bool((t == t.flatten()[0]).all()):
        return None
    return float(t.flatten()[0])


def neuron_map(spec: Any, p: Any, dt: float, what: str,
               approximate_reset: bool = False) -> NeuronMap:
    """Map a neuron model (registry ``spec``, parameters ``p``, step ``dt`` s) onto
    Lava's LIF, refusing, with ``what`` named, what that LIF cannot run: adaptation,
    refractory periods, ``voltage_first`` order, next-step or subtractive resets (the
    latter accepted as a reset to rest with ``approximate_reset``), a reset other than
    to rest, per-neuron values, receptors with different currents."""
    if spec is None or spec.compile is None:
        raise ParameterError(f"{what}: model {getattr(spec, 'name', spec)!r} has no "
                             "compiled form in the registry to map onto Lava's LIF")
    c = spec.compile(p, dt)
    bad = []
    if c.next_step:
        bad.append("reset_at='next_step'")
    reset = getattr(p, "reset", "zero")
    if reset != "zero" and not (reset == "subtract" and approximate_reset):
        bad.append(f"reset={reset!r} (Lava resets to 0; approximate_reset=True accepts "
                   "'subtract' as 'zero')")
    if c.late:
        bad.append(f"order={getattr(p, 'order', 'voltage_first')!r}")
    if c.n_ref:
        bad.append(f"a refractory period of {c.n_ref} steps")
    if _scalar(c.a_adapt) != 0.0 or _scalar(c.beta) != 0.0:
        bad.append("threshold adaptation")
    vals = {k: _scalar(getattr(c, k)) for k in ("a_m", "v_leak", "threshold", "v_reset")}
    rec = [tuple(_scalar(x) for x in r) for r in c.receptors]
    for k, v in vals.items():
        if v is None:
            bad.append(f"{k} per neuron (Lava's LIF takes one value)")
    if any(x is None for r in rec for x in r):
        bad.append("input coefficients per neuron (Lava's LIF takes one value)")
    elif len({(k, b * cc) for k, b, cc in rec}) > 1:
        bad.append(f"receptors {list(spec.receptors(p))} with different currents (Lava's LIF "
                   "has one)")
    if not bad and vals["v_reset"] != vals["v_leak"]:
        bad.append(f"v_reset={vals['v_reset']} V differs from v_leak={vals['v_leak']} V "
                   "(Lava resets to its rest)")
    if not bad and vals["threshold"] <= vals["v_leak"]:
        bad.append(f"threshold={vals['threshold']} V not above v_leak={vals['v_leak']} V")
    if bad:
        raise ParameterError(f"{what} cannot run on Lava's LIF: {', '.join(bad)}")
    k, b, cc = rec[0]
    return NeuronMap(gain=k, a_u=b * cc, a_v=vals["a_m"],
                     threshold=vals["threshold"] - vals["v_leak"], v_leak=vals["v_leak"])


def quantize_weights(wg: torch.Tensor, scale: float, weight_exp: int, num_weight_bits: int
                     ) -> tuple[torch.Tensor, str, torch.Tensor]:
    """Integer weights of float weights ``wg`` (V of drive) at ``scale`` (input units
    per volt) and exponent ``weight_exp``: ``round(wg scale / 2**e)``, its sign mode
    (``"mixed"``, ``"excitatory"``, ``"inhibitory"``), clipped to the mode's 8-bit range
    and truncated to ``num_weight_bits`` as Lava's ``clip_weights``/
    ``truncate_weights`` do. Returns ``(weights int64, sign_mode, excess)``, ``excess``
    the clipped amount per weight in integer units."""
    raw = torch.round(wg * scale / 2.0 ** weight_exp)
    sign = "mixed" if bool((raw < 0).any() and (raw > 0).any()) else (
        "inhibitory" if bool((raw < 0).any()) else "excitatory")
    lo, hi = {"mixed": (-256, 255), "excitatory": (0, 255), "inhibitory": (-255, 0)}[sign]
    over = (raw - raw.clamp(lo, hi)).abs()
    wi = raw.clamp(lo, hi).long()
    trunc = 8 - num_weight_bits + (sign == "mixed")
    wi = -((-wi >> trunc) << trunc) if sign == "inhibitory" else (wi >> trunc) << trunc
    return wi, sign, over


def auto_scale(peak: float, threshold: float, mixed: bool) -> tuple[float, int]:
    """``(scale, weight_exp)`` for weights of largest magnitude ``peak`` (V): the largest
    exponent in -8..7 whose threshold ``threshold * scale`` stays within 2**16, and the
    scale that puts ``peak`` at the top of the 8-bit range (254 mixed, 255 one sign)."""
    wmax = 254 if mixed else 255
    e = 7
    while e > -8 and peak > 0 and threshold * wmax * 2.0 ** e / peak > 2 ** 16:
        e -= 1
    scale = wmax * 2.0 ** e / peak if peak > 0 else 4096.0 / threshold
    return min(scale, 2 ** 16 / threshold), e


def fitting_exponent(peak: float, scale: float, mixed: bool) -> int:
    """Smallest exponent in -8..7 that keeps ``round(peak scale / 2**e)`` within the
    8-bit range (7 if none does: the caller reports the clipping)."""
    wmax = 254 if mixed else 255
    for e in range(-8, 8):
        if round(peak * scale / 2.0 ** e) <= wmax:
            return e
    return 7
