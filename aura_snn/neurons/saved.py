"""Saved models: a stack of layers and neuron modules as a folder of two files.

A saved model is a folder holding

* ``config.json``: ``{"format": "aura-snn.model", "version": 1, "layers": [...],
  "metadata": {...}}``, one entry per layer in order, ``{"name", "type", "args"}``;
  neuron modules give their model's constructor arguments (time constants in s,
  thresholds and potentials in V, ``dt`` in s), per-neuron values live in the weights;
  optionally ``"input_shape"``: the per-sample input shape (without ``T``, ``B``; e.g.
  ``[C, H, W]`` for a convolutional stack, whose first layer does not state it);
* ``weights.safetensors``: the ``state_dict`` of the stack, checksummed
  (:func:`aura_snn._io.write_safetensors`), whose header also carries the SHA-256 of
  ``config.json``, so a config and weights that do not belong together (a crash between
  the two writes, an edited file) are refused.

Nothing is unpickled: the config is JSON and the weights are safetensors. Each file is
written atomically (weights first, then the config). The layers a stack may hold are
:data:`LAYERS`: ``Linear``, ``Conv1d``, ``Conv2d``, ``AvgPool1d``, ``AvgPool2d``,
``Flatten``, ``Identity``, ``Dropout`` (saved, identity at inference) and every neuron
module (``LIF``, ``CubaLIF``, ``ALIF``). Neuron modules run over time-major ``[T, B,
...]``; the layers between them act on one sample at a time (``T`` and ``B`` merged:
``Flatten(start_dim=1)`` flattens a sample), as :mod:`hardware.loihi` reads them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._io import atomic_write_text, read_safetensors, verify_safetensors, write_safetensors
from ..errors import CorruptFileError, ParameterError
from .alif import ALIF
from .base import SpikingNeuron
from .cuba import CubaLIF
from .lif import LIF

FORMAT = "aura-snn.model"
VERSION = 1
CONFIG = "config.json"
WEIGHTS = "weights.safetensors"
_CONFIG_SHA = "config_sha256"

NEURONS: dict[str, type[SpikingNeuron]] = {"LIF": LIF, "CubaLIF": CubaLIF, "ALIF": ALIF}


def _neuron_args(m: SpikingNeuron) -> dict[str, Any]:
    """Constructor arguments of a neuron module; tensors other than scalars are
    restored from the weights (``"per_neuron"``)."""
    args: dict[str, Any] = {"dt": m.dt, "backend": m.backend}
    for name in (*m.time_constants, "threshold"):
        t = getattr(m, name)
        args[name] = float(t.detach()) if t.numel() == 1 else "per_neuron"
    args["learn_tau"] = any(isinstance(getattr(m, n), nn.Parameter) for n in m.time_constants)
    args["learn_threshold"] = isinstance(m.threshold, nn.Parameter)
    static = dict(m._static)
    if isinstance(m, ALIF):
        static.pop("reset_at")  # ALIF takes no reset_at (always "spike")
    args.update(static)
    return args


def _linear_args(m: nn.Linear) -> dict[str, Any]:
    return {"in_features": m.in_features, "out_features": m.out_features,
            "bias": m.bias is not None}


def _conv_args(m: nn.Conv1d | nn.Conv2d) -> dict[str, Any]:
    pad = m.padding if isinstance(m.padding, str) else list(m.padding)
    return {"in_channels": m.in_channels, "out_channels": m.out_channels,
            "kernel_size": list(m.kernel_size), "stride": list(m.stride), "padding": pad,
            "dilation": list(m.dilation), "groups": m.groups, "bias": m.bias is not None,
            "padding_mode": m.padding_mode}


def _pool_args(m: nn.AvgPool1d | nn.AvgPool2d) -> dict[str, Any]:
    def plain(v: Any) -> Any:
        return list(v) if isinstance(v, tuple) else v
    args = {"kernel_size": plain(m.kernel_size), "stride": plain(m.stride),
            "padding": plain(m.padding), "ceil_mode": m.ceil_mode,
            "count_include_pad": m.count_include_pad}
    if isinstance(m, nn.AvgPool2d):
        args["divisor_override"] = m.divisor_override
    return args


LAYERS: dict[str, tuple[type[nn.Module], Callable[[Any], dict[str, Any]]]] = {
    "Linear": (nn.Linear, _linear_args),
    "Conv1d": (nn.Conv1d, _conv_args),
    "Conv2d": (nn.Conv2d, _conv_args),
    "AvgPool1d": (nn.AvgPool1d, _pool_args),
    "AvgPool2d": (nn.AvgPool2d, _pool_args),
    "Flatten": (nn.Flatten, lambda m: {"start_dim": m.start_dim, "end_dim": m.end_dim}),
    "Identity": (nn.Identity, lambda m: {}),
    "Dropout": (nn.Dropout, lambda m: {"p": m.p}),
    **{name: (cls, _neuron_args) for name, cls in NEURONS.items()},
}


def _named_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    if isinstance(model, nn.Sequential):
        return list(model.named_children())
    if isinstance(model, SpikingNeuron):
        return [("0", model)]
    raise ParameterError(
        f"model must be an nn.Sequential of layers and neuron modules (or one neuron "
        f"module), got {type(model).__name__}")


def describe(model: nn.Module) -> list[dict[str, Any]]:
    """The layer list of ``config.json`` for ``model``; an unsupported layer raises
    :class:`~aura_snn.errors.ParameterError` naming it."""
    out = []
    for name, m in _named_layers(model):
        kind = next((k for k, (cls, _) in LAYERS.items() if type(m) is cls), None)
        if kind is None:
            raise ParameterError(
                f"layer {name!r} is a {type(m).__name__}, which a saved model cannot hold "
                f"(supported: {', '.join(LAYERS)})")
        out.append({"name": name, "type": kind, "args": LAYERS[kind][1](m)})
    return out


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _check_shape(value: Any) -> list[int]:
    """``value`` as a list of positive sizes, else ``ValueError``."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(f"must be a sequence of positive sizes, got {value!r}")
    shape = list(value)
    if not shape or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0
                            for s in shape):
        raise ValueError(f"must be a sequence of positive sizes, got {value!r}")
    return shape


