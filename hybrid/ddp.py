r"""Data parallelism for :func:`hybrid.train.train`: the process group, and the global
batch every rank takes its share of.

One process per device, started by ``torchrun`` (``torch.distributed.run``), which sets
``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``.
:func:`init_from_env` joins the group (``nccl`` when the process drives a CUDA device,
``gloo`` on CPU) and pins ``cuda:LOCAL_RANK``; without those variables it is a
one-process context and nothing distributed is touched.

The batch is defined globally, so the loss curve does not depend on the number of
processes: micro-batch :math:`i` of global size :math:`n = bW` (:math:`b` windows per
rank, :math:`W` ranks) holds the windows that start at

.. math::
    s_{ij} = \operatorname{splitmix64}(\kappa + i n + j) \bmod (N - L), \qquad
    j = 0 \dots n - 1,

of a token array of length :math:`N` (windows of :math:`L + 1` tokens: :math:`L`
inputs and their next-token targets), :math:`\kappa = \operatorname{splitmix64}(
\text{seed})` (the counter-based generator of :mod:`aura_snn.graph._rng`; modulo bias
below :math:`N / 2^{64}`). Rank :math:`r` takes rows :math:`rb \dots (r+1)b - 1`. The
data position is the counter :math:`i` alone, so a resumed run reads the same windows,
and two ranks of :math:`b` read exactly the rows one process of :math:`2b` reads.
Token arrays may be ``torch`` tensors or ``numpy`` arrays, memory-mapped ones included
(corpora larger than memory): only the windows are read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from aura_snn.errors import ParameterError, ParameterTypeError, ShapeError
from aura_snn.graph._rng import MASK64, splitmix64


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world_size`` processes, its
    ``local_rank`` on its node and the ``device`` it computes on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the one that writes logs and checkpoints)."""
        return self.rank == 0


def pick_device(device: str, local_rank: int = 0) -> torch.device:
    """``"cpu"``, ``"cuda"`` (``cuda:local_rank``) or ``"auto"`` (CUDA when available)."""
    if device not in ("auto", "cpu", "cuda"):
        raise ParameterError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ParameterError("device is 'cuda' but no CUDA device is available")
    if device == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ParameterError(f"environment variable {name} must be an integer, "
                             f"got {raw!r}") from None


def init_from_env(device: str = "auto") -> DistContext:
    """Join the process group ``torchrun`` describes in the environment (one-process
    context when ``WORLD_SIZE`` is unset or 1)."""
    world = _env_int("WORLD_SIZE", 1)
    rank, local = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if world < 1 or not 0 <= rank < world:
        raise ParameterError(f"RANK={rank} and WORLD_SIZE={world} do not describe a "
                             f"process group")
    dev = pick_device(device, local)
    if world > 1:
        import torch.distributed as dist

        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return DistContext(rank, world, local, dev)


def shutdown(ctx: DistContext) -> None:
    """Leave the process group (no-op for one process)."""
    if ctx.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def all_reduce_sum(x: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """:math:`\\sum_r x_r` over the ranks (``x`` itself for one process)."""
    if not ctx.distributed:
        return x
    import torch.distributed as dist

    y = x.clone()
    dist.all_reduce(y, op=dist.ReduceOp.SUM)
    return y


def all_gather(x: torch.Tensor, ctx: DistContext) -> list[torch.Tensor]:
    """Every rank's ``x`` (same shape and dtype on every rank), in rank order. Tensors
    travel on the process's device (gloo: CPU, nccl: CUDA); results come back there."""
    if not ctx.distributed:
        return [x]
    import torch.distributed as dist

    out = [torch.empty_like(x) for _ in range(ctx.world_size)]
    dist.all_gather(out, x.contiguous())
    return out


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op for one process)."""
    if ctx.distributed:
        import torch.distributed as dist

        dist.barrier()


def _check_tokens(tokens: Any, name: str) -> Any:
    if isinstance(tokens, torch.Tensor):
        ok = not tokens.is_floating_point() and not tokens.is_complex() and \
            tokens.dtype != torch.bool
    elif isinstance(tokens, np.ndarray):
        ok = np.issubdtype(tokens.dtype, np.integer)
    else:
        raise ParameterTypeError(f"{name} must be a 1-D integer torch.Tensor or numpy "
                                 f"array, got {type(tokens).__name__}")
    if not ok:
        raise ParameterTypeError(f"{name} must hold integer token ids, got dtype "
                                 f"{tokens.dtype}")
    if tokens.ndim != 1:
        raise ShapeError(f"{name} must be 1-D [N], got shape {tuple(tokens.shape)}")
    return tokens


class TokenWindows:
    """Counter-indexed random windows of a 1-D token array (module docstring).

    ``tokens``: token ids ``[N]``; ``seq_len``: :math:`L`, the model's input length (each
    window holds :math:`L + 1` ids); ``seed``: selects the window sequence.
    """

    def __init__(self, tokens: Any, seq_len: int, seed: int, name: str = "tokens") -> None:
        self.tokens = _check_tokens(tokens, name)
        if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
            raise ParameterError(f"seq_len must be an integer >= 1, got {seq_len!r}")
        if len(self.tokens) < seq_len + 1:
            raise ParameterError(f"seq_len={seq_len} needs at least {seq_len + 1} tokens in "
                                 f"{name}, which holds {len(self.tokens)}")
        self.seq_len, self.seed = seq_len, int(seed)
        self._key = splitmix64(int(seed) & MASK64)

    def starts(self, index: int, n: int) -> list[int]:
        """Start offsets :math:`s_{ij}` of the ``n`` windows of micro-batch ``index``."""
        span = len(self.tokens) - self.seq_len
        base = self._key + index * n
        return [splitmix64((base + j) & MASK64) % span for j in range(n)]

    def rows(self, starts: Sequence[int]) -> torch.Tensor:
        """The windows at ``starts`` as an int64 tensor ``[len(starts), L + 1]``."""
        w = self.seq_len + 1
        if isinstance(self.tokens, torch.Tensor):
            return torch.stack([self.tokens[s:s + w] for s in starts]).to(torch.int64)
        return torch.from_numpy(np.stack([np.asarray(self.tokens[s:s + w], dtype=np.int64)
                                          for s in starts]))

    def batch(self, index: int, per_rank: int, ctx: DistContext = DistContext()) -> torch.Tensor:
        """Rank ``ctx.rank``'s share ``[per_rank, L + 1]`` of global micro-batch ``index``
        (``per_rank * ctx.world_size`` windows)."""
        if index < 0:
            raise ParameterError(f"index must be >= 0, got {index}")
        starts = self.starts(index, per_rank * ctx.world_size)
        return self.rows(starts[ctx.rank * per_rank:(ctx.rank + 1) * per_rank])


def eval_windows(tokens: Any, seq_len: int, count: int) -> torch.Tensor:
    """The first ``count`` non-overlapping windows ``[count', L + 1]`` of a validation
    array (fewer when it is shorter), the fixed set every evaluation reads."""
    tokens = _check_tokens(tokens, "val")
    w = seq_len + 1
    n = min(count, len(tokens) // w)
    if n < 1:
        raise ParameterError(f"seq_len={seq_len} needs at least {w} validation tokens, "
                             f"got {len(tokens)}")
    win = TokenWindows(tokens, seq_len, 0, "val")
    return win.rows([k * w for k in range(n)])


__all__ = ["DistContext", "TokenWindows", "all_gather", "all_reduce_sum", "barrier",
           "eval_windows", "init_from_env", "pick_device", "shutdown"]
