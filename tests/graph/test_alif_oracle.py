"""ALIF in a graph against an oracle outside our code: an unrolled numpy loop of the
equations in :mod:`aura_snn.functional.alif`'s docstring, spike for spike, on both
backends (the compiled engine and the torch stepper).

Why not Norse's LSNN: its threshold is the adaptation variable itself, relaxing to
``v_th`` rather than to zero (``z = H(v - b)``, ``b += beta z``), and its input enters
through a synaptic current; mapping it onto ours would test the mapping, not ALIF.

The oracle follows the docstring (Bellec et al. 2018) written per neuron with Python
floats, with its own decay factors (``math.exp``):

    u = v_leak + a (v - v_leak) + (1 - a) x,   a = exp(-dt / tau_mem)
    b~ = a_b b,                                a_b = exp(-dt / tau_adapt)
    theta = theta_0 + beta b~
    S = [u - theta > 0];  v = u - theta S (subtract) | v_reset (zero, at a spike)
    b = b~ + S

Inputs of step t are what the graph delivers: the fed values and recurrent spikes of
step t - 1 through the weights (dyadic, so the sums are exact in any order). The
time constants are scalars (both sides then take ``math.exp``; torch's vectorised
``exp`` of a tensor may differ from it in the last bit), the thresholds per neuron.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aura_snn.functional.alif import ALIFParameters
from aura_snn.graph import Graph, InputRegion, SpikingRegion

DT = 1e-3
N_IN, N = 5, 16


def _oracle(x_in: np.ndarray, w_in: np.ndarray, w_rec: np.ndarray, tau_mem: float,
            tau_adapt: float, theta0: np.ndarray, beta: float, reset: str,
            v_reset: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spikes ``[T, N]`` and the final ``v``, ``b`` of one batch element."""
    T = x_in.shape[0]
    v = [0.0] * N
    b = [0.0] * N
    spikes = np.zeros((T, N))
    prev_in = np.zeros(N_IN)
    prev_s = np.zeros(N)
    a = math.exp(-DT / tau_mem)
    a_b = math.exp(-DT / tau_adapt)
    for t in range(T):
        x = prev_in @ w_in + prev_s @ w_rec                  # arrives one step later
        for j in range(N):
            u = 0.0 + a * (v[j] - 0.0) + (1.0 - a) * float(x[j])
            bd = a_b * b[j]
            theta = float(theta0[j]) + beta * bd
            s = 1.0 if u - theta > 0.0 else 0.0
            if reset == "subtract":
                v[j] = u - theta * s
            else:
                v[j] = v_reset if s else u
            b[j] = bd + s
            spikes[t, j] = s
        prev_in, prev_s = x_in[t], spikes[t]
    return spikes, np.array(v), np.array(b)


@pytest.mark.parametrize("backend", ["engine", "torch"])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_alif_graph_matches_the_unrolled_numpy_oracle(backend: str, reset: str) -> None:
    T, B = 2000, 2
    rng = np.random.default_rng(7)
    w_in = rng.integers(0, 9, (N_IN, N)) * 2.0 ** -2          # dyadic weights
    w_rec = -rng.integers(0, 3, (N, N)) * 2.0 ** -3 * (rng.random((N, N)) < 0.3)
    x_in = rng.integers(0, 5, (T, B, N_IN)) * 2.0 ** -2
    theta0 = np.linspace(0.4, 0.8, N)                        # per neuron
    tau_mem, tau_adapt, beta, v_reset = 10e-3, 50e-3, 0.2, -0.25
    p = ALIFParameters(tau_mem=tau_mem, tau_adapt=tau_adapt, beta=beta,
                       threshold=torch.tensor(theta0), reset=reset, v_reset=v_reset)
    g = Graph(dt=DT).double()
    g.add(InputRegion("in", N_IN, spiking=False))
    g.add(SpikingRegion("alif", N, "alif", p))
    g.connect("in", "alif", torch.tensor(w_in))
    g.connect("alif", "alif", torch.tensor(w_rec))
    with torch.no_grad():
        r = g.run(T, inputs={"in": torch.tensor(x_in)}, record=["alif"], backend=backend)
    assert r.backend == backend
    for b in range(B):
        spikes, v, bt = _oracle(x_in[:, b], w_in, w_rec, tau_mem, tau_adapt, theta0, beta,
                                reset, v_reset)
        assert spikes.sum() > 200
        np.testing.assert_array_equal(r.outputs["alif"][:, b].numpy(), spikes)
        np.testing.assert_array_equal(r.state.regions["alif"].v[b].numpy(), v)
        np.testing.assert_array_equal(r.state.regions["alif"].b[b].numpy(), bt)
    # adaptation matters: without it the same drive gives more spikes
    assert bt.max() > 0.5
