r"""Counter-based random numbers shared by the torch stepper and the compiled engine.

A Poisson generator must give the same spikes whichever backend runs the graph, so
randomness is a pure function of ``(key, step, batch, neuron)`` rather than a
stateful stream: the uniform number of neuron ``j`` of batch element ``b`` in step
``t`` of a region with ``n`` neurons and batch ``B`` is

.. math::
    U = 2^{-53} \left\lfloor \operatorname{splitmix64}\big(\kappa + (tB + b)\,n + j\big)
        / 2^{11} \right\rfloor \in [0, 1)

with 64-bit wrapping arithmetic and :math:`\kappa = \operatorname{splitmix64}(\text{seed})`
(Steele, Lea & Flood 2014, the finaliser of ``SplittableRandom``). The torch version
(int64 tensors, logical shifts emulated) and the numba version in
:mod:`aura_snn.graph.engine` (uint64) return identical values, which
``tests/graph/test_engine.py`` checks. There is no generator state to save: a run
resumed from a saved :class:`~aura_snn.graph.GraphState` continues the same sequence.
"""

from __future__ import annotations

GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
MASK64 = (1 << 64) - 1


def splitmix64(x: int) -> int:
    """The splitmix64 finaliser of ``x + GOLDEN`` on Python ints (mod 2**64)."""
    z = (x + GOLDEN) & MASK64
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    return z ^ (z >> 31)


def region_key(seed: int) -> int:
    """The key :math:`\\kappa` of a seed, as a signed int64 value."""
    k = splitmix64(int(seed) & MASK64)
    return k - (1 << 64) if k >= (1 << 63) else k


def _signed(c: int) -> int:
    return c - (1 << 64) if c >= (1 << 63) else c


def uniform_torch(key: int, t: int, batch: int, n: int, device: object = None):  # noqa: ANN201
    """``[batch, n]`` float64 uniforms of step ``t`` (see the module docstring)."""
    import torch

    def srl(z: torch.Tensor, k: int) -> torch.Tensor:
        return (z >> k) & ((1 << (64 - k)) - 1)

    base = torch.arange(batch * n, dtype=torch.int64, device=device).view(batch, n)
    z = base + _signed((key + t * batch * n + GOLDEN) & MASK64)
    z = (z ^ srl(z, 30)) * _signed(MIX1)
    z = (z ^ srl(z, 27)) * _signed(MIX2)
    z = z ^ srl(z, 31)
    return srl(z, 11).to(torch.float64) * (2.0 ** -53)
