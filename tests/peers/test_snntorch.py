"""Peer equality: our ``LIF``/``CubaLIF`` against snnTorch ``Leaky``/``Synaptic`` (float64).

Mappings under test (``dt`` any step in s; ``tau_from_beta`` from
:mod:`aura_snn.functional.conventions`):

* ``snn.Leaky(beta, threshold, reset_mechanism=R)`` (default ``reset_delay=True``) ==
  ``LIF(tau_mem=tau_from_beta(beta, dt), dt=dt, threshold=threshold, reset=R,
  input_scaling="direct", reset_at="next_step", detach_reset=True)``, R in
  {"subtract", "zero"}. Our recorded ``v`` is snnTorch's ``mem`` (before the delayed
  reset).
* ``snn.Synaptic(alpha=beta_from_tau(tau_syn, dt), beta=beta_from_tau(tau_mem, dt),
  threshold)`` (subtract) == ``CubaLIF(tau_mem, tau_syn, dt=dt, threshold=threshold,
  input_scaling="direct", reset_at="next_step", detach_reset=True)``
  (``order="current_first"``, the default); our ``state.i`` is snnTorch's ``syn``.
* ``snn.Leaky(..., reset_delay=False)`` == ``LIF(..., input_scaling="direct",
  reset_at="spike", detach_reset=False)`` as long as the membrane after a reset stays
  below threshold (snnTorch then skips its "double reset" correction); the test checks
  that condition on its own data.
* Surrogates: ``surrogate.fast_sigmoid(slope=k)`` == ``spike(x, "fast_sigmoid", k)``;
  ``surrogate.atan(alpha)`` == ``spike(x, "arctan", alpha)``.
* Not mapped: ``snn.Synaptic(reset_mechanism="zero")`` (it also discards the drive of
  the step after a spike); ``test_synaptic_zero_reset_differs_exactly_as_documented``
  pins the difference.

Three snnTorch details shape the tests rather than the tolerances:

* A Python-float ``beta``/``alpha`` is stored as a float32 buffer (0.9 becomes
  0.89999998); we pass them as float64 tensors, which snnTorch keeps as they are.
* Its spike functions return float32 (``(x > 0).float()``) whatever the input dtype.
  Spikes are 0/1 either way, but any gradient that crosses a spike or reset tensor is
  rounded to float32: the upstream gradient of the output spikes (so our loss weights
  on spikes are float32-representable), the reset term of ``reset_delay=False``
  (~1e-6 relative error through the reset), and ``reset * threshold`` (a float32
  product, so the threshold gradient). Where that matters the tests run snnTorch's
  *own* surrogate backward wrapped to return spikes in the input's dtype
  (``_SpikeInDtype``), and the BPTT test runs both that and the stock surrogate. The
  threshold, multiplied by the float32 reset flag in the forward pass, is 1.25
  (exact in float32).
* Its reset flag never carries gradient; with ``reset_at="next_step"`` neither does
  ours, so ``detach_reset`` only matters for ``reset_delay=False``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import torch

snn = pytest.importorskip("snntorch", reason="peer oracle: pip install snntorch (extra 'peers')")
surrogate = pytest.importorskip("snntorch.surrogate", reason="peer oracle: snntorch.surrogate")

from aura_snn import LIF, CubaLIF  # noqa: E402
from aura_snn.functional import spike  # noqa: E402
from aura_snn.functional.conventions import beta_from_tau, tau_from_beta  # noqa: E402

pytestmark = pytest.mark.peers

DT = 1e-3  # s
BETA = 0.9  # snnTorch membrane decay per step (Leaky tests)
# snnTorch keeps a Python-float beta/alpha as a float32 buffer (0.9 -> 0.89999998);
# as float64 tensors they stay exact, so both sides hold the same float64 value.
BETA64 = torch.tensor(BETA, dtype=torch.float64)
TAU_MEM, TAU_SYN = 10e-3, 5e-3  # s (Synaptic tests: alpha, beta = exp(-dt/tau))
THRESHOLD = 1.25  # V; exact in float32 (see module docstring)
T, B, N = 1000, 4, 128
BACKENDS = ["auto", "reference"]  # fused numba kernel (default) and the functional loop

LEAKY_MAP = dict(dt=DT, threshold=THRESHOLD, input_scaling="direct", reset_at="next_step",
                 detach_reset=True)


class _SpikeInDtype(torch.autograd.Function):
    """snnTorch's own surrogate ``Function`` (its backward, called as is), with the spike
    returned in the input's dtype instead of float32: a gradient that crosses a spike or
    reset tensor then stays in float64 (see the module docstring)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, peer_fn: type, param: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.peer_fn, ctx.param = peer_fn, param
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        peer_ctx = SimpleNamespace(saved_tensors=ctx.saved_tensors, slope=ctx.param,
                                   alpha=ctx.param)
        grad_x, _ = ctx.peer_fn.backward(peer_ctx, grad)
        return grad_x, None, None


