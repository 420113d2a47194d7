"""Synaptic op counts of :mod:`aura_snn.metrics.ops` against brute-force loops.

Oracle: an explicit loop over samples, output units/positions, kernel taps and inputs,
written here, counting every product (dense) and every product of a non-zero input with
a non-zero weight (effective); an op is an AC when every input value is in {-1, 0, 1}
(NeuroBench 2.3's rule, ``neurobench.metrics.utils.layers.input.binary_inputs``). The
cases cover what the closed forms in ``ops`` must get right: stride, dilation,
asymmetric and ``"same"`` padding, groups, unbatched input, zero weights, ternary and
real inputs, NaN, float16/float64/bfloat16 inputs and the torch path (non-numpy).
"""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from aura_snn.metrics import ops
from aura_snn.metrics.ops import count_ops


def _spiking(x: torch.Tensor) -> bool:
    return all(v in (-1.0, 0.0, 1.0) for v in x.double().flatten().tolist())


def _linear_brute(x: torch.Tensor, w: torch.Tensor) -> tuple[int, int]:
    rows = x.double().reshape(-1, x.shape[-1]).tolist()
    wl = w.double().tolist()
    dense = eff = 0
    for r in rows:
        for wo in wl:
            for xi, wi in zip(r, wo, strict=True):
                dense += 1
                eff += int(xi != 0 and wi != 0)
    return dense, eff


def _conv_brute(x: torch.Tensor, conv: nn.Conv2d) -> tuple[int, int]:
    xb = x if x.dim() == 4 else x[None]
    n, c_in, h, w = xb.shape
    kh, kw = conv.kernel_size
    (sh, sw), (dh, dw) = conv.stride, conv.dilation
    if conv.padding == "same":  # torch: total d (k - 1), the smaller half first
        ph, pw = (dh * (kh - 1)) // 2, (dw * (kw - 1)) // 2
        ho, wo = h, w
    else:
        ph, pw = (0, 0) if conv.padding == "valid" else conv.padding
        ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    g = conv.groups
    cpg, opg = c_in // g, conv.out_channels // g
    xv, wv = xb.double().numpy(), conv.weight.detach().double().numpy()
    dense = eff = 0
    for b, o, i, j in itertools.product(range(n), range(conv.out_channels), range(ho),
                                        range(wo)):
        grp = o // opg
        for ci, u, v in itertools.product(range(cpg), range(kh), range(kw)):
            r, s = i * sh + u * dh - ph, j * sw + v * dw - pw
            if 0 <= r < h and 0 <= s < w:
                dense += 1
                eff += int(xv[b, grp * cpg + ci, r, s] != 0 and wv[o, ci, u, v] != 0)
    return dense, eff


def _check(layer: nn.Module, x: torch.Tensor, brute: tuple[int, int]) -> None:
    got = count_ops(nn.Sequential(layer), x, batch_dim=0).layers["0"]
    dense, eff = brute
    assert got.dense == dense
    assert got.effective == eff
    if _spiking(x):
        assert (got.acs, got.macs) == (eff, 0)
    else:
        assert (got.acs, got.macs) == (0, eff)


def _input(shape: tuple, kind: str, g: torch.Generator) -> torch.Tensor:
    """0/1 spikes; with some -1 (ternary); times random reals; or spikes with one real
    value in the last entry (past any quick look at the first entries); or a NaN."""
    x = (torch.rand(shape, generator=g) < 0.3).float()
    if kind == "ternary":
        x[torch.rand(shape, generator=g) < 0.1] = -1.0
    elif kind == "real":
        x = x * torch.randn(shape, generator=g) * 2.0
    elif kind == "late_real":
        x.view(-1)[-1] = 0.5
    elif kind == "nan":
        x.view(-1)[0] = float("nan")
    return x


def _sparse_weight(layer: nn.Module, p_zero: float, g: torch.Generator) -> None:
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=g))
        layer.weight[torch.rand(layer.weight.shape, generator=g) < p_zero] = 0.0


CONVS = [  # (C_in, C_out, kernel, stride, padding, dilation, groups, H, W)
    (2, 3, 3, 1, 1, 1, 1, 5, 6),
    (2, 4, (3, 2), 2, (2, 0), 1, 2, 7, 6),
    (3, 3, 3, (1, 2), 0, (2, 1), 3, 8, 7),
    (2, 2, (2, 3), 1, "same", (1, 2), 1, 5, 6),
    (4, 2, 2, 3, "valid", 1, 2, 7, 8),
]


@pytest.mark.parametrize("spec", CONVS)
@pytest.mark.parametrize("kind", ["binary", "ternary", "real", "late_real"])
def test_conv2d_counts_by_brute_force(spec: tuple, kind: str) -> None:
    c_in, c_out, k, s, p, d, grp, h, w = spec
    g = torch.Generator().manual_seed(hash((spec, kind)) % 2**31)
    conv = nn.Conv2d(c_in, c_out, k, stride=s, padding=p, dilation=d, groups=grp)
    _sparse_weight(conv, 0.4, g)
    x = _input((2, c_in, h, w), kind, g)
    _check(conv, x, _conv_brute(x, conv))


def test_conv2d_unbatched_and_dense_cache() -> None:
    """An unbatched [C, H, W] input, then other shapes through the same layer: the dense
    count (cached per input shape) follows each shape."""
    g = torch.Generator().manual_seed(3)
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1)
    _sparse_weight(conv, 0.3, g)
    for shape in [(2, 6, 5), (1, 2, 6, 5), (3, 2, 9, 4), (2, 6, 5)]:
        x = (torch.rand(shape, generator=g) < 0.4).float()
        _check(conv, x, _conv_brute(x, conv))


