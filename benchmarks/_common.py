"""Shared plumbing for benchmark scripts: arguments, timing, goals, table, JSON.

Every script in ``benchmarks/`` takes ``--quick`` (small sizes, few repeats) and
``--json PATH`` and writes ``{"meta": ..., "results": [...], "goals": [...]}`` where
each goal is ``{"name", "target", "measured", "met"}``.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aura_snn._io import atomic_write_json  # noqa: E402


@dataclass
class Goal:
    """One measurable goal: ``met`` is computed, never typed in."""

    name: str
    target: str
    measured: float | str | None
    met: bool


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small sizes and few repeats (CI, smoke)")
    p.add_argument("--json", metavar="PATH", help="write results and goals to this JSON file")
    return p


def median_time(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str = "") -> None:
    """Print ``rows`` as a fixed-width text table with the given ``columns``."""
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return "" if v is None else str(v)

    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c)
              for i, c in enumerate(columns)]
    if title:
        print(f"\n{title}")
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def print_goals(goals: Sequence[Goal]) -> None:
    print_table([{"goal": g.name, "target": g.target, "measured": g.measured,
                  "met": "yes" if g.met else "NO"} for g in goals],
                ["goal", "target", "measured", "met"], title="Goals")


def code_version() -> dict[str, Any]:
    """The commit the measured code comes from, and whether ``aura_snn/`` or
    ``hardware/`` had local edits (a run of uncommitted code is marked as such)."""
    root = Path(__file__).resolve().parents[1]

    def git(*cmd: str) -> str:
        out = subprocess.run(["git", *cmd], cwd=root, capture_output=True, text=True,
                             check=False)
        return out.stdout.strip() if out.returncode == 0 else "?"

    out = subprocess.run(["git", "status", "--porcelain", "--", "aura_snn", "hardware"],
                         cwd=root, capture_output=True, text=True, check=False).stdout
    changed = [line[3:] for line in out.splitlines() if line.strip()]  # "XY path"
    return {"commit": git("rev-parse", "--short", "HEAD"),
            "aura_snn_locally_modified": bool(changed), "modified_paths": changed[:50]}


def machine_meta() -> dict[str, Any]:
    import torch

    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "code": code_version(),
    }


def write_report(path: str | None, results: list[dict[str, Any]], goals: Sequence[Goal],
                 meta: dict[str, Any] | None = None) -> None:
    """Write the JSON report (atomically) if ``path`` is given."""
    if not path:
        return
    payload = {"meta": {**machine_meta(), **(meta or {})}, "results": results,
               "goals": [asdict(g) for g in goals]}
    atomic_write_json(path, payload)
    print(f"\nwrote {path}")
