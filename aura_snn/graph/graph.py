r"""The hybrid graph: regions (nodes) joined by projections (edges), run step by step.

One step :math:`t` of :meth:`Graph.run`:

1. every region reads its input :math:`x[t]` — the sum of what the projections
   delivered for this step (per receptor), plus a fed tensor for fed regions — and
   produces its output :math:`y[t]` (spikes, rates or activations) and new state.
   Regions joined by same-step edges update in topological order
   (:meth:`Graph.step_order`), so the post region sees :math:`y_\text{pre}[t]` in
   the same step; a cycle must contain a delayed edge;
2. every delayed projection takes :math:`y_\text{pre}[t]` and adds
   :math:`y_\text{pre}[t] W` into its post region's input of step :math:`t + 1 + d`
   (ring of pending inputs, :mod:`aura_snn.graph.projection`);
3. traces and plasticity rules run (no grad; :mod:`aura_snn.graph.plasticity`), and
   observers (recorders, counters; :mod:`aura_snn.graph.observer`) see the step.

Two backends run the same semantics:

* ``"torch"`` — the Python step loop of :mod:`aura_snn.graph.stepper`, on any device
  and dtype, with autograd: surrogate gradients through spiking regions, ordinary
  gradients through dense ones.
* ``"engine"`` — the compiled event-driven simulator of :mod:`aura_snn.graph.engine`
  (numba, CPU, no gradients) for graphs it supports (:meth:`Graph.engine_reason`
  says why not). ``tests/graph/test_engine.py`` checks it gives identical spikes.
* ``"ray"`` — the regions partitioned over Ray workers, each running its part with
  the engine or torch, exchanging spikes every :math:`D` steps
  (:mod:`aura_snn.graph.distributed`; CPU, no gradients, needs the ``distributed``
  extra). ``tests/graph/test_distributed.py`` checks it gives identical spikes.

``"auto"`` (default) takes the engine when it supports the graph, the state lives on
the CPU and no gradient is needed, else torch.

State (:class:`~aura_snn.graph.state.GraphState`) is kept by the graph between runs
(a second ``run`` continues the first) and can be reset, detached, saved and loaded
(:meth:`Graph.save_state`: safetensors, written atomically).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import torch
from torch import nn

from .._checks import check_int, check_positive
from ..errors import ParameterError, ParameterTypeError, ShapeError
from . import state as _state
from .observer import Observer
from .projection import Projection
from .recorder import PROJECTION_VARIABLES, Recorder
from .regions import DenseRegion, ModuleRegion, Region, SpikingRegion, default_seed
from .state import GraphState

BACKENDS = ("auto", "torch", "engine", "ray")

class RunResult(NamedTuple):
    """What :meth:`Graph.run` returns.

    Attributes:
        outputs: ``{region: [T, B, size]}`` for the regions named in ``record``.
        state: the state after the last step (also kept by the graph).
        backend: ``"torch"``, ``"engine"`` or ``"ray"``.
        wall_time: seconds spent in the run.
        profile: where the time went (engine: ``layout`` to flatten the graph, ``steps``
            in the compiled time loop, ``monitors`` feeding monitors, ``state`` loading
            and storing the state), or ``None``.
        distributed: for ``backend="ray"``, the partition, window, exchange count and
            bytes (:class:`~aura_snn.graph.distributed.DistributedReport`), else ``None``.
    """

    outputs: dict[str, torch.Tensor]
    state: GraphState
    backend: str
    wall_time: float
    profile: dict[str, float] | None = None
    distributed: Any = None


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
        self.observers: list[Observer] = []
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

    def step_order(self) -> list[str]:
        """The order regions update within a step: topological over the same-step edges
        (Kahn, ties in the order regions were added). A cycle of same-step edges has no
        such order and raises, naming its regions (put a delayed edge on the cycle)."""
        names = list(self.regions)
        same = [p for p in self.projections.values() if p.same_step]
        indeg = {n: 0 for n in names}
        for p in same:
            if p.pre == p.post:
                raise ParameterError(f"same-step projection {p.name!r} connects region "
                                     f"{p.pre!r} to itself: a cycle needs a delay")
            indeg[p.post] += 1
        order: list[str] = []
        ready = [n for n in names if indeg[n] == 0]
        while ready:
            n = ready.pop(0)
            order.append(n)
            for p in same:
                if p.pre == n:
                    indeg[p.post] -= 1
                    if indeg[p.post] == 0:
                        ready.append(p.post)
                        ready.sort(key=names.index)
        if len(order) < len(names):
            left = [n for n in names if n not in order]
            edges = [p.name for p in same if p.pre in left and p.post in left]
            raise ParameterError(f"same-step projections {edges} form a cycle through regions "
                                 f"{left}; a cycle must contain a delayed edge "
                                 f"(same_step=False)")
        return order

    def engine_reason(self) -> str | None:
        """Why the compiled engine cannot run this graph (``None`` when it can): the
        graph-level features it lacks, then :func:`aura_snn.graph.engine.
        unsupported_reason`."""
        for p in self.projections.values():
            if p.same_step:
                return f"projection {p.name!r} is a same-step edge"
        from . import engine as _engine

        return _engine.unsupported_reason(self)

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

    def add_observer(self, observer: Observer) -> Observer:
        """Attach an :class:`~aura_snn.graph.observer.Observer` (counters, meters, ...);
        recorders attach with :meth:`monitor`. Returns it; remove with
        :meth:`remove_observer`."""
        if not isinstance(observer, Observer):
            raise ParameterTypeError(f"observer must be an Observer, got "
                                     f"{type(observer).__name__}")
        self.observers.append(observer)
        return observer

    def remove_observer(self, observer: Observer) -> None:
        """Detach an observer or a recorder."""
        for lst in (self.observers, self.monitors):
            if observer in lst:
                lst.remove(observer)

    def all_observers(self) -> list[Observer]:
        """Recorders first, then the other observers, in the order they were attached."""
        return [*self.monitors, *self.observers]

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

    def initial_state(self, batch: int = 1) -> GraphState:
        """The state before any step: each region's initial state, nothing pending, rules
        and synapse models at rest (:func:`aura_snn.graph.state.initial_state`)."""
        return _state.initial_state(self, batch)

    def state_tensors(self, state: GraphState | None = None) -> dict[str, torch.Tensor]:
        """The state as a flat ``{key: tensor}`` dict (what :meth:`save_state` writes;
        keys in :mod:`aura_snn.graph.state`)."""
        st = state if state is not None else self._state
        if st is None:
            raise ParameterError("the graph has no state yet: run it or set graph.state")
        return _state.to_tensors(self, st)

    def state_from_tensors(self, tensors: Mapping[str, torch.Tensor]) -> GraphState:
        """Inverse of :meth:`state_tensors`; checks every key and shape against the graph."""
        return _state.from_tensors(self, tensors)

    def save_state(self, path: str | os.PathLike[str], *, weights: bool = True) -> None:
        """Write the state (and, with ``weights``, every parameter and buffer of the
        graph, plastic weights included) to a safetensors file, atomically."""
        from .state_file import save

        save(self, path, weights=weights)

    def load_state(self, path: str | os.PathLike[str], *, weights: bool = True) -> GraphState:
        """Read a file of :meth:`save_state` into the graph (state, and weights if stored
        and ``weights``), all or nothing: a damaged or foreign file raises
        :class:`~aura_snn.errors.CorruptFileError`, a state saved from another graph
        :class:`~aura_snn.errors.StateMismatchError`, and the graph is left as it was
        (:mod:`aura_snn.graph.state_file`). Returns the state."""
        from .state_file import load

        self._state = load(self, path, weights=weights)
        return self._state

    def rewire(self, projection: str, prune: Any = None, grow: Any = None) -> None:
        """Prune and grow synapses of a sparse projection without rebuilding the graph
        (:meth:`~aura_snn.graph.projection.Projection.rewire`); per-synapse rule state
        of the kept synapses moves with them, grown synapses start at rest."""
        p = self.projection(projection)
        n_old = p.nnz
        st = self._state
        if st is not None:   # refused before anything changes
            for rule in p.rules:
                s = st.rules.get(f"{p.name}.{rule.slot}")
                if s is not None:
                    _synapse_fields(rule, p, s, s, n_old)
        source = p.rewire(prune, grow)
        if st is None:
            return
        src = torch.from_numpy(source)
        for rule in p.rules:
            key = f"{p.name}.{rule.slot}"
            s = st.rules.get(key)
            if s is None:
                continue
            fresh = rule.initial_state(p, st.batch, self.device, self.dtype)
            moved = _synapse_fields(rule, p, s, fresh, n_old)
            vals = []
            for name, old, new in zip(s._fields, s, fresh, strict=True):
                if name in moved:
                    v = new.clone()
                    keep = src >= 0
                    v[..., keep.to(v.device)] = old[..., src[keep].to(old.device)]
                    vals.append(v)
                else:
                    vals.append(old)
            st.rules[key] = type(s)(*vals)
        self._state = _state.conform(self, st)

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
            progress: bool = False, modulators: Mapping[str, torch.Tensor] | None = None,
            modulation: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
            partition: Mapping[str, int] | int | None = None, address: str | None = None,
            worker_backend: str = "auto", checkpoint_every: int | str | None = None,
            checkpoint_dir: str | os.PathLike[str] | None = None,
            resume: str | os.PathLike[str] | None = None, layout: Any = None) -> RunResult:
        """Run ``steps`` steps of ``dt`` seconds.

        Args:
            steps: number of steps ``T`` (>= 1; 0 raises ``ParameterError`` naming it).
            inputs: fed tensors: ``[T, B, size]`` for input regions, ``[B, d]`` or
                ``[T, B, d]`` for module regions, ``[T, B, in_size]`` for dense regions.
            batch_size: ``B`` when no input says it (default: the state's, else 1).
            record: region names whose outputs to return stacked, ``[T, B, size]``.
            backend: ``"auto"``, ``"torch"`` or ``"engine"`` (module docstring).
            state: start from this state instead of the kept one.
            reset: start from the initial state.
            progress: show a tqdm bar of simulated time.
            modulators: neuromodulator signals for plasticity rules, ``{name: [T] or
                [T, B]}`` (e.g. ``"dopamine"``); each rule gets step ``t``'s values.
            modulation: per spiking region, ``{"gain": [T, ...], "threshold": [T, ...]}``
                broadcastable to ``[B, n]``: the input is multiplied by the gain and the
                threshold shifted by ``threshold`` (V) in each step (acetylcholine,
                noradrenaline, adenosine). Runs on the torch backend.
            partition: ``backend="ray"`` only: a dict region -> worker index, or a number
                of workers (automatic partition; :mod:`aura_snn.graph.distributed`).
            address: ``backend="ray"`` only: a Ray cluster (``"ray://host:port"``,
                ``"host:port"``); default: this process's Ray session or a local one.
            worker_backend: ``backend="ray"`` only: ``"auto"`` (the engine where it
                supports a worker's part), ``"engine"`` or ``"torch"``.
            checkpoint_every: ``backend="ray"`` only: a snapshot every this many steps
                (int) or seconds (``"30 s"``), at the next window boundary, into
                ``checkpoint_dir`` (:mod:`aura_snn.graph.distributed.snapshot`); a
                worker lost in the run restarts from the last one.
            checkpoint_dir: the snapshots' folder (also written at the end of the run).
            resume: ``backend="ray"`` only: start from the last complete snapshot in
                this folder (instead of ``state``); ``steps`` more steps are run.
            layout: compiled engine only: a layout from
                :func:`aura_snn.graph.engine.build_layout` of this graph, reused instead
                of built again (for many short runs of one graph; valid while nothing
                but the runs changes its weights, delays or parameters).

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
        st = _state.conform(self, start if start is not None else self.initial_state(batch))
        modulators, modulation = dict(modulators or {}), dict(modulation or {})
        for name, m in modulation.items():
            if not isinstance(self.region(name), SpikingRegion):
                raise ParameterError(f"modulation[{name!r}]: only spiking regions take a "
                                     f"modulation input, {name!r} is {self.region(name).kind}")
            if not isinstance(m, Mapping) or not set(m) <= {"gain", "threshold"}:
                raise ParameterError(f"modulation[{name!r}] must be a mapping with keys "
                                     f"'gain' and/or 'threshold', got {m!r}")

        job = None
        if backend == "ray":
            from .distributed import prepare

            job = prepare(self, partition, address, worker_backend, checkpoint_every,
                          checkpoint_dir)
            if resume is not None:
                st = job.resume_from(resume, st, state is not None or reset)
        elif partition is not None or address is not None or worker_backend != "auto" or \
                checkpoint_every is not None or checkpoint_dir is not None or \
                resume is not None:
            raise ParameterError("partition, address, worker_backend, checkpoint_every, "
                                 "checkpoint_dir and resume apply to backend='ray' only")
        reason = self.engine_reason()
        if reason is None and (modulators or modulation):
            reason = "the run has modulators or a modulation input"
        if reason is None:
            from . import engine as _engine

            reason = _engine.state_reason(self, st)
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
        if layout is not None and (job is not None or not use_engine):
            raise ParameterError(f"layout= is the compiled engine's, and this run goes to "
                                 f"{'ray' if job is not None else 'torch'}"
                                 f"{f' ({reason})' if reason and job is None else ''}")
        t0 = time.perf_counter()
        profile = report = None
        observers = self.all_observers()
        for o in observers:
            o.start(self, steps)
        try:
            if job is not None:
                outputs, st, report = job.run(st, steps, inputs, record, observers, progress,
                                              modulators, modulation)
            elif use_engine:
                from . import engine as _engine

                outputs, st, profile = _engine.run_graph(self, st, steps, inputs, record,
                                                         progress, layout)
            else:
                from .stepper import run_torch

                bar = _progress(progress, steps, self.dt)
                try:
                    outputs, st = run_torch(self, st, steps, inputs, record, bar, observers,
                                            modulators, modulation)
                finally:
                    if bar is not None:
                        bar.close()
        finally:
            for o in observers:
                o.finish(self)
        self._state = st
        name = "ray" if job is not None else "engine" if use_engine else "torch"
        return RunResult(outputs, st, name, time.perf_counter() - t0, profile, report)


def _progress(enabled: bool, steps: int, dt: float) -> Any:
    if not enabled:
        return None
    from .progress import SimProgress

    return SimProgress(steps, dt)


__all__ = ["BACKENDS", "Graph", "GraphState", "RunResult"]


def _synapse_fields(rule: Any, p: Any, old: Any, fresh: Any, n_old: int) -> set[str]:
    """The per-synapse fields of a rule's state (declared, or inferred from shapes where
    that is unambiguous) for :meth:`Graph.rewire`."""
    declared = rule.synapse_fields(p)
    if declared is not None:
        return set(declared)
    found = {name for name, a, b in zip(old._fields, old, fresh, strict=True)
             if a.dim() and a.shape[-1] == n_old and b.shape[-1] == p.nnz}
    if found and n_old in (p.n_pre, p.n_post):
        raise ParameterError(
            f"rewire of {p.name!r}: rule {type(rule).__name__} does not declare its "
            f"per-synapse state (synapse_fields) and its fields {sorted(found)} could be per "
            f"neuron (nnz {n_old} -> {p.nnz}, n_pre {p.n_pre}, n_post {p.n_post})")
    return found
