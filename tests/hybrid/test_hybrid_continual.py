"""Continual learning of the hippocampal transformer (``hybrid.continual``).

Oracles: an AdamW loop written here on the same batches (plain fine-tuning; with the
EWC penalty built from a Fisher diagonal computed here from per-window gradients of the
next token's log-probability), perplexities from a cross-entropy computed here, and the
adenosine pressure integrated here in closed form from the logged activities
(:math:`A' = A e^{-\\Delta/\\tau_w} + \\kappa r \\tau_w (1 - e^{-\\Delta/\\tau_w})` awake,
:math:`A e^{-\\Delta/\\tau_s}` asleep), which must put each sleep where the run put it.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from aura_snn.errors import ParameterError
from hybrid.config import HybridConfig
from hybrid.continual import ContinualConfig, continue_training, stdlib_corpus
from hybrid.data import default_split, encode_text, random_batch
from hybrid.ddp import eval_windows
from hybrid.model import HippocampalTransformer
from hybrid.tokenizer import ByteTokenizer
from neuromodulation.adenosine import AdenosineParams

L, B = 16, 4


@pytest.fixture(scope="module")
def corpora() -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    tok = ByteTokenizer()
    a = default_split()
    b = "\n\n".join(stdlib_corpus().values())
    assert len(b) > 100_000 and b[:2000] not in a.train
    enc = lambda t: encode_text(t, tok)  # noqa: E731
    return (enc(a.train[:8000]), enc(a.validation[:4000])), (enc(b[:8000]), enc(b[-4000:]))


def _model(ffn: str = "spiking") -> HippocampalTransformer:
    torch.manual_seed(0)
    cfg = HybridConfig(vocab_size=259, d_model=16, n_heads=2, n_layers=1, d_ff=32,
                       context=32, ffn=ffn, T=2)
    return HippocampalTransformer(cfg).double()


def _ppl(model: HippocampalTransformer, ids: torch.Tensor, n: int) -> float:
    w = eval_windows(ids, L, n)
    with torch.no_grad():
        logits, _ = model(w[:, :-1])
    return math.exp(float(F.cross_entropy(logits.reshape(-1, 259), w[:, 1:].reshape(-1))))


def _by_hand(model, train_a, train_b, cfg: ContinualConfig, lam: float = 0.0):
    gen = torch.Generator().manual_seed(cfg.seed)
    params = [p for p in model.parameters()]
    fisher = [torch.zeros_like(p) for p in params]
    if lam:
        x, y = random_batch(train_a, cfg.fisher_samples, L, gen)
        for i in range(len(x)):
            lp = torch.log_softmax(model(x[i:i + 1])[0][0, -1], -1)
            for f, g in zip(fisher, torch.autograd.grad(lp[y[i, -1]], params), strict=True):
                f += g ** 2 / len(x)
    anchor = [p.detach().clone() for p in params]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    for _ in range(cfg.steps):
        x, y = random_batch(train_b, B, L, gen)
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, 259), y.reshape(-1))
        loss = loss + 0.5 * lam * sum((f * (p - a) ** 2).sum()
                                      for f, p, a in zip(fisher, params, anchor, strict=True))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


@pytest.mark.parametrize("method", ["finetune", "ewc"])
def test_matches_an_adamw_loop_written_here(corpora, method: str) -> None:
    (ta, va), (tb, vb) = corpora
    cfg = ContinualConfig(method=method, steps=4, batch_size=B, seq_len=L, lr=3e-3,
                          weight_decay=0.01, ewc_lambda=500.0, fisher_samples=6,
                          eval_windows=8)
    m = _model()
    ref = _by_hand(copy.deepcopy(m), ta, tb, cfg, cfg.ewc_lambda if method == "ewc" else 0.0)
    ppl_a, ppl_b = _ppl(m, va, 8), _ppl(m, vb, 8)
    res = continue_training(m, (ta, va), (tb, vb), cfg)
    for p, q in zip(m.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-10)
    assert res.ppl_a_before == pytest.approx(ppl_a, rel=1e-12)
    assert res.ppl_b_before == pytest.approx(ppl_b, rel=1e-12)
    assert res.ppl_a_after == pytest.approx(_ppl(ref, va, 8), rel=1e-9)
    assert res.forgetting == pytest.approx(res.ppl_a_after / ppl_a - 1, rel=1e-9)
    assert res.ppl_b_after < res.ppl_b_before  # it learnt B


def test_replay_sleeps_where_adenosine_says(corpora) -> None:
    (ta, va), (tb, vb) = corpora
    p = AdenosineParams(tau_wake=100.0, tau_sleep=2.0, kappa=5e-2, threshold=1.0,
                        wake_level=0.1)
    cfg = ContinualConfig(method="replay", steps=12, batch_size=B, seq_len=L, lr=3e-3,
                          replay_windows=16, replay_batch=4, max_sleep_batches=50,
                          eval_windows=8, adenosine=p)
    res = continue_training(_model(), (ta, va), (tb, vb), cfg)
    wake, asleep = B * L * 2 * 1e-3, 4 * L * 2 * 1e-3  # seconds per batch (T=2, dt=1 ms)
    a, sleeps, batches = 0.0, 0, 0
    for i, row in enumerate(res.log):
        assert row["activity_hz"] > 0
        e = math.exp(-wake / p.tau_wake)
        a = a * e + p.kappa * row["activity_hz"] * p.tau_wake * (1 - e)
        k = 0
        if a >= p.threshold or (i == len(res.log) - 1 and a > p.wake_level):
            k = 1
            a *= math.exp(-asleep / p.tau_sleep)
            while a > p.wake_level:
                a *= math.exp(-asleep / p.tau_sleep)
                k += 1
            sleeps += 1
        assert row["replayed"] == k, i
        assert row["level"] == pytest.approx(a, rel=1e-9)
        batches += k
    assert sleeps >= 2 and (res.sleeps, res.replay_batches) == (sleeps, batches)


def test_bad_input() -> None:
    with pytest.raises(ParameterError, match="method"):
        ContinualConfig(method="sgd")
    with pytest.raises(ParameterError, match="steps"):
        ContinualConfig(steps=0)
    ids = torch.arange(200) % 50
    with pytest.raises(ParameterError, match="no spiking FFN"):
        continue_training(_model("dense"), (ids, ids), (ids, ids),
                          ContinualConfig(method="replay", seq_len=L))
