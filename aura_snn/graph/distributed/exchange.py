r"""What workers send each other, and how it enters the receiving worker's ring.

After a window of :math:`n \le D` steps starting at step :math:`t_0`, a worker sends
each destination the outputs :math:`y_r[t_0 .. t_0 + n - 1]` (``[n, B, size]``) of the
regions that destination needs, one message per destination and window:

* ``"spikes"``: when every nonzero output of the window is exactly 1 (a spiking region),
  the flat indices :math:`(k B + b)\,\text{size} + i` of the spikes, ``int32`` (``int64``
  when :math:`n B\,\text{size} \ge 2^{31}`): 4 bytes per spike, nothing for silence;
* ``"dense"``: otherwise (rates, ANN activations, real-valued inputs) the whole
  ``[n, B, size]`` array in the graph's dtype.

:func:`payload_bytes` counts the array bytes (Ray's own framing is not included).

A worker on the compiled engine keeps its run loaded between windows
(:class:`~aura_snn.graph.engine.EngineRun`): it sends the spike events its kernel
reported (:func:`encode_events`, the same message as :func:`encode` of the dense
outputs) and delivers what it receives as events too (:func:`events`, then
:meth:`~aura_snn.graph.engine.EngineRun.deliver`: for each emission step :math:`e` in
order, each output in order, the engine's own synapse loop adds :math:`w` to the input
of step :math:`e + 1 + d`). Nothing of size ``[n, B, size]`` is made on either side.

A worker on the torch stepper injects them (:func:`inject`): for each emission step
:math:`e` in order, and each projection :math:`p` from that region into the worker in
the graph's order, :meth:`~aura_snn.graph.projection.Projection.propagate_events`
(event by event: only the synapses of the neurons that fired) gives the contribution
:math:`y_\text{pre}[e] W` per delay :math:`d`, added to the pending input of step
:math:`e + 1 + d` of the receptor :math:`p` drives, ``k = e + 1 + d - t`` slots ahead of
the worker's next step :math:`t` (:math:`k \ge 0` because :math:`1 + d \ge D \ge n`).
The sums equal those of one process when the inputs of one receptor of one neuron in
one step come all from one side (local or remote) or are exact in any order (equal
or dyadic weights), as between the torch stepper and the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..observer import count_events

if TYPE_CHECKING:
    from ..graph import Graph
    from ..state import GraphState

Entry = tuple[str, np.ndarray]


def encode(y: torch.Tensor) -> Entry:
    """One region's outputs ``[n, B, size]`` of a window as a message entry."""
    flat = y.detach().reshape(-1)
    nz = flat.nonzero(as_tuple=True)[0]
    if bool((flat[nz] == 1).all()):
        idx = nz.cpu().numpy()
        return "spikes", idx.astype(np.int32 if flat.numel() < 2**31 else np.int64)
    return "dense", y.detach().cpu().numpy()


def encode_events(ev: tuple[np.ndarray, np.ndarray, np.ndarray], t0: int,
                  shape: tuple[int, int, int]) -> Entry:
    """One spiking region's window as a message entry from its spike events ``(t, b, i)``
    (steps ``t0 ..``, ordered by step, batch element, neuron), ``shape`` its window's
    ``[n, B, size]``: the entry :func:`encode` makes of the dense outputs."""
    t, b, i = ev
    _, batch, size = shape
    flat = ((t - t0) * batch + b) * size + i
    return "spikes", flat.astype(np.int32 if int(np.prod(shape)) < 2**31 else np.int64)


def events(entry: Entry, t0: int, shape: tuple[int, int, int]
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """An entry as events ``(t, b, i, value)`` ordered by step, batch element, neuron
    (a spike's value is 1; a dense entry gives its nonzero values)."""
    kind, data = entry
    _, batch, size = shape
    if kind == "dense":
        arr = np.ascontiguousarray(data).reshape(shape)
        k, b, i = np.nonzero(arr)
        return k + t0, b, i, arr[k, b, i].astype(np.float64)
    flat = data.astype(np.int64)
    return (flat // (batch * size) + t0, (flat // size) % batch, flat % size,
            np.ones(flat.size, np.float64))


def decode(entry: Entry, shape: tuple[int, int, int], dtype: torch.dtype) -> torch.Tensor:
    """Inverse of :func:`encode`: the ``[n, B, size]`` outputs."""
    kind, data = entry
    if kind == "dense":
        return torch.from_numpy(np.ascontiguousarray(data)).to(dtype)
    y = torch.zeros(int(np.prod(shape)), dtype=dtype)
    y[torch.from_numpy(data.astype(np.int64))] = 1.0
    return y.view(shape)


def payload_bytes(payload: Mapping[str, Entry]) -> int:
    """Bytes of the arrays of one message."""
    return int(sum(data.nbytes for _, data in payload.values()))


def inject(sub: Graph, st: GraphState, cross_in: list[str],
           received: Mapping[str, torch.Tensor], t_first: int) -> None:
    """Add what the ghosts emitted in steps ``t_first ..`` (``received[region]``
    ``[n, B, size]``) into the pending inputs of ``st`` (module docstring), in place."""
    projs = [sub.projections[name] for name in cross_in]
    steps = max((y.shape[0] for y in received.values()), default=0)
    for k in range(steps):
        e = t_first + k
        for p in projs:
            y = received.get(p.pre)
            if y is None or not bool(y[k].any()):
                continue
            post = sub.regions[p.post]
            r_i = post.receptors.index(p.receptor)
            ring = st.pending[p.post]
            for d, contrib in p.propagate_events(y[k].to(sub.dtype)):
                ahead = e + 1 + d - st.t
                if not 0 <= ahead < len(ring):
                    raise RuntimeError(f"projection {p.name!r}: an input of step {e + 1 + d} "
                                       f"arrived when the worker is at step {st.t}")
                slot = ring[ahead]
                slot[r_i] = contrib if slot[r_i] is None else slot[r_i] + contrib


def nonzero_events(y: torch.Tensor, t0: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(t, b, i)`` of the nonzero outputs ``y`` ``[n, B, size]`` of steps ``t0 ..``."""
    k, b, i = y.detach().nonzero(as_tuple=True)
    return ((k + t0).numpy().astype(np.int64), b.numpy().astype(np.int64),
            i.numpy().astype(np.int64))


def outgoing_events(graph_projs: Mapping[str, tuple[str, np.ndarray]],
                    spikes: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                    t0: int, steps: int) -> dict[str, np.ndarray]:
    """Synaptic events :math:`E_p[t]` (:mod:`aura_snn.graph.observer`) of the
    projections leaving a worker, ``graph_projs[p] = (pre region, out-degrees)``, from
    the window's nonzero outputs ``(t, b, i)`` of their pre regions."""
    if not graph_projs:
        return {}
    projections = {name: SimpleNamespace(name=name, pre=pre)
                   for name, (pre, _) in graph_projs.items()}
    degrees = {name: deg for name, (_, deg) in graph_projs.items()}
    return count_events(SimpleNamespace(projections=projections), spikes, degrees, t0, steps)


def shapes(graph: Graph | Any, names: list[str], steps: int, batch: int
           ) -> dict[str, tuple[int, int, int]]:
    """``[n, B, size]`` of each region's window outputs."""
    return {n: (steps, batch, graph.regions[n].size) for n in names}


__all__ = ["decode", "encode", "encode_events", "events", "inject", "nonzero_events",
           "outgoing_events", "payload_bytes", "shapes"]
