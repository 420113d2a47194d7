r"""What the observers of a checkpointed run have seen, kept so a resumed run's monitors
hold the whole run.

While a run writes snapshots, the calling process keeps every chunk its observers got
(:class:`History`: spikes of the regions they asked for, probe rows keyed by
:func:`probe_key`, synaptic event counts), from the start of the first run of the
chain (a resumed run carries its snapshot's history on). Each snapshot stores it as
one more part, ``observed.safetensors`` (written by the caller, hashed in the manifest
like the workers' parts), with its index (regions, probe keys, projections, first
step) in the manifest's ``meta["observed"]``. A run resumed from the snapshot replays it
to its observers as one chunk before its first window (:meth:`History.replay`), so a
monitor attached to the resumed run ends with what an uninterrupted run's holds; what
the snapshot lacks (a monitor the first run did not have) is named in a warning. The
part grows with the run: it holds what in-memory monitors would hold.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..observer import Chunk, Observer, Probe
from .snapshot import Snapshot, read_part, write_part

PART = "observed.safetensors"


def probe_key(p: Probe) -> str:
    """A probe's identity across processes: target, variable, neurons, every (JSON)."""
    neurons = None if p.neurons is None else np.asarray(p.neurons).astype(int).tolist()
    return json.dumps([p.target, p.variable, neurons, int(p.every)])


def _cat(parts: list[np.ndarray], dtype: type = np.int64) -> np.ndarray:
    if not parts:
        return np.zeros(0, dtype)
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


@dataclass
class History:
    """The chunks seen since step ``start`` (module docstring)."""

    start: int
    spikes: dict[str, list[list[np.ndarray]]] = field(default_factory=dict)
    values: dict[str, list[list[np.ndarray]]] = field(default_factory=dict)
    events: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, chunk: Chunk) -> None:
        """Keep one chunk."""
        for name, tbi in chunk.spikes.items():
            self.spikes.setdefault(name, [[], [], []])
            for k in range(3):
                self.spikes[name][k].append(np.asarray(tbi[k]))
        for probe, (t, v) in chunk.values.items():
            rows = self.values.setdefault(probe_key(probe), [[], []])
            if np.asarray(t).size:         # a window without rows sends a 1-d stand-in
                rows[0].append(np.asarray(t))
                rows[1].append(np.asarray(v))
        for name, e in chunk.events.items():
            self.events.setdefault(name, []).append(np.asarray(e))

    def write(self, folder: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """Write the part into a snapshot ``folder``; returns its manifest entry and
        its index for ``meta["observed"]``."""
        tensors: dict[str, torch.Tensor] = {}
        regions, probes, events = sorted(self.spikes), sorted(self.values), sorted(self.events)
        for i, name in enumerate(regions):
            for k, f in enumerate("tbi"):
                tensors[f"s{i}.{f}"] = torch.from_numpy(_cat(self.spikes[name][k]))
        for i, key in enumerate(probes):
            tensors[f"v{i}.t"] = torch.from_numpy(_cat(self.values[key][0]))
            tensors[f"v{i}.v"] = torch.from_numpy(np.ascontiguousarray(
                _cat(self.values[key][1], np.float64)))
        for i, name in enumerate(events):
            tensors[f"e{i}"] = torch.from_numpy(_cat(self.events[name]))
        index = {"start": self.start, "regions": regions, "probes": probes, "events": events}
        return write_part(folder, PART, tensors), index

    @classmethod
    def read(cls, snap: Snapshot) -> History:
        """The history stored in ``snap`` (empty from ``snap.step`` when it has none)."""
        index = snap.meta.get("observed")
        if index is None:
            return cls(snap.step)
        tensors = read_part(snap, PART)
        h = cls(int(index["start"]))
        for i, name in enumerate(index["regions"]):
            h.spikes[name] = [[tensors[f"s{i}.{f}"].numpy()] for f in "tbi"]
        for i, key in enumerate(index["probes"]):
            h.values[key] = [[tensors[f"v{i}.t"].numpy()], [tensors[f"v{i}.v"].numpy()]]
        for i, name in enumerate(index["events"]):
            h.events[name] = [tensors[f"e{i}"].numpy()]
        return h

    def replay(self, observers: list[Observer], step: int, batch: int, dt: float) -> None:
        """Feed steps ``start .. step - 1`` to ``observers`` as one chunk; warn about
        what they want that the history lacks."""
        if step <= self.start or not observers:
            return
        chunk = Chunk(self.start, step - self.start, batch, dt)
        missing = []
        for o in observers:
            wanted = self.spikes if o.spike_regions is None else o.spike_regions
            for name in wanted:
                if name in self.spikes:
                    chunk.spikes[name] = tuple(_cat(a) for a in self.spikes[name])
                elif name not in missing:
                    missing.append(name)
            for p in o.probes:
                key = probe_key(p)
                if key in self.values:
                    t, v = self.values[key]
                    chunk.values[p] = (_cat(t), _cat(v, np.float64))
                else:
                    chunk.values[p] = (np.zeros(0, np.int64), np.zeros((0,), np.float64))
                    missing.append(f"{p.target}.{p.variable}")
        chunk.events.update({k: _cat(v) for k, v in self.events.items()})
        if missing:
            warnings.warn(f"resume: the snapshot holds no record of {missing} before step "
                          f"{step}; those monitors start at step {step}", RuntimeWarning,
                          stacklevel=4)
        for o in observers:
            o.observe(chunk)


__all__ = ["PART", "History", "probe_key"]