def save_model(model: nn.Module, folder: str | os.PathLike[str],
               metadata: Mapping[str, Any] | None = None,
               input_shape: Sequence[int] | None = None) -> Path:
    """Save ``model`` (see the module docstring) into ``folder``; returns the folder.

    ``metadata`` (JSON-serialisable: accuracy, training configuration ...) is kept in
    ``config.json``, and so is ``input_shape``, the per-sample input shape (e.g.
    ``(C, H, W)``), when given (exporters need it when the first layer is no
    ``Linear``)."""
    layers = describe(model)
    cfg: dict[str, Any] = {"format": FORMAT, "version": VERSION, "layers": layers,
                           "metadata": dict(metadata or {})}
    if input_shape is not None:
        try:
            cfg["input_shape"] = _check_shape(input_shape)
        except ValueError as exc:
            raise ParameterError(f"input_shape {exc}") from None
    text = json.dumps(cfg, indent=2) + "\n"
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v for k, v in model.state_dict().items()}
    write_safetensors(folder / WEIGHTS, tensors, {_CONFIG_SHA: _sha(text)})
    atomic_write_text(folder / CONFIG, text)
    return folder


def read_config(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed ``config.json`` of a saved model, its format checked."""
    path = Path(folder) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no {CONFIG} (not a saved aura-snn model)")
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptFileError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise CorruptFileError(f"{path}: not an aura-snn model config (format != {FORMAT!r})")
    if cfg.get("version") != VERSION:
        raise CorruptFileError(f"{path}: version {cfg.get('version')!r}, this reader "
                               f"knows version {VERSION}")
    if not isinstance(cfg.get("layers"), list) or not cfg["layers"]:
        raise CorruptFileError(f"{path}: 'layers' must be a non-empty list")
    if "input_shape" in cfg:
        try:
            cfg["input_shape"] = _check_shape(cfg["input_shape"])
        except ValueError as exc:
            raise CorruptFileError(f"{path}: 'input_shape' {exc}") from None
    return cfg


def _build(entry: Any, index: int, weights: Mapping[str, torch.Tensor],
           where: str) -> tuple[str, nn.Module]:
    if not isinstance(entry, dict) or not {"name", "type", "args"} <= entry.keys():
        raise CorruptFileError(f"{where}: layer {index} needs 'name', 'type' and 'args'")
    name, kind, args = str(entry["name"]), entry["type"], dict(entry["args"])
    if kind not in LAYERS:
        raise CorruptFileError(f"{where}: layer {name!r} has unknown type {kind!r} "
                               f"(known: {', '.join(LAYERS)})")
    cls = LAYERS[kind][0]
    for key, value in args.items():
        if value == "per_neuron":
            if f"{name}.{key}" not in weights:
                raise CorruptFileError(f"{where}: layer {name!r}: per-neuron {key!r} "
                                       f"missing from {WEIGHTS}")
            args[key] = weights[f"{name}.{key}"].detach().clone()
    try:
        return name, cls(**args)
    except (TypeError, ValueError) as exc:
        raise CorruptFileError(f"{where}: layer {name!r} ({kind}): {exc}") from None


def load_model(folder: str | os.PathLike[str]) -> nn.Sequential:
    """Load a saved model as an ``nn.Sequential`` (layer names as saved), in eval mode.

    Raises :class:`~aura_snn.errors.CorruptFileError` naming the file and the problem
    for a damaged or mismatched pair of files, or an unknown layer type."""
    folder = Path(folder)
    cfg = read_config(folder)
    text = (folder / CONFIG).read_text(encoding="utf-8")
    meta, weights = read_safetensors(folder / WEIGHTS)
    verify_safetensors(folder / WEIGHTS, meta, weights)
    if meta.get(_CONFIG_SHA) != _sha(text):
        raise CorruptFileError(f"{folder}: {CONFIG} and {WEIGHTS} do not belong together "
                               f"(edited, or a save was interrupted between them)")
    where = str(folder / CONFIG)
    model = nn.Sequential(OrderedDict(_build(e, i, weights, where)
                                      for i, e in enumerate(cfg["layers"])))
    try:
        model.load_state_dict(weights, strict=True, assign=True)  # keep the saved dtypes
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise CorruptFileError(f"{folder}: weights do not fit the layers of {CONFIG}: "
                               f"{' '.join(first[:3])}") from None
    return model.eval()


__all__ = ["CONFIG", "FORMAT", "LAYERS", "NEURONS", "WEIGHTS", "describe", "load_model",
           "read_config", "save_model"]
