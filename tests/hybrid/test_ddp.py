"""hybrid.ddp: two CPU processes (gloo) train like one process with the same global batch.

Oracle: a one-process run of 2b windows per micro-batch, the global batch the two
ranks of b share. The ranks read exactly its rows (counter-indexed windows), so the
only differences are floating-point summation orders: DDP averages two half-batch
gradients, ``(g_0 + g_1) / 2``, where one process differentiates the full-batch mean.
Tolerance, float64: losses and validation losses to 1e-12 relative, gradient norms to
1e-10, weights to 1e-10 after 6 AdamW steps (differences seen: ~1e-16 and ~1e-15).

The ranks are forked from the test process (they inherit the imported torch, so a
launch costs no imports) with the environment ``torchrun`` would give them; one test
runs the real command, ``python -m torch.distributed.run --standalone``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from _ddp_worker import DATA, config, run
from _train_lm import TinyLM

import hybrid.checkpoint as ck
from hybrid.train import TrainResult, train
from hybrid.train_log import read_log

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, world: int, port: int, out: str, until: int, per_rank: int) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    run(out, until, per_rank)


def forked(out: Path, until: int, per_rank: int = 2, world: int = 2) -> None:
    mp.start_processes(_rank, args=(world, _free_port(), str(out), until, per_rank),
                       nprocs=world, start_method="fork")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[TrainResult, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    single = TinyLM()
    res = train(single, DATA, config(4), out_dir=tmp_path_factory.mktemp("one"))
    return res, single.state_dict()


def check_against(out: Path, reference) -> None:
    ref, weights = reference
    rows = read_log(out / "train_log.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 7))
    for r, e in zip(rows, ref.rows, strict=True):
        assert float(r["loss"]) == pytest.approx(e["loss"], rel=1e-12, abs=0)
        assert float(r["grad_norm"]) == pytest.approx(e["grad_norm"], rel=1e-10, abs=0)
        assert int(r["tokens"]) == e["tokens"]
        if e["val_loss"] is not None:
            assert float(r["val_loss"]) == pytest.approx(e["val_loss"], rel=1e-12, abs=0)
    saved = ck.load_checkpoint(ck.latest(out / "checkpoints"))
    assert saved.state["world_size"] == 2
    assert {"rank0.torch_cpu", "rank1.torch_cpu"} <= set(saved.rng)
    assert not torch.equal(saved.rng["rank0.torch_cpu"], saved.rng["rank1.torch_cpu"])
    for name, w in weights.items():
        torch.testing.assert_close(saved.model[name], w, rtol=1e-10, atol=1e-12, msg=name)


def test_two_gloo_ranks_match_one_process_and_resume(tmp_path, reference) -> None:
    forked(tmp_path / "ddp", 6)
    check_against(tmp_path / "ddp", reference)
    forked(tmp_path / "cut", 3)  # the same run cut in two, both halves on 2 ranks
    forked(tmp_path / "cut", 6)
    check_against(tmp_path / "cut", reference)


@pytest.mark.slow  # three interpreters importing torch: ~10 s idle, ~40 s on a loaded box
def test_the_torchrun_command(tmp_path, reference) -> None:
    out = tmp_path / "torchrun"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(HERE / "_ddp_worker.py"), str(out), "6", "2"],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_against(out, reference)
