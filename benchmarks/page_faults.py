"""Page faults of the fused LIF kernel with and without its buffer pool, and the cost of
first-touching a large buffer with and without transparent huge-page advice.

These are the figures behind the README's paragraph on why the kernels recycle their
``[T, M]`` buffers; ``bench_lif.py`` records them in its JSON (``meta.page_faults``).
Minor faults come from ``getrusage(RUSAGE_SELF).ru_minflt``, so they count every
thread of this process: run it on a quiet machine, nothing else in the process.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aura_snn.kernels import _memory, set_pool_limit  # noqa: E402
from aura_snn.neurons import LIF  # noqa: E402


def _minflt() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def faults_per_step(size: tuple[int, int, int], pooled: bool, linear: bool = False,
                    steps: int = 20) -> dict[str, float]:
    """Median minor page faults and milliseconds of one forward+backward at ``size``
    ``(T, B, N)`` of a LIF layer (after an ``N x N`` ``Linear`` when ``linear``), after 3
    warm-up steps, with the kernels' buffer pool adaptive (``pooled``) or off."""
    previous = set_pool_limit(None if pooled else 0)
    try:
        torch.manual_seed(0)
        lif = LIF(tau_mem=0.02, dt=1e-3)
        n = size[-1]
        layer = torch.nn.Sequential(torch.nn.Linear(n, n), lif) if linear else lif
        x = (torch.rand(*size) * (0.1 if linear else 2.4)).requires_grad_()
        faults, times = [], []
        for i in range(steps + 3):
            f0, t0 = _minflt(), time.perf_counter()
            layer(x).sum().backward()
            x.grad = None
            if i >= 3:
                faults.append(_minflt() - f0)
                times.append(time.perf_counter() - t0)
        return {"faults_per_step": statistics.median(faults),
                "ms_per_step": statistics.median(times) * 1e3}
    finally:
        set_pool_limit(previous)
        _memory.empty_cache()


def first_touch_ms(mbytes: int = 128, repeats: int = 5) -> dict[str, float]:
    """Median ms to allocate and fill ``mbytes`` MiB fresh, plain and with huge-page advice."""
    n = mbytes * 2**20 // 4

    def once(advise: bool) -> float:
        t0 = time.perf_counter()
        t = torch.empty(n)
        if advise:
            _memory.advise_huge_pages(t)
        t.fill_(1.0)
        dt = time.perf_counter() - t0
        del t
        return dt * 1e3

    return {"buffer_MiB": mbytes,
            "plain_ms": statistics.median(once(False) for _ in range(repeats)),
            "huge_page_advice_ms": statistics.median(once(True) for _ in range(repeats))}


def measure(size: tuple[int, int, int] = (100, 16, 512)) -> dict[str, Any]:
    """All the page-fault figures, as recorded in ``bench_lif.py``'s JSON."""
    out: dict[str, Any] = {"size": list(size)}
    for name, linear in (("lif", False), ("linear_lif", True)):
        out[name] = {"pool_off": faults_per_step(size, pooled=False, linear=linear),
                     "pool_on": faults_per_step(size, pooled=True, linear=linear)}
    out["first_touch"] = first_touch_ms()
    return out


if __name__ == "__main__":  # bench_lif.py runs this in a fresh process and reads stdout
    import json

    print(json.dumps(measure()))