@pytest.mark.parametrize("p_zero", [0.0, 0.5])
@pytest.mark.parametrize("kind", ["binary", "ternary", "real", "late_real"])
def test_linear_counts_by_brute_force(p_zero: float, kind: str) -> None:
    g = torch.Generator().manual_seed(7)
    lin = nn.Linear(9, 5)
    _sparse_weight(lin, p_zero, g)
    x = _input((40, 3, 9), kind, g)
    _check(lin, x, _linear_brute(x, lin.weight))


def test_linear_weights_changed_between_calls() -> None:
    """Weights zeroed in place (also through ``.data``, which torch's version counter
    does not see) between two calls: each call counts the weights it ran with."""
    g = torch.Generator().manual_seed(11)
    lin = nn.Linear(6, 4)
    _sparse_weight(lin, 0.0, g)
    x = (torch.rand(10, 6, generator=g) < 0.5).float()
    _check(lin, x, _linear_brute(x, lin.weight))
    lin.weight.data[:, :3] = 0.0
    _check(lin, x, _linear_brute(x, lin.weight))


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64, torch.bfloat16])
def test_dtypes(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(5)
    lin = nn.Linear(7, 3).to(dtype)
    _sparse_weight(lin, 0.4, g)
    x = (torch.rand(30, 7, generator=g) < 0.4).to(dtype)
    _check(lin, x, _linear_brute(x, lin.weight))
    x[3, 2] = 0.25
    _check(lin, x, _linear_brute(x, lin.weight))


def test_nan_input_is_nonzero_and_not_spiking() -> None:
    """NeuroBench: NaN is neither 0 nor +-1, so a NaN input is a non-zero, non-spike value."""
    lin = nn.Linear(4, 2)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    x = torch.tensor([[1.0, 0.0, float("nan"), 0.0], [0.0, 1.0, 0.0, 0.0]])
    got = count_ops(nn.Sequential(lin), x, batch_dim=0).layers["0"]
    assert (got.macs, got.acs, got.dense) == (3 * 2, 0, 8 * 2)


@pytest.mark.parametrize("kind", ["binary", "ternary", "real", "late_real", "nan"])
def test_torch_path_equals_numpy_path(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The torch kernels (used off CPU and for dtypes numpy lacks) give the brute-force
    counts too: run with the numpy view switched off."""
    monkeypatch.setattr(ops, "_numpy_view", lambda x: None)
    g = torch.Generator().manual_seed(9)
    lin = nn.Linear(8, 6)
    _sparse_weight(lin, 0.5, g)
    x = _input((25, 8), kind, g)
    _check(lin, x, _linear_brute(x, lin.weight))
    conv = nn.Conv2d(2, 4, 3, padding=(1, 0), groups=2)
    _sparse_weight(conv, 0.3, g)
    xc = _input((3, 2, 5, 4), kind, g)
    _check(conv, xc, _conv_brute(xc, conv))


def test_counts_exact_beyond_float32_integers() -> None:
    """More than 2**24 non-zero inputs in one call: counts stay exact integers (float32
    sums of ones stop counting at 2**24)."""
    lin = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0]]))
    n = 2**24 + 3
    x = torch.ones(n, 2)
    got = count_ops(nn.Sequential(lin), x, batch_dim=0).layers["0"]
    assert got.acs == n and got.dense == 2 * n


class _HalveInPlace(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul_(0.5)


def test_neuron_output_changed_in_place_before_the_linear_is_counted_again() -> None:
    """The Linear after a neuron reuses the neuron's counts only for the same contents:
    halved in place in between (version bumped), its input is {0, 0.5}, real-valued, so
    every effective op is a MAC (oracle: the non-zeros of the halved spikes, by hand)."""
    from aura_snn.neurons import LIF

    g = torch.Generator().manual_seed(4)
    lif, lin = LIF(0.005, dt=1e-3), nn.Linear(8, 3)
    x = torch.rand(6, 2, 8, generator=g) * 3.0
    with torch.no_grad():
        nnz = int((lif(x) != 0).sum())
    assert nnz > 0
    got = count_ops(nn.Sequential(lif, _HalveInPlace(), lin), x).layers["2"]
    assert (got.macs, got.acs) == (nnz * 3, 0)
    plain = count_ops(nn.Sequential(lif, lin), x).layers["1"]
    assert (plain.macs, plain.acs) == (0, nnz * 3)


@pytest.mark.parametrize("path", ["kernel_count", "sum", "chunked_sum", "value_test"])
def test_neuron_spike_counts_on_every_path(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A neuron's spikes and the next Linear's accumulates equal the spikes counted here
    by hand, whichever way the counter gets them: the fused kernel's own count, a float32
    sum (reference backend: no kernel count), the sum in chunks (chunk size shrunk to 7
    entries so the loop runs), or the value-by-value test of a module whose
    ``binary_spikes`` is off."""
    from aura_snn.neurons import LIF

    backend = "fused" if path == "kernel_count" else "reference"
    lif, lin = LIF(0.01, dt=1e-3, backend=backend), nn.Linear(8, 3)
    if path == "kernel_count":  # the kernel's count is used, not a sum over the spikes
        monkeypatch.setattr(ops, "_count_binary", lambda s: pytest.fail("summed"))
    if path == "chunked_sum":
        monkeypatch.setattr(ops, "_EXACT_F32", 7)
    if path == "value_test":
        lif.binary_spikes = False
    x = torch.rand(9, 4, 8, generator=torch.Generator().manual_seed(2)) * 3.0
    with torch.no_grad():
        nnz = int((lif(x) == 1).sum())
    assert 0 < nnz < x.numel()
    got = count_ops(nn.Sequential(lif, lin), x).layers
    assert (got["0"].spikes, got["0"].outputs) == (nnz, x.numel())
    assert (got["1"].acs, got["1"].macs) == (nnz * 3, 0)
