"""Loihi 2 network files: a :class:`~hardware.loihi.LoihiTwin`'s integer parameters, the
numbers Lava's ``Dense``/``Sparse``/``DelaySparse`` and ``LIF`` processes are built with.

One checksummed safetensors file (:func:`aura_snn._io.write_safetensors`, written
atomically): per layer ``k`` the tensors ``{k}.weights`` (int64 weight mantissas),
``{k}.bias`` (int64, input units), ``{k}.delays`` (int64 steps, when the layer has
them) and the float side ``{k}.weights_f``, ``{k}.bias_f``; the header's ``layers``
entry (JSON) holds each layer's scalar registers: ``weight_exp``, ``num_weight_bits``,
``sign_mode``, ``du``, ``dv``, ``vth`` (Lava's 12-bit decays and threshold mantissa),
``scale`` (input units per volt), ``sparse`` and the float ``du_f``, ``dv_f``, ``vth_f``.
``aura-snn export MODEL --to lava`` writes one; :func:`load_twin` reads it back as a
twin (quantisation errors are not kept).
"""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path

from aura_snn._io import read_safetensors, verify_safetensors, write_safetensors
from aura_snn.errors import CorruptFileError

from .loihi import LoihiLayer, LoihiTwin

FORMAT = "aura-snn.loihi2"
_TENSORS = ("weights", "bias", "weights_f", "bias_f", "delays")


def save_twin(twin: LoihiTwin, path: str | os.PathLike[str]) -> Path:
    """Write ``twin``'s layers to ``path`` (module docstring); returns the path."""
    tensors, scalars = {}, []
    for k, layer in enumerate(twin.layers):
        entry = {}
        for f in fields(LoihiLayer):
            value = getattr(layer, f.name)
            if f.name in _TENSORS:
                if value is not None:
                    tensors[f"{k}.{f.name}"] = value
            else:
                entry[f.name] = value
        scalars.append(entry)
    write_safetensors(path, tensors, {"format": FORMAT, "layers": json.dumps(scalars)})
    return Path(path)


def load_twin(path: str | os.PathLike[str]) -> LoihiTwin:
    """Read a Loihi 2 network file back as a :class:`LoihiTwin`; a damaged file or one of
    another format raises :class:`~aura_snn.errors.CorruptFileError` naming it."""
    meta, tensors = read_safetensors(path)
    verify_safetensors(path, meta, tensors)
    if meta.get("format") != FORMAT:
        raise CorruptFileError(f"{path}: not a Loihi 2 network file (format != {FORMAT!r})")
    try:
        entries = json.loads(meta["layers"])
        layers = [LoihiLayer(**entry, **{t: tensors.get(f"{k}.{t}") for t in _TENSORS})
                  for k, entry in enumerate(entries)]
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptFileError(f"{path}: bad layer table ({exc})") from None
    return LoihiTwin(layers, [])


__all__ = ["FORMAT", "load_twin", "save_twin"]
