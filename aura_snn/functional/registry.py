r"""The registry of neuron models: one :class:`ModelSpec` per model, declared in its file.

Every consumer of a neuron model — regions of :mod:`aura_snn.graph`, network files,
the compiled engine, the neuron modules, exporters and energy counters — reads the
model from here, so a model is described in exactly one place: the module of
:mod:`aura_snn.functional` that defines it ends with ``SPEC = ModelSpec(...)``.
Adding a model (Izhikevich, a conductance receptor, ...) means writing one such file
(its parameters, state, ``step`` and spec) plus its tests; :func:`models` finds it by
scanning this package for ``SPEC``.

A spec holds, as data:

================= ===================================================================
``name``          the name network files and regions use (``"lif"``)
``module``        the functional module: ``step(x, state, p, dt)``,
                  ``initial_state(x, p)``
``parameters``    the frozen parameter dataclass
``state``         the state ``NamedTuple``
``units``         the SI unit of every numeric parameter field (``"s"``, ``"V"``,
                  ``"1/V"``, ``""`` for dimensionless numbers); option fields
                  (names, choices, flags) are absent
``state_units``   the unit of every state field
``multi_receptor`` whether the input is ``[R, B, n]`` (one row per receptor named by
                  ``p.receptors``) rather than ``[B, n]``
``roles``         which state field plays which part of the compiled LIF family
                  (:class:`CompiledFamily`): ``v`` membrane, ``i`` current(s),
                  ``ref`` refractory counter, ``b`` adaptation trace
``compile``       ``compile(p, dt) -> CompiledFamily`` (or ``None``): the model's
                  coefficients in the compiled family's encoding, computed by the
                  model's own ``coefficients``; the engine and fused kernels run the
                  model through this, so no coefficient is derived twice
``kernel``        ``kernel(p, dt) -> ModelKernel`` (or ``None``), for a model outside
                  the family (conductance-based, Izhikevich): its per-neuron step in
                  scalars, written beside its torch ``step`` in its module, and that
                  step's coefficients; the engine compiles that step
================= ===================================================================
"""

from __future__ import annotations

import importlib
import pkgutil
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

import torch

from ..errors import ParameterError

Scalar = float | torch.Tensor

UNIT_DIMENSIONS = {"s": "time", "V": "voltage", "Hz": "rate", "1/s": "rate", "m": "length"}


class CompiledFamily(NamedTuple):
    r"""A model in the encoding of the compiled LIF family (engine and fused kernels).

    Per step, for receptors :math:`r` with input :math:`x_r`:

    .. math::
        \hat\imath_r = b_r\,i_r + [\lnot\text{late}]\,x_r, \qquad
        u = v_\text{leak} + a_m (v - v_\text{leak}) + \textstyle\sum_r k_r \hat\imath_r,
        \qquad i_r \leftarrow c_r \hat\imath_r + [\text{late}]\,x_r

    then an adaptive threshold :math:`\vartheta = \vartheta_0 + \beta\,a_b\,b`, the
    refractory clamp (``n_ref`` steps, 0 for none), :math:`S = H(u - \vartheta)`, the
    reset of :mod:`aura_snn.functional.firing` (code ``reset``) and
    :math:`b \leftarrow a_b b + S`.

    Attributes:
        a_m: membrane decay per step (dimensionless).
        v_leak, threshold, v_reset: potentials (V); each a float or a per-neuron tensor.
        reset: reset code, :data:`aura_snn.functional.firing.RESET_CODE`.
        n_ref: refractory period in steps (0: none).
        late: the input enters the current after the membrane step (``voltage_first``).
        receptors: ``(k_r, b_r, c_r)`` per receptor (dimensionless).
        a_adapt: adaptation decay per step (0: no adaptation).
        beta: threshold increment per unit of adaptation trace (V).
        next_step: the reset is applied at the next step (``reset_at="next_step"``).
    """

    a_m: Scalar
    v_leak: Scalar
    threshold: Scalar
    v_reset: Scalar
    reset: int
    n_ref: int
    late: bool
    receptors: tuple[tuple[Scalar, Scalar, Scalar], ...]
    a_adapt: Scalar = 0.0
    beta: Scalar = 0.0
    next_step: bool = False


