r"""One worker of a partitioned run: a sub-graph stepped window by window.

:class:`RegionWorker` is a plain class; :mod:`.runner` makes it a Ray actor
(``ray.remote(RegionWorker)``), so this module imports no Ray. Per run:

1. :meth:`~RegionWorker.load` takes the sub-graph (:mod:`.plan`), its part of the
   state, its fed inputs and modulators, and which local backend to use;
2. :meth:`~RegionWorker.run_window` (once per window, in order) injects the messages
   of the previous window (:func:`.exchange.inject`), runs ``n`` steps with
   :meth:`aura_snn.graph.Graph.run` (the compiled engine, with the layout built once in
   ``load``, :func:`aura_snn.graph.engine.build_layout`; or the torch stepper), and
   returns a small report (recorded outputs, what the observers asked for, bytes sent)
   followed by one message per destination worker (:func:`.exchange.encode`);
3. :meth:`~RegionWorker.finish` injects the last window's messages (inputs already on
   their way when the run ends) and returns the final state and plastic weights.

Between two windows, :meth:`~RegionWorker.checkpoint` injects the messages of the
window just ended and writes the worker's part of a snapshot (:mod:`.checkpoint`);
the next window then gets no messages. :meth:`~RegionWorker.pid` gives the actor's
process id (tests kill it to check the recovery).

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
        if threads is not None:
            torch.set_num_threads(threads)
        self.sub: Any = None

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
        self.layout: Any = None       # the engine's, built once (windows are short) ...
        if backend == "engine":       # ... here, so the run's setup time includes it
            from ..engine import build_layout

            self.layout = build_layout(sub)
        return backend

    def _receive(self, payloads: tuple[dict[str, exchange.Entry], ...], steps: int) -> None:
        received: dict[str, torch.Tensor] = {}
        for msg in payloads:
            for name, entry in msg.items():
                received[name] = exchange.decode(
                    entry, (steps, self.st.batch, self.sub.regions[name].size),
                    self.sub.dtype)
        if received:
            exchange.inject(self.sub, self.st, self.plan.cross_in, received, self.t_first)

    def run_window(self, n: int, prev: int, *payloads: dict[str, exchange.Entry]
                   ) -> Any:
        """Inject the messages of the previous window (``prev`` steps), run ``n``
        steps; returns ``(report, message to each destination ...)``, or the report
        alone for a worker that sends nothing."""
        self._receive(payloads, prev)
        self.t_first = self.st.t
        batch, sub, k0 = self.st.batch, self.sub, self.done
        fed = {name: _window(x, k0, n, name in self.static) for name, x in self.inputs.items()}
        for g in self.plan.ghosts:
            fed[g] = torch.zeros(n, batch, sub.regions[g].size, dtype=sub.dtype)
        mods = {k: v[k0:k0 + n] for k, v in self.modulators.items()}
        modulation = {r: {k: v[k0:k0 + n] for k, v in m.items()}
                      for r, m in self.modulation.items()}
        want = list(dict.fromkeys([*self.record, *self.plan.sent_regions]))
        with torch.no_grad():
            res = sub.run(n, fed, record=want, backend=self.backend, state=self.st,
                          modulators=mods or None, modulation=modulation or None,
                          layout=self.layout)
        self.st = res.state
        self.done += n
        chunk = self.relay.take()
        chunk["events"].update(exchange.outgoing_events(
            self.out_degrees, {r: res.outputs[r] for r in self.plan.sent_regions},
            self.t_first, n) if self.relay.count_events else {})
        messages, sent = [], {}
        for dst in self.plan.destinations:
            msg = {name: exchange.encode(res.outputs[name]) for name in self.plan.sends[dst]}
            sent[dst] = exchange.payload_bytes(msg)
            messages.append(msg)
        report = {"outputs": {r: res.outputs[r] for r in self.record}, "chunk": chunk,
                  "bytes": sent}
        return (report, *messages) if messages else report   # Ray: one return value

    def pid(self) -> int:
        """The process id of this actor."""
        import os

        return os.getpid()

    def checkpoint(self, prev: int, folder: str, *payloads: dict[str, exchange.Entry]
                   ) -> dict[str, Any]:
        """Inject the messages of the window just ended (``prev`` steps) and write this
        worker's part of the snapshot in ``folder``; returns its manifest entry."""
        import time

        self._receive(payloads, prev)
        tic = time.perf_counter()
        entry = write_part(folder, part_name(self.plan.index),
                           worker_tensors(self.sub, self.st))
        return {**entry, "seconds": time.perf_counter() - tic}

    def finish(self, prev: int, folder: str | None, *payloads: dict[str, exchange.Entry]
               ) -> tuple[GraphState, dict[str, dict[str, torch.Tensor]], dict | None]:
        """Inject the last window's messages; return the final state, the buffers of
        projections with plasticity rules (their plastic weights) and, with a
        ``folder``, the manifest entry of this worker's part of the final snapshot."""
        entry = self.checkpoint(prev, folder, *payloads) if folder is not None else None
        if folder is None:
            self._receive(payloads, prev)
        st = self.st
        plastic = {p.name: {k: v for k, v in p.state_dict().items()}
                   for p in self.sub.projections.values() if p.rules}
        self.sub = self.st = self.inputs = self.layout = None
        return st, plastic, entry


__all__ = ["RegionWorker", "Relay"]
