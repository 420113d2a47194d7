"""The Triton (CUDA) kernels: parity with the reference in Triton's CPU interpreter,
compilation for Hopper (sm_90) without a GPU, and native parity when CUDA is present.

Triton is not a dependency of the CPU install; these tests skip (with the reason) when
it is absent. On a CUDA machine PyTorch brings it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]

PARITY = textwrap.dedent("""
    import itertools, sys, torch
    from aura_snn.functional import cuba, lif, loop
    from aura_snn.kernels import cuba_multistep, lif_multistep
    F64 = torch.float64
    torch.manual_seed(0)
    device = sys.argv[1]
    modes = list(itertools.product(("subtract", "zero", "none"), ("spike", "next_step"),
                                   (False, True), ("current_first", "voltage_first")))
    for reset, reset_at, detach, order in modes:
        tau = torch.tensor([0.02, 0.03, 0.015, 0.05, 0.01], dtype=F64, device=device,
                           requires_grad=True)
        th = torch.tensor(0.8, dtype=F64, device=device, requires_grad=True)
        vr = torch.tensor(-0.2, dtype=F64, device=device, requires_grad=True)
        p = cuba.CubaLIFParameters(tau_mem=tau, tau_syn=6e-3, threshold=th, reset=reset,
                                   reset_at=reset_at, v_reset=vr, detach_reset=detach,
                                   order=order, surrogate="arctan")
        x = (torch.randn(9, 2, 5, dtype=F64, device=device) * 3 + 1).requires_grad_()
        ref = loop.run(cuba.step, x, None, p, 1e-3, record_v=True)
        fus = cuba_multistep(x, None, p, 1e-3, record_v=True, kernel="triton")
        assert torch.equal(ref.spikes, fus.spikes), (reset, reset_at, detach, order)
        torch.testing.assert_close(fus.v, ref.v, rtol=0, atol=1e-12)
        w = torch.randn_like(x)
        ins = (x, tau, th, vr)
        l1 = (ref.spikes * w).sum() + ref.v.sum() + ref.state.i.sum()
        l2 = (fus.spikes * w).sum() + fus.v.sum() + fus.state.i.sum()
        g1 = torch.autograd.grad(l1, ins, allow_unused=True)
        g2 = torch.autograd.grad(l2, ins, allow_unused=True)
        for a, b, i in zip(g1, g2, ins):
            a = torch.zeros_like(i) if a is None else a
            b = torch.zeros_like(i) if b is None else b
            torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)
    pl = lif.LIFParameters(tau_mem=0.02, surrogate="triangle", slope=0.7)
    x = (torch.randn(20, 3, 300, device=device) * 30).requires_grad_()
    ref = loop.run(lif.step, x, None, pl, 1e-3)
    fus = lif_multistep(x, None, pl, 1e-3, kernel="triton")
    assert torch.equal(ref.spikes, fus.spikes)
    g1, = torch.autograd.grad(ref.spikes.sum(), x, retain_graph=True)
    g2, = torch.autograd.grad(fus.spikes.sum(), x, retain_graph=True)
    torch.testing.assert_close(g2, g1, rtol=1e-5, atol=1e-6)
    # a loss on spike counts: the spike gradient arrives as one row broadcast in time
    g1, = torch.autograd.grad((ref.spikes.sum(0) ** 2).sum(), x)
    g2, = torch.autograd.grad((fus.spikes.sum(0) ** 2).sum(), x)
    torch.testing.assert_close(g2, g1, rtol=1e-5, atol=1e-5)
    print("parity ok", len(modes) + 1)
""")


def _run_parity(device: str, interpret: bool) -> str:
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    if interpret:
        env["TRITON_INTERPRET"] = "1"
    proc = subprocess.run([sys.executable, "-c", PARITY, device], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_triton_kernels_match_reference_in_interpreter() -> None:
    pytest.importorskip("triton", reason="Triton is not installed (it comes with CUDA PyTorch)")
    assert "parity ok" in _run_parity("cpu", interpret=True)


def test_triton_kernels_compile_for_hopper_without_a_gpu() -> None:
    triton = pytest.importorskip("triton", reason="Triton is not installed")
    from triton.backends.compiler import GPUTarget

    from aura_snn.kernels import gpu

    fwd_sig = {n: "*fp32" for n in ("x_ptr", "v0_ptr", "i0_ptr", "am_ptr", "b_ptr", "c_ptr",
                                     "k_ptr", "vl_ptr", "th_ptr", "vr_ptr", "s_ptr", "u_ptr",
                                     "vo_ptr", "io_ptr", "vT_ptr", "iT_ptr", "chk_ptr")}
    fwd_sig |= {"T": "i32", "M": "i32"}
    bwd_names = ("gs_ptr", "gtr_ptr", "gvT_ptr", "giT_ptr", "u_ptr", "x_ptr", "cur_ptr",
                 "v0_ptr", "i0_ptr", "am_ptr", "b_ptr", "c_ptr", "k_ptr", "vl_ptr", "th_ptr",
                 "vr_ptr")
    bwd_sig = {n: "*fp32" for n in bwd_names} | {"slope": "fp32"}
    bwd_sig |= {n: "*fp32" for n in ("gx_ptr", "gv0_ptr", "gi0_ptr", "gam_ptr", "gb_ptr",
                                     "gc_ptr", "gk_ptr", "gvl_ptr", "gth_ptr", "gvr_ptr")}
    bwd_sig |= {"T": "i32", "M": "i32", "gs_rows": "i32"}
    target = GPUTarget("cuda", 90, 32)
    for reset, nxt in ((0, 0), (1, 1), (2, 0)):
        fc = {"RESET": reset, "NXT": bool(nxt), "LATE": False, "SAVE_U": 1, "SAVE_V": 1,
              "SAVE_I": 0, "BLOCK": gpu.BLOCK}
        src = triton.compiler.ASTSource(fn=gpu._forward_kernel,
                                        signature=fwd_sig | dict.fromkeys(fc, "constexpr"),
                                        constexprs=fc)
        assert "cubin" in triton.compile(src, target=target).asm
        bc = {"RESET": reset, "NXT": bool(nxt), "LATE": True, "SID": reset, "DETACH": 0,
              "PGRAD": 1, "HAS_TR": 1, "HAS_CUR": 1, "BLOCK": gpu.BLOCK}
        src = triton.compiler.ASTSource(fn=gpu._backward_kernel,
                                        signature=bwd_sig | dict.fromkeys(bc, "constexpr"),
                                        constexprs=bc)
        assert "cubin" in triton.compile(src, target=target).asm


@pytest.mark.gpu
def test_triton_kernels_match_reference_on_cuda() -> None:
    pytest.importorskip("triton", reason="Triton is not installed")
    assert torch.cuda.is_available()
    assert "parity ok" in _run_parity("cuda", interpret=False)
