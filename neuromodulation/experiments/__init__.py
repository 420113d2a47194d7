"""Classic plasticity experiments built on the rules of :mod:`neuromodulation`:
:mod:`.distal_reward` (Izhikevich 2007, dopamine-modulated STDP in a spiking network)."""
