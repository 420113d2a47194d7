"""Per-synapse weights and delays stay with their synapse on every construction route.

Regression tests for a silent permutation: ``from_indices`` sorted ``pre``/``post`` while
weight and delay arrays given in the caller's order were read in the sorted order, and
a sparse COO tensor was coalesced (sorted) while its per-synapse delay array was not.

Oracle (hand-written, outside the code under test): a ``lif`` population with
``input_scaling="direct"``, ``v_leak = 0`` and a threshold it never reaches integrates
:math:`v[t] = a\\,v[t-1] + x[t]` with :math:`a = e^{-\\Delta t/\\tau}`, so the input it
received in step ``t`` is :math:`x[t] = v[t] - a\\,v[t-1]` (V). A synapse ``i -> j`` of
weight ``w`` and delay ``d`` (steps), whose pre neuron spikes in step ``t_i``, adds ``w``
to ``x[t_i + 1 + d, j]`` (projection module docstring; Brian2's delay convention).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aura_snn.functional.lif import LIFParameters
from aura_snn.graph import Graph, InputRegion, Projection, SpikingRegion, from_indices

DT = 1e-3                     # s
TAU = 1e-2                    # s, LIFParameters' default tau_mem
A = math.exp(-DT / TAU)       # per-step membrane decay
T = 14                        # steps
SPIKE_STEP = {0: 2, 1: 4}     # pre neuron -> the one step it spikes in
BACKENDS = ["torch", "engine"]
CSR_BETA = pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")

# The two synapses of the report, in this (unsorted) order: (pre, post, weight V, delay)
SYNAPSES = [(1, 0, 0.25, 3), (0, 1, 0.5, 1)]
# Hand-written: 1 -> 0 spikes in step 4 and arrives in 4 + 1 + 3 = 8 at post 0 (0.25 V);
# 0 -> 1 spikes in step 2 and arrives in 2 + 1 + 1 = 4 at post 1 (0.5 V).
EXPECTED = {(8, 0): 0.25, (4, 1): 0.5}


def _expected_input(synapses: list[tuple[int, int, float, int]], n_post: int = 2) -> np.ndarray:
    """``x[t, j]`` (V) from the rule above, one term per synapse."""
    x = np.zeros((T, n_post))
    for i, j, w, d in synapses:
        x[SPIKE_STEP[i] + 1 + d, j] += w
    return x


def _received(backend: str, n_post: int = 2, **connect: object) -> tuple[np.ndarray, Projection]:
    """Run the tiny graph; return the input each post neuron received per step, ``[T, n_post]``."""
    g = Graph(dt=DT).double()
    g.add(InputRegion("in", 2))
    g.add(SpikingRegion("post", n_post, "lif",
                        LIFParameters(threshold=1e6, input_scaling="direct", tau_mem=TAU)))
    p = g.connect("in", "post", name="p", **connect)
    mon = g.monitor("post", "v")
    spikes = torch.zeros(T, 1, 2, dtype=torch.float64)
    for i, t in SPIKE_STEP.items():
        spikes[t, 0, i] = 1.0
    g.run(T, inputs={"in": spikes}, backend=backend)
    v = mon.data()["values"][:, 0, :]
    prev = np.vstack([np.zeros((1, n_post)), v[:-1]])
    return v - A * prev, p


def _coo_set(p: Projection) -> list[tuple[int, int, float, int]]:
    pre, post, w, d = p.to_coo()
    return sorted(zip(pre.tolist(), post.tolist(), w.tolist(), d.tolist(), strict=True))


def test_hand_written_expectation_matches_the_rule() -> None:
    x = _expected_input(SYNAPSES)
    assert {(int(t), int(j)): float(x[t, j]) for t, j in zip(*np.nonzero(x), strict=True)} \
        == EXPECTED


def test_from_indices_keeps_the_callers_order() -> None:
    c = from_indices([1, 0], [0, 1], 2, 2)
    assert c.pre.tolist() == [1, 0] and c.post.tolist() == [0, 1]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("as_tensor", [False, True])
def test_connectivity_arrays_are_read_in_the_callers_order(backend: str,
                                                            as_tensor: bool) -> None:
    pre, post, w, d = (np.array(col) for col in zip(*SYNAPSES, strict=True))
    weight = torch.tensor(w) if as_tensor else w
    delay = torch.tensor(d) if as_tensor else d
    x, p = _received(backend, connectivity=from_indices(pre, post, 2, 2), weight=weight,
                     delay=delay)
    np.testing.assert_allclose(x, _expected_input(SYNAPSES), rtol=0, atol=1e-12)
    assert _coo_set(p) == sorted(SYNAPSES)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sparse_coo_delay_follows_the_stored_entries(backend: str) -> None:
    idx = torch.tensor([[s[0] for s in SYNAPSES], [s[1] for s in SYNAPSES]])
    w = torch.sparse_coo_tensor(idx, torch.tensor([s[2] for s in SYNAPSES]), (2, 2),
                                check_invariants=True)
    assert not w.is_coalesced()
    x, p = _received(backend, weight=w, delay=torch.tensor([s[3] for s in SYNAPSES]))
    np.testing.assert_allclose(x, _expected_input(SYNAPSES), rtol=0, atol=1e-12)
    assert _coo_set(p) == sorted(SYNAPSES)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sparse_coo_duplicate_pair_keeps_both_synapses(backend: str) -> None:
    """Two stored entries for the pair 0 -> 1 with different delays are two synapses
    (as Brian2 allows), not one summed weight with one of the delays."""
    syn = [(0, 1, 0.5, 1), (1, 0, 0.25, 3), (0, 1, 0.125, 5)]
    idx = torch.tensor([[s[0] for s in syn], [s[1] for s in syn]])
    w = torch.sparse_coo_tensor(idx, torch.tensor([s[2] for s in syn]), (2, 2),
                                check_invariants=True)
    x, p = _received(backend, weight=w, delay=torch.tensor([s[3] for s in syn]))
    # by hand: 0 -> 1 arrives in 2+1+1 = 4 (0.5 V) and in 2+1+5 = 8 (0.125 V)
    want = np.zeros((T, 2))
    want[4, 1], want[8, 1], want[8, 0] = 0.5, 0.125, 0.25
    np.testing.assert_allclose(x, want, rtol=0, atol=1e-12)
    assert p.nnz == 3 and _coo_set(p) == sorted(syn)


@CSR_BETA
@pytest.mark.parametrize("backend", BACKENDS)
def test_sparse_csr_delay_follows_the_stored_entries(backend: str) -> None:
    # a valid CSR tensor stores row by row: 0 -> 1, then 1 -> 0
    w = torch.sparse_csr_tensor(torch.tensor([0, 1, 2]), torch.tensor([1, 0]),
                                torch.tensor([0.5, 0.25]), (2, 2), check_invariants=True)
    x, p = _received(backend, weight=w, delay=torch.tensor([1, 3]))
    np.testing.assert_allclose(x, _expected_input(SYNAPSES), rtol=0, atol=1e-12)
    assert _coo_set(p) == sorted(SYNAPSES)


@CSR_BETA
@pytest.mark.parametrize("backend", BACKENDS)
def test_sparse_csr_with_unsorted_columns_keeps_its_stored_order(backend: str) -> None:
    """Row 0 stores 0 -> 2 before 0 -> 1; the delays are read in that stored order."""
    syn = [(0, 2, 0.5, 1), (0, 1, 0.25, 4), (1, 0, 0.125, 2)]
    w = torch.sparse_csr_tensor(torch.tensor([0, 2, 3]), torch.tensor([2, 1, 0]),
                                torch.tensor([0.5, 0.25, 0.125]), (2, 3),
                                check_invariants=False)
    x, p = _received(backend, n_post=3, weight=w, delay=torch.tensor([1, 4, 2]))
    np.testing.assert_allclose(x, _expected_input(syn, 3), rtol=0, atol=1e-12)
    assert _coo_set(p) == sorted(syn)


def _dense(synapses: list[tuple[int, int, float, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    w = torch.zeros(2, 2, dtype=torch.float64)
    d = torch.zeros(2, 2, dtype=torch.int64)
    for i, j, wij, dij in synapses:
        w[i, j], d[i, j] = wij, dij
    return w, d


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sparse", [False, True])
def test_dense_weight_with_a_pre_by_post_delay(backend: str, sparse: bool) -> None:
    w, d = _dense(SYNAPSES)
    x, p = _received(backend, weight=w, delay=d, sparse=sparse)
    assert p.sparse == sparse
    np.testing.assert_allclose(x, _expected_input(SYNAPSES), rtol=0, atol=1e-12)
    assert _coo_set(p) == sorted(SYNAPSES)


@pytest.mark.parametrize("backend", BACKENDS)
def test_dense_sparse_true_reads_an_nnz_delay_in_row_major_order(backend: str) -> None:
    w, _ = _dense(SYNAPSES)
    # the nonzeros row by row: 0 -> 1 (delay 1), then 1 -> 0 (delay 3)
    x, p = _received(backend, weight=w, delay=torch.tensor([1, 3]), sparse=True)
    np.testing.assert_allclose(x, _expected_input(SYNAPSES), rtol=0, atol=1e-12)
    assert _coo_set(p) == sorted(SYNAPSES)


@pytest.mark.parametrize("backend", BACKENDS)
def test_from_indices_multapses_keep_their_own_weight_and_delay(backend: str) -> None:
    syn = [(0, 1, 0.125, 5), (1, 0, 0.25, 3), (0, 1, 0.5, 1)]
    pre, post, w, d = (np.array(col) for col in zip(*syn, strict=True))
    x, p = _received(backend, connectivity=from_indices(pre, post, 2, 2, unique=False),
                     weight=w, delay=d)
    np.testing.assert_allclose(x, _expected_input(syn), rtol=0, atol=1e-12)
    assert p.nnz == 3 and _coo_set(p) == sorted(syn)


def test_many_shuffled_synapses_round_trip_through_to_coo() -> None:
    """A shuffled list of distinct pairs with distinct weights and delays: ``to_coo``
    returns each synapse's own values, for the from_indices and the COO routes."""
    rng = np.random.default_rng(7)
    n_pre, n_post, n = 9, 7, 40
    flat = rng.choice(n_pre * n_post, size=n, replace=False)   # distinct, unsorted
    pre, post = flat // n_post, flat % n_post
    w = (np.arange(n) + 1) / 64.0                              # distinct, dyadic (V)
    d = rng.integers(0, 6, size=n)
    want = sorted(zip(pre.tolist(), post.tolist(), w.tolist(), d.tolist(), strict=True))
    p1 = Projection("a", "x", "y", w, connectivity=from_indices(pre, post, n_pre, n_post),
                    delay=d)
    coo = torch.sparse_coo_tensor(torch.from_numpy(np.stack([pre, post])), torch.from_numpy(w),
                                  (n_pre, n_post), check_invariants=True)
    p2 = Projection("b", "x", "y", coo, delay=torch.from_numpy(d))
    assert _coo_set(p1) == want and _coo_set(p2) == want
    dense = np.zeros((n_pre, n_post))
    dense[pre, post] = w
    assert np.array_equal(p1.dense_weight().numpy(), dense)
