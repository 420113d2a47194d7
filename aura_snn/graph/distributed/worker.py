r"""One worker of a partitioned run: a sub-graph stepped window by window.

:class:`RegionWorker` is a plain class; :mod:`.cluster` makes it a Ray actor with a
second concurrency group, ``exchange``, whose one thread takes in messages while the
default one runs windows (so this module imports no Ray). Per run:

1. :meth:`~RegionWorker.load_shipped` takes the sub-graph (:mod:`.plan`), its part of
   the state, its fed inputs and modulators and its local backend in one
   :class:`.transport.Shipped` (:meth:`~RegionWorker.load`), and the run's actors;
2. :meth:`~RegionWorker.run_windows` runs a batch of consecutive windows. Before each
   window it waits for the messages its source workers sent after the window before
   (:meth:`~RegionWorker.receive` puts them in its inbox) and takes them in; after it,
   it sends each destination worker its message by calling that actor's
   :meth:`~RegionWorker.receive` itself, so messages go worker to worker and the
   calling process only submits batches and reads one small report per window
   (recorded outputs, what the observers asked for, bytes sent, busy time).
   On the compiled engine the run stays loaded from ``load`` to ``finish``
   (:class:`aura_snn.graph.engine.EngineRun`, the ghosts silent): received spikes are
   delivered event by event into its ring, its spike events are sent as they are
   (:func:`.exchange.events`, :func:`.exchange.encode_events`), and a
   :class:`~aura_snn.graph.state.GraphState` is made only for a snapshot or the end.
   On the torch stepper each window is a :meth:`aura_snn.graph.Graph.run` from the
   worker's state, the messages injected into its pending inputs
   (:func:`.exchange.inject`) and its outputs encoded (:func:`.exchange.encode`);
3. :meth:`~RegionWorker.finish` takes in the last window's messages (inputs already on
   their way when the run ends) and returns the final state and plastic weights.

Between two batches, :meth:`~RegionWorker.checkpoint` takes in the messages of the
window just ended and writes the worker's part of a snapshot (:mod:`.checkpoint`).
:meth:`~RegionWorker.pid` gives the actor's process id (tests kill it to check the
recovery). A worker waiting for a message from a worker that died waits until the
calling process, which sees the death, kills it.

Observers live in the calling process: a :class:`Relay` on the sub-graph collects
the spikes, probe rows and synaptic event counts they need, one chunk per window.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ..observer import Chunk, Observer, Probe
from ..state import GraphState
from . import exchange
from .checkpoint import worker_tensors
from .plan import WorkerPlan
from .snapshot import part_name, write_part
from .transport import Shipped


class Relay(Observer):
    """Collects, for the calling process's observers, the spikes of ``spike_regions``,
    the rows of ``probes`` and (``count_events``) the synaptic events of the worker's
    projections ``local`` (those whose pre region is its own; the others are counted
    by the worker that sends their input). :meth:`take` merges them per window."""

    def __init__(self, spike_regions: frozenset[str], probes: tuple[Probe, ...],
                 count_events: bool, local: frozenset[str]) -> None:
        self.spike_regions = spike_regions
        self._probes = probes
        self.count_events = count_events
        self.local = local
        self.chunks: list[Chunk] = []

    @property
    def probes(self) -> tuple[Probe, ...]:
        return self._probes

    def observe(self, chunk: Chunk) -> None:
        self.chunks.append(chunk)

    def take(self) -> dict[str, Any]:
        """The collected chunks as one: ``spikes`` ``{region: (t, b, i)}``, ``values``
        (one ``(t_rows, rows)`` per probe, in order) and ``events`` ``{projection:
        [steps]}``; then forget them."""
        chunks, self.chunks = self.chunks, []
        spikes = {}
        for name in self.spike_regions:
            parts = [c.spikes[name] for c in chunks if name in c.spikes]
            spikes[name] = tuple(np.concatenate([p[k] for p in parts]) if parts
                                 else np.zeros(0, np.int64) for k in range(3))
        values = []
        for pr in self._probes:
            rows = [c.values[pr] for c in chunks if c.values[pr][0].size]
            if rows:
                values.append((np.concatenate([r[0] for r in rows]),
                               np.concatenate([r[1] for r in rows])))
            else:
                values.append((np.zeros(0, np.int64), np.zeros((0,), np.float64)))
        events = {}
        if self.count_events:
            names = {k for c in chunks for k in c.events if k in self.local}
            for k in names:
                events[k] = np.concatenate([c.events[k] for c in chunks])
        return {"spikes": spikes, "values": values, "events": events}


def _window(x: torch.Tensor, start: int, n: int, static: bool) -> torch.Tensor:
    return x if static else x[start:start + n]


class RegionWorker:
    """A Ray actor running one part of a graph (module docstring)."""

    def __init__(self, threads: int | None = None) -> None:
        import threading

        if threads is not None:
            torch.set_num_threads(threads)
        self.sub: Any = None
        self.waited = 0.0             # seconds this window waited for its messages
        self.inbox: dict[tuple[int, int], dict[str, exchange.Entry]] = {}
        self.arrived = threading.Condition()

    def load(self, sub: Any, plan: WorkerPlan, state: GraphState, backend: str,
             inputs: Mapping[str, torch.Tensor], static: frozenset[str],
             modulators: Mapping[str, torch.Tensor],
             modulation: Mapping[str, Mapping[str, torch.Tensor]], record: list[str],
             out_degrees: Mapping[str, tuple[str, np.ndarray]]) -> str:
        """Take the part of a run (module docstring); returns the backend's name."""
        self.sub, self.plan, self.st, self.backend = sub, plan, state, backend
        self.inputs, self.static = dict(inputs), static
        self.modulators, self.modulation = dict(modulators), dict(modulation)
        self.record = [n for n in plan.regions if n in record]
        self.out_degrees = dict(out_degrees)
        self.relay = next(o for o in sub.observers if isinstance(o, Relay))
        self.t_first = state.t        # first step of the current window
        self.done = 0                 # steps run in this run
        self.owed: tuple[int, int] | None = None   # (start, steps) of a window whose
        self.peers: dict[int, Any] = {}            # inputs are still to be taken in
        with self.arrived:
            self.inbox.clear()
        self.engine: Any = None       # the engine's run, loaded once (windows are short) ...
        if backend == "engine":       # ... here, so the run's setup time includes it
            from ..engine import EngineRun

            self.engine = EngineRun(sub, state, silent=frozenset(plan.ghosts))
        return backend

    def load_shipped(self, part: Shipped, peers: Mapping[int, Any]) -> str:
        """:meth:`load` of the arguments in ``part`` (:mod:`.transport`: the sub-graph's
        large tensors travel as arrays through Ray's object store); ``peers`` are the
        run's actors by worker index, to which this one sends its messages."""
        backend = self.load(*part.load())
        self.peers = dict(peers)
        return backend

    def receive(self, start: int, source: int, message: dict[str, exchange.Entry]) -> None:
        """Keep worker ``source``'s message of its window starting at step ``start``
        (called by that worker, in this actor's ``exchange`` concurrency group, while
        this one runs its windows)."""
        with self.arrived:
            self.inbox[(start, source)] = message
            self.arrived.notify_all()

    def _take_in(self) -> None:
        """Wait for the messages of the window last run (if not yet taken in) from
        every source worker and add them to the pending inputs."""
        if self.owed is None:
            return
        import time

        start, steps = self.owed
        keys = [(start, s) for s in self.plan.sources]
        tic = time.perf_counter()
        with self.arrived:
            self.arrived.wait_for(lambda: all(k in self.inbox for k in keys))
            payloads = tuple(self.inbox.pop(k) for k in keys)
        self.waited += time.perf_counter() - tic
        self._receive(payloads, start, steps)
        self.owed = None

    def run_windows(self, steps: list[int]) -> list[Any]:
        """Run consecutive windows of ``steps[k]`` steps; before each, take in what the
        source workers sent after the one before; after each, send each destination
        worker its message (:meth:`receive`, directly: the calling process is not on
        the path). Returns one report per window (:meth:`run_window`)."""
        reports = []
        for n in steps:
            report, messages = self.run_window(n)
            for dst, msg in zip(self.plan.destinations, messages, strict=True):
                self.peers[dst].receive.options(concurrency_group="exchange").remote(
                    self.t_first, self.plan.index, msg)
            self.owed = (self.t_first, n)
            reports.append(report)
        return reports

    def _shape(self, name: str, steps: int) -> tuple[int, int, int]:
        return steps, self.st.batch, self.sub.regions[name].size

    def _receive(self, payloads: tuple[dict[str, exchange.Entry], ...], start: int,
                 steps: int) -> None:
        """Add the messages of the sources' window of ``steps`` steps from ``start``."""
        if self.engine is not None:
            self.engine.deliver({name: exchange.events(entry, start, self._shape(name, steps))
                                 for msg in payloads for name, entry in msg.items()})
            return
        received: dict[str, torch.Tensor] = {}
        for msg in payloads:
            for name, entry in msg.items():
                received[name] = exchange.decode(entry, self._shape(name, steps),
                                                 self.sub.dtype)
        if received:
            exchange.inject(self.sub, self.st, self.plan.cross_in, received, start)

    def _state(self) -> GraphState:
        return self.engine.state() if self.engine is not None else self.st

    def run_window(self, n: int) -> tuple[dict[str, Any], list[dict[str, exchange.Entry]]]:
        """Take in the messages of the previous window, run ``n`` steps; returns the
        report and the message to each destination (``plan.destinations`` order)."""
        import time

        tic, self.waited = time.perf_counter(), 0.0
        self._take_in()
        self.t_first = self.engine.t if self.engine is not None else self.st.t
        batch, sub, k0 = self.st.batch, self.sub, self.done
        fed = {name: _window(x, k0, n, name in self.static) for name, x in self.inputs.items()}
        sent_regions = self.plan.sent_regions
        if self.engine is not None:
            spiking = tuple(r for r in sent_regions if r not in fed)
            with torch.no_grad():
                outputs, ev = self.engine.advance(n, fed, self.record, events=spiking)
            entries = {r: exchange.encode_events(ev[r], self.t_first, self._shape(r, n))
                       for r in spiking}
            entries.update({r: exchange.encode(fed[r]) for r in sent_regions if r in fed})
            ev.update({r: exchange.nonzero_events(fed[r], self.t_first)
                       for r in sent_regions if r in fed})
        else:
            for g in self.plan.ghosts:
                fed[g] = torch.zeros(n, batch, sub.regions[g].size, dtype=sub.dtype)
            mods = {k: v[k0:k0 + n] for k, v in self.modulators.items()}
            modulation = {r: {k: v[k0:k0 + n] for k, v in m.items()}
                          for r, m in self.modulation.items()}
            want = list(dict.fromkeys([*self.record, *sent_regions]))
            with torch.no_grad():
                res = sub.run(n, fed, record=want, backend=self.backend, state=self.st,
                              modulators=mods or None, modulation=modulation or None)
            self.st, outputs = res.state, res.outputs
            entries = {r: exchange.encode(outputs[r]) for r in sent_regions}
            ev = {r: exchange.nonzero_events(outputs[r], self.t_first)
                  for r in sent_regions} if self.relay.count_events else {}
        self.done += n
        chunk = self.relay.take()
        chunk["events"].update(exchange.outgoing_events(self.out_degrees, ev, self.t_first, n)
                               if self.relay.count_events else {})
        messages, sent = [], {}
        for dst in self.plan.destinations:
            msg = {name: entries[name] for name in self.plan.sends[dst]}
            sent[dst] = exchange.payload_bytes(msg)
            messages.append(msg)
        report = {"outputs": {r: outputs[r] for r in self.record}, "chunk": chunk,
                  "bytes": sent, "busy": time.perf_counter() - tic - self.waited}
        return report, messages

    def pid(self) -> int:
        """The process id of this actor."""
        import os

        return os.getpid()

    def checkpoint(self, folder: str) -> dict[str, Any]:
        """Take in the messages of the window just ended and write this worker's part of
        the snapshot in ``folder``; returns its manifest entry."""
        import time

        self._take_in()
        tic = time.perf_counter()
        entry = write_part(folder, part_name(self.plan.index),
                           worker_tensors(self.sub, self._state()))
        return {**entry, "seconds": time.perf_counter() - tic}

    def finish(self, folder: str | None
               ) -> tuple[GraphState, dict[str, dict[str, torch.Tensor]], dict | None]:
        """Take in the last window's messages; return the final state, the buffers of
        projections with plasticity rules (their plastic weights) and, with a
        ``folder``, the manifest entry of this worker's part of the final snapshot."""
        entry = self.checkpoint(folder) if folder is not None else None
        self._take_in()
        st = self._state()
        plastic = {p.name: {k: v for k, v in p.state_dict().items()}
                   for p in self.sub.projections.values() if p.rules}
        self.sub = self.st = self.inputs = self.engine = None
        self.peers = {}
        return st, plastic, entry


__all__ = ["RegionWorker", "Relay"]
