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
