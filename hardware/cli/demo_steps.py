"""What ``aura-snn demo`` does after training, once ``hardware`` is installed (entry
point ``aura_snn.demo``): export the classifier to NIR and read it back, build its
Loihi 2 fixed-point twin, run it in Lava's ``fixed_pt`` simulator on part of the test
set, and compare; then measure its energy and sparsity on the whole test set for each
target of :mod:`hardware.energy` (operations counted once, priced per target; Loihi 2
listed as not published), writing ``energy.json`` and ``energy.png``. Returns the
figures that go into ``summary.json`` under ``hardware`` (``energy`` among them).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

#: Test samples run through Lava's simulator (one Lava run each, ~0.2 s apiece).
LAVA_SAMPLES = 24
#: Targets the demo prices, in table order (a refused one is listed as not published).
ENERGY_TARGETS = ("cmos45", "loihi", "gpu", "loihi2")


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
    report["energy"] = energy_step(out, model, x)
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


def _reason(exc: ValueError) -> str:
    """The reason inside ``get_target``'s refusal ("... unavailable (REASON); known ...")."""
    msg = str(exc)
    return msg.split("(", 1)[1].split(")", 1)[0] if "(" in msg and ")" in msg else msg


def energy_step(out: Path, model: torch.nn.Module, x: torch.Tensor) -> dict[str, Any]:
    """Count the operations of ``model`` on ``x`` (``[T, B, 64]``) once, price them for
    each of :data:`ENERGY_TARGETS` (:func:`hardware.energy.energy`), print the table,
    write ``out/energy.json`` (every report) and ``out/energy.png``; return the totals.

    Loihi has no multiplier: the first layer's real-valued pixel products are priced at
    its synaptic-op figure and said so (``note``); in :mod:`hardware.lava` the host
    computes that layer."""
    from aura_snn._io import atomic_write_json
    from aura_snn.metrics.ops import count_ops
    from aura_snn.plot.energy import plot_energy_targets
    from hardware.energy import energy, get_target
    from hardware.energy_graph import strict_json

    t0 = time.perf_counter()
    with torch.no_grad():
        counts = count_ops(model, x)
    steps = int(x.shape[0])
    reports: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    notes: dict[str, str] = {}
    for name in ENERGY_TARGETS:
        try:
            t = get_target(name)
        except ValueError as exc:
            unavailable[name] = _reason(exc)
            continue
        real = {n: c.macs / counts.samples for n, c in counts.layers.items() if c.macs > 0}
        if not t.supports_mac and real:
            notes[name] = (f"{', '.join(f'{n} ({v:,.0f})' for n, v in real.items())} "
                           f"real-valued products per inference priced at the synaptic-op "
                           f"figure ({t.e_mac:g} pJ); hardware.lava computes them on the host")
        reports[name] = energy(counts, t, steps=steps, strict=False)
    atomic_write_json(out / "energy.json", strict_json(
        {"reports": reports, "unavailable": unavailable, "notes": notes}))
    plot_energy_targets(reports, out / "energy.png", unavailable, notes)
    first = next(iter(reports.values()))
    summary = {
        "samples": counts.samples, "steps": steps,
        "activation_sparsity": counts.activation_sparsity,
        "layer_sparsity": {n: c["activation_sparsity"] for n, c in first["layers"].items()
                           if c["kind"] == "neuron"},
        "targets": {n: {**r["per_inference"], "source": r["target"]["source"],
                        **({"note": notes[n]} if n in notes else {})}
                    for n, r in reports.items()},
        "unavailable": unavailable, "json": str(out / "energy.json"),
        "figure": str(out / "energy.png"), "seconds": time.perf_counter() - t0}
    _print_energy(summary)
    return summary


def _print_energy(e: dict[str, Any]) -> None:
    print(f"\nenergy per inference, {e['samples']} test samples of {e['steps']} steps "
          f"(activation sparsity: zero fraction of all spike outputs)")
    header = (f"{'target':<10}{'compute':>14}{'with memory':>14}{'dense ANN':>14}"
              f"{'sparsity':>10}")
    print(header)
    print("-" * len(header))
    for name, r in e["targets"].items():
        print(f"{name:<10}{r['compute_pJ'] / 1e3:>11.2f} nJ{r['memory_pJ'] / 1e3:>11.2f} nJ"
              f"{r['dense_ann_pJ'] / 1e3:>11.2f} nJ{e['activation_sparsity']:>10.3f}")
    for name, why in e["unavailable"].items():
        print(f"{name:<10}{'not published':>14}  ({why})")
    for name, r in e["targets"].items():
        print(f"{name}: {r['source']}" + (f"; {r['note']}" if "note" in r else ""))
    print(f"wrote {e['json']} and {e['figure']} ({e['seconds']:.1f} s)")
