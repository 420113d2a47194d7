r"""Integer input currents of the graph twin's projections, computed exactly and fast.

For a projection with integer weights ``W`` (Lava layout ``[n_post, n_pre]``), weight
exponent ``e`` and delay groups ``W_k`` (the weights whose delay is ``k``, arriving
``l_k`` steps late: :meth:`hardware._graph_twin.TwinProjection.groups`), the current
into the post-synaptic LIF from activity ``s [T, B, n_pre]`` is (Lava's ``Dense`` /
``Sparse`` / ``DelaySparse``, dimensionless integers)

.. math:: a[t] = \sum_k \mathrm{shift}_e(\mathrm{round}(s[t - l_k]\, W_k^\top))

(:func:`hardware._loihi_fixed.shift`). :func:`float_current` evaluates it in float64.
:func:`integer_current` gives the same integers faster when ``s`` is integer-valued
(spikes): if :math:`\max|s| \cdot \max_i \sum_j |W_{k,ij}| < 2^{24}`, every product and
partial sum of the matrix product is an integer below :math:`2^{24}`, which float32
represents exactly in any summation order; so the product runs in float32, as a CSR
matrix for a group with at most :data:`CSR_DENSITY` non-zero weights. Otherwise it falls
back to :func:`float_current`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import NamedTuple

import torch

from ._loihi_fixed import shift

Groups = list[tuple[int, torch.Tensor]]
F32_EXACT = 2.0**24  # integers below this in magnitude add exactly in float32
CSR_DENSITY = 0.25  # a delay group this sparse multiplies as CSR


class Float32Group(NamedTuple):
    """One delay group ready for float32: ``op`` is ``W_k`` as CSR (``csr``) or ``W_k^T``
    dense; ``bound`` is :math:`\\max_i \\sum_j |W_{k,ij}|`."""

    lag: int
    op: torch.Tensor
    csr: bool
    bound: float


def float_current(s: torch.Tensor, groups: Groups, e: int) -> torch.Tensor:
    """The current (module docstring) in float64, rounded: int64 ``[T, B, n_post]``."""
    steps = s.shape[0]
    out = torch.zeros(*s.shape[:-1], groups[0][1].shape[0], dtype=torch.long, device=s.device)
    for lag, w in groups:
        if lag < steps:
            out[lag:] += shift(torch.round(s[:steps - lag] @ w.to(s.device).T).long(), e)
    return out


def float32_groups(groups: Groups, device: torch.device) -> list[Float32Group]:
    """``groups`` (integer-valued float64 ``W_k``) as :class:`Float32Group` on ``device``."""
    out = []
    for lag, w in groups:
        csr = bool((w != 0).double().mean() <= CSR_DENSITY)
        with warnings.catch_warnings():  # torch: "sparse CSR support is in beta"
            warnings.simplefilter("ignore", UserWarning)
            op = w.float().to_sparse_csr() if csr else w.T.float().contiguous()
        out.append(Float32Group(lag, op.to(device), csr, float(w.abs().sum(1).max())))
    return out


def integer_current(s: torch.Tensor, groups: Groups,
                    prepared: Callable[[torch.device], list[Float32Group]],
                    e: int) -> torch.Tensor:
    """The current (module docstring) from ``s`` (bool spikes or real values ``[T, B,
    n_pre]``): in float32 when exact (``prepared(device)`` gives the groups ready for
    it), else :func:`float_current`; int64 ``[T, B, n_post]``, the same integers."""
    if s.dtype == torch.bool:
        m, integral = 1.0, True
    else:
        a = s.abs()
        m = float(a.max()) if a.numel() else 0.0
        integral = m < float("inf") and (not a.numel() or float(a.frac().max()) == 0.0)
    ops = prepared(s.device) if integral else []
    if not integral or any(m * g.bound >= F32_EXACT for g in ops):
        return float_current(s.double(), groups, e)
    steps, batch, n_pre = s.shape
    out = torch.zeros(steps, batch, groups[0][1].shape[0], dtype=torch.long, device=s.device)
    sf = s.float()
    for g in ops:
        if g.lag < steps:
            x = sf[:steps - g.lag].reshape(-1, n_pre)
            y = (g.op @ x.T).T if g.csr else x @ g.op
            out[g.lag:] += shift(y.reshape(steps - g.lag, batch, -1).long(), e)
    return out
