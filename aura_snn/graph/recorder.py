r"""Recorders: record what regions and projections do, in memory or streamed to disk.

A :class:`Recorder` names a target (a region or a projection of the graph) and a
variable, and the graph feeds it after every recorded step; it never changes what
the graph computes. It counts nothing itself: it stores

================= ======================================== ================================
variable          target                                   stored as
================= ======================================== ================================
``"spikes"``      a spiking region                         events ``t`` (step), ``b``
                                                           (batch), ``i`` (neuron)
``"output"``      any region (rates, dense activations)    ``values [rows, B, n_sel]``
a state field     a spiking region: ``"v"``, ``"i"``       ``values [rows, B, n_sel]``
                  (all receptors, ``[rows, R, B, n_sel]``),
                  ``"i:exc"`` (one receptor), ``"ref"``, ...
``"weights"``     a projection                             ``values [rows, n_syn_sel]``
``"pre_trace"``,  a projection with traces                 ``values [rows, B, n_sel]``
``"post_trace"``
================= ======================================== ================================

plus ``t`` (the step index of every stored row). ``every`` keeps one step in
``every`` (rows at ``t % every == 0``); ``neurons`` selects columns (neuron or
synapse indices). Units are those of the variable (V for potentials and currents).

``to=None`` keeps everything in memory. ``to="run.h5"`` (``.h5``/``.hdf5``, needs
h5py) or ``to="run.npz"`` streams rows and events to disk in chunks of ``chunk``
steps, so a long run never holds its recording in RAM. The file is written under a
temporary name and renamed when :meth:`Recorder.close` is called (the graph closes
its monitors with :meth:`~aura_snn.graph.Graph.close_monitors`); a crash leaves no
half-written file under the final name. :func:`load_recording` reads either format
back.

This module imports numpy only (torch tensors are converted by the graph).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CorruptFileError, ParameterError
from .observer import Chunk, Observer, Probe

REGION_VARIABLES = ("spikes", "output")
PROJECTION_VARIABLES = ("weights", "pre_trace", "post_trace")
FORMATS = {".h5": "hdf5", ".hdf5": "hdf5", ".npz": "npz"}


class Recording(dict):
    """What a monitor recorded: a dict of numpy arrays (``t``, and ``b``/``i`` for spikes
    or ``values``) plus ``meta`` (target, variable, every, neurons, dt)."""

    @property
    def meta(self) -> dict[str, Any]:
        return self.get("_meta", {})


def _temp_beside(path: Path) -> Path:
    """A new empty temporary file in ``path``'s folder (renamed over ``path`` on close)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


class _MemoryWriter:
    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {}

    def append(self, arrays: dict[str, np.ndarray]) -> None:
        for k, v in arrays.items():
            self.parts.setdefault(k, []).append(v)

    def close(self, meta: dict[str, Any]) -> None:
        pass

    def abort(self) -> None:
        pass

    def read(self, meta: dict[str, Any]) -> Recording:
        rec = Recording({k: np.concatenate(v) for k, v in self.parts.items()})
        rec["_meta"] = meta
        return rec


