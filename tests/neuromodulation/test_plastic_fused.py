"""The compiled whole-episode path of ``PlasticLinear.run`` (:mod:`neuromodulation.
_hebb_fused`) against a separately written unrolled torch loop, float64 to 1e-10.

The oracle: the Hebbian maths written out step by step in plain torch ops (one episode
at a time, ``torch.clamp`` for the clip) and the neuron stepped by its ``"reference"``
backend (the pure-torch functional step of :mod:`aura_snn.functional`, not the numba
kernel the fused path calls); gradients by ``torch.autograd`` through that loop for
``x``, the weight, ``alpha``, ``eta``, the bias, the modulator and the initial trace and
membrane (and synaptic current for ``CubaLIF``), with nonzero initial states and
episodes of several checkpoint segments (T = 11: segments of 4, 4, 3; T = 30: 6 x 5).
Then ``torch.autograd.gradcheck`` (finite differences) through the fused path with a
triangle surrogate so narrow that it is exactly zero at every step: every gradient
path that does not cross a spike (trace decay, clip mask, modulator, eta, alpha, the
membrane) is then checked against the true derivative. ``test_plastic.py``'s oracle
loop (a LIF written by hand) also runs through this path for its LIF cases.
"""

from __future__ import annotations

import pytest
import torch

import neuromodulation.plastic as plastic_mod
from aura_snn import ALIF, LIF, CubaLIF
from neuromodulation.plastic import PlasticLinear, PlasticState

TOL = dict(rtol=1e-10, atol=1e-10)
B, N, M = 2, 6, 5
F64 = torch.float64

NEURONS = {
    "lif": lambda **kw: LIF(tau_mem=5e-3, dt=1e-3, threshold=0.5, **kw),
    "lif_zero_triangle_detach": lambda **kw: LIF(
        tau_mem=4e-3, dt=1e-3, threshold=0.4, reset="zero", surrogate="triangle",
        slope=2.0, detach_reset=True, **kw),
    "cuba": lambda **kw: CubaLIF(tau_mem=5e-3, tau_syn=3e-3, dt=1e-3, threshold=0.3, **kw),
}
RULES = [  # rule, modulated, modulator shape per step, eta, clip
    ("hebb", False, None, 0.3, 1.0),
    ("clip", False, None, 0.7, 0.25),
    ("clip", True, "scalar", 0.0, 0.3),
    ("clip", True, "batch", 0.0, 0.3),
    ("clip", True, "unit", 0.0, 0.3),
]


class _Spy:
    """Counts the calls of the fused autograd function."""

    def __init__(self) -> None:
        self.calls = 0
        self.real = plastic_mod.FusedEpisodes

    def apply(self, *args):  # noqa: ANN002, ANN201
        self.calls += 1
        return self.real.apply(*args)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> _Spy:
    s = _Spy()
    monkeypatch.setattr(plastic_mod, "FusedEpisodes", s)
    return s


def _layer(rule: str, modulated: bool, eta: float, clip: float, seed: int = 1,
           **kw: object) -> PlasticLinear:
    g = torch.Generator().manual_seed(seed)
    layer = PlasticLinear(N, M, rule=rule, eta=eta, clip=clip, modulated=modulated,
                          bias=True, **kw).double()
    with torch.no_grad():
        layer.weight.copy_(torch.randn(N, M, generator=g, dtype=F64) * 0.8)
        layer.alpha.copy_(torch.randn(N, M, generator=g, dtype=F64) * 1.5)
        layer.bias.copy_(torch.randn(M, generator=g, dtype=F64) * 0.3)
    return layer


def _modulator(mshape: str | None, T: int, g: torch.Generator) -> torch.Tensor | None:
    if mshape is None:
        return None
    shape = {"scalar": (T,), "batch": (T, B), "unit": (T, B, M)}[mshape]
    return torch.randn(*shape, generator=g, dtype=F64) * 0.8


def _mod_at(m: torch.Tensor | None, t: int, b: int) -> torch.Tensor | None:
    """The modulator of episode ``b`` at step ``t`` as a scalar or an ``[M]`` row."""
    if m is None:
        return None
    return m[t] if m.dim() == 1 else m[t, b]


