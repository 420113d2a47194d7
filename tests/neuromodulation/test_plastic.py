"""PlasticLinear against a separately written loop (plain torch ops, one episode at a
time, the rules written from the papers' equations), float64 to 1e-10: outputs, final
traces and the gradients of W, alpha, eta, the bias, the input and the modulator; a
tanh rate unit and a LIF written out by hand in front of the fused kernel; gradcheck on
a tiny instance; batch elements never mix; named errors for bad input.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from aura_snn import LIF
from neuromodulation.plastic import PlasticLinear, PlasticState

TOL = dict(rtol=1e-10, atol=1e-10)
T, B, N, M = 12, 3, 7, 5
DT, TAU, THETA, K = 1e-3, 5e-3, 0.5, 25.0  # LIF: s, s, V, surrogate slope 1/V


class _Heaviside(torch.autograd.Function):
    """H(z) forward, 1/(1 + K|z|)^2 backward (the SuperSpike fast sigmoid)."""

    @staticmethod
    def forward(ctx, z):  # noqa: ANN001, ANN205
        ctx.save_for_backward(z)
        return (z > 0).to(z.dtype)

    @staticmethod
    def backward(ctx, g):  # noqa: ANN001, ANN205
        (z,) = ctx.saved_tensors
        return g / (1.0 + K * z.abs()) ** 2


def oracle_lif() -> tuple[Callable, Callable]:
    """LIF with exact decay a = exp(-dt/tau), input gain 1 - a, subtractive reset at the
    spike, gradient through the reset: v' = a v + (1 - a) i - theta S."""
    a = math.exp(-DT / TAU)

    def step(i: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u = a * v + (1.0 - a) * i
        s = _Heaviside.apply(u - THETA)
        return s, u - THETA * s

    return step, lambda m: torch.zeros(m, dtype=torch.float64)


def oracle_episode(x: torch.Tensor, w: torch.Tensor, alpha: torch.Tensor,
                   eta: torch.Tensor, *, rule: str, clip: float, unit: str,
                   m: torch.Tensor | None = None, retro: bool = False,
                   bias: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One episode ``x`` [T, N] synapse by synapse in matrix form; returns (y [T, M], H)."""
    n, mm = w.shape
    hebb = torch.zeros(n, mm, dtype=x.dtype)
    elig = torch.zeros(n, mm, dtype=x.dtype)
    lif, v0 = oracle_lif()
    v = v0(mm)
    ys = []
    for t in range(x.shape[0]):
        pre = x[t]
        i = pre @ (w + alpha * hebb)
        if bias is not None:
            i = i + bias
        if unit == "tanh":
            y = torch.tanh(i)
        else:
            y, v = lif(i, v)
        pair = torch.outer(pre, y)
        if m is not None:
            if retro:
                elig = (1 - eta) * elig + eta * pair
                hebb = torch.clamp(hebb + m[t] * elig, -clip, clip)
            else:
                hebb = torch.clamp(hebb + m[t] * pair, -clip, clip)
        elif rule == "hebb":
            hebb = (1 - eta) * hebb + eta * pair
        elif rule == "clip":
            hebb = torch.clamp(hebb + eta * pair, -clip, clip)
        else:  # Oja: H_kj += eta y_j (x_k - y_j H_kj)
            new = torch.empty_like(hebb)
            for k in range(n):
                for j in range(mm):
                    new[k, j] = hebb[k, j] + eta * y[j] * (pre[k] - y[j] * hebb[k, j])
            hebb = new
        ys.append(y)
    return torch.stack(ys), hebb


CASES = [
    # rule, modulated, retroactive, modulator shape per step, eta, clip
    ("hebb", False, False, None, 0.3, 1.0),
    ("clip", False, False, None, 0.7, 0.4),
    ("oja", False, False, None, 0.2, 1.0),
    ("clip", True, False, "batch", 0.0, 0.3),
    ("clip", True, False, "unit", 0.0, 0.3),
    ("clip", True, True, "batch", 0.4, 0.3),
    ("clip", True, True, "unit", 0.4, 0.3),
    ("clip", True, True, "scalar", 0.4, 0.3),
]


def _build(rule: str, modulated: bool, retro: bool, eta: float, clip: float,
           bias: bool, shared: bool = False) -> PlasticLinear:
    g = torch.Generator().manual_seed(1)
    layer = PlasticLinear(N, M, rule=rule, eta=eta, clip=clip, modulated=modulated,
                          retroactive=retro, bias=bias, alpha_init=0.0,
                          shared_trace=shared).double()
    with torch.no_grad():
        layer.weight.copy_(torch.randn(N, M, generator=g, dtype=torch.float64) * 0.8)
        layer.alpha.copy_(torch.randn(N, M, generator=g, dtype=torch.float64) * 1.5)
        if bias:
            layer.bias.copy_(torch.randn(M, generator=g, dtype=torch.float64) * 0.3)
    return layer


@pytest.mark.parametrize("unit", ["tanh", "lif"])
@pytest.mark.parametrize("rule,modulated,retro,mshape,eta,clip", CASES)
def test_matches_loop_oracle(unit: str, rule: str, modulated: bool, retro: bool,
                             mshape: str | None, eta: float, clip: float) -> None:
    g = torch.Generator().manual_seed(2)
    layer = _build(rule, modulated, retro, eta, clip, bias=True)
    scale = 1.0 if unit == "tanh" else 2.0
    x = (torch.rand(T, B, N, generator=g, dtype=torch.float64) * scale).requires_grad_()
    mod = None
    if modulated:
        shape = {"scalar": (T,), "batch": (T, B), "unit": (T, B, M)}[mshape]
        mod = (torch.randn(*shape, generator=g, dtype=torch.float64) * 0.8).requires_grad_()
    post = torch.tanh if unit == "tanh" else LIF(tau_mem=TAU, dt=DT, threshold=THETA)
    out = layer.run(x, post=post, modulator=mod)
    gy = torch.randn(T, B, M, generator=g, dtype=torch.float64)
    gh = torch.randn(B, N, M, generator=g, dtype=torch.float64)
    params = [layer.weight, layer.alpha, layer.bias, x] + ([mod] if modulated else [])
    if not (modulated and not retro):
        params.append(layer.eta)
    loss = (out.output * gy).sum() + (out.state.hebb * gh).sum()
    ours = torch.autograd.grad(loss, params)

    w, a, e, bb = (p.detach().clone().requires_grad_() for p in
                   (layer.weight, layer.alpha, layer.eta, layer.bias))
    x2 = x.detach().clone().requires_grad_()
    m2 = None if mod is None else mod.detach().clone().requires_grad_()
    ref_loss = 0.0
    ys, hs = [], []
    for b in range(B):
        mb = None
        if m2 is not None:
            mb = {"scalar": m2, "batch": m2[:, b] if m2.dim() == 2 else None,
                  "unit": m2[:, b] if m2.dim() == 3 else None}[mshape]
        y, h = oracle_episode(x2[:, b], w, a, e, rule=rule, clip=clip, unit=unit, m=mb,
                              retro=retro, bias=bb)
        ys.append(y)
        hs.append(h)
        ref_loss = ref_loss + (y * gy[:, b]).sum() + (h * gh[b]).sum()
    ref_params = [w, a, bb, x2] + ([m2] if modulated else [])
    if not (modulated and not retro):
        ref_params.append(e)
    ref = torch.autograd.grad(ref_loss, ref_params)

    torch.testing.assert_close(out.output, torch.stack(ys, 1), **TOL)
    torch.testing.assert_close(out.state.hebb, torch.stack(hs), **TOL)
    for name, got, want in zip(["W", "alpha", "bias", "x", "M/eta", "eta"], ours, ref,
                               strict=False):
        torch.testing.assert_close(got, want, **TOL, msg=f"gradient of {name}")
    # the cases must exercise what they claim: spikes fire, clipping happens
    if unit == "lif":
        rate = out.output.mean().item()
        assert 0.05 < rate < 0.95, rate
    if rule == "clip":
        assert (out.state.hebb.abs() == clip).any()


@pytest.mark.parametrize("rule,modulated,retro,mshape,eta,clip", CASES)
def test_gradcheck_tiny(rule: str, modulated: bool, retro: bool, mshape: str | None,
                        eta: float, clip: float) -> None:
    """torch.autograd.gradcheck (finite differences) through every input and parameter.
    clip is large enough that no entry sits on its kink."""
    g = torch.Generator().manual_seed(3)
    layer = _build(rule, modulated, retro, max(eta, 0.3), 50.0, bias=True)
    x = torch.rand(4, 2, N, generator=g, dtype=torch.float64).requires_grad_()
    shape = {"scalar": (4,), "batch": (4, 2), "unit": (4, 2, M), None: (4,)}[mshape]
    m = torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_()
    names = ["weight", "alpha", "eta", "bias"]

    def f(x: torch.Tensor, m: torch.Tensor, *params: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = torch.func.functional_call(
            layer, dict(zip(names, params, strict=True)), (x,),
            dict(post=torch.tanh, modulator=m if modulated else None), strict=False)
        return out.output, out.state.hebb

    # the layer is called through run(): functional_call calls forward, so wrap run
    layer.forward = layer.run  # type: ignore[method-assign]
    params = tuple(getattr(layer, n).detach().clone().requires_grad_() for n in names)
    assert torch.autograd.gradcheck(f, (x, m, *params), eps=1e-6, atol=1e-7)


def test_batch_elements_never_mix() -> None:
    """Each batch element equals its episode run alone, and d y[:, b] / d x[:, b'] is
    exactly zero for b != b' (B independent traces)."""
    layer = _build("clip", False, False, 0.5, 0.5, bias=True)
    x = torch.rand(T, B, N, dtype=torch.float64, requires_grad=True)
    y = layer(x, post=torch.tanh)
    for b in range(B):
        alone = layer(x[:, b:b + 1].detach(), post=torch.tanh)
        torch.testing.assert_close(y[:, b:b + 1], alone, rtol=0, atol=1e-14)
        (gx,) = torch.autograd.grad(y[:, b].sum(), x, retain_graph=True)
        others = [c for c in range(B) if c != b]
        assert torch.count_nonzero(gx[:, others]) == 0
        assert torch.count_nonzero(gx[:, b]) > 0


def test_chunks_continue_the_episode() -> None:
    """Two runs passing the state (trace and neuron) equal one run over the whole episode."""
    layer = _build("oja", False, False, 0.2, 1.0, bias=False)
    lif = LIF(tau_mem=TAU, dt=DT, threshold=THETA)
    x = torch.rand(T, B, N, dtype=torch.float64) * 2
    whole = layer.run(x, post=lif)
    first = layer.run(x[:5], post=lif)
    second = layer.run(x[5:], first.state, post=lif, post_state=first.post_state)
    torch.testing.assert_close(torch.cat([first.output, second.output]), whole.output,
                               rtol=0, atol=0)
    torch.testing.assert_close(second.state.hebb, whole.state.hebb, rtol=0, atol=0)


def test_step_api_with_a_modulator_the_network_outputs() -> None:
    """Backpropamine's loop: M(t) = tanh(v . y(t)) computed from the layer's own output
    inside the episode; gradients of v and W equal the oracle loop's."""
    layer = _build("clip", True, True, 0.4, 0.3, bias=False)
    v = torch.randn(M, dtype=torch.float64, requires_grad=True)
    x = torch.rand(T, B, N, dtype=torch.float64)
    state, ys = layer.reset_trace(B, dtype=torch.float64), []
    for t in range(T):
        i = layer.current(x[t], state)
        y = torch.tanh(i)
        state = layer.update(state, x[t], y, torch.tanh(y @ v))
        ys.append(y)
    loss = torch.stack(ys).pow(2).sum() + state.hebb.sum()
    ours = torch.autograd.grad(loss, [v, layer.weight, layer.alpha, layer.eta])

    w, a, e = (p.detach().clone().requires_grad_() for p in
               (layer.weight, layer.alpha, layer.eta))
    v2 = v.detach().clone().requires_grad_()
    ref_loss = 0.0
    for b in range(B):
        hebb = torch.zeros(N, M, dtype=torch.float64)
        elig = torch.zeros(N, M, dtype=torch.float64)
        for t in range(T):
            y = torch.tanh(x[t, b] @ (w + a * hebb))
            elig = (1 - e) * elig + e * torch.outer(x[t, b], y)
            hebb = torch.clamp(hebb + torch.tanh(y @ v2) * elig, -0.3, 0.3)
            ref_loss = ref_loss + y.pow(2).sum()
        ref_loss = ref_loss + hebb.sum()
    ref = torch.autograd.grad(ref_loss, [v2, w, a, e])
    for got, want in zip(ours, ref, strict=True):
        torch.testing.assert_close(got, want, **TOL)


def test_float32_follows_float64() -> None:
    """The default dtype (float32) gives the float64 result to float32 accuracy."""
    layer = _build("hebb", False, False, 0.3, 1.0, bias=True)
    x = torch.rand(T, B, N, dtype=torch.float64)
    y64 = layer(x, post=torch.tanh)
    y32 = layer.float()(x.float(), post=torch.tanh)
    assert y32.dtype == torch.float32
    torch.testing.assert_close(y32.double(), y64, rtol=0, atol=1e-5)


def test_plasticity_off_is_a_plain_linear_layer() -> None:
    """alpha = 0 (fixed): the output is x W + b at every step, whatever the trace does."""
    layer = PlasticLinear(N, M, alpha_init=0.0, learn_alpha=False, bias=True).double()
    x = torch.rand(T, B, N, dtype=torch.float64)
    y = layer(x, post=torch.relu)
    torch.testing.assert_close(y, torch.relu(x @ layer.weight + layer.bias), **TOL)


def test_empty_episode_returns_the_state() -> None:
    layer = PlasticLinear(N, M)
    st = layer.reset_trace(B)
    out = layer.run(torch.zeros(0, B, N), st)
    assert out.output.shape == (0, B, M) and out.state is st


@pytest.mark.parametrize("kwargs,match", [
    (dict(rule="stdp"), "rule must be one of 'hebb', 'clip', 'oja'"),
    (dict(rule="oja", modulated=True), "rule must be one of 'clip'"),
    (dict(retroactive=True), "retroactive=True needs modulated=True"),
    (dict(eta=float("nan")), "eta must be finite"),
    (dict(eta=1.5), r"eta must be \[0, 1\] for rule='hebb'"),
    (dict(rule="clip", eta=-0.1), "eta must be >= 0"),
    (dict(clip=0.0), "clip must be a finite number > 0"),
    (dict(alpha_init=torch.zeros(2, 2)), r"alpha_init must have shape \(7, 5\)"),
    (dict(modulated=1), "modulated must be a bool"),
])
def test_bad_parameters_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        PlasticLinear(N, M, **kwargs)


def test_bad_inputs_are_named() -> None:
    layer = PlasticLinear(N, M)
    mod = PlasticLinear(N, M, modulated=True)
    x = torch.rand(T, B, N)
    with pytest.raises(ValueError, match=r"x must have shape \[T, B, 7\]"):
        layer(torch.rand(T, B, N + 1))
    with pytest.raises(ValueError, match="x contains 36 NaN"):
        layer(torch.where(torch.arange(N) == 2, float("nan"), x))
    with pytest.raises(ValueError, match=r"state.hebb must have shape \(3, 7, 5\)"):
        layer(x, layer.reset_trace(B + 1))
    with pytest.raises(ValueError, match=r"state.hebb must have shape \(7, 5\) \(in, out\)"):
        PlasticLinear(N, M, shared_trace=True)(x, layer.reset_trace(B))
    with pytest.raises(TypeError, match="state must be a PlasticState"):
        layer(x, torch.zeros(B, N, M))
    with pytest.raises(ValueError, match="modulator is required"):
        mod(x)
    with pytest.raises(ValueError, match="modulator given to a layer built with"):
        layer(x, modulator=torch.ones(T))
    with pytest.raises(ValueError, match=r"modulator must have shape \(12,\) or \(12, 3\)"):
        mod(x, modulator=torch.ones(T, B + 1))
    with pytest.raises(ValueError, match="modulator contains"):
        mod(x, modulator=torch.full((T,), float("inf")))
    with pytest.raises(TypeError, match="post must be None, a callable or a SpikingNeuron"):
        layer(x, post=3)
    with pytest.raises(ValueError, match=r"pre must be \[B, 7\] and post \[B, 5\]"):
        layer.update(layer.reset_trace(B), x[0], torch.rand(B, M + 1))
    assert isinstance(layer.reset_trace(2), PlasticState)


def oracle_shared(x: torch.Tensor, w: torch.Tensor, alpha: torch.Tensor, eta: torch.Tensor,
                  *, rule: str, clip: float, unit: str, m: torch.Tensor | None,
                  retro: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One trace for the whole batch ``x`` [T, B, N]: every stream answers through the
    same W + alpha H, then H moves by the batch mean of the per-stream increments."""
    steps, nb, n = x.shape
    mm = w.shape[1]
    hebb = torch.zeros(n, mm, dtype=x.dtype)
    elig = torch.zeros(n, mm, dtype=x.dtype)
    lif, v0 = oracle_lif()
    vs = [v0(mm) for _ in range(nb)]
    out = []
    for t in range(steps):
        ys = []
        for b in range(nb):
            i = x[t, b] @ (w + alpha * hebb)
            if unit == "tanh":
                ys.append(torch.tanh(i))
            else:
                s, vs[b] = lif(i, vs[b])
                ys.append(s)
        pairs = [torch.outer(x[t, b], ys[b]) for b in range(nb)]
        if m is not None:
            mb = [m[t] if m.dim() == 1 else m[t, b] for b in range(nb)]
            if retro:
                elig = (1 - eta) * elig + eta * sum(pairs) / nb
                hebb = torch.clamp(hebb + sum(mb) / nb * elig, -clip, clip)
            else:
                inc = sum(mb[b] * pairs[b] for b in range(nb)) / nb
                hebb = torch.clamp(hebb + inc, -clip, clip)
        elif rule == "hebb":
            hebb = hebb + sum(eta * (pairs[b] - hebb) for b in range(nb)) / nb
        elif rule == "clip":
            hebb = torch.clamp(hebb + eta * sum(pairs) / nb, -clip, clip)
        else:  # Oja, the batch mean of eta y_j (x_k - y_j H_kj)
            inc = torch.zeros_like(hebb)
            for b in range(nb):
                y = ys[b]
                inc = inc + eta * y[None, :] * (x[t, b][:, None] - y[None, :] * hebb)
            hebb = hebb + inc / nb
        out.append(torch.stack(ys))
    return torch.stack(out), hebb


@pytest.mark.parametrize("unit", ["tanh", "lif"])
@pytest.mark.parametrize("rule,modulated,retro,mshape,eta,clip", CASES)
def test_shared_trace_matches_loop_oracle(unit: str, rule: str, modulated: bool, retro: bool,
                                          mshape: str | None, eta: float, clip: float) -> None:
    g = torch.Generator().manual_seed(4)
    layer = _build(rule, modulated, retro, eta, clip, bias=False, shared=True)
    scale = 1.0 if unit == "tanh" else 2.0
    x = (torch.rand(T, B, N, generator=g, dtype=torch.float64) * scale).requires_grad_()
    mod = None
    if modulated:
        shape = {"scalar": (T,), "batch": (T, B), "unit": (T, B, M)}[mshape]
        # biased positive, so that the batch mean still drives entries to the clip
        mod = (torch.randn(*shape, generator=g, dtype=torch.float64) * 0.8 + 0.8)
        mod.requires_grad_()
    post = torch.tanh if unit == "tanh" else LIF(tau_mem=TAU, dt=DT, threshold=THETA)
    out = layer.run(x, post=post, modulator=mod)
    assert out.state.hebb.shape == (N, M)
    gy = torch.randn(T, B, M, generator=g, dtype=torch.float64)
    gh = torch.randn(N, M, generator=g, dtype=torch.float64)
    params = [layer.weight, layer.alpha, x] + ([mod] if modulated else [])
    if not (modulated and not retro):
        params.append(layer.eta)
    ours = torch.autograd.grad((out.output * gy).sum() + (out.state.hebb * gh).sum(), params)

    w, a, e = (p.detach().clone().requires_grad_() for p in
               (layer.weight, layer.alpha, layer.eta))
    x2 = x.detach().clone().requires_grad_()
    m2 = None if mod is None else mod.detach().clone().requires_grad_()
    y, h = oracle_shared(x2, w, a, e, rule=rule, clip=clip, unit=unit, m=m2, retro=retro)
    ref_params = [w, a, x2] + ([m2] if modulated else [])
    if not (modulated and not retro):
        ref_params.append(e)
    ref = torch.autograd.grad((y * gy).sum() + (h * gh).sum(), ref_params)
    torch.testing.assert_close(out.output, y, **TOL)
    torch.testing.assert_close(out.state.hebb, h, **TOL)
    for got, want in zip(ours, ref, strict=True):
        torch.testing.assert_close(got, want, **TOL)
    if rule == "clip":
        assert (out.state.hebb.abs() == clip).any()


def test_step_by_step_equals_run() -> None:
    """step() (validated, one step at a time) gives run()'s outputs and trace exactly."""
    layer = _build("clip", True, True, 0.4, 0.3, bias=True)
    lif = LIF(tau_mem=TAU, dt=DT, threshold=THETA)
    x = torch.rand(T, B, N, dtype=torch.float64) * 2
    m = torch.randn(T, B, dtype=torch.float64)
    whole = layer.run(x, post=lif, modulator=m)
    state, v, ys = None, None, []
    for t in range(T):
        y, state, v = layer.step(x[t], state, post=lif, post_state=v, modulator=m[t])
        ys.append(y)
    torch.testing.assert_close(torch.stack(ys), whole.output, rtol=0, atol=0)
    torch.testing.assert_close(state.hebb, whole.state.hebb, rtol=0, atol=0)
    torch.testing.assert_close(state.eligibility, whole.state.eligibility, rtol=0, atol=0)


@pytest.mark.gpu
@pytest.mark.parametrize("shared", [False, True])
def test_cuda_equals_cpu(shared: bool) -> None:
    """The same episode on CUDA (LIF through its GPU kernel) and on CPU, float64:
    outputs, trace and parameter gradients agree to 1e-9."""
    results = []
    for device in ("cpu", "cuda"):
        layer = _build("clip", True, True, 0.4, 0.3, bias=True, shared=shared).to(device)
        g = torch.Generator().manual_seed(5)
        x = (torch.rand(T, B, N, generator=g, dtype=torch.float64) * 2).to(device)
        m = torch.randn(T, B, generator=g, dtype=torch.float64).to(device)
        lif = LIF(tau_mem=TAU, dt=DT, threshold=THETA).to(device)
        out = layer.run(x, post=lif, modulator=m)
        loss = out.output.sum() + out.state.hebb.square().sum()
        grads = torch.autograd.grad(loss, [layer.weight, layer.alpha, layer.eta, layer.bias])
        results.append([t.cpu() for t in (out.output, out.state.hebb, *grads)])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-9)
