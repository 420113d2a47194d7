"""``hardware.loihi.quantize``: the fixed-point twin against a NumPy transcription, written
here, of Lava 0.10's bit-accurate models (``lava/proc/dense/models.py``
``AbstractPyDenseModelBitAcc.run_spk`` with ``lava/utils/weightutils.py``
``clip_weights``/``truncate_weights``; ``lava/proc/lif/models.py``
``AbstractPyLifModelFixed.subthr_dynamics`` and ``PyLifModelBitAcc``), and the float to
fixed mapping against its analytic error bounds. Lava itself: ``test_lava.py``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from aura_snn import LIF, CubaLIF
from aura_snn.functional.conventions import loihi_decay_from_tau
from hardware.loihi import quantize

DT = 1e-3


# --- the oracle: Lava's equations in NumPy, on Python-int-exact int64 arrays -----------
def _np_weights(w: np.ndarray, scale: float, exp: int, bits: int) -> np.ndarray:
    raw = np.round(w * scale / 2.0 ** exp).astype(np.int64)
    if raw.min() >= 0:
        mode, lo, hi = "exc", 0, 255
    elif raw.max() <= 0:
        mode, lo, hi = "inh", -255, 0
    else:
        mode, lo, hi = "mix", -256, 255
    raw = np.clip(raw, lo, hi)
    cut = 8 - bits + (mode == "mix")
    if mode == "inh":
        return -((-raw >> cut) << cut)
    return (raw >> cut) << cut


def _np_lif(a: np.ndarray, du: int, dv: int, vth: int) -> np.ndarray:
    """Lava's PyLifModelBitAcc.run_spk per step (bias 0), a: int [T, n]."""
    u = np.zeros(a.shape[1], np.int64)
    v = np.zeros(a.shape[1], np.int64)
    lim = 2 ** 23
    out = np.zeros(a.shape, bool)
    for t in range(a.shape[0]):
        dc = u * (4096 - (du + 1))
        dc = np.sign(dc) * (np.abs(dc) >> 12)
        dc = dc + (a[t] << 6)
        wr = np.where(dc > lim, dc - 2 * lim, dc)
        wr = np.where(wr <= -lim, dc + 2 * lim, wr)
        u = wr
        dvv = v * (4096 - dv)
        dvv = np.sign(dvv) * (np.abs(dvv) >> 12)
        v = np.clip(dvv + u, -lim + 1, lim - 1)
        s = v > (vth << 6)
        v[s] = 0
        out[t] = s
    return out


def _oracle(model: nn.Sequential, twin, x: np.ndarray, bits: int = 8) -> list[np.ndarray]:
    """Spikes of each layer for one sample x [T, n_in], from the float model's own
    parameters and the twin's chosen scale/exponent (the free choices of the mapping)."""
    mods = list(model.children())
    out, inp, k = [], x, 0
    for i, m in enumerate(mods):
        if not isinstance(m, (LIF, CubaLIF)):
            continue
        lin = mods[i - 1] if i and isinstance(mods[i - 1], nn.Linear) else None
        lay = twin.layers[k]
        th, tm = float(m.threshold), float(m.tau_mem)
        a_m = np.exp(-DT / tm)
        if isinstance(m, CubaLIF):
            g = 1.0 - a_m if m._static["input_scaling"] == "ode" else 1.0  # current_first
            du = loihi_decay_from_tau(float(m.tau_syn), DT) - 1
        else:
            g = 1.0 - a_m if m._static["input_scaling"] == "ode" else 1.0
            du = 4095
        w = lin.weight.detach().double().numpy() if lin is not None else np.eye(inp.shape[1])
        b = (lin.bias.detach().double().numpy() if lin is not None and lin.bias is not None
             else 0 * w[:, 0])
        wi = _np_weights(g * w, lay.scale, lay.weight_exp, bits)
        acc = np.round(inp.astype(np.float64) @ wi.T.astype(np.float64)).astype(np.int64)
        e = lay.weight_exp
        a = (acc << e if e > 0 else acc >> -e) + np.round(g * b * lay.scale).astype(np.int64)
        s = _np_lif(a, du, loihi_decay_from_tau(tm, DT), round(th * lay.scale))
        out.append(s)
        inp, k = s.astype(np.int64), k + 1
    return out


