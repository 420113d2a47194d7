"""Peer equality: our ``LIF``/``CubaLIF`` against Norse ``LIFBoxCell``/``LIF`` (float64).

Mappings under test (Norse keeps inverse time constants in 1/s; ``tau_from_tau_inv``
from :mod:`aura_snn.functional.conventions`; Norse integrates with forward Euler and
resets in the step that spikes):

* ``LIFBoxCell(LIFBoxParameters(tau_mem_inv, v_leak, v_th, v_reset), dt)`` stepped over
  time == ``LIF(tau_mem=tau_from_tau_inv(tau_mem_inv), dt=dt, threshold=v_th,
  v_leak=v_leak, v_reset=v_reset, integration="euler", reset="zero")`` (default
  ``input_scaling="ode"``: Norse's ``dv = dt/tau (v_leak - v + x)`` is our
  :math:`g = 1 - a = dt/tau`). With ``reset_method=reset_subtract``: ``reset="subtract"``.
* ``LIF(LIFParameters(tau_syn_inv=tau_inv_from_tau(tau_syn), tau_mem_inv=
  tau_inv_from_tau(tau_mem), v_leak, v_th, v_reset), dt)`` over a time-major tensor ==
  ``CubaLIF(tau_mem, tau_syn, dt=dt, threshold=v_th,
  v_leak=v_leak, v_reset=v_reset, integration="euler", reset="zero",
  order="current_first")``. Norse stores the synaptic current *after* its decay for
  the next step, ours before: ``norse_state.i == (1 - dt/tau_syn) * our_state.i``.
* Surrogate: Norse ``method="super"`` is :math:`1/(1 + |x|)^2` and ignores ``alpha``
  (``SuperSpike.backward`` in norse 1.1.0), i.e. our ``fast_sigmoid`` with
  ``slope=1`` for every ``alpha``. (Our surrogate docstring says "``"super"``
  (alpha=k)", which does not hold for this Norse version; reported to the core owner.)
  Norse's reset keeps the spike's gradient: ``detach_reset=False``.
"""

from __future__ import annotations

import pytest
import torch

norse = pytest.importorskip("norse.torch", reason="peer oracle: pip install norse (extra 'peers')")

from norse.torch.functional.lif import (  # noqa: E402
    LIFFeedForwardState,
    lif_feed_forward_step,
)
from norse.torch.functional.lif_box import LIFBoxFeedForwardState  # noqa: E402
from norse.torch.functional.reset import reset_subtract, reset_value  # noqa: E402
from norse.torch.functional.threshold import threshold as norse_threshold  # noqa: E402

from aura_snn import LIF, CubaLIF  # noqa: E402
from aura_snn.functional import spike  # noqa: E402
from aura_snn.functional.conventions import tau_from_tau_inv, tau_inv_from_tau  # noqa: E402

pytestmark = pytest.mark.peers

DT = 1e-3  # s
TAU_MEM_INV = 100.0  # 1/s (LIFBox tests): tau_mem = 10 ms
V_LEAK, V_TH, V_RESET = 0.1, 1.0, -0.2  # V
T, B, N = 1000, 4, 128
BACKENDS = ["auto", "reference"]
NORSE_RESETS = {"zero": reset_value, "subtract": reset_subtract}


def _f64(v: float) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.float64)


def _box_params(reset: str) -> norse.LIFBoxParameters:
    return norse.LIFBoxParameters(tau_mem_inv=_f64(TAU_MEM_INV), v_leak=_f64(V_LEAK),
                                  v_th=_f64(V_TH), v_reset=_f64(V_RESET), method="super",
                                  alpha=_f64(100.0), reset_method=NORSE_RESETS[reset])


