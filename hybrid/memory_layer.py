r"""Episodic memory in the loop: one-shot writes of salient states, top-k retrieval, attention.

Each layer :math:`\ell` in ``config.memory_layers`` owns an
:class:`aura_snn.memory.EpisodicMemory` (cosine metric, centroid/IVF index once it
holds ``train_min`` entries, exact scan before). Let :math:`x_t = \mathrm{LN}_1(h_t)`
be the normed input of the layer's attention at token :math:`t`.

**Write** (only while :attr:`LayerMemory.writing`): the memory of token :math:`t` is
the pair *what came before -> what came*, key :math:`x_{t-1}`, value :math:`m_t x_t`
(the previous token of the sequence, carried across KV-cache calls in
:attr:`hybrid.model.KVCache.memory_prev`). Its novelty is
:math:`\nu_t = 1 - \max_j \cos(x_{t-1}, \kappa_j)` over the keys :math:`\kappa_j` already
stored and the earlier candidates of the same call, its salience
:math:`s_t = \sigma(k_a(|r| + \nu_t - \theta_a))` and write strength
:math:`m_t = m_0 + (1 - m_0)s_t` (:class:`neuromodulation.gates.Amygdala`, reward
:math:`r = 0` unless given). Only tokens with :math:`s_t \ge` ``memory_write_threshold``
are written, in one shot, with importance :math:`m_t`. Writes are detached (no gradient
flows into stored memories); every batch element writes into the one store.

**Retrieve and attend** (while :attr:`LayerMemory.reading` and the store is not empty):
the query :math:`x_p` fetches its top-``k`` memories :math:`(v_{pj}, c_{pj})`, value and
cosine score, through the store's index. Memory keys and values are the layer's own
projections of the values, :math:`K^m_{pj} = W_K v_{pj}`, :math:`V^m_{pj} = W_V v_{pj}`
(no rotary phase: a memory has no position), appended to *that query's* keys, with a
learned per-head score bias :math:`\beta_h` (one softmax over context and memories):

.. math::
    a_{pi} \propto \exp\!\big(q_p\cdot k_i/\sqrt{d_h}\big)\;(i \le p), \qquad
    a_{pj}^m \propto \exp\!\big(q_p\cdot K^m_{pj}/\sqrt{d_h} + \beta_h c_{pj}\big),

    y_p = \sum_{i \le p} a_{pi} v_i + \sum_j a^m_{pj} V^m_{pj} .

Retrieval happens before the call's own writes, so a token never retrieves itself.
Shapes: ``q`` ``[B, H, L, d_h]``, context ``k, v`` ``[B, H, P + L, d_h]``, memory
``[B, H, L, k, d_h]``; the cost is :math:`O(L(P + L) + Lk)` per head.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from aura_snn.memory import EpisodicMemory
from neuromodulation.gates import Amygdala

#: initial score bias :math:`\beta_h` (per unit cosine): an exact match (c = 1) starts
#: e^8 ahead of an orthogonal memory, so retrieval order matters from the first step
SCORE_INIT = 8.0


class Retrieved(NamedTuple):
    """Top-k memories of each query: ``states`` ``[B, L, k, d]`` (zeros where missing),
    ``scores`` ``[B, L, k]`` cosine (``-inf`` where missing)."""

    states: torch.Tensor
    scores: torch.Tensor


class LayerMemory(nn.Module):
    """The episodic memory of one layer (module docstring): its store, gate and
    :math:`\\beta_h` (``score_scale`` ``[H]``, learned)."""

    def __init__(self, d_model: int, n_heads: int, top_k: int, write_threshold: float,
                 amygdala: Amygdala | None = None) -> None:
        super().__init__()
        self.d_model, self.top_k, self.write_threshold = d_model, top_k, float(write_threshold)
        self.amygdala = Amygdala() if amygdala is None else amygdala
        self.score_scale = nn.Parameter(torch.full((n_heads,), SCORE_INIT))
        self.writing, self.reading = False, True
        self.reward = 0.0
        self.store = EpisodicMemory(d_model, value_dim=d_model)

    def clear(self, device: torch.device | str | None = None,
              dtype: torch.dtype = torch.float32) -> None:
        """Forget everything: a fresh, empty store on ``device`` with ``dtype``."""
        self.store = EpisodicMemory(self.d_model, value_dim=self.d_model, device=device,
                                    dtype=dtype)

    def retrieve(self, x: torch.Tensor) -> Retrieved | None:
        """Top-k memories of every query ``x`` ``[B, L, d]``; None when not reading or empty."""
        if not self.reading or len(self.store) == 0:
            return None
        B, L, d = x.shape
        res = self.store.search(x.detach().reshape(B * L, d).to(self.store.dtype),
                                self.top_k, touch=False)
        k = res.ids.shape[1]
        states = res.values.to(device=x.device, dtype=x.dtype).reshape(B, L, k, d)
        scores = res.scores.to(device=x.device, dtype=x.dtype).reshape(B, L, k)
        return Retrieved(states, scores.masked_fill(res.ids.reshape(B, L, k) < 0, -math.inf))

    def novelty(self, keys: torch.Tensor) -> torch.Tensor:
        """:math:`\\nu = 1 - \\max\\cos` of each key ``[n, d]`` to the stored keys and to the
        earlier rows of ``keys``; ``[n]``, in [0, 2] (1 for the first key of an empty store)."""
        unit = F.normalize(keys, dim=-1)
        best = torch.full((keys.shape[0],), -1.0, dtype=keys.dtype, device=keys.device)
        if len(self.store):
            res = self.store.search(unit.to(self.store.dtype), 1, exact=True, touch=False)
            best = res.scores[:, 0].to(device=keys.device, dtype=keys.dtype)
        if keys.shape[0] > 1:
            cos = (unit @ unit.T).tril(-1)
            cos = cos.masked_fill(~torch.ones_like(cos, dtype=torch.bool).tril(-1), -1.0)
            best = torch.maximum(best, cos.max(dim=1).values)
        return (1.0 - best).clamp_min(0.0)

    def write(self, x: torch.Tensor, prev: torch.Tensor | None) -> int:
        """Write the salient pairs ``(x_{t-1}, m_t x_t)`` of ``x`` ``[B, L, d]`` (``prev``
        ``[B, d]``: the token before ``x[:, 0]``, or None). Returns how many were written."""
        if not self.writing:
            return 0
        x = x.detach()
        before = x[:, :-1] if prev is None else torch.cat((prev.detach().unsqueeze(1),
                                                             x[:, :-1]), dim=1)
        after = x[:, 1:] if prev is None else x
        if before.shape[1] == 0:
            return 0
        if len(self.store) == 0 and (self.store.device != x.device
                                     or self.store.dtype != x.dtype):
            self.clear(x.device, x.dtype if x.dtype == torch.float64 else torch.float32)
        keys = before.reshape(-1, self.d_model).to(self.store.dtype)
        values = after.reshape(-1, self.d_model).to(self.store.dtype)
        salience = self.amygdala.salience(torch.tensor(float(self.reward)), self.novelty(keys))
        keep = salience >= self.write_threshold
        if not bool(keep.any()):
            return 0
        strength = self.amygdala.floor + (1.0 - self.amygdala.floor) * salience[keep]
        self.store.write(keys[keep], values[keep] * strength.unsqueeze(1),
                         importance=strength.to(torch.float64).cpu())
        return int(keep.sum())


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor,
           k_mem: torch.Tensor, v_mem: torch.Tensor, bias: torch.Tensor,
           dropout_p: float = 0.0) -> torch.Tensor:
    """One softmax over each query's causal context and its own memories (module docstring).

    ``q`` ``[B, H, L, d_h]``, ``k, v`` ``[B, H, P + L, d_h]``, ``allowed`` ``[L, P + L]``
    bool (causal mask), ``k_mem, v_mem`` ``[B, H, L, k, d_h]``, ``bias`` ``[B, H, L, k]``
    (:math:`\\beta_h c_{pj}`, ``-inf`` for missing memories). Returns ``[B, H, L, d_h]``.
    """
    scale = 1.0 / math.sqrt(q.shape[-1])
    ctx = (q @ k.transpose(-1, -2)) * scale
    ctx = ctx.masked_fill(~allowed, -math.inf)
    mem = torch.einsum("bhld,bhlkd->bhlk", q, k_mem) * scale + bias
    p = torch.softmax(torch.cat((ctx, mem), dim=-1), dim=-1)
    if dropout_p:
        p = F.dropout(p, dropout_p)
    n = k.shape[2]
    return p[..., :n] @ v + torch.einsum("bhlk,bhlkd->bhld", p[..., n:], v_mem)


def memories(model: nn.Module) -> dict[int, LayerMemory]:
    """The :class:`LayerMemory` of each memory layer of ``model``, by layer index."""
    return {i: b.memory for i, b in enumerate(model.blocks)
            if getattr(b, "memory", None) is not None}
