"""Test networks for the Loihi 2 twin and Lava export of graphs, and the oracle: a NumPy
transcription, written here from Lava 0.10's source, of what its bit-accurate processes
compute on such a graph (``lava/proc/dense/models.py`` ``AbstractPyDenseModelBitAcc``
and ``PyDelayDenseModelBitAcc``, ``lava/proc/sparse/models.py``, ``lava/utils/
weightutils.py`` ``clip_weights``/``truncate_weights``, ``lava/proc/lif/models.py``
``AbstractPyLifModelFixed.subthr_dynamics``), with the neuron coefficients written out
analytically from the models' equations (not read from the registry), and the graph's
timing (a delayed edge delivers ``y[t]`` at ``t + 1 + d``, a same-step edge at ``t``).
The twin's free choices (one scale per region, one weight exponent per projection)
are taken from the twin; everything else is recomputed."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from aura_snn.functional.cuba import CubaLIFParameters
from aura_snn.functional.cuba_refractory import CubaRefractoryParameters
from aura_snn.functional.integrate_fire import IFParameters
from aura_snn.functional.lif import LIFParameters
from aura_snn.graph import Graph, InputRegion, SpikingRegion

DT = 1e-3

PARAMS = {
    "lif": dict(tau_mem=8e-3, threshold=1.0, reset="zero", input_scaling="direct"),
    "lif_ode": dict(tau_mem=5e-3, threshold=0.3, reset="zero", input_scaling="ode"),
    "cuba": dict(tau_mem=10e-3, tau_syn=4e-3, threshold=0.8, reset="zero",
                 input_scaling="direct"),
    "if": dict(threshold=1.0, reset="zero"),
    "cuba_refractory": dict(tau_mem=20e-3, tau_syn=(5e-3, 5e-3), receptors=("exc", "inh"),
                            v_leak=-65e-3, v_reset=-65e-3, threshold=-50e-3, refractory=0.0),
}


def coefficients(kind: str) -> tuple[float, float, float, float, float]:
    """``(gain, current decay, membrane decay, threshold above rest, v_leak)`` from the
    models' equations (module docstrings of aura_snn.functional.lif/cuba/
    cuba_refractory), exact integration."""
    p = PARAMS[kind]
    if kind == "if":  # v = v + x
        return 1.0, 0.0, 1.0, p["threshold"], 0.0
    a_m = math.exp(-DT / p["tau_mem"])
    if kind == "lif":
        return 1.0, 0.0, a_m, p["threshold"], 0.0
    if kind == "lif_ode":
        return 1.0 - a_m, 0.0, a_m, p["threshold"], 0.0
    if kind == "cuba":  # current_first, direct: i = a_s i + x, v = a_m v + i
        return 1.0, math.exp(-DT / p["tau_syn"]), a_m, p["threshold"], 0.0
    ts, tm = p["tau_syn"][0], p["tau_mem"]  # exact coupling of the linear system
    a_s = math.exp(-DT / ts)
    return ts / (ts - tm) * (a_s - a_m), a_s, a_m, p["threshold"] - p["v_leak"], p["v_leak"]


def build(regions: list[tuple[str, str, int]], projections: list[dict[str, Any]]) -> Graph:
    """A float64 graph: regions ``(name, kind, size)`` (kind ``"input"`` or a key of
    :data:`PARAMS`), projections dicts (``name, pre, post, w [n_pre, n_post]``, optional
    ``delay``, ``same_step``, ``sparse``, ``receptor``)."""
    g = Graph(dt=DT).double()
    cls = {"lif": ("lif", LIFParameters), "lif_ode": ("lif", LIFParameters),
           "cuba": ("cuba", CubaLIFParameters), "if": ("if", IFParameters),
           "cuba_refractory": ("cuba_refractory", CubaRefractoryParameters)}
    for name, kind, n in regions:
        if kind == "input":
            g.add(InputRegion(name, n))
        else:
            model, P = cls[kind]
            g.add(SpikingRegion(name, n, model, P(**PARAMS[kind])))
    for p in projections:
        w = torch.from_numpy(p["w"])
        g.connect(p["pre"], p["post"], w, name=p["name"], delay=p.get("delay", 0),
                  same_step=p.get("same_step", False), sparse=p.get("sparse", False),
                  receptor=p.get("receptor"))
    return g


def weights(n_pre: int, n_post: int, rng: np.random.Generator, scale: float, mean: float,
            density: float = 1.0) -> np.ndarray:
    w = rng.normal(mean, scale, (n_pre, n_post))
    return w * (rng.random((n_pre, n_post)) < density)


def feedforward(seed: int = 0) -> tuple[Graph, dict[str, Any]]:
    """in(12) -> A (lif, dense) -> B (cuba, sparse, per-synapse delays 0..4), in -> B
    same-step; A -> C (cuba_refractory with rest -65 mV, exc and inh receptors), B -> D
    (lif, ode input scaling, uniform delay 3)."""
    rng = np.random.default_rng(seed)
    regions = [("in", "input", 12), ("A", "lif", 20), ("B", "cuba", 16),
               ("C", "cuba_refractory", 10), ("D", "lif_ode", 8)]
    projs = [
        dict(name="in_A", pre="in", post="A", w=weights(12, 20, rng, 0.5, 0.35)),
        dict(name="A_B", pre="A", post="B", w=weights(20, 16, rng, 0.6, 0.25, 0.4),
             sparse=True, delay=rng.integers(0, 5, (20, 16))),
        dict(name="in_B", pre="in", post="B", w=weights(12, 16, rng, 0.2, 0.05),
             same_step=True),
        dict(name="A_C_exc", pre="A", post="C", w=np.abs(weights(20, 10, rng, 8e-3, 6e-3)),
             receptor="exc"),
        dict(name="A_C_inh", pre="A", post="C", w=-np.abs(weights(20, 10, rng, 4e-3, 0.0)),
             receptor="inh", delay=1),
        dict(name="B_D", pre="B", post="D", w=weights(16, 8, rng, 1.0, 0.9), delay=3),
    ]
    return build(regions, projs), {"regions": regions, "projections": projs,
                                   "order": ["in", "B", "A", "C", "D"]}


def recurrent(seed: int = 1, inhibitory_delay: int = 1) -> tuple[Graph, dict[str, Any]]:
    """in(10) -> E (lif) with a sparse E -> E loop (delay 2), E -> I (cuba) same-step,
    I -> E inhibitory (delay 1 by default): a cycle through a delayed edge; E -> F
    (integrate-and-fire, delay 1)."""
    rng = np.random.default_rng(seed)
    regions = [("in", "input", 10), ("E", "lif", 24), ("I", "cuba", 8), ("F", "if", 5)]
    projs = [
        dict(name="in_E", pre="in", post="E", w=weights(10, 24, rng, 0.4, 0.3)),
        dict(name="E_E", pre="E", post="E", w=weights(24, 24, rng, 0.3, 0.1, 0.3),
             sparse=True, delay=2),
        dict(name="E_I", pre="E", post="I", w=weights(24, 8, rng, 0.2, 0.15), same_step=True),
        dict(name="I_E", pre="I", post="E", w=-np.abs(weights(8, 24, rng, 0.4, 0.3)),
             delay=inhibitory_delay),
        dict(name="E_F", pre="E", post="F", w=weights(24, 5, rng, 0.2, 0.4), delay=1),
    ]
    return build(regions, projs), {"regions": regions, "projections": projs,
                                   "order": ["in", "E", "I", "F"]}


# --- the oracle -------------------------------------------------------------------------
def np_weights(w: np.ndarray, scale: float, exp: int, bits: int = 8) -> np.ndarray:
    """Lava's clip_weights then truncate_weights of ``round(w scale / 2**exp)``."""
    raw = np.round(w * scale / 2.0 ** exp).astype(np.int64)
    if raw.min() >= 0:
        mode, lo, hi = "exc", 0, 255
    elif raw.max() <= 0:
        mode, lo, hi = "inh", -255, 0
    else:
        mode, lo, hi = "mix", -256, 255
    raw = np.clip(raw, lo, hi)
    cut = 8 - bits + (mode == "mix")
    return -((-raw >> cut) << cut) if mode == "inh" else (raw >> cut) << cut


