"""The brain service: one network, its input streams, its published output, its snapshots.

:class:`Brain` is a plain class; :mod:`aura_snn.serve.app` runs it as a Ray actor (one
method call at a time, so pushes are applied in the order they arrive).

Clock. A pushed array of shape ``[T, size]`` (or ``[size]``: one step) appends ``T``
steps to that input region's stream. Whenever every input region has pending steps, the
brain runs ``k = min(pending)`` steps (in chunks of at most ``chunk``) with
:meth:`aura_snn.graph.Graph.run` from the state it kept, so the network's time is the
input's time: pushing ``A`` then ``B`` gives exactly the run of ``A`` followed by ``B``
whatever the pauses between pushes, and across a restart from a snapshot.

Output. Every output region's output of every step is kept in a buffer of the last
``max_buffer`` steps; :meth:`Brain.read` returns the steps ``[since, now)`` of one region
as spike events (step, neuron) and per-neuron rates (Hz), or values for a region whose
output is not 0/1. Readers keep their own cursor, so several services can read one
region.

Snapshot. :meth:`Brain.snapshot` writes the graph state and weights (plastic weights and
rule traces included), the input still pending and the output buffer to the ``--state``
folder (:mod:`aura_snn.serve.state_dir`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputValueError, ParameterError, ShapeError


class Brain:
    """A served network (module docstring).

    Args:
        network_file: the network file (:mod:`aura_snn.serve.network`).
        state_dir: the ``--state`` folder (resumed from when it holds a snapshot).
        max_buffer: steps of output kept per output region (>= 1).
        chunk: steps per :meth:`~aura_snn.graph.Graph.run` call at most (>= 1).
    """

    def __init__(self, network_file: str, state_dir: str, *, max_buffer: int = 20000,
                 chunk: int = 1000) -> None:
        import torch

        from .network import load_network
        from .state_dir import check_network, load_snapshot

        for name, v in (("max_buffer", max_buffer), ("chunk", chunk)):
            if not isinstance(v, int) or v < 1:
                raise ParameterError(f"{name} must be an integer >= 1, got {v!r}")
        self.net = load_network(network_file)
        self.state_dir = Path(state_dir)
        self.max_buffer, self.chunk = max_buffer, chunk
        g, dt = self.net.graph, self.net.graph.dtype
        self.pending = {r: torch.zeros(0, n, dtype=dt) for r, n in self.net.inputs.items()}
        self.out = {r: torch.zeros(0, n, dtype=dt) for r, n in self.net.outputs.items()}
        self.step = self.buffer_start = 0
        man = check_network(self.state_dir, self.net.path, self.net.sha256)
        if man is not None:
            state, streams = load_snapshot(self.state_dir, man, g)
            self._restore(state, streams)
        self.saved_step: int | None = self.step if man is not None else None
        self.dirty = man is None

    def _restore(self, state: Any, streams: dict[str, Any]) -> None:
        from ..errors import CorruptFileError

        clock = streams.get("clock")
        if clock is None or tuple(clock.shape) != (2,):
            raise CorruptFileError(f"{self.state_dir}: streams have no clock [step, start]")
        for kind, table in (("pending", self.pending), ("output", self.out)):
            for r, empty in table.items():
                t = streams.get(f"{kind}.{r}")
                if t is None or t.dim() != 2 or t.shape[1] != empty.shape[1]:
                    raise CorruptFileError(f"{self.state_dir}: snapshot has no valid "
                                           f"{kind}.{r} of width {empty.shape[1]}")
                table[r] = t.to(empty.dtype)
        self.step, self.buffer_start = int(clock[0]), int(clock[1])
        self.net.graph.state = state

    def describe(self) -> dict[str, Any]:
        """Inputs and outputs (name -> size), ``dt`` (s), the step reached, the file."""
        return {"network": str(self.net.path), "sha256": self.net.sha256,
                "inputs": dict(self.net.inputs), "outputs": dict(self.net.outputs),
                "dt": self.net.dt, "step": self.step,
                "pending": {r: int(p.shape[0]) for r, p in self.pending.items()},
                "buffer_start": self.buffer_start, "saved_step": self.saved_step,
                "state_dir": str(self.state_dir)}

    def push(self, region: str, data: Any) -> dict[str, int]:
        """Append ``data`` (``[T, size]`` or ``[size]``, finite numbers) to ``region``'s
        stream and run every step all inputs now have; returns ``{"step", "ran"}``."""
        import torch

        if region not in self.net.inputs:
            raise ParameterError(f"region {region!r} is not an input region of "
                                 f"{self.net.path.name}; input regions are "
                                 f"{sorted(self.net.inputs)}")
        size = self.net.inputs[region]
        try:
            arr = np.asarray(data, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputValueError(f"push to {region!r}: data must be numbers, an array of "
                                  f"shape [T, {size}]") from None
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != size or arr.shape[0] < 1:
            raise ShapeError(f"push to {region!r}: data must have shape [T, {size}] or "
                             f"[{size}] (T >= 1), got {tuple(np.shape(data))}")
        if not np.isfinite(arr).all():
            raise InputValueError(f"push to {region!r}: data holds NaN or infinite values")
        new = torch.as_tensor(arr, dtype=self.pending[region].dtype)
        self.pending[region] = torch.cat([self.pending[region], new])
        self.dirty = True
        return {"step": self.step, "ran": self._advance()}

    def _advance(self) -> int:
        import torch

        ran = 0
        while True:
            k = min(min(int(p.shape[0]) for p in self.pending.values()), self.chunk)
            if k == 0:
                return ran
            feed = {r: p[:k, None, :] for r, p in self.pending.items()}
            res = self.net.graph.run(k, feed, record=list(self.out),
                                     backend=self.net.backend)
            for r in self.pending:
                self.pending[r] = self.pending[r][k:].clone()
            for r, y in res.outputs.items():
                self.out[r] = torch.cat([self.out[r], y[:, 0, :].detach().cpu()])
            self.step += k
            ran += k
            drop = self.step - self.buffer_start - self.max_buffer
            if drop > 0:
                for r in self.out:
                    self.out[r] = self.out[r][drop:].clone()
                self.buffer_start += drop

    def read(self, region: str, since: int = 0) -> dict[str, Any]:
        """Steps ``[since, now)`` of ``region``'s output (module docstring)."""
        if region not in self.out:
            kind = "an input region" if region in self.net.inputs else "not a region"
            raise ParameterError(f"region {region!r} is {kind} of {self.net.path.name}; "
                                 f"output regions are {sorted(self.out)}")
        if not isinstance(since, int) or since < 0 or since > self.step:
            raise ParameterError(f"since must be a step in [0, {self.step}], got {since!r}")
        if since < self.buffer_start:
            raise ParameterError(f"since={since}: steps before {self.buffer_start} have "
                                 f"left the output buffer (max_buffer={self.max_buffer})")
        y = self.out[region][since - self.buffer_start:].numpy()
        k = int(y.shape[0])
        body: dict[str, Any] = {"region": region, "start": since, "stop": self.step,
                                "size": int(y.shape[1]), "dt": self.net.dt}
        if np.isin(y, (0.0, 1.0)).all():
            t, i = np.nonzero(y)
            body["events"] = {"t": (t + since).tolist(), "i": i.tolist()}
            rate = y.sum(0) / (k * self.net.dt) if k else np.zeros(y.shape[1])
            body["rate_hz"] = rate.tolist()
        else:
            body["values"] = y.tolist()
        return body

    def snapshot(self, force: bool = False) -> dict[str, Any]:
        """Save a complete snapshot when anything changed since the last one (or
        ``force``); returns ``{"saved": bool, "step", "path"}``."""
        import torch

        from .state_dir import save_snapshot

        if not force and not self.dirty:
            return {"saved": False, "step": self.step, "path": None}
        g = self.net.graph
        if g.state is None:
            g.state = g.initial_state(1)
        streams = {f"pending.{r}": p for r, p in self.pending.items()}
        streams.update({f"output.{r}": y for r, y in self.out.items()})
        streams["clock"] = torch.tensor([self.step, self.buffer_start], dtype=torch.int64)
        path = save_snapshot(self.state_dir, g, streams, self.step, self.net.path,
                             self.net.sha256)
        self.saved_step, self.dirty = self.step, False
        return {"saved": True, "step": self.step, "path": str(path)}


__all__ = ["Brain"]
