"""Each NIR node type from_nir runs, against its equation computed here independently.

Oracles: numpy loops of the per-step equations in :mod:`hardware.nir.conventions`
(``LI``, ``CubaLI``, ``I``, ``IF`` with forward Euler), and torch's functional ops for
the stateless nodes (``conv1d``, ``conv2d``, sum/average pooling, flatten, scale,
threshold), applied to each step. All node types of NIR 1.0 appear in this file or in
the other ``test_nir_*`` files (LIF, CubaLIF, Affine, Linear, Delay, Input, Output,
nested graphs, cycles).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hardware.nir import from_nir

nir = pytest.importorskip("nir")
DT = 1e-3
rng = np.random.default_rng(7)


def run(node: object, x: np.ndarray, **kw) -> np.ndarray:
    """``node`` between an Input of the per-sample shape of ``x`` and an Output."""
    g = nir.NIRGraph(nodes={"i": nir.Input(input_type=np.array(x.shape[2:])), "n": node,
                            "o": nir.Output(output_type=None)},
                     edges=[("i", "n"), ("n", "o")], type_check=False)
    return from_nir(g, dt=DT, dtype=torch.float64, **kw)(torch.from_numpy(x)).detach().numpy()


def test_li_cubali_and_i_membranes() -> None:
    n, T = 4, 40
    x = rng.uniform(-1, 2, (T, 2, n))
    tau, r, vl = rng.uniform(3e-3, 9e-3, n), rng.uniform(0.5, 2, n), 0.1
    v, ref = np.full((2, n), vl), []
    for t in range(T):
        v = v + DT / tau * (vl - v + r * x[t])
        ref.append(v)
    li = nir.LI(tau=tau, r=r, v_leak=np.full(n, vl))
    assert np.allclose(run(li, x), np.array(ref), rtol=1e-12, atol=1e-14)
    ts, tm, w_in = np.full(n, 2e-3), np.full(n, 6e-3), rng.uniform(0.5, 1.5, n)
    i, v, ref = np.zeros((2, n)), np.zeros((2, n)), []
    for t in range(T):
        i = i + DT / ts * (-i + w_in * x[t])
        v = v + DT / tm * (-v + r * i)
        ref.append(v)
    cli = nir.CubaLI(tau_syn=ts, tau_mem=tm, r=r, v_leak=np.zeros(n), w_in=w_in)
    assert np.allclose(run(cli, x), np.array(ref), rtol=1e-12, atol=1e-14)
    assert np.allclose(run(nir.I(r=r), x), np.cumsum(DT * r * x, 0), rtol=1e-12)


def test_if_and_threshold() -> None:
    n, T = 3, 60
    x = rng.uniform(0, 1, (T, 2, n))
    r, thr, vr = np.array([300.0, 500.0, 700.0]), np.array([1.0, 0.8, 1.2]), -0.1
    v, ref = np.zeros((2, n)), []
    for t in range(T):
        v = v + DT * r * x[t]
        s = v > thr
        v = np.where(s, vr, v)
        ref.append(s)
    got = run(nir.IF(r=r, v_threshold=thr, v_reset=np.full(n, vr)), x)
    assert 0.05 < np.mean(ref) < 0.7 and np.array_equal(got, np.array(ref, dtype=float))
    th = nir.Threshold(threshold=np.array([0.2, 0.5, 0.9]))
    assert np.array_equal(run(th, x), (x > th.threshold).astype(float))


def test_stateless_nodes_per_step() -> None:
    x = rng.uniform(-1, 1, (5, 2, 3, 8, 8))
    xt = torch.from_numpy(x).reshape(10, 3, 8, 8)
    w, b = rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4)
    conv = nir.Conv2d(input_shape=(8, 8), weight=w, stride=2, padding=1, dilation=1,
                      groups=1, bias=b)
    ref = F.conv2d(xt, torch.from_numpy(w), torch.from_numpy(b), stride=2, padding=1)
    assert np.allclose(run(conv, x), ref.reshape(5, 2, 4, 4, 4).numpy(), rtol=1e-12)
    pool = dict(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    s = F.avg_pool2d(xt, 2, 2) * 4
    assert np.allclose(run(nir.SumPool2d(**pool), x), s.reshape(5, 2, 3, 4, 4).numpy())
    assert np.allclose(run(nir.AvgPool2d(**pool), x), (s / 4).reshape(5, 2, 3, 4, 4).numpy())
    fl = nir.Flatten(input_type={"input": np.array([3, 8, 8])}, start_dim=1, end_dim=2)
    assert run(fl, x).shape == (5, 2, 3, 64)
    assert np.array_equal(run(fl, x), x.reshape(5, 2, 3, 64))
    sc = nir.Scale(scale=rng.normal(size=(3, 8, 8)))
    assert np.array_equal(run(sc, x), x * sc.scale)
    x1 = rng.uniform(-1, 1, (4, 2, 2, 10))
    w1, b1 = rng.normal(size=(3, 2, 3)), rng.normal(size=3)
    c1 = nir.Conv1d(input_shape=10, weight=w1, stride=1, padding=0, dilation=2, groups=1,
                    bias=b1)
    ref1 = F.conv1d(torch.from_numpy(x1).reshape(8, 2, 10), torch.from_numpy(w1),
                    torch.from_numpy(b1), dilation=2)
    assert np.allclose(run(c1, x1), ref1.reshape(4, 2, 3, 6).numpy(), rtol=1e-12)
    lin = nir.Linear(weight=rng.normal(size=(5, 10)))
    assert np.allclose(run(lin, x1.reshape(4, 2, 20)[..., :10]),
                       x1.reshape(4, 2, 20)[..., :10] @ lin.weight.T, rtol=1e-12)


def test_exact_integration_uses_exponential_decay() -> None:
    n, T = 2, 20
    x = rng.uniform(0, 1, (T, 1, n))
    tau = np.array([2e-3, 5e-3])
    a, v, ref = np.exp(-DT / tau), np.zeros((1, n)), []
    for t in range(T):
        v = a * v + (1 - a) * x[t]
        ref.append(v)
    got = run(nir.LI(tau=tau, r=np.ones(n), v_leak=np.zeros(n)), x, integration="exact")
    assert np.allclose(got, np.array(ref), rtol=1e-12, atol=1e-15)


def test_node_is_abstract() -> None:
    """``Node.run`` is abstract: the base and a subclass without ``run`` cannot be built,
    and every node module that ``from_nir`` builds implements it."""
    import inspect

    from hardware.nir import modules as M

    with pytest.raises(TypeError, match="abstract"):
        M.Node()

    class NoRun(M.Node):
        pass

    with pytest.raises(TypeError, match="run"):
        NoRun()
    concrete = [c for _, c in inspect.getmembers(M, inspect.isclass)
                if issubclass(c, M.Node) and c is not M.Node]
    assert {c.__name__ for c in concrete} >= {"PerStep", "Flatten", "Scale", "Threshold",
                                               "Delay", "Integrator", "Neuron"}
    assert not any(inspect.isabstract(c) for c in concrete)
