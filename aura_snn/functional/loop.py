"""Multi-step reference: run any ``step(x_t, state, p, dt)`` over time-major input.

This is the reference every fused kernel is tested against. It iterates with
``x.unbind(0)``, never ``x[t]``: indexing a tensor that requires grad makes backward
allocate a full-size zero gradient per step (quadratic in ``T``), while ``unbind``
has one backward node for all slices.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch

#: Half-precision dtypes: :func:`run` computes them in float32.
HALF = (torch.float16, torch.bfloat16)

StepFn = Callable[[torch.Tensor, Any, Any, float], tuple[torch.Tensor, Any]]


class MultiStep(NamedTuple):
    """Result of a multi-step run.

    Attributes:
        spikes: ``[T, B, ...]`` spikes (0/1).
        v: ``[T, B, ...]`` membrane trace (the state's ``v`` after each step) or ``None``.
        state: the state after the last step.
        spike_count: ``int(spikes.sum())`` when the kernel that wrote the spikes was
            asked to count them and could (the CPU fused kernel with ``count_spikes``,
            outside autograd), else ``None``; counters read it instead of passing over
            ``spikes`` again.
    """

    spikes: torch.Tensor
    v: torch.Tensor | None
    state: Any
    spike_count: int | None = None


def cast_state(state: Any, dtype: torch.dtype) -> Any:
    """``state`` (a NamedTuple of tensors, or ``None``) with its floating-point tensors
    in ``dtype`` (integer counters are kept as they are)."""
    if state is None:
        return None
    return type(state)(*(t.to(dtype) if t.is_floating_point() else t for t in state))


def run(step: StepFn, x: torch.Tensor, state: Any, p: Any, dt: float,
        record_v: bool = False) -> MultiStep:
    """Apply ``step`` to each ``x[t]`` of time-major ``x`` (``[T, B, ...]``).

    With ``T = 0`` nothing is stepped: spikes (and the trace) are empty ``[0, B, ...]``
    tensors and the state is returned as given (``None`` stays ``None``: at rest).

    float16 and bfloat16 inputs (and their state) are computed in float32, as autocast
    would, and the spikes, trace and final state come back in the input's dtype
    (gradients reach ``x`` in its dtype through the casts): a membrane summed in half
    precision drifts (in bfloat16 CubaLIF lost 4.6 % of its spikes over 50 steps)."""
    if x.dtype in HALF and x.shape[0] > 0:
        out = run(step, x.float(), cast_state(state, torch.float32), p, dt, record_v)
        return MultiStep(out.spikes.to(x.dtype), None if out.v is None else out.v.to(x.dtype),
                         cast_state(out.state, x.dtype))
    if x.shape[0] == 0:
        empty = x * 0  # [0, B, ...], still attached to x's graph
        return MultiStep(empty, empty.clone() if record_v else None, state)
    spikes: list[torch.Tensor] = []
    vs: list[torch.Tensor] = []
    for x_t in x.unbind(0):
        s, state = step(x_t, state, p, dt)
        spikes.append(s)
        if record_v:
            vs.append(state.v)
    return MultiStep(torch.stack(spikes), torch.stack(vs) if record_v else None, state)
