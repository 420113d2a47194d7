"""Fast multi-step implementations, each tested for equality against :mod:`aura_snn.functional`.

Backends: ``cpu`` (numba-compiled time loop, parallel over neurons) and ``gpu``
(Triton on CUDA). :func:`lif_multistep` and :func:`cuba_multistep` dispatch on the
input's device. Their ``[T, M]`` CPU buffers are recycled between calls;
:func:`empty_cache` hands the free ones back to the allocator.
"""

from ._memory import empty_cache
from .fused import cuba_multistep, lif_multistep

__all__ = ["cuba_multistep", "lif_multistep", "empty_cache"]
