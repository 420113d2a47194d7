r"""Loihi 2 fixed-point twin of an :class:`aura_snn.graph.Graph`, bit-exact with Lava.

:func:`quantize_graph` (also reached through :func:`hardware.loihi.quantize`) turns a
graph of spiking regions (models of the registry that map onto Lava's ``LIF``:
``lif``, ``cuba``, ``if``, ``cuba_refractory`` without refractory period and with
equal receptor currents, or neuron modules), input regions and dense or sparse
projections (uniform or per-synapse delays, same-step edges) into a
:class:`GraphTwin` that computes, on integer tensors, what Lava's ``Dense``/``Sparse``/
``DelaySparse`` and ``LIF`` bit-accurate models compute (equations in
:mod:`hardware.loihi`). Step :math:`t` of region :math:`r`:

.. math::
    a_r[t] = \sum_{p \to r} \sum_k \operatorname{shift}_{e_p}\big(\operatorname{round}
        (y_\text{pre}[t - \ell_p - k]\,(w_p \odot [d_p = k])^\top)\big)

with :math:`\ell_p = 0` for a same-step edge and 1 for a delayed one (the graph
delivers at :math:`t + 1 + d`), then Lava's LIF step. Mapping: each spiking region
has one scale :math:`\sigma_r` (integer units per volt; :func:`~hardware._loihi_fixed.
auto_scale` from the largest incoming weight), each projection its own weight exponent
(the smallest that fits its weights in 8 bits), :math:`w_p = \operatorname{round}
(g_r W_p^\top \sigma_r / 2^{e_p})`, :math:`\vartheta_m = \operatorname{round}
((\vartheta - v_\text{leak})\sigma_r)`. Refused, naming the region or projection:
Poisson, dense and module regions (the ANN part stays in PyTorch), initial values,
plasticity rules and synapse models, delays beyond 63 steps, multapses with different
delays, and what :func:`~hardware._loihi_fixed.neuron_map` refuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from aura_snn.errors import InputValueError, ParameterError, ShapeError
from aura_snn.functional.conventions import LOIHI_DECAY_SCALE
from aura_snn.graph import Graph, InputRegion, SpikingRegion

from ._loihi_fixed import (
    MAX_DELAY,
    VTH_MAX,
    auto_scale,
    fitting_exponent,
    lif_fixed,
    lif_registers,
    lif_step,
    neuron_map,
    quantize_weights,
    shift,
)


@dataclass(frozen=True)
class TwinRegion:
    """A spiking region as Lava's LIF registers (``du``, ``dv``, ``vth``), its scale
    (integer units per volt) and the float registers (``floating_pt``: fractions and
    volts above ``v_leak``)."""

    name: str
    size: int
    du: int
    dv: int
    vth: int
    scale: float
    du_f: float
    dv_f: float
    vth_f: float
    v_leak: float


@dataclass(frozen=True)
class TwinProjection:
    """A projection in Lava's layout: ``weights`` int64 ``[n_post, n_pre]``, its
    exponent and sign mode, ``delays`` int64 ``[n_post, n_pre]`` (the graph's delays
    ``d``, 0 where no synapse), ``weights_f`` float64 ``g W^T`` (V of drive)."""

    name: str
    pre: str
    post: str
    weights: torch.Tensor
    weight_exp: int
    num_weight_bits: int
    sign_mode: str
    delays: torch.Tensor
    same_step: bool
    sparse: bool
    weights_f: torch.Tensor

    @property
    def latency(self) -> int:
        """Steps before delay 0 arrives: 0 for a same-step edge, else 1."""
        return 0 if self.same_step else 1

    def groups(self, weights: torch.Tensor | None = None) -> list[tuple[int, torch.Tensor]]:
        """``[(latency + k, weights at delay k), ...]`` (float64, Lava layout)."""
        w = (self.weights if weights is None else weights).double()
        return [(self.latency + int(k), w * (self.delays == k))
                for k in torch.unique(self.delays).tolist()]


@dataclass(frozen=True)
class ProjectionError:
    """Quantisation error of a projection's weights (V of drive) and its clipping."""

    name: str
    weight_max_err: float
    weight_rel_rmse: float
    clipped: int
    clipped_max: float


@dataclass(frozen=True)
class RegionError:
    """Quantisation error of a region's threshold (relative) and decays (per step)."""

    name: str
    threshold_rel_err: float
    decay_u_err: float
    decay_v_err: float


def _current(s: torch.Tensor, groups: list[tuple[int, torch.Tensor]], e: int) -> torch.Tensor:
    steps = s.shape[0]
    out = torch.zeros(*s.shape[:-1], groups[0][1].shape[0], dtype=torch.long, device=s.device)
    for lag, w in groups:
        if lag < steps:
            out[lag:] += shift(torch.round(s[:steps - lag] @ w.to(s.device).T).long(), e)
    return out


