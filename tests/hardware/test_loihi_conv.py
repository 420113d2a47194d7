"""Convolutional stacks for the Loihi 2 twin: ``Conv2d -> LIF -> AvgPool2d -> Flatten ->
Linear -> CubaLIF``. Oracles: connection matrices built here with explicit loops (the
cross-correlation and pooling definitions of ``torch.nn.Conv2d``/``AvgPool2d``), fed
to the NumPy transcription of Lava's bit-accurate Dense/LIF models
(``loihi_graph_nets.py``); Lava itself (``fixed_pt`` bit-identical to the twin,
``floating_pt`` identical to the float stack run step by step)."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import torch
from loihi_graph_nets import _lava_lif_step, np_weights
from torch import nn

from aura_snn import LIF, CubaLIF
from hardware.loihi import quantize

DT = 1e-3
SHAPE = (2, 6, 6)


def _model(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, stride=1),
                      LIF(8e-3, dt=DT, threshold=1.0, reset="zero", input_scaling="direct"),
                      nn.AvgPool2d(2), nn.Flatten(start_dim=1), nn.Linear(36, 10),
                      CubaLIF(10e-3, 4e-3, dt=DT, threshold=0.4, reset="zero",
                              input_scaling="direct")).double()
    with torch.no_grad():
        m[0].weight.mul_(3.0).add_(0.12)
        m[4].weight.mul_(4.0).add_(0.3)
    return m


def _conv_matrix(w: np.ndarray, shape: tuple[int, int, int], pad: int) -> np.ndarray:
    """``[C_out H W, C_in H W]`` of a stride-1 cross-correlation with zero padding."""
    c_in, h, wd = shape
    c_out, _, k, _ = w.shape
    m = np.zeros((c_out, h, wd, c_in, h, wd))
    for o in range(c_out):
        for i in range(h):
            for j in range(wd):
                for c in range(c_in):
                    for a in range(k):
                        for b in range(k):
                            y, x = i + a - pad, j + b - pad
                            if 0 <= y < h and 0 <= x < wd:
                                m[o, i, j, c, y, x] += w[o, c, a, b]
    return m.reshape(c_out * h * wd, c_in * h * wd)


def _pool_matrix(c: int, h: int, w: int, k: int) -> np.ndarray:
    m = np.zeros((c, h // k, w // k, c, h, w))
    for ch in range(c):
        for i in range(h // k):
            for j in range(w // k):
                m[ch, i, j, ch, i * k:(i + 1) * k, j * k:(j + 1) * k] = 1.0 / k ** 2
    return m.reshape(c * (h // k) * (w // k), c * h * w)


def _oracle(model: nn.Sequential, twin, x: np.ndarray) -> list[np.ndarray]:
    """Both layers' spikes for one sample ``x [T, C, H, W]``."""
    w1 = _conv_matrix(model[0].weight.detach().numpy(), SHAPE, 1)
    b1 = np.repeat(model[0].bias.detach().numpy(), 36)
    w2 = model[4].weight.detach().numpy() @ _pool_matrix(4, 6, 6, 2)
    b2 = model[4].bias.detach().numpy()
    decays = [(4095, math.exp(-DT / 8e-3), 1.0), (
        round(4096 * (1 - math.exp(-DT / 4e-3))) - 1, math.exp(-DT / 10e-3), 0.4)]
    inp, out = x.reshape(x.shape[0], -1), []
    for lay, w, b, (du, a_m, th) in zip(twin.layers, (w1, w2), (b1, b2), decays, strict=True):
        wi = np_weights(w, lay.scale, lay.weight_exp)
        acc = np.round(inp @ wi.T.astype(np.float64)).astype(np.int64)
        e = lay.weight_exp
        a = (acc << e if e > 0 else acc >> -e) + np.round(b * lay.scale).astype(np.int64)
        u = v = np.zeros(w.shape[0], np.int64)
        s = np.zeros((x.shape[0], w.shape[0]), bool)
        for t in range(x.shape[0]):
            s[t], u, v = _lava_lif_step(u, v, a[t], du, round(4096 * (1 - a_m)),
                                        round(th * lay.scale))
        out.append(s)
        inp = s.astype(np.float64)
    return out