class ModelKernel(NamedTuple):
    r"""A model outside the compiled LIF family, in the engine's terms.

    Attributes:
        step: the model's per-neuron step, plain Python on scalars and on the rows of
            its arrays (no torch, no calls to other Python functions: numba inlines it),
            defined in the model's functional module beside its torch ``step`` with the
            same operations in the same order: ``step(j, n, nrec, x, v, g, ref, b, f, P,
            n_ref, reset) -> S`` updates neuron ``j`` of ``n`` (inputs ``x`` read and
            cleared, membrane ``v``, receptor state ``g`` ``[nrec * n]``, refractory
            count ``ref``, second variable ``b``: the fields of the spec's ``roles``
            ``v``, ``i``, ``ref``, ``b``; ``f`` the scalars, ``P[q, j]`` the rows). The
            engine compiles it (:mod:`aura_snn.graph._kernels_models` lists the steps
            it knows).
        rows: the step's coefficients, in the order the step reads them: each a float
            or a per-neuron tensor (same units as the model's parameters).
        scalars: region-wide numbers of the step (e.g. ``dt`` in s), floats.
        reset: reset code, :data:`aura_snn.functional.firing.RESET_CODE`.
        n_ref: refractory period in steps (0: none).
    """

    step: Callable[..., Any]
    rows: tuple[Scalar, ...]
    scalars: tuple[float, ...] = ()
    reset: int = 0
    n_ref: int = 0


@dataclass(frozen=True)
class ModelSpec:
    """The one description of a neuron model (module docstring for each field)."""

    name: str
    module: types.ModuleType
    parameters: type
    state: type
    units: Mapping[str, str]
    state_units: Mapping[str, str]
    multi_receptor: bool = False
    roles: Mapping[str, str] = field(default_factory=lambda: {"v": "v"})
    compile: Callable[[Any, float], CompiledFamily] | None = None
    kernel: Callable[[Any, float], ModelKernel] | None = None

    def __post_init__(self) -> None:
        names = {f.name for f in fields(self.parameters)}
        unknown = set(self.units) - names
        if unknown:
            raise ParameterError(f"model {self.name!r}: units name unknown parameter "
                                 f"field(s) {sorted(unknown)}")
        missing = set(self.state._fields) - set(self.state_units)
        if missing:
            raise ParameterError(f"model {self.name!r}: no unit for state field(s) "
                                 f"{sorted(missing)}")

    @property
    def step(self) -> Callable[..., Any]:
        """The model's pure ``step(x, state, p, dt) -> (spikes, state)``."""
        return self.module.step

    def initial_state(self, x: torch.Tensor, p: Any) -> Any:
        """The resting state for one step of input ``x``."""
        return self.module.initial_state(x, p)

    def default_parameters(self) -> Any:
        return self.parameters()

    def receptors(self, p: Any) -> tuple[str, ...]:
        """Receptor names of a population with parameters ``p`` (``("input",)`` for
        single-input models)."""
        return tuple(p.receptors) if self.multi_receptor else ("input",)

    def dimension(self, param: str) -> str | None:
        """Physical dimension (``"time"``, ``"voltage"``, ...) of a parameter, or ``None``
        for dimensionless numbers and options (what network files parse units by)."""
        return UNIT_DIMENSIONS.get(self.units.get(param, ""))


_MODELS: dict[str, ModelSpec] = {}
_SCANNED = False


def register(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry (a model file calls this on its ``SPEC``)."""
    if not isinstance(spec, ModelSpec):
        raise ParameterError(f"spec must be a ModelSpec, got {type(spec).__name__}")
    old = _MODELS.get(spec.name)
    if old is not None and old.module is not spec.module:
        raise ParameterError(f"neuron model {spec.name!r} is already registered by "
                             f"{old.module.__name__}")
    _MODELS[spec.name] = spec
    return spec


def _scan() -> None:
    global _SCANNED
    if _SCANNED:
        return
    pkg = importlib.import_module(__package__)
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_") or info.name == "registry":
            continue
        mod = importlib.import_module(f"{__package__}.{info.name}")
        spec = getattr(mod, "SPEC", None)
        if isinstance(spec, ModelSpec):
            register(spec)
    _SCANNED = True


def models() -> dict[str, ModelSpec]:
    """Every registered model, by name."""
    _scan()
    return dict(_MODELS)


def get(name: str) -> ModelSpec:
    """The spec of the model called ``name`` (the error lists the known names)."""
    table = models()
    if not isinstance(name, str) or name not in table:
        raise ParameterError(f"neuron model must be one of {', '.join(map(repr, table))}; "
                             f"got {name!r}")
    return table[name]


def spec_of(obj: Any) -> ModelSpec | None:
    """The spec of a functional module, a parameter dataclass instance or a spec."""
    if isinstance(obj, ModelSpec):
        return obj
    for spec in models().values():
        if obj is spec.module or type(obj) is spec.parameters or obj is spec.parameters:
            return spec
    return None


__all__ = ["CompiledFamily", "ModelKernel", "ModelSpec", "get", "models", "register", "spec_of"]
