r"""An :class:`aura_snn.graph.Graph` as a NIR graph, region by region, projection by projection.

================================ ========================================================
graph                            NIR
================================ ========================================================
:class:`~aura_snn.graph.InputRegion` ``Input`` node named after the region (fed
                                 ``inputs[name]``)
:class:`~aura_snn.graph.SpikingRegion` its model's neuron node (:func:`.export.
                                 neuron_nodes`), named after the region
projection ``pre -> post``       ``Linear`` with the effective weights ``W.T``
                                 (``[n_post, n_pre]``, a sparse projection's zeros
                                 included), named after the projection
delayed projection, delay ``d``  then a ``Delay`` of ``(1 + d) dt`` s (``"<proj>_delay"``):
                                 the graph delivers ``y_pre[t]`` at step ``t + 1 + d``
same-step projection             the ``Linear`` feeds the region directly
per-synapse delays               one ``Linear`` (the synapses of that delay, zeros
                                 elsewhere) and ``Delay`` per distinct delay
                                 (``"<proj>_d<d>"``): exact, as inputs add
output regions                   ``Output`` node ``"<region>_output"``
================================ ========================================================

Refused with the region or projection named (unless approximated, :mod:`.export`):
Poisson regions (``"poisson"``: exported as an Input), refractory periods, ALIF,
non-zero resets, initial values (``"init"``: NIR nodes have no initial state; exported
starting at rest). Always refused: dense (ANN) and module regions, projections with a
synapse model (short-term plasticity), receptors with their own currents. Plastic
projections export their current effective weights.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np

from aura_snn._checks import check_choice
from aura_snn.errors import ParameterError
from aura_snn.graph.regions import InputRegion, PoissonRegion, SpikingRegion

from . import conventions as C
from ._compat import import_nir
from .export import allow, check_approximate, neuron_nodes


def graph_to_nir(graph: Any, *, dt: float | None, integration: str,
                 approximate: Collection[str], outputs: Collection[str] | None) -> Any:
    """NIR graph of ``graph`` (module docstring). ``outputs`` defaults to the spiking
    regions no projection leaves."""
    nir = import_nir()
    check_choice("integration", integration, C.INTEGRATIONS)
    allowed = check_approximate(approximate)
    if dt is not None and abs(float(dt) - graph.dt) > 1e-12 * graph.dt:
        raise ParameterError(f"dt={dt} s differs from the graph's dt={graph.dt} s")
    dt = graph.dt
    graph.validate()
    nodes: dict[str, Any] = {}
    entry: dict[str, str] = {}  # region -> node its projections feed
    for name, region in graph.regions.items():
        what = f"region {name!r} ({region.kind})"
        if isinstance(region, PoissonRegion):
            allow("poisson", what, "a Poisson source", allowed)
            region = InputRegion(name, region.size)
        if isinstance(region, InputRegion):
            nodes[name] = nir.Input(input_type=np.array([region.size]),
                                    metadata={"aura_snn_region": region.kind})
            continue
        if not isinstance(region, SpikingRegion):
            raise ParameterError(f"{what}: only spiking and input regions export to NIR "
                                 f"(the ANN part of a hybrid graph stays in PyTorch)")
        if len(region.receptors) != 1:
            raise ParameterError(f"{what}: {len(region.receptors)} receptors "
                                 f"{list(region.receptors)} with their own currents (NIR "
                                 f"neuron nodes take one input)")
        if region.init:
            allow("init", what, f"initial values of {sorted(region.init)}", allowed)
        node, delay = neuron_nodes(what, region.spec, region.params(), dt, (region.size,),
                                   integration, allowed)
        nodes[name] = node
        entry[name] = name
        if delay is not None:
            nodes[f"{name}_late"] = delay
            entry[name] = f"{name}_late"
    edges: list[tuple[str, str]] = [(f"{n}_late", n) for n in entry if entry[n] != n]
    for pname, p in graph.projections.items():
        what = f"projection {pname!r}"
        if p.synapse is not None:
            raise ParameterError(f"{what}: a synapse model ({type(p.synapse).__name__}) "
                                 f"has no NIR equivalent")
        if p.post not in entry:
            raise ParameterError(f"{what}: targets region {p.post!r}, which takes no input")
        w = p.dense_weight().detach().cpu().double().numpy()          # [n_pre, n_post]
        if p.same_step:
            groups = [(None, w)]
        elif p.uniform_delay:
            groups = [(int(p.delay), w)]
        else:  # one weight matrix per distinct delay; multapses add up within a delay
            pre, post, vals, dl = p.to_coo()
            groups = []
            for v in np.unique(dl):
                wd = np.zeros(w.shape)
                sel = dl == v
                np.add.at(wd, (pre[sel], post[sel]), vals[sel].astype(np.float64))
                groups.append((int(v), wd))
        for d, wd in groups:
            key = pname if len(groups) == 1 else f"{pname}_d{d}"
            nodes[key] = nir.Linear(weight=np.ascontiguousarray(wd.T))
            edges.append((p.pre, key))
            if d is None:
                edges.append((key, entry[p.post]))
                continue
            nodes[f"{key}_delay"] = nir.Delay(delay=np.full(p.n_post, (1 + d) * dt))
            edges += [(key, f"{key}_delay"), (f"{key}_delay", entry[p.post])]
    if outputs is None:
        sources = {p.pre for p in graph.projections.values()}
        outputs = [n for n in entry if n not in sources] or list(entry)
    for name in outputs:
        if name not in nodes or name not in entry:
            raise ParameterError(f"outputs: {name!r} is not a spiking region of the graph "
                                 f"(spiking regions: {list(entry)})")
        nodes[f"{name}_output"] = nir.Output(output_type=np.array([graph.region(name).size]))
        edges.append((name, f"{name}_output"))
    meta = {"dt": float(dt), "integration": integration, "source": "aura-snn graph"}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=False)


__all__ = ["graph_to_nir"]