class _NPZWriter:
    """A zip of ``.npy`` members ``key/000000.npy`` appended chunk by chunk."""

    def __init__(self, path: Path) -> None:
        self.path, self.tmp = path, _temp_beside(path)
        self.zf = zipfile.ZipFile(self.tmp, "w", zipfile.ZIP_STORED, allowZip64=True)
        self.counts: dict[str, int] = {}

    def append(self, arrays: dict[str, np.ndarray]) -> None:
        for k, v in arrays.items():
            # the member name is taken before writing: an interrupt inside the write
            # must not let a later append reuse it (the zip would hold it twice)
            n = self.counts.get(k, 0)
            self.counts[k] = n + 1
            with self.zf.open(f"{k}/{n:06d}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.ascontiguousarray(v), allow_pickle=False)

    def close(self, meta: dict[str, Any]) -> None:
        self.zf.writestr("meta.json", json.dumps({**meta, "chunks": self.counts}))
        self.zf.close()
        with open(self.tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.zf.close()
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()


class _HDF5Writer:
    """Resizable datasets, appended along the first axis."""

    def __init__(self, path: Path) -> None:
        from .._checks import require

        self.h5py = require("h5py", "peers")
        self.path, self.tmp = path, _temp_beside(path)
        self.f = self.h5py.File(self.tmp, "w")

    def append(self, arrays: dict[str, np.ndarray]) -> None:
        for k, v in arrays.items():
            if k not in self.f:
                row_bytes = max(1, int(np.prod(v.shape[1:], dtype=np.int64)) * v.itemsize)
                chunk_rows = max(1, min(65536, (1 << 20) // row_bytes))
                self.f.create_dataset(k, data=v, maxshape=(None, *v.shape[1:]),
                                      chunks=(chunk_rows, *v.shape[1:]) if v.ndim else None)
            else:
                ds = self.f[k]
                n = ds.shape[0]
                ds.resize(n + v.shape[0], axis=0)
                ds[n:] = v

    def close(self, meta: dict[str, Any]) -> None:
        self.f.attrs["meta"] = json.dumps(meta)
        self.f.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.f.close()
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()


def load_recording(path: str | os.PathLike[str]) -> Recording:
    """Read a monitor file (``.npz`` or ``.h5``) back; raises
    :class:`~aura_snn.errors.CorruptFileError` for truncated or foreign files."""
    p = Path(path)
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise ParameterError(f"monitor file must end in .npz, .h5 or .hdf5, got {p.name!r}")
    try:
        if fmt == "npz":
            with zipfile.ZipFile(p) as zf:
                meta = json.loads(zf.read("meta.json"))
                rec = Recording()
                for key, n in meta.pop("chunks").items():
                    parts = []
                    for c in range(n):
                        with zf.open(f"{key}/{c:06d}.npy") as fh:
                            parts.append(np.lib.format.read_array(fh, allow_pickle=False))
                    rec[key] = np.concatenate(parts)
        else:
            from .._checks import require

            h5py = require("h5py", "peers")
            with h5py.File(p, "r") as f:
                meta = json.loads(f.attrs["meta"])
                rec = Recording({k: f[k][()] for k in f.keys()})
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to parse means a bad file
        raise CorruptFileError(f"{p}: not a readable aura-snn monitor file ({exc})") from None
    rec["_meta"] = meta
    return rec


class Recorder(Observer):
    """Record one variable of one region or projection (module docstring).

    An :class:`~aura_snn.graph.observer.Observer`: it asks the graph for the spikes of
    its region or for one :class:`~aura_snn.graph.observer.Probe`, and stores what each
    :class:`~aura_snn.graph.observer.Chunk` brings.

    Args:
        target: region or projection name.
        variable: ``"spikes"``, ``"output"``, a state field (``"v"``, ``"i"``,
            ``"i:exc"``, ...), ``"weights"``, ``"pre_trace"`` or ``"post_trace"``.
        neurons: indices of the neurons (or synapses, for ``"weights"``) to keep;
            ``None`` keeps all. Not used for ``"spikes"`` (events of all neurons).
        every: keep steps with ``t % every == 0``.
        to: ``None`` (memory) or a ``.npz``/``.h5``/``.hdf5`` path (streamed).
        chunk: steps buffered in memory between writes to disk.
    """

    def __init__(self, target: str, variable: str = "spikes", *,
                 neurons: Sequence[int] | np.ndarray | None = None, every: int = 1,
                 to: str | os.PathLike[str] | None = None, chunk: int = 2000) -> None:
        if not isinstance(target, str) or not target:
            raise ParameterError(f"target must be a region or projection name, got {target!r}")
        if not isinstance(variable, str) or not variable:
            raise ParameterError(f"variable must be a name, got {variable!r}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ParameterError(f"every must be an integer >= 1, got {every!r}")
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            raise ParameterError(f"chunk must be an integer >= 1, got {chunk!r}")
        self.target, self.variable, self.every, self.chunk = target, variable, every, chunk
        self.neurons = None if neurons is None else np.asarray(neurons, dtype=np.int64).ravel()
        if self.neurons is not None and self.neurons.size and self.neurons.min() < 0:
            raise ParameterError("neurons must be non-negative indices")
        self.path = None if to is None else Path(to)
        if self.path is not None and self.path.suffix.lower() not in FORMATS:
            raise ParameterError(f"to must end in .npz, .h5 or .hdf5 (or be None for memory), "
                                 f"got {str(to)!r}")
        self.dt: float | None = None
        self._writer: Any = None
        self._closed = False
        self._broken: str | None = None   # why a write failed: the file lacks a chunk
        self._buf: dict[str, list[np.ndarray]] = {}
        self._buf_steps = 0
        self._result: Recording | None = None
        self._probe = Probe(target, variable, self.neurons, every)

    # -- the observer interface -----------------------------------------------------
    @property
    def spike_regions(self) -> frozenset[str]:  # type: ignore[override]
        return frozenset({self.target}) if self.is_spikes else frozenset()

    @property
    def probes(self) -> tuple[Probe, ...]:
        return () if self.is_spikes else (self._probe,)

    def observe(self, chunk: Chunk) -> None:
        """Store the spikes or probe rows of one chunk of steps."""
        if self.is_spikes:
            empty = np.zeros(0, np.int64)
            t, b, i = chunk.spikes.get(self.target, (empty, empty, empty))
            self.add_events(t, b, i, chunk.steps)
        else:
            t_rows, values = chunk.values[self._probe]
            if t_rows.size:
                self.add_rows(t_rows, values, chunk.steps)
            else:
                self._push({}, chunk.steps)

    def finish(self, graph: Any) -> None:
        self.flush()

    @property
    def is_spikes(self) -> bool:
        return self.variable == "spikes"

    def _open(self) -> None:
        if self._writer is None:
            if self.path is None:
                self._writer = _MemoryWriter()
            elif FORMATS[self.path.suffix.lower()] == "npz":
                self._writer = _NPZWriter(self.path)
            else:
                self._writer = _HDF5Writer(self.path)

    def _push(self, arrays: dict[str, np.ndarray], steps: int) -> None:
        if self._closed:
            raise ParameterError(f"monitor of {self.target!r}.{self.variable} is closed")
        self._check_intact()
        self._open()
        for k, v in arrays.items():
            self._buf.setdefault(k, []).append(v)
        self._buf_steps += steps
        if self._buf_steps >= self.chunk:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered (to memory lists or to the file)."""
        buf, self._buf, self._buf_steps = self._buf, {}, 0  # taken first: written once
        if buf:
            try:
                self._writer.append({k: np.concatenate(v) for k, v in buf.items()})
            except BaseException as exc:  # an interrupt too: that chunk is not in the file
                self._broken = type(exc).__name__
                raise

    def _check_intact(self) -> None:
        if self._broken is not None:
            raise ParameterError(
                f"monitor of {self.target!r}.{self.variable}: a chunk write failed "
                f"({self._broken}), so the recording has a gap; abort() it (a streamed "
                "file is deleted) and record again")

    # -- storing --------------------------------------------------------------------
    def select(self, values: np.ndarray) -> np.ndarray:
        """Keep the selected columns (last axis)."""
        return values if self.neurons is None else values[..., self.neurons]

    def add_events(self, t: np.ndarray, b: np.ndarray, i: np.ndarray, steps: int) -> None:
        """Spike events of ``steps`` consecutive steps."""
        self._push({"t": t.astype(np.int64), "b": b.astype(np.int32),
                    "i": i.astype(np.int32)}, steps)

    def add_rows(self, t: np.ndarray, values: np.ndarray, steps: int) -> None:
        """Rows ``values[k]`` recorded at steps ``t[k]`` (already subsampled)."""
        self._push({"t": t.astype(np.int64), "values": values}, steps)

    # -- results ------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {"target": self.target, "variable": self.variable, "every": self.every,
                "neurons": None if self.neurons is None else self.neurons.tolist(),
                "dt": self.dt}

    def close(self) -> None:
        """Flush and finalise (renames the file into place). Idempotent."""
        if self._closed:
            return
        self._check_intact()
        self._open()
        self.flush()
        self._writer.close(self.meta())
        self._closed = True

    def abort(self) -> None:
        """Drop the recording; a streamed file is deleted, never left half-written."""
        if self._writer is not None and not self._closed:
            self._writer.abort()
        self._closed = True
        self._writer = None

    def data(self) -> Recording:
        """The recording (closes a disk monitor first and reads the file back)."""
        if self.path is not None:
            self.close()
            return load_recording(self.path)
        self._open()
        self.flush()
        rec = self._writer.read(self.meta())
        if self.is_spikes:
            for k, dt_ in (("t", np.int64), ("b", np.int32), ("i", np.int32)):
                rec.setdefault(k, np.zeros(0, dtype=dt_))
        return rec

    def spike_times(self, batch: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``(times in s, neuron indices)`` of batch element ``batch`` (spike monitors)."""
        if not self.is_spikes:
            raise ParameterError(f"spike_times needs a 'spikes' monitor, this one records "
                                 f"{self.variable!r}")
        rec = self.data()
        keep = rec["b"] == batch
        dt = self.dt if self.dt is not None else 1.0
        return rec["t"][keep] * dt, rec["i"][keep]

    def __repr__(self) -> str:
        where = "memory" if self.path is None else str(self.path)
        return f"Recorder({self.target!r}, {self.variable!r}, every={self.every}, to={where})"


__all__ = ["Recorder", "Recording", "load_recording"]
