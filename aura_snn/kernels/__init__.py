"""Fast multi-step implementations, each tested for equality against :mod:`aura_snn.functional`.

Backends: ``cpu`` (numba-compiled time loop, parallel over neurons) and ``gpu``
(Triton on CUDA). :func:`lif_multistep` and :func:`cuba_multistep` dispatch on the
input's device.
"""

from .fused import cuba_multistep, lif_multistep

__all__ = ["cuba_multistep", "lif_multistep"]
