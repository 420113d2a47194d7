"""``Projection.propagate_events`` (the event-driven delivery the Ray workers use for
spikes they receive) against a synapse-by-synapse sum written here, and bit for bit
against ``Projection.propagate``: per-synapse delays, a sign constraint, plastic
weights, graded outputs, a batch, unsorted synapses, silence, and a rewiring in place."""

from __future__ import annotations

import numpy as np
import torch

from aura_snn.graph.projection import Projection

F64 = torch.float64


def _projection(seed: int, n_pre: int = 40, n_post: int = 30, nnz: int = 400) -> Projection:
    g = torch.Generator().manual_seed(seed)
    pre = torch.randint(0, n_pre, (nnz,), generator=g)       # unsorted, with repeats
    post = torch.randint(0, n_post, (nnz,), generator=g)
    w = torch.rand(nnz, generator=g, dtype=F64) * 0.3
    coo = torch.sparse_coo_tensor(torch.stack((pre, post)), w, (n_pre, n_post),
                                  check_invariants=False)
    delay = torch.randint(0, 3, (nnz,), generator=g)
    p = Projection("p", "a", "b", coo, delay=delay, sign="exc").double()
    p.make_plastic()
    # some learned + plastic sums fall below zero: the sign constraint clamps them
    p.plastic_weight.copy_(torch.randn(nnz, generator=g, dtype=F64) * 0.1)
    assert bool(((p.weight.detach() + p.plastic_weight) < 0).any())
    return p


def _by_hand(p: Projection, y: torch.Tensor) -> dict[int, np.ndarray]:
    pre, post, d = p.pre_idx.numpy(), p.post_idx.numpy(), p.delay.numpy()
    w = np.maximum(p.weight.detach().numpy() + p.plastic_weight.numpy(), 0.0)
    out: dict[int, np.ndarray] = {}
    for s in range(pre.size):
        x = out.setdefault(int(d[s]), np.zeros((y.shape[0], p.n_post)))
        x[:, post[s]] += y[:, pre[s]].numpy() * w[s]
    return out


def test_events_equal_the_synapse_sum_and_propagate_bit_for_bit() -> None:
    p = _projection(1)
    g = torch.Generator().manual_seed(2)
    y = (torch.rand(3, 40, generator=g) < 0.15).to(F64)
    y[1, 5] = 0.5                                             # a graded output
    y[2] = 0.0                                                # a silent batch row
    assert 0 < int((y != 0).sum()) < y.numel() // 4
    got = p.propagate_events(y)
    want = p.propagate(y)
    hand = _by_hand(p, y)
    assert [d for d, _ in got] == [d for d, _ in want] and {d for d, _ in got} == set(hand)
    for (d, a), (_, b) in zip(got, want, strict=True):
        assert torch.equal(a, b)
        np.testing.assert_allclose(a.numpy(), hand[d], rtol=1e-13, atol=1e-15)
        assert float(a.abs().sum()) > 0
    for _, x in p.propagate_events(torch.zeros(2, 40, dtype=F64)):   # silence
        assert torch.equal(x, torch.zeros(2, 30, dtype=F64))


def test_a_rewiring_in_place_is_seen() -> None:
    p = _projection(3)
    y = torch.zeros(1, 40, dtype=F64)
    y[0, :10] = 1.0
    p.propagate_events(y)                                     # builds the pre index
    with torch.no_grad():
        p.pre_idx.copy_(p.pre_idx.flip(0))                    # same tensor, new content
    for (_, a), (_, b) in zip(p.propagate_events(y), p.propagate(y), strict=True):
        assert torch.equal(a, b)
