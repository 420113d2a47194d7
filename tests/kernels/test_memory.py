"""Huge-page advice for large kernel outputs: harmless, value-neutral, size-gated."""

from __future__ import annotations

import torch

from aura_snn.kernels import _memory


def test_advice_returns_the_same_tensor_and_changes_nothing() -> None:
    small = torch.arange(10.0)
    assert _memory.advise_huge_pages(small) is small
    big = torch.empty(_memory.MIN_BYTES // 4 + 1024)
    assert _memory.advise_huge_pages(big) is big
    big.fill_(2.0)  # the advised memory is ordinary memory
    assert float(big.sum()) == 2.0 * big.numel()
    x = torch.randn(3, 4)
    y = _memory.empty_like_huge(x)
    assert y.shape == x.shape and y.dtype == x.dtype


def test_pool_recycles_only_after_the_graph_is_gone_and_results_do_not_change() -> None:
    import gc

    from aura_snn import LIF

    pool = _memory.SAVED_BUFFERS
    pool.clear()
    m = LIF(0.02)
    x = (torch.rand(40, 3, 50) * 3).requires_grad_()
    y1 = m(x)
    y2 = m(x)  # two live graphs: two distinct buffers, none free
    assert pool.nbytes == 0
    g_first, = torch.autograd.grad(y1.sum(), x, retain_graph=True)
    g_again, = torch.autograd.grad(y1.sum(), x)  # retain_graph: the saved membrane is intact
    assert torch.equal(g_first, g_again)
    g2, = torch.autograd.grad(y2.sum(), x)
    assert torch.equal(g_first, g2)
    del y1, y2
    gc.collect()
    assert pool.nbytes == 2 * 40 * 3 * 50 * 4  # both returned once their graphs died
    y3 = m(x)  # reuses a warm buffer
    assert pool.nbytes == 40 * 3 * 50 * 4
    g3, = torch.autograd.grad(y3.sum(), x)
    assert torch.equal(g3, g_first)
    pool.clear()
    assert pool.nbytes == 0
