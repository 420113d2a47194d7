r"""Streaming the windows of a partitioned run, with snapshots and recovery.

:func:`attempt` loads the workers from a state at step :math:`s` and submits the windows
:math:`[s + kD, s + (k+1)D)` of the run (aligned with the run's start, so every
snapshot step is a window boundary) in batches of about :data:`BATCH_STEPS` steps, one
call per worker and batch (:meth:`~.worker.RegionWorker.run_windows`). The workers
send each other their messages directly (actor to actor) and wait for them before
each window, so the calling process is not on the path of a message; it reads each
worker's small reports, :data:`LOOKAHEAD` batches behind, and feeds the graph's
observers window by window, in order (:class:`RunLog`). A read waits for the first
report to arrive and raises at once when a worker died, though the others would wait
for its messages forever (:func:`_get_all`).

Snapshots (``checkpoint_every`` steps or seconds, and at the end of the run): between
two batches every worker is asked to :meth:`~.worker.RegionWorker.checkpoint` (take
in the messages just received, write its part); the manifest is written when every
part's entry has been read back, in order with the reports, so at that moment the
observers have seen exactly the steps before the snapshot (:mod:`.snapshot`).

A worker whose actor dies (``ray.exceptions.RayActorError``, or a message of it lost:
``ObjectLostError``) makes the read fail; :func:`recover` kills the run's actors,
discards the snapshot in progress, and returns the state of this run's last complete
snapshot (or the run's start), and :func:`attempt` starts again from it on new actors.
Windows already fed to the observers are run again but not fed twice; the recovery
(:class:`Recovery`) records the steps lost and the restart time.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
import warnings
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import torch

from ..observer import Chunk, Observer, out_degrees
from ..regions import ModuleRegion
from . import cluster
from .checkpoint import restore, run_meta
from .observed import History
from .plan import merge_states, split_state
from .snapshot import commit_snapshot, discard, latest_snapshot, snapshot_dir
from .transport import Shipped
from .worker import RegionWorker

if TYPE_CHECKING:
    from ..state import GraphState
    from .runner import Job

LOOKAHEAD = 2          # batches submitted ahead of the reports read back
BATCH_STEPS = 250      # steps per batch of windows (observers and progress lag this)
DISCARD_WAIT_S = 10.0  # how long to wait for killed workers' part writes to end


@dataclass(frozen=True)
class SnapshotInfo:
    """A snapshot the run completed: its ``step``, total ``bytes`` of its parts, and
    the slowest worker's write time ``write_s`` (s)."""

    step: int
    bytes: int
    write_s: float


@dataclass(frozen=True)
class Recovery:
    """A lost worker: the run had fed its observers up to ``failed_at`` (step), restarted
    from the snapshot of step ``restarted_from``, so ``lost_steps`` steps were run again;
    ``restart_s`` seconds from the error to new workers loaded; ``error`` its type."""

    failed_at: int
    restarted_from: int
    lost_steps: int
    restart_s: float
    error: str


def lost_worker_errors(ray: Any) -> tuple[type[BaseException], ...]:
    """The Ray errors that mean a worker (or its messages) is gone."""
    ex = ray.exceptions
    return (ex.RayActorError, ex.ObjectLostError)


