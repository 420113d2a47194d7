r"""Operation counts of a torch spiking model, taken by forward hooks on synaptic layers and
neuron observers (:meth:`~aura_snn.neurons.base.SpikingNeuron.add_observer`, which also
see direct ``run`` calls, as NIR-imported graphs make them); model code untouched.

For each ``nn.Linear`` / ``nn.Conv2d`` with input ``x`` and weight ``W``:

* dense synaptic ops: :math:`\sum` over output elements of the fan-in (``in_features``
  for Linear, ``C_in/groups`` times the in-bounds kernel taps for Conv2d, so zero
  padding adds nothing), i.e. every product computed;
* effective synaptic ops: products with a non-zero input and a non-zero weight,
  :math:`\sum (x \ne 0) \cdot (W \ne 0)` over every product the layer computes;
* an op is an accumulate (AC) when every input value is in {-1, 0, 1} (spikes), else a
  multiply-accumulate (MAC) (NeuroBench's rule).

Both counts are NeuroBench's (which runs the layer again on 0/1 copies), computed in
closed form instead, exactly, in float64 or integers. Linear: dense
:math:`= N_{rows} \cdot n_{in} \cdot n_{out}`; effective :math:`= \sum_i c_i d_i` with
:math:`c_i` the non-zero inputs at input ``i`` over all rows and :math:`d_i` the non-zero
weights leaving it (:math:`= n_{nz}(x) \, n_{out}` when ``W`` has no zero). Conv2d:
dense :math:`= N \, C_{out} \, C_{in}/g \; K(H, W)` with :math:`K` the in-bounds
(output position, tap) pairs of one channel (one convolution of ones, cached per shape);
effective :math:`= \sum \mathrm{conv}(C, D)` with :math:`C[c, y, x]` the non-zero inputs
at each position summed over the batch and :math:`D[g, c, u, v]` the non-zero weights of
each tap summed over the output channels of group ``g``. On CPU the non-zero and spike
tests are one compiled pass over the input (:mod:`._count_kernels`: int64 counts of
non-zeros, of 1s and of -1s, and per-column non-zeros), about twice as fast as the numpy
boolean passes they replace on the demo classifier's hidden spikes.

For each :class:`aura_snn.neurons.base.SpikingNeuron` with output spikes ``[T, B, ...]``:
spikes ``sum S`` and membrane updates, by ``membrane_updates``:

* ``"all"`` (default): ``T * B * n``, every neuron-step, which is what a clocked chip
  or a dense kernel does (each membrane is read, decayed and written every step);
* ``"changed"``: NeuroBench 2.3's ``MembraneUpdates``, ``B * n`` for the first step of
  each call plus the entries whose recorded membrane differs from the step before,
  :math:`\#\{(t, b, i) : t \ge 1,\ v_t \ne v_{t-1}\}`, with ``v`` the membrane the
  module reports (``run(..., record_v=True)``; after the reset for ``reset_at="spike"``),
  so a neuron reset to ``v_reset`` two steps running, or resting at 0 with no input, is
  not counted. It needs the membrane trace, which the counter asks the module for.

A neuron's output is counted once, in its observer: whether every entry is in
{-1, 0, 1} is known without a test for modules whose ``binary_spikes`` is set (every
neuron of this package), and their spikes are counted by the fused CPU kernel as it
writes them (``needs_count``) or else by a sum. A Linear with no zero weight that takes
that same tensor next (same storage, layout and version) reuses those counts. On CPU
a Linear's whole count (weight degrees, input counts, effective products) is one
compiled call: the hooks run between kernels that have just streamed megabytes through
the caches, where each further interpreted step costs several times its warm cost.

Activation sparsity of a layer is the fraction of zero spikes. Connection sparsity is
the fraction of zero weights over all Linear/Conv2d weights. Footprint is parameter
plus buffer bytes. Counts are totals over the batch; :meth:`OpCounts.per_sample`
divides by the batch size.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
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


_MEMBRANE_MODES = ("all", "changed")
_NUMPY_DTYPES = (torch.float16, torch.float32, torch.float64)


def _numpy_view(x: torch.Tensor) -> np.ndarray | None:
    """``x`` as a numpy array sharing its memory (CPU, a dtype numpy has), else None."""
    return x.numpy() if x.device.type == "cpu" and x.dtype in _NUMPY_DTYPES else None


def _input_counts(x: torch.Tensor, cols: int, per_column: bool
                  ) -> tuple[bool, int, torch.Tensor | None, int]:
    """``(spiking, nnz, c, signed)`` of a layer input ``x`` seen as ``[rows, cols]``:
    spiking when every entry is in {-1, 0, 1} (NaN is not), ``nnz`` the non-zero entries
    (NaN is one), ``c[j]`` (float64, if ``per_column``) the non-zero entries of column
    ``j``, ``signed`` the 1s minus the -1s (the sum of ``x`` when spiking). On CPU one
    compiled pass (:mod:`._count_kernels`), else torch's boolean kernels."""
    a = _numpy_view(x)
    if a is None:
        nz = x != 0
        nnz = int(nz.sum())
        plus, minus = int((x == 1).sum()), int((x == -1).sum())
        col = nz.reshape(-1, cols).sum(0).double().cpu() if per_column else None
        return plus + minus == nnz, nnz, col, plus - minus
    from ._count_kernels import counts

    nnz, plus, minus, c = counts(a, cols, per_column)
    col = None if c is None else torch.from_numpy(c.astype(np.float64))
    return plus + minus == nnz, nnz, col, plus - minus