def _acyclic_order(names: list[str], projections: list[TwinProjection]) -> list[str] | None:
    """Regions in an order where every projection's pre comes first (None on a cycle)."""
    indeg = {n: 0 for n in names}
    for p in projections:
        indeg[p.post] += 1
    order, ready = [], [n for n in names if indeg[n] == 0]
    while ready:
        n = ready.pop(0)
        order.append(n)
        for p in projections:
            if p.pre == n:
                indeg[p.post] -= 1
                if indeg[p.post] == 0:
                    ready.append(p.post)
    return order if len(order) == len(names) else None


class GraphTwin(nn.Module):
    """The fixed-point twin of a graph: ``run(inputs) -> {region: spikes bool [T, B, n]}``
    for every spiking region; ``inputs`` maps each input region to ``[T, B, size]`` (a
    tensor alone when the graph has one input region)."""

    def __init__(self, dt: float, inputs: Mapping[str, int], regions: Mapping[str, TwinRegion],
                 projections: list[TwinProjection], step_order: list[str],
                 errors: list[ProjectionError | RegionError]) -> None:
        super().__init__()
        self.dt, self.inputs, self.regions = dt, dict(inputs), dict(regions)
        self.projections, self.step_order = list(projections), list(step_order)
        self.errors = tuple(errors)

    def check_inputs(self, inputs: Any) -> dict[str, torch.Tensor]:
        """``{input region: float64 [T, B, size]}``, checked (names, shapes, finite)."""
        if isinstance(inputs, torch.Tensor):
            if len(self.inputs) != 1:
                raise ParameterError(f"inputs must be a mapping over the input regions "
                                     f"{list(self.inputs)}, got one tensor")
            inputs = {next(iter(self.inputs)): inputs}
        if not isinstance(inputs, Mapping) or set(inputs) != set(self.inputs):
            got = sorted(inputs) if isinstance(inputs, Mapping) else type(inputs).__name__
            raise ParameterError(f"inputs must name exactly the input regions "
                                 f"{sorted(self.inputs)}, got {got}")
        out, shapes = {}, set()
        for name, x in inputs.items():
            x = torch.as_tensor(x)
            if x.ndim != 3 or x.shape[2] != self.inputs[name]:
                raise ShapeError(f"inputs[{name!r}] must be [T, B, {self.inputs[name]}], got "
                                 f"{tuple(x.shape)}")
            if not torch.isfinite(x).all():
                raise InputValueError(f"inputs[{name!r}] contains NaN or infinite values")
            shapes.add(tuple(x.shape[:2]))
            out[name] = x.double()
        if len(shapes) > 1:
            raise ShapeError(f"inputs disagree on [T, B]: {sorted(shapes)}")
        if not out:
            raise ParameterError("the graph has no input region: nothing drives it")
        return out

    def run(self, inputs: Any, backend: str = "auto") -> dict[str, torch.Tensor]:
        """Spikes of every spiking region. A graph without cycles runs region by region
        over all steps (``backend`` of :func:`~hardware._loihi_fixed.lif_fixed`); one
        with cycles steps all regions together (torch)."""
        xs = self.check_inputs(inputs)
        spikes: dict[str, torch.Tensor] = dict(xs)
        order = _acyclic_order([*self.inputs, *self.regions], self.projections)
        if order is None:
            return self._run_steps(xs)
        for name in order:
            if name in self.regions:
                r = self.regions[name]
                spikes[name] = lif_fixed(self._input(name, spikes), r.du, r.dv, r.vth, backend)
        return {n: spikes[n] for n in self.regions}

    def _input(self, name: str, spikes: Mapping[str, torch.Tensor]) -> torch.Tensor:
        like = next(iter(spikes.values()))
        a = torch.zeros(*like.shape[:2], self.regions[name].size, dtype=torch.long,
                        device=like.device)
        for p in self.projections:
            if p.post == name:
                a += _current(spikes[p.pre].double(), p.groups(), p.weight_exp)
        return a

    def _run_steps(self, xs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x0 = next(iter(xs.values()))
        steps, batch, dev = x0.shape[0], x0.shape[1], x0.device
        s = dict(xs)
        for n, r in self.regions.items():
            s[n] = torch.zeros(steps, batch, r.size, dtype=torch.float64, device=dev)
        state = {n: (torch.zeros(batch, r.size, dtype=torch.long, device=dev),) * 2
                 for n, r in self.regions.items()}
        regs = {n: lif_registers(r.du, r.dv, r.vth) for n, r in self.regions.items()}
        incoming = {n: [(p, [(lag, w.to(dev)) for lag, w in p.groups()])
                        for p in self.projections if p.post == n] for n in self.regions}
        for t in range(steps):
            for n in self.step_order:
                if n not in self.regions:
                    continue
                a = torch.zeros(batch, self.regions[n].size, dtype=torch.long, device=dev)
                for p, groups in incoming[n]:
                    for lag, w in groups:
                        if t >= lag:
                            a += shift(torch.round(s[p.pre][t - lag] @ w.T).long(),
                                       p.weight_exp)
                spk, u, v = lif_step(*state[n], a, regs[n])
                state[n] = (u, v)
                s[n][t] = spk.double()
        return {n: s[n].bool() for n in self.regions}

    def forward(self, inputs: Any) -> dict[str, torch.Tensor]:
        return {n: v.double() for n, v in self.run(inputs).items()}

    def spike_error(self, graph: Graph, inputs: Any) -> list[dict[str, float]]:
        """Per spiking region, twin against the float ``graph`` (torch backend, from rest;
        the graph's kept state is restored): spike ``mismatch`` fraction, both firing
        probabilities per step, and the input current's ``current_max_err``/
        ``current_mean_err`` (V of drive: the twin's integer current over the scale
        against the float drive, both computed from the float run's spikes)."""
        xs = self.check_inputs(inputs)
        steps = next(iter(xs.values())).shape[0]
        kept = graph.state
        try:
            with torch.no_grad():
                res = graph.run(steps, {k: v.to(graph.dtype) for k, v in xs.items()},
                                record=list(self.regions), backend="torch", reset=True)
        finally:
            graph.state = kept
        flt = {**xs, **{k: v.double().cpu() for k, v in res.outputs.items()}}
        twin = self.run(xs)
        out = []
        for n, r in self.regions.items():
            cur_q = self._input(n, flt).double() / r.scale
            cur_f = torch.zeros_like(cur_q)
            for p in self.projections:
                if p.post == n:
                    for lag, w in p.groups(p.weights_f):
                        cur_f[lag:] += flt[p.pre][:steps - lag] @ w.T
            diff = (cur_q - cur_f).abs()
            out.append({"name": n, "mismatch": float((twin[n] != flt[n].bool()).double().mean()),
                        "rate_float": float(flt[n].mean()), "rate_twin": float(
                            twin[n].double().mean()),
                        "current_max_err": float(diff.max()) if diff.numel() else 0.0,
                        "current_mean_err": float(diff.mean()) if diff.numel() else 0.0})
        return out


def _delays(p: Any) -> torch.Tensor:
    """Delays ``[n_post, n_pre]`` of a projection (0 where no synapse)."""
    if p.uniform_delay:
        return torch.full((p.n_post, p.n_pre), int(p.delay), dtype=torch.long)
    pre, post, _, dl = p.to_coo()
    d = np.full((p.n_post, p.n_pre), -1, np.int64)
    for i, j, k in zip(pre.tolist(), post.tolist(), dl.tolist(), strict=True):
        if d[j, i] not in (-1, k):
            raise ParameterError(f"projection {p.name!r}: synapses {i} -> {j} have delays "
                                 f"{d[j, i]} and {k} (Lava holds one delay per pair)")
        d[j, i] = k
    return torch.from_numpy(np.maximum(d, 0))


def _check_graph(graph: Graph) -> None:
    graph.validate()
    graph.step_order()  # raises on a same-step cycle
    for name, r in graph.regions.items():
        what = f"region {name!r} ({r.kind})"
        if isinstance(r, InputRegion):
            continue
        if not isinstance(r, SpikingRegion):
            hint = ("draw it on the host and feed its spikes through an InputRegion "
                    "(hardware.partition_graph.run_graph_partitioned does)"
                    if r.kind == "poisson" else "the ANN part stays in PyTorch "
                    "(hardware.partition_graph.run_graph_partitioned)")
            raise ParameterError(f"{what} has no Loihi equivalent: {hint}")
        if r.init:
            raise ParameterError(f"{what}: initial values {sorted(r.init)} (Lava's LIF "
                                 "starts at rest)")
    for name, p in graph.projections.items():
        if p.rules or p.synapse is not None:
            raise ParameterError(f"projection {name!r}: plasticity rules and synapse models "
                                 "have no fixed-weight Lava equivalent")
        if p.max_delay > MAX_DELAY:
            raise ParameterError(f"projection {name!r}: delay of {p.max_delay} steps, beyond "
                                 f"Loihi 2's {MAX_DELAY}")


def _pick(value: Any, key: str, kind: str) -> Any:
    v = value.get(key) if isinstance(value, Mapping) else value
    if v is not None and kind == "scale" and not (np.isfinite(float(v)) and float(v) > 0):
        raise ParameterError(f"scale for {key!r} must be positive and finite, got {v}")
    return v


def quantize_graph(graph: Graph, *, scale: float | Mapping[str, float] | None = None,
                   weight_exp: int | Mapping[str, int] | None = None,
                   num_weight_bits: int = 8, allow_saturation: bool = False,
                   approximate_reset: bool = False) -> GraphTwin:
    """The Loihi 2 fixed-point twin of ``graph`` (module docstring). ``scale`` (integer
    units per volt; one value or ``{region: value}``) and ``weight_exp`` (one or
    ``{projection: e}``) default to the automatic choice; weights outside the 8-bit
    range raise, naming the projection and the excess, unless ``allow_saturation``."""
    if not isinstance(graph, Graph):
        raise ParameterError(f"graph must be an aura_snn.graph.Graph, got {type(graph).__name__}")
    if not 1 <= int(num_weight_bits) <= 8:
        raise ParameterError(f"num_weight_bits must be in 1..8, got {num_weight_bits}")
    _check_graph(graph)
    spiking = {n: r for n, r in graph.regions.items() if isinstance(r, SpikingRegion)}
    if not spiking:
        raise ParameterError("graph has no spiking region")
    regions, projections, errors = {}, [], []
    for name, r in spiking.items():
        what = f"region {name!r}"
        nm = neuron_map(r.spec, r.params(), graph.dt, what, approximate_reset)
        incoming = [p for p in graph.projections.values() if p.post == name]
        wgs = [nm.gain * p.dense_weight().detach().double().cpu().T for p in incoming]
        for p, w in zip(incoming, wgs, strict=True):
            if not bool(torch.isfinite(w).all()):
                raise InputValueError(f"projection {p.name!r} has NaN or infinite weights")
        peak = max((float(w.abs().max()) for w in wgs if w.numel()), default=0.0)
        mixed = any(bool((w < 0).any() and (w > 0).any()) for w in wgs)
        s = _pick(scale, name, "scale")
        s = auto_scale(peak, nm.threshold, mixed)[0] if s is None else float(s)
        vth = round(nm.threshold * s)
        if not 1 <= vth <= VTH_MAX:
            raise ParameterError(f"{what}: threshold {nm.threshold} V at scale {s} gives "
                                 f"vth={vth}, outside Lava's 17-bit range [1, {VTH_MAX}]")
        du, dv = nm.du(what), nm.dv
        regions[name] = TwinRegion(name, r.size, du, dv, vth, s, 1.0 - nm.a_u, 1.0 - nm.a_v,
                                   nm.threshold, nm.v_leak)
        errors.append(RegionError(
            name, abs(vth / s - nm.threshold) / nm.threshold,
            abs((LOIHI_DECAY_SCALE - du - 1) / LOIHI_DECAY_SCALE - nm.a_u),
            abs((LOIHI_DECAY_SCALE - dv) / LOIHI_DECAY_SCALE - nm.a_v)))
        for p, wg in zip(incoming, wgs, strict=True):
            e = _pick(weight_exp, p.name, "weight_exp")
            if e is None:
                e = fitting_exponent(float(wg.abs().max()), s,
                                     bool((wg < 0).any() and (wg > 0).any()))
            wi, sign, over = quantize_weights(wg, s, int(e), int(num_weight_bits))
            clipped = int((over > 0).sum())
            clipped_max = float(over.max()) * 2.0 ** e / s if over.numel() else 0.0
            if clipped and not allow_saturation:
                raise ParameterError(f"projection {p.name!r}: {clipped} weights overflow "
                                     f"Loihi's range (largest excess {clipped_max:.4g} V); "
                                     "pass allow_saturation=True to clip them")
            werr = wi.double() * 2.0 ** e / s - wg
            errors.append(ProjectionError(
                p.name, float(werr.abs().max()),
                float(werr.pow(2).mean().sqrt() / wg.pow(2).mean().sqrt().clamp_min(1e-300)),
                clipped, clipped_max))
            projections.append(TwinProjection(p.name, p.pre, name, wi, int(e),
                                              int(num_weight_bits), sign, _delays(p),
                                              p.same_step, p.sparse, wg))
    inputs = {n: r.size for n, r in graph.regions.items() if isinstance(r, InputRegion)}
    return GraphTwin(graph.dt, inputs, regions, projections, graph.step_order(), errors)


__all__ = ["GraphTwin", "ProjectionError", "RegionError", "TwinProjection", "TwinRegion",
           "quantize_graph"]