def _run_box(x: torch.Tensor, reset: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Norse's cell stepped over time from rest; returns (spikes, v) [T, ...]."""
    cell = norse.LIFBoxCell(_box_params(reset), dt=DT)
    state = LIFBoxFeedForwardState(v=torch.full_like(x[0], V_LEAK))
    zs, vs = [], []
    for x_t in x.unbind(0):
        z, state = cell(x_t, state)
        zs.append(z)
        vs.append(state.v)
    return torch.stack(zs), torch.stack(vs)


def _ours_box(build64, reset: str, backend: str = "auto") -> LIF:
    return build64(LIF, tau_from_tau_inv(TAU_MEM_INV), dt=DT, threshold=V_TH, v_leak=V_LEAK,
                   v_reset=V_RESET, integration="euler", reset=reset, surrogate="fast_sigmoid",
                   slope=1.0, detach_reset=False, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_lif_box_cell_matches_lif(reset, backend, build64, assert_same_trains):
    x = torch.rand(T, B, N, dtype=torch.float64) * 2.4  # mean 1.2 V vs threshold 1 V
    z, v = _run_box(x, reset)
    out = _ours_box(build64, reset, backend).run(x, record_v=True)
    assert_same_trains(out.spikes, out.v, z, v)


@pytest.mark.parametrize("backend", BACKENDS)
def test_lif_matches_cubalif(backend, build64, assert_same_trains):
    x = torch.rand(T, B, N, dtype=torch.float64) * 0.5  # current ~ 5 x, v ~ v_leak + i
    # this direction starts from our time constants (s) and converts them for Norse
    tau_mem, tau_syn = 10e-3, 5e-3
    p = norse.LIFParameters(tau_syn_inv=_f64(tau_inv_from_tau(tau_syn)),
                            tau_mem_inv=_f64(tau_inv_from_tau(tau_mem)),
                            v_leak=_f64(V_LEAK), v_th=_f64(V_TH), v_reset=_f64(V_RESET),
                            method="super", alpha=_f64(100.0))
    layer = norse.LIF(p, dt=DT, record_states=True)
    state0 = LIFFeedForwardState(v=torch.full_like(x[0], V_LEAK), i=torch.zeros_like(x[0]))
    z, states = layer(x, state0)
    ours = build64(CubaLIF, tau_mem=tau_mem, tau_syn=tau_syn, dt=DT, threshold=V_TH,
                   v_leak=V_LEAK, v_reset=V_RESET, integration="euler", reset="zero",
                   order="current_first", backend=backend)
    out = ours.run(x, record_v=True)
    assert_same_trains(out.spikes, out.v, z, states.v)
    a_syn = 1.0 - DT / tau_syn  # Norse stores i after this step's decay
    assert float((a_syn * out.state.i - states.i[-1]).abs().max()) <= 1e-12


@pytest.mark.parametrize("alpha", [100.0, 5.0])
def test_super_surrogate_is_fast_sigmoid_slope_one(alpha):
    x = (torch.randn(10_000, dtype=torch.float64) * 2.0).requires_grad_()
    g = torch.randn(10_000, dtype=torch.float64)
    z_peer = norse_threshold(x, "super", alpha)
    z_ours = spike(x, "fast_sigmoid", 1.0)
    assert torch.equal(z_ours, z_peer)
    (d_peer,) = torch.autograd.grad(z_peer, x, g)
    (d_ours,) = torch.autograd.grad(z_ours, x, g)
    torch.testing.assert_close(d_ours, d_peer, rtol=1e-14, atol=0.0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_bptt_matches_lif_box(reset, backend, build64):
    """Input gradients of a loss on spikes and membranes through 100 steps."""
    steps = 100
    x = (torch.rand(steps, B, N, dtype=torch.float64) * 2.4).requires_grad_()
    w_s = torch.randn(steps, B, N, dtype=torch.float64)
    w_v = torch.randn(steps, B, N, dtype=torch.float64)
    z, v = _run_box(x, reset)
    (g_peer,) = torch.autograd.grad((z * w_s).sum() + (v * w_v).sum(), x)
    out = _ours_box(build64, reset, backend).run(x, record_v=True)
    (g_ours,) = torch.autograd.grad((out.spikes * w_s).sum() + (out.v * w_v).sum(), x)
    assert torch.equal(out.spikes, z)
    assert float((g_ours - g_peer).abs().max()) <= 1e-10


@pytest.mark.parametrize("backend", BACKENDS)
def test_bptt_matches_lif_cubalif(backend, build64):
    """CubaLIF's input gradients (fused kernel and reference loop) against Norse's
    current-based LIF over 1,000 steps: a loss on spikes, membranes and the final
    current. Norse's step function is iterated with ``unbind`` here: its ``LIF`` module
    indexes ``x[t]``, whose backward is quadratic in ``T`` (README, Performance)."""
    x = (torch.rand(T, B, N, dtype=torch.float64) * 0.5).requires_grad_()
    tau_mem, tau_syn = 10e-3, 5e-3
    p = norse.LIFParameters(tau_syn_inv=_f64(tau_inv_from_tau(tau_syn)),
                            tau_mem_inv=_f64(tau_inv_from_tau(tau_mem)),
                            v_leak=_f64(V_LEAK), v_th=_f64(V_TH), v_reset=_f64(V_RESET),
                            method="super", alpha=_f64(100.0))
    state = LIFFeedForwardState(v=torch.full_like(x[0], V_LEAK), i=torch.zeros_like(x[0]))
    zs, vs = [], []
    for x_t in x.unbind(0):
        z_t, state = lif_feed_forward_step(x_t, state, p, dt=DT)
        zs.append(z_t)
        vs.append(state.v)
    z, v = torch.stack(zs), torch.stack(vs)
    ours = build64(CubaLIF, tau_mem=tau_mem, tau_syn=tau_syn, dt=DT, threshold=V_TH,
                   v_leak=V_LEAK, v_reset=V_RESET, integration="euler", reset="zero",
                   order="current_first", surrogate="fast_sigmoid", slope=1.0,
                   backend=backend)
    out = ours.run(x, record_v=True)
    assert torch.equal(out.spikes, z)
    w_s, w_v = torch.randn_like(x), torch.randn_like(x)
    a_syn = 1.0 - DT / tau_syn  # Norse stores i after this step's decay
    (g_peer,) = torch.autograd.grad((z * w_s).sum() + (v * w_v).sum() + state.i.sum(), x)
    (g_ours,) = torch.autograd.grad((out.spikes * w_s).sum() + (out.v * w_v).sum()
                                    + (a_syn * out.state.i).sum(), x)
    scale, err = float(g_peer.abs().max()), float((g_ours - g_peer).abs().max())
    assert err <= 1e-10 * scale, f"input gradient: error {err:.3e} (|grad| {scale:.3e})"


# -- ALIF against Norse's LSNN -------------------------------------------------------------
# Norse ``lsnn_feed_forward_step`` (norse/torch/functional/lsnn.py, 1.1.0) keeps the
# *threshold itself* as its state ``b``, relaxing to ``v_th`` (Euler) and raised by
# ``beta`` per spike; its membrane is current-based, reset to ``v_reset`` (the spike keeps
# its gradient, in the reset and in the threshold increment). The mapping to our ALIF:
#
# * threshold: Norse ``b = v_th + beta * b_ours`` (our ``b`` counts spikes, decaying with
#   ``tau_adapt``), so ``ALIF(threshold=v_th, beta=beta, tau_adapt=1/tau_adapt_inv,
#   integration="euler")``; Norse starts from ``b = v_th`` (our ``b = 0``);
# * current: Norse's membrane integrates the current of the previous step. With
#   ``tau_syn_inv = 1/dt`` the current decays to exactly 0 each step (``dt * (1/dt)`` is
#   1.0 in float64), so it holds only the last input: our ``x[t]`` is Norse's input
#   ``[t - 1]`` (``x[0] = 0``), with ``input_scaling="ode"`` (``g = dt/tau_mem``);
# * ``reset="zero"``, ``detach_reset=False``; surrogate ``"super"`` = our
#   ``fast_sigmoid`` with slope 1 (above).
TAU_ADAPT_INV = 20.0  # 1/s: tau_adapt = 50 ms
BETA_ADAPT = 0.3  # V per spike
RATE_SCALE = 5.0  # V per step at most (uniform input)


def _lsnn_run(inp: torch.Tensor, beta: torch.Tensor, v_th: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    from norse.torch.functional.lsnn import (
        LSNNFeedForwardState,
        LSNNParameters,
        lsnn_feed_forward_step,
    )

    p = LSNNParameters(tau_syn_inv=_f64(1.0 / DT), tau_mem_inv=_f64(TAU_MEM_INV),
                       tau_adapt_inv=_f64(TAU_ADAPT_INV), v_leak=_f64(V_LEAK), v_th=v_th,
                       v_reset=_f64(V_RESET), beta=beta, method="super", alpha=100.0)
    state = LSNNFeedForwardState(v=torch.full_like(inp[0], V_LEAK),
                                 i=torch.zeros_like(inp[0]), b=v_th.expand_as(inp[0]))
    zs, vs = [], []
    for x_t in inp.unbind(0):
        z, state = lsnn_feed_forward_step(x_t, state, p, dt=DT)
        zs.append(z)
        vs.append(state.v)
    return torch.stack(zs), torch.stack(vs), state.b


def test_lsnn_matches_alif(build64, assert_same_trains):
    """1,000 steps: identical spikes, membranes and thresholds within 1e-12 V, and the
    gradients of a loss on spikes and membranes with respect to the input, ``beta``
    and the threshold within 1e-10 (relative): the adaptation increment and the reset
    carry the spike's surrogate gradient in both."""
    from aura_snn import ALIF
    from aura_snn.functional import alif, loop

    inp = (torch.rand(T, B, N, dtype=torch.float64) * RATE_SCALE).requires_grad_()
    x = torch.cat([torch.zeros_like(inp[:1]), inp[:-1]])  # ours sees Norse's input a step later
    beta_n, vth_n = _f64(BETA_ADAPT).requires_grad_(), _f64(V_TH).requires_grad_()
    z, v, b_n = _lsnn_run(inp, beta_n, vth_n)
    kwargs = dict(dt=DT, v_leak=V_LEAK, v_reset=V_RESET, integration="euler", reset="zero",
                  surrogate="fast_sigmoid", slope=1.0, detach_reset=False)
    ours = build64(ALIF, tau_from_tau_inv(TAU_MEM_INV), tau_from_tau_inv(TAU_ADAPT_INV),
                   beta=BETA_ADAPT, threshold=V_TH, **kwargs)
    out = ours.run(x, record_v=True)
    assert_same_trains(out.spikes, out.v, z, v)
    assert float((V_TH + BETA_ADAPT * out.state.b - b_n).detach().abs().max()) <= 1e-12
    assert float(out.state.b.detach().max()) > 1.0  # the threshold did adapt
    # parameter gradients through the functional step (the module's beta is a constant)
    beta_o, vth_o = _f64(BETA_ADAPT).requires_grad_(), _f64(V_TH).requires_grad_()
    kwargs.pop("dt")
    p = alif.ALIFParameters(tau_mem=tau_from_tau_inv(TAU_MEM_INV),
                            tau_adapt=tau_from_tau_inv(TAU_ADAPT_INV), beta=beta_o,
                            threshold=vth_o, **kwargs)
    fn = loop.run(alif.step, x, None, p, DT, record_v=True)
    assert torch.equal(fn.spikes, z)
    w_s, w_v = torch.randn_like(x), torch.randn_like(x)
    g_peer = torch.autograd.grad((z * w_s).sum() + (v * w_v).sum(), (inp, beta_n, vth_n))
    g_mod = torch.autograd.grad((out.spikes * w_s).sum() + (out.v * w_v).sum(), inp)
    g_fn = torch.autograd.grad((fn.spikes * w_s).sum() + (fn.v * w_v).sum(),
                               (inp, beta_o, vth_o))
    for name, a, b in (("x (module)", g_mod[0], g_peer[0]), ("x", g_fn[0], g_peer[0]),
                       ("beta", g_fn[1], g_peer[1]), ("threshold", g_fn[2], g_peer[2])):
        scale, err = float(b.abs().max()), float((a - b).abs().max())
        assert scale > 0, name
        assert err <= 1e-10 * scale, f"d loss/d {name}: error {err:.3e} (|grad| {scale:.3e})"


# -- cuba_refractory against Norse's LIFRefrac ---------------------------------------------
# Norse ``lif_refrac_feed_forward_step`` (norse/torch/functional/lif_refrac.py, 1.1.0) is
# its current-based LIF (``i += x``, the membrane sees the new current, then ``i`` decays:
# our ``cuba_refractory`` with one receptor and ``integration="euler"``) with a counter
# ``rho``: set to ``rho_reset`` by a spike, the membrane held and spikes masked while
# ``rho > 0``, counting down by one per step. It holds ``rho_reset`` steps after a spike;
# ours holds ``n_ref - 1`` (Brian2's convention), so ``rho_reset = n_ref - 1``. Norse's
# mask is a surrogate spike of ``rho``, and ``rho`` depends on the spikes, so its
# gradient also flows through the counter; ours does not (the counter is a whole number
# of steps). The test cuts that path by handing Norse ``rho`` detached each step.
N_REF = 3  # steps (refractory = 3 ms at dt = 1 ms)
REFRAC_SCALE = 3.0  # V per step at most: a drive that the refractory period limits


def test_lif_refrac_matches_cuba_refractory(assert_same_trains):
    from norse.torch.functional.lif_refrac import (
        LIFRefracFeedForwardState,
        LIFRefracParameters,
        lif_refrac_feed_forward_step,
    )

    from aura_snn.functional import cuba_refractory, loop

    tau_mem, tau_syn = 10e-3, 5e-3
    x = (torch.rand(T, B, N, dtype=torch.float64) * REFRAC_SCALE).requires_grad_()
    lif_p = norse.LIFParameters(tau_syn_inv=_f64(tau_inv_from_tau(tau_syn)),
                                tau_mem_inv=_f64(tau_inv_from_tau(tau_mem)),
                                v_leak=_f64(V_LEAK), v_th=_f64(V_TH), v_reset=_f64(V_RESET),
                                method="super", alpha=_f64(100.0))
    p_n = LIFRefracParameters(lif=lif_p, rho_reset=_f64(N_REF - 1))
    state = LIFRefracFeedForwardState(
        LIFFeedForwardState(v=torch.full_like(x[0], V_LEAK), i=torch.zeros_like(x[0])),
        torch.zeros_like(x[0]))
    zs, vs = [], []
    for x_t in x.unbind(0):
        state = LIFRefracFeedForwardState(state.lif, state.rho.detach())
        z, state = lif_refrac_feed_forward_step(x_t, state, p_n, dt=DT)
        zs.append(z)
        vs.append(state.lif.v)
    z, v = torch.stack(zs), torch.stack(vs)
    p = cuba_refractory.CubaRefractoryParameters(
        tau_mem=tau_mem, tau_syn=(tau_syn,), receptors=("exc",), v_leak=V_LEAK,
        threshold=V_TH, v_reset=V_RESET, refractory=N_REF * DT, integration="euler",
        surrogate="fast_sigmoid", slope=1.0)
    out = loop.run(cuba_refractory.step, x[:, None], None, p, DT, record_v=True)
    assert_same_trains(out.spikes, out.v, z, v)
    assert float((out.state.i[0] - state.lif.i).detach().abs().max()) <= 1e-12
    # the clamp is exercised: after every spike the membrane is held at v_reset, and
    # the strong drive brings most neurons back to threshold soon after it ends
    held = (out.v[1:] == out.v[:-1]) & (out.spikes[:-1] > 0)
    assert int(held.sum()) == int(out.spikes[:-1].sum())
    gaps = torch.diff(torch.nonzero(out.spikes[:, 0, 0].detach())[:, 0])
    assert int(gaps.min()) >= N_REF and float(gaps.double().mean()) < 2 * N_REF
    w_s, w_v = torch.randn_like(x), torch.randn_like(x)
    (g_peer,) = torch.autograd.grad((z * w_s).sum() + (v * w_v).sum(), x)
    (g_ours,) = torch.autograd.grad((out.spikes * w_s).sum() + (out.v * w_v).sum(), x)
    scale, err = float(g_peer.abs().max()), float((g_ours - g_peer).abs().max())
    assert err <= 1e-10 * scale, f"input gradient: error {err:.3e} (|grad| {scale:.3e})"
