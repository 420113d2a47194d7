r"""Spike statistics from event lists ``(t, i)`` — for long runs a raster would not fit.

The definitions are those of :mod:`aura_snn.metrics.stats` (which works on dense
rasters); ``tests/graph/test_summary.py`` checks both give the same numbers.

=================== ===========================================================
:func:`rates`       :math:`r_i = n_i / (T \Delta t)` (Hz)
:func:`cv_isi`      :math:`\sigma_\text{ISI}/\mu_\text{ISI}` per neuron with at least
                    ``min_spikes`` spikes (population std, NaN otherwise)
:func:`synchrony`   Golomb's :math:`\chi` on counts in bins of ``bin_steps`` steps
                    (the last partial bin is dropped)
:func:`population_rate` mean rate per neuron in bins (Hz)
=================== ===========================================================

``t`` are step indices, ``i`` neuron indices (``0 <= i < n``), ``steps`` the run length.
numpy only.
"""

from __future__ import annotations

import math

import numpy as np


def rates(i: np.ndarray, n: int, steps: int, dt: float) -> np.ndarray:
    """Firing rate per neuron (Hz), ``[n]``."""
    return np.bincount(np.asarray(i, np.int64), minlength=n)[:n] / (steps * dt)


def cv_isi(t: np.ndarray, i: np.ndarray, n: int, min_spikes: int = 3) -> np.ndarray:
    """CV of the inter-spike intervals of each neuron, ``[n]`` (NaN below ``min_spikes``)."""
    t = np.asarray(t, np.float64)
    i = np.asarray(i, np.int64)
    out = np.full(n, math.nan)
    if t.size < 2:
        return out
    order = np.lexsort((t, i))
    t, i = t[order], i[order]
    same = i[1:] == i[:-1]
    isi = (t[1:] - t[:-1])[same]
    who = i[1:][same]
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
    """Golomb's synchrony :math:`\\chi` of ``n`` neurons (NaN if < 2 bins or no variance)."""
    nb = steps // bin_steps
    if nb < 2 or n < 1:
        return math.nan
    t = np.asarray(t, np.int64)
    i = np.asarray(i, np.int64)
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
    """``(bin start times in s, rate in Hz per neuron)`` in bins of ``bin_steps`` steps
    (the last partial bin is dropped)."""
    nb = max(1, steps // bin_steps)
    t = np.asarray(t, np.int64)
    t = t[t < nb * bin_steps]
    counts = np.bincount(t // bin_steps, minlength=nb)[:nb]
    return np.arange(nb) * bin_steps * dt, counts / (n * bin_steps * dt)


def isis(t: np.ndarray, i: np.ndarray, dt: float) -> np.ndarray:
    """All inter-spike intervals (s), pooled over neurons."""
    t = np.asarray(t, np.float64)
    i = np.asarray(i, np.int64)
    if t.size < 2:
        return np.zeros(0)
    order = np.lexsort((t, i))
    t, i = t[order], i[order]
    same = i[1:] == i[:-1]
    return (t[1:] - t[:-1])[same] * dt


def region_summary(t: np.ndarray, i: np.ndarray, n: int, steps: int, dt: float,
                   bin_steps: int | None = None) -> dict[str, float | int | None]:
    """Rates, CV of ISI and synchrony of one region (JSON-ready)."""
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


__all__ = ["cv_isi", "isis", "population_rate", "rates", "region_summary", "synchrony"]
