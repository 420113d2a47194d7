r"""Energy per target from the operation counts of :mod:`aura_snn.metrics.ops`.

Two conventions, both reported:

* ``compute``: :math:`E = E_\text{MAC} N_\text{MAC} + E_\text{AC} N_\text{AC}` (the
  spiking-transformer papers' convention), plus neuron updates and spikes where the
  target publishes them;
* ``memory``: ``compute`` plus one weight read per effective synaptic op and one state
  read and one write per membrane update, at ``e_mem_read``/``e_mem_write`` (pJ).

Figures (pJ) and their sources:

* ``cmos45``: Horowitz, "Computing's energy problem", ISSCC 2014: 32-bit float add
  0.9 pJ, multiply 3.7 pJ, so MAC 4.6 pJ and AC 0.9 pJ; 32-bit SRAM read from an
  8 KB array 10 pJ (the same talk's memory table), used for reads and writes.
* ``loihi``: Davies et al., "Loihi", IEEE Micro 38(1), 2018, Table 2 (labelled
  pre-silicon): 23.6 pJ per synaptic spike op (our AC), 120 pJ per synaptic update
  (learning; unused at inference), 81 pJ per active / 52 pJ per inactive neuron
  update, 1.7 pJ per spike within a tile. Loihi has no MAC: real-valued inputs are
  refused by :func:`energy` unless ``strict=False``.
* ``gpu``: basis stated, not measured: the cmos45 op energies (a 45 nm float32 MAC;
  a GPU at ~7 nm spends less per op but more on data movement), with DRAM-free
  on-chip access at the cmos45 SRAM figure. Treat as an order of magnitude.
* ``loihi2``: no per-operation energy is published by Intel in a primary source; the
  name is refused with that reason rather than filled with secondary figures.

A user adds a target with :class:`Target` (or :func:`load_target` from a TOML file with
the same keys) and passes it as ``target=``.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aura_snn._io import atomic_write_json
from aura_snn.metrics.ops import OpCounts, count_ops


@dataclass(frozen=True)
class Target:
    """Energy per operation in pJ; ``source`` names the paper and table of each figure."""

    name: str
    e_mac: float
    e_ac: float
    e_neuron_active: float = 0.0
    e_neuron_inactive: float = 0.0
    e_spike: float = 0.0
    e_mem_read: float = 0.0
    e_mem_write: float = 0.0
    supports_mac: bool = True
    source: str = ""

    def __post_init__(self) -> None:
        for k, v in asdict(self).items():
            if isinstance(v, float) and (not math.isfinite(v) or v < 0):
                raise ValueError(f"{k}: must be a finite energy >= 0 pJ, got {v}")


TARGETS: dict[str, Target] = {
    "cmos45": Target("cmos45", 4.6, 0.9, e_mem_read=10.0, e_mem_write=10.0,
                     source="Horowitz ISSCC 2014: fadd32 0.9 pJ, fmul32 3.7 pJ, 8KB SRAM 10 pJ"),
    "loihi": Target("loihi", 23.6, 23.6, e_neuron_active=81.0, e_neuron_inactive=52.0,
                    e_spike=1.7, supports_mac=False,
                    source="Davies et al. IEEE Micro 2018 Table 2 (pre-silicon)"),
    "gpu": Target("gpu", 4.6, 0.9, e_mem_read=10.0, e_mem_write=10.0,
                  source="estimate: cmos45 op and SRAM energies (Horowitz 2014), not measured"),
}
_REFUSED = {"loihi2": "no primary published per-operation energy for Loihi 2"}


def get_target(target: str | Target) -> Target:
    """The :class:`Target` named ``target`` (or ``target`` itself)."""
    if isinstance(target, Target):
        return target
    if target in _REFUSED:
        raise ValueError(f"target: {target!r} unavailable ({_REFUSED[target]}); "
                         f"known: {sorted(TARGETS)}")
    if target not in TARGETS:
        raise ValueError(f"target: unknown {target!r}; known: {sorted(TARGETS)}")
    return TARGETS[target]


def load_target(path: str | Path) -> Target:
    """A :class:`Target` from a TOML file whose keys are its fields."""
    with open(path, "rb") as f:
        return Target(**tomllib.load(f))


def _layer_energy(c: Any, t: Target) -> dict[str, float]:
    comp = t.e_mac * c.macs + t.e_ac * c.acs
    inactive = c.membrane_updates - c.spikes
    comp += t.e_neuron_active * c.spikes + t.e_neuron_inactive * inactive + t.e_spike * c.spikes
    mem = t.e_mem_read * (c.effective + c.membrane_updates) + t.e_mem_write * c.membrane_updates
    dense = t.e_mac * c.dense + t.e_neuron_active * c.membrane_updates
    return {"compute_pJ": comp, "memory_pJ": comp + mem, "dense_ann_pJ": dense}


def energy(counts: OpCounts, target: str | Target, *, steps: int,
           strict: bool = True) -> dict[str, Any]:
    """Report dict: per-layer energies (pJ, totals over the batch) and per-inference totals."""
    t = get_target(target)
    if strict and not t.supports_mac and counts.total("macs") > 0:
        raise ValueError(f"target: {t.name!r} has no MAC but the model has "
                         f"{counts.total('macs'):g} real-valued synaptic ops; pass strict=False")
    layers = {n: {**asdict(c), "activation_sparsity": c.activation_sparsity,
                  **_layer_energy(c, t)} for n, c in counts.layers.items()}
    tot = {k: sum(v[k] for v in layers.values()) / counts.samples
           for k in ("compute_pJ", "memory_pJ", "dense_ann_pJ")}
    per_step = {k.replace("_pJ", "_per_step_pJ"): v / steps for k, v in tot.items()}
    return {"target": asdict(t), "samples": counts.samples, "steps": steps,
            "layers": layers, "per_inference": tot, "per_step": per_step}


def measure(model: nn.Module, x: torch.Tensor, target: str | Target = "cmos45", *,
            json_path: str | Path | None = None, strict: bool = True) -> dict[str, Any]:
    """Count ops of ``model`` on time-major ``x`` ``[T, B, ...]`` and price them."""
    if x.dim() < 2:
        raise ValueError(f"x: expected time-major [T, B, ...], got shape {tuple(x.shape)}")
    rep = energy(count_ops(model, x), target, steps=int(x.shape[0]), strict=strict)
    if json_path is not None:
        atomic_write_json(json_path, rep)
    return rep


def format_report(rep: dict[str, Any]) -> str:
    """Plain-text table of a report from :func:`energy`; every figure per inference (the
    report's layer totals over its batch divided by ``samples``)."""
    n = rep["samples"]
    rows = [f"target {rep['target']['name']} ({rep['target']['source']})",
            f"per inference, mean of {n} samples of {rep['steps']} steps",
            f"{'layer':<12}{'MACs':>12}{'ACs':>12}{'spikes':>10}{'sparsity':>10}"
            f"{'compute pJ':>14}{'memory pJ':>14}"]
    for name, c in rep["layers"].items():
        sp = c["activation_sparsity"]
        sp_txt = "-" if sp is None or math.isnan(sp) else f"{sp:.3f}"
        rows.append(f"{name:<12}{c['macs'] / n:>12.1f}{c['acs'] / n:>12.1f}"
                    f"{c['spikes'] / n:>10.1f}{sp_txt:>10}{c['compute_pJ'] / n:>14.1f}"
                    f"{c['memory_pJ'] / n:>14.1f}")
    p = rep["per_inference"]
    rows.append(f"per inference: compute {p['compute_pJ']:.1f} pJ, memory {p['memory_pJ']:.1f}"
                f" pJ, dense ANN {p['dense_ann_pJ']:.1f} pJ")
    return "\n".join(rows)
