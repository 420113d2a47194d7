r"""Engine regions of models outside the compiled LIF family (conductance-based, Izhikevich).

A model whose registry spec has no ``compile`` but a ``kernel``
(:class:`~aura_snn.functional.registry.ModelKernel`) gives the engine its per-neuron
step in scalars, written in its functional module beside its torch ``step``, and that
step's coefficients. This module compiles the steps it knows (:data:`STEPS`, one kind
code each, from :data:`FIRST` on: the kinds of :mod:`aura_snn.graph._kernels` stay below)
with numba and runs a region's neurons through one, and lays a region's coefficients
out for :func:`aura_snn.graph._kernels.run_steps`:

* every coefficient of ``rows`` is a row of the region's per-neuron block (a scalar
  repeated, a per-neuron tensor as it is): ``mask = 2**len(rows) - 1``;
* ``scalars`` go in the region's scalar row (:data:`aura_snn.graph._kernels.ROWS` long);
* the state roles of the spec place the model's fields in the engine's arrays: ``v``
  the membrane, ``i`` the receptor state (``[R, n]``, e.g. conductances), ``ref`` the
  refractory counter (int), ``b`` a second per-neuron variable (e.g. the Izhikevich
  recovery).

A step has the signature ``step(j, n, nrec, x, v, g, ref, b, f, P, n_ref, reset) -> S``
(the model module's docstring says what each reads), reads and clears its inputs
``x``, and writes neuron ``j``'s state. ``tests/graph/test_engine_models.py`` checks
the engine against the torch stepper spike for spike.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from ..functional import conductance, izhikevich
from ..kernels._numba_cache import invalidate_if_changed

#: The files whose steps this module inlines (numba's cache does not see their edits).
DEPENDS = (conductance.__file__, izhikevich.__file__)
invalidate_if_changed(__file__, DEPENDS)

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")


def _inline(fn: Any) -> Any:
    return numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")(fn)


#: First kind code of a model kernel (the LIF family's kinds are below it).
FIRST = 16
#: Kind code of each step the engine compiles.
STEPS = {conductance.kernel_step: FIRST, izhikevich.kernel_step: FIRST + 1}

_cond = _inline(conductance.kernel_step)
_izh = _inline(izhikevich.kernel_step)


@_jit
def update(kind, n, nrec, x, v, g, ref, b, flag, f, pn, mask, n_ref,
           reset):  # pragma: no cover - compiled
    """Step a region of kind ``kind`` (:data:`STEPS`): its ``n`` neurons, spikes into
    ``flag``; ``pn`` starts with its coefficient block, one row per bit of ``mask``."""
    rows = 0
    for q in range(64):
        rows += (mask >> q) & 1
    P = pn[:rows * n].reshape((rows, n))
    if kind == FIRST:
        for j in range(n):
            flag[j] = _cond(j, n, nrec, x, v, g, ref, b, f, P, n_ref, reset)
    else:
        for j in range(n):
            flag[j] = _izh(j, n, nrec, x, v, g, ref, b, f, P, n_ref, reset)


def coefficients(r: Any, p: Any, dt: float, n_scalars: int, dtype: np.dtype
                 ) -> tuple[int, int, np.ndarray, np.ndarray, int, int] | str:
    """``(kind, mask, scalars, block, reset, n_ref)`` of spiking region ``r`` with
    parameters ``p`` (checked by the engine), or why the engine cannot run it."""
    assert r.spec is not None and r.spec.kernel is not None
    mk = r.spec.kernel(p, dt)
    kind = STEPS.get(mk.step)
    if kind is None:
        return (f"region {r.name!r} (model {r.model!r}): its kernel step "
                f"{getattr(mk.step, '__qualname__', mk.step)!r} is not one the engine "
                f"compiles (aura_snn.graph._kernels_models.STEPS)")
    if len(mk.scalars) > n_scalars:
        return (f"region {r.name!r} (model {r.model!r}): {len(mk.scalars)} kernel scalars "
                f"(engine: at most {n_scalars})")
    block = np.stack([np.broadcast_to(_array(c, dtype), (r.size,)) for c in mk.rows])
    scalars = np.zeros(n_scalars, dtype)
    scalars[:len(mk.scalars)] = mk.scalars
    return kind, (1 << len(mk.rows)) - 1, scalars, block, int(mk.reset), int(mk.n_ref)


def _array(c: Any, dtype: np.dtype) -> np.ndarray:
    """A coefficient (float or tensor) as an array of ``dtype``."""
    if hasattr(c, "detach"):
        return c.detach().cpu().numpy().astype(dtype)
    return np.asarray(c, dtype=dtype)


__all__ = ["DEPENDS", "FIRST", "STEPS", "coefficients", "update"]
