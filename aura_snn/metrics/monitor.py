"""Monitors: record spikes and membrane potentials of neuron modules by observer hooks.

A :class:`Monitor` attaches to every :class:`~aura_snn.neurons.SpikingNeuron` of a
model (or to the modules it is given), records what each ``forward``/``run``
produced, and summarises it per neuron and per layer. It never changes outputs: the
membrane trace is computed only when ``record_v=True`` and is otherwise not touched.
Recorded tensors are detached and, by default, moved to the CPU.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from .._checks import check_int, check_positive
from ..errors import ParameterError
from ..functional.loop import MultiStep
from ..neurons.base import SpikingNeuron
from .stats import firing_rates, sparsity


class Monitor:
    """Record spikes (and optionally membrane traces) of neuron modules.

    Args:
        target: a model (every ``SpikingNeuron`` inside is monitored, named as in
            ``named_modules``), one neuron module, or a ``{name: module}`` dict.
        record_v: also record membrane traces ``v``.
        every: keep one step in ``every`` (subsampling in time).
        to_cpu: move recordings to the CPU.

    After one or more forward passes, ``spikes[name]`` and ``v[name]`` hold the
    recordings concatenated over calls along time (``[T_total, B, ...]``).
    Use as a context manager or call :meth:`remove`.
    """

    def __init__(self, target: nn.Module | dict[str, nn.Module], *, record_v: bool = False,
                 every: int = 1, to_cpu: bool = True) -> None:
        self.every = check_int("every", every, minimum=1)
        self.record_v = bool(record_v)
        self.to_cpu = bool(to_cpu)
        self.modules = dict(self._find(target))
        if not self.modules:
            raise ParameterError("target contains no SpikingNeuron module to monitor")
        self._spikes: dict[str, list[torch.Tensor]] = {n: [] for n in self.modules}
        self._v: dict[str, list[torch.Tensor]] = {n: [] for n in self.modules}
        self._handles = [m.add_observer(self._observer(n), needs_v=self.record_v)
                         for n, m in self.modules.items()]

    @staticmethod
    def _find(target: nn.Module | dict[str, nn.Module]) -> Iterable[tuple[str, SpikingNeuron]]:
        if isinstance(target, dict):
            for name, m in target.items():
                if not isinstance(m, SpikingNeuron):
                    raise ParameterError(f"target[{name!r}] is {type(m).__name__}, "
                                         f"not a SpikingNeuron")
                yield name, m
            return
        if isinstance(target, SpikingNeuron):
            yield type(target).__name__.lower(), target
            return
        if not isinstance(target, nn.Module):
            raise ParameterError(f"target must be an nn.Module or a dict of them, got "
                                 f"{type(target).__name__}")
        for name, m in target.named_modules():
            if isinstance(m, SpikingNeuron):
                yield name, m

    def _keep(self, t: torch.Tensor) -> torch.Tensor:
        t = t.detach()[:: self.every]
        return t.cpu() if self.to_cpu else t.clone()

    def _observer(self, name: str) -> Any:
        def observe(_module: nn.Module, out: MultiStep) -> None:
            self._spikes[name].append(self._keep(out.spikes))
            if self.record_v and out.v is not None:
                self._v[name].append(self._keep(out.v))
        return observe

    # -- results --------------------------------------------------------------------
    @property
    def spikes(self) -> dict[str, torch.Tensor]:
        """Recorded spikes per layer, ``[T_total, B, ...]``."""
        return {n: torch.cat(v) for n, v in self._spikes.items() if v}

    @property
    def v(self) -> dict[str, torch.Tensor]:
        """Recorded membrane traces per layer (only with ``record_v=True``)."""
        return {n: torch.cat(v) for n, v in self._v.items() if v}

    def counts(self) -> dict[str, torch.Tensor]:
        """Spike count per neuron (summed over recorded time and batch)."""
        out = {}
        for n, s in self.spikes.items():
            c = s.sum(0)
            out[n] = c.sum(0) if c.dim() > 1 else c
        return out

    def rates(self, dt: float) -> dict[str, torch.Tensor]:
        """Firing rate per neuron (Hz), averaged over batch; ``dt`` the step in seconds."""
        check_positive("dt", dt, "s")
        return {n: firing_rates(s, dt * self.every) for n, s in self.spikes.items()}

    def summary(self, dt: float) -> dict[str, dict[str, float]]:
        """Per layer: neurons, total spikes, mean rate (Hz), spikes per neuron per step,
        sparsity (fraction of silent neuron-steps)."""
        out = {}
        for n, s in self.spikes.items():
            out[n] = {
                "neurons": int(s[0, 0].numel()) if s.dim() > 1 else int(s[0].numel()),
                "spikes": float(s.sum()),
                "rate_hz": float(firing_rates(s, dt * self.every).mean()),
                "spikes_per_neuron_step": float(s.mean()),
                "sparsity": sparsity(s),
            }
        return out

    def reset(self) -> None:
        """Forget what was recorded; stay attached."""
        for lst in (*self._spikes.values(), *self._v.values()):
            lst.clear()

    def remove(self) -> None:
        """Detach from every module."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
