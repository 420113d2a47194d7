"""The activity penalty of hybrid.train: loss = CE + lambda_r * mean over spiking layers of
the firing rate, with the rate's surrogate gradient.

Oracles: the rate of each spiking layer read at its second projection's input by a hook
(the rate readout r = count / T, whose mean is the layer's firing rate), the
cross-entropy by log-softmax and AdamW's update equations, all written here.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from _train_lm import TinyLM, corpus

from aura_snn.errors import ParameterError
from hybrid import HippocampalTransformer, HybridConfig
from hybrid.ddp import TokenWindows
from hybrid.train import spike_rate_penalty, train
from hybrid.train_config import TrainConfig


def _ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    logp = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
    return -logp.gather(-1, target.unsqueeze(-1)).mean()


def _model() -> HippocampalTransformer:
    torch.manual_seed(2)
    cfg = HybridConfig(vocab_size=32, d_model=16, n_heads=2, n_layers=3, d_ff=24, context=16,
                       ffn=["spiking", "dense", "spiking"], T=3)
    model = HippocampalTransformer(cfg).double()
    with torch.no_grad():  # drive the LIF layers so that both spikes and silence occur
        for i in (0, 2):
            model.blocks[i].ffn.fc1.weight.mul_(4.0)
    return model


def _fc2_inputs(model: HippocampalTransformer) -> list[list[torch.Tensor]]:
    seen: list[list[torch.Tensor]] = [[], []]
    for k, i in enumerate((0, 2)):
        model.blocks[i].ffn.fc2.register_forward_pre_hook(
            lambda m, a, _k=k: seen[_k].append(a[0]))
    return seen


@pytest.mark.parametrize("weight", [0.0, 0.7])
def test_training_minimises_ce_plus_weighted_rate(tmp_path, weight: float) -> None:
    model = _model()
    oracle = copy.deepcopy(model)
    seen = _fc2_inputs(oracle)
    tokens = corpus()
    cfg = TrainConfig(lr=1e-2, min_lr=1e-3, warmup_steps=1, max_steps=3, weight_decay=0.2,
                      beta1=0.8, beta2=0.9, eps=1e-6, grad_clip=0.0, batch_size=3, seq_len=10,
                      seed=1, spike_rate_weight=weight, tensorboard=False, device="cpu")
    res = train(model, {"train": tokens, "val": None}, cfg, out_dir=tmp_path)

    win = TokenWindows(tokens, 10, 1)
    params = list(oracle.parameters())
    m1 = [torch.zeros_like(p) for p in params]
    m2 = [torch.zeros_like(p) for p in params]
    rates = []
    for s in range(3):
        batch = win.batch(s, 3)
        logits, _ = oracle(batch[:, :-1])
        ce = _ce(logits, batch[:, 1:])
        rate = (seen[0][-1].mean() + seen[1][-1].mean()) / 2   # mean over the two layers
        rates.append(float(rate.detach()))
        grads = torch.autograd.grad(ce + weight * rate, params)
        # warm-up over 1 step, then cosine from 1e-2 to 1e-3 over the other 2
        lr = 1e-2 if s < 1 else 1e-3 + 0.5 * 9e-3 * (1 + math.cos(math.pi * (s - 1) / 2))
        with torch.no_grad():
            for i, (p, g) in enumerate(zip(params, grads, strict=True)):
                m1[i] = 0.8 * m1[i] + 0.2 * g
                m2[i] = 0.9 * m2[i] + 0.1 * g * g
                mhat, vhat = m1[i] / (1 - 0.8 ** (s + 1)), m2[i] / (1 - 0.9 ** (s + 1))
                p.mul_(1 - lr * (0.2 if p.ndim >= 2 else 0.0))
                p.sub_(lr * mhat / (vhat.sqrt() + 1e-6))
        assert res.rows[s]["loss"] == pytest.approx(float(ce), rel=1e-12)  # CE alone logged
    assert all(0.05 < r < 0.95 for r in rates), rates
    for (name, p), q in zip(model.named_parameters(), oracle.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12, msg=name)


def test_penalty_moves_the_weights_and_lowers_the_rate(tmp_path) -> None:
    # the same run with and without the penalty: first-layer weights differ, and a strong
    # penalty leaves a lower firing rate than none after a few updates
    out = {}
    for weight in (0.0, 5.0):
        model = _model()
        cfg = TrainConfig(lr=1e-2, min_lr=1e-2, warmup_steps=0, max_steps=8, batch_size=4,
                          seq_len=10, spike_rate_weight=weight, tensorboard=False,
                          device="cpu")
        train(model, {"train": corpus(), "val": None}, cfg, out_dir=tmp_path / str(weight))
        with torch.no_grad():
            model(corpus(200)[:100].view(10, 10))
        out[weight] = (model.blocks[0].ffn.fc1.weight.detach().clone(),
                       sum(float(s.firing_rate) for s in model.ffn_stats().values()))
    assert not torch.equal(out[0.0][0], out[5.0][0])
    assert out[5.0][1] < 0.8 * out[0.0][1]


def test_penalty_of_models_without_spiking_layers_and_bad_weight() -> None:
    model = TinyLM()
    model(corpus(50)[:20].view(2, 10))
    assert spike_rate_penalty(model) is None
    dense = HippocampalTransformer(HybridConfig(vocab_size=32, d_model=16, n_heads=2,
                                                n_layers=1, d_ff=8, context=16))
    dense(corpus(50)[:20].view(2, 10))
    assert spike_rate_penalty(dense) is None
    spiking = _model()
    with torch.no_grad():
        spiking(corpus(50)[:20].view(2, 10))
    assert spike_rate_penalty(spiking) is None  # no gradient recorded: nothing to penalise
    with pytest.raises(ParameterError, match=r"spike_rate_weight must be >= 0.*got -0.1"):
        TrainConfig(spike_rate_weight=-0.1)


def test_checkpoint_written_before_the_penalty_existed_resumes_as_penalty_off(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aura_snn.errors import StateMismatchError

    def old_dict(self: TrainConfig) -> dict:          # a TrainConfig without the field
        d = dict(vars(self))
        d.pop("spike_rate_weight")
        return d

    cfg = TrainConfig(lr=1e-2, warmup_steps=0, max_steps=4, batch_size=2, seq_len=8,
                      tensorboard=False, device="cpu")
    with monkeypatch.context() as m:
        m.setattr(TrainConfig, "to_dict", old_dict)
        train(TinyLM(), {"train": corpus(500)}, cfg, out_dir=tmp_path, until=2)
    res = train(TinyLM(), {"train": corpus(500)}, cfg, out_dir=tmp_path)
    assert res.step == 4 and [r["step"] for r in res.rows] == [3, 4]
    on = TrainConfig(**{**vars(cfg), "spike_rate_weight": 0.5})
    with pytest.raises(StateMismatchError, match="train.spike_rate_weight is 0.0 there and 0.5"):
        train(TinyLM(), {"train": corpus(500)}, on, out_dir=tmp_path)