def _lava_lif_step(u: np.ndarray, v: np.ndarray, a: np.ndarray, du: int, dv: int,
                   vth: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PyLifModelBitAcc.run_spk with bias 0 (ds_offset 1, dm_offset 0, 24-bit u, v)."""
    lim = 2 ** 23
    dc = u * (4096 - (du + 1))
    dc = np.sign(dc) * (np.abs(dc) >> 12) + (a << 6)
    wr = np.where(dc > lim, dc - 2 * lim, dc)
    u = np.where(wr <= -lim, dc + 2 * lim, wr)
    dvv = v * (4096 - dv)
    v = np.clip(np.sign(dvv) * (np.abs(dvv) >> 12) + u, -lim + 1, lim - 1)
    s = v > (vth << 6)
    return s, u, np.where(s, 0, v)


def oracle(desc: dict[str, Any], twin: Any, x: dict[str, np.ndarray],
           bits: int = 8) -> dict[str, np.ndarray]:
    """Spikes ``{region: bool [T, n]}`` of one sample (``x``: ``{input: [T, n]}``)."""
    steps = next(iter(x.values())).shape[0]
    kinds = {n: k for n, k, _ in desc["regions"]}
    y = {n: np.zeros((steps, s)) for n, _, s in desc["regions"]}
    y.update({k: v.astype(np.float64) for k, v in x.items()})
    reg, st = {}, {}
    for n, k, size in desc["regions"]:
        if k == "input":
            continue
        g, a_u, a_m, th, _ = coefficients(k)
        scale = twin.regions[n].scale
        du = 4095 if a_u == 0 else round(4096 * (1 - a_u)) - 1
        reg[n] = (du, round(4096 * (1 - a_m)), round(th * scale), g, scale)
        st[n] = (np.zeros(size, np.int64), np.zeros(size, np.int64))
    conns = []
    for p in desc["projections"]:
        _, _, _, g, scale = reg[p["post"]]
        e = next(q.weight_exp for q in twin.projections if q.name == p["name"])
        wi = np_weights(g * p["w"].T, scale, e, bits)  # [n_post, n_pre]
        d = np.broadcast_to(np.asarray(p.get("delay", 0)), p["w"].shape).T
        lat = 0 if p.get("same_step", False) else 1
        conns.append((p["pre"], p["post"], e, [(lat + k, np.where(d == k, wi, 0))
                                               for k in np.unique(d)]))
    for t in range(steps):
        for n in desc["order"]:
            if kinds[n] == "input":
                continue
            a = np.zeros(y[n].shape[1], np.int64)
            for pre, post, e, groups in conns:
                if post != n:
                    continue
                for lag, wk in groups:
                    if t >= lag:
                        acc = np.round(wk.astype(np.float64) @ y[pre][t - lag]).astype(np.int64)
                        a += acc << e if e > 0 else acc >> -e
            du, dv, vth = reg[n][:3]
            s, u, v = _lava_lif_step(*st[n], a, du, dv, vth)
            st[n] = (u, v)
            y[n][t] = s
    return {n: y[n].astype(bool) for n in reg}
