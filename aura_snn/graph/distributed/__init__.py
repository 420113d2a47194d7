r"""Partitioned graph simulation on Ray: regions spread over worker processes (or
machines), spike for spike equal to one process.

``graph.run(T, ..., backend="ray", partition=...)`` assigns the regions to workers
(a dict region -> worker index, or a number of workers for :func:`auto_partition`),
starts one Ray actor per worker (:mod:`.worker`) holding a sub-graph of its regions
and the projections into them (:mod:`.plan`), and steps them in windows of
:math:`D` steps, :math:`D` the smallest :math:`1 + \text{delay}` of a projection
between workers (:mod:`.partition`): conservative synchronisation, as NEST does it.
Between windows each worker sends the outputs its regions emitted (spike indices, or
dense values; :mod:`.exchange`) to the workers that need them, through Ray's object
store, and each receiver adds them into its ring of pending inputs at the step they
arrive. Every worker runs the compiled engine where it supports the worker's part,
else the torch stepper (no gradients, CPU).

Seeds travel with the regions and the initial state is drawn on the whole graph, so
results do not depend on the partition. Same-step edges and projections with
plasticity rules, traces or a synapse model cannot cross workers (they are refused by
name). Observers (recorders, counters) stay in the calling process and get one chunk
per window; the run result's ``distributed`` field
(:class:`~aura_snn.graph.distributed.runner.DistributedReport`) gives the window,
exchange count and bytes. With no ``address`` the run uses this process's Ray session
or starts (and stops) a local one; ``address="ray://host:port"`` joins a cluster.

============================ =================================================
:mod:`.partition`            checked assignments, cut edges, the window D
:mod:`.autopart`             :func:`auto_partition` (balance, then KL/FM passes)
:mod:`.plan`                 per-worker sub-graphs, state split and merge
:mod:`.exchange`             messages, injection into the ring, event counts
:mod:`.worker`               the actor (:class:`RegionWorker`) and its relay
:mod:`.runner`               the calling side (:func:`prepare`, :class:`Job`)
:mod:`.cluster`              connecting to Ray, the pool of actors
:mod:`.stream`               the windows, snapshots and recovery of a lost worker
:mod:`.snapshot`             snapshot folders: parts, manifest, latest, prune
:mod:`.checkpoint`           a worker's part of a snapshot, restoring the state
:mod:`.observed`             what the observers saw, replayed on resume
============================ =================================================
"""

from __future__ import annotations

from .autopart import auto_partition
from .cluster import release_workers
from .partition import Partition, make_partition
from .runner import DistributedReport, Job, prepare
from .snapshot import Snapshot, latest_snapshot, read_part, save_snapshot
from .stream import Recovery, SnapshotInfo

__all__ = ["DistributedReport", "Job", "Partition", "Recovery", "Snapshot", "SnapshotInfo",
           "auto_partition", "latest_snapshot", "make_partition", "prepare", "read_part",
           "release_workers", "save_snapshot"]
