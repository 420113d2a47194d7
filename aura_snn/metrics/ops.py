r"""Operation counts of a torch spiking model, taken by forward hooks on synaptic layers and
neuron observers (:meth:`~aura_snn.neurons.base.SpikingNeuron.add_observer`, which also
see direct ``run`` calls, as NIR-imported graphs make them); model code untouched.

For each ``nn.Linear`` / ``nn.Conv2d`` with input ``x`` and weight ``W``:

* dense synaptic ops: :math:`\sum` over output elements of the fan-in (``in_features``
  for Linear, ``C_in/groups * kH * kW`` for Conv2d), i.e. every product computed;
* effective synaptic ops: products with a non-zero input and a non-zero weight,
  :math:`\sum (x \ne 0) \cdot (W \ne 0)` computed by the same layer on 0/1 tensors;
* an op is an accumulate (AC) when every input value is in {-1, 0, 1} (spikes), else a
  multiply-accumulate (MAC) (NeuroBench's rule).

For each :class:`aura_snn.neurons.base.SpikingNeuron` with output spikes ``[T, B, ...]``:
membrane updates ``T * B * n`` and spikes ``sum S``. Activation sparsity of a layer is
the fraction of zero spikes. Connection sparsity is the fraction of zero weights over
all Linear/Conv2d weights. Footprint is parameter plus buffer bytes. Counts are totals
over the batch; :meth:`OpCounts.per_sample` divides by the batch size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..neurons.base import SpikingNeuron


@dataclass
class LayerCounts:
    """Counts of one layer (synaptic ops for Linear/Conv2d, neuron counts for neurons)."""

    name: str
    kind: str
    dense: float = 0.0
    effective: float = 0.0
    macs: float = 0.0
    acs: float = 0.0
    membrane_updates: float = 0.0
    spikes: float = 0.0
    outputs: float = 0.0
    neurons: int = 0
    synapses: int = 0

    @property
    def activation_sparsity(self) -> float:
        """Fraction of zero spike outputs (neuron layers); NaN for synaptic layers."""
        return 1.0 - self.spikes / self.outputs if self.outputs else float("nan")


@dataclass
class OpCounts:
    """Per-layer counts and model-level totals of one or more forward passes."""

    layers: dict[str, LayerCounts] = field(default_factory=dict)
    samples: int = 0

    def total(self, attr: str) -> float:
        return float(sum(getattr(c, attr) for c in self.layers.values()))

    def per_sample(self, attr: str) -> float:
        if self.samples == 0:
            raise ValueError("samples: no forward pass was counted")
        return self.total(attr) / self.samples

    @property
    def activation_sparsity(self) -> float:
        """Zero fraction over all spike outputs of all neuron layers (NeuroBench's)."""
        out = self.total("outputs")
        return 1.0 - self.total("spikes") / out if out else float("nan")


def _is_spike(x: torch.Tensor) -> bool:
    return bool(((x == 0) | (x == 1) | (x == -1)).all())


def _synaptic(mod: nn.Module, x: torch.Tensor) -> tuple[float, float]:
    nz_w = (mod.weight != 0).to(x.dtype)
    nz_x = (x != 0).to(x.dtype)
    ones_w = torch.ones_like(mod.weight)
    if isinstance(mod, nn.Linear):
        return float(F.linear(torch.ones_like(x), ones_w).sum()), float(F.linear(nz_x, nz_w).sum())
    kw = dict(stride=mod.stride, padding=mod.padding, dilation=mod.dilation, groups=mod.groups)
    if mod.padding_mode != "zeros":
        raise ValueError(f"padding_mode: only 'zeros' is counted, got {mod.padding_mode!r}")
    dense = float(F.conv2d(torch.ones_like(x), ones_w, **kw).sum())
    return dense, float(F.conv2d(nz_x, nz_w, **kw).sum())


class OpCounter:
    """Context manager that hooks every Linear, Conv2d and SpikingNeuron of ``model``.

    ``batch_dim`` is the axis of the batch in the model's input (1 for time-major).
    """

    def __init__(self, model: nn.Module, *, batch_dim: int = 1) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected torch.nn.Module, got {type(model).__name__}")
        self.model, self.batch_dim = model, batch_dim
        self.counts = OpCounts()
        self._handles: list[Any] = []

    def __enter__(self) -> OpCounter:
        for name, mod in self.model.named_modules():
            if isinstance(mod, (nn.Linear, nn.Conv2d)):
                self._handles.append(mod.register_forward_hook(self._syn_hook(name or "model")))
            elif isinstance(mod, SpikingNeuron):  # observers see run() as well as forward()
                hook = self._neuron_hook(name or "model")
                self._handles.append(mod.add_observer(lambda m, out, h=hook: h(m, (), out)))
        self._handles.append(self.model.register_forward_pre_hook(self._root_hook))
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _root_hook(self, _mod: nn.Module, args: tuple) -> None:
        self.counts.samples += int(args[0].shape[self.batch_dim])

    def _layer(self, name: str, kind: str) -> LayerCounts:
        return self.counts.layers.setdefault(name, LayerCounts(name, kind))

    def _syn_hook(self, name: str):
        def hook(mod: nn.Module, args: tuple, _out: Any) -> None:
            x = args[0].detach()
            c = self._layer(name, type(mod).__name__)
            dense, eff = _synaptic(mod, x)
            c.dense += dense
            c.effective += eff
            if _is_spike(x):
                c.acs += eff
            else:
                c.macs += eff
            c.synapses = int(mod.weight.numel())
        return hook

    def _neuron_hook(self, name: str):
        def hook(_mod: nn.Module, _args: tuple, out: Any) -> None:
            s = out.detach() if isinstance(out, torch.Tensor) else out[0].detach()
            c = self._layer(name, "neuron")
            c.membrane_updates += float(s.numel())
            c.outputs += float(s.numel())
            c.spikes += float(s.sum())
            c.neurons = int(s[0, 0].numel()) if s.dim() >= 2 else int(s.numel())
        return hook


def connection_sparsity(model: nn.Module) -> float:
    """Zero fraction of all Linear/Conv2d weights of ``model``."""
    ws = [m.weight for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    if not ws:
        raise ValueError("model: has no Linear or Conv2d layer")
    return float(sum(int((w == 0).sum()) for w in ws) / sum(w.numel() for w in ws))


def footprint(model: nn.Module) -> int:
    """Bytes of parameters plus buffers of ``model``."""
    return int(sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()]))


def count_ops(model: nn.Module, x: torch.Tensor, *, batch_dim: int = 1) -> OpCounts:
    """Run ``model(x)`` under an :class:`OpCounter` and return the counts."""
    with torch.no_grad(), OpCounter(model, batch_dim=batch_dim) as oc:
        model(x)
    return oc.counts
