r"""The spiking feed-forward block of the hippocampal transformer.

Each token's vector :math:`x \in \mathbb{R}^{d}` drives ``d_ff`` LIF neurons
(:class:`aura_snn.neurons.LIF`, fused multi-step kernel, surrogate gradients) with a
constant input for :math:`T` steps, starting from rest for every token:

.. math::
    c = W_1 x + b_1, \qquad
    s_t = \mathrm{LIF}(c, c, \dots, c)_t \in \{0, 1\}^{d_\text{ff}}, \quad t = 1..T,

read out as the rate :math:`r = \frac{1}{T}\sum_t s_t` (``readout="rate"``) or the
time-averaged membrane potential :math:`r = \frac{1}{T}\sum_t v_t` (V,
``readout="membrane"``; :math:`v_t` after reset), and projected back:

.. math::
    y = W_2\, r + b_2 .

**Linearity exploited (exact).** The per-step form of the readout,
:math:`\frac{1}{T}\sum_t (W_2 s_t + b_2)`, equals :math:`W_2 (\frac{1}{T}\sum_t s_t) + b_2`
because :math:`W_2` is linear: the second projection is applied once to the spike
count (or the summed membrane), not :math:`T` times, which saves :math:`(T-1)` matrix
products per token. The only difference is floating-point summation order (tests
compare the two in float64: values and gradients to 1e-12). Likewise :math:`W_1 x` is
computed once per token, not per step, since the input current is constant.

Because every token starts at rest, the block is position-wise: a token's output
depends on that token only, so a key-value cache stays exact with spiking FFNs.

Meter: after each forward, :attr:`SpikingFFN.last_stats` gives :class:`FFNStats`
(detached tensors, no host sync; computed when first read): the firing rate (spikes
per neuron per step) and the fraction of (token, neuron) spike counts that are zero,
i.e. the entries of :math:`\sum_t s_t` that :math:`W_2` skips on event-driven
hardware. When the forward records gradients, :attr:`SpikingFFN.last_rate` is the same firing rate
:math:`\bar r = \frac{1}{T N d_\text{ff}} \sum_{t,n,j} s_{t,n,j}` *with* its
surrogate gradient, for an activity penalty :math:`\lambda_r \bar r` in the loss
(:func:`hybrid.train.spike_rate_penalty`, weight ``TrainConfig.spike_rate_weight``).

**Design choices (measured on the benchmark's quick model, ``benchmarks/bench_hybrid.py``:
d_model 64, 2 layers, d_ff 256, T 4, 40,960 training tokens, seeds 0-4; the dense
twin's validation perplexity is 13.1-15.2 over those seeds).**

* Surrogate: the triangle :math:`\sigma'(u - \vartheta) = \gamma \max(0, 1 - \gamma
  |u - \vartheta|)` at its default :math:`\gamma` = 1 V\ :sup:`-1`, which is
  :math:`1/\vartheta` at the default :math:`\vartheta` = 1 V (Esser et al. 2016), instead
  of the SuperSpike fast sigmoid at slope 25. With a constant drive over only
  :math:`T = 4` steps most neurons sit far from the threshold, and the fast sigmoid's
  gradient (1/12 at 0.1 V away, 1/36 at 0.2 V) reaches almost none of them; the
  triangle reaches every neuron whose membrane lies in :math:`(0, 2\vartheta)`, with
  unit area (Zenke & Vogels 2021: learning is robust to the surrogate's shape, not to
  its scale). Perplexity (seeds 0-2) went from 16.5-18.9 (1.17-1.26x the dense twin) to
  12.7-14.0; a fast sigmoid at slope 2 or the arctan did about as well.
* Activity penalty: with the wider surrogate alone the rate stays near 0.15 (activation
  sparsity 0.84-0.85, short of 0.85). :math:`\mathcal{L} + \lambda_r \bar r` with
  :math:`\lambda_r = 0.5` (:math:`\bar r` averaged over the spiking layers) brings it to
  0.031-0.036 (sparsity 0.96-0.97) at perplexity 12.9-13.7, 0.85-1.00x the dense twin
  seed by seed; :math:`\lambda_r = 2` silences too much at this training length
  (15.2-18.5). Raising :math:`\vartheta` to 2 V without a penalty gave rates
  0.06-0.07 at 12.8-14.0. On the full benchmark model (d_model 128, 4 layers, d_ff 512,
  307,200 tokens, seed 0): dense 5.30; fast sigmoid 5.84; triangle 4.92 at rate 0.12;
  triangle with :math:`\lambda_r = 0.5` 4.58 at rate 0.031.
* Kept: rate readout (the spike count is what an event-driven :math:`W_2` consumes;
  the membrane readout is dense), :math:`\tau_m` = 10 ms (5 and 20 ms changed nothing
  measurable), :math:`T = 4`, PyTorch's ``nn.Linear`` init, and no learnable
  thresholds or time constants (the spiking FFN has exactly the dense FFN's parameters).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from aura_snn._checks import check_choice, check_int
from aura_snn.errors import ShapeError
from aura_snn.neurons import LIF

READOUTS = ("rate", "membrane")


class FFNStats(NamedTuple):
    """Activity of one spiking FFN forward (0-d detached tensors).

    Attributes:
        firing_rate: mean of :math:`s_t` over steps, tokens and neurons
            (spikes per neuron per step, dimensionless in [0, 1]).
        count_sparsity: fraction of tokens x neurons with no spike in the :math:`T` steps.
        tokens: tokens in the forward (0-d integer tensor).
    """

    firing_rate: torch.Tensor
    count_sparsity: torch.Tensor
    tokens: torch.Tensor

    @property
    def spike_sparsity(self) -> torch.Tensor:
        """Fraction of zero entries of the spike tensor, ``1 - firing_rate``."""
        return 1.0 - self.firing_rate


class SpikingFFN(nn.Module):
    """Spiking FFN: ``x [..., d_model] -> y [..., d_model]`` (equations in the module docstring).

    Args:
        d_model: token width :math:`d`.
        d_ff: LIF neurons :math:`d_\\text{ff}`.
        T: steps per token (>= 1).
        readout: ``"rate"`` or ``"membrane"``.
        tau_mem: membrane time constant (s), > ``dt``.
        dt: integration step (s).
        threshold: firing threshold (V), > 0.
        input_scaling: ``"direct"`` (:math:`v \\leftarrow a v + c`) or ``"ode"``
            (:math:`v \\leftarrow a v + (1-a) c`), :mod:`aura_snn.functional.lif`.
        surrogate, slope: surrogate derivative of the spike (default: triangle at its
            default slope 1/V, i.e. width :math:`\\vartheta` at the default
            threshold; module docstring).
        backend: LIF backend (``"auto"``: the fused kernel on CPU/CUDA).

    Learnable: ``fc1`` (:math:`W_1, b_1`) and ``fc2`` (:math:`W_2, b_2`), PyTorch's default
    ``nn.Linear`` init (so :math:`c` has a spread of order 1 V and some neurons fire).
    The LIF constants are buffers of ``lif``; the state dict holds plain tensors.
    """

    def __init__(self, d_model: int, d_ff: int, *, T: int = 4, readout: str = "rate",
                 tau_mem: float = 10e-3, dt: float = 1e-3, threshold: float = 1.0,
                 input_scaling: str = "direct", surrogate: str = "triangle",
                 slope: float | None = None, backend: str = "auto") -> None:
        super().__init__()
        self.d_model = check_int("d_model", d_model, minimum=1)
        self.d_ff = check_int("d_ff", d_ff, minimum=1)
        self.T = check_int("T", T, minimum=1)
        self.readout = check_choice("readout", readout, READOUTS)
        self.fc1 = nn.Linear(self.d_model, self.d_ff)
        self.lif = LIF(tau_mem=tau_mem, dt=dt, threshold=threshold, reset="subtract",
                       input_scaling=input_scaling, surrogate=surrogate, slope=slope,
                       backend=backend)
        self.fc2 = nn.Linear(self.d_ff, self.d_model)
        self._count: torch.Tensor | None = None   # detached spike counts of the last forward
        self._stats: FFNStats | None = None
        self.last_rate: torch.Tensor | None = None

    @property
    def last_stats(self) -> FFNStats | None:
        """:class:`FFNStats` of the last forward (``None`` before the first), computed from
        its detached spike counts on first access: a forward whose activity nobody reads
        (a decoding step) pays for no statistics."""
        if self._stats is None and self._count is not None:
            count, n = self._count, self._count.shape[0]
            with torch.no_grad():
                self._stats = FFNStats(
                    firing_rate=count.float().mean() / self.T if n else count.new_zeros(()),
                    count_sparsity=(count == 0).float().mean() if n else count.new_zeros(()),
                    tokens=torch.tensor(n))
        return self._stats

    def hidden(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(r, spikes)``: the readout ``r`` ``[N, d_ff]`` and spikes ``[T, N, d_ff]`` of
        ``x`` ``[..., d_model]`` flattened to ``N`` tokens. Updates :attr:`last_stats`
        and :attr:`last_rate` (``None`` when the forward records no gradient)."""
        if x.shape[-1] != self.d_model:
            raise ShapeError(f"x must have shape [..., {self.d_model}], got {tuple(x.shape)}")
        current = self.fc1(x.reshape(-1, self.d_model))            # [N, d_ff], V
        drive = current.unsqueeze(0).expand(self.T, *current.shape)  # constant for T steps
        out = self.lif.run(drive, record_v=self.readout == "membrane")
        spikes = out.spikes
        count = spikes.sum(0)
        r = count if self.readout == "rate" else out.v.sum(0)
        # from the count, not spikes.mean(): the penalty's gradient then joins the
        # readout's on [N, d_ff] and reaches the kernel as one row repeated along time
        self.last_rate = count.mean() / self.T if count.requires_grad and count.numel() \
            else None
        self._count, self._stats = count.detach(), None
        return r / self.T, spikes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`y = W_2 r + b_2`, shape of ``x``."""
        r, _ = self.hidden(x)
        return self.fc2(r).reshape(x.shape)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, d_ff={self.d_ff}, T={self.T}, readout={self.readout!r}"


class DenseFFN(nn.Module):
    r"""Dense MLP, the twin of :class:`SpikingFFN`: :math:`y = W_2\,\mathrm{GELU}(W_1 x + b_1)
    + b_2` with the exact (erf, not tanh) GELU, ``x [..., d_model] -> [..., d_model]``."""

    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(check_int("d_model", d_model, minimum=1),
                             check_int("d_ff", d_ff, minimum=1))
        self.fc2 = nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The MLP of ``x``."""
        return self.fc2(gelu(self.fc1(x)))


_SQRT_HALF = math.sqrt(0.5)


def gelu(x: torch.Tensor) -> torch.Tensor:
    r"""Exact GELU, :math:`x\,\Phi(x) = \tfrac12 x\,(1 + \mathrm{erf}(x/\sqrt2))`, from
    ``torch.erf``: the function of ``torch.nn.functional.gelu`` (within 4e-7 in float32
    and 5e-16 in float64 of it), about half its time in a one-token decoding step on
    the CPU (torch's fused GELU kernel took ~30 us for 512 values there, these four
    elementwise kernels ~17 us)."""
    return x * 0.5 * (1.0 + torch.erf(x * _SQRT_HALF))
