"""What ``aura-snn export`` and ``aura-snn energy`` read: a saved model folder, a network
file (``aura-snn simulate``'s TOML/YAML) or a NIR file, and the sample input to run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from aura_snn.errors import ParameterError

NETWORK_SUFFIXES = (".toml", ".yaml", ".yml")
NIR_SUFFIXES = (".nir", ".h5", ".hdf5")


@dataclass
class Source:
    """A loaded model: an ``nn.Module`` over ``[T, B, ...]`` or a ``Graph``."""

    model: Any
    kind: str  # "model", "network" or "nir"
    dt: float
    metadata: dict[str, Any] = field(default_factory=dict)
    steps: int | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    input_shape: tuple[int, ...] | None = None


def parse_shape(text: str) -> tuple[int, ...]:
    """``"C,H,W"`` (``--input-shape``) as a tuple of positive sizes."""
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise ParameterError(f"--input-shape {text!r} must be positive sizes such as 2,6,6")
    return shape


def load_source(path: str | Path, dt: float | None = None,
                input_shape: tuple[int, ...] | None = None) -> Source:
    """Load ``path`` by what it is; anything else raises ``ParameterError`` naming it.
    ``input_shape`` (``--input-shape``) overrides a saved model's recorded one."""
    p = Path(path)
    if p.is_dir():
        from aura_snn.neurons.saved import load_model, read_config

        cfg = read_config(p)
        model = load_model(p)
        dts = {m.dt for m in model.modules() if hasattr(m, "dt")}
        saved = cfg.get("input_shape")
        return Source(model, "model", dt or (dts.pop() if len(dts) == 1 else 1e-3),
                      cfg.get("metadata", {}),
                      input_shape=input_shape or (tuple(saved) if saved else None))
    if not p.exists():
        raise FileNotFoundError(f"MODEL {str(p)!r}: no such file or folder")
    if p.suffix.lower() in NETWORK_SUFFIXES:
        from aura_snn.graph.config import build_graph, load_config

        built = build_graph(load_config(p))
        return Source(built.graph, "network", built.graph.dt, {}, built.steps, built.inputs)
    if p.suffix.lower() in NIR_SUFFIXES:
        from hardware.nir import from_nir

        module = from_nir(p, dt=dt)  # dt from the file's metadata when not given
        return Source(module, "nir", dt if dt is not None else getattr(module, "dt", 1e-3))
    raise ParameterError(
        f"MODEL {str(p)!r} is not a saved model folder (config.json + weights.safetensors), "
        f"a network file ({', '.join(NETWORK_SUFFIXES)}) or a NIR file "
        f"({', '.join(NIR_SUFFIXES)})")


def sample_shape(src: Source) -> tuple[int, ...]:
    """Per-sample input shape of a model: ``--input-shape``, the saved ``input_shape``,
    or the first layer's width when it is a ``Linear``; otherwise a ``ParameterError``
    naming ``--input-shape``."""
    if src.input_shape is not None:
        return tuple(src.input_shape)
    first = next((m for m in src.model.children()
                  if not isinstance(m, torch.nn.Dropout | torch.nn.Identity)), None)
    if isinstance(first, torch.nn.Linear):
        return (first.in_features,)
    raise ParameterError(
        f"the per-sample input shape is unknown (the first layer is a "
        f"{type(first).__name__}, not a Linear, and the saved model records no "
        f"input_shape): give --input-shape C,H,W")


def in_features(model: torch.nn.Module) -> int:
    """The feature size the first ``Linear`` of ``model`` expects."""
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            return m.in_features
    raise ParameterError("the model has no Linear layer, so its input size is unknown: "
                         "give --input FILE.npy")


def sample_input(src: Source, steps: int | None, batch: int, seed: int,
                 input_path: str | None = None) -> torch.Tensor:
    """The input to run: ``--input`` (a ``.npy`` ``[T, B, ...]``), the digits test images
    for the demo classifier, else uniform random currents in [0, 1) of
    ``[steps, batch, *shape]`` (:func:`sample_shape` for a saved model, the first
    ``Linear``'s width otherwise)."""
    if input_path is not None:
        import numpy as np

        arr = np.load(input_path, allow_pickle=False)
        if arr.ndim < 3:
            raise ParameterError(f"--input {input_path!r} must be [T, B, ...], "
                                 f"got shape {arr.shape}")
        return torch.from_numpy(arr).float()
    cfg = src.metadata.get("config", {})
    t = steps or cfg.get("steps") or 16
    if src.metadata.get("task") == "scikit-learn digits":
        from aura_snn.tasks.digits import load_digits

        _, _, xte, _ = load_digits(cfg.get("test_fraction", 0.2), cfg.get("seed", 0))
        return xte[:batch].unsqueeze(0).expand(t, -1, -1).contiguous()
    gen = torch.Generator().manual_seed(seed)
    shape = sample_shape(src) if src.kind == "model" else (in_features(src.model),)
    return torch.rand(t, batch, *shape, generator=gen)