def _net(seed: int, sizes: list[int], kinds: list[str], density: float = 1.0) -> nn.Sequential:
    g = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    for i, kind in enumerate(kinds):
        lin = nn.Linear(sizes[i], sizes[i + 1])
        with torch.no_grad():
            w = torch.randn(sizes[i + 1], sizes[i], generator=g) * 2.0 / sizes[i] ** 0.5 + 0.4
            w *= (torch.rand(w.shape, generator=g) < density)
            lin.weight.copy_(w)
            lin.bias.copy_(torch.rand(sizes[i + 1], generator=g) * 0.3)
        neuron = (CubaLIF(tau_mem=10e-3, tau_syn=4e-3, dt=DT, threshold=0.8, reset="zero")
                  if kind == "cuba" else LIF(8e-3, dt=DT, threshold=1.0, reset="zero"))
        layers += [lin, neuron]
    return nn.Sequential(*layers)


@pytest.mark.parametrize("seed,sizes,kinds,density,binary", [
    (0, [12, 20, 6], ["lif", "lif"], 1.0, True),
    (1, [10, 16, 14, 5], ["cuba", "lif", "cuba"], 1.0, False),
    (2, [15, 30, 8], ["lif", "cuba"], 0.2, True),
])
@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_twin_matches_numpy_transcription_of_lava(seed, sizes, kinds, density, binary,
                                                  backend):
    model = _net(seed, sizes, kinds, density)
    twin = quantize(model)
    rng = np.random.default_rng(seed)
    x = (rng.random((60, 3, sizes[0])) < 0.4).astype(np.float64) if binary else \
        rng.random((60, 3, sizes[0])) * 4.0
    ours = twin.run(torch.from_numpy(x), backend)
    for b in range(3):
        ref = _oracle(model, twin, x[:, b])
        for k, (o, r) in enumerate(zip(ours, ref, strict=True)):
            assert np.array_equal(o[:, b].numpy(), r), f"layer {k} sample {b}"
    assert all(int(o.sum()) > 20 for o in ours)  # every layer fires


def test_sign_modes_and_truncation_match_lava_rules():
    model = _net(3, [8, 12], ["lif"])
    with torch.no_grad():
        model[0].weight.abs_()  # excitatory
    x = torch.from_numpy((np.random.default_rng(3).random((40, 2, 8)) < 0.5) * 1.0)
    for bits in (8, 5):
        twin = quantize(model, num_weight_bits=bits)
        assert twin.layers[0].sign_mode == "excitatory"
        ref = _np_weights(twin.layers[0].weights_f.numpy(), twin.layers[0].scale,
                          twin.layers[0].weight_exp, bits)
        assert np.array_equal(twin.layers[0].weights.numpy(), ref)
        assert np.array_equal(twin.run(x)[0][:, 0].numpy(),
                              _oracle(model, twin, x[:, 0].numpy(), bits)[0])
    with torch.no_grad():
        model[0].weight.neg_()
    twin = quantize(model, num_weight_bits=6)
    assert twin.layers[0].sign_mode == "inhibitory"
    assert np.array_equal(twin.layers[0].weights.numpy(),
                          _np_weights(twin.layers[0].weights_f.numpy(), twin.layers[0].scale,
                                      twin.layers[0].weight_exp, 6))