def _in_dtype(peer_fn: type, param: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """A ``spike_grad`` for snnTorch: its ``peer_fn`` surrogate, spikes in the input dtype."""
    return lambda x: _SpikeInDtype.apply(x, peer_fn, param)


def _leaky_run(leaky: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """snnTorch's documented loop: one ``Leaky`` call per step; returns (spk, mem) [T, ...]."""
    mem = torch.zeros_like(x[0])
    spk_rec, mem_rec = [], []
    for x_t in x.unbind(0):
        spk, mem = leaky(x_t, mem)
        spk_rec.append(spk)
        mem_rec.append(mem)
    return torch.stack(spk_rec), torch.stack(mem_rec)


def _synaptic_run(x: torch.Tensor, reset: str) -> tuple[torch.Tensor, ...]:
    """snnTorch ``Synaptic`` stepped over ``x``: (spk, mem) [T, ...] and the final syn.

    Parameters go the other way round from the Leaky tests: our time constants are
    given, snnTorch gets ``alpha``/``beta`` from ``beta_from_tau``."""
    alpha, beta = (torch.tensor(beta_from_tau(tau, DT), dtype=torch.float64)
                   for tau in (TAU_SYN, TAU_MEM))
    peer = snn.Synaptic(alpha=alpha, beta=beta, threshold=THRESHOLD,
                        reset_mechanism=reset).double()
    syn = mem = torch.zeros_like(x[0])
    spk_rec, mem_rec = [], []
    for x_t in x.unbind(0):
        spk, syn, mem = peer(x_t, syn, mem)
        spk_rec.append(spk)
        mem_rec.append(mem)
    return torch.stack(spk_rec), torch.stack(mem_rec), syn


def _input(scale: float, steps: int = T, *, requires_grad: bool = False) -> torch.Tensor:
    x = torch.rand(steps, B, N, dtype=torch.float64) * scale
    return x.requires_grad_(requires_grad)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_leaky_matches_lif(reset, backend, build64, assert_same_trains):
    x = _input(0.4)  # mean drive 0.2 V/step, steady state 2 V > threshold
    leaky = snn.Leaky(beta=BETA64.clone(), threshold=THRESHOLD, reset_mechanism=reset).double()
    ours = build64(LIF, tau_from_beta(BETA, DT), reset=reset, backend=backend, **LEAKY_MAP)
    out = ours.run(x, record_v=True)
    spk, mem = _leaky_run(leaky, x)
    assert_same_trains(out.spikes, out.v, spk, mem)
    assert float((out.state.v - mem[-1]).abs().max()) <= 1e-12


@pytest.mark.parametrize("backend", BACKENDS)
def test_synaptic_matches_cubalif(backend, build64, assert_same_trains):
    x = _input(0.06)  # steady state 0.03 / ((1 - alpha)(1 - beta)) = 1.74 V
    ours = build64(CubaLIF, tau_mem=TAU_MEM, tau_syn=TAU_SYN, backend=backend, **LEAKY_MAP)
    assert ours.neuron_parameters().order == "current_first"
    out = ours.run(x, record_v=True)
    spk, mem, syn = _synaptic_run(x, "subtract")
    assert_same_trains(out.spikes, out.v, spk, mem)
    assert float((out.state.i - syn).abs().max()) <= 1e-12


def test_synaptic_zero_reset_differs_exactly_as_documented(build64):
    # Not mapped on purpose (README, peer conventions): snnTorch Synaptic's
    # reset-to-zero zeroes the whole membrane of the step after a spike, that step's
    # synaptic drive included (mem -= reset * (beta*mem + syn)), a one-step hold that
    # its own Leaky does not have. Our reset="zero", reset_at="next_step" zeroes the
    # old membrane and adds the drive, as Leaky does. Pin the difference: identical up
    # to the first spike, then theirs is 0 where ours is exactly the drive.
    x = _input(0.06)
    ours = build64(CubaLIF, tau_mem=TAU_MEM, tau_syn=TAU_SYN, reset="zero", **LEAKY_MAP)
    out = ours.run(x, record_v=True)
    spk, mem, _ = _synaptic_run(x, "zero")
    first = int(torch.nonzero(spk[:, 0, 0])[0, 0])
    alpha = beta_from_tau(TAU_SYN, DT)
    syn = torch.zeros_like(x[0, 0, 0])
    for x_t in x[: first + 2, 0, 0]:  # the synaptic current, independently
        syn = alpha * syn + x_t
    assert torch.equal(out.spikes[: first + 1, 0, 0], spk[: first + 1, 0, 0])
    assert float(mem[first + 1, 0, 0]) == 0.0
    assert float(out.v[first + 1, 0, 0]) == pytest.approx(float(syn), abs=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_leaky_without_delay_matches_reset_at_spike(reset, backend, build64,
                                                    assert_same_trains):
    steps = T  # 1,000 steps, as every mapping of the README's table
    x = _input(0.4, steps, requires_grad=True)
    leaky = snn.Leaky(beta=BETA64.clone(), threshold=THRESHOLD, reset_mechanism=reset,
                      spike_grad=_in_dtype(surrogate.FastSigmoid, 5.0),
                      reset_delay=False).double()
    ours = build64(LIF, tau_from_beta(BETA, DT), dt=DT, threshold=THRESHOLD, reset=reset,
                   input_scaling="direct", reset_at="spike", detach_reset=False,
                   surrogate="fast_sigmoid", slope=5.0, backend=backend)
    spk, mem = _leaky_run(leaky, x)
    # the mapping holds while no membrane stays above threshold after its reset
    assert float(mem.detach().max()) <= THRESHOLD
    out = ours.run(x, record_v=True)
    assert_same_trains(out.spikes, out.v, spk, mem)
    w = torch.randn(steps, B, N).double()  # float32-representable spike weights
    (gx_peer,) = torch.autograd.grad((spk * w).sum() + mem.sum(), x)
    (gx_ours,) = torch.autograd.grad((out.spikes * w).sum() + out.v.sum(), x)
    assert float((gx_ours - gx_peer).abs().max()) <= 1e-10


# -- surrogate gradients -----------------------------------------------------------------

@pytest.mark.parametrize(("ours_name", "peer_fn", "slope"), [
    ("fast_sigmoid", surrogate.fast_sigmoid, 25.0),
    ("fast_sigmoid", surrogate.fast_sigmoid, 3.0),
    ("arctan", surrogate.atan, 2.0),
    ("arctan", surrogate.atan, 0.5),
])
def test_surrogate_matches(ours_name, peer_fn, slope):
    x = (torch.randn(10_000, dtype=torch.float64) * 0.5).requires_grad_()
    g = torch.randn(10_000)  # float32: snnTorch's spike output (and its grad) is float32
    s_peer = peer_fn(slope)(x)
    s_ours = spike(x, ours_name, slope)
    assert torch.equal(s_ours, s_peer.double())
    (d_peer,) = torch.autograd.grad(s_peer, x, g)
    (d_ours,) = torch.autograd.grad(s_ours, x, g.double())
    assert d_ours.dtype == torch.float64
    torch.testing.assert_close(d_ours, d_peer, rtol=1e-14, atol=0.0)


BPTT_SURROGATES = [("fast_sigmoid", surrogate.fast_sigmoid, surrogate.FastSigmoid, 25.0),
                   ("arctan", surrogate.atan, surrogate.ATan, 2.0)]


@pytest.mark.parametrize("peer_spikes", ["stock", "float64"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize(("ours_name", "peer_fn", "peer_cls", "slope"), BPTT_SURROGATES)
def test_bptt_matches_leaky(ours_name, peer_fn, peer_cls, slope, reset, backend, peer_spikes,
                            build64):
    """Gradients of a loss on spikes and membranes through 100 steps, w.r.t. the input,
    the threshold and the decay (snnTorch's ``beta``, our ``tau_mem`` by the chain rule
    ``dL/dtau = dL/dbeta * beta dt / tau**2``).

    ``peer_spikes="stock"`` runs snnTorch's own surrogate as users do; its float32 reset
    flag makes ``reset * threshold`` a float32 product, so the threshold gradient of
    ``reset="subtract"`` is float32-rounded there (relative error ~2e-10 measured, 1e-6
    allowed). ``"float64"`` runs the same snnTorch backward with spikes in float64 and
    holds every gradient to 1e-10.
    """
    steps = 100
    x = _input(0.4, steps, requires_grad=True)
    tau = tau_from_beta(BETA, DT)
    spike_grad = peer_fn(slope) if peer_spikes == "stock" else _in_dtype(peer_cls, slope)
    leaky = snn.Leaky(beta=BETA64.clone(), threshold=THRESHOLD, spike_grad=spike_grad,
                      reset_mechanism=reset, learn_beta=True, learn_threshold=True).double()
    ours = build64(LIF, tau, surrogate=ours_name, slope=slope, reset=reset, learn_tau=True,
                   learn_threshold=True, backend=backend, **LEAKY_MAP)
    w_s = torch.randn(steps, B, N).double()  # float32-representable (module docstring)
    w_v = torch.randn(steps, B, N, dtype=torch.float64)

    spk, mem = _leaky_run(leaky, x)
    gx_p, gth_p, gbeta_p = torch.autograd.grad((spk * w_s).sum() + (mem * w_v).sum(),
                                               (x, leaky.threshold, leaky.beta))
    out = ours.run(x, record_v=True)
    gx_o, gth_o, gtau_o = torch.autograd.grad((out.spikes * w_s).sum() + (out.v * w_v).sum(),
                                              (x, ours.threshold, ours.tau_mem))
    assert torch.equal(out.spikes, spk.double())
    assert float(gx_p.abs().max()) > 0.1  # the surrogate path is exercised
    assert float((gx_o - gx_p).abs().max()) <= 1e-10
    torch.testing.assert_close(gtau_o, gbeta_p * BETA * DT / tau**2, rtol=1e-10, atol=0.0)
    th_rtol = 1e-6 if (peer_spikes == "stock" and reset == "subtract") else 1e-10
    torch.testing.assert_close(gth_o, gth_p, rtol=th_rtol, atol=0.0)


# -- regression: fixed constants are kept in float64 ----------------------------------------

def test_double_after_float32_construction_keeps_tau():
    # a module built under the float32 default and moved to float64 once rounded tau to
    # float32 and differed from snnTorch by ~2e-7 V; fixed constants are float64 buffers
    x = _input(0.4)
    leaky = snn.Leaky(beta=BETA64.clone(), threshold=THRESHOLD).double()
    ours = LIF(tau_from_beta(BETA, DT), **LEAKY_MAP).double()  # built under float32 default
    out = ours.run(x, record_v=True)
    _, mem = _leaky_run(leaky, x)
    assert float((out.v - mem).abs().max()) <= 1e-12
