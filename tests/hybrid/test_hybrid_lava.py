"""A spiking FFN block of a trained hippocampal transformer run in Lava inside generation.

The ANN core runs in PyTorch; layer 1's FFN is handed over as an ``aura_snn`` module
(:meth:`hybrid.spiking_part.EventFFN.stack`, ``Linear -> LIF``), quantised by
``hardware.loihi`` and run by ``hardware.lava`` in Lava 0.10's own bit-accurate
simulator (``fixed_pt``), one Lava run per token holding its input for the ``T`` steps.
Oracle: Lava's simulator. The same block's fixed-point twin run all in PyTorch
(``hardware.loihi``, the same quantisation) must give the same spikes at every call and
so the same tokens (sampled with one seed, so the tokens vary and a changed logit would
likely show). The glue (a callable per block) lives here: ``hybrid`` does not import
``hardware``.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

from hybrid.config import HybridConfig
from hybrid.data import default_split, encode_text, random_batch
from hybrid.generate import generate
from hybrid.model import HippocampalTransformer
from hybrid.spiking_part import EventFFN, ffn_module, replaced_ffns
from hybrid.tokenizer import ByteTokenizer
from hybrid.train import next_token_loss

pytestmark = pytest.mark.skipif(importlib.util.find_spec("lava") is None,
                                reason="lava-nc not installed (make setup installs it)")

QUANT = {"approximate_reset": True}  # Lava resets v to 0; the model subtracts theta
NEW, SAMPLE = 6, {"temperature": 0.8, "seed": 3}  # sampled: varied tokens, one stream


def _trained_model(steps: int = 12) -> tuple[HippocampalTransformer, ByteTokenizer]:
    torch.manual_seed(0)
    tok = ByteTokenizer()
    cfg = HybridConfig(vocab_size=tok.vocab_size, d_model=32, n_heads=2, n_layers=2, d_ff=48,
                       context=32, ffn=["dense", "spiking"], T=4)
    model = HippocampalTransformer(cfg)
    ids = encode_text(default_split().train[:20000], tok)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        x, y = random_batch(ids, 8, 32, g)
        loss = next_token_loss(model, torch.cat([x, y[:, -1:]], dim=1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), tok


def _block(ev: EventFFN, runner, log: list[torch.Tensor]):
    """``x [..., d] -> y`` through ``runner(stack, drive) -> spikes [T, N, d_ff]``."""
    stack = ev.stack()

    def fn(x: torch.Tensor) -> torch.Tensor:
        spikes = runner(stack, ev.drive(x).detach().double())
        log.append(spikes.detach().clone())
        return ev.readout_of(spikes, x.shape)
    return fn


def test_generation_with_lava_block_equals_fixed_point_twin() -> None:
    from hardware import lava
    from hardware.loihi import quantize

    model, tok = _trained_model()
    ev = ffn_module(model, 1)
    twin = quantize(ev.stack(), **QUANT)
    prompt = tok.encode("The with ")[:6]
    twin_log: list[torch.Tensor] = []
    lava_log: list[torch.Tensor] = []
    with torch.no_grad():
        with replaced_ffns(model, {1: _block(ev, lambda _s, d: twin(d), twin_log)}):
            ref = generate(model, prompt, NEW, **SAMPLE).tokens
        with replaced_ffns(model, {1: _block(ev, lambda s, d: lava.run(s, d, "fixed_pt", **QUANT),
                                             lava_log)}):
            got = generate(model, prompt, NEW, **SAMPLE).tokens
        float_tokens = generate(model, prompt, NEW, **SAMPLE).tokens
    assert got == ref and len(got) == NEW and len(set(got)) > 1
    assert len(lava_log) == len(twin_log) == NEW  # the prompt, then cached one-token steps
    assert [tuple(s.shape) for s in lava_log] == ([(4, len(prompt), 48)]
                                                  + [(4, 1, 48)] * (NEW - 1))
    for a, b in zip(lava_log, twin_log, strict=True):
        assert torch.equal(a, b)
    rate = float(torch.cat([s.reshape(-1) for s in lava_log]).mean())
    assert 0.0 < rate < 1.0, rate  # the block is active, so equality is not vacuous
    assert len(float_tokens) == NEW  # the float model runs (it may choose other tokens)
