r"""Energy per token of any torch model with ``aura_snn`` neurons: the dense core (MACs)
and the spiking regions (ACs, neuron updates, spikes), per target of :mod:`hardware.energy`.

:func:`count_token_ops` runs ``run()`` (any code that calls ``model``: a forward, a
key-value-cached decode loop) once under two meters:

* ``torch.utils.flop_counter.FlopCounterMode`` counts the products of every matrix
  product the model computes (``Linear``, ``F.linear``, batched products, attention
  through ``scaled_dot_product_attention``, whose CPU kernel is registered here with
  torch's own attention formula), per module: :math:`\text{MACs} = \text{FLOPs} / 2`.
  Attention counts every query-key pair the kernel is given (a causal mask's masked
  half included; a one-token step with a cache has no mask, so it is exact there).
  Element-wise work (norms, softmax, GELU, rotary, the neuron update itself) is not a
  product and is not counted.
* :class:`aura_snn.metrics.ops.OpCounter` counts, inside each *spiking region*, the
  effective synaptic products of each ``Linear``/``Conv2d`` (an AC when its input is
  spikes, else a MAC: NeuroBench's rule), membrane updates and spikes.

A spiking region is a submodule holding ``aura_snn`` neurons (by default the parent of
each :class:`~aura_snn.neurons.base.SpikingNeuron`). Then, over the ``N`` tokens,

.. math::
    \text{core MACs} = \tfrac12\big(\text{FLOPs}_\text{model} - \textstyle\sum_r
    \text{FLOPs}_r\big) / N, \qquad \text{region } r:\ (\text{MACs}_r, \text{ACs}_r,
    U_r, S_r) / N,

firing rate :math:`S_r/U_r` (spikes per neuron per step) and activation sparsity
:math:`1 - S_r/U_r`. :func:`token_energy` prices them in ``hardware.energy``'s compute
convention (pJ per token):

.. math::
    E_\text{core} = e_\text{MAC}^{h} \,\text{MACs}, \qquad
    E_r = e_\text{MAC}^{h}\,\text{MACs}_r + e_\text{AC}\,\text{ACs}_r
    + e_\text{act} S_r + e_\text{inact} (U_r - S_r) + e_\text{spike} S_r ,

where :math:`e^{h}_\text{MAC}` is the target's MAC energy, or the ``host`` target's for a
target without MACs (Loihi: the dense core and a region's real-valued input projection
stay on the host, as in :mod:`hardware.lava`, where the first layer's current is
computed on the host). For an FFN to be counted as event-driven, its readout layer must
see the spikes of each step (e.g. :class:`hybrid.spiking_part.EventFFN`); a layer fed a
spike *rate* counts as MACs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from aura_snn.errors import ParameterError, ParameterTypeError
from aura_snn.metrics.ops import OpCounter
from aura_snn.neurons.base import SpikingNeuron

from .energy import Target, get_target

DEFAULT_TARGETS = ("cmos45", "loihi", "gpu")


@dataclass(frozen=True)
class RegionOps:
    """Operations of one spiking region per token: ``macs``/``acs`` effective synaptic
    products (real-valued / spike input), ``updates`` membrane updates (neuron-steps),
    ``spikes``; ``firing_rate = spikes / updates``, ``activation_sparsity = 1 - rate``."""

    macs: float
    acs: float
    updates: float
    spikes: float

    @property
    def firing_rate(self) -> float:
        return self.spikes / self.updates if self.updates else float("nan")

    @property
    def activation_sparsity(self) -> float:
        return 1.0 - self.firing_rate


@dataclass(frozen=True)
class TokenOps:
    """Per-token operation counts of a model: ``core_macs`` (dense products outside the
    spiking regions) and ``regions`` (name -> :class:`RegionOps`), over ``tokens``."""

    tokens: int
    core_macs: float
    regions: dict[str, RegionOps]

    def total(self, attr: str) -> float:
        """Sum of ``attr`` (``macs``, ``acs``, ``updates``, ``spikes``) over the regions."""
        return float(sum(getattr(r, attr) for r in self.regions.values()))

    @property
    def firing_rate(self) -> float:
        """Spikes per neuron per step over all regions."""
        u = self.total("updates")
        return self.total("spikes") / u if u else float("nan")


def _sdpa_cpu(query_shape: Any, key_shape: Any, value_shape: Any, *args: Any,
              out_shape: Any = None, **kwargs: Any) -> int:
    """Torch's attention FLOP formula for the CPU flash kernel (not in torch's table)."""
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _custom_mapping() -> dict[Any, Any]:
    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    return {} if op is None else {op: _sdpa_cpu}


def spiking_regions(model: nn.Module) -> tuple[str, ...]:
    """Default regions: the parent module of every ``aura_snn`` neuron (``""``: the model
    itself when a neuron is a direct child of nothing)."""
    names = {name.rpartition(".")[0] for name, m in model.named_modules()
             if isinstance(m, SpikingNeuron)}
    return tuple(sorted(names))


def _inside(name: str, region: str) -> bool:
    return region == "" or name == region or name.startswith(region + ".")


def count_token_ops(model: nn.Module, run: Callable[[], Any], tokens: int, *,
                    regions: Sequence[str] | None = None) -> TokenOps:
    """Count the operations of ``run()`` (which calls ``model``) per token (module
    docstring). ``tokens``: positions processed by ``run`` (>= 1). ``regions``: names of
    the spiking submodules (default :func:`spiking_regions` of the model as it is at
    the call: swap modules in before calling, not inside ``run``)."""
    if not isinstance(model, nn.Module):
        raise ParameterTypeError(f"model: expected torch.nn.Module, got {type(model).__name__}")
    if not callable(run):
        raise ParameterTypeError(f"run must be callable, got {type(run).__name__}")
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1:
        raise ParameterError(f"tokens must be an int >= 1, got {tokens!r}")
    regs = tuple(spiking_regions(model) if regions is None else regions)
    known = {n for n, _ in model.named_modules()}
    missing = [r for r in regs if r not in known]
    if missing:
        raise ParameterError(f"regions: no submodule named {missing}")
    oc = OpCounter(model, batch_dim=0)
    with torch.no_grad(), oc, FlopCounterMode(display=False,
                                              custom_mapping=_custom_mapping()) as fc:
        run()
    flops = fc.get_flop_counts()
    root = type(model).__name__

    def module_flops(region: str) -> int:
        return int(sum(flops.get(f"{root}.{region}" if region else root, {}).values()))

    total = int(sum(flops.get("Global", {}).values()))
    core = (total - sum(module_flops(r) for r in regs)) / 2.0
    out = {}
    for r in regs:
        cs = [c for n, c in oc.counts.layers.items() if _inside(n, r)]
        out[r] = RegionOps(*(sum(getattr(c, a) for c in cs) / tokens
                             for a in ("macs", "acs", "membrane_updates", "spikes")))
    return TokenOps(tokens, core / tokens, out)


def token_energy(ops: TokenOps, targets: Sequence[str | Target] = DEFAULT_TARGETS, *,
                 host: str | Target = "gpu") -> dict[str, dict[str, Any]]:
    """Energy per token (pJ) by target name: ``core_pJ``, ``spiking_pJ`` (all regions),
    ``regions`` (name -> pJ), ``total_pJ`` and ``mac_on`` (the target pricing MACs)."""
    if not isinstance(ops, TokenOps):
        raise ParameterTypeError(f"ops must be a TokenOps, got {type(ops).__name__}")
    h = get_target(host)
    if not h.supports_mac:
        raise ParameterError(f"host: {h.name!r} has no MAC; the host prices the dense core")
    report: dict[str, dict[str, Any]] = {}
    for name in targets:
        t = get_target(name)
        mac_t = t if t.supports_mac else h
        regions = {r: mac_t.e_mac * o.macs + t.e_ac * o.acs + (t.e_neuron_active + t.e_spike)
                   * o.spikes + t.e_neuron_inactive * (o.updates - o.spikes)
                   for r, o in ops.regions.items()}
        core = mac_t.e_mac * ops.core_macs
        spk = float(sum(regions.values()))
        report[t.name] = {"core_pJ": core, "spiking_pJ": spk, "total_pJ": core + spk,
                          "regions": regions, "mac_on": mac_t.name, "source": t.source}
    return report


def ops_dict(ops: TokenOps) -> dict[str, Any]:
    """JSON-ready per-token counts, with each region's firing rate and sparsity."""
    return {"tokens": ops.tokens, "core_macs": ops.core_macs,
            "regions": {r: {**asdict(o), "firing_rate": o.firing_rate,
                            "activation_sparsity": o.activation_sparsity}
                        for r, o in ops.regions.items()}}


__all__ = ["DEFAULT_TARGETS", "RegionOps", "TokenOps", "count_token_ops", "ops_dict",
           "spiking_regions", "token_energy"]