def oracle(x, w, alpha, eta, bias, m, h0, st0, neuron, *, rule, clip):  # noqa: ANN001, ANN201
    """The episode loop in plain torch: per batch element, i = x (W + alpha H) + b,
    y = neuron step (reference backend), then the trace rule. Returns (y, H_T, state_T)."""
    ys, hs, states = [], [], []
    for b in range(x.shape[1]):
        h = h0[b]
        st = type(st0)(*(f[b:b + 1] for f in st0))
        yb = []
        for t in range(x.shape[0]):
            i = x[t, b] @ (w + alpha * h) + bias
            y, st = neuron.step(i.unsqueeze(0), st)
            y = y[0]
            pair = torch.outer(x[t, b], y)
            mt = _mod_at(m, t, b)
            if mt is not None:
                h = torch.clamp(h + pair * mt, -clip, clip)
            elif rule == "hebb":
                h = (1 - eta) * h + eta * pair
            else:
                h = torch.clamp(h + eta * pair, -clip, clip)
            yb.append(y)
        ys.append(torch.stack(yb))
        hs.append(h)
        states.append(st)
    state = type(st0)(*(torch.cat([s[k] for s in states]) for k in range(len(st0))))
    return torch.stack(ys, 1), torch.stack(hs), state


@pytest.mark.parametrize("T", [11, 30])
@pytest.mark.parametrize("unit", list(NEURONS))
@pytest.mark.parametrize("rule,modulated,mshape,eta,clip", RULES)
def test_fused_matches_unrolled_torch_oracle(spy: _Spy, T: int, unit: str, rule: str,
                                             modulated: bool, mshape: str | None,
                                             eta: float, clip: float) -> None:
    g = torch.Generator().manual_seed(2)
    layer = _layer(rule, modulated, eta, clip)
    x = (torch.rand(T, B, N, generator=g, dtype=F64) * 1.5).requires_grad_()
    m = _modulator(mshape, T, g)
    m = None if m is None else m.requires_grad_()
    h0 = (torch.randn(B, N, M, generator=g, dtype=F64) * 0.1).requires_grad_()
    post = NEURONS[unit]()
    st0 = post.initial_state(torch.zeros(B, M, dtype=F64))
    st0 = type(st0)(*(torch.rand(B, M, generator=g, dtype=F64) * 0.3 for _ in st0))
    st0 = type(st0)(*(f.requires_grad_() for f in st0))
    out = layer.run(x, PlasticState(h0), post=post, post_state=st0, modulator=m)
    assert spy.calls == 1

    gy = torch.randn(T, B, M, generator=g, dtype=F64)
    gh = torch.randn(B, N, M, generator=g, dtype=F64)
    gv = [torch.randn(B, M, generator=g, dtype=F64) for _ in st0]

    def loss(y: torch.Tensor, h: torch.Tensor, st: tuple) -> torch.Tensor:
        return (y * gy).sum() + (h * gh).sum() + sum((f * c).sum() for f, c in zip(st, gv,
                                                                                  strict=True))

    params = [layer.weight, layer.alpha, layer.bias, x, h0, *st0] + ([m] if modulated else
                                                                    [layer.eta])
    ours = torch.autograd.grad(loss(out.output, out.state.hebb, out.post_state), params)

    ref_params = [p.detach().clone().requires_grad_() for p in params]
    w, a, bias, x2, h2 = ref_params[:5]
    s2 = type(st0)(*ref_params[5:5 + len(st0)])
    m2 = ref_params[-1] if modulated else None
    e2 = layer.eta.detach() if modulated else ref_params[-1]
    y, h, st = oracle(x2, w, a, e2, bias, m2, h2, s2, NEURONS[unit](backend="reference"),
                      rule=rule, clip=clip)
    ref = torch.autograd.grad(loss(y, h, st), ref_params)

    torch.testing.assert_close(out.output, y, **TOL)
    torch.testing.assert_close(out.state.hebb, h, **TOL)
    for got, want in zip(out.post_state, st, strict=True):
        torch.testing.assert_close(got, want, **TOL)
    names = ["W", "alpha", "bias", "x", "H0", *st0._fields, "M" if modulated else "eta"]
    for name, got, want in zip(names, ours, ref, strict=True):
        torch.testing.assert_close(got, want, **TOL, msg=f"gradient of {name}")
    # the case exercises what it claims: spikes fire (not always), clipping happens
    assert 0.05 < out.output.mean().item() < 0.95
    if rule == "clip":
        assert (out.state.hebb.abs() == clip).any()


@pytest.mark.parametrize("rule,modulated,mshape,eta,clip", [
    ("hebb", False, None, 0.3, 1.0), ("clip", False, None, 0.7, 0.25),
    ("clip", True, "unit", 0.0, 0.3)])
