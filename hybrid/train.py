r"""The training loop of the hippocampal transformer (any causal LM with its forward).

The model maps tokens ``[B, L]`` to ``(logits [B, L, V], cache)``. One update
:math:`s` takes ``grad_accum`` micro-batches :math:`m` of ``batch_size`` windows per
process (:class:`hybrid.ddp.TokenWindows`, global micro-batch index
:math:`i = s \cdot \text{grad\_accum} + m`) and minimises the mean next-token
cross-entropy (nats per token)

.. math::
    \mathcal{L} = -\frac{1}{BL} \sum_{b, t} \log \operatorname{softmax}(z_{b,t})_{x_{b,t+1}}

of the whole global batch, plus the activity penalty :math:`\lambda_r \bar r` when
``spike_rate_weight`` :math:`\lambda_r > 0` (:func:`spike_rate_penalty`: :math:`\bar r` is
the mean firing rate of the spiking FFNs, with its surrogate gradient; the logged loss
and perplexity are the cross-entropy alone). Each micro-batch's mean loss is divided by
``grad_accum`` and
the gradients add (equal token counts, so this is the full-batch mean); DDP averages
them over the ranks. The global gradient is clipped to L2 norm ``grad_clip``, then AdamW
(decoupled weight decay on matrices only) takes a step at :math:`\eta(s)`
(:func:`hybrid.train_config.lr_at`), times the endocrine factor of the losses so far when
``model.config.endocrine_lr`` (:class:`hybrid.options.EndocrineLR`). Logged per update
(:mod:`hybrid.train_log`): loss, perplexity :math:`e^{\mathcal{L}}`, learning rate,
gradient norm before clipping, tokens per second over all ranks, validation
loss/perplexity when evaluated, and the model's FFN firing rates and spike-count sparsity
when it reports them (:func:`firing_rates`).

Exact resume: a checkpoint (:mod:`hybrid.checkpoint`) holds weights, AdamW moments, the
step (which fixes both the schedule and the data position), every rank's RNG states and
the episodic memory stores (:mod:`hybrid.memory_state`); a resumed run repeats the
straight run's losses and weights bit for bit on CPU.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aura_snn.errors import ParameterError, ParameterTypeError

from . import checkpoint as ck
from .ddp import DistContext, TokenWindows, all_gather, all_reduce_sum, barrier, eval_windows
from .memory_state import memory_files, restore_memories
from .options import EndocrineLR
from .train_config import TrainConfig, lr_at
from .train_log import TrainLog, perplexity
from .train_state import check_restorable, model_config_dict, rng_for, rng_state, set_rng_state


@dataclass
class TrainResult:
    """What :func:`train` did: ``step`` updates done in all, the log ``rows`` of this
    call (one per update), and the last checkpoint folder written or resumed from."""

    step: int
    rows: list[dict[str, Any]]
    checkpoint: Path | None


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; weight decay on tensors of >= 2 dimensions."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ParameterError("model has no trainable parameters")
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr,
                             betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)


def enable_activation_checkpointing(model: nn.Module) -> None:
    """Recompute each block's activations during backward (memory for compute). The
    blocks are ``model.blocks`` or ``model.layers`` (an ``nn.ModuleList``); weights and
    ``state_dict`` names are unchanged, and RNG draws are replayed in the recompute."""
    from torch.utils.checkpoint import checkpoint

    blocks = getattr(model, "blocks", None)
    blocks = blocks if isinstance(blocks, nn.ModuleList) else getattr(model, "layers", None)
    if not isinstance(blocks, nn.ModuleList):
        raise ParameterError("activation_checkpointing needs the model's blocks as an "
                             "nn.ModuleList named 'blocks' or 'layers'")
    for block in blocks:
        inner = block.forward

        def forward(*args: Any, _f: Callable = inner, **kwargs: Any) -> Any:
            if torch.is_grad_enabled():
                return checkpoint(_f, *args, use_reentrant=False, **kwargs)
            return _f(*args, **kwargs)

        block.forward = forward


def next_token_loss(model: Callable, batch: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``batch[:, 1:]`` given ``batch[:, :-1]`` (module docstring)."""
    logits, _ = model(batch[:, :-1])
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))


def spike_rate_penalty(model: nn.Module) -> torch.Tensor | None:
    r""":math:`\bar r = \frac{1}{|S|} \sum_{m \in S} r_m`: the mean over the modules
    :math:`S` of ``model`` whose last forward left a differentiable firing rate
    ``last_rate`` (:class:`hybrid.spiking_ffn.SpikingFFN`, spikes per neuron per step),
    or ``None`` when there are none (a dense model)."""
    rates = [r for m in model.modules() if (r := getattr(m, "last_rate", None)) is not None]
    return torch.stack(rates).mean() if rates else None


