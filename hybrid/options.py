r"""The model options, each a config switch off by default (:class:`hybrid.config.HybridConfig`).

* ``thalamic_gate`` — :class:`ThalamicGate` on input embeddings ``e`` ``[B, L, d]``:
  salience :math:`s_p = \sigma(w\cdot e_p + b)`, gate
  :math:`g_p = \sigma(k_t(s_p - \theta_t))` (:class:`neuromodulation.gates.Thalamus`),
  :math:`e'_p = g_p e_p`.
* ``place_layers`` — :class:`PlaceCodeLayer` after a block: place cells with learned
  centres :math:`c_i` over the normed state, hard k-WTA code
  (:func:`aura_snn.cells.place.place_code`), read back into the residual stream:
  :math:`h \leftarrow h + W_o\, r(\mathrm{LN}(h)) / r_\max`.
* ``plastic_layers`` — :class:`PlasticBranch` in a block: a
  :class:`neuromodulation.plastic.PlasticLinear` run over the positions of each
  sequence as time (its Hebbian trace is the sequence's fast memory),
  :math:`h \leftarrow h + W_o \tanh(i_p)`, :math:`i_p = \mathrm{LN}(h_p)(W + \alpha\odot H_p)`.
* ``mod_layers`` — :class:`MoDBlock`: mixture-of-depths routing (Raposo et al. 2024).
  A learned router :math:`r_p = w\cdot h_p` picks, per sequence, the
  :math:`n = \lceil c L\rceil` tokens of largest :math:`r_p`; only they go through the
  block (attending among themselves, causally, at their own rotary positions); the
  others pass by the residual. The block's change reaches the selected tokens scaled by
  :math:`1 + \sigma(r_p) - \mathrm{sg}[\sigma(r_p)]` (value 1: with ``c = 1`` the output
  is the plain block's; the router gets the gradient of :math:`\sigma(r_p)`).
* ``endocrine_lr`` — :class:`EndocrineLR`, updated by the training loop each step:
  hormone :math:`h` follows the stress (the loss, clipped at 0) with
  :class:`neuromodulation.gates.Endocrine`, and the scheduled learning rate is
  multiplied by :math:`f = e^{\beta_\eta h}` (clipped): :math:`\eta_s = \eta(s) f`.

Routing and the plastic trace look along the whole sequence, so models with
``mod_layers`` or ``plastic_layers`` refuse a KV cache (generate with ``use_cache=False``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from aura_snn.cells.place import PlaceParams, place_code
from neuromodulation.gates import Endocrine, Thalamus
from neuromodulation.plastic import PlasticLinear


class ThalamicGate(nn.Module):
    """Gate input embeddings ``[B, L, d]`` by a learned salience (module docstring);
    starts nearly open (:math:`b = 3`: :math:`s = 0.95`, :math:`g = 0.99`)."""

    def __init__(self, d_model: int, thalamus: Thalamus | None = None) -> None:
        super().__init__()
        self.thalamus = Thalamus() if thalamus is None else thalamus
        self.salience = nn.Linear(d_model, 1)
        nn.init.zeros_(self.salience.weight)
        nn.init.constant_(self.salience.bias, 3.0)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(self.salience(e)).squeeze(-1)
        return e * self.thalamus.gate(s).unsqueeze(-1)


class PlaceCodeLayer(nn.Module):
    """Place-cell sparse code of the hidden state, added back (module docstring).

    ``n`` cells with centres ``[n, d]`` drawn from N(0, 1) (the scale of a LayerNorm
    output), field width :math:`\\sigma = \\sqrt{d}`, ``round(sparsity n)`` winners."""

    def __init__(self, d_model: int, n: int, sparsity: float, eps: float = 1e-5) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model, eps=eps)
        self.centres = nn.Parameter(torch.randn(n, d_model))
        self.params = PlaceParams(sigma=math.sqrt(d_model), r_max=1.0, sparsity=sparsity)
        self.out = nn.Linear(n, d_model, bias=False)
        nn.init.zeros_(self.out.weight)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        rates = place_code(self.norm(h), self.centres.to(h.dtype), self.params).rates
        return h + self.out(rates / self.params.r_max)


class PlasticBranch(nn.Module):
    """A Hebbian plastic branch over the positions of each sequence (module docstring)."""

    def __init__(self, d_model: int, eta: float, eps: float = 1e-5) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model, eps=eps)
        self.plastic = PlasticLinear(d_model, d_model, rule="hebb", eta=eta, alpha_init=0.1)
        self.out = nn.Linear(d_model, d_model, bias=False)
        nn.init.zeros_(self.out.weight)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        x = self.norm(h).transpose(0, 1)  # [L, B, d]: positions are the plastic layer's time
        y = self.plastic.run(x, post=torch.tanh).output
        return h + self.out(y.transpose(0, 1))


class MoDBlock(nn.Module):
    """Mixture-of-depths router of one block (module docstring) at capacity ``c``; the
    block stays in ``model.blocks`` (one state-dict entry per weight)."""

    def __init__(self, d_model: int, capacity: float) -> None:
        super().__init__()
        self.capacity = float(capacity)
        self.router = nn.Linear(d_model, 1, bias=False)
        self.last_selected: torch.Tensor | None = None  #: ``[B, n]`` positions of the last call

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None,
                run: Callable[..., tuple]) -> torch.Tensor:
        """``x`` ``[B, L, d]``; ``run(x_sel, rope_sel)`` calls the block on ``[1, n, d]``."""
        B, L, _ = x.shape
        n = math.ceil(self.capacity * L - 1e-9)
        r = self.router(x).squeeze(-1)
        idx = torch.topk(r, n, dim=1).indices.sort(dim=1).values  # [B, n], in order
        self.last_selected = idx
        out = x.clone()
        for b in range(B):
            sel = idx[b]
            rope_b = None if rope is None else (rope[0][sel], rope[1][sel])
            y = run(x[b:b + 1, sel], rope_b)[0]
            w = torch.sigmoid(r[b, sel]).unsqueeze(-1)
            out[b, sel] = x[b, sel] + (y - x[b, sel]) * (1.0 + w - w.detach())
        return out


class EndocrineLR:
    """Endocrine learning-rate factor :math:`f = e^{\\beta_\\eta h}` (clipped; module
    docstring). :meth:`update` advances the hormone :math:`h` by the stress (the loss,
    clipped at 0) and returns the new factor, kept in ``scale`` (1 before any update).
    The training loop multiplies its scheduled rate by it: :math:`\\eta_s = \\eta(s) f`.
    Standalone, ``hook(optimizer, loss, dt=1.0)`` updates and sets each group's rate to
    its rate at the first call times the factor."""

    def __init__(self, endocrine: Endocrine | None = None) -> None:
        self.endocrine = Endocrine() if endocrine is None else endocrine
        self.level = 0.0
        self.scale = 1.0
        self.base_lrs: list[float] | None = None

    def update(self, loss: float, dt: float = 1.0) -> float:
        """Advance :math:`h` by one step of ``dt`` seconds under stress ``max(loss, 0)``."""
        self.level = float(self.endocrine.step(self.level, max(float(loss), 0.0), dt))
        self.scale = float(self.endocrine.lr_scale(self.level))
        return self.scale

    def restore(self, level: float) -> None:
        """Set :math:`h` (a resumed run's saved level) and its factor."""
        self.level = float(level)
        self.scale = float(self.endocrine.lr_scale(self.level))

    def __call__(self, optimizer: torch.optim.Optimizer, loss: float, dt: float = 1.0) -> float:
        if self.base_lrs is None:
            self.base_lrs = [float(g["lr"]) for g in optimizer.param_groups]
        scale = self.update(loss, dt)
        for g, lr0 in zip(optimizer.param_groups, self.base_lrs, strict=True):
            g["lr"] = lr0 * scale
        return scale
