r"""The hybrid graph: regions (nodes) joined by projections (edges), run step by step.

One step :math:`t` of :meth:`Graph.run`:

1. every region reads its input :math:`x[t]` — the sum of what the projections
   delivered for this step (per receptor), plus a fed tensor for fed regions — and
   produces its output :math:`y[t]` (spikes, rates or activations) and new state;
2. every projection takes :math:`y_\text{pre}[t]` and adds
   :math:`y_\text{pre}[t] W` into its post region's input of step :math:`t + 1 + d`
   (ring of pending inputs, :mod:`aura_snn.graph.projection`);
3. traces and plasticity rules run (no grad), monitors record.

Because every edge is at least one step long, the order in which regions update
within a step does not change any result, and cycles are allowed.
:meth:`Graph.topological_order` still gives a feed-forward order (for exporters and
readable plots).

Two backends run the same semantics:

* ``"torch"`` — the Python step loop above, on any device and dtype, with autograd:
  surrogate gradients through spiking regions, ordinary gradients through dense ones.
* ``"engine"`` — the compiled event-driven simulator of :mod:`aura_snn.graph.engine`
  (numba, CPU, no gradients) for graphs of spiking/Poisson/input regions whose models
  it supports. ``tests/graph/test_engine.py`` checks it gives identical spikes.

``"auto"`` (default) takes the engine when it supports the graph, the state lives on
the CPU and no gradient is needed, else torch.

State (:class:`GraphState`) is kept by the graph between runs (a second ``run``
continues the first) and can be reset, detached, saved and loaded
(:meth:`Graph.save_state`: safetensors, written atomically).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import nn

from .._checks import check_int, check_positive
from .._io import atomic_path
from ..errors import CorruptFileError, ParameterError, ParameterTypeError, ShapeError
from .projection import Projection, Traces
from .recorder import PROJECTION_VARIABLES, Recorder
from .regions import (
    DenseRegion,
    ModuleRegion,
    Region,
    SpikingRegion,
    default_seed,
)

BACKENDS = ("auto", "torch", "engine")
STATE_FORMAT = "aura-snn.graph-state"
STATE_VERSION = "1"

Slot = list  # one pending step: a list (per receptor) of tensors or None


@dataclass
class GraphState:
    """Everything that evolves during a run.

    Attributes:
        t: steps run since the state was created.
        batch: batch size ``B``.
        regions: per region, its model state (a ``NamedTuple`` of tensors) or ``None``.
        pending: per receiving region, the inputs already on their way: ``pending[r][k]``
            is a list (one entry per receptor) of ``[B, input_size]`` tensors or ``None``
            (zero) arriving ``k`` steps after the last step run.
        traces: per projection with traces, its :class:`~aura_snn.graph.projection.Traces`.
    """

    t: int
    batch: int
    regions: dict[str, Any] = field(default_factory=dict)
    pending: dict[str, list[Slot]] = field(default_factory=dict)
    traces: dict[str, Traces] = field(default_factory=dict)

    def detach(self) -> GraphState:
        """A copy cut from the autograd graph (truncated BPTT between runs)."""
        def d(x: Any) -> Any:
            if x is None:
                return None
            if isinstance(x, torch.Tensor):
                return x.detach()
            if isinstance(x, tuple) and hasattr(x, "_fields"):
                return type(x)(*(d(v) for v in x))
            if isinstance(x, list):
                return [d(v) for v in x]
            return x
        return GraphState(self.t, self.batch, {k: d(v) for k, v in self.regions.items()},
                          {k: d(v) for k, v in self.pending.items()},
                          {k: d(v) for k, v in self.traces.items()})

    @property
    def device(self) -> torch.device | None:
        for st in self.regions.values():
            if st is not None:
                return st[0].device
        return None


class RunResult(NamedTuple):
    """What :meth:`Graph.run` returns.

    Attributes:
        outputs: ``{region: [T, B, size]}`` for the regions named in ``record``.
        state: the state after the last step (also kept by the graph).
        backend: ``"torch"`` or ``"engine"``.
        wall_time: seconds spent in the run.
        profile: where the time went (engine: ``layout`` to flatten the graph, ``steps``
            in the compiled time loop, ``monitors`` feeding monitors, ``state`` loading
            and storing the state), or ``None``.
    """

    outputs: dict[str, torch.Tensor]
    state: GraphState
    backend: str
    wall_time: float
    profile: dict[str, float] | None = None


class Graph(nn.Module):
    """A graph of regions and projections stepped with a fixed ``dt``.

    The graph's device and dtype (``graph.to(...)``, ``graph.double()``) win: regions and
    projections are moved to them when added (create the graph in float64 *before*
    adding float64 weights you want kept exactly).

    Args:
        dt: integration step (s), shared by every region.
        seed: default seed of regions that were given none (Poisson streams, random
            initial values); each region's seed is mixed from it and the region name.

    Example::

        g = Graph(dt=1e-4)
        g.add(PoissonRegion("in", 100, rate=20.0))
        g.add(SpikingRegion("E", 50, "cuba_refractory"))
        g.connect("in", "E", connectivity=fixed_probability(100, 50, 0.1, seed=1),
                  weight=2e-3, receptor="exc")
        g.monitor("E", "spikes")
        result = g.run(10_000)              # 1 s of biological time
    """

    def __init__(self, dt: float, *, seed: int = 0) -> None:
        super().__init__()
        check_positive("dt", dt, "s")
        self.dt = float(dt)
        self.seed = check_int("seed", seed, minimum=0)
        self.regions = nn.ModuleDict()
        self.projections = nn.ModuleDict()
        self.monitors: list[Recorder] = []
        self._state: GraphState | None = None
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    # -- building -----------------------------------------------------------------
    def _check_new_name(self, name: str) -> None:
        if name in self.regions or name in self.projections:
            raise ParameterError(f"name {name!r} is already used by a "
                                 f"{'region' if name in self.regions else 'projection'}")

    def add(self, item: Region | Projection) -> Region | Projection:
        """Add a region or a projection; returns it."""
        if isinstance(item, Region):
            return self.add_region(item)
        if isinstance(item, Projection):
            return self.add_projection(item)
        raise ParameterTypeError(f"can only add a Region or a Projection, got "
                                 f"{type(item).__name__}")

    def add_region(self, region: Region) -> Region:
        """Add a region (its name must be new)."""
        if not isinstance(region, Region):
            raise ParameterTypeError(f"region must be a Region, got {type(region).__name__}")
        self._check_new_name(region.name)
        if region.seed is None:
            region.seed = default_seed(self.seed, region.name)
        region.validate(self.dt)
        region.to(device=self.device, dtype=self.dtype)
        self.regions[region.name] = region
        self._state = None
        return region

    def region(self, name: str) -> Region:
        """The region called ``name`` (error lists the known names)."""
        if name not in self.regions:
            raise ParameterError(f"unknown region {name!r}; the graph has regions "
                                 f"{list(self.regions)}")
        return self.regions[name]

    def projection(self, name: str) -> Projection:
        """The projection called ``name`` (error lists the known names)."""
        if name not in self.projections:
            raise ParameterError(f"unknown projection {name!r}; the graph has projections "
                                 f"{list(self.projections)}")
        return self.projections[name]

    def add_projection(self, proj: Projection) -> Projection:
        """Add a projection between existing regions; checks sizes and receptor."""
        if not isinstance(proj, Projection):
            raise ParameterTypeError(f"projection must be a Projection, got "
                                     f"{type(proj).__name__}")
        self._check_new_name(proj.name)
        pre, post = self.region(proj.pre), self.region(proj.post)
        if proj.n_pre != pre.size:
            raise ShapeError(f"projection {proj.name!r}: weight has {proj.n_pre} rows but "
                             f"region {pre.name!r} has {pre.size} outputs")
        if not post.receptors:
            raise ParameterError(f"projection {proj.name!r}: region {post.name!r} "
                                 f"({post.kind}) takes no input from projections")
        if proj.n_post != post.input_size:
            raise ShapeError(f"projection {proj.name!r}: weight has {proj.n_post} columns but "
                             f"region {post.name!r} takes {post.input_size} inputs")
        if proj.receptor is None:
            proj.receptor = post.receptors[0]
        elif proj.receptor not in post.receptors:
            raise ParameterError(f"projection {proj.name!r}: receptor {proj.receptor!r} is not "
                                 f"one of region {post.name!r}'s receptors {post.receptors}")
        proj.to(device=self.device, dtype=self.dtype)
        self.projections[proj.name] = proj
        self._state = None
        return proj

    def connect(self, pre: str, post: str, weight: Any = None, *, name: str | None = None,
                **kwargs: Any) -> Projection:
        """Create and add ``Projection(name, pre, post, weight, **kwargs)``; the default
        name is ``"pre-post"`` (numbered if taken)."""
        if name is None:
            name, k = f"{pre}-{post}", 1
            while name in self.projections or name in self.regions:
                k += 1
                name = f"{pre}-{post}-{k}"
        return self.add_projection(Projection(name, pre, post, weight, **kwargs))

    def validate(self) -> Graph:
        """Re-check every region and projection (names, sizes, receptors, dt)."""
        for r in self.regions.values():
            r.validate(self.dt)
        for p in self.projections.values():
            pre, post = self.region(p.pre), self.region(p.post)
            if p.n_pre != pre.size or p.n_post != post.input_size:
                raise ShapeError(f"projection {p.name!r} is {p.n_pre}x{p.n_post} but connects "
                                 f"{pre.name!r} ({pre.size}) to {post.name!r} "
                                 f"({post.input_size})")
            if p.receptor not in post.receptors:
                raise ParameterError(f"projection {p.name!r}: receptor {p.receptor!r} is not "
                                     f"one of {post.receptors}")
        return self

    def incoming(self, region: str) -> list[Projection]:
        return [p for p in self.projections.values() if p.post == region]

    def topological_order(self) -> list[str]:
        """Region names in feed-forward order (Kahn); a cycle is entered at the region fed
        earliest by regions already placed. Results do not depend on it (every edge is at
        least one step long); exporters and plots use it."""
        names = list(self.regions)
        indeg = {n: 0 for n in names}
        for p in self.projections.values():
            if p.pre != p.post:
                indeg[p.post] += 1
        order: list[str] = []
        left = list(names)
        while left:
            ready = [n for n in left if indeg[n] == 0]
            if not ready:  # on a cycle: enter it where it is fed by what is already placed
                fed = [(min(order.index(p.pre) for p in self.incoming(m) if p.pre in order), k)
                       for k, m in enumerate(left)
                       if any(p.pre in order for p in self.incoming(m))]
                ready = [left[min(fed)[1]]] if fed else [left[0]]
            n = ready[0]
            order.append(n)
            left.remove(n)
            for p in self.projections.values():
                if p.pre == n and p.post != n and p.post in left:
                    indeg[p.post] -= 1
        return order

    def describe(self) -> dict[str, Any]:
        """Plain description: dt, regions, projections, topological order."""
        return {"dt": self.dt, "seed": self.seed,
                "regions": [r.describe() for r in self.regions.values()],
                "projections": [p.describe() for p in self.projections.values()],
                "order": self.topological_order()}

    # -- monitors -----------------------------------------------------------------
    def monitor(self, target: str, variable: str = "spikes", **kwargs: Any) -> Recorder:
        """Attach a :class:`~aura_snn.graph.recorder.Recorder` to a region or projection."""
        mon = Recorder(target, variable, **kwargs)
        self._check_monitor(mon)
        mon.dt = self.dt
        self.monitors.append(mon)
        return mon

    def _check_monitor(self, mon: Recorder) -> None:
        if mon.target in self.projections:
            if mon.variable not in PROJECTION_VARIABLES:
                raise ParameterError(f"a projection monitor records one of "
                                     f"{PROJECTION_VARIABLES}; got {mon.variable!r}")
            p = self.projections[mon.target]
            if mon.variable != "weights" and p.trace_taus is None:
                raise ParameterError(f"projection {p.name!r} keeps no traces; call "
                                     f"enable_traces first")
            return
        region = self.region(mon.target) if mon.target in self.regions else None
        if region is None:
            raise ParameterError(f"unknown monitor target {mon.target!r}; regions are "
                                 f"{list(self.regions)}, projections {list(self.projections)}")
        if mon.variable == "spikes" and not region.spiking:
            raise ParameterError(f"region {region.name!r} does not spike; monitor 'output'")
        if mon.variable in ("spikes", "output"):
            return
        fields = getattr(region, "state_fields", ())
        base, _, rec = mon.variable.partition(":")
        if base not in fields:
            raise ParameterError(f"region {region.name!r} has no variable {mon.variable!r}; "
                                 f"choose 'spikes', 'output' or a state field {list(fields)}")
        if rec and rec not in region.receptors:
            raise ParameterError(f"region {region.name!r} has no receptor {rec!r}; receptors "
                                 f"are {region.receptors}")

    def close_monitors(self) -> None:
        """Flush and finalise every monitor (disk monitors are renamed into place)."""
        for m in self.monitors:
            m.close()

    # -- state --------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self._anchor.device

    @property
    def dtype(self) -> torch.dtype:
        return self._anchor.dtype

    @property
    def state(self) -> GraphState | None:
        """The state after the last run (``None`` before the first run or after reset)."""
        return self._state

    @state.setter
    def state(self, value: GraphState | None) -> None:
        if value is not None and not isinstance(value, GraphState):
            raise ParameterTypeError(f"state must be a GraphState or None, got "
                                     f"{type(value).__name__}")
        self._state = value

    def reset_state(self) -> None:
        """Forget the state: the next run starts from the initial state."""
        self._state = None

    def detach_state(self) -> None:
        """Cut the kept state from the autograd graph (between chunks of a long run)."""
        if self._state is not None:
            self._state = self._state.detach()

    def _ring_length(self, region: str) -> int:
        return 1 + max((p.max_delay for p in self.incoming(region)), default=0)

    def initial_state(self, batch: int = 1) -> GraphState:
        """The state before any step: each region's initial state, nothing pending."""
        batch = check_int("batch", batch, minimum=1)
        dev, dt_ = self.device, self.dtype
        st = GraphState(0, batch)
        for name, r in self.regions.items():
            st.regions[name] = r.initial_state(batch, dev, dt_)
            if r.receptors:
                st.pending[name] = [[None] * len(r.receptors)
                                    for _ in range(self._ring_length(name))]
        for name, p in self.projections.items():
            if p.trace_taus is not None:
                st.traces[name] = Traces(
                    torch.zeros(batch, p.n_pre, device=dev, dtype=dt_),
                    torch.zeros(batch, p.n_post, device=dev, dtype=dt_))
        return st

    def _conform(self, st: GraphState) -> GraphState:
        """Fit a state to the current graph: ring lengths, traces enabled since."""
        for name, r in self.regions.items():
            if not r.receptors:
                continue
            ring = st.pending.setdefault(name, [])
            need = self._ring_length(name)
            while len(ring) < need:
                ring.append([None] * len(r.receptors))
        for name, p in self.projections.items():
            if p.trace_taus is not None and name not in st.traces:
                st.traces[name] = Traces(
                    torch.zeros(st.batch, p.n_pre, device=self.device, dtype=self.dtype),
                    torch.zeros(st.batch, p.n_post, device=self.device, dtype=self.dtype))
        return st

    def state_tensors(self, state: GraphState | None = None) -> dict[str, torch.Tensor]:
        """The state as a flat ``{key: tensor}`` dict (what :meth:`save_state` writes):
        ``t``, ``batch``, ``region.<name>.<field>``, ``pending.<name>``
        (``[L, R, B, n]``), ``trace.<projection>.pre|post``."""
        st = state if state is not None else self._state
        if st is None:
            raise ParameterError("the graph has no state yet: run it or set graph.state")
        out = {"t": torch.tensor(st.t, dtype=torch.int64),
               "batch": torch.tensor(st.batch, dtype=torch.int64)}
        for name, s in st.regions.items():
            if s is None:
                continue
            for f, v in zip(s._fields, s, strict=True):
                out[f"region.{name}.{f}"] = v.detach()
        for name, ring in st.pending.items():
            r = self.region(name)
            like = torch.zeros(st.batch, r.input_size, device=self.device, dtype=self.dtype)
            out[f"pending.{name}"] = torch.stack([
                torch.stack([like if x is None else x.detach() for x in slot]) for slot in ring])
        for name, tr in st.traces.items():
            out[f"trace.{name}.pre"] = tr.pre.detach()
            out[f"trace.{name}.post"] = tr.post.detach()
        return out

    def state_from_tensors(self, tensors: Mapping[str, torch.Tensor]) -> GraphState:
        """Inverse of :meth:`state_tensors`; checks every key and shape against the graph."""
        try:
            t, batch = int(tensors["t"]), int(tensors["batch"])
        except KeyError as exc:
            raise ParameterError(f"state has no {exc} entry") from None
        dev, dt_ = self.device, self.dtype
        st = GraphState(t, batch)
        for name, r in self.regions.items():
            proto = r.initial_state(batch, dev, dt_)
            if proto is None:
                st.regions[name] = None
                continue
            vals = []
            for f, v in zip(proto._fields, proto, strict=True):
                key = f"region.{name}.{f}"
                if key not in tensors:
                    raise ParameterError(f"state does not match the graph: no {key!r}")
                x = tensors[key]
                if tuple(x.shape) != tuple(v.shape):
                    raise ShapeError(f"state {key!r} has shape {tuple(x.shape)}, the graph "
                                     f"needs {tuple(v.shape)}")
                vals.append(x.to(device=dev, dtype=v.dtype))
            st.regions[name] = type(proto)(*vals)
            if r.receptors:
                key = f"pending.{name}"
                ring_t = tensors.get(key)
                shape_tail = (len(r.receptors), batch, r.input_size)
                if ring_t is None or tuple(ring_t.shape[1:]) != shape_tail:
                    raise ShapeError(f"state {key!r} must have shape [L, {shape_tail[0]}, "
                                     f"{batch}, {r.input_size}], got "
                                     f"{None if ring_t is None else tuple(ring_t.shape)}")
                st.pending[name] = [[x.to(device=dev, dtype=dt_) for x in slot]
                                    for slot in ring_t]
        for name in list(self.regions):
            r = self.region(name)
            if r.receptors and name not in st.pending:
                st.pending[name] = [[None] * len(r.receptors)]
        for name, p in self.projections.items():
            if p.trace_taus is None:
                continue
            pre, post = tensors.get(f"trace.{name}.pre"), tensors.get(f"trace.{name}.post")
            if pre is None or post is None:
                raise ParameterError(f"state does not match the graph: no traces of "
                                     f"projection {name!r}")
            st.traces[name] = Traces(pre.to(device=dev, dtype=dt_), post.to(device=dev,
                                                                             dtype=dt_))
        return self._conform(st)

    def save_state(self, path: str | os.PathLike[str], *, weights: bool = True) -> None:
        """Write the state (and, with ``weights``, every parameter and buffer of the
        graph) to a safetensors file, atomically."""
        from safetensors.torch import save_file

        tensors = {k: v.cpu().contiguous() for k, v in self.state_tensors().items()}
        if weights:
            for k, v in self.state_dict().items():
                tensors[f"param.{k}"] = v.detach().cpu().contiguous().clone()
        meta = {"format": STATE_FORMAT, "version": STATE_VERSION, "dt": repr(self.dt),
                "regions": json.dumps(list(self.regions)),
                "projections": json.dumps(list(self.projections))}
        with atomic_path(path, suffix=".safetensors") as tmp:
            save_file(tensors, str(tmp), metadata=meta)

    def load_state(self, path: str | os.PathLike[str], *, weights: bool = True) -> GraphState:
        """Read a file of :meth:`save_state` into the graph (state, and weights if stored
        and ``weights``); a damaged or foreign file raises
        :class:`~aura_snn.errors.CorruptFileError`. Returns the state."""
        from safetensors import safe_open

        if not os.path.exists(path):
            raise FileNotFoundError(f"no state file at {os.fspath(path)!r}")
        try:
            with safe_open(os.fspath(path), framework="pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as exc:  # noqa: BLE001 - safetensors raises several types
            raise CorruptFileError(f"{os.fspath(path)}: not a readable safetensors file "
                                   f"({exc})") from None
        if meta.get("format") != STATE_FORMAT:
            raise CorruptFileError(f"{os.fspath(path)}: not an aura-snn graph state (format "
                                   f"{meta.get('format')!r})")
        if not math.isclose(float(meta.get("dt", "nan")), self.dt, rel_tol=1e-12):
            raise ParameterError(f"state was saved with dt={meta.get('dt')} s, the graph has "
                                 f"dt={self.dt} s")
        params = {k[len("param."):]: v for k, v in tensors.items() if k.startswith("param.")}
        if weights and params:
            self.load_state_dict(params, strict=True)
        self._state = self.state_from_tensors(tensors)
        return self._state

    # -- running ------------------------------------------------------------------
    def _batch_from_inputs(self, inputs: Mapping[str, torch.Tensor]) -> int | None:
        found: dict[str, int] = {}
        for name, x in inputs.items():
            r = self.regions[name]
            if isinstance(r, ModuleRegion) and x.dim() == 2:
                found[name] = int(x.shape[0])
            elif x.dim() >= 2:
                found[name] = int(x.shape[1])
        if len(set(found.values())) > 1:
            raise ShapeError(f"inputs disagree on the batch size: {found}")
        return next(iter(found.values()), None)

    def _needs_grad(self) -> bool:
        return torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters())

    def run(self, steps: int, inputs: Mapping[str, torch.Tensor] | None = None, *,
            batch_size: int | None = None, record: Iterable[str] = (),
            backend: str = "auto", state: GraphState | None = None, reset: bool = False,
            progress: bool = False) -> RunResult:
        """Run ``steps`` steps of ``dt`` seconds.

        Args:
            steps: number of steps ``T``.
            inputs: fed tensors: ``[T, B, size]`` for input regions, ``[B, d]`` or
                ``[T, B, d]`` for module regions, ``[T, B, in_size]`` for dense regions.
            batch_size: ``B`` when no input says it (default: the state's, else 1).
            record: region names whose outputs to return stacked, ``[T, B, size]``.
            backend: ``"auto"``, ``"torch"`` or ``"engine"`` (module docstring).
            state: start from this state instead of the kept one.
            reset: start from the initial state.
            progress: show a tqdm bar of simulated time.

        Returns:
            :class:`RunResult`; the final state is also kept in :attr:`state`.
        """
        steps = check_int("steps", steps, minimum=1)
        if backend not in BACKENDS:
            raise ParameterError(f"backend must be one of {', '.join(map(repr, BACKENDS))}; "
                                 f"got {backend!r}")
        if not self.regions:
            raise ParameterError("the graph has no regions")
        self.validate()
        inputs = dict(inputs or {})
        for name, x in inputs.items():
            if name not in self.regions:
                raise ParameterError(f"inputs names unknown region {name!r}; regions are "
                                     f"{list(self.regions)}")
            if not self.regions[name].fed and not isinstance(self.regions[name], DenseRegion):
                raise ParameterError(f"region {name!r} ({self.regions[name].kind}) takes no "
                                     f"fed input")
            if not isinstance(x, torch.Tensor):
                raise ParameterTypeError(f"inputs[{name!r}] must be a tensor, got "
                                         f"{type(x).__name__}")
        for name, r in self.regions.items():
            if r.fed and name not in inputs:
                raise ParameterError(f"region {name!r} ({r.kind}) needs inputs[{name!r}]")
        record = list(record)
        for name in record:
            self.region(name)

        start = state if state is not None else (None if reset else self._state)
        b_in = self._batch_from_inputs(inputs)
        batch = b_in or batch_size or (start.batch if start is not None else 1)
        batch = check_int("batch_size", batch, minimum=1)
        if start is not None and start.batch != batch:
            if state is not None:
                raise ShapeError(f"state has batch {start.batch}, the inputs have {batch}")
            start = None
        if start is not None and start.device not in (None, self.device):
            raise ParameterError(f"state lives on {start.device}, the graph on {self.device}")
        st = self._conform(start if start is not None else self.initial_state(batch))

        from . import engine as _engine

        reason = _engine.unsupported_reason(self)
        if backend == "auto":
            use_engine = reason is None and self.device.type == "cpu" and not self._needs_grad()
        elif backend == "engine":
            if reason is not None:
                raise ParameterError(f"backend='engine' cannot run this graph: {reason}")
            if self.device.type != "cpu":
                raise ParameterError(f"backend='engine' runs on the CPU; the graph is on "
                                     f"{self.device}")
            use_engine = True
        else:
            use_engine = False
        t0 = time.perf_counter()
        profile = None
        if use_engine:
            outputs, st, profile = _engine.run_graph(self, st, steps, inputs, record,
                                                     progress)
        else:
            outputs, st = self._run_torch(st, steps, inputs, record, progress)
        self._state = st
        return RunResult(outputs, st, "engine" if use_engine else "torch",
                         time.perf_counter() - t0, profile)

    def _run_torch(self, st: GraphState, steps: int, inputs: Mapping[str, torch.Tensor],
                   record: list[str], progress: bool) -> tuple[dict[str, torch.Tensor],
                                                              GraphState]:
        dev, dt_ = self.device, self.dtype
        batch, t_start = st.batch, st.t
        fns = {name: r.prepare(self.dt, batch, steps, inputs.get(name), dev, dt_, t_start)
               for name, r in self.regions.items()}
        projs = list(self.projections.values())
        receptor_of = {p.name: self.region(p.post).receptors.index(p.receptor) for p in projs}
        trace_decay = {p.name: p.trace_decays(self.dt) for p in projs if p.trace_taus}
        multi = {name: isinstance(r, SpikingRegion) and r.multi_receptor
                 for name, r in self.regions.items()}
        regions = dict(st.regions)
        pending = {k: [list(slot) for slot in v] for k, v in st.pending.items()}
        traces = dict(st.traces)
        recorded: dict[str, list[torch.Tensor]] = {n: [] for n in record}
        bar = _progress(progress, steps, self.dt)
        for k in range(steps):
            t = t_start + k
            outs: dict[str, torch.Tensor] = {}
            for name, fn in fns.items():
                x = None
                if name in pending:
                    ring = pending[name]
                    slot = ring.pop(0)
                    ring.append([None] * len(slot))
                    if any(v is not None for v in slot):
                        like = next(v for v in slot if v is not None)
                        rows = [torch.zeros_like(like) if v is None else v for v in slot]
                        x = torch.stack(rows) if multi[name] else rows[0]
                outs[name], regions[name] = fn(x, regions[name], k)
            for p in projs:
                ring, r = pending[p.post], receptor_of[p.name]
                for d, contrib in p.propagate(outs[p.pre]):
                    cur = ring[d][r]
                    ring[d][r] = contrib if cur is None else cur + contrib
            if traces:
                with torch.no_grad():
                    for p in projs:
                        if p.name in traces:
                            a_pre, a_post = trace_decay[p.name]
                            tr = traces[p.name]
                            traces[p.name] = Traces(a_pre * tr.pre + outs[p.pre].detach(),
                                                    a_post * tr.post + outs[p.post].detach())
                            p._last_traces = traces[p.name]
            for p in projs:
                if p.rules:
                    with torch.no_grad():
                        for rule in list(p.rules):
                            dw = rule(p, outs[p.pre].detach(), outs[p.post].detach(),
                                      traces.get(p.name))
                            if dw is not None:
                                p.apply_update(dw)
            for m in self.monitors:
                self._feed_monitor(m, t, outs, regions, traces)
            for n in record:
                recorded[n].append(outs[n])
            if bar is not None and ((k + 1) % 200 == 0 or k + 1 == steps):
                bar.advance((k + 1) - bar.done)
        if bar is not None:
            bar.close()
        for m in self.monitors:
            m.flush()
        st = GraphState(t_start + steps, batch, regions, pending, traces)
        return {n: torch.stack(v) for n, v in recorded.items()}, st

    def _feed_monitor(self, m: Recorder, t: int, outs: Mapping[str, torch.Tensor],
                      regions: Mapping[str, Any], traces: Mapping[str, Traces]) -> None:
        import numpy as np

        if m.is_spikes:
            b, i = outs[m.target].detach().nonzero(as_tuple=True)
            m.add_events(np.full(b.numel(), t, dtype=np.int64), b.cpu().numpy(),
                         i.cpu().numpy(), 1)
            return
        if t % m.every:
            m._push({}, 1)
            return
        v = self.monitor_value(m, outs, regions, traces)
        m.add_rows(np.array([t], dtype=np.int64), m.select(v.detach().cpu().numpy())[None], 1)

    def monitor_value(self, m: Recorder, outs: Mapping[str, torch.Tensor],
                      regions: Mapping[str, Any], traces: Mapping[str, Traces]
                      ) -> torch.Tensor:
        """The current value a (non-spike) monitor records."""
        if m.target in self.projections:
            if m.variable == "weights":
                return self.projections[m.target].effective_weight()
            tr = traces[m.target]
            return tr.pre if m.variable == "pre_trace" else tr.post
        if m.variable == "output":
            return outs[m.target]
        base, _, rec = m.variable.partition(":")
        v = getattr(regions[m.target], base)
        if rec:
            v = v[self.regions[m.target].receptors.index(rec)]
        return v


def _progress(enabled: bool, steps: int, dt: float) -> Any:
    if not enabled:
        return None
    from .progress import SimProgress

    return SimProgress(steps, dt)


__all__ = ["BACKENDS", "Graph", "GraphState", "RunResult"]
