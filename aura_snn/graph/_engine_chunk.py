"""What a chunk of compiled-engine steps produced, as the observers' :class:`Chunk`.

:func:`chunk` turns the kernel's spike events (step, batch element, output index) and
probe rows of one call into a :class:`~aura_snn.graph.observer.Chunk` (spikes per
region, probe values, synaptic event counts) and fills the recorded outputs;
:func:`select` takes one region's events out of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .observer import Chunk, Probe, count_events

if TYPE_CHECKING:
    from .graph import Graph

Events = tuple[np.ndarray, np.ndarray, np.ndarray]


def sorted_events(t: np.ndarray, b: np.ndarray, i: np.ndarray) -> bool:
    """Whether events are already ordered by ``(t, b, i)`` (an O(n) check that saves the
    O(n log n) sort, most of what observing spikes cost the engine)."""
    if t.size < 2:
        return True
    dt, db, di = np.diff(t), np.diff(b), np.diff(i)
    return bool(np.all((dt > 0) | ((dt == 0) & ((db > 0) | ((db == 0) & (di > 0))))))


def merge(ev_all: list[Events]) -> Events:
    """The events of all batch elements as one ``(t, b, i)`` sorted by step, batch
    element, output index (int64)."""
    if not ev_all:
        z = np.zeros(0, np.int64)
        return z, z, z
    t = np.concatenate([e[0] for e in ev_all])
    b = np.concatenate([e[1] for e in ev_all])
    i = np.concatenate([e[2] for e in ev_all])
    if not sorted_events(t, b, i):   # one batch element: usually in order already
        order = np.lexsort((i, b, t))
        t, b, i = t[order], b[order], i[order]
    return t, b.astype(np.int64), i.astype(np.int64)


def select(ev: Events, off: int, size: int) -> Events:
    """The events of the outputs ``off .. off + size - 1`` (one region), indices local."""
    t, b, i = ev
    sel = (i >= off) & (i < off + size)
    return t[sel], b[sel], i[sel] - off


def chunk(graph: Graph, out_off: Mapping[str, int], plan: list[Any], probes: list[Probe],
          want: set[str], ev: Events, rows_all: list[np.ndarray], t_start: int, n: int,
          every: int, batch: int, fed_np: Mapping[str, np.ndarray], done: int,
          outputs: dict[str, torch.Tensor], degrees: Mapping[str, np.ndarray] | None
          ) -> Chunk:
    """What ``n`` steps from ``t_start`` produced (``ev``: :func:`merge`'s events, output
    indices of the layout ``out_off``), as the observers' :class:`Chunk`; also fills the
    recorded outputs (row ``done`` is step ``t_start``)."""
    out = Chunk(t_start, n, batch, graph.dt)
    for name in want:
        out.spikes[name] = select(ev, out_off[name], graph.regions[name].size)
    for name, y in outputs.items():
        if name in fed_np:
            y[done:done + n] = torch.from_numpy(fed_np[name][done:done + n]).to(y.dtype)
            continue
        t, b, i = select(ev, out_off[name], graph.regions[name].size)
        y[torch.from_numpy(t - t_start + done), torch.from_numpy(b), torch.from_numpy(i)] = 1.0
    steps_t = np.arange(t_start, t_start + n)
    row_t = steps_t[steps_t % every == 0]
    planned = set()
    for m, c0, ncol, shape in plan:
        planned.add(id(m))
        vals = np.stack([r[:, c0:c0 + ncol] for r in rows_all], axis=1)  # [rows, B, ncol]
        keep = row_t % m.every == 0
        vals = vals[keep]
        if shape is not None:
            vals = vals.reshape(vals.shape[0], batch, *shape).transpose(0, 2, 1, 3)
        out.values[m] = (row_t[keep], vals.astype(np.float64))
    for m in probes:
        if id(m) in planned:
            continue
        keep_t = steps_t[steps_t % m.every == 0]
        if m.target in graph.projections:
            w = m.select(graph.projections[m.target].effective_weight().detach().cpu().numpy())
            out.values[m] = (keep_t, np.broadcast_to(w, (keep_t.size, *w.shape)).copy())
        else:  # output of an input region
            x = fed_np[m.target][done:done + n][(steps_t % m.every) == 0]
            out.values[m] = (keep_t, m.select(x).astype(np.float64))
    if degrees is not None:
        out.events = count_events(graph, out.spikes, degrees, t_start, n)
    return out


__all__ = ["Events", "chunk", "merge", "select", "sorted_events"]
