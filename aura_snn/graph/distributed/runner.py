r"""The calling side of a partitioned run: plan, start the workers, stream the windows.

:func:`prepare` checks everything that can be checked without Ray (the partition, the
cut edges, the local backend of each worker); :meth:`Job.run` then connects
(:mod:`.cluster`), loads each worker (:mod:`.worker`) and submits the windows
:math:`[t_0 + kD, t_0 + (k+1)D)`. A window's call on worker :math:`w` takes, as Ray
object references, the messages its sources produced in the previous window, so Ray
moves them from worker to worker through its object store and runs each worker as soon
as its inputs exist: the calling process never handles the messages, only each
worker's small report (recorded outputs, observer data, bytes sent), which it reads a
few windows behind to feed the graph's observers in order. The run ends with every
worker injecting its last messages, so the final state holds the inputs still on their
way exactly as one process's would.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ...errors import ParameterError
from ..observer import Chunk, Observer, out_degrees, spike_regions_wanted
from ..regions import InputRegion, ModuleRegion
from . import cluster
from .partition import Partition, make_partition
from .plan import WorkerPlan, merge_states, plan_workers, split_state, subgraph
from .worker import RegionWorker, Relay

if TYPE_CHECKING:
    from ..graph import Graph
    from ..state import GraphState

WORKER_BACKENDS = ("auto", "engine", "torch")
MAX_WINDOW = 1000      # steps per window at most (observers and progress are fed per window)
LOOKAHEAD = 4          # windows submitted ahead of the reports read back


@dataclass(frozen=True)
class DistributedReport:
    r"""How a partitioned run went (``RunResult.distributed``).

    Attributes:
        workers, assignment, cut, cut_synapses, loads: the partition
            (:class:`~aura_snn.graph.distributed.partition.Partition`).
        backends: the local backend of each worker (``"engine"`` or ``"torch"``).
        min_delay_window: :math:`D` (steps; ``None`` when nothing is cut).
        window: steps per window, :math:`\min(D, 1000, T)`.
        windows: windows run.
        exchanges: messages sent between workers (one per window and pair of workers
            joined by a cut projection).
        bytes: bytes of the arrays in those messages (:mod:`.exchange`).
        setup_time, run_time: seconds to connect and load the workers, and to run.
    """

    workers: int
    assignment: dict[str, int]
    backends: tuple[str, ...]
    min_delay_window: int | None
    window: int
    windows: int
    exchanges: int
    bytes: int
    cut: tuple[str, ...]
    cut_synapses: int
    loads: tuple[int, ...]
    setup_time: float
    run_time: float


@dataclass
class Job:
    """A checked partitioned run (:func:`prepare`), ready to :meth:`run`."""

    graph: Graph
    partition: Partition
    plans: list[WorkerPlan]
    worker_backend: str
    address: str | None

    def run(self, st: GraphState, steps: int, inputs: Mapping[str, torch.Tensor],
            record: list[str], observers: list[Observer], progress: bool,
            modulators: Mapping[str, torch.Tensor],
            modulation: Mapping[str, Mapping[str, torch.Tensor]]
            ) -> tuple[dict[str, torch.Tensor], GraphState, DistributedReport]:
        """Run ``steps`` steps from ``st``; returns recorded outputs, the final state
        and the :class:`DistributedReport`."""
        g, part, plans = self.graph, self.partition, self.plans
        for name, x in inputs.items():
            if isinstance(g.regions[name], InputRegion):
                g.regions[name].check_fed(x, steps, st.batch)
        subs, backends, probe_maps = self._subgraphs(observers, modulators, modulation)
        window = min(part.window or steps, MAX_WINDOW, steps)
        ray = cluster.require_ray()
        tic = time.perf_counter()
        started = cluster.connect(ray, self.address)
        ok = False
        try:
            actors = cluster.workers(ray, part.workers, RegionWorker)
            degrees = out_degrees(g) if any(o.count_events for o in observers) else None
            static = frozenset(n for n, x in inputs.items()
                               if isinstance(g.regions[n], ModuleRegion) and x.dim() == 2)
            loads = []
            for wp, sub, be, actor in zip(plans, subs, backends, actors, strict=True):
                mine = set(wp.regions)
                outdeg = {} if degrees is None else \
                    {p: (g.projections[p].pre, degrees[p]) for p in wp.cross_out}
                loads.append(actor.load.remote(
                    sub, wp, split_state(g, st, wp), be,
                    {n: x for n, x in inputs.items() if n in mine}, static, modulators,
                    {n: m for n, m in modulation.items() if n in mine}, record, outdeg))
            ray.get(loads)
            setup = time.perf_counter() - tic
            tic = time.perf_counter()
            outputs, last, exchanges, nbytes, windows = self._stream(
                ray, actors, st, steps, window, record, observers, probe_maps, progress)
            prev = steps - (windows - 1) * window
            finals = ray.get([actor.finish.remote(prev, *[last[(s, wp.index)]
                                                        for s in wp.sources])
                              for wp, actor in zip(plans, actors, strict=True)])
            del last
            new_state = merge_states(g, [f[0] for f in finals], plans)
            for _, plastic in finals:
                for name, buffers in plastic.items():
                    p = g.projections[name]
                    if "plastic_weight" in buffers:
                        p.make_plastic()
                    p.load_state_dict(buffers)
            for name, tr in new_state.traces.items():
                g.projections[name]._last_traces = tr
            ok = True
        finally:
            if not ok:
                cluster.release_workers()
            if started:
                cluster.release_workers()
                ray.shutdown()
        report = DistributedReport(
            part.workers, dict(part.assignment), tuple(backends), part.window, window,
            windows, exchanges, nbytes, part.cut, part.cut_synapses, part.loads, setup,
            time.perf_counter() - tic)
        return outputs, new_state, report

    def _subgraphs(self, observers: list[Observer], modulators: Mapping[str, Any],
                   modulation: Mapping[str, Any]
                   ) -> tuple[list[Graph], list[str], list[list[Any]]]:
        """Each worker's sub-graph with its :class:`Relay`, its local backend, and the
        calling side's probes in the order of its relay's."""
        g = self.graph
        spiking = [n for n, r in g.regions.items() if r.spiking]
        wanted = spike_regions_wanted(observers, spiking)
        probes = [pr for o in observers for pr in o.probes]
        counting = any(o.count_events for o in observers)
        owner = dict(self.partition.assignment)
        for p in g.projections.values():
            owner.setdefault(p.name, owner[p.post])
        subs, backends, maps = [], [], []
        for wp in self.plans:
            sub = subgraph(g, wp)
            mine = [pr for pr in probes if owner[pr.target] == wp.index]
            local = frozenset(p.name for p in sub.projections.values() if p.pre in wp.regions)
            sub.add_observer(Relay(frozenset(wanted & set(wp.regions)), tuple(mine), counting,
                                   local))
            reason = sub.engine_reason()
            if reason is None and (modulators or any(n in modulation for n in wp.regions)):
                reason = "the run has modulators or a modulation input"
            if self.worker_backend == "engine" and reason is not None:
                raise ParameterError(f"worker_backend='engine' cannot run worker {wp.index} "
                                     f"(regions {wp.regions}): {reason}")
            use_engine = reason is None and self.worker_backend != "torch"
            subs.append(sub)
            backends.append("engine" if use_engine else "torch")
            maps.append(mine)
        return subs, backends, maps

    def _stream(self, ray: Any, actors: list[Any], st: GraphState, steps: int, window: int,
                record: list[str], observers: list[Observer], probe_maps: list[list[Any]],
                progress: bool
                ) -> tuple[dict[str, torch.Tensor], dict[tuple[int, int], Any], int, int, int]:
        """Submit every window, feed the observers from the reports in order; returns the
        recorded outputs, the last window's messages ``{(source, destination): ref}``,
        the exchange count, bytes and windows."""
        g, plans = self.graph, self.plans
        bar = None
        if progress:
            from ..progress import SimProgress

            bar = SimProgress(steps, g.dt)
        recorded: dict[str, list[torch.Tensor]] = {n: [] for n in record}
        inflight: deque[tuple[int, int, list[Any]]] = deque()
        last: dict[tuple[int, int], Any] = {}
        exchanges = nbytes = windows = 0
        prev = 0

        def read(t0: int, n: int, refs: list[Any]) -> None:
            nonlocal nbytes
            reports = ray.get(refs)
            chunk = Chunk(t0, n, st.batch, g.dt)
            for rep, probes in zip(reports, probe_maps, strict=True):
                c = rep["chunk"]
                chunk.spikes.update(c["spikes"])
                chunk.values.update(zip(probes, c["values"], strict=True))
                chunk.events.update(c["events"])
                for name, y in rep["outputs"].items():
                    if name in recorded:
                        recorded[name].append(y)
                nbytes += sum(rep["bytes"].values())
            for o in observers:
                o.observe(chunk)
            if bar is not None:
                bar.advance(n)

        try:
            for start in range(0, steps, window):
                n = min(window, steps - start)
                refs, new = [], {}
                for wp, actor in zip(plans, actors, strict=True):
                    args = [last[(s, wp.index)] for s in wp.sources] if start else []
                    out = actor.run_window.options(
                        num_returns=1 + len(wp.destinations)).remote(n, prev, *args)
                    out = out if isinstance(out, list) else [out]
                    refs.append(out[0])
                    for dst, ref in zip(wp.destinations, out[1:], strict=True):
                        new[(wp.index, dst)] = ref
                exchanges += len(new)
                last, prev = new, n
                windows += 1
                inflight.append((st.t + start, n, refs))
                while len(inflight) > LOOKAHEAD:
                    read(*inflight.popleft())
            while inflight:
                read(*inflight.popleft())
        finally:
            if bar is not None:
                bar.close()
        outputs = {n: torch.cat(v) for n, v in recorded.items()}
        return outputs, last, exchanges, nbytes, windows


def prepare(graph: Graph, partition: Mapping[str, int] | int | None, address: str | None,
            worker_backend: str) -> Job:
    """Check a partitioned run before anything starts (module docstring)."""
    cluster.require_ray()
    if partition is None:
        raise ParameterError("backend='ray' needs partition=: a dict region -> worker index, "
                             "or a number of workers for an automatic partition")
    if worker_backend not in WORKER_BACKENDS:
        raise ParameterError(f"worker_backend must be one of "
                             f"{', '.join(map(repr, WORKER_BACKENDS))}; got {worker_backend!r}")
    if graph.device.type != "cpu":
        raise ParameterError(f"backend='ray' runs its workers on the CPU; the graph is on "
                             f"{graph.device} (move it with graph.cpu())")
    part = make_partition(graph, partition)
    if address is not None:
        cluster.check_address(address)
    return Job(graph, part, plan_workers(graph, part), worker_backend, address)


__all__ = ["MAX_WINDOW", "WORKER_BACKENDS", "DistributedReport", "Job", "prepare"]
