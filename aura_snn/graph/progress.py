"""Progress bar of a simulation: simulated time and speed (simulated s per wall s)."""

from __future__ import annotations

import sys
import time
from typing import Any


class SimProgress:
    """A tqdm bar over simulated seconds; the postfix shows the speed as a multiple of
    real time. Written to stderr; disabled when tqdm is missing."""

    def __init__(self, steps: int, dt: float, desc: str = "simulating") -> None:
        self.dt, self.steps, self.done = dt, steps, 0
        self.t0 = time.perf_counter()
        try:
            from tqdm import tqdm
        except ImportError:  # pragma: no cover - tqdm is a dependency
            self.bar: Any = None
            return
        total = steps * dt
        self.bar = tqdm(total=round(total, 9), unit="s", unit_scale=False, desc=desc,
                        file=sys.stderr, dynamic_ncols=True, leave=False,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.4g}/{total:.4g} s "
                                   "simulated [{elapsed}<{remaining}{postfix}]")

    def advance(self, steps: int) -> None:
        self.done += steps
        if self.bar is None:
            return
        self.bar.update(round(self.done * self.dt, 9) - self.bar.n)
        wall = time.perf_counter() - self.t0
        if wall > 0:
            self.bar.set_postfix_str(f"{self.done * self.dt / wall:.3g}x real time",
                                     refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
