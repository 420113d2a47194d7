"""Per-neuron parameters on the compiled engine against a numpy loop written here.

The oracle is the CUBA model with receptor currents and a refractory clamp written out
from its equations (Brian2's CUBA, Vogels & Abbott 2005), with per-neuron membrane time
constants and thresholds: exact integration of the coupled linear system,
``a = exp(-dt/tau)``, ``k_r = tau_r / (tau_r - tau_m) (a_r - a_m)``, ``n_ref =
floor((t_ref + 1e-3 dt) / dt)``. It shares no code with the engine or the torch stepper.
Also: the engine's per-neuron coefficient rows and state arrays start on a cache line.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aura_snn.functional.cuba_refractory import CubaRefractoryParameters
from aura_snn.graph import Graph, InputRegion, SpikingRegion, _align
from aura_snn.graph.engine import _Element, build_layout

DT = 1e-4          # s
TAU_SYN = (5e-3, 10e-3)
T_REF = 2e-3       # s
V_LEAK, V_RESET = -49e-3, -60e-3


def _setup(n: int, n_in: int, T: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "tau_m": 15e-3 + 10e-3 * rng.random(n),                  # s, per neuron
        "theta": -50e-3 + 2e-3 * (rng.random(n) - 0.5),          # V, per neuron
        "v0": -60e-3 + 10e-3 * rng.random(n),
        # dyadic weights (V): every sum of inputs is exact in any order
        "w_exc": rng.integers(0, 4, (n_in, n)) * 2.0 ** -9,
        "w_inh": -rng.integers(0, 3, (n_in, n)) * 2.0 ** -9,
        "fed": (rng.random((T, n_in)) < 0.15).astype(np.float64),
    }


def _numpy_cuba(s: dict, T: int) -> tuple[np.ndarray, np.ndarray]:
    """Spikes ``[T, n]`` and final membrane of the CUBA equations, step by step."""
    tau_m, theta = s["tau_m"], s["theta"]
    a_m = np.exp(-DT / tau_m)
    a_r = [np.exp(-DT / tau) for tau in TAU_SYN]
    k_r = [tau / (tau - tau_m) * (a - a_m) for tau, a in zip(TAU_SYN, a_r, strict=True)]
    n_ref = int((T_REF + 1e-3 * DT) / DT)
    n = tau_m.size
    v, ref = s["v0"].copy(), np.zeros(n, np.int64)
    cur = [np.zeros(n), np.zeros(n)]
    x = [np.zeros(n), np.zeros(n)]         # input of this step: spikes of the last one
    spikes = np.zeros((T, n), bool)
    for t in range(T):
        i_hat = [cur[r] + x[r] for r in range(2)]
        c = np.maximum(ref - 1, 0)
        free = c == 0
        u = V_LEAK + a_m * (v - V_LEAK) + (k_r[0] * i_hat[0] + k_r[1] * i_hat[1])
        u = np.where(free, u, v)
        s_t = free & (u > theta)
        v = np.where(s_t, V_RESET, u)
        ref = np.where(s_t, n_ref, c)
        cur = [a_r[r] * i_hat[r] for r in range(2)]
        spikes[t] = s_t
        x = [s["fed"][t] @ s["w_exc"], s["fed"][t] @ s["w_inh"]]
    return spikes, v


def _graph(s: dict) -> Graph:
    n_in, n = s["w_exc"].shape
    g = Graph(dt=DT, seed=0).double()
    g.add(InputRegion("in", n_in))
    p = CubaRefractoryParameters(tau_mem=torch.tensor(s["tau_m"]),
                                 threshold=torch.tensor(s["theta"]), tau_syn=TAU_SYN,
                                 v_leak=V_LEAK, v_reset=V_RESET, refractory=T_REF)
    g.add(SpikingRegion("E", n, "cuba_refractory", p, init={"v": torch.tensor(s["v0"])}))
    g.connect("in", "E", torch.tensor(s["w_exc"]), receptor="exc", sign="exc")
    g.connect("in", "E", torch.tensor(s["w_inh"]), receptor="inh", sign="inh")
    return g


@pytest.mark.parametrize("n", [37, 64])   # a tail that is no multiple of 8, and none
def test_engine_per_neuron_tau_mem_and_thresholds_equal_numpy_cuba(n: int) -> None:
    T, n_in = 3000, 12
    s = _setup(n, n_in, T)
    ref_spikes, ref_v = _numpy_cuba(s, T)
    g = _graph(s)
    assert build_layout(g).sp_lvl.tolist() == [4]   # the per-neuron membrane rows loop
    with torch.no_grad():
        r = g.run(T, inputs={"in": torch.tensor(s["fed"])[:, None]}, record=["E"],
                  backend="engine")
    assert r.backend == "engine"
    spikes = r.outputs["E"][:, 0].numpy().astype(bool)
    assert ref_spikes.sum() > 5 * n                   # the comparison is not vacuous
    # the neurons differ: per-neuron tau_mem/threshold change who fires when
    assert len({tuple(np.flatnonzero(col)[:3]) for col in ref_spikes.T}) > n // 2
    np.testing.assert_array_equal(spikes, ref_spikes)
    # numpy's exp and torch's may differ in the last bit of a_m: membranes to rounding
    np.testing.assert_allclose(r.state.regions["E"].v[0].numpy(), ref_v, rtol=0, atol=1e-12)


def test_aligned_zeros_and_padded_offsets() -> None:
    for shape, dtype in [(1, np.float64), (1001, np.float32), ((3, 37), np.float64),
                         (40_000, np.int32), (17, np.uint8), (0, np.float64)]:
        a = _align.zeros(shape, dtype)
        assert a.size == 0 or a.ctypes.data % 64 == 0
        assert a.flags.c_contiguous and a.flags.writeable
        assert a.shape == ((shape,) if isinstance(shape, int) else shape)
        assert a.dtype == dtype and not a.any()
    assert [_align.pad(k) for k in (0, 1, 7, 8, 9, 37)] == [0, 8, 8, 8, 16, 40]
    with pytest.raises(ValueError, match="n must be"):
        _align.pad(-1)


def test_engine_rows_and_state_start_on_a_cache_line() -> None:
    """Each region's per-neuron block starts on a cache line, whatever the sizes of the
    blocks before it (37 neurons x 4 rows is no multiple of 8 values)."""
    s37, s64 = _setup(37, 4, 1, seed=1), _setup(64, 4, 1, seed=2)
    g = _graph(s37)
    p = CubaRefractoryParameters(tau_mem=torch.tensor(s64["tau_m"]),
                                 threshold=torch.tensor(s64["theta"]))
    g.add(SpikingRegion("F", 64, "cuba_refractory", p))
    lay = build_layout(g)
    assert lay.sp_lvl.tolist() == [4, 4]
    base = lay.pn.ctypes.data
    for g_, n in enumerate(lay.sp_n.tolist()):
        off = int(lay.sp_poff[g_])
        assert (base + off * lay.pn.itemsize) % 64 == 0
        rows = bin(int(lay.sp_mask[g_])).count("1")
        block = lay.pn[off:off + rows * n].reshape(rows, n)
        assert np.allclose(block[0], np.exp(-DT / (s37 if n == 37 else s64)["tau_m"]),
                           rtol=1e-15)   # a_m, the first row, where the kernel reads it
    el = _Element(lay)
    for name in ("v", "cur", "ref", "bt", "pend", "flag"):
        assert getattr(el, name).ctypes.data % 64 == 0, name
