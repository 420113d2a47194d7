r"""Regions: the named populations (nodes) of a :class:`~aura_snn.graph.Graph`.

Every region produces one output per step, ``[B, size]``, which projections carry to
other regions. Five kinds:

==================== ===================================================== =============
class                output of step :math:`t`                              receives
==================== ===================================================== =============
:class:`SpikingRegion` spikes of a neuron model of :mod:`aura_snn.functional`  projections,
                     (or a module of :mod:`aura_snn.neurons`) driven by the  per receptor
                     summed projections                                     ``[R, B, n]``
:class:`DenseRegion`  ``module(x[t])`` of any ``nn.Module`` (the ANN half)   projections
                     on the summed projections (+ a fed input)              ``[B, in_size]``
:class:`PoissonRegion` :math:`S = [U < 1 - e^{-r \Delta t}]`, ``r`` in Hz     nothing
:class:`InputRegion`  the caller's tensor ``inputs[name][t]``                nothing
:class:`ModuleRegion` Poisson (or expected) spikes of the rates (Hz) that a  nothing
                     module computes from a fed input ``[B, d]`` / ``[T, B, d]``
==================== ===================================================== =============

:math:`U` comes from the counter-based generator of :mod:`aura_snn.graph._rng`, so
Poisson regions spike identically on every backend and device. The Poisson
probability :math:`1 - e^{-r\Delta t}` is that of :func:`aura_snn.functional.encoders.poisson`.

Regions are plain, validated objects: :meth:`Region.describe` lists what an exporter
needs (kind, size, model name, parameters, receptors).
"""

from __future__ import annotations

import abc
import math
import types
import zlib
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .._checks import check_positive, check_tensor
from ..errors import ParameterError, ParameterTypeError, ShapeError
from ..functional import registry
from ..neurons.base import SpikingNeuron
from ._rng import region_key, uniform_torch

StepFn = Callable[[torch.Tensor | None, Any, int], tuple[torch.Tensor, Any]]


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name or any(c in name for c in "./ \t\n"):
        raise ParameterError(f"name must be a non-empty string without '.', '/' or "
                             f"spaces, got {name!r}")
    return name


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ParameterError(f"size must be an integer >= 1, got {size!r}")
    return int(size)


def _check_module(region: str, module: nn.Module) -> nn.Module:
    if not isinstance(module, nn.Module):
        raise ParameterTypeError(f"module of region {region!r} must be an nn.Module, got "
                                 f"{type(module).__name__}")
    return module


def default_seed(graph_seed: int, name: str) -> int:
    """Seed of a region that was given none: the graph seed mixed with the name."""
    return (int(graph_seed) * 1_000_003 + zlib.crc32(name.encode())) & ((1 << 63) - 1)


def poisson_probability(rate_hz: torch.Tensor, dt: float) -> torch.Tensor:
    """:math:`1 - e^{-r \\Delta t}`: the probability of at least one event of a Poisson
    process of rate ``r`` (Hz) in a step of ``dt`` s (as :func:`~aura_snn.functional.
    encoders.poisson`)."""
    return -torch.expm1(-rate_hz * dt)


class Region(nn.Module, abc.ABC):
    """Base class of the regions.

    Attributes:
        name: unique name in the graph.
        size: number of outputs (neurons or units) per batch element.
        receptors: names of the inputs projections may target (empty: no input).
        input_size: width of each receptor's input (``size``, or ``in_size`` for dense).
        spiking: whether the output is spikes (0/1).
    """

    kind = "region"
    receptors: tuple[str, ...] = ()
    positions = None  # optional [size, 2] coordinates on a sheet (distance connectivity)
    spiking = True
    fed = False

    def __init__(self, name: str, size: int) -> None:
        super().__init__()
        self.name = _check_name(name)
        self.size = _check_size(size)
        self.seed: int | None = None

    @property
    def input_size(self) -> int:
        return self.size

    def validate(self, dt: float) -> None:
        """Check the region against the graph's step ``dt`` (s)."""
        check_positive("dt", dt, "s")

    def initial_state(self, batch: int, device: torch.device, dtype: torch.dtype) -> Any:
        """State at rest for ``batch`` elements (``None`` for stateless regions)."""
        return None

    @abc.abstractmethod
    def prepare(self, dt: float, batch: int, steps: int, fed: torch.Tensor | None,
                device: torch.device, dtype: torch.dtype, t_start: int = 0) -> StepFn:
        """Return ``step(x, state, k) -> (output [B, size], state)`` for one run, ``k``
        the step within the run (absolute step: ``t_start + k``)."""

    def describe(self) -> dict[str, Any]:
        """Plain description: kind, name, size, receptors (exporters walk this)."""
        return {"kind": self.kind, "name": self.name, "size": self.size,
                "receptors": list(self.receptors)}

    def extra_repr(self) -> str:
        return f"name={self.name!r}, size={self.size}"


