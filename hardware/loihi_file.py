"""Loihi 2 network files: the integer parameters of a twin, the numbers Lava's
``Dense``/``Sparse``/``DelaySparse`` and ``LIF`` processes are built with.

One checksummed safetensors file (:func:`aura_snn._io.write_safetensors`, written
atomically). The header holds ``format`` and ``kind``:

* ``kind = "sequential"``, a :class:`~hardware.loihi.LoihiTwin`: per layer ``k`` the
  tensors ``{k}.weights`` (int64 ``[n_out, n_in]`` weight mantissas), ``{k}.bias``
  (int64, input units), ``{k}.delays`` (int64 steps, when the layer has them) and the
  float side ``{k}.weights_f``, ``{k}.bias_f``; the header's ``layers`` (JSON) holds
  each layer's scalar registers: ``weight_exp``, ``num_weight_bits``, ``sign_mode``,
  ``du``, ``dv``, ``vth`` (Lava's 12-bit decays and 17-bit threshold mantissa),
  ``scale`` (input units per volt), ``sparse`` and the float ``du_f``, ``dv_f``,
  ``vth_f``; ``input_shape`` and ``output_shape`` (JSON lists: the per-sample shapes,
  e.g. ``[C, H, W]`` of a convolutional stack; flat when absent, as in older files).
* ``kind = "graph"``, a :class:`~hardware.loihi_graph.GraphTwin`: ``dt`` (s),
  ``inputs`` (``{region: size}``), ``step_order``, ``regions`` (per spiking region its
  registers and scale, :class:`~hardware.loihi_graph.TwinRegion`) with tensors
  ``region{k}.v0``/``u0`` (int64 initial state) and ``.v0_f``/``.u0_f`` where it has
  initial values, ``projections`` (:class:`~hardware.loihi_graph.TwinProjection`) with
  ``proj{k}.weights``, ``.delays`` (int64 ``[n_post, n_pre]``) and ``.weights_f``.

:func:`load_twin` reads a file back as the twin it came from (quantisation errors are
not kept). Every field is checked: a missing or mistyped entry, a tensor of the wrong
dtype or a shape that does not chain raises :class:`~aura_snn.errors.CorruptFileError`
naming the file and the field. ``aura-snn export MODEL --to lava`` writes these files.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from aura_snn._io import read_safetensors, verify_safetensors, write_safetensors
from aura_snn.errors import CorruptFileError

from ._graph_twin import GraphTwin, TwinProjection, TwinRegion
from ._loihi_fixed import VTH_MAX
from .loihi import LoihiLayer, LoihiTwin

FORMAT = "aura-snn.loihi2"
KINDS = ("sequential", "graph")
_TYPES: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "float": (int, float),
                                       "bool": (bool,)}
_RANGES = {"du": (0, 4095), "dv": (0, 4096), "vth": (1, VTH_MAX), "num_weight_bits": (1, 8),
           "size": (1, 1 << 31), "scale": (math.ulp(0.0), math.inf)}
_SIGNS = ("mixed", "excitatory", "inhibitory")


def _entry(obj: Any) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(scalar fields, tensor fields)`` of a twin dataclass (``None`` tensors left out)."""
    scalars, tensors = {}, {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if "Tensor" in str(f.type):
            if value is not None:
                tensors[f.name] = value
        else:
            scalars[f.name] = value
    return scalars, tensors


def save_twin(twin: LoihiTwin | GraphTwin, path: str | os.PathLike[str]) -> Path:
    """Write ``twin`` (a :class:`LoihiTwin` or :class:`GraphTwin`) to ``path`` (module
    docstring); returns the path."""
    tensors: dict[str, torch.Tensor] = {}

    def table(objs: Any, prefix: str) -> str:
        rows = []
        for k, obj in enumerate(objs):
            scalars, ts = _entry(obj)
            rows.append(scalars)
            tensors.update({f"{prefix}{k}.{n}": t for n, t in ts.items()})
        return json.dumps(rows)

    if isinstance(twin, GraphTwin):
        meta = {"kind": "graph", "dt": json.dumps(twin.dt), "inputs": json.dumps(twin.inputs),
                "step_order": json.dumps(twin.step_order),
                "regions": table(twin.regions.values(), "region"),
                "projections": table(twin.projections, "proj")}
    elif isinstance(twin, LoihiTwin):
        meta = {"kind": "sequential", "layers": table(twin.layers, ""),
                "input_shape": json.dumps(list(twin.input_shape)),
                "output_shape": json.dumps(list(twin.output_shape))}
    else:
        raise TypeError(f"twin must be a LoihiTwin or GraphTwin, got {type(twin).__name__}")
    write_safetensors(path, tensors, {"format": FORMAT, **meta})
    return Path(path)


class _Reader:
    """Checked access to a file's header and tensors; errors name the file."""

    def __init__(self, path: Any, meta: dict[str, str], tensors: dict[str, Any]) -> None:
        self.path, self.meta, self.tensors = path, meta, tensors

    def bad(self, where: str, msg: str) -> CorruptFileError:
        return CorruptFileError(f"{self.path}: {where}: {msg}")

    def header(self, key: str, default: Any = None) -> Any:
        if key not in self.meta:
            if default is not None:
                return default
            raise self.bad(f"header field {key!r}", "missing")
        try:
            return json.loads(self.meta[key])
        except ValueError as exc:
            raise self.bad(f"header field {key!r}", f"not valid JSON ({exc})") from None

    def shape(self, key: str, size: int) -> tuple[int, ...]:
        """A per-sample shape header (list of positive ints) holding ``size`` values."""
        v = self.header(key, [size])
        if not (isinstance(v, list) and v and all(type(s) is int and s > 0 for s in v)):
            raise self.bad(f"header field {key!r}", f"must be a list of positive sizes, "
                                                    f"got {v!r}")
        if math.prod(v) != size:
            raise self.bad(f"header field {key!r}", f"{v} holds {math.prod(v)} values, the "
                                                    f"weights {size}")
        return tuple(v)

    def build(self, cls: type, entry: Any, prefix: str, where: str) -> Any:
        """``cls(**entry, **tensors)`` with every field checked (types, ranges, dtypes:
        ``*_f`` tensors float64, the others int64)."""
        if not isinstance(entry, dict):
            raise self.bad(where, f"must be a JSON object, got {type(entry).__name__}")
        kw: dict[str, Any] = {}
        names = {f.name for f in fields(cls)}
        if set(entry) - names:
            raise self.bad(where, f"unknown field(s) {sorted(set(entry) - names)}")
        for f in fields(cls):
            typ = str(f.type)
            if "Tensor" in typ:
                t = self.tensors.get(f"{prefix}.{f.name}")
                want = torch.float64 if f.name.endswith("_f") else torch.int64
                if t is None and "None" not in typ:
                    raise self.bad(where, f"tensor {f.name!r} ({prefix}.{f.name}) missing")
                if t is not None and t.dtype != want:
                    raise self.bad(where, f"tensor {f.name!r} must be {want}, got {t.dtype}")
                kw[f.name] = t
                continue
            if f.name not in entry:
                raise self.bad(where, f"field {f.name!r} missing")
            v = entry[f.name]
            if not isinstance(v, _TYPES[typ]) or (typ != "bool" and isinstance(v, bool)):
                raise self.bad(where, f"field {f.name!r} must be {typ}, got {v!r}")
            lo, hi = _RANGES.get(f.name, (v, v))
            if not lo <= v <= hi or (f.name == "sign_mode" and v not in _SIGNS):
                raise self.bad(where, f"field {f.name!r} = {v!r} is out of range")
            kw[f.name] = v
        return cls(**kw)

    def check_shape(self, where: str, name: str, t: torch.Tensor | None,
                    shape: tuple[int, ...]) -> None:
        if t is not None and tuple(t.shape) != shape:
            raise self.bad(where, f"tensor {name!r} has shape {tuple(t.shape)}, expected "
                                  f"{shape}")

    def table(self, key: str) -> list[Any]:
        rows = self.header(key)
        if not isinstance(rows, list) or (key == "layers" and not rows):
            raise self.bad(f"header field {key!r}", "must be a non-empty JSON list")
        return rows


def _sequential(rd: _Reader) -> LoihiTwin:
    layers: list[LoihiLayer] = []
    for k, entry in enumerate(rd.table("layers")):
        where = f"layer {k}"
        lay = rd.build(LoihiLayer, entry, str(k), where)
        if lay.weights.ndim != 2:
            raise rd.bad(where, f"tensor 'weights' must be 2-D, got {tuple(lay.weights.shape)}")
        n_out, n_in = lay.weights.shape
        if layers and n_in != layers[-1].weights.shape[0]:
            raise rd.bad(where, f"tensor 'weights' takes {n_in} inputs, layer {k - 1} gives "
                                f"{layers[-1].weights.shape[0]}")
        for name, shape in (("bias", (n_out,)), ("bias_f", (n_out,)),
                            ("weights_f", (n_out, n_in)), ("delays", (n_out, n_in))):
            rd.check_shape(where, name, getattr(lay, name), shape)
        layers.append(lay)
    return LoihiTwin(layers, [], rd.shape("input_shape", int(layers[0].weights.shape[1])),
                     rd.shape("output_shape", int(layers[-1].weights.shape[0])))


def _graph(rd: _Reader) -> GraphTwin:
    dt, inputs, order = rd.header("dt"), rd.header("inputs"), rd.header("step_order")
    if type(dt) not in (int, float) or not dt > 0:
        raise rd.bad("header field 'dt'", f"must be a positive number of seconds, got {dt!r}")
    if not (isinstance(inputs, dict)
            and all(type(v) is int and v > 0 for v in inputs.values())):
        raise rd.bad("header field 'inputs'", f"must map input regions to sizes, got {inputs!r}")
    regions = {}
    for k, entry in enumerate(rd.table("regions")):
        r = rd.build(TwinRegion, entry, f"region{k}", f"region {k}")
        for name in ("u0", "v0", "u0_f", "v0_f"):
            rd.check_shape(f"region {r.name!r}", name, getattr(r, name), (r.size,))
        regions[r.name] = r
    sizes = {**inputs, **{n: r.size for n, r in regions.items()}}
    if not isinstance(order, list) or sorted(order) != sorted(sizes):
        raise rd.bad("header field 'step_order'", f"must list the regions {sorted(sizes)}, "
                                                  f"got {order!r}")
    projections = []
    for k, entry in enumerate(rd.table("projections")):
        p = rd.build(TwinProjection, entry, f"proj{k}", f"projection {k}")
        where = f"projection {p.name!r}"
        if p.pre not in sizes or p.post not in regions:
            raise rd.bad(where, f"field 'pre'/'post' names no region ({p.pre!r} -> {p.post!r})")
        for name in ("weights", "delays", "weights_f"):
            rd.check_shape(where, name, getattr(p, name), (sizes[p.post], sizes[p.pre]))
        projections.append(p)
    return GraphTwin(float(dt), inputs, regions, projections, order, [])


def load_twin(path: str | os.PathLike[str]) -> LoihiTwin | GraphTwin:
    """Read a Loihi 2 network file back as its :class:`LoihiTwin` or :class:`GraphTwin`;
    a damaged file, one of another format or one whose fields do not fit together
    raises :class:`~aura_snn.errors.CorruptFileError` naming the file and the field."""
    meta, tensors = read_safetensors(path)
    verify_safetensors(path, meta, tensors)
    if meta.get("format") != FORMAT:
        raise CorruptFileError(f"{path}: not a Loihi 2 network file (format != {FORMAT!r})")
    rd = _Reader(path, meta, tensors)
    kind = meta.get("kind", "sequential")
    if kind not in KINDS:
        raise rd.bad("header field 'kind'", f"{kind!r} is not one of {KINDS}")
    try:
        return _graph(rd) if kind == "graph" else _sequential(rd)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, CorruptFileError):
            raise
        raise CorruptFileError(f"{path}: inconsistent fields ({exc})") from None


__all__ = ["FORMAT", "KINDS", "load_twin", "save_twin"]
