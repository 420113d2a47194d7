"""Spike statistics and monitors (hooks that never change outputs).

=================== ===========================================================
module              what it holds
=================== ===========================================================
:mod:`.events`      statistics of event lists ``(t, i)``: rates, CV of ISI,
                    Golomb synchrony, population rate, ISIs, ``region_summary``;
                    the one definition of each (numpy only)
:mod:`.stats`       the same statistics on dense ``[T, ...]`` spike tensors
                    (calling :mod:`.events`), plus counts, sparsity, spike times
:mod:`.monitor`     :class:`Monitor`: records neuron modules through hooks
:mod:`.ops`         operation counts of modules (:class:`~.ops.OpCounter`)
:mod:`.graph_ops`   operation counts of graph runs (:class:`GraphOpCounter`)
=================== ===========================================================

The names below are the dense forms; the event forms are ``aura_snn.metrics.events.*``.
They are imported lazily (PEP 562), so ``aura_snn.metrics.events`` loads without torch.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "Monitor": "monitor", "GraphOpCounter": "graph_ops",
    "cv_isi": "stats", "firing_rates": "stats", "population_rate": "stats",
    "sparsity": "stats", "spike_counts": "stats", "spike_times": "stats",
    "synchrony": "stats",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
