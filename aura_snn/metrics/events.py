r"""Spike statistics from event lists ``(t, i)``: the one definition of each statistic.

Long runs are recorded as events, since a raster would not fit: spike ``k`` happened
at step ``t[k]`` in neuron ``i[k]`` (``0 <= i[k] < n``) of a run of ``steps`` steps of
``dt`` seconds. :mod:`aura_snn.metrics.stats` gives the same statistics for dense
``[T, N]`` rasters by calling these functions (CV of ISI and synchrony convert the
raster to events; rates use :func:`rate_from_counts` and
:func:`population_rate_from_counts`), so each formula is written once, here.

========================== ========================================================= ====
function                   definition                                                unit
========================== ========================================================= ====
:func:`rates`              :math:`r_i = n_i / (T \Delta t)`, ``n_i`` spikes of        Hz
                           neuron ``i``, ``T = steps``
:func:`cv_isi`             :math:`\sigma_\text{ISI}/\mu_\text{ISI}` per neuron with   —
                           at least ``min_spikes`` spikes (population std; NaN
                           otherwise); a Poisson process has CV 1, a clock 0
:func:`synchrony`          Golomb's :math:`\chi = \sqrt{\operatorname{Var}_b \bar c(b)  —
                           / \operatorname{mean}_i \operatorname{Var}_b c_i(b)}` on
                           counts ``c_i(b)`` in bins of ``bin_steps`` steps (the last
                           partial bin dropped), :math:`\bar c = \operatorname{mean}_i
                           c_i`; 0 asynchronous, 1 fully synchronous
:func:`population_rate`    :math:`\bar r(b) = \sum_i c_i(b) / (n B \Delta t)` per bin   Hz
                           of ``B = bin_steps`` steps
:func:`isis`               all inter-spike intervals, pooled over neurons              s
:func:`region_summary`     the above for one region, JSON-ready
========================== ========================================================= ====

Variances are population variances (divided by the number of bins or intervals).
numpy only: importing this module does not import torch.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from ..errors import InputValueError, ParameterError, ShapeError


def rate_from_counts(counts: Any, steps: int, dt: float) -> Any:
    r"""Firing rate (Hz) from spike counts over ``steps`` steps of ``dt`` seconds:
    :math:`r = n / (T \Delta t)`.

    ``counts`` may be a number, a numpy array or a torch tensor (the result has its
    type, so a dense raster's rate stays differentiable).
    """
    return counts / (steps * dt)


def population_rate_from_counts(bin_counts: Any, n: int, bin_steps: int, dt: float) -> Any:
    r"""Population rate (Hz per neuron) from the spikes of ``n`` neurons counted in bins
    of ``bin_steps`` steps of ``dt`` seconds: :math:`\bar r = c / (n B \Delta t)`.

    ``bin_counts`` may be a numpy array or a torch tensor (the result has its type).
    """
    return bin_counts / (n * bin_steps * dt)


def _is_int(x: Any, minimum: int) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool) and x >= minimum


def _check_n(n: int) -> None:
    if not _is_int(n, 1):
        raise ParameterError(f"n (neurons) must be an integer >= 1, got {n!r}")


def _check_neurons(i: Any, n: int) -> np.ndarray:
    """``i`` as a flat int64 array with ``0 <= i < n``."""
    _check_n(n)
    i = np.asarray(i)
    if i.ndim != 1:
        raise ShapeError(f"i (neuron of each spike) must be 1-D, got shape {i.shape}")
    if i.size and (int(i.min()) < 0 or int(i.max()) >= n):
        raise InputValueError(f"i (neuron indices) must lie in [0, {n}), got values in "
                              f"[{int(i.min())}, {int(i.max())}]")
    return i.astype(np.int64, copy=False)


def _check_times(t: Any, dtype: type, i: np.ndarray | None = None) -> np.ndarray:
    """``t`` (steps, >= 0) as a flat ``dtype`` array, one entry per entry of ``i``."""
    t = np.asarray(t)
    if t.ndim != 1 or (i is not None and t.shape != i.shape):
        raise ShapeError(f"t and i must be 1-D arrays of one length (one entry per spike), "
                         f"got shapes {t.shape} and {None if i is None else i.shape}")
    if t.size and not float(t.min()) >= 0:
        raise InputValueError(f"t (steps) must be >= 0, got {t.min()!r}")
    return t.astype(dtype, copy=False)


def _check_run(steps: int, dt: float | None = None) -> None:
    if not _is_int(steps, 1):
        raise ParameterError(f"steps (run length) must be an integer >= 1, got {steps!r}")
    if dt is not None and not (isinstance(dt, numbers.Real) and not isinstance(dt, bool)
                               and math.isfinite(dt) and dt > 0):
        raise ParameterError(f"dt must be a finite number > 0 (s), got {dt!r}")


def _check_bin(bin_steps: int) -> None:
    if not _is_int(bin_steps, 1):
        raise ParameterError(f"bin_steps must be an integer >= 1, got {bin_steps!r}")


def rates(i: np.ndarray, n: int, steps: int, dt: float) -> np.ndarray:
    r"""Firing rate of each of ``n`` neurons, ``[n]`` Hz: :math:`r_i = n_i / (T \Delta t)`
    with ``n_i`` the events of neuron ``i``, ``T = steps`` and ``dt`` in seconds."""
    _check_run(steps, dt)
    i = _check_neurons(i, n)
    return rate_from_counts(np.bincount(i, minlength=n), steps, dt)


def _intervals(t: np.ndarray, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inter-spike intervals (steps) and the neuron of each, from unsorted events."""
    order = np.lexsort((t, i))
    t, i = t[order], i[order]
    same = i[1:] == i[:-1]
    return (t[1:] - t[:-1])[same], i[1:][same]


def cv_isi(t: np.ndarray, i: np.ndarray, n: int, min_spikes: int = 3) -> np.ndarray:
    r"""Coefficient of variation of the inter-spike intervals of each neuron, ``[n]``.

    :math:`\mathrm{CV}_i = \sigma_i / \mu_i` of the intervals between consecutive
    spikes of neuron ``i`` (population std); NaN for neurons with fewer than
    ``min_spikes`` spikes or a zero mean interval. Dimensionless, so ``dt`` is not
    needed. A Poisson process has CV 1, a clock 0.
    """
    i = _check_neurons(i, n)
    t = _check_times(t, np.float64, i)
    out = np.full(n, math.nan)
    if t.size < 2:
        return out
    isi, who = _intervals(t, i)
    cnt = np.bincount(who, minlength=n).astype(np.float64)
    s1 = np.bincount(who, weights=isi, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / cnt
        dev = isi - mean[who]
        var = np.bincount(who, weights=dev * dev, minlength=n) / cnt
        cv = np.sqrt(var) / mean
    spikes = np.bincount(i, minlength=n)
    ok = (spikes >= min_spikes) & (mean > 0)
    out[ok] = cv[ok]
    return out


def synchrony(t: np.ndarray, i: np.ndarray, n: int, steps: int, bin_steps: int = 10) -> float:
    r"""Golomb's synchrony :math:`\chi` of ``n`` neurons over a run of ``steps`` steps.

    :math:`\chi^2 = \operatorname{Var}_b(\bar c(b)) / \operatorname{mean}_i
    \operatorname{Var}_b(c_i(b))` with ``c_i(b)`` the spikes of neuron ``i`` in bin
    ``b`` of ``bin_steps`` steps (the last partial bin is dropped) and
    :math:`\bar c(b)` their mean over neurons. NaN with fewer than 2 bins or when no
    neuron's count varies.
    """
    _check_run(steps)
    _check_bin(bin_steps)
    i = _check_neurons(i, n)
    t = _check_times(t, np.int64, i)
    nb = steps // bin_steps
    if nb < 2:
        return math.nan
    keep = t < nb * bin_steps
    b, i = t[keep] // bin_steps, i[keep]
    key = b * n + i
    uniq, cnt = np.unique(key, return_counts=True)
    who = uniq % n
    s1 = np.bincount(who, weights=cnt, minlength=n)
    s2 = np.bincount(who, weights=cnt.astype(np.float64) ** 2, minlength=n)
    var_i = (s2 / nb - (s1 / nb) ** 2).mean()
    pop = np.bincount(b, minlength=nb)[:nb] / n
    if var_i <= 0:
        return math.nan
    return float(math.sqrt(pop.var() / var_i))


def population_rate(t: np.ndarray, n: int, steps: int, dt: float, bin_steps: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    r"""Population rate of ``n`` neurons in bins of ``bin_steps`` steps of ``dt`` seconds.

    Returns ``(bin start times [nb] s, rate [nb] Hz per neuron)`` with
    :math:`\bar r(b) = c(b) / (n B \Delta t)`, ``c(b)`` the events in bin ``b``.
    ``nb = steps // bin_steps`` bins (the last partial bin is dropped), at least one.
    """
    _check_run(steps, dt)
    _check_bin(bin_steps)
    _check_n(n)
    t = _check_times(t, np.int64)
    nb = max(1, steps // bin_steps)
    t = t[t < nb * bin_steps]
    counts = np.bincount(t // bin_steps, minlength=nb)[:nb]
    return (np.arange(nb) * bin_steps * dt,
            population_rate_from_counts(counts, n, bin_steps, dt))


def isis(t: np.ndarray, i: np.ndarray, dt: float) -> np.ndarray:
    """All inter-spike intervals (s), pooled over neurons (``dt`` in seconds)."""
    _check_run(1, dt)
    i = np.asarray(i)
    t = _check_times(t, np.float64, i)
    if t.size < 2:
        return np.zeros(0)
    isi, _ = _intervals(t, i.astype(np.int64, copy=False))
    return isi * dt


def region_summary(t: np.ndarray, i: np.ndarray, n: int, steps: int, dt: float,
                   bin_steps: int | None = None) -> dict[str, float | int | None]:
    """Rates, CV of ISI and synchrony of one region of ``n`` neurons (JSON-ready).

    ``bin_steps`` is the synchrony bin (default: the steps in 1 ms, at least one).
    Keys: ``neurons``, ``spikes``, ``rate_hz`` and ``rate_hz_std`` (over neurons, Hz),
    ``active_fraction`` (neurons with a spike), ``cv_isi_mean`` (over neurons with a
    defined CV) and ``cv_isi_neurons``, ``synchrony_chi`` and ``synchrony_bin_s`` (s).
    Undefined values are ``None``.
    """
    bin_steps = bin_steps or max(1, int(round(1e-3 / dt)))
    r = rates(i, n, steps, dt)
    cv = cv_isi(t, i, n)
    chi = synchrony(t, i, n, steps, bin_steps)

    def f(x: float) -> float | None:
        return None if not math.isfinite(x) else float(x)
    return {
        "neurons": int(n), "spikes": int(np.asarray(i).size),
        "rate_hz": f(float(r.mean())), "rate_hz_std": f(float(r.std())),
        "active_fraction": f(float((r > 0).mean())),
        "cv_isi_mean": f(float(np.nanmean(cv))) if np.isfinite(cv).any() else None,
        "cv_isi_neurons": int(np.isfinite(cv).sum()),
        "synchrony_chi": f(chi), "synchrony_bin_s": bin_steps * dt,
    }


__all__ = ["cv_isi", "isis", "population_rate", "population_rate_from_counts", "rate_from_counts",
           "rates", "region_summary", "synchrony"]
