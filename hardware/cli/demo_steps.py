"""What ``aura-snn demo`` does after training, once ``hardware`` is installed (entry
point ``aura_snn.demo``): export the classifier to NIR and read it back, build its
Loihi 2 fixed-point twin, run it in Lava's ``fixed_pt`` simulator on part of the test
set, and compare. Returns the figures that go into ``summary.json`` under ``hardware``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

#: Test samples run through Lava's simulator (one Lava run each, ~0.2 s apiece).
LAVA_SAMPLES = 24


def _present(x: torch.Tensor, steps: int) -> torch.Tensor:
    return x.unsqueeze(0).expand(steps, *x.shape).contiguous()


def _accuracy(spikes: torch.Tensor, y: torch.Tensor) -> float:
    return float((spikes.sum(0).argmax(1) == y).double().mean())


def after_demo(out: Path, result: Any) -> dict[str, Any]:
    """Export, verify and compare the trained classifier; print and return the figures."""
    from aura_snn.tasks.digits import load_digits
    from hardware.lava import run as lava_run
    from hardware.loihi import quantize
    from hardware.nir import from_nir, to_nir, write

    cfg = result.config
    model = result.model.double().eval()
    _, _, xte, yte = load_digits(cfg["test_fraction"], cfg["seed"])
    x = _present(xte.double(), cfg["steps"])
    report: dict[str, Any] = {"test_samples": len(yte)}
    with torch.no_grad():
        float_spikes = model(x)
        nir_path = write(out / "model.nir", to_nir(model, dt=cfg["dt"]))
        nir_spikes = from_nir(nir_path, dt=cfg["dt"]).double()(x)
        twin = quantize(model)
        twin_spikes = twin(x)
    report["float_accuracy"] = _accuracy(float_spikes, yte)
    report["nir_spike_agreement"] = float((nir_spikes == float_spikes).double().mean())
    report["twin_accuracy"] = _accuracy(twin_spikes, yte)
    report["twin_vs_float_spike_agreement"] = float((twin_spikes == float_spikes)
                                                    .double().mean())
    n = min(LAVA_SAMPLES, len(yte))
    t0 = time.perf_counter()
    lava_spikes = lava_run(model, x[:, :n], mode="fixed_pt")
    report["lava_seconds"] = time.perf_counter() - t0
    report["lava_samples"] = n
    report["lava_accuracy"] = _accuracy(lava_spikes, yte[:n])
    report["twin_accuracy_same_samples"] = _accuracy(twin_spikes[:, :n], yte[:n])
    report["lava_vs_twin_spike_agreement"] = float(
        (lava_spikes == twin_spikes[:, :n].to(lava_spikes.dtype)).double().mean())
    _print(report, nir_path)
    return report


def _print(r: dict[str, Any], nir_path: Path) -> None:
    print(f"\nexported {nir_path}: read back, its output spikes agree with the model's on "
          f"{r['nir_spike_agreement']:.2%} of {r['test_samples']} test samples' steps")
    print(f"{'model':<34}{'test accuracy':>14}")
    print("-" * 48)
    print(f"{'float (PyTorch, fused kernel)':<34}{r['float_accuracy']:>14.2%}")
    print(f"{'Loihi 2 fixed-point twin':<34}{r['twin_accuracy']:>14.2%}")
    label = f"Lava fixed_pt ({r['lava_samples']} samples)"
    print(f"{label:<34}{r['lava_accuracy']:>14.2%}   (twin on the same: "
          f"{r['twin_accuracy_same_samples']:.2%})")
    print(f"Lava fixed_pt vs twin: {r['lava_vs_twin_spike_agreement']:.2%} of output spikes "
          f"identical ({r['lava_seconds']:.1f} s in Lava); twin vs float: "
          f"{r['twin_vs_float_spike_agreement']:.2%}")
