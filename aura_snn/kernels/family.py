r"""The per-neuron update of the compiled LIF family, written once for every backend.

:class:`aura_snn.functional.registry.CompiledFamily` encodes each compiled model (LIF,
CubaLIF, ALIF, the refractory CUBA model; ``spec.compile(p, dt)``) in one family.
One step of one neuron, for receptors :math:`r` with input :math:`x_r`:

.. math::
    \hat\imath_r &= b_r\,i_r + [\lnot\text{late}]\,x_r, \qquad
    i_r \leftarrow c_r\,\hat\imath_r + [\text{late}]\,x_r
    \qquad\text{(:func:`receptor`)} \\
    \tilde b &= a_b\,b, \qquad \vartheta = \vartheta_0 + \beta\,\tilde b
    \qquad\text{(adaptive threshold; } \vartheta = \vartheta_0 \text{ without)} \\
    u &= v_\text{leak} + a_m (v - v_\text{leak}) + \textstyle\sum_r k_r \hat\imath_r
    \qquad\text{(:func:`integrate`; the drive summed in receptor order)} \\
    c &= \max(\text{ref} - 1, 0), \quad f = [c = 0]: \quad
    u \leftarrow u \text{ if } f \text{ else } v
    \qquad\text{(refractory clamp)} \\
    S &= f\,H(u - \vartheta), \qquad v \leftarrow \text{reset}(u, S), \qquad
    \text{ref} \leftarrow n_\text{ref} \text{ if } S \text{ else } c, \qquad
    b \leftarrow \tilde b + S

with the reset of :mod:`aura_snn.functional.firing` (code
:data:`~aura_snn.functional.firing.RESET_CODE`), at the spike or, for
``reset_at="next_step"`` (``nxt``), at the next step: the state keeps the un-reset
:math:`u` and the next step applies :math:`r = H(v - \vartheta)` (``subtract``:
:math:`u - \vartheta` after the decay; ``zero``: :math:`v_\text{reset}` replaces
:math:`v` before it).

The operations are those of the torch reference in :mod:`aura_snn.functional`, in the
same order; a reference's multiplication by a 0/1 spike is a select here (exact for
finite values), so results are bit-identical (``tests/graph/test_engine.py``,
``tests/kernels``).

These are plain Python functions of scalars (they run as they are, e.g. in tests).
The backends compile the same functions: the fused CPU kernel
(:mod:`aura_snn.kernels.cpu`) and the graph engine (:mod:`aura_snn.graph._kernels`)
with numba (:func:`numba_inline`), the CUDA kernel (:mod:`aura_snn.kernels.gpu`) with
Triton. A function reaches its backend's primitives through two global names,
rebound per backend when it is compiled: :func:`where` (an elementwise select:
numba an LLVM ``select``, Triton ``tl.where``) and the reset codes. Data-dependent
choices are selects, never branches, so the loops around them stay vectorisable; so
are the modes ``reset``, ``nxt`` and ``late`` (selects on loop-invariant conditions).
``if`` is used only on ``adapt`` and ``refr``, which decide what state exists: callers
pass them as compile-time constants (literals at each numba call site, ``tl.constexpr``
in Triton). No float literal appears: ``zero`` and ``one`` come in the caller's
precision, so a float32 loop stays float32.

Numba's cache keys compiled code on the caller's file only; the modules that inline
these functions drop their cache when this file changes
(:mod:`aura_snn.kernels._numba_cache`), so an edit here recompiles them.
"""

from __future__ import annotations

from types import FunctionType
from typing import Any

from ..functional.firing import RESET_CODE

SUBTRACT = RESET_CODE["subtract"]
ZERO = RESET_CODE["zero"]
NONE = RESET_CODE["none"]


def where(cond: int, a: float, b: float) -> float:
    """Elementwise select ``a if cond else b`` (rebound per backend)."""
    return a if cond else b


def integrate(v: float, drive: float, am: float, vl: float) -> float:
    r""":math:`v_\text{leak} + a_m (v - v_\text{leak}) + \text{drive}` (as
    :func:`aura_snn.functional.lif.integrate`)."""
    return vl + am * (v - vl) + drive


def receptor(i: float, x: float, b: float, c: float, late: int,
             zero: float) -> tuple[float, float]:
    r"""One receptor current: ``(i_hat, i_new)`` with :math:`\hat\imath = b\,i + x`,
    :math:`i' = c\,\hat\imath` (``late``: :math:`\hat\imath = b\,i`,
    :math:`i' = c\,\hat\imath + x`). LIF is :math:`b = c = 0` (:math:`\hat\imath = x`).
    Adding the ``zero`` that ``late`` selects is exact."""
    ie = b * i + where(late, zero, x)
    return ie, c * ie + where(late, x, zero)