def test_current_wrap_matches_lava():
    """One pulse of 5 x (255 << 7) << 6 = 10.4e6 > 2**23 wraps u: Lava's wrap turns the
    positive pulse negative (row 0: no spike) and the negative one positive (row 1
    spikes); half the pulse does not wrap (row 2 spikes)."""
    lin = nn.Linear(5, 3, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0] * 5, [-1.0] * 5, [0.5] * 5]))
    model = nn.Sequential(lin, CubaLIF(tau_mem=20e-3, tau_syn=2e-3, dt=DT, threshold=1.0,
                                       reset="zero", input_scaling="direct"))
    twin = quantize(model, scale=255 * 2 ** 7, weight_exp=7)
    x = torch.zeros(40, 1, 5, dtype=torch.float64)
    x[::20] = 1
    ours = twin.run(x, "torch")[0][:, 0].numpy()
    assert np.array_equal(ours, _oracle(model, twin, x[:, 0].numpy())[0])
    assert np.array_equal(ours, twin.run(x, "numba")[0][:, 0].numpy())
    assert not ours[:, 0].any() and ours[:, 1].any() and ours[:, 2].any()


def test_quantisation_error_within_analytic_bounds():
    model = _net(4, [20, 10], ["cuba"])
    twin = quantize(model, num_weight_bits=8)
    lay, err = twin.layers[0], twin.errors[0]
    lsb = 2.0 ** lay.weight_exp / lay.scale  # one weight step in volts of drive
    assert err.weight_max_err <= 1.5 * lsb + 1e-12  # rounding (1/2) + mixed-sign lsb cut (1)
    assert err.threshold_rel_err <= 0.5 / lay.scale / 0.8 + 1e-15
    assert err.bias_max_err <= 0.5 / lay.scale + 1e-15
    assert err.decay_v_err <= 1 / 8192 and err.decay_u_err <= 1 / 8192
    assert err.clipped == 0 and 0 < err.weight_rel_rmse < 0.05


def test_overflow_refused_with_layer_and_amount_or_clipped_on_request():
    model = _net(5, [6, 4, 3], ["lif", "lif"])
    with torch.no_grad():
        model[2].weight[0, 0] = 50.0
    scale = [None, 300.0]
    with pytest.raises(ValueError, match=r"'2->3'.*overflow"):
        quantize(model, scale=scale, weight_exp=[None, 0])
    twin = quantize(model, scale=scale, weight_exp=[None, 0], allow_saturation=True)
    g = 1 - np.exp(-DT / 8e-3)
    raw = np.round(g * model[2].weight.detach().double().numpy() * 300.0)
    n_over = int((raw > 255).sum() + (raw < -256).sum())
    assert twin.errors[1].clipped == n_over >= 1
    assert twin.errors[1].clipped_max == pytest.approx((g * 50.0 * 300 - 255) / 300, abs=2 / 300)


