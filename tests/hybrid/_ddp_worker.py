"""One rank of the DDP test (tests/hybrid/test_ddp.py), started by torchrun:
``python -m torch.distributed.run --standalone --nproc_per_node N _ddp_worker.py OUT UNTIL
PER_RANK``."""

from __future__ import annotations

import sys

import torch
from _train_lm import TinyLM, corpus

from hybrid.ddp import init_from_env, shutdown
from hybrid.train import train
from hybrid.train_config import TrainConfig


def config(batch_size: int) -> TrainConfig:
    return TrainConfig(lr=5e-3, min_lr=5e-4, warmup_steps=2, max_steps=6, batch_size=batch_size,
                       seq_len=10, grad_accum=2, grad_clip=0.5, eval_every=3, eval_windows=7,
                       tensorboard=False, device="cpu")


DATA = {"train": corpus(3000), "val": corpus(600, seed=1)}


def run(out: str, until: int, per_rank: int) -> None:
    """Join the group described by the environment and train to step ``until``."""
    torch.set_num_threads(1)
    ctx = init_from_env("cpu")
    torch.manual_seed(0)
    train(TinyLM(), DATA, config(per_rank), out_dir=out, ctx=ctx, until=until)
    shutdown(ctx)


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