def _init_value(spec: Any, shape: tuple[int, ...], field: str, region: str,
                rng: np.random.Generator, device: torch.device,
                dtype: torch.dtype) -> torch.Tensor:
    if isinstance(spec, dict) and set(spec) == {"uniform"}:
        lo, hi = (float(v) for v in spec["uniform"])
        if not hi > lo:
            raise ParameterError(f"init[{field!r}] of region {region!r}: uniform bounds must "
                                 f"satisfy low < high, got [{lo}, {hi}]")
        arr = lo + rng.random(shape[-1]) * (hi - lo)
        t = torch.as_tensor(arr, dtype=dtype, device=device)
    elif isinstance(spec, (int, float)) and not isinstance(spec, bool):
        t = torch.full((), float(spec), dtype=dtype, device=device)
    elif isinstance(spec, (torch.Tensor, np.ndarray)):
        t = torch.as_tensor(spec, dtype=dtype, device=device)
    else:
        raise ParameterTypeError(f"init[{field!r}] of region {region!r} must be a number, an "
                                 f"array or {{'uniform': [low, high]}}, got {spec!r}")
    try:
        return torch.broadcast_to(t, shape).clone()
    except RuntimeError:
        raise ShapeError(f"init[{field!r}] of region {region!r} has shape {tuple(t.shape)}, "
                         f"which does not broadcast to the state shape {shape}") from None


