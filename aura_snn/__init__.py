"""aura-snn: spiking regions, hybrid ANN-SNN training, neuromorphic export and energy.

The core package. It knows nothing of transformers, plasticity rules or hardware
targets (see ``shared/DESIGN.md``); ``neuromodulation``, ``hybrid`` and ``hardware``
build on it.
"""

from __future__ import annotations

import os as _os

# Large CPU tensors (spike trains, saved membranes) are fresh allocations every
# forward/backward; glibc serves them by mmap, and first-touch page faults cost more
# than our fused kernels themselves (~50 ms per 128 MB here). PyTorch can align such
# allocations to 2 MB and ask for transparent huge pages, which cuts that to ~10 ms.
# Its switch is read once, at the first allocation of 2 MB or more, so it is set here
# (unless the user chose otherwise) before torch allocates anything large.
_os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

__version__ = "0.1.0"

from . import functional, kernels, neurons  # noqa: E402
from .neurons import ALIF, LIF, CubaLIF, detach_state  # noqa: E402

__all__ = ["ALIF", "LIF", "CubaLIF", "detach_state", "functional", "kernels", "neurons"]
