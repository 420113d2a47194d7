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


def test_pool_recycles_a_buffer_only_after_every_tensor_using_it_is_gone() -> None:
    import gc

    from aura_snn import LIF
    from aura_snn.kernels import empty_cache

    pool = _memory.BUFFERS
    gc.collect()  # tensors of earlier tests in this process return their blocks now,
    empty_cache()  # not in the middle of the counts below
    block = 40 * 3 * 150 * 4  # bytes of one [T, M] float32 buffer (above fused.SMALL_BYTES)
    m = LIF(0.02)
    x = (torch.rand(40, 3, 150) * 3).requires_grad_()
    y1 = m(x)
    y2 = m(x)  # two live graphs: spikes and saved membranes, four distinct buffers
    assert pool.nbytes == 0
    g_first, = torch.autograd.grad(y1.sum(), x, retain_graph=True)
    g_again, = torch.autograd.grad(y1.sum(), x)  # retain_graph: the saved membrane is intact
    assert torch.equal(g_first, g_again)
    g2, = torch.autograd.grad(y2.sum(), x)
    assert torch.equal(g_first, g2)
    gc.collect()
    # six blocks made (2 spikes, 2 saved membranes, 2 input grads; g2 reused the first
    # membrane freed), five alive (spikes and the three grads held here): one free
    assert pool.nbytes == block
    s1 = y1.clone()
    view = y1[5]  # a view keeps the spike buffer of y1 alive
    del y1, y2
    gc.collect()
    assert pool.nbytes == 2 * block  # y2's spikes are back, y1's still in use
    assert torch.equal(view, s1[5])
    x.grad = None
    m(x).sum().backward()  # draws from the pool; x.grad adopts the input-grad buffer
    expected = x.grad.clone()
    g15, = torch.autograd.grad(m(x * 1.5).sum(), x)
    for _ in range(3):  # later steps must not hand x.grad's memory out again
        m(x * 1.5).sum().backward()
        expected += g15
    assert torch.equal(x.grad, expected)
    assert torch.equal(view, s1[5]) and torch.equal(g_first, g2)
    del view, g_first, g_again, g2
    empty_cache()
    assert pool.nbytes == 0


def test_pooled_results_are_ordinary_tensors() -> None:
    from aura_snn import LIF

    x = torch.rand(20, 2, 8, dtype=torch.float64) * 3
    s = LIF(0.02)(x)
    assert s.is_contiguous() and s.dtype == torch.float64 and s.device.type == "cpu"
    s.add_(1.0)  # in place on pooled memory
    assert float(s.min()) >= 1.0
    assert torch.equal(torch.cat([s, s]).view(2, *s.shape)[1], s)


def test_pool_is_safe_across_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from aura_snn import LIF

    m = LIF(0.02)
    inputs = [torch.rand(30, 2, 64, generator=torch.Generator().manual_seed(i)) * 3
              for i in range(8)]

    def grad_of(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.clone().requires_grad_()
        s = m(x)
        (s * torch.linspace(0, 1, 64)).sum().backward()
        return s.detach().clone(), x.grad

    expected = [grad_of(x) for x in inputs]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):  # same shapes from four threads: blocks recycled concurrently
            for (s, g), (s_ref, g_ref) in zip(pool.map(grad_of, inputs), expected, strict=True):
                assert torch.equal(s, s_ref) and torch.equal(g, g_ref)


def test_small_outputs_bypass_the_pool() -> None:
    import gc

    from aura_snn import LIF
    from aura_snn.kernels import empty_cache, fused

    gc.collect()
    empty_cache()
    x = (torch.rand(4, 1, 256) * 3).requires_grad_()    # 4 KiB buffers, one-token sized
    assert x.numel() * 4 <= fused.SMALL_BYTES
    g, = torch.autograd.grad(LIF(0.02)(x).sum(), x)
    gc.collect()
    assert _memory.BUFFERS.nbytes == 0                  # nothing was drawn, nothing returned
    big = (torch.rand(4, 1, fused.SMALL_BYTES // 4 + 64) * 3).requires_grad_()
    torch.autograd.grad(LIF(0.02)(big).sum(), big)
    gc.collect()
    assert _memory.BUFFERS.nbytes > 0                   # large ones still recycle
