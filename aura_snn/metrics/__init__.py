"""Spike statistics and monitors (hooks that never change outputs)."""

from .monitor import Monitor
from .stats import (
    cv_isi,
    firing_rates,
    population_rate,
    sparsity,
    spike_counts,
    spike_times,
    synchrony,
)

__all__ = ["Monitor", "cv_isi", "firing_rates", "population_rate", "sparsity",
           "spike_counts", "spike_times", "synchrony"]
