"""Fast multi-step implementations, each tested for equality against :mod:`aura_snn.functional`.

Backends: ``cpu`` (numba-compiled time loop, parallel over neurons) and ``gpu``
(Triton on CUDA). :func:`lif_multistep` and :func:`cuba_multistep` dispatch on the
input's device. Their ``[T, M]`` CPU buffers are recycled between calls;
:func:`set_pool_limit` bounds the free ones kept (bytes), :func:`empty_cache`
hands them back to the system.
"""

from ._memory import empty_cache, set_pool_limit
from .fused import cuba_multistep, lif_multistep

__all__ = ["cuba_multistep", "lif_multistep", "empty_cache", "set_pool_limit"]
