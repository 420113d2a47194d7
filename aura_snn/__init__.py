"""aura-snn: spiking regions, hybrid ANN-SNN training, neuromorphic export and energy.

The core package. It knows nothing of transformers, plasticity rules or hardware
targets (see ``shared/DESIGN.md``); ``neuromodulation``, ``hybrid`` and ``hardware``
build on it.
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import functional, kernels, neurons  # noqa: E402
from .neurons import ALIF, LIF, CubaLIF, detach_state  # noqa: E402

__all__ = ["ALIF", "LIF", "CubaLIF", "detach_state", "functional", "kernels", "neurons"]
