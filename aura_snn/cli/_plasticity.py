"""What ``aura-snn simulate`` writes for the plastic projections of a network file.

For each projection with rules (:mod:`aura_snn.graph.config_plasticity`):

* ``weights_<projection>.npz``: ``pre``, ``post`` (int64, one entry per synapse in
  :meth:`~aura_snn.graph.projection.Projection.to_coo` order), ``before`` and ``after``
  (the effective weights in V at the start and the end of the run);
* ``weight_trajectory_<projection>.<npz|h5>``: a ``"weights"`` monitor of the sampled
  synapses (:func:`~aura_snn.graph.config_plasticity.weight_samples`), ``t`` steps and
  ``values [rows, k]`` (V);
* in ``summary.json`` under ``projections.<name>.plasticity``: the rules, the bounds,
  the sampled synapses and the statistics of :func:`weight_stats` before and after;
* the figures ``weights_before_after.png`` and ``weight_trajectories.png``
  (:mod:`aura_snn.plot.weights`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: Figures drawn when a file has plastic projections.
FIGURES = ("weights_before_after.png", "weight_trajectories.png")


def weight_stats(w: np.ndarray, w_min: float | None, w_max: float | None) -> dict[str, Any]:
    """Mean, standard deviation, minimum and maximum of ``w`` (V); with both bounds also
    the fractions of synapses in the lowest and highest tenth of ``[w_min, w_max]``
    (``low_tenth``: ``w < w_min + 0.1 (w_max - w_min)``, ``high_tenth``: ``w > w_max -
    0.1 (w_max - w_min)``), which measure how far the weights have split to the bounds."""
    w = np.asarray(w, dtype=np.float64)
    if not w.size:
        return {"synapses": 0}
    out: dict[str, Any] = {"synapses": int(w.size), "mean": float(w.mean()),
                           "std": float(w.std()), "min": float(w.min()),
                           "max": float(w.max())}
    if w_min is not None and w_max is not None and w_max > w_min:
        tenth = 0.1 * (w_max - w_min)
        out["low_tenth"] = float(np.mean(w < w_min + tenth))
        out["high_tenth"] = float(np.mean(w > w_max - tenth))
    return out


def attach(cfg: Any, graph: Any, staging: Path, ext: str) -> dict[str, dict[str, Any]]:
    """Before the run: a trajectory monitor per plastic projection and its starting
    weights. Returns the plan :func:`finish` completes (empty without plasticity)."""
    from ..graph.config_plasticity import weight_samples

    plan = {}
    for name, (idx, every) in weight_samples(cfg, graph).items():
        fname = f"weight_trajectory_{name}.{ext}"
        graph.monitor(name, "weights", neurons=idx.tolist(), every=every, to=staging / fname)
        pre, post, w, _ = graph.projections[name].to_coo()
        plan[name] = {"pre": pre, "post": post, "before": w.copy(), "synapses": idx,
                      "every": every, "trajectory": fname}
    return plan


def files(plan: dict[str, dict[str, Any]]) -> list[str]:
    """The data files of ``plan`` (figures aside)."""
    return sorted([f"weights_{n}.npz" for n in plan] + [p["trajectory"] for p in plan.values()])


def finish(plan: dict[str, dict[str, Any]], graph: Any, staging: Path, dt: float
           ) -> tuple[dict[str, dict[str, Any]], dict[str, Any] | None]:
    """After the run (monitors closed): write ``weights_<name>.npz``; return the summary
    entries by projection and the data of the two figures (``None`` without plasticity)."""
    from .._io import atomic_path
    from ..graph.recorder import load_recording

    summary, before_after, trajectories, bounds = {}, {}, {}, {}
    for name, p in plan.items():
        proj = graph.projections[name]
        pre, post, after, _ = proj.to_coo()
        with atomic_path(staging / f"weights_{name}.npz", suffix=".npz") as tmp, \
                open(tmp, "wb") as fh:
            np.savez(fh, pre=pre, post=post, before=p["before"], after=after)
        rec = load_recording(staging / p["trajectory"])
        lo, hi = proj.w_min, proj.w_max
        bounds[name] = (lo, hi)
        before_after[name] = (p["before"], after)
        trajectories[name] = (rec["t"] * dt, rec["values"])
        summary[name] = {
            "rules": [type(r).__name__ for r in proj.rules],
            "synapse_model": None if proj.synapse is None else type(proj.synapse).__name__,
            "w_min": lo, "w_max": hi,
            "before": weight_stats(p["before"], lo, hi), "after": weight_stats(after, lo, hi),
            "sampled_synapses": p["synapses"].tolist(), "sample_every_steps": p["every"],
            "files": [f"weights_{name}.npz", p["trajectory"]]}
    if not plan:
        return summary, None
    return summary, {"before_after": before_after, "trajectories": trajectories,
                     "bounds": bounds}


def draw(staging: Path, data: dict[str, Any]) -> None:
    """Write the two figures of :func:`finish`'s data into ``staging``."""
    from ..plot import weights as fig

    fig.save_before_after(staging / FIGURES[0], data["before_after"], data["bounds"])
    fig.save_trajectories(staging / FIGURES[1], data["trajectories"], data["bounds"])


__all__ = ["FIGURES", "attach", "draw", "files", "finish", "weight_stats"]
