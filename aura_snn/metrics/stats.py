r"""Spike statistics on time-major spike tensors ``[T, ...]`` (0/1 values).

The definitions are those of :mod:`aura_snn.metrics.events` (event lists ``(t, i)``,
for runs too long for a raster), written once there: :func:`cv_isi` and
:func:`synchrony` turn the raster into events and call them; :func:`firing_rates`
and :func:`population_rate` sum the raster in torch (so they stay differentiable and
on the raster's device) and divide with the same helpers.

=================== =========================================================== ========
function            definition                                                  unit
=================== =========================================================== ========
:func:`spike_counts` :math:`n_i = \sum_t S_i[t]`                                 spikes
:func:`firing_rates` :math:`r_i = n_i / (T \Delta t)` (mean over batch)           Hz
:func:`sparsity`     fraction of zero entries, :math:`1 - \bar S`                  —
:func:`cv_isi`       :math:`\sigma_\text{ISI} / \mu_\text{ISI}` per neuron with ≥ 3 spikes —
:func:`synchrony`    Golomb's :math:`\chi = \sqrt{\sigma^2_{\bar V} / \overline{\sigma^2_{V_i}}}`
                     on spike counts in bins of ``bin_steps`` (0 asynchronous, 1 synchronous) —
:func:`population_rate` :math:`\bar r(b) = \sum_i c_i(b) / (N B \Delta t)`           Hz
=================== =========================================================== ========
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._checks import check_int, check_min_ndim, check_positive, check_tensor
from . import events


def _spikes(name: str, spikes: torch.Tensor) -> torch.Tensor:
    check_tensor(name, spikes)
    check_min_ndim(name, spikes, 1, "[T, ...]")
    return spikes


def spike_counts(spikes: torch.Tensor) -> torch.Tensor:
    """Spikes per neuron summed over time: ``[T, ...] -> [...]``."""
    return _spikes("spikes", spikes).sum(0)


def firing_rates(spikes: torch.Tensor, dt: float, batch_dims: int = 1) -> torch.Tensor:
    """Mean firing rate (Hz) per neuron of ``[T, B.., N..]`` spikes, averaged over the
    ``batch_dims`` leading dimensions after time; ``dt`` in seconds."""
    check_positive("dt", dt, "s")
    s = _spikes("spikes", spikes)
    counts = s.sum(0)
    for _ in range(min(batch_dims, counts.dim())):
        counts = counts.mean(0)
    return events.rate_from_counts(counts, s.shape[0], dt)


def sparsity(spikes: torch.Tensor) -> float:
    """Fraction of entries that are zero (1 = silent)."""
    s = _spikes("spikes", spikes)
    return 1.0 - float(s.count_nonzero()) / max(1, s.numel())


def spike_times(spikes: torch.Tensor, dt: float) -> list[np.ndarray]:
    """Spike times (s) of each neuron of a ``[T, N]`` raster, as a list of arrays."""
    s = _spikes("spikes", spikes)
    if s.dim() != 2:
        s = s.reshape(s.shape[0], -1)
    t_idx, n_idx = torch.nonzero(s, as_tuple=True)
    t = t_idx.cpu().numpy() * dt
    n = n_idx.cpu().numpy()
    order = np.argsort(n, kind="stable")
    t, n = t[order], n[order]
    bounds = np.searchsorted(n, np.arange(s.shape[1] + 1))
    return [t[bounds[i]:bounds[i + 1]] for i in range(s.shape[1])]


def _events(spikes: torch.Tensor) -> tuple[np.ndarray, np.ndarray, int, int]:
    """``(t, i, N, T)`` of the spikes (nonzero entries) of a ``[T, ...]`` raster, with the
    dimensions after time flattened into ``N`` neurons."""
    s = _spikes("spikes", spikes).detach().reshape(spikes.shape[0], -1)
    t, i = (x.cpu().numpy() for x in torch.nonzero(s, as_tuple=True))
    return t, i, s.shape[1], s.shape[0]


def cv_isi(spikes: torch.Tensor, dt: float, min_spikes: int = 3) -> np.ndarray:
    """Coefficient of variation of inter-spike intervals per neuron (``[T, N]`` raster).

    Neurons with fewer than ``min_spikes`` spikes give NaN. A Poisson process has
    CV 1, a clock 0. The definition is :func:`aura_snn.metrics.events.cv_isi` (CV is
    dimensionless: ``dt``, in seconds, is checked but does not change it).
    """
    check_positive("dt", dt, "s")
    t, i, n, _ = _events(spikes)
    if n == 0:
        return np.zeros(0)
    return events.cv_isi(t, i, n, min_spikes)


def population_rate(spikes: torch.Tensor, dt: float, bin_steps: int = 1) -> torch.Tensor:
    """Population rate (Hz per neuron) in bins of ``bin_steps`` steps of a ``[T, N]`` raster."""
    check_positive("dt", dt, "s")
    bin_steps = check_int("bin_steps", bin_steps, minimum=1)
    s = _spikes("spikes", spikes).reshape(spikes.shape[0], -1)
    nb = s.shape[0] // bin_steps
    binned = s[: nb * bin_steps].reshape(nb, bin_steps, -1).sum(1)
    return events.population_rate_from_counts(binned.sum(1), s.shape[1], bin_steps, dt)


def synchrony(spikes: torch.Tensor, bin_steps: int = 10) -> float:
    """Golomb's synchrony measure chi on spike counts binned in ``bin_steps`` steps.

    :math:`\\chi^2 = \\operatorname{Var}_t(\\bar n(t)) / \\operatorname{mean}_i
    \\operatorname{Var}_t(n_i(t))`; NaN with fewer than 2 bins or when no neuron
    varies. The definition is :func:`aura_snn.metrics.events.synchrony`.
    """
    bin_steps = check_int("bin_steps", bin_steps, minimum=1)
    t, i, n, steps = _events(spikes)
    if n == 0 or steps == 0:
        return math.nan
    return events.synchrony(t, i, n, steps, bin_steps)
