r"""Per-neuron coefficient rows of the fused kernels, built once per distinct value set.

The fused kernels read seven coefficients per neuron, each an ``[M]`` array
(:math:`a_m, b, c, k, v_\text{leak}, \vartheta, v_\text{reset}`, the compiled family of
:mod:`aura_snn.functional.registry`; ``M = B * neurons``). Most models give them as
scalars, which every call used to broadcast into seven fresh ``[M]`` tensors: 3.5 MiB
written per call at ``M = 131072`` in float32, and ~40 us of tensor calls for a
one-token call at ``M = 256``.

:func:`coefficient_rows` returns the seven rows of one contiguous ``[7, M]`` block. When
every coefficient is a constant scalar (a Python number, or a 0-d tensor that requires
no gradient) on the CPU, the block is looked up by the coefficients' exact values
(``float.hex``, so ``-0.0`` and ``0.0`` differ), ``M`` and dtype, and built only on a
miss; the kernels only read it. The cache keeps the most recently used blocks up to
``CACHE_BYTES`` in all. The values are those of ``torch.as_tensor(value, dtype)``
broadcast (a float64 value rounded once to the dtype), so results are bit for bit the
same as without the cache. Blocks are ordinary tensors even when first asked for under
``torch.inference_mode`` (autograd calls reuse them and save them for backward). Any
other case (per-neuron tensors, a coefficient that requires grad, a CUDA tensor)
broadcasts each coefficient as before, keeping autograd.
"""

from __future__ import annotations

import collections
import math
import threading
from collections.abc import Sequence
from typing import Any

import torch

CACHE_BYTES = 32 << 20

_cache: collections.OrderedDict[tuple, tuple[torch.Tensor, ...]] = collections.OrderedDict()
_lock = threading.Lock()


def _constant_scalar(v: Any) -> bool:
    if isinstance(v, torch.Tensor):
        return v.dim() == 0 and not v.requires_grad and v.device.type == "cpu"
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _flat(value: Any, shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a scalar/tensor parameter to the neuron shape and flatten to ``[M]``."""
    t = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    return t.expand(shape).reshape(-1).contiguous()


def coefficient_rows(values: Sequence[Any], shape: torch.Size, like: torch.Tensor
                     ) -> list[torch.Tensor]:
    """``values`` broadcast to ``shape`` and flattened: one contiguous ``[M]`` tensor each,
    in ``like``'s dtype and device (module docstring for when they are shared)."""
    if like.device.type != "cpu" or not all(_constant_scalar(v) for v in values):
        return [_flat(v, shape, like) for v in values]
    floats = [float(v) for v in values]
    m = math.prod(shape)
    key = (tuple(f.hex() for f in floats), m, like.dtype)
    with _lock:
        rows = _cache.get(key)
        if rows is not None:
            _cache.move_to_end(key)
    if rows is None:
        # float64 first, then one rounding to the dtype: what as_tensor(float64 0-d) does.
        # Built as normal tensors even inside torch.inference_mode: an inference tensor
        # in the cache would make a later autograd call fail to save it for backward.
        with torch.inference_mode(False):
            col = torch.tensor(floats, dtype=torch.float64).to(like.dtype).view(-1, 1)
            rows = col.expand(len(floats), m).contiguous().unbind(0)
        if _nbytes(rows) <= CACHE_BYTES:
            with _lock:
                _cache[key] = rows
                total = sum(_nbytes(r) for r in _cache.values())
                while total > CACHE_BYTES:
                    _, old = _cache.popitem(last=False)
                    total -= _nbytes(old)
    return list(rows)


def _nbytes(rows: tuple[torch.Tensor, ...]) -> int:
    return sum(r.numel() * r.element_size() for r in rows)


def clear_cache() -> None:
    """Drop every cached block (tests; memory)."""
    with _lock:
        _cache.clear()
