"""Fixtures shared by the peer equality tests (snnTorch, Norse, SpikingJelly as oracles).

Our modules are built while float64 is the default dtype, then ``.double()``. Fixed
constants are float64 buffers whatever the default dtype (regression test
``test_snntorch.py::test_double_after_float32_construction_keeps_tau``), but learnable
ones (``learn_tau``, ``learn_threshold``) are created in the default dtype, and a
float32 value moved to float64 by ``.double()`` has lost its digits for good.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

RATE_RANGE = (0.05, 0.50)  # firing rate below which a spike comparison says little


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Temporarily make ``dtype`` torch's default dtype."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


@pytest.fixture
def build64() -> Callable[..., Any]:
    """``build64(cls, *args, **kwargs)``: one of our modules with float64 parameters."""
    def build(cls: type, *args: Any, **kwargs: Any) -> Any:
        with default_dtype(torch.float64):
            return cls(*args, **kwargs).double()

    return build


def _assert_rate(spikes: torch.Tensor) -> float:
    rate = float(spikes.detach().double().mean())
    low, high = RATE_RANGE
    assert low <= rate <= high, f"firing rate {rate:.3f} outside [{low}, {high}]"
    return rate


@pytest.fixture
def assert_rate() -> Callable[[torch.Tensor], float]:
    """Fail unless the mean firing rate lies in ``RATE_RANGE``: a comparison of spike
    trains that are (almost) all 0 or all 1 would pass vacuously."""
    return _assert_rate


@pytest.fixture
def assert_same_trains() -> Callable[..., None]:
    """``f(ours_s, ours_v, peer_s, peer_v, atol=1e-12)``: spikes identical, membranes
    within ``atol`` (V), both float64, firing rate healthy."""
    def check(ours_s: torch.Tensor, ours_v: torch.Tensor, peer_s: torch.Tensor,
              peer_v: torch.Tensor, atol: float = 1e-12) -> None:
        assert ours_s.shape == peer_s.shape, (ours_s.shape, peer_s.shape)
        assert ours_v.shape == peer_v.shape, (ours_v.shape, peer_v.shape)
        assert ours_v.dtype == torch.float64 and peer_v.dtype == torch.float64
        n_diff = int((ours_s.double() != peer_s.double()).sum())
        assert n_diff == 0, f"{n_diff} of {ours_s.numel()} spikes differ"
        err = float((ours_v - peer_v).detach().abs().max())
        assert err <= atol, f"membrane differs by {err:.3e} V (> {atol:g})"
        _assert_rate(ours_s)

    return check