class SpikingRegion(Region):
    """A population of spiking neurons.

    Args:
        name: region name.
        size: number of neurons ``n``.
        neuron: a model name of the registry (:func:`aura_snn.functional.registry.models`:
            ``"lif"``, ``"cuba"``, ``"alif"``, ``"cuba_refractory"``, ...), a model module
            of :mod:`aura_snn.functional`, or a neuron module of
            :mod:`aura_snn.neurons` (``LIF``, ``CubaLIF``, ``ALIF``; its ``dt`` must equal
            the graph's and its learnable parameters train with the graph).
        params: the model's parameter dataclass (functional models; defaults if ``None``).
        init: initial values of state fields, e.g. ``{"v": tensor[n]}``, a number, or
            ``{"v": {"uniform": [low, high]}}`` (drawn once per run start from the
            region's seed, one value per neuron, shared by the batch).
        seed: seed of the random initial values (default: from the graph seed and name).

    Input per step: ``[B, n]`` for single-input models, ``[R, B, n]`` for models with
    receptors (``cuba_refractory``); projections add into their receptor's row.
    """

    kind = "spiking"

    def __init__(self, name: str, size: int, neuron: str | types.ModuleType | SpikingNeuron,
                 params: Any = None, *, init: dict[str, Any] | None = None,
                 seed: int | None = None) -> None:
        super().__init__(name, size)
        self.neuron: SpikingNeuron | None = None
        self.spec: registry.ModelSpec | None
        if isinstance(neuron, SpikingNeuron):
            if params is not None:
                raise ParameterError(f"region {name!r}: params must be None when neuron is a "
                                     f"module (its parameters live in the module)")
            self.neuron = neuron
            self.functional = neuron.functional
            self.spec = neuron.spec
            self.model = self.spec.name if self.spec else type(neuron).__name__.lower()
        else:
            if isinstance(neuron, str):
                self.spec = registry.get(neuron)
                self.functional = self.spec.module
            elif isinstance(neuron, types.ModuleType) and hasattr(neuron, "step") \
                    and hasattr(neuron, "initial_state"):
                self.functional = neuron
                self.spec = registry.spec_of(neuron)
            else:
                raise ParameterTypeError(
                    f"neuron of region {name!r} must be a model name, a functional model "
                    f"module or a SpikingNeuron, got {type(neuron).__name__}")
            self.model = self.spec.name if self.spec else \
                self.functional.__name__.rsplit(".", 1)[-1]
            if params is None:
                if self.spec is None:
                    raise ParameterError(f"region {name!r}: params are required for model "
                                         f"{self.model!r}")
                params = self.spec.default_parameters()
            if not is_dataclass(params):
                raise ParameterTypeError(f"params of region {name!r} must be the model's "
                                         f"parameter dataclass, got {type(params).__name__}")
            if self.spec is not None and not isinstance(params, self.spec.parameters):
                raise ParameterTypeError(
                    f"params of region {name!r} must be {self.spec.parameters.__name__} for "
                    f"model {self.model!r}, got {type(params).__name__}")
            self._params = params
        self.init = dict(init or {})
        self.seed = seed
        probe = self.functional.initial_state(self._dummy_input(1, torch.device("cpu"),
                                                                torch.float64), self.params())
        self.state_fields: tuple[str, ...] = tuple(probe._fields)
        unknown = set(self.init) - set(self.state_fields)
        if unknown:
            raise ParameterError(f"init of region {name!r} names unknown state field(s) "
                                 f"{sorted(unknown)}; the fields are {list(self.state_fields)}")

    # -- model --------------------------------------------------------------------
    def params(self) -> Any:
        """The functional parameter dataclass (a module's current values)."""
        return self.neuron.neuron_parameters() if self.neuron is not None else self._params

    @property
    def receptors(self) -> tuple[str, ...]:  # type: ignore[override]
        if self.spec is not None:
            return self.spec.receptors(self.params())
        return tuple(getattr(self.params(), "receptors", ("input",)))

    @property
    def multi_receptor(self) -> bool:
        if self.spec is not None:
            return self.spec.multi_receptor
        return hasattr(self.params(), "receptors")

    def _dummy_input(self, batch: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        shape = (len(self.receptors), batch, self.size) if self.multi_receptor \
            else (batch, self.size)
        return torch.zeros(shape, device=device, dtype=dtype)

    def validate(self, dt: float) -> None:
        super().validate(dt)
        if self.neuron is not None:
            if not math.isclose(self.neuron.dt, dt, rel_tol=1e-9):
                raise ParameterError(f"region {self.name!r}: the neuron module's dt "
                                     f"({self.neuron.dt} s) differs from the graph's dt "
                                     f"({dt} s)")
        else:
            self._params.validate(dt)

    def initial_state(self, batch: int, device: torch.device, dtype: torch.dtype) -> Any:
        st = self.functional.initial_state(self._dummy_input(batch, device, dtype),
                                           self.params())
        if not self.init:
            return st
        rng = np.random.default_rng(self.seed)
        values = st._asdict()
        for field in self.state_fields:
            if field in self.init:
                values[field] = _init_value(self.init[field], tuple(values[field].shape),
                                            field, self.name, rng, device, dtype)
        return type(st)(**values)

    def prepare(self, dt: float, batch: int, steps: int, fed: torch.Tensor | None,
                device: torch.device, dtype: torch.dtype, t_start: int = 0) -> StepFn:
        p = self.params()
        step_fn = self.functional.step
        ndt = self.neuron.dt if self.neuron is not None else dt

        def step(x: torch.Tensor | None, state: Any, t: int) -> tuple[torch.Tensor, Any]:
            if x is None:
                x = self._dummy_input(batch, device, dtype)
            return step_fn(x, state, p, ndt)
        return step

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        p = self.params()
        d.update(model=self.model, params={k: _plain(v) for k, v in asdict(p).items()},
                 state_fields=list(self.state_fields))
        return d


def _plain(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return v.detach().cpu().tolist()
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


class DenseRegion(Region):
    """The ANN half of a hybrid graph: ``y[t] = module(x[t])``, ``x`` ``[B, in_size]``
    the sum of the incoming projections (plus ``inputs[name][t]`` if fed), ``y``
    ``[B, size]``. Ordinary autograd flows through ``module``."""

    kind = "dense"
    spiking = False
    receptors = ("input",)

    def __init__(self, name: str, module: nn.Module, size: int, in_size: int) -> None:
        super().__init__(name, size)
        self.module = _check_module(name, module)
        self.in_size = _check_size(in_size)

    @property
    def input_size(self) -> int:
        return self.in_size

    def prepare(self, dt: float, batch: int, steps: int, fed: torch.Tensor | None,
                device: torch.device, dtype: torch.dtype, t_start: int = 0) -> StepFn:
        feed = None if fed is None else fed.unbind(0)

        def step(x: torch.Tensor | None, state: Any, t: int) -> tuple[torch.Tensor, Any]:
            if feed is not None:
                x = feed[t] if x is None else x + feed[t]
            if x is None:
                x = torch.zeros(batch, self.in_size, device=device, dtype=dtype)
            y = self.module(x)
            if y.shape != (batch, self.size):
                raise ShapeError(f"module of dense region {self.name!r} returned shape "
                                 f"{tuple(y.shape)}, expected [B={batch}, size={self.size}]")
            return y, None
        return step

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(in_size=self.in_size, module=type(self.module).__name__)
        return d


class PoissonRegion(Region):
    """Poisson spike generator: each neuron spikes in a step with probability
    :math:`1 - e^{-r\\Delta t}` (``rate`` in Hz, a number or ``[size]``), seeded."""

    kind = "poisson"

    def __init__(self, name: str, size: int, rate: float | torch.Tensor, *,
                 seed: int | None = None) -> None:
        super().__init__(name, size)
        r = torch.as_tensor(rate, dtype=torch.float64)
        if r.dim() > 1 or (r.dim() == 1 and r.numel() != self.size):
            raise ShapeError(f"rate of region {name!r} must be a number or have shape "
                             f"[{self.size}], got {tuple(r.shape)}")
        if not bool(torch.isfinite(r).all()) or bool((r < 0).any()):
            raise ParameterError(f"rate of region {name!r} must be finite and >= 0 Hz")
        self.register_buffer("rate", r.expand(self.size).clone(), persistent=True)
        self.seed = seed

    def probability(self, dt: float) -> torch.Tensor:
        """Per-neuron spike probability per step, float64 ``[size]``."""
        return poisson_probability(self.rate.double().cpu(), dt)

    def prepare(self, dt: float, batch: int, steps: int, fed: torch.Tensor | None,
                device: torch.device, dtype: torch.dtype, t_start: int = 0) -> StepFn:
        p = self.probability(dt).to(device)
        key = region_key(self.seed if self.seed is not None else 0)

        def step(x: torch.Tensor | None, state: Any, t: int) -> tuple[torch.Tensor, Any]:
            u = uniform_torch(key, t_start + t, batch, self.size, device)
            return (u < p).to(dtype), None
        return step

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(rate_hz=self.rate.tolist(), seed=self.seed)
        return d


class InputRegion(Region):
    """Values fed by the caller: ``graph.run(T, inputs={name: tensor[T, B, size]})``.
    Spikes (0/1) or any real values (projections multiply them by the weights)."""

    kind = "input"
    fed = True

    def __init__(self, name: str, size: int, *, spiking: bool = True) -> None:
        super().__init__(name, size)
        self.spiking = bool(spiking)

    def check_fed(self, fed: torch.Tensor | None, steps: int, batch: int) -> None:
        if fed is None:
            raise ParameterError(f"input region {self.name!r} needs inputs[{self.name!r}] "
                                 f"of shape [T={steps}, B, {self.size}]")
        check_tensor(f"inputs[{self.name!r}]", fed, ndim=3)
        if fed.shape[0] < steps or fed.shape[2] != self.size or fed.shape[1] != batch:
            raise ShapeError(f"inputs[{self.name!r}] must have shape [T>={steps}, B={batch}, "
                             f"{self.size}], got {tuple(fed.shape)}")

    def prepare(self, dt: float, batch: int, steps: int, fed: torch.Tensor | None,
                device: torch.device, dtype: torch.dtype, t_start: int = 0) -> StepFn:
        self.check_fed(fed, steps, batch)
        assert fed is not None
        feed = fed.to(device=device, dtype=dtype).unbind(0)

        def step(x: torch.Tensor | None, state: Any, t: int) -> tuple[torch.Tensor, Any]:
            return feed[t], None
        return step


class ModuleRegion(Region):
    """Any ``nn.Module`` mapping a fed input to rates (Hz), optionally Poisson-sampled.

    ``inputs[name]`` is ``[B, d]`` (held for the whole run) or ``[T, B, d]``; the
    module returns rates ``[B, size]`` in Hz (negative values are clipped to 0).
    With ``poisson=True`` the output is spikes :math:`[U < p]`,
    :math:`p = 1 - e^{-r\\Delta t}`, with a straight-through gradient
    (:math:`\\partial S/\\partial p = 1`) so the module can train; with
    ``poisson=False`` it is :math:`p` itself (the expected spikes per step).
    This is how :mod:`aura_snn.cells` populations (place, grid, time cells) become regions.
    """

    kind = "module"
    fed = True

    def __init__(self, name: str, module: nn.Module, size: int, *, poisson: bool = True,
                 seed: int | None = None) -> None:
        super().__init__(name, size)
        self.module = _check_module(name, module)
        self.poisson = bool(poisson)
        self.spiking = self.poisson
        self.seed = seed

    def _rates(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        r = self.module(x)
        if not isinstance(r, torch.Tensor):  # e.g. a NamedTuple whose first field is rates
            r = r[0]
        if r.shape != (batch, self.size):
            raise ShapeError(f"module of region {self.name!r} returned rates of shape "
                             f"{tuple(r.shape)}, expected [B={batch}, size={self.size}]")
        return r.clamp_min(0.0)

    def prepare(self, dt: float, batch: int, steps: int, fed: torch.Tensor | None,
                device: torch.device, dtype: torch.dtype, t_start: int = 0) -> StepFn:
        if fed is None:
            raise ParameterError(f"module region {self.name!r} needs inputs[{self.name!r}] of "
                                 f"shape [B, d] or [T, B, d]")
        check_tensor(f"inputs[{self.name!r}]", fed)
        ok = (fed.dim() == 2 and fed.shape[0] == batch) or \
            (fed.dim() == 3 and fed.shape[1] == batch)
        if not ok:
            raise ShapeError(f"inputs[{self.name!r}] must be [B={batch}, d] or [T, B={batch}, "
                             f"d], got {tuple(fed.shape)}")
        if fed.dim() == 3 and fed.shape[0] < steps:
            raise ShapeError(f"inputs[{self.name!r}] has {fed.shape[0]} steps, the run needs "
                             f"{steps}")
        fed = fed.to(device)
        static = fed.dim() == 2
        feed = None if static else fed.unbind(0)
        p_static = poisson_probability(self._rates(fed, batch), dt) if static else None
        key = region_key(self.seed if self.seed is not None else 0)

        def step(x: torch.Tensor | None, state: Any, t: int) -> tuple[torch.Tensor, Any]:
            p = p_static if static else poisson_probability(self._rates(feed[t], batch), dt)
            p = p.to(dtype)
            if not self.poisson:
                return p, None
            u = uniform_torch(key, t_start + t, batch, self.size, device)
            s = (u < p.detach().double()).to(dtype)
            return s + (p - p.detach()), None
        return step

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(module=type(self.module).__name__, poisson=self.poisson, seed=self.seed)
        return d


__all__ = ["DenseRegion", "InputRegion", "ModuleRegion", "PoissonRegion", "Region",
           "SpikingRegion", "default_seed", "poisson_probability"]
