r"""The calling side of a partitioned run: plan, start the workers, stream the windows.

:func:`prepare` checks everything that can be checked without Ray (the partition, the
cut edges, the local backend of each worker); :meth:`Job.run` then connects
(:mod:`.cluster`), loads each worker (:mod:`.worker`) and submits the windows
:math:`[t_0 + kD, t_0 + (k+1)D)`. A window's call on worker :math:`w` takes, as Ray
object references, the messages its sources produced in the previous window, so Ray
moves them from worker to worker through its object store and runs each worker as soon
as its inputs exist: the calling process never handles the messages, only each
worker's small report (recorded outputs, observer data, bytes sent), which it reads a
few windows behind to feed the graph's observers in order (:mod:`.stream`). The run
ends with every worker injecting its last messages, so the final state holds the inputs
still on their way exactly as one process's would.

With ``checkpoint_dir`` the run writes consistent snapshots (:mod:`.snapshot`,
:mod:`.checkpoint`) every ``checkpoint_every`` steps or seconds and at its end, and
recovers from a lost worker by restarting from the last one; ``resume=`` starts a run
from the last complete snapshot of a folder, its observers first given what the
snapshot's run had observed (:mod:`.observed`).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ...errors import ParameterError
from ..observer import Observer, spike_regions_wanted
from ..regions import InputRegion
from . import checkpoint, cluster, stream
from .observed import History
from .partition import Partition, make_partition
from .plan import WorkerPlan, plan_workers, subgraph
from .snapshot import Snapshot
from .worker import Relay

if TYPE_CHECKING:
    from ..graph import Graph
    from ..state import GraphState

WORKER_BACKENDS = ("auto", "engine", "torch")
MAX_WINDOW = 1000      # steps per window at most (observers and progress are fed per window)
MAX_RECOVERIES = 3     # lost workers a run recovers from before it gives up


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
        setup_time, run_time: seconds to connect and load the workers (every attempt),
            and to run.
        busy: seconds each worker spent in its windows (taking in messages, stepping,
            making its messages), every attempt; ``run_time`` minus this is the time it
            waited (for its inputs, for Ray, for a core).
        snapshots: the snapshots completed (:class:`.stream.SnapshotInfo`: step, bytes,
            write time), with ``checkpoint_dir``.
        recoveries: each lost worker (:class:`.stream.Recovery`: the step reached, the
            snapshot step restarted from, the steps lost, the restart time).
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
    busy: tuple[float, ...] = ()
    snapshots: tuple[stream.SnapshotInfo, ...] = ()
    recoveries: tuple[stream.Recovery, ...] = ()


@dataclass
class Job:
    """A checked partitioned run (:func:`prepare`), ready to :meth:`run`."""

    graph: Graph
    partition: Partition
    plans: list[WorkerPlan]
    worker_backend: str
    address: str | None
    checkpoint_dir: Path | None = None
    every_steps: int | None = None
    every_s: float | None = None
    checkpoint_meta: dict[str, Any] = field(default_factory=dict)
    resumed: Snapshot | None = None

    def resume_from(self, root: str | os.PathLike[str], st: GraphState, explicit: bool
                    ) -> GraphState:
        """The state of the last complete snapshot in ``root`` (``resume=``), for a run
        of batch ``st.batch``; ``explicit``: a ``state=`` or ``reset=`` was given too."""
        if explicit:
            raise ParameterError("resume= starts from a snapshot: give it without state= "
                                 "or reset=True")
        snap = checkpoint.find(self.graph, root)
        new = checkpoint.restore(self.graph, snap, st.batch)
        self.resumed = snap
        return new

    def snapshot_due(self, steps: int, seconds: float) -> bool:
        """Whether a snapshot is due ``steps`` steps and ``seconds`` s after the last."""
        if self.checkpoint_dir is None:
            return False
        if self.every_steps is not None:
            return steps >= self.every_steps
        return self.every_s is not None and seconds >= self.every_s

    def run(self, st: GraphState, steps: int, inputs: Mapping[str, torch.Tensor],
            record: list[str], observers: list[Observer], progress: bool,
            modulators: Mapping[str, torch.Tensor],
            modulation: Mapping[str, Mapping[str, torch.Tensor]]
            ) -> tuple[dict[str, torch.Tensor], GraphState, DistributedReport]:
        """Run ``steps`` steps from ``st``; returns recorded outputs, the final state
        and the :class:`DistributedReport`. A lost worker (its actor died) restarts the
        run from the last complete snapshot of this run on new workers
        (:mod:`.stream`), at most :data:`MAX_RECOVERIES` times."""
        g, part = self.graph, self.partition
        for name, x in inputs.items():
            if isinstance(g.regions[name], InputRegion):
                g.regions[name].check_fed(x, steps, st.batch)
        window = min(part.window or steps, MAX_WINDOW, steps)
        ray = cluster.require_ray()
        tic = time.perf_counter()
        started = cluster.connect(ray, self.address)
        run = stream.RunLog(st.t, steps, window, record, observers, progress, g.dt)
        if self.resumed is not None:      # what the observers saw before the snapshot
            seen = History.read(self.resumed)
            seen.replay(observers, st.t, st.batch, g.dt)
            run.history = seen if self.checkpoint_dir is not None else None
        elif self.checkpoint_dir is not None:
            run.history = History(st.t)
        lost = stream.lost_worker_errors(ray)
        ok = False
        try:
            cur = st
            while True:
                try:
                    subs, backends, probe_maps = self._subgraphs(observers, modulators,
                                                                 modulation)
                    new_state, finals = stream.attempt(
                        ray, self, run, cur, subs, backends, probe_maps, inputs,
                        modulators, modulation)
                    break
                except lost as exc:
                    if len(run.recoveries) >= MAX_RECOVERIES:
                        raise
                    cur = stream.recover(ray, self, run, st, exc)
            for _, plastic, _ in finals:
                for name, buffers in plastic.items():
                    p = g.projections[name]
                    if "plastic_weight" in buffers:
                        p.make_plastic()
                    p.load_state_dict(buffers)
            for name, tr in new_state.traces.items():
                g.projections[name]._last_traces = tr
            ok = True
        finally:
            run.close()
            if not ok:
                cluster.release_workers()
                run.discard_unfinished(ray, self.checkpoint_dir)
            if started:
                cluster.release_workers()
                ray.shutdown()
        report = DistributedReport(
            part.workers, dict(part.assignment), tuple(backends), part.window, window,
            run.windows, run.exchanges, run.nbytes, part.cut, part.cut_synapses, part.loads,
            run.setup_time, time.perf_counter() - tic - run.setup_time, tuple(run.busy),
            tuple(run.snapshots), tuple(run.recoveries))
        return run.outputs(), new_state, report

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


def checkpoint_interval(checkpoint_every: int | str | None
                        ) -> tuple[int | None, float | None]:
    """``(steps, seconds)`` of ``checkpoint_every``: an int of steps, or ``"<x> s"``
    (``ParameterError`` naming it otherwise)."""
    if checkpoint_every is None:
        return None, None
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, (int, str)):
        raise ParameterError(f"checkpoint_every must be a number of steps (int) or seconds "
                             f"as '<x> s', got {checkpoint_every!r}")
    if isinstance(checkpoint_every, int):
        if checkpoint_every < 1:
            raise ParameterError(f"checkpoint_every must be >= 1 step, got {checkpoint_every}")
        return checkpoint_every, None
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)\s*s\s*", checkpoint_every)
    if m is None or float(m.group(1)) <= 0:
        raise ParameterError(f"checkpoint_every={checkpoint_every!r}: seconds are written "
                             f"'<x> s' with x > 0, e.g. '30 s'")
    return None, float(m.group(1))


def prepare(graph: Graph, partition: Mapping[str, int] | int | None, address: str | None,
            worker_backend: str, checkpoint_every: int | str | None = None,
            checkpoint_dir: str | os.PathLike[str] | None = None,
            checkpoint_meta: Mapping[str, Any] | None = None) -> Job:
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
    every_steps, every_s = checkpoint_interval(checkpoint_every)
    root = None
    if checkpoint_dir is not None:
        root = Path(checkpoint_dir)
        if root.exists() and not root.is_dir():
            raise ParameterError(f"checkpoint_dir={os.fspath(checkpoint_dir)!r} exists and is "
                                 f"not a folder")
    elif checkpoint_every is not None:
        raise ParameterError("checkpoint_every needs checkpoint_dir= (the snapshots' folder)")
    part = make_partition(graph, partition)
    if address is not None:
        cluster.check_address(address)
    return Job(graph, part, plan_workers(graph, part), worker_backend, address, root,
               every_steps, every_s, dict(checkpoint_meta or {}))


__all__ = ["MAX_WINDOW", "WORKER_BACKENDS", "DistributedReport", "Job", "checkpoint_interval",
           "prepare"]
