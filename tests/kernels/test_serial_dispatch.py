"""Small CPU problems run the serial numba loop, large ones the thread pool; both equal
the step-by-step functional reference (and each other bit for bit) on either side of
the threshold of :func:`aura_snn.kernels.cpu.serial`."""

from __future__ import annotations

import pytest
import torch

from aura_snn.functional import cuba, lif, loop
from aura_snn.kernels import cpu, cuba_multistep, lif_multistep

F64 = torch.float64

# (T, M, expected path): one chunk; just past one chunk but small; past the work
# threshold with few neurons; past the neuron threshold at T = 1
SIZES = [(4, cpu.CHUNK, "serial"), (4, cpu.CHUNK + 8, "serial"),
         (cpu.SERIAL_WORK // (cpu.CHUNK + 8) + 1, cpu.CHUNK + 8, "parallel"),
         (1, cpu.SERIAL_NEURONS, "parallel")]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records which numba entry points ran (``forward``, ``forward_serial``, ...)."""
    seen: list[str] = []
    for name in ("forward", "forward_serial", "backward", "backward_serial"):
        fn = getattr(cpu, name)

        def wrapped(*args, _fn=fn, _name=name):  # noqa: ANN002, ANN202
            seen.append(_name)
            return _fn(*args)

        monkeypatch.setattr(cpu, name, wrapped)
    return seen


@pytest.mark.parametrize(("T", "M", "path"), SIZES)
def test_lif_both_sides_of_threshold_equal_reference(T: int, M: int, path: str,
                                                     calls: list[str]) -> None:
    torch.manual_seed(T * 7 + M)
    p = lif.LIFParameters(tau_mem=0.02, threshold=0.8, input_scaling="direct",
                          surrogate="triangle", slope=0.5)
    x = (torch.randn(T, 1, M, dtype=F64) * 0.9 + 0.4).requires_grad_()
    ref = loop.run(lif.step, x, None, p, 1e-3, record_v=True)
    fus = lif_multistep(x, None, p, 1e-3, record_v=True)
    assert torch.equal(fus.spikes, ref.spikes)
    assert 0.05 < float(ref.spikes.detach().mean()) < 0.9
    torch.testing.assert_close(fus.v, ref.v, rtol=0, atol=1e-13)
    torch.testing.assert_close(fus.state.v, ref.state.v, rtol=0, atol=1e-13)
    w = torch.randn_like(x)
    g_ref, = torch.autograd.grad((ref.spikes * w).sum() + ref.v.sum(), x)
    g_fus, = torch.autograd.grad((fus.spikes * w).sum() + fus.v.sum(), x)
    torch.testing.assert_close(g_fus, g_ref, rtol=1e-12, atol=1e-12)
    suffix = "_serial" if path == "serial" else ""
    assert calls == [f"forward{suffix}", f"backward{suffix}"]


@pytest.mark.parametrize(("T", "M", "path"), SIZES[1:3])
def test_cuba_parameter_grads_both_sides_equal_reference(T: int, M: int, path: str,
                                                         calls: list[str]) -> None:
    # learnable tau/threshold take the parameter-gradient branch of the chunk code
    torch.manual_seed(M + T)
    tau = torch.tensor(0.02, dtype=F64, requires_grad=True)
    th = torch.tensor(0.9, dtype=F64, requires_grad=True)
    p = cuba.CubaLIFParameters(tau_mem=tau, tau_syn=0.005, threshold=th, reset="zero")
    x = (torch.randn(T, 1, M, dtype=F64) * 40 + 10).requires_grad_()
    ref = loop.run(cuba.step, x, None, p, 1e-3)
    fus = cuba_multistep(x, None, p, 1e-3)
    assert torch.equal(fus.spikes, ref.spikes)
    torch.testing.assert_close(fus.state.i, ref.state.i, rtol=0, atol=1e-12)
    w = torch.randn_like(x)
    for g_fus, g_ref in zip(torch.autograd.grad((fus.spikes * w).sum(), (x, tau, th)),
                            torch.autograd.grad((ref.spikes * w).sum(), (x, tau, th)),
                            strict=True):
        torch.testing.assert_close(g_fus, g_ref, rtol=1e-10, atol=1e-10)
    assert calls[0] == ("forward_serial" if path == "serial" else "forward")


def test_serial_and_pool_give_the_same_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    # one large-ish float32 problem forced through each path: spikes, trace, final
    # state and input gradient are bit-identical (same chunk code on any thread)
    torch.manual_seed(3)
    p = lif.LIFParameters(tau_mem=0.01, input_scaling="direct")
    x = (torch.randn(6, 3, cpu.CHUNK + 100) * 1.5).requires_grad_()

    def run(force: bool) -> tuple[torch.Tensor, ...]:
        monkeypatch.setattr(cpu, "serial", lambda T, M: force)
        out = lif_multistep(x, None, p, 1e-3, record_v=True)
        g, = torch.autograd.grad((out.spikes * x.detach()).sum() + out.v.sum(), x)
        return out.spikes, out.v, out.state.v, g

    for a, b in zip(run(True), run(False), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(("T", "M", "path"), SIZES)
@pytest.mark.parametrize("model", ["lif", "cuba"])
def test_kernel_spike_count_equals_the_reference_spikes(T: int, M: int, path: str,
                                                        model: str, calls: list[str]) -> None:
    """``MultiStep.spike_count`` (each step's integer count, summed per chunk) is the
    number of spikes of the step-by-step reference run on either path, float32 and
    float64; None when not asked for, or where autograd runs the kernel."""
    torch.manual_seed(T + 3 * M)
    fn, multi, p = ((lif.step, lif_multistep, lif.LIFParameters(
                        tau_mem=0.02, threshold=0.8, input_scaling="direct"))
                    if model == "lif" else
                    (cuba.step, cuba_multistep, cuba.CubaLIFParameters(
                        tau_mem=0.02, tau_syn=0.005, threshold=0.9)))
    gain = 0.9 if model == "lif" else 40.0
    for dtype in (torch.float32, F64):
        x = torch.randn(T, 1, M, dtype=dtype) * gain + 0.4 * gain
        ref = loop.run(fn, x, None, p, 1e-3)
        want = int((ref.spikes == 1).sum())
        assert 0 < want < ref.spikes.numel()
        with torch.no_grad():
            assert multi(x, None, p, 1e-3, count_spikes=True).spike_count == want
            assert multi(x, None, p, 1e-3).spike_count is None  # not asked
    suffix = "_serial" if path == "serial" else ""
    assert calls == [f"forward{suffix}"] * 4
    xg = x.clone().requires_grad_()
    assert multi(xg, None, p, 1e-3, count_spikes=True).spike_count is None
