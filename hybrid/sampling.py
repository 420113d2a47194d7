r"""Next-token selection: repetition penalty, temperature, top-k, nucleus, typical, greedy.

Every filter is a pure function of a logits tensor ``[..., V]`` (natural-log units,
unnormalised) that returns logits of the same shape with the excluded tokens set to
:math:`-\infty`; probabilities are :math:`p = \mathrm{softmax}(\ell)` over the last axis.
Each keeps at least one token. :func:`select` applies them in this order:

1. repetition penalty :math:`\theta` (Keskar et al. 2019): for every token already in the
   context, :math:`\ell \leftarrow \ell/\theta` if :math:`\ell > 0` else :math:`\ell\,\theta`;
2. temperature :math:`\tau`: :math:`\ell \leftarrow \ell/\tau` (:math:`\tau = 0`: greedy,
   the arg-max, first index on ties);
3. top-k: keep tokens whose logit is at least the :math:`k`-th largest (ties kept);
4. nucleus, top-p (Holtzman et al. 2020): sort by :math:`p` descending and keep the
   smallest prefix whose mass is :math:`\ge p_\text{top}`;
5. typical (Meister et al. 2023): with the entropy :math:`H = -\sum_i p_i \ln p_i` (nats),
   sort tokens by :math:`|-\ln p_i - H|` ascending and keep the smallest prefix whose
   mass is :math:`\ge p_\text{typ}`;

then draw from the renormalised distribution with the given ``torch.Generator``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from aura_snn._checks import check_in_range, check_int, check_nonnegative, check_positive
from aura_snn.errors import ShapeError


def _check_logits(logits: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point() \
            or logits.dim() < 1 or logits.shape[-1] == 0:
        raise ShapeError("logits must be a floating tensor [..., V] with V >= 1")


def repetition_penalty(logits: torch.Tensor, previous: Iterable[int], penalty: float
                       ) -> torch.Tensor:
    """Penalise the tokens in ``previous`` (step 1 of the module docstring); ``penalty`` > 0,
    1 is off. ``logits`` ``[V]``."""
    _check_logits(logits)
    check_positive("repetition_penalty", penalty)
    if penalty == 1.0:
        return logits
    seen = sorted({int(i) for i in previous})
    if not seen:
        return logits
    idx = torch.tensor(seen, dtype=torch.long, device=logits.device)
    sel = logits.index_select(-1, idx)
    out = logits.clone()
    out.index_copy_(-1, idx, torch.where(sel > 0, sel / penalty, sel * penalty))
    return out


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the tokens whose logit is >= the ``k``-th largest (ties kept), ``k`` >= 1."""
    _check_logits(logits)
    k = check_int("top_k", k, minimum=1)
    if k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, -math.inf)


def _keep_prefix_mass(logits: torch.Tensor, order: torch.Tensor, mass: float) -> torch.Tensor:
    """Keep the smallest prefix of ``order`` (indices along the last axis) whose
    probability mass is >= ``mass``."""
    probs = torch.softmax(logits, dim=-1).gather(-1, order)
    before = torch.cumsum(probs, dim=-1) - probs            # mass of the tokens ahead
    drop_sorted = before >= mass
    drop_sorted[..., 0] = False                              # keep at least one
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, -math.inf)


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter: the smallest most-probable set with mass >= ``p``, ``p`` in (0, 1]."""
    _check_logits(logits)
    check_in_range("top_p", p, 0.0, 1.0, low_inclusive=False)
    if p >= 1.0:
        return logits
    order = torch.argsort(logits, dim=-1, descending=True, stable=True)
    return _keep_prefix_mass(logits, order, p)


def typical_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Locally typical filter (module docstring, step 5), ``p`` in (0, 1]."""
    _check_logits(logits)
    check_in_range("typical_p", p, 0.0, 1.0, low_inclusive=False)
    if p >= 1.0:
        return logits
    logp = torch.log_softmax(logits, dim=-1)
    probs = logp.exp()
    entropy = -(probs * torch.where(probs > 0, logp, torch.zeros_like(logp))).sum(-1,
                                                                                  keepdim=True)
    deviation = torch.where(probs > 0, (-logp - entropy).abs(), torch.full_like(logp, math.inf))
    order = torch.argsort(deviation, dim=-1, stable=True)
    return _keep_prefix_mass(logits, order, p)


def select(logits: torch.Tensor, *, previous: Iterable[int] = (), temperature: float = 1.0,
           top_k: int | None = None, top_p: float | None = None,
           typical_p: float | None = None, repetition: float = 1.0,
           generator: torch.Generator | None = None) -> int:
    """The next token id from ``logits`` ``[V]`` (module docstring for the order);
    ``temperature`` >= 0 (0: greedy, the filters then do not matter)."""
    _check_logits(logits)
    if logits.dim() != 1:
        raise ShapeError(f"logits must be [V] for one next token, got {tuple(logits.shape)}")
    check_nonnegative("temperature", temperature)
    scores = repetition_penalty(logits.double(), previous, repetition)
    if temperature == 0:
        return int(torch.argmax(scores))
    scores = scores / temperature
    if top_k is not None:
        scores = top_k_filter(scores, top_k)
    if top_p is not None:
        scores = top_p_filter(scores, top_p)
    if typical_p is not None:
        scores = typical_filter(scores, typical_p)
    probs = torch.softmax(scores, dim=-1)
    return int(torch.multinomial(probs.cpu(), 1, generator=generator))
