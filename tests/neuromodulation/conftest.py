"""Neuromodulation tests: one torch thread (the torch stepper issues many tiny ops per
step; on a busy 2-core machine the default intra-op pool makes each op wait, as
``tests/graph/conftest.py`` measured)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
