"""The fixed-point twin of a graph (:class:`GraphTwin`) and its integer parameters: the
data :func:`hardware.loihi_graph.quantize_graph` produces (equations in
:mod:`hardware.loihi_graph`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from aura_snn.errors import InputValueError, ParameterError, ShapeError
from aura_snn.graph import Graph

from ._loihi_fixed import lif_fixed, lif_registers, lif_step, shift
from ._twin_current import Float32Group, float32_groups, integer_current
from ._twin_current import float_current as _current  # noqa: F401  (hardware.lava_graph)


@dataclass(frozen=True)
class TwinRegion:
    """A spiking region as Lava's LIF registers (``du``, ``dv``, ``vth``), its scale
    (integer units per volt) and the float registers (``floating_pt``: fractions and
    volts above ``v_leak``). Initial state (``None``: rest, 0): ``v0``/``u0`` int64
    ``[size]``, Lava's 24-bit ``v``/``u`` (``round(2**6 scale x)``), and
    ``v0_f``/``u0_f`` float64 ``[size]``, ``x`` itself: the membrane above ``v_leak``
    (V) and the current as membrane drive ``k i / c`` (V of drive; receptor
    coefficients of :class:`~aura_snn.functional.registry.CompiledFamily`)."""

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
    u0: torch.Tensor | None = None
    v0: torch.Tensor | None = None
    u0_f: torch.Tensor | None = None
    v0_f: torch.Tensor | None = None

    def start(self, batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Initial ``(u, v)`` int64 ``[batch, size]`` (shared by the batch)."""
        z = torch.zeros(batch, self.size, dtype=torch.long, device=device)
        u = z if self.u0 is None else z + self.u0.to(device)
        return u, (z if self.v0 is None else z + self.v0.to(device))


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

    def _cached(self, key: Any, sources: tuple[torch.Tensor, ...], build: Any) -> Any:
        """``build()``, kept in the instance (not a field: files and equality ignore it)
        until one of ``sources`` changes in place (torch's version counters)."""
        cache = self.__dict__.setdefault("_cache", {})
        version = tuple(t._version for t in sources)
        if key not in cache or cache[key][0] != version:
            cache[key] = (version, build())
        return cache[key][1]

    def groups(self, weights: torch.Tensor | None = None) -> list[tuple[int, torch.Tensor]]:
        """``[(latency + k, weights at delay k), ...]`` (float64, Lava layout), one per
        distinct delay ``k``; computed once for ``weights`` and ``weights_f`` (the tensors
        are shared: do not modify them)."""
        w = self.weights if weights is None else weights

        def build() -> list[tuple[int, torch.Tensor]]:
            wd = w.double()
            return [(self.latency + int(k), wd * (self.delays == k))
                    for k in torch.unique(self.delays).tolist()]
        if w is not self.weights and w is not self.weights_f:
            return build()
        return self._cached(("groups", w is self.weights), (w, self.delays), build)

    def current(self, s: torch.Tensor) -> torch.Tensor:
        """Integer current into ``post``, int64 ``[T, B, n_post]``, from ``s`` (bool
        spikes or real values ``[T, B, n_pre]``): :func:`~hardware._twin_current.
        integer_current` over :meth:`groups`, its float32 operands built once per device."""
        def prepared(device: torch.device) -> list[Float32Group]:
            return self._cached(("float32", str(device)), (self.weights, self.delays),
                                lambda: float32_groups(self.groups(), device))
        return integer_current(s, self.groups(), prepared, self.weight_exp)


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
    """Quantisation error of a region's threshold (relative), decays (per step) and
    initial values (``init_max_err``, V: ``|v0 / (2^6 sigma) - v0_f|``, the same for
    ``u0``)."""

    name: str
    threshold_rel_err: float
    decay_u_err: float
    decay_v_err: float
    init_max_err: float = 0.0


def _lif_from_start(a: torch.Tensor, r: TwinRegion) -> torch.Tensor:
    """Lava's LIF over int64 ``a [T, B, n]`` from ``r``'s initial state (spikes, bool)."""
    u, v = r.start(a.shape[1], a.device)
    regs = lif_registers(r.du, r.dv, r.vth)
    out = torch.empty_like(a, dtype=torch.bool)
    for t in range(a.shape[0]):
        out[t], u, v = lif_step(u, v, a[t], regs)
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
        """Spikes of every spiking region, from each region's initial state. A graph
        without cycles runs region by region over all steps (``backend`` of
        :func:`~hardware._loihi_fixed.lif_fixed`; torch for a region with initial
        values); one with cycles steps all regions together (torch)."""
        xs = self.check_inputs(inputs)
        spikes: dict[str, torch.Tensor] = dict(xs)
        order = _acyclic_order([*self.inputs, *self.regions], self.projections)
        if order is None:
            return self._run_steps(xs)
        for name in order:
            if name in self.regions:
                r, a = self.regions[name], self._input(name, spikes)
                spikes[name] = lif_fixed(a, r.du, r.dv, r.vth, backend) \
                    if r.u0 is None and r.v0 is None else _lif_from_start(a, r)
        return {n: spikes[n] for n in self.regions}

    def _input(self, name: str, spikes: Mapping[str, torch.Tensor]) -> torch.Tensor:
        like = next(iter(spikes.values()))
        a = torch.zeros(*like.shape[:2], self.regions[name].size, dtype=torch.long,
                        device=like.device)
        for p in self.projections:
            if p.post == name:
                a += p.current(spikes[p.pre])
        return a

    def _run_steps(self, xs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x0 = next(iter(xs.values()))
        steps, batch, dev = x0.shape[0], x0.shape[1], x0.device
        s = dict(xs)
        for n, r in self.regions.items():
            s[n] = torch.zeros(steps, batch, r.size, dtype=torch.float64, device=dev)
        state = {n: r.start(batch, dev) for n, r in self.regions.items()}
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
        """Per spiking region, twin against the float ``graph`` (torch backend, both from
        the graph's initial state; the graph's kept state is restored): spike
        ``mismatch`` fraction, both firing probabilities per step, and the input
        current's ``current_max_err``/``current_mean_err`` (V of drive: the twin's
        integer current over the scale against the float drive, both computed from the
        float run's spikes)."""
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


__all__ = ["GraphTwin", "ProjectionError", "RegionError", "TwinProjection", "TwinRegion"]
