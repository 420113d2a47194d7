"""Plasticity and neuromodulators acting on :mod:`aura_snn` projections.

Built in a later issue: rules read pre/post traces of a projection and write weight
updates outside autograd.
"""
