"""hybrid.train: schedule, accumulation, clipping, AdamW, windows, evaluation, logs.

Oracles: the schedule's closed form written here and torch's own LinearLR +
CosineAnnealingLR; a full-batch step written out here (loss by log-softmax, global
norm clipping, AdamW's update equations) against gradient accumulation; splitmix64
written here for the window offsets; spike counts read at the spiking FFN's second
projection by a hook for the logged firing rates.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from _train_lm import TinyLM, corpus

import hybrid.checkpoint as ck
from aura_snn.errors import ConfigError, ParameterError, ParameterTypeError
from hybrid.ddp import DistContext, TokenWindows, eval_windows
from hybrid.train import enable_activation_checkpointing, evaluate, train
from hybrid.train_config import TrainConfig, lr_at
from hybrid.train_log import read_log


def closed_form_lr(s: int, lr: float, lo: float, w: int, n: int) -> float:
    if s < w:
        return lr * (s + 1) / w
    return lo + (lr - lo) * (1 + math.cos(math.pi * (s - w) / (n - w))) / 2


def test_schedule_matches_closed_form_and_torch_schedulers() -> None:
    cfg = TrainConfig(lr=1e-3, min_lr=1e-4, warmup_steps=5, max_steps=40)
    ours = [lr_at(s, cfg) for s in range(40)]
    np.testing.assert_allclose(ours, [closed_form_lr(s, 1e-3, 1e-4, 5, 40) for s in range(40)],
                               rtol=1e-15)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1e-3)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [
        torch.optim.lr_scheduler.LinearLR(opt, 1 / 5, 1.0, total_iters=4),
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=35, eta_min=1e-4)],
        milestones=[5])
    theirs = []
    for _ in range(40):
        theirs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert ours[4] == pytest.approx(1e-3) and ours[5] == pytest.approx(1e-3)
    assert lr_at(0, TrainConfig(lr=2e-3, warmup_steps=0, max_steps=3)) == 2e-3


def splitmix(x: int) -> int:
    m = (1 << 64) - 1
    z = (x + 0x9E3779B97F4A7C15) & m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return z ^ (z >> 31)


def test_windows_are_counter_indexed_and_shard_the_global_batch() -> None:
    tokens = torch.arange(1000) * 7 % 501
    win = TokenWindows(tokens, 16, seed=3)
    key = splitmix(3)
    starts = [splitmix(key + 5 * 6 + j) % (1000 - 16) for j in range(6)]
    expect = torch.stack([tokens[s:s + 17] for s in starts])
    assert torch.equal(win.batch(5, 6), expect)
    shards = [win.batch(5, 2, DistContext(rank=r, world_size=3)) for r in range(3)]
    assert torch.equal(torch.cat(shards), expect)
    mm = TokenWindows(tokens.numpy().astype(np.uint16), 16, seed=3)
    assert torch.equal(mm.batch(5, 6), expect)
    with pytest.raises(ParameterError, match="seq_len=16 needs at least 17 tokens"):
        TokenWindows(tokens[:16], 16, 0)
    with pytest.raises(ParameterTypeError, match="integer token ids"):
        TokenWindows(tokens.double(), 16, 0)


def ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    logp = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
    return -logp.gather(-1, target.unsqueeze(-1)).mean()


@pytest.mark.parametrize("accum,b,clip", [(3, 2, 0.05), (1, 6, 0.0), (2, 3, 1e9)])
def test_accumulation_equals_one_full_batch_adamw_step(tmp_path, accum, b, clip) -> None:
    torch.manual_seed(1)
    model = TinyLM()
    oracle = copy.deepcopy(model)
    tokens = corpus()
    cfg = TrainConfig(lr=1e-2, min_lr=1e-3, warmup_steps=1, max_steps=3, weight_decay=0.3,
                      beta1=0.8, beta2=0.9, eps=1e-6, grad_clip=clip, grad_accum=accum,
                      batch_size=b, seq_len=12, seed=4, tensorboard=False, device="cpu")
    res = train(model, {"train": tokens, "val": None}, cfg, out_dir=tmp_path)

    win = TokenWindows(tokens, 12, 4)
    params = list(oracle.parameters())
    m1 = [torch.zeros_like(p) for p in params]
    m2 = [torch.zeros_like(p) for p in params]
    for s in range(3):
        batch = torch.cat([win.batch(s * accum + m, b) for m in range(accum)])
        logits, _ = oracle(batch[:, :-1])
        loss = ce(logits, batch[:, 1:])
        grads = torch.autograd.grad(loss, params)
        loss = loss.detach()
        norm = torch.sqrt(sum((g * g).sum() for g in grads))
        scale = min(1.0, clip / (float(norm) + 1e-6)) if clip else 1.0
        lr = closed_form_lr(s, 1e-2, 1e-3, 1, 3)
        with torch.no_grad():
            for i, (p, g) in enumerate(zip(params, grads, strict=True)):
                g = g * scale
                m1[i] = 0.8 * m1[i] + 0.2 * g
                m2[i] = 0.9 * m2[i] + 0.1 * g * g
                mhat, vhat = m1[i] / (1 - 0.8 ** (s + 1)), m2[i] / (1 - 0.9 ** (s + 1))
                decay = 0.3 if p.ndim >= 2 else 0.0
                p.mul_(1 - lr * decay).sub_(lr * mhat / (vhat.sqrt() + 1e-6))
        row = res.rows[s]
        assert row["loss"] == pytest.approx(float(loss), rel=1e-12)
        assert row["grad_norm"] == pytest.approx(float(norm), rel=1e-12)
        assert row["lr"] == pytest.approx(lr, rel=1e-15)
        assert row["tokens"] == (s + 1) * accum * b * 12
    if clip == 0.05:
        assert all(r["grad_norm"] > 0.05 for r in res.rows)  # clipping was active
    for (name, p), q in zip(model.named_parameters(), oracle.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-11, atol=1e-13, msg=name)


def test_log_csv_evaluation_and_firing_rates(tmp_path) -> None:
    from hybrid import HippocampalTransformer, HybridConfig

    torch.manual_seed(0)
    model = HippocampalTransformer(HybridConfig(vocab_size=32, d_model=16, n_heads=2,
                                                n_layers=2, d_ff=24, context=16,
                                                ffn=["dense", "spiking"], T=3)).double()
    seen: list[torch.Tensor] = []
    model.blocks[1].ffn.fc2.register_forward_pre_hook(lambda m, a: seen.append(a[0].detach()))
    tokens = corpus()
    cfg = TrainConfig(lr=3e-3, warmup_steps=1, max_steps=4, batch_size=3, seq_len=10,
                      eval_every=2, eval_windows=5, tensorboard=False, device="cpu")
    res = train(model, {"train": tokens[:3000], "val": tokens[3000:]}, cfg, out_dir=tmp_path)
    rows = read_log(tmp_path / "train_log.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    for r, mem in zip(rows, res.rows, strict=True):
        assert float(r["loss"]) == mem["loss"]
        assert float(r["ppl"]) == pytest.approx(math.exp(float(r["loss"])), rel=1e-12)
        assert int(r["tokens"]) == int(r["step"]) * 3 * 10
    assert [r["val_loss"] != "" for r in rows] == [False, True, False, True]
    # firing rate of the last training forward: the mean of spike count / T at fc2's
    # input; the final evaluation's forwards (5 windows in batches of 3) come after it
    n_eval_batches = math.ceil(5 / 3)
    train_rate = float(seen[-1 - n_eval_batches].mean())
    assert float(rows[-1]["rate.1"]) == pytest.approx(train_rate, rel=1e-6)
    spikes = seen[-1 - n_eval_batches] * 3
    assert float(rows[-1]["sparsity.1"]) == pytest.approx(float((spikes == 0).double().mean()))
    # validation loss: token-weighted mean cross-entropy over the fixed windows
    val = eval_windows(tokens[3000:], 10, 5)
    with torch.no_grad():
        model.eval()
        logits, _ = model(val[:, :-1])
        expect = float(ce(logits, val[:, 1:]))
    assert float(rows[-1]["val_loss"]) == pytest.approx(expect, rel=1e-12)
    assert evaluate(model, val, batch_size=2) == pytest.approx(expect, rel=1e-12)
    # a line cut by a kill is dropped, the rest still parses
    text = (tmp_path / "train_log.csv").read_text()
    (tmp_path / "train_log.csv").write_text(text + text.splitlines()[-1][:7])
    assert len(read_log(tmp_path / "train_log.csv")) == 4


def test_activation_checkpointing_gives_the_same_gradients() -> None:
    from hybrid import HippocampalTransformer, HybridConfig

    cfg = HybridConfig(vocab_size=32, d_model=16, n_heads=2, n_layers=2, d_ff=24, context=16,
                       ffn=["spiking", "dense"], T=2, dropout=0.2)
    torch.manual_seed(0)
    plain = HippocampalTransformer(cfg).double()
    ckpt = copy.deepcopy(plain)
    enable_activation_checkpointing(ckpt)
    x = corpus(200)[:66].view(6, 11)
    grads = []
    for m in (plain, ckpt):
        torch.manual_seed(5)
        logits, _ = m(x[:, :-1])
        grads.append(torch.autograd.grad(ce(logits, x[:, 1:]), list(m.parameters())))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    assert ckpt.state_dict().keys() == plain.state_dict().keys()
    with pytest.raises(ParameterError, match="'blocks' or 'layers'"):
        enable_activation_checkpointing(torch.nn.Linear(2, 2))


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ParameterError, match=r"TrainConfig\.lr must be > 0, got -1"):
        TrainConfig(lr=-1)
    with pytest.raises(ParameterError, match=r"warmup_steps must be in \[0, max_steps=10\)"):
        TrainConfig(warmup_steps=10, max_steps=10)
    with pytest.raises(ParameterTypeError, match=r"grad_accum must be an integer, got 1.5"):
        TrainConfig(grad_accum=1.5)
    with pytest.raises(ParameterTypeError, match=r"bf16 must be true or false"):
        TrainConfig(bf16="yes")
    with pytest.raises(ConfigError, match=r"train\.lrate: unknown key"):
        TrainConfig.from_dict({"lrate": 1.0})
    assert TrainConfig.from_dict(TrainConfig(lr=2e-3).to_dict()) == TrainConfig(lr=2e-3)


def test_bf16_on_cpu_warns_and_trains_in_the_model_dtype(tmp_path) -> None:
    cfg = TrainConfig(max_steps=1, warmup_steps=0, batch_size=2, seq_len=8, bf16=True,
                      tensorboard=False, device="cpu")
    with pytest.warns(UserWarning, match="bf16 autocast runs on CUDA only"):
        res = train(TinyLM(), {"train": corpus(500)}, cfg, out_dir=tmp_path)
    assert res.step == 1


@pytest.mark.slow  # inductor compiles C++ on first use: ~20 s on CPU
def test_compiled_model_trains_like_the_eager_one(tmp_path) -> None:
    losses = {}
    for comp in (False, True):
        torch.manual_seed(0)
        model = TinyLM(dtype=torch.float32)
        cfg = TrainConfig(max_steps=4, warmup_steps=1, batch_size=4, seq_len=16, compile=comp,
                          tensorboard=False, device="cpu")
        res = train(model, {"train": corpus(2000)}, cfg, out_dir=tmp_path / str(comp))
        losses[comp] = [r["loss"] for r in res.rows]
        saved = ck.load_checkpoint(res.checkpoint).model
        assert saved.keys() == model.state_dict().keys()  # no "_orig_mod." prefixes
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-5)


def test_endocrine_lr_multiplies_the_cosine_schedule(tmp_path) -> None:
    """Logged rate = closed-form schedule x endocrine factor of the losses so far, with the
    hormone written here: h <- h + (1 - e^{-1/60})(loss - h), f = clip(e^{-0.5 h}, 0.1, 10)
    (rel 1e-6: the gate computes in float32)."""
    import types

    torch.manual_seed(2)
    model = TinyLM()
    model.config = types.SimpleNamespace(endocrine_lr=True)
    cfg = TrainConfig(lr=1e-2, min_lr=1e-3, warmup_steps=2, max_steps=5, batch_size=2,
                      seq_len=12, seed=3, tensorboard=False, device="cpu")
    res = train(model, {"train": corpus(), "val": None}, cfg, out_dir=tmp_path)
    h, f = 0.0, 1.0
    for s, row in enumerate(res.rows):
        assert row["lr"] == pytest.approx(closed_form_lr(s, 1e-2, 1e-3, 2, 5) * f, rel=1e-6)
        h = h + (1 - math.exp(-1 / 60)) * (row["loss"] - h)
        f = min(max(math.exp(-0.5 * h), 0.1), 10.0)
    assert f < 0.99  # the factor really moved the rate
    torch.manual_seed(2)
    again = TinyLM()
    again.config = model.config
    part = [r["lr"] for r in train(again, {"train": corpus(), "val": None}, cfg,
                                   out_dir=tmp_path / "cut", until=3).rows]
    part += [r["lr"] for r in train(again, {"train": corpus(), "val": None}, cfg,
                                    out_dir=tmp_path / "cut").rows]
    assert part == [r["lr"] for r in res.rows]  # the hormone level resumes too
