"""Neuromorphic targets and measurement: NIR, Lava (Loihi 2), energy tables.

Sees only :mod:`aura_snn` graphs. Export and energy arrive in a later issue; for now
this package holds the Lava import shim for Python 3.11 (:mod:`hardware.lava_compat`).
"""