def firing_rates(model: nn.Module) -> dict[str, float]:
    """FFN activity of the last forward as log columns: ``rate.<layer>`` (spikes per
    neuron per step) and ``sparsity.<layer>`` (fraction of token x neuron spike counts
    that are zero) from ``model.ffn_stats()`` (:class:`hybrid.model.HippocampalTransformer`),
    or ``rate.<name>`` from ``model.firing_rates()`` of another model; ``{}`` if neither."""
    stats = getattr(model, "ffn_stats", None)
    if callable(stats):
        out: dict[str, float] = {}
        for layer, s in stats().items():
            out[f"rate.{layer}"] = float(s.firing_rate)
            out[f"sparsity.{layer}"] = float(s.count_sparsity)
        return out
    fn = getattr(model, "firing_rates", None)
    return {f"rate.{k}": float(v) for k, v in dict(fn() if callable(fn) else {}).items()}


@torch.no_grad()
def evaluate(model: nn.Module, windows: torch.Tensor, ctx: DistContext | None = None,
             batch_size: int = 8) -> float:
    """Mean next-token loss over ``windows`` ``[n, L+1]`` (each rank takes every
    ``world_size``-th window; the token-weighted mean is reduced over the ranks)."""
    ctx = ctx or DistContext(device=next(model.parameters()).device)
    was = model.training
    model.eval()
    mine = windows[ctx.rank::ctx.world_size]
    total = torch.zeros(2, dtype=torch.float64, device=ctx.device)
    for k in range(0, len(mine), batch_size):
        part = mine[k:k + batch_size].to(ctx.device)
        total[0] += float(next_token_loss(model, part)) * part[:, 1:].numel()
        total[1] += part[:, 1:].numel()
    total = all_reduce_sum(total, ctx)
    model.train(was)
    return float(total[0] / total[1])


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    import random

    random.seed(seed)


