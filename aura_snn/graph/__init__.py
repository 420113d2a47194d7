"""The hybrid graph: regions (nodes, spiking or dense) and projections (edges, dense or
sparse, delayed or same-step), its state, a stepper with two backends (torch autograd,
compiled engine) sharing one observer hook, and connectivity builders. The
``aura-snn simulate`` command is :mod:`aura_snn.cli.simulate`.

Names are imported lazily (PEP 562) so that the numpy-only helpers (``connectivity``,
``recorder``, ``observer``) load without torch.

======================== ===================================================
:class:`Graph`           regions + projections, ``run``, observers (``graph.py``)
:class:`SpikingRegion`, :class:`DenseRegion`, :class:`PoissonRegion`,
:class:`InputRegion`, :class:`ModuleRegion`   the nodes (``regions.py``)
:class:`Projection`      an edge: weights (learned + plastic), delays, sign,
                         receptor, same-step flag, synapse model, rewiring
:mod:`.plasticity`       the rule socket: :class:`PlasticityRule`,
                         :class:`SynapseModel`, :class:`Traces`
:mod:`.state`            :class:`GraphState` and its flat tensor form;
                         :mod:`.state_file` its safetensors file
:mod:`.stepper`          the torch stepper
:mod:`.observer`         :class:`Observer`, :class:`Probe`, :class:`Chunk`
:class:`Recorder`        an observer recording to memory, NPZ or HDF5
:mod:`.connectivity`     fixed probability / in-degree / out-degree, one-to-one,
                         all-to-all, distance on a 2-D sheet
:mod:`.engine`           compiled event-driven simulator (numba)
:mod:`.config`           network files (TOML/YAML) -> graph
======================== ===================================================
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "Graph": "graph", "GraphState": "state", "RunResult": "graph",
    "Observer": "observer", "Probe": "observer", "Chunk": "observer",
    "PlasticityRule": "plasticity", "Traces": "plasticity", "SynapseModel": "plasticity",
    "SynapseActivity": "plasticity", "CallableRule": "plasticity",
    "Region": "regions", "SpikingRegion": "regions", "DenseRegion": "regions",
    "PoissonRegion": "regions", "InputRegion": "regions", "ModuleRegion": "regions",
    "Projection": "projection",
    "Recorder": "recorder", "Recording": "recorder", "load_recording": "recorder",
    "Connectivity": "connectivity", "fixed_probability": "connectivity",
    "fixed_indegree": "connectivity", "fixed_outdegree": "connectivity",
    "one_to_one": "connectivity", "all_to_all": "connectivity", "distance": "connectivity",
    "sheet_positions": "connectivity", "from_indices": "connectivity",
    "load_config": "config", "build_graph": "config",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
