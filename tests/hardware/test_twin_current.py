"""Integer input currents of the graph twin (:meth:`hardware._graph_twin.TwinProjection.current`).

Oracle: Lava's accumulation written here in numpy int64, separately from the twin: for
each delay ``k``, ``a[t] += shift(s[t - latency - k] @ W_k^T, e)`` with ``W_k`` the
weights whose delay is ``k`` and ``shift`` Lava's weight exponent (``<< e``, or an
arithmetic ``>> -e``); for real-valued input, the float64 product rounded to the
nearest integer before the shift. Cases: dense and sparse weights, several delays,
same-step and delayed edges, bool and float spikes, integer counts, reals, inputs
large enough that float32 sums would no longer be exact, and weights changed in place.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hardware._graph_twin import TwinProjection

N_PRE, N_POST, T, B = 30, 20, 25, 3


def _projection(density: float, max_delay: int, same_step: bool, e: int,
                seed: int = 0) -> TwinProjection:
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(N_POST, N_PRE, generator=g) < density
    w = torch.randint(-255, 256, (N_POST, N_PRE), generator=g) * mask
    d = torch.randint(0, max_delay + 1, (N_POST, N_PRE), generator=g) * mask
    return TwinProjection("p", "a", "b", w.long(), e, 8, "mixed", d.long(), same_step,
                          density < 0.5, w.double() * 1e-3)


def _shift(x: np.ndarray, e: int) -> np.ndarray:
    return x << e if e > 0 else x >> -e


def _oracle(p: TwinProjection, s: np.ndarray) -> np.ndarray:
    w, d = p.weights.numpy(), p.delays.numpy()
    lat = 0 if p.same_step else 1
    integral = np.array_equal(s, np.round(s))
    out = np.zeros((s.shape[0], s.shape[1], w.shape[0]), np.int64)
    for k in np.unique(d):
        wk = np.where(d == k, w, 0)
        for t in range(s.shape[0]):
            src = t - lat - int(k)
            if src < 0:
                continue
            if integral:
                prod = s[src].astype(np.int64) @ wk.T.astype(np.int64)
            else:
                prod = np.round(s[src] @ wk.T.astype(np.float64)).astype(np.int64)
            out[t] += _shift(prod, p.weight_exp)
    return out


def _spikes(rate: float, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(T, B, N_PRE, generator=g) < rate


@pytest.mark.parametrize("density", [0.1, 0.9])
@pytest.mark.parametrize("max_delay,same_step", [(0, True), (0, False), (3, False),
                                                 (2, True)])
@pytest.mark.parametrize("e", [-3, 0, 2])
def test_spike_currents_equal_integer_oracle(density: float, max_delay: int,
                                             same_step: bool, e: int) -> None:
    p = _projection(density, max_delay, same_step, e)
    s = _spikes(0.3)
    want = _oracle(p, s.numpy().astype(np.float64))
    assert torch.equal(p.current(s), torch.from_numpy(want))
    assert torch.equal(p.current(s.double()), torch.from_numpy(want))
    assert torch.equal(p.current(s.double()), p.current(s))  # repeated: cached operands


@pytest.mark.parametrize("density", [0.1, 0.9])
def test_integer_and_real_inputs(density: float) -> None:
    p = _projection(density, 2, False, -1)
    g = torch.Generator().manual_seed(4)
    counts = torch.randint(-3, 4, (T, B, N_PRE), generator=g).double()
    assert torch.equal(p.current(counts), torch.from_numpy(_oracle(p, counts.numpy())))
    real = torch.randn(T, B, N_PRE, generator=g, dtype=torch.float64) * 2.5
    assert torch.equal(p.current(real), torch.from_numpy(_oracle(p, real.numpy())))


@pytest.mark.parametrize("density", [0.1, 0.9])
def test_inputs_beyond_float32_exact_range(density: float) -> None:
    """Integer inputs near 2**20 against weights up to 255: products beyond 2**24 that
    float32 would round; the currents must still be exact."""
    p = _projection(density, 1, True, 0)
    g = torch.Generator().manual_seed(5)
    big = (torch.randint(0, 2, (T, B, N_PRE), generator=g) * (2**20 + 1)).double()
    want = _oracle(p, big.numpy())
    assert np.abs(want).max() > 2**24
    assert torch.equal(p.current(big), torch.from_numpy(want))


def test_weights_changed_in_place() -> None:
    """A twin's weights are fixed, but one changed in place is seen (version counters),
    by current() and by groups()."""
    p = _projection(0.2, 2, False, 0)
    s = _spikes(0.4)
    p.current(s)
    with torch.no_grad():
        p.weights.mul_(-2)
    assert torch.equal(p.current(s), torch.from_numpy(_oracle(p, s.numpy().astype(float))))
    w, d = p.weights.numpy(), p.delays.numpy()
    for lag, wk in p.groups():
        assert np.array_equal(wk.numpy(), np.where(d == lag - 1, w, 0))


def test_groups_by_delay() -> None:
    p = _projection(0.5, 3, True, 0)
    w, d = p.weights_f.numpy(), p.delays.numpy()
    got = p.groups(p.weights_f)
    assert [lag for lag, _ in got] == [int(k) for k in np.unique(d)]
    for lag, wk in got:
        assert np.array_equal(wk.numpy(), np.where(d == lag, w, 0.0))