#: Entries summed per float32 partial sum of 0/1 spikes: every partial sum is an
#: integer of at most 2**24, so it is exact in float32 whatever the summation order.
_EXACT_F32 = 1 << 24


def _count_binary(s: torch.Tensor) -> int:
    """Number of 1s in ``s``, whose entries are all 0 or 1: float32 sums of chunks of
    :data:`_EXACT_F32` entries (exact) added as integers, on torch's own threads (a
    fifth of the time of a value-by-value test of 1.5 M spikes, and no second thread
    pool competing with torch's)."""
    n = s.numel()
    if n <= _EXACT_F32:
        return int(s.sum(dtype=torch.float32))
    flat = s.reshape(-1)
    return sum(int(flat[i:i + _EXACT_F32].sum(dtype=torch.float32))
               for i in range(0, n, _EXACT_F32))


def _tensor_key(x: torch.Tensor) -> tuple:
    """Identity of ``x``'s current contents: storage, layout, dtype and version."""
    return (x.data_ptr(), tuple(x.shape), x.stride(), x.dtype, x.device, x._version)


@functools.lru_cache(maxsize=256)
def _taps(h: int, w: int, kernel: tuple[int, int], stride: tuple[int, int],
          padding: tuple[int, int] | str, dilation: tuple[int, int]) -> int:
    """In-bounds (output position, kernel tap) pairs of one channel of an ``h x w`` input."""
    ones = torch.ones(1, 1, h, w, dtype=torch.float64)
    k = torch.ones(1, 1, *kernel, dtype=torch.float64)
    return int(F.conv2d(ones, k, stride=stride, padding=padding, dilation=dilation).sum())