def _x(binary: bool, steps: int = 40, batch: int = 2, seed: int = 1) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    x = (rng.random((steps, batch, *SHAPE)) < 0.3) * 1.0 if binary else \
        rng.random((steps, batch, *SHAPE))
    return torch.from_numpy(x)


@pytest.mark.parametrize("binary", [True, False])
def test_conv_twin_matches_numpy_transcription(binary):
    model = _model()
    twin = quantize(model, input_shape=SHAPE)
    assert twin.input_shape == SHAPE and twin.output_shape == (10,)
    assert [lay.name for lay in twin.layers] == ["0->1", "2->3->4->5"]
    assert twin.layers[0].sparse  # a 3x3 kernel reaches 18 of 72 inputs
    x = _x(binary)
    ours = twin.run(x)
    for b in range(2):
        ref = _oracle(model, twin, x[:, b].numpy())
        for k in range(2):
            assert np.array_equal(ours[k][:, b].numpy(), ref[k]), (k, b)
    assert ours[0].sum() > 100 and ours[1].sum() > 20
    assert twin(x).shape == (40, 2, 10)


def test_conv_output_shape_and_spike_error():
    """A stack ending in a convolution returns [T, B, C, H, W]; spike_error runs the
    float stack step by step and its first-layer current error is 0 on the 8-bit
    mixed-sign grid (Lava keeps even mantissas: weights multiples of 2/64, scale 64)."""
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, bias=False),
                          LIF(10e-3, dt=DT, threshold=1.0, reset="zero",
                              input_scaling="direct")).double()
    rng = np.random.default_rng(4)
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(rng.integers(-20, 45, (3, 2, 3, 3)) / 32))
    twin = quantize(model, input_shape=SHAPE, scale=64.0, weight_exp=0)
    x = _x(True, seed=3)
    assert twin(x).shape == (40, 2, 3, 6, 6)
    rep = twin.spike_error(model, x)[0]
    with torch.no_grad():
        f = model[1](model[0](x.reshape(80, *SHAPE)).reshape(40, 2, 3, 6, 6))
    assert rep["current_max_err"] == 0.0 and f.sum() > 50
    assert rep["mismatch"] == pytest.approx(float((twin(x) != f).double().mean()))


lava = pytest.mark.skipif(importlib.util.find_spec("lava") is None,
                          reason="lava-nc not installed (make setup installs it)")


@lava
@pytest.mark.parametrize("binary", [True, False])
def test_conv_stack_in_lava_fixed_pt_equals_twin(binary):
    from hardware.lava import export, run

    model = _model(1)
    x = _x(binary, batch=1, seed=2)
    out = run(model, x, "fixed_pt", input_shape=SHAPE)
    assert torch.equal(out, quantize(model, input_shape=SHAPE)(x)) and out.sum() > 10
    names = [type(c).__name__ for c in export(model, "fixed_pt", input_shape=SHAPE).conns]
    assert names == ["Sparse", "Dense"]


@lava
def test_conv_stack_in_lava_floating_pt_equals_float_stack():
    from hardware.lava import run

    model = _model(2)
    x = _x(True, batch=1, seed=5)
    with torch.no_grad():
        h = model[1](model[0](x.reshape(40, *SHAPE)).reshape(40, 1, 4, 6, 6))
        h = model[4](model[3](model[2](h.reshape(40, 4, 6, 6)))).reshape(40, 1, 10)
        ref = model[5](h)
    out = run(model, x, "floating_pt", input_shape=SHAPE)
    assert torch.equal(out, ref) and ref.sum() > 10