def train(model: nn.Module, data: Any, cfg: TrainConfig, *, out_dir: str | Path,
          resume: bool = True, log: Callable[[dict[str, Any]], None] | None = None,
          ctx: DistContext | None = None, extra_files: Mapping[str, bytes] | None = None,
          until: int | None = None) -> TrainResult:
    """Train ``model`` on ``data`` (an object or mapping with 1-D token arrays ``train``
    and ``val``; ``val`` may be ``None``) for ``cfg.max_steps`` updates in all.

    ``out_dir`` receives ``checkpoints/step-*``, ``train_log.csv`` and ``tensorboard/``.
    With ``resume`` the newest checkpoint there is verified and continued from; without
    it, a folder that already holds checkpoints is refused (nothing saved is
    overwritten). ``log`` is called with each update's row; ``ctx`` is the process group
    (:func:`hybrid.ddp.init_from_env`; default one process on ``cfg.device``);
    ``extra_files`` (name -> bytes, a tokenizer) are stored in every checkpoint.
    ``until``: stop (and save) after that many updates in all, short of ``max_steps``
    (a time-boxed job; the schedule still runs to ``max_steps``).
    """
    from .ddp import pick_device

    if not isinstance(cfg, TrainConfig):
        raise ParameterTypeError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
    if not isinstance(model, nn.Module):
        raise ParameterTypeError(f"model must be an nn.Module, got {type(model).__name__}")
    stop = cfg.max_steps if until is None else until
    if isinstance(stop, bool) or not isinstance(stop, int) or not 0 <= stop <= cfg.max_steps:
        raise ParameterError(f"until must be an integer in [0, max_steps={cfg.max_steps}], "
                             f"got {until!r}")
    get = data.get if isinstance(data, Mapping) else lambda k: getattr(data, k, None)
    ctx = ctx or DistContext(device=pick_device(cfg.device))
    windows = TokenWindows(get("train"), cfg.seq_len, cfg.seed, "train")
    val = get("val")
    val_rows = eval_windows(val, cfg.seq_len, cfg.eval_windows) if val is not None else None
    out, root = Path(out_dir), Path(out_dir) / "checkpoints"
    model.to(ctx.device)
    opt = build_optimizer(model, cfg)
    _seed_all(cfg.seed + ctx.rank)
    start, last = 0, None
    endocrine = (EndocrineLR() if getattr(getattr(model, "config", None), "endocrine_lr", False)
                 else None)
    newest = ck.latest(root)
    if newest is not None and not resume:
        raise FileExistsError(f"{root} already holds checkpoints (newest {newest.name}); "
                              f"resume from it or choose another out_dir")
    if newest is not None:
        saved = ck.load_checkpoint(newest)
        sd = check_restorable(saved, model, opt, cfg)
        rng = rng_for(saved, ctx)
        model.load_state_dict(saved.model, strict=True)
        restore_memories(model, saved)
        if endocrine is not None:
            endocrine.restore(float(saved.state.get("endocrine_level", 0.0)))
        opt.load_state_dict(sd)
        if rng is not None:
            set_rng_state(rng, ctx.device)
        start, last = saved.step, newest
    if cfg.activation_checkpointing:
        enable_activation_checkpointing(model)
    net: Any = model
    if ctx.distributed:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[ctx.device] if
                                      ctx.device.type == "cuda" else None)
    if cfg.compile:
        net = torch.compile(net)
    amp = ctx.device.type == "cuda" and cfg.bf16
    if cfg.bf16 and not amp:
        warnings.warn("bf16 autocast runs on CUDA only; training in the model's dtype",
                      stacklevel=2)
    writer = TrainLog(out, resume_step=start if newest else None,
                      tensorboard=cfg.tensorboard) if ctx.is_main else None
    params = [p for g in opt.param_groups for p in g["params"]]
    rows: list[dict[str, Any]] = []
    t_run = time.perf_counter()
    try:
        for step in range(start, stop):
            t0 = time.perf_counter()
            lr = lr_at(step, cfg) * (endocrine.scale if endocrine else 1.0)
            for g in opt.param_groups:
                g["lr"] = lr
            model.train()
            loss_sum = torch.zeros((), dtype=torch.float64, device=ctx.device)
            for m in range(cfg.grad_accum):
                batch = windows.batch(step * cfg.grad_accum + m, cfg.batch_size, ctx)
                sync = (ctx.distributed and m < cfg.grad_accum - 1)
                with (net.no_sync() if sync else contextlib.nullcontext()), \
                        torch.autocast("cuda", torch.bfloat16, enabled=amp):
                    loss = next_token_loss(net, batch.to(ctx.device))
                    rate = spike_rate_penalty(model) if cfg.spike_rate_weight else None
                objective = loss if rate is None else loss + cfg.spike_rate_weight * rate
                (objective / cfg.grad_accum).backward()
                loss_sum += loss.detach().double()
            norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip or math.inf)
            opt.step()
            opt.zero_grad(set_to_none=True)
            loss_mean = float(all_reduce_sum(loss_sum, ctx)) / (cfg.grad_accum * ctx.world_size)
            if endocrine is not None:
                endocrine.update(loss_mean)
            done = step + 1
            row: dict[str, Any] = {
                "step": done, "tokens": done * cfg.tokens_per_step * ctx.world_size,
                "loss": loss_mean, "ppl": perplexity(loss_mean), "lr": lr,
                "grad_norm": float(norm), "tokens_per_s": cfg.tokens_per_step *
                ctx.world_size / max(time.perf_counter() - t0, 1e-9),
                "elapsed_s": time.perf_counter() - t_run, "val_loss": None, "val_ppl": None,
                **firing_rates(model)}
            if val_rows is not None and (done == stop or _every(done, cfg.eval_every)):
                row["val_loss"] = evaluate(model, val_rows, ctx, cfg.batch_size)
                row["val_ppl"] = perplexity(row["val_loss"])
            if done == stop or _every(done, cfg.save_every):
                last = _save(model, opt, cfg, ctx, root, done, extra_files,
                             {} if endocrine is None else {"endocrine_level": endocrine.level})
            rows.append(row)
            if writer is not None:
                writer.write(row)
            if log is not None and ctx.is_main:
                log(row)
    finally:
        if writer is not None:
            writer.close()
    return TrainResult(max(start, stop), rows, last)


def _every(done: int, k: int) -> bool:
    return k > 0 and done % k == 0


def _save(model: nn.Module, opt: torch.optim.Optimizer, cfg: TrainConfig, ctx: DistContext,
          root: Path, step: int, extra: Mapping[str, bytes] | None,
          more_state: Mapping[str, Any]) -> Path:
    """Gather every rank's RNG states; rank 0 writes the checkpoint; all wait for it."""
    mine = rng_state(ctx.device)
    rng = {}
    for key in sorted(mine):
        for r, t in enumerate(all_gather(mine[key].to(ctx.device if ctx.distributed and
                                                      ctx.device.type == "cuda" else "cpu"),
                                         ctx)):
            rng[f"rank{r}.{key}"] = t.cpu()
    path = root / f"step-{step:08d}"
    if ctx.is_main:
        state = {"step": step, "data": {"micro_batches": step * cfg.grad_accum,
                                        "seed": cfg.seed},
                 "world_size": ctx.world_size, "model_class": type(model).__module__ + "." +
                 type(model).__qualname__, "model_config": model_config_dict(model),
                 "train_config": cfg.to_dict(), "torch": torch.__version__, **more_state}
        ck.save_checkpoint(root, step, model=model.state_dict(), optimizer=opt.state_dict(),
                           rng=rng, state=state,
                           extra_files={**(extra or {}), **memory_files(model)},
                           keep_last=cfg.keep_last)
    barrier(ctx)
    return path


__all__ = ["TrainConfig", "TrainResult", "build_optimizer", "enable_activation_checkpointing",
           "evaluate", "firing_rates", "lr_at", "next_token_loss", "spike_rate_penalty",
           "train"]
