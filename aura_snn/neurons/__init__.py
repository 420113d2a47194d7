"""Neuron modules over :mod:`aura_snn.functional`: ``LIF``, ``CubaLIF``, ``ALIF``."""

from .alif import ALIF
from .base import BACKENDS, SpikingNeuron, detach_state
from .cuba import CubaLIF
from .lif import LIF

__all__ = ["ALIF", "BACKENDS", "CubaLIF", "LIF", "SpikingNeuron", "detach_state"]
