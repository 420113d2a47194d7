"""The hippocampal transformer: attention core, spiking FFN blocks, episodic memory.

Built in a later issue on :mod:`aura_snn` and :mod:`neuromodulation`.
"""