def neuron(v: float, ref: int, bt: float, drive: float, am: float, vl: float, th0: float,
           vr: float, ab: float, beta: float, nref: int, reset: int, nxt: int, adapt: int,
           refr: int, zero: float, one: float) -> tuple[float, int, float, int, float]:
    r"""Adaptive threshold, integration, refractory clamp, spike, reset and adaptation
    of one neuron (module docstring). Returns ``(v_new, ref_new, b_new, spike, u)``:
    ``spike`` a boolean, ``u`` the membrane before the reset.

    Args: state ``v`` (V), ``ref`` (steps left), ``bt`` (adaptation trace);
    ``drive`` :math:`\sum_r k_r\hat\imath_r` (V); coefficients ``am``, ``vl``, ``th0``,
    ``vr``, ``ab``, ``beta``, ``nref`` (:class:`~aura_snn.functional.registry.
    CompiledFamily`); flags ``reset`` (code), ``nxt`` (reset at the next step),
    ``adapt`` (adaptive threshold), ``refr`` (refractory counter); ``zero``, ``one``
    in the state's precision. State that the flags leave unused is returned as it came.

    ``reset`` and ``nxt`` enter through selects on loop-invariant conditions (every
    variant computed, one kept), so a loop calling this vectorises whatever their
    values; ``adapt`` and ``refr`` decide which state exists, so they are branches
    that the caller fixes at compile time.
    """
    rz = reset == ZERO
    rs = reset == SUBTRACT
    th = th0
    bd = bt
    if adapt:
        bd = ab * bt
        th = th0 + beta * bd
    # reset_at="next_step": last step's spike (the state kept the un-reset u) resets now
    r = nxt & (v > th)
    u = integrate(where(r & rz, vr, v), drive, am, vl)
    u = where(r & rs, u - th, u)
    rn = ref
    if refr:
        c = ref - 1
        c = where(c > 0, c, 0)
        free = c == 0
        u = where(free, u, v)
        s = free & (u - th > zero)
        rn = where(s, nref, c)
    else:
        s = u - th > zero
    vres = where(rz, vr, where(rs, u - th, u))
    vn = where(s & (not nxt), vres, u)
    bn = bt
    if adapt:
        bn = bd + where(s, one, zero)
    return vn, rn, bn, s, u


SHARED = (where, integrate, receptor, neuron)


def rebind(fn: FunctionType, scope: dict[str, Any]) -> FunctionType:
    """A clone of ``fn`` whose global names are looked up in ``fn``'s globals updated
    by ``scope`` (how a backend substitutes its primitives)."""
    clone = FunctionType(fn.__code__, {**fn.__globals__, **scope}, fn.__name__,
                         fn.__defaults__, fn.__closure__)
    clone.__doc__ = fn.__doc__
    clone.__qualname__ = fn.__qualname__
    return clone


def _numba_select() -> Any:
    """``where`` for numba: an LLVM ``select`` (an intrinsic, so it is one instruction
    whatever the surrounding code, never a branch), both values cast to their common
    type."""
    from numba.core import types
    from numba.extending import intrinsic

    @intrinsic
    def select(typingctx, cond, a, b):  # noqa: ANN001, ANN202
        ty = typingctx.unify_types(a, b)
        if ty is None or not isinstance(cond, (types.Boolean, types.Integer)):
            return None
        if isinstance(ty, types.Literal):
            ty = ty.literal_type

        def codegen(context, builder, sig, args):  # noqa: ANN001, ANN202
            c = context.cast(builder, args[0], sig.args[0], types.boolean)
            x = context.cast(builder, args[1], sig.args[1], ty)
            y = context.cast(builder, args[2], sig.args[2], ty)
            return builder.select(c, x, y)
        return ty(cond, a, b), codegen

    return select


def numba_inline(error_model: str = "numpy") -> dict[str, Any]:
    """The shared functions compiled by numba, inlined into their callers (by name:
    ``where``, an LLVM select, then ``integrate``, ``receptor``, ``neuron``)."""
    import numba

    jit = numba.njit(nogil=True, inline="always", error_model=error_model)
    out: dict[str, Any] = {"where": _numba_select()}
    for fn in SHARED[1:]:  # in dependency order: each clone sees the compiled ones before it
        out[fn.__name__] = jit(rebind(fn, out))
    return out


__all__ = ["NONE", "SUBTRACT", "ZERO", "integrate", "neuron", "numba_inline", "rebind",
           "receptor", "where"]
