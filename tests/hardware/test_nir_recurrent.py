"""Recurrent NIR graphs (cycles) against loops written out here in numpy.

NIR edges are instantaneous, so a cycle without a delay has no discrete-time solution;
:mod:`hardware.nir.executor` gives its back edge a one-step delay (nirtorch's
convention), and a cycle through a ``Delay`` node runs with exactly that delay. The
oracle is the forward-Euler LIF of :mod:`hardware.nir.conventions` unrolled by hand,
:math:`I = W_\\text{in} x[t] + b + W_\\text{rec} s[t - k]`,
:math:`v \\leftarrow (1 - \\Delta t/\\tau) v + (\\Delta t/\\tau)\\,r I`,
:math:`s = [v > \\vartheta]`, :math:`v \\leftarrow v_\\text{reset}` where :math:`s`.
Also: the same cycle as a nested graph (snnTorch's ``RLeaky`` export), and snnTorch's
own ``RLeaky`` forward for its exported graph. One difference is by construction: the
back edge carries zeros at :math:`t = 0` (nirtorch's convention), while ``RLeaky``
applies its recurrent ``Linear`` to zero spikes at :math:`t = 0`, adding the recurrent
bias from the first step; the comparison uses a recurrent layer without bias.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hardware.nir import from_nir

nir = pytest.importorskip("nir")
DT, TAU, N_IN, N = 1e-3, 5e-3, 4, 6


def params(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"w_in": rng.uniform(0, 1.5, (N, N_IN)), "b": rng.uniform(0, 0.5, N),
            "w_rec": rng.uniform(-1.0, 0.6, (N, N)), "r": rng.uniform(1.0, 2.0, N),
            "thr": rng.uniform(0.4, 0.8, N), "v_reset": np.full(N, 0.05)}


def lif(p: dict[str, np.ndarray]) -> object:
    return nir.LIF(tau=np.full(N, TAU), r=p["r"], v_leak=np.zeros(N), v_threshold=p["thr"],
                   v_reset=p["v_reset"])


def unrolled(p: dict[str, np.ndarray], x: np.ndarray, lag: int) -> np.ndarray:
    T, B, _ = x.shape
    v, hist = np.zeros((B, N)), [np.zeros((B, N))] * lag
    out = np.zeros((T, B, N))
    for t in range(T):
        current = x[t] @ p["w_in"].T + p["b"] + hist[-lag] @ p["w_rec"].T
        v = (1 - DT / TAU) * v + DT / TAU * p["r"] * current
        s = v > p["thr"]
        v = np.where(s, p["v_reset"], v)
        out[t] = s
        hist = [*hist[1:], s.astype(float)]
    return out


def flat_graph(p: dict[str, np.ndarray], delay_steps: int | None) -> object:
    nodes = {"in": nir.Input(input_type=np.array([N_IN])),
             "fc": nir.Affine(weight=p["w_in"], bias=p["b"]), "lif": lif(p),
             "rec": nir.Linear(weight=p["w_rec"]), "out": nir.Output(output_type=np.array([N]))}
    edges = [("in", "fc"), ("fc", "lif"), ("lif", "rec"), ("lif", "out")]
    if delay_steps is None:
        edges.append(("rec", "lif"))
    else:
        nodes["d"] = nir.Delay(delay=np.full(N, delay_steps * DT))
        edges += [("rec", "d"), ("d", "lif")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


@pytest.mark.parametrize("delay_steps,lag", [(None, 1), (2, 2), (5, 5)])
def test_cycle_matches_the_unrolled_loop(delay_steps: int | None, lag: int) -> None:
    p = params()
    x = (np.random.default_rng(1).random((100, 3, N_IN)) < 0.4).astype(float)
    ref = unrolled(p, x, lag)
    module = from_nir(flat_graph(p, delay_steps), dt=DT, dtype=torch.float64)
    assert module.stepped
    got = module(torch.from_numpy(x)).detach().numpy()
    assert 0.05 < ref.mean() < 0.7
    assert np.array_equal(got, ref)                  # 100 x 3 x 6 = 1800 spike slots
    assert not np.array_equal(ref, unrolled(p, x, lag + 1))  # the lag matters


def test_nested_recurrent_subgraph_matches_the_unrolled_loop() -> None:
    p = params(2)
    sub = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([N])), "lif": lif(p),
                              "w_rec": nir.Linear(weight=p["w_rec"]),
                              "output": nir.Output(output_type=np.array([N]))},
                       edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"),
                              ("lif", "output")], type_check=False)
    g = nir.NIRGraph(nodes={"in": nir.Input(input_type=np.array([N_IN])),
                            "fc": nir.Affine(weight=p["w_in"], bias=p["b"]), "rnn": sub,
                            "out": nir.Output(output_type=np.array([N]))},
                     edges=[("in", "fc"), ("fc", "rnn"), ("rnn", "out")], type_check=False)
    x = (np.random.default_rng(3).random((80, 2, N_IN)) < 0.4).astype(float)
    module = from_nir(g, dt=DT, dtype=torch.float64)
    assert "rnn.lif" in module.node_names
    assert np.array_equal(module(torch.from_numpy(x)).detach().numpy(), unrolled(p, x, 1))


@pytest.mark.peers
def test_snntorch_rleaky_export_matches_snntorch() -> None:
    snn = pytest.importorskip("snntorch")
    from snntorch.export_nir import export_to_nir

    def heaviside(v: torch.Tensor) -> torch.Tensor:
        return (v > 0).to(v.dtype)

    torch.manual_seed(4)
    torch.set_default_dtype(torch.float64)
    try:
        net = torch.nn.Sequential(
            torch.nn.Linear(N_IN, N),
            snn.RLeaky(beta=torch.full((N,), 0.8), threshold=torch.full((N,), 0.7),
                       linear_features=N, spike_grad=heaviside, init_hidden=True,
                       reset_mechanism="zero", reset_delay=False, output=True))
        with torch.no_grad():  # module docstring: a recurrent bias enters at t = 0 there
            net[1].recurrent.bias.zero_()
        graph = export_to_nir(net, torch.zeros(1, N_IN), ignore_dims=[0])
        x = (torch.rand(60, 2, N_IN) < 0.5).double() * 2.0
        ref = torch.stack([net(x[t])[0] for t in range(60)])
    finally:
        torch.set_default_dtype(torch.float32)
    got = from_nir(graph, dt=1e-4, dtype=torch.float64)(x)
    assert 0.05 < float(ref.mean()) < 0.8
    assert torch.equal(got, ref)
