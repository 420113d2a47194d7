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
((\vartheta - v_\text{leak})\sigma_r)`.

Initial values (a region's ``init``, drawn from its seed by
:meth:`~aura_snn.graph.SpikingRegion.initial_state`, so the float graph, the twin and
Lava start alike): the membrane :math:`v_0` gives Lava's :math:`v = \operatorname{round}
(2^6 \sigma_r (v_0 - v_\text{leak}))` and the current :math:`i_0` (receptor
coefficients :math:`(k, b, c)`, summed over receptors) :math:`u = \operatorname{round}
(2^6 \sigma_r k\, i_0 / c)`, so that Lava's first decay gives the drive :math:`k b\,
i_0` of the float step; both clipped to 24 bits. The error is at most
:math:`1/(2^7 \sigma_r)` V (``RegionError.init_max_err``).

Refused, naming the region or projection: Poisson, dense and module regions (the ANN
part stays in PyTorch), initial values of other state fields (refractory counters ...),
plasticity rules and synapse models, delays beyond 63 steps, multapses with different
delays, and what :func:`~hardware._loihi_fixed.neuron_map` refuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from aura_snn.errors import InputValueError, ParameterError
from aura_snn.functional.conventions import LOIHI_DECAY_SCALE
from aura_snn.graph import Graph, InputRegion, SpikingRegion

from ._graph_twin import (
    GraphTwin,
    ProjectionError,
    RegionError,
    TwinProjection,
    TwinRegion,
)
from ._loihi_fixed import (
    MAX_DELAY,
    SHIFT,
    UV_BITS,
    VTH_MAX,
    NeuronMap,
    auto_scale,
    fitting_exponent,
    neuron_map,
    quantize_weights,
)


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
    for name, p in graph.projections.items():
        if p.rules or p.synapse is not None:
            raise ParameterError(f"projection {name!r}: plasticity rules and synapse models "
                                 "have no fixed-weight Lava equivalent")
        if p.max_delay > MAX_DELAY:
            raise ParameterError(f"projection {name!r}: delay of {p.max_delay} steps, beyond "
                                 f"Loihi 2's {MAX_DELAY}")


def _initial(r: SpikingRegion, nm: NeuronMap, dt: float, scale: float, what: str
             ) -> tuple[dict[str, torch.Tensor], float]:
    """``{"v0", "v0_f", "u0", "u0_f"}`` of ``r``'s initial values (module docstring) and
    their largest quantisation error (V)."""
    st = r.initial_state(1, torch.device("cpu"), torch.float64)
    k, _, c = (float(x) for x in r.spec.compile(r.params(), dt).receptors[0])
    out: dict[str, torch.Tensor] = {}
    for name in r.init:
        role = r.spec.roles.get(name)
        x = getattr(st, name).double()
        if role == "v":
            key, xf = "v", x.reshape(-1) - nm.v_leak
        elif role == "i":
            i0 = (x.sum(0) if r.multi_receptor else x).reshape(-1)
            if c == 0.0 and bool((i0 != 0).any()):
                raise ParameterError(f"{what}: an initial current {name!r} with no current "
                                     "kept between steps (c = 0) has no Lava LIF state")
            key, xf = "u", k * i0 / (c or 1.0)
        else:
            raise ParameterError(f"{what}: initial values of {name!r} (role {role!r}); "
                                 "Lava's LIF starts from a membrane 'v' and a current 'i'")
        lim = (1 << (UV_BITS - 1)) - 1
        out[f"{key}0"] = torch.round(xf * 2.0 ** SHIFT * scale).clamp(-lim, lim).long()
        out[f"{key}0_f"] = xf
    err = max((float((out[f"{k}0"].double() / (2.0 ** SHIFT * scale) - out[f"{k}0_f"])
                     .abs().max()) for k in "uv" if f"{k}0" in out), default=0.0)
    return out, err


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
        init, init_err = _initial(r, nm, graph.dt, s, what)
        regions[name] = TwinRegion(name, r.size, du, dv, vth, s, 1.0 - nm.a_u, 1.0 - nm.a_v,
                                   nm.threshold, nm.v_leak, **init)
        errors.append(RegionError(
            name, abs(vth / s - nm.threshold) / nm.threshold,
            abs((LOIHI_DECAY_SCALE - du - 1) / LOIHI_DECAY_SCALE - nm.a_u),
            abs((LOIHI_DECAY_SCALE - dv) / LOIHI_DECAY_SCALE - nm.a_v), init_err))
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