@dataclass
class RunLog:
    """What a run has done so far, across attempts: the step its observers have seen
    (``observed``), recorded outputs, counts, snapshots and recoveries."""

    t0: int
    steps: int
    window: int
    record: list[str]
    observers: list[Observer]
    progress: bool
    dt: float
    observed: int = -1
    windows: int = 0
    exchanges: int = 0
    nbytes: int = 0
    busy: list[float] = field(default_factory=list)
    setup_time: float = 0.0
    recorded: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    inflight: deque = field(default_factory=deque)
    unfinished: dict[int, list[Any]] = field(default_factory=dict)
    snapshots: list[SnapshotInfo] = field(default_factory=list)
    recoveries: list[Recovery] = field(default_factory=list)
    run_id: str = ""
    bar: Any = None
    recover_tic: float | None = None
    history: History | None = None

    def __post_init__(self) -> None:
        import uuid

        self.observed = self.t0
        self.recorded = {n: [] for n in self.record}
        self.run_id = uuid.uuid4().hex
        if self.progress:
            from ..progress import SimProgress

            self.bar = SimProgress(self.steps, self.dt)

    def read(self, ray: Any, job: Job, probe_maps: list[list[Any]], batch: int) -> None:
        """Read the oldest item in flight: a batch's reports (fed to the observers
        window by window unless already seen) or a snapshot's parts (then its manifest
        is written)."""
        item = self.inflight.popleft()
        if item[0] == "snap":
            self.commit(job, item[1], _get_all(ray, item[2]))
            return
        _, windows, refs = item
        per_worker = _get_all(ray, refs)
        for k, (t0, n) in enumerate(windows):
            self._window(t0, n, [reports[k] for reports in per_worker], probe_maps, batch)

    def _window(self, t0: int, n: int, reports: list[dict[str, Any]],
                probe_maps: list[list[Any]], batch: int) -> None:
        self.nbytes += sum(sum(rep["bytes"].values()) for rep in reports)
        if len(self.busy) < len(reports):
            self.busy = [0.0] * len(reports)
        for w, rep in enumerate(reports):
            self.busy[w] += rep["busy"]
        if t0 < self.observed:       # run again after a recovery: seen already
            return
        chunk = Chunk(t0, n, batch, self.dt)
        for rep, probes in zip(reports, probe_maps, strict=True):
            c = rep["chunk"]
            chunk.spikes.update(c["spikes"])
            chunk.values.update(zip(probes, c["values"], strict=True))
            chunk.events.update(c["events"])
            for name, y in rep["outputs"].items():
                if name in self.recorded:
                    self.recorded[name].append(y)
        for o in self.observers:
            o.observe(chunk)
        if self.history is not None:
            self.history.add(chunk)
        self.observed = t0 + n
        if self.bar is not None:
            self.bar.advance(n)

    def commit(self, job: Job, step: int, entries: list[dict[str, Any]]) -> None:
        """Write the manifest of the snapshot of ``step`` from its parts' entries.

        Ctrl+C is held back from writing the manifest until the snapshot is off the
        unfinished list: an interrupt in between made the run discard the snapshot it
        had just completed, after ``prune`` had removed the one before (a run left with
        no complete snapshot, seen once in the test suite under load)."""
        extra = {"run": self.run_id, "run_t0": self.t0, "run_steps": self.steps,
                 **job.checkpoint_meta}
        if self.history is not None:
            entry, extra["observed"] = self.history.write(snapshot_dir(job.checkpoint_dir,
                                                                       step))
            entries = [*entries, entry]
        meta = run_meta(job.graph, job.partition.assignment, extra)
        with _interrupts_held():
            commit_snapshot(job.checkpoint_dir, step, entries, meta)
            self.unfinished.pop(step, None)
        self.snapshots.append(SnapshotInfo(step, sum(e["bytes"] for e in entries),
                                           max(e.get("seconds", 0.0) for e in entries)))

    def outputs(self) -> dict[str, torch.Tensor]:
        return {n: torch.cat(v) for n, v in self.recorded.items()}

    def discard_unfinished(self, ray: Any, root: Any) -> None:
        """Remove the snapshots begun but not completed, once their writers are done
        (the caller killed them)."""
        refs = [r for rs in self.unfinished.values() for r in rs]
        if refs:
            ray.wait(refs, num_returns=len(refs), timeout=DISCARD_WAIT_S)
        for step in list(self.unfinished):
            discard(root, step)
        self.unfinished.clear()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back until the block is left, then raise them again
    for the handlers that were installed (Python's handlers run in the main thread;
    elsewhere a plain block). A signal mask would not do: the process's other threads
    (numba's, torch's, Ray's) would take the signal instead."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    names = (signal.SIGINT, signal.SIGTERM)
    before = [signal.signal(s, lambda signum, frame: held.append(signum)) for s in names]
    try:
        yield
    finally:
        for s, handler in zip(names, before, strict=True):
            signal.signal(s, handler)
        for s in dict.fromkeys(held):
            signal.raise_signal(s)


def _folder(job: Job, step: int, run: RunLog, refs: list[Any]) -> str:
    folder = snapshot_dir(job.checkpoint_dir, step)
    with _interrupts_held():   # a folder made is a folder booked, to be discarded
        folder.mkdir(parents=True, exist_ok=True)
        run.unfinished[step] = refs
    return str(folder)


def _get_all(ray: Any, refs: list[Any]) -> list[Any]:
    """``ray.get(refs)``, raising the error of the first to fail as soon as it does
    (the others may be waiting for a message of the worker that failed)."""
    pending = list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        ray.get(ready)
    return ray.get(refs)


def attempt(ray: Any, job: Job, run: RunLog, cur: GraphState, subs: list[Any],
            backends: list[str], probe_maps: list[list[Any]],
            inputs: Mapping[str, torch.Tensor], modulators: Mapping[str, torch.Tensor],
            modulation: Mapping[str, Mapping[str, torch.Tensor]]
            ) -> tuple[GraphState, list[Any]]:
    """Run the rest of the run from ``cur`` (module docstring); returns the final state
    and each worker's :meth:`~.worker.RegionWorker.finish` result."""
    g, plans = job.graph, job.plans
    off = cur.t - run.t0
    tic = time.perf_counter()
    actors = cluster.workers(ray, job.partition.workers, RegionWorker)
    degrees = out_degrees(g) if any(o.count_events for o in run.observers) else None
    static = frozenset(n for n, x in inputs.items()
                       if isinstance(g.regions[n], ModuleRegion) and x.dim() == 2)
    fed = {n: (x if n in static else x[off:]) for n, x in inputs.items()}
    mods = {k: v[off:] for k, v in modulators.items()}
    mdl = {r: {k: v[off:] for k, v in m.items()} for r, m in modulation.items()}
    loads = []
    for wp, sub, be, actor in zip(plans, subs, backends, actors, strict=True):
        mine = set(wp.regions)
        outdeg = {} if degrees is None else \
            {p: (g.projections[p].pre, degrees[p]) for p in wp.cross_out}
        loads.append(actor.load_shipped.remote(Shipped((
            sub, wp, split_state(g, cur, wp), be, {n: x for n, x in fed.items() if n in mine},
            static, mods, {n: m for n, m in mdl.items() if n in mine}, run.record, outdeg)),
            dict(enumerate(actors))))
    _get_all(ray, loads)
    run.setup_time += time.perf_counter() - tic
    if run.recover_tic is not None:
        run.recoveries[-1] = replace(run.recoveries[-1],
                                     restart_s=time.perf_counter() - run.recover_tic)
        run.recover_tic = None
    pairs = sum(len(wp.destinations) for wp in plans)      # messages per window
    per_batch = max(1, BATCH_STEPS // run.window)
    since, t_snap = cur.t, time.perf_counter()
    pending: list[tuple[int, int]] = []

    def submit() -> None:
        refs = [actor.run_windows.remote([n for _, n in pending]) for actor in actors]
        run.inflight.append(("win", list(pending), refs))
        run.exchanges += pairs * len(pending)
        run.windows += len(pending)
        pending.clear()
        while len(run.inflight) > LOOKAHEAD:
            run.read(ray, job, probe_maps, cur.batch)

    for start in range(off, run.steps, run.window):
        n = min(run.window, run.steps - start)
        step = run.t0 + start
        if start > off and job.snapshot_due(step - since, time.perf_counter() - t_snap):
            if pending:
                submit()
            refs: list[Any] = []
            folder = _folder(job, step, run, refs)
            refs.extend(actor.checkpoint.remote(folder) for actor in actors)
            run.inflight.append(("snap", step, refs))
            since, t_snap = step, time.perf_counter()
        pending.append((step, n))
        if len(pending) >= per_batch:
            submit()
    if pending:
        submit()
    while run.inflight:
        run.read(ray, job, probe_maps, cur.batch)
    end = run.t0 + run.steps
    folder = None if job.checkpoint_dir is None else _folder(job, end, run, [])
    finals = _get_all(ray, [actor.finish.remote(folder) for actor in actors])
    if folder is not None:
        run.commit(job, end, [f[2] for f in finals])
    return merge_states(g, [f[0] for f in finals], plans), finals


def recover(ray: Any, job: Job, run: RunLog, start: GraphState, exc: BaseException
            ) -> GraphState:
    """After a lost worker: stop the run's actors, discard the snapshot in progress and
    return the state to restart from (module docstring)."""
    tic = time.perf_counter()
    cluster.release_workers()
    run.inflight.clear()
    snap = None
    if job.checkpoint_dir is not None:
        run.discard_unfinished(ray, job.checkpoint_dir)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            snap = latest_snapshot(job.checkpoint_dir)
        if snap is not None and snap.meta.get("run") != run.run_id:
            snap = None
    cur = restore(job.graph, snap) if snap is not None else start
    run.recoveries.append(Recovery(run.observed, cur.t, run.observed - cur.t, 0.0,
                                   type(exc).__name__))
    run.recover_tic = tic
    warnings.warn(f"backend='ray': a worker was lost at step {run.observed} "
                  f"({type(exc).__name__}); restarting from step {cur.t} on new workers",
                  RuntimeWarning, stacklevel=3)
    return cur


__all__ = ["BATCH_STEPS", "LOOKAHEAD", "Recovery", "RunLog", "SnapshotInfo", "attempt",
           "lost_worker_errors", "recover"]