def test_bad_input_named():
    model = _net(6, [4, 3], ["lif"])
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="'0->1'.*NaN"):
        quantize(model)
    with pytest.raises(ValueError, match="reset='subtract'"):
        quantize(nn.Sequential(nn.Linear(4, 5), LIF(10e-3, dt=DT, reset="subtract")))
    assert quantize(nn.Sequential(nn.Linear(4, 5), LIF(10e-3, dt=DT, reset="subtract")),
                    approximate_reset=True).layers[0].vth > 0
    with pytest.raises(ValueError, match="'0'.*MaxPool2d is not supported"):
        quantize(nn.Sequential(nn.MaxPool2d(2), LIF()), input_shape=(1, 4, 4))
    with pytest.raises(ValueError, match="'0->1'.*pass input_shape"):
        quantize(nn.Sequential(nn.Conv2d(1, 1, 3), LIF()))
    with pytest.raises(ValueError, match="'0'.*padding_mode='reflect'"):
        quantize(nn.Sequential(nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect"), LIF()),
                 input_shape=(1, 5, 5))
    with pytest.raises(ValueError, match="'0->1'.*do not take an input of shape \\(2, 5, 5\\)"):
        quantize(nn.Sequential(nn.Conv2d(1, 1, 3), LIF()), input_shape=(2, 5, 5))
    with pytest.raises(ValueError, match="'2'.*Linear expects 9 inputs.*\\(8,\\)"):
        quantize(nn.Sequential(nn.Linear(4, 8), LIF(reset="zero"), nn.Linear(9, 2),
                               LIF(reset="zero")))
    with pytest.raises(ValueError, match="no spiking layer"):
        quantize(nn.Sequential(nn.Linear(3, 3)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_twin_on_gpu_equals_cpu():
    model = _net(7, [10, 20, 5], ["cuba", "lif"])
    twin = quantize(model)
    x = torch.rand(50, 4, 10, dtype=torch.float64) * 3
    cpu = [s.numpy() for s in twin.run(x)]
    gpu = [s.cpu().numpy() for s in twin.run(x.cuda())]
    assert all(np.array_equal(a, b) for a, b in zip(cpu, gpu, strict=True))


def test_spike_error_against_float_model():
    """Per-layer mismatch and rates of twin vs float model equal a direct comparison;
    8-bit weights on their grid (multiples of 0.25 at scale 256) stay close to the
    float spikes (only the round-toward-zero decay differs), 2-bit weights do not."""
    lin = nn.Linear(6, 4, bias=False)
    rng = np.random.default_rng(9)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(rng.integers(-3, 4, (4, 6)) * 0.25))
    model = nn.Sequential(lin, LIF(20e-3, dt=DT, threshold=1.0, reset="zero",
                                   input_scaling="direct")).double()
    x = torch.from_numpy((rng.random((80, 3, 6)) < 0.5) * 1.0)
    with torch.no_grad():
        f = model(x)
    errs = []
    for bits in (8, 2):
        twin = quantize(model, scale=256.0, weight_exp=0, num_weight_bits=bits)
        err = twin.spike_error(model, x)[0]
        t = twin(x)
        assert err["mismatch"] == pytest.approx(float((t != f).double().mean()))
        assert err["rate_float"] == pytest.approx(float(f.mean()))
        assert err["rate_twin"] == pytest.approx(float(t.mean()))
        errs.append(err["mismatch"])
        # current error, directly: 2 mixed-sign bits keep multiples of 2**7 (floor)
        w = lin.weight.detach().double().numpy() * 256
        wq = w if bits == 8 else np.floor(w / 128) * 128
        diff = np.abs(x.numpy() @ (wq - w).T / 256)
        assert err["current_max_err"] == pytest.approx(diff.max(), abs=1e-12)
        assert err["current_mean_err"] == pytest.approx(diff.mean(), abs=1e-12)
    assert f.sum() > 20 and errs[0] < 0.02 and errs[1] > errs[0] + 0.02
    assert err["current_max_err"] > 0.2  # 2 bits: a quarter volt of error and more


def test_current_error_of_deeper_layers_uses_the_float_model_input():
    """Layer 2's current error is computed from the float model's layer-1 spikes:
    against the integer weights of the transcription (``_np_weights``) applied here."""
    model = _net(10, [8, 12, 5], ["lif", "cuba"]).double()
    twin = quantize(model)
    x = torch.from_numpy((np.random.default_rng(10).random((50, 2, 8)) < 0.5) * 1.0)
    rep = twin.spike_error(model, x)[1]
    with torch.no_grad():
        h = model[:2](x).numpy()
    lay = twin.layers[1]
    wi = _np_weights(lay.weights_f.numpy(), lay.scale, lay.weight_exp, 8)
    acc = np.round(h @ wi.T).astype(np.int64)
    acc = acc << lay.weight_exp if lay.weight_exp > 0 else acc >> -lay.weight_exp
    q = (acc + np.round(lay.bias_f.numpy() * lay.scale)) / lay.scale
    diff = np.abs(q - (h @ lay.weights_f.numpy().T + lay.bias_f.numpy()))
    assert h.sum() > 50
    assert rep["current_max_err"] == pytest.approx(diff.max(), rel=1e-9)
    assert rep["current_mean_err"] == pytest.approx(diff.mean(), rel=1e-9)