def _weight_degrees(mod: nn.Module) -> tuple[torch.Tensor, bool]:
    """Non-zero weights of ``mod`` per input: Linear ``d[i]`` (float64 ``[n_in]``, over
    the outputs) and whether every entry is ``n_out``; Conv2d ``D[g, c, u, v]`` summed
    over the output channels of group ``g`` (float64), and False. Recomputed at every
    call: a write through ``.data`` is invisible to torch's version counter, so no cache
    could tell that the weights changed."""
    nz_w = mod.weight.detach() != 0
    if isinstance(mod, nn.Linear):
        deg = nz_w.sum(0)
        return deg.double().cpu(), bool((deg == mod.weight.shape[0]).all())
    g, c_out = mod.groups, mod.out_channels
    return nz_w.reshape(g, c_out // g, *mod.weight.shape[1:]).sum(1).double().cpu(), False


def _compiled_view(t: torch.Tensor, cols: int) -> np.ndarray | None:
    """``t`` as a C-contiguous float32/float64 ``[rows, cols]`` numpy array (a view where
    it can be; float16 widened exactly), or None off the CPU or for other dtypes."""
    a = _numpy_view(t)
    if a is None:
        return None
    return np.ascontiguousarray(a.reshape(-1, cols),
                                np.float32 if a.dtype == np.float16 else None)


def _linear(mod: nn.Linear, x: torch.Tensor, flat: tuple[bool, int] | None
            ) -> tuple[float, float, bool]:
    """:func:`_synaptic` of a Linear: on CPU one compiled call
    (:func:`._count_kernels.linear_counts`), else torch's kernels."""
    n_out, n_in = mod.weight.shape
    dense = float(x.numel() * n_out)
    a, w = _compiled_view(x, n_in), _compiled_view(mod.weight.detach(), n_in)
    if a is None or w is None:
        deg, full = _weight_degrees(mod)
        if not (full and flat is not None):
            spiking, nnz, col, _ = _input_counts(x, n_in, per_column=not full)
            return dense, float(nnz * n_out if col is None else col @ deg), spiking
    else:
        from ._count_kernels import linear_counts

        eff, nnz, plus, minus, full = linear_counts(a, w, flat is not None)
        if not (full and flat is not None):
            return dense, float(eff), plus + minus == nnz
    spiking, nnz = flat  # no zero weight and the input already counted: reuse its counts
    return dense, float(nnz * n_out), spiking


def _synaptic(mod: nn.Module, x: torch.Tensor, flat: tuple[bool, int] | None = None
              ) -> tuple[float, float, bool]:
    """``(dense, effective, spiking)`` of one call of ``mod`` on ``x`` (module docstring)
    with ``mod``'s current weight; ``flat`` the ``(spiking, nnz)`` of ``x`` when already
    counted (used where no per-column count is needed)."""
    if isinstance(mod, nn.Linear):
        return _linear(mod, x, flat)
    if mod.padding_mode != "zeros":
        raise ValueError(f"padding_mode: only 'zeros' is counted, got {mod.padding_mode!r}")
    deg, _ = _weight_degrees(mod)
    c_in, h, w = x.shape[-3:]
    n = x.numel() // (c_in * h * w)
    spiking, _, col, _ = _input_counts(x, c_in * h * w, per_column=True)
    g, c_out = mod.groups, mod.out_channels
    kw = dict(stride=mod.stride, padding=mod.padding, dilation=mod.dilation, groups=g)
    eff = float(F.conv2d(col.reshape(1, c_in, h, w), deg, **kw).sum())
    taps = _taps(h, w, mod.kernel_size, mod.stride, mod.padding, mod.dilation)
    return float(n * c_out * (c_in // g) * taps), eff, spiking


class OpCounter:
    """Context manager that hooks every Linear, Conv2d and SpikingNeuron of ``model``.

    ``batch_dim`` is the axis of the batch in the model's input (1 for time-major);
    ``membrane_updates`` is ``"all"`` or NeuroBench's ``"changed"`` (module docstring).
    """

    def __init__(self, model: nn.Module, *, batch_dim: int = 1,
                 membrane_updates: str = "all") -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected torch.nn.Module, got {type(model).__name__}")
        if membrane_updates not in _MEMBRANE_MODES:
            raise ValueError(f"membrane_updates: expected one of {_MEMBRANE_MODES}, "
                             f"got {membrane_updates!r}")
        self.model, self.batch_dim = model, batch_dim
        self.membrane_updates = membrane_updates
        # (key, spiking, nnz) of the last neuron output counted: the next layer's input
        self._last_output: tuple[tuple, bool, int] | None = None
        self.counts = OpCounts()
        self._handles: list[Any] = []

    def __enter__(self) -> OpCounter:
        for name, mod in self.model.named_modules():
            if isinstance(mod, (nn.Linear, nn.Conv2d)):
                self._handles.append(mod.register_forward_hook(self._syn_hook(name or "model")))
            elif isinstance(mod, SpikingNeuron):  # observers see run() as well as forward()
                hook = self._neuron_hook(name or "model")
                self._handles.append(mod.add_observer(
                    hook, needs_v=self.membrane_updates == "changed", needs_count=True))
        self._handles.append(self.model.register_forward_pre_hook(self._root_hook))
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _root_hook(self, _mod: nn.Module, args: tuple) -> None:
        self.counts.samples += int(args[0].shape[self.batch_dim])

    def _layer(self, name: str, kind: str) -> LayerCounts:
        c = self.counts.layers.get(name)
        if c is None:
            c = self.counts.layers[name] = LayerCounts(name, kind)
        return c

    def _syn_hook(self, name: str):
        def hook(mod: nn.Module, args: tuple, _out: Any) -> None:
            x = args[0].detach()
            c = self._layer(name, type(mod).__name__)
            last = self._last_output
            flat = last[1:] if last is not None and last[0] == _tensor_key(x) else None
            dense, eff, spiking = _synaptic(mod, x, flat)
            c.dense += dense
            c.effective += eff
            if spiking:
                c.acs += eff
            else:
                c.macs += eff
            c.synapses = int(mod.weight.numel())
        return hook

    def _neuron_hook(self, name: str):
        changed = self.membrane_updates == "changed"

        def hook(mod: nn.Module, out: Any) -> None:
            s = out.spikes.detach()
            c = self._layer(name, "neuron")
            n = s.numel()
            if changed:
                v = out.v.detach()
                c.membrane_updates += float(v[0].numel()
                                            + int(torch.count_nonzero(v[1:] - v[:-1])))
            else:
                c.membrane_updates += n
            c.outputs += n
            if mod.binary_spikes:  # 0/1 by construction: nothing to test, only to count
                spiking = True  # counted by the kernel that wrote them, else summed here
                nnz = signed = (_count_binary(s) if out.spike_count is None
                                else out.spike_count)
            else:
                spiking, nnz, _, signed = _input_counts(s, 1, per_column=False)
            c.spikes += signed if spiking else float(s.sum())
            self._last_output = (_tensor_key(s), spiking, nnz)
            c.neurons = math.prod(s.shape[2:]) if s.dim() >= 2 else n
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


def count_ops(model: nn.Module, x: torch.Tensor, *, batch_dim: int = 1,
              membrane_updates: str = "all") -> OpCounts:
    """Run ``model(x)`` under an :class:`OpCounter` and return the counts."""
    with torch.no_grad(), OpCounter(model, batch_dim=batch_dim,
                                    membrane_updates=membrane_updates) as oc:
        model(x)
    return oc.counts
