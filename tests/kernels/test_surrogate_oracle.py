"""The fused kernels' surrogate derivatives against their closed forms, written here.

The kernel-vs-reference tests (``test_fused_cpu.py``, ``test_gpu_kernel.py``) compare
two implementations that compile the same formulas of
:mod:`aura_snn.functional.surrogate`, so a wrong formula there passes them. Here the
oracle is the surrogate docstring's closed forms, written out in this file:

* ``fast_sigmoid``: :math:`1/(1 + k|x|)^2`;
* ``arctan``: :math:`(\\alpha/2)/(1 + (\\pi\\alpha x/2)^2)`;
* ``triangle``: :math:`\\gamma\\max(0, 1 - \\gamma|x|)`.

One step of a fused LIF (and CubaLIF) from rest with ``input_scaling="direct"`` gives
:math:`u - \\vartheta = x - \\vartheta` exactly, so the gradient of the spike count with
respect to ``x`` is :math:`\\sigma'(x - \\vartheta)` on a grid of points chosen to cover the
kinks and the tails. The multi-step counterpart (BPTT through the fused kernels against
an unrolled oracle with its own surrogate) is
``tests/functional/test_gradients_oracle.py``.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from aura_snn.functional import cuba, lif
from aura_snn.kernels import cuba_multistep, lif_multistep

ROOT = Path(__file__).resolve().parents[2]
THETA = 0.75  # V
CASES = [("fast_sigmoid", 25.0), ("fast_sigmoid", 1.0), ("arctan", 2.0), ("arctan", 7.5),
         ("triangle", 1.0), ("triangle", 4.0)]


def closed_form(name: str, k: float, x: torch.Tensor) -> torch.Tensor:
    if name == "fast_sigmoid":
        return 1.0 / (1.0 + k * x.abs()) ** 2
    if name == "arctan":
        return (k / 2) / (1.0 + (math.pi * k * x / 2) ** 2)
    return k * torch.clamp(1.0 - k * x.abs(), min=0.0)


def grid(k: float, dtype: torch.dtype) -> torch.Tensor:
    """Distances above threshold (V): a fine grid over +-3/k, the kinks +-1/k of the
    triangle, and far tails; none exactly 0 (where the spike itself jumps)."""
    x = torch.linspace(-3.0 / k, 3.0 / k, 601, dtype=torch.float64)
    x = torch.cat([x[x != 0], torch.tensor([1.0 / k, -1.0 / k, 50.0 / k, -50.0 / k, 1e-7])])
    return x.to(dtype)


def _one_step_grad(model: str, name: str, k: float, d: torch.Tensor) -> torch.Tensor:
    x = (d + THETA).view(1, 1, -1).requires_grad_()
    if model == "lif":
        p = lif.LIFParameters(tau_mem=0.02, threshold=THETA, input_scaling="direct",
                              surrogate=name, slope=k)
        out = lif_multistep(x, None, p, 1e-3, kernel="numba")
    else:
        p = cuba.CubaLIFParameters(tau_mem=0.02, tau_syn=0.005, threshold=THETA,
                                   input_scaling="direct", surrogate=name, slope=k)
        out = cuba_multistep(x, None, p, 1e-3, kernel="numba")
    (g,) = torch.autograd.grad(out.spikes.sum(), x)
    return g.view(-1)


@pytest.mark.parametrize("model", ["lif", "cuba"])
@pytest.mark.parametrize(("name", "k"), CASES)
def test_numba_kernel_surrogate_is_the_closed_form(model: str, name: str, k: float) -> None:
    d = grid(k, torch.float64)
    # the input x = d + theta rounds: take the distance the kernel actually sees
    seen = (d + THETA) - THETA
    expected = closed_form(name, k, seen)
    torch.testing.assert_close(_one_step_grad(model, name, k, d), expected, rtol=1e-12,
                               atol=1e-15)


@pytest.mark.parametrize(("name", "k"), CASES[::2])
def test_numba_kernel_surrogate_float32(name: str, k: float) -> None:
    d = grid(k, torch.float32)
    seen = ((d + THETA) - THETA).double()
    expected = closed_form(name, k, seen).float()
    torch.testing.assert_close(_one_step_grad("lif", name, k, d), expected, rtol=2e-6,
                               atol=1e-7)


TRITON = textwrap.dedent("""
    import math, sys, torch
    from aura_snn.functional import lif
    from aura_snn.kernels import lif_multistep
    sys.path.insert(0, sys.argv[1])
    from test_surrogate_oracle import CASES, THETA, closed_form, grid
    for name, k in CASES:
        d = grid(k, torch.float64)
        x = (d + THETA).view(1, 1, -1).requires_grad_()
        p = lif.LIFParameters(tau_mem=0.02, threshold=THETA, input_scaling="direct",
                              surrogate=name, slope=k)
        out = lif_multistep(x, None, p, 1e-3, kernel="triton")
        (g,) = torch.autograd.grad(out.spikes.sum(), x)
        torch.testing.assert_close(g.view(-1), closed_form(name, k, (d + THETA) - THETA),
                                   rtol=1e-12, atol=1e-15)
    print("closed forms ok", len(CASES))
""")


def test_triton_kernel_surrogate_is_the_closed_form_in_interpreter() -> None:
    pytest.importorskip("triton", reason="Triton is not installed (it comes with CUDA PyTorch)")
    env = {**os.environ, "TRITON_INTERPRET": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-c", TRITON, str(Path(__file__).parent)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "closed forms ok" in proc.stdout
