"""Graph tests: one torch thread. The torch stepper issues many tiny ops per step; with
the default intra-op pool on a busy 2-core machine each op can wait milliseconds for
its threads (measured: 100x slower), so these tests pin torch to one thread."""

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