def test_gradcheck_with_the_surrogate_off(spy: _Spy, rule: str, modulated: bool,
                                          mshape: str | None, eta: float,
                                          clip: float) -> None:
    """Finite differences through the fused path, all inputs. A triangle surrogate of
    width 1e-4 V is zero at every step unless a membrane sits within 1e-4 V of the
    threshold (then gradcheck fails loudly), so the analytic gradient must equal the
    true derivative of the (locally spike-constant) function."""
    g = torch.Generator().manual_seed(4)
    layer = _layer(rule, modulated, eta, clip, seed=3)
    T = 7  # segments of 3, 3, 1
    lif = LIF(tau_mem=5e-3, dt=1e-3, threshold=0.2, surrogate="triangle", slope=1e4)
    x = torch.rand(T, B, N, generator=g, dtype=F64) * 2.0
    m = _modulator(mshape, T, g)
    h0 = torch.randn(B, N, M, generator=g, dtype=F64) * 0.1
    v0 = torch.rand(B, M, generator=g, dtype=F64) * 0.3
    params = [layer.weight, layer.alpha, layer.bias] + ([] if modulated else [layer.eta])
    names = ["weight", "alpha", "bias"] + ([] if modulated else ["eta"])
    layer.forward = layer.run  # type: ignore[method-assign]  # functional_call -> run

    def f(x, h0, v0, m, *ps):  # noqa: ANN001, ANN202
        out = torch.func.functional_call(
            layer, dict(zip(names, ps, strict=True)), (x, PlasticState(h0)),
            dict(post=lif, post_state=type(lif.initial_state(v0))(v0), modulator=m),
            strict=False)
        return out.output, out.state.hebb, out.post_state.v

    inputs = [x, h0, v0, m] + [p.detach().clone() for p in params]
    inputs = [None if t is None else t.requires_grad_() for t in inputs]
    spikes = f(*inputs)[0]
    assert spy.calls == 1 and 0.05 < spikes.mean().item() < 0.95
    if rule == "clip":
        assert (f(*inputs)[1].abs() == clip).any()
    assert torch.autograd.gradcheck(f, tuple(inputs), eps=1e-7, atol=1e-6)


@pytest.mark.parametrize("case", ["oja", "retroactive", "shared", "tanh", "reference",
                                  "learn_tau", "alif", "observer"])
def test_other_cases_take_the_step_loop(spy: _Spy, case: str) -> None:
    """Where the fused path does not apply, run() takes the step loop (whose own oracle
    tests are in test_plastic.py)."""
    kw: dict = {}
    rule, modulated = ("oja", False) if case == "oja" else ("clip", case == "retroactive")
    if case == "retroactive":
        kw["retroactive"] = True
    if case == "shared":
        kw["shared_trace"] = True
    layer = _layer(rule, modulated, 0.3, 0.5, **kw)
    post = {"tanh": torch.tanh, "reference": NEURONS["lif"](backend="reference"),
            "learn_tau": NEURONS["lif"](learn_tau=True),
            "alif": ALIF(tau_mem=5e-3, dt=1e-3, threshold=0.5)}.get(case, NEURONS["lif"]())
    if case == "observer":
        post.add_observer(lambda *a, **k: None)
    x = torch.rand(5, B, N, dtype=F64)
    layer.run(x, post=post, modulator=torch.rand(5, dtype=F64) if modulated else None)
    assert spy.calls == 0
    layer_lif = _layer("hebb", False, 0.3, 1.0)
    layer_lif.run(x, post=NEURONS["lif"]())
    assert spy.calls == 1  # and the plain case does take it


def test_pool_and_calling_thread_give_the_same_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Episodes on numba's pool or on the calling thread run the same per-episode code:
    outputs and every gradient equal bit for bit, float32."""
    import neuromodulation._hebb_fused as hf

    g = torch.Generator().manual_seed(5)
    layer = _layer("clip", True, 0.0, 0.3).float()
    x = torch.rand(9, 4, N, generator=g) * 1.5
    m = torch.randn(9, 4, M, generator=g)
    results = []
    for work in (0, 2 ** 62):
        monkeypatch.setattr(hf, "POOL_MIN_WORK", work)
        assert hf.pooled(4, 9, N, M) == (work == 0)
        xs, ms = x.clone().requires_grad_(), m.clone().requires_grad_()
        out = layer.run(xs, post=NEURONS["cuba"](), modulator=ms)
        loss = (out.output * torch.arange(M)).sum() + out.state.hebb.pow(2).sum()
        grads = torch.autograd.grad(loss, [xs, ms, layer.weight, layer.alpha, layer.bias])
        results.append((out.output, out.state.hebb, *grads))
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)
