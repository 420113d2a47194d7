"""Episodic memory in the loop (hybrid.memory_layer) and one-shot recall (hybrid.one_shot).

Oracles: a per-query softmax over context + memories written out in the test; the
written pairs recomputed from the embedding (layer 0 under rotary positions sees
LN(E[w]) exactly) and the amygdala equation written here; the full forward for the KV
cache; the fact table itself for recall (chance = 1 / number of values).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from aura_snn.errors import ParameterError
from hybrid.config import HybridConfig
from hybrid.memory_layer import Retrieved
from hybrid.model import HippocampalTransformer
from hybrid.one_shot import clear_memory, memorize, memory_mode, one_shot_memorize_and_generate


def _tiny(**kw) -> HippocampalTransformer:
    torch.manual_seed(0)
    cfg = dict(vocab_size=40, d_model=16, n_heads=2, n_layers=2, d_ff=32, context=32,
               memory_layers=(0, 1), memory_top_k=3, memory_write_threshold=0.2)
    cfg.update(kw)
    return HippocampalTransformer(HybridConfig(**cfg)).double().eval()


@torch.no_grad()
def test_memory_attention_equals_per_query_softmax() -> None:
    model = _tiny()
    attn = model.blocks[0].attn
    g = torch.Generator().manual_seed(3)
    B, L, k, d, H, dh = 2, 5, 3, 16, 2, 8
    x = torch.randn(B, L, d, generator=g, dtype=torch.float64)
    states = torch.randn(B, L, k, d, generator=g, dtype=torch.float64)
    scores = torch.rand(B, L, k, generator=g, dtype=torch.float64)
    scores[0, 1, 2] = -math.inf  # a missing memory
    beta = torch.tensor([2.0, -1.5], dtype=torch.float64)
    y, _ = attn(x, None, None, Retrieved(states, scores), beta)
    Wq, Wk, Wv = attn.qkv.weight.split(d)
    out = torch.zeros(B, L, d, dtype=torch.float64)
    for b in range(B):
        for p in range(L):
            for h in range(H):
                sl = slice(h * dh, (h + 1) * dh)
                q = Wq[sl] @ x[b, p]
                keys = [Wk[sl] @ x[b, i] for i in range(p + 1)]
                vals = [Wv[sl] @ x[b, i] for i in range(p + 1)]
                logits = [float(q @ kk) / math.sqrt(dh) for kk in keys]
                for j in range(k):
                    if scores[b, p, j] == -math.inf:
                        continue
                    km, vm = Wk[sl] @ states[b, p, j], Wv[sl] @ states[b, p, j]
                    logits.append(float(q @ km) / math.sqrt(dh) + float(beta[h] * scores[b, p, j]))
                    vals.append(vm)
                w = torch.softmax(torch.tensor(logits, dtype=torch.float64), 0)
                out[b, p, sl] = sum(wi * vi for wi, vi in zip(w, vals, strict=True))
    want = out @ attn.proj.weight.T
    assert torch.allclose(y, want, atol=1e-12)


def test_writes_are_the_salient_pairs_with_amygdala_strength() -> None:
    model = _tiny()
    seq = [3, 7, 11, 7, 11, 5]  # cues 7 and 11 come twice: their second pairs are not novel
    with memory_mode(model, writing=True):
        model(torch.tensor([seq]))
    mem = model.blocks[0].memory
    entries = mem.store.get(mem.store.ids)
    ln = model.blocks[0].ln1
    x = F.layer_norm(model.embed.weight[seq], (16,), ln.weight, ln.bias, ln.eps).detach()
    unit = F.normalize(x, dim=-1)
    written, seen = [], []
    for t in range(1, len(seq)):
        nu = 1.0 - max([float(unit[t - 1] @ u) for u in seen] + [-1.0])
        seen.append(unit[t - 1])
        s = 1.0 / (1.0 + math.exp(-4.0 * (nu - 0.5)))  # Amygdala defaults, reward 0
        if s >= 0.2:
            written.append((t, 0.1 + 0.9 * s))
    assert len(written) == len(entries.ids) == 3  # 3->7, 7->11, 11->7
    for row, (t, m) in enumerate(written):
        assert torch.allclose(entries.keys[row], unit[t - 1], atol=1e-12)
        assert torch.allclose(entries.values[row], m * x[t], atol=1e-12)
        assert entries.importance[row] == pytest.approx(m, abs=1e-12)


def test_kv_cache_and_chunked_writes_equal_the_full_forward() -> None:
    """Retrieval through the KV cache gives the full forward's logits; writes made one
    token at a time (the pair across the call boundary carried in the cache) equal the
    writes of one call (no repeated cue here, so novelty is the same both ways) in layer
    0, whose input does not depend on retrieval. (Deeper layers differ by design: a token
    written in one call is retrieved by the next, never within its own call.)"""
    full, inc = _tiny(), _tiny()
    fact = [[1, 2, 3, 4], [9, 8, 7, 6], [20, 21, 22, 23]]
    for m in (full, inc):
        memorize(m, fact)
    seq = torch.tensor([[5, 1, 2, 30, 9, 8, 31, 12]])
    want, _ = full(seq)
    logits, cache = inc(seq[:, :3])
    got = [logits]
    for t in range(3, seq.shape[1]):
        logits, cache = inc(seq[:, t:t + 1], cache)
        got.append(logits)
    assert torch.allclose(torch.cat(got, 1), want, atol=1e-12)
    with memory_mode(full, writing=True):
        full(seq)
    with memory_mode(inc, writing=True):
        _, cache = inc(seq[:, :3])
        for t in range(3, seq.shape[1]):
            _, cache = inc(seq[:, t:t + 1], cache)
    a, b = full.blocks[0].memory.store, inc.blocks[0].memory.store
    ea, eb = a.get(a.ids), b.get(b.ids)
    assert len(ea.ids) == len(eb.ids) == 9 + 3  # 3 per fact; seq: cues 5, 30, 31 are new
    assert torch.allclose(ea.keys, eb.keys, atol=1e-12)
    assert torch.allclose(ea.values, eb.values, atol=1e-12)


def test_memory_off_is_the_plain_model() -> None:
    """With reading off (or an empty store) a memory model computes the plain model."""
    plain = _tiny(memory_layers=())
    model = _tiny()
    model.load_state_dict(plain.state_dict(), strict=False)
    memorize(model, [[1, 2, 3]])
    seq = torch.tensor([[1, 2, 5, 6]])
    with memory_mode(model, writing=False, reading=False):
        assert torch.allclose(model(seq)[0], plain(seq)[0], atol=1e-12)


KEYS, VALUES, FACTS = 48, 16, 16


@pytest.fixture(scope="module")
def recall_model() -> HippocampalTransformer:
    """A one-layer memory model trained ~6 s to answer a cue from retrieved memory: each
    episode writes 16 fresh (cue, value) facts once, then asks every cue. One thread: the
    steps are small ops, and on shared cores torch's thread pool made them ~30x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_recall_model()
    finally:
        torch.set_num_threads(threads)


def _train_recall_model() -> HippocampalTransformer:
    torch.manual_seed(0)
    cfg = HybridConfig(vocab_size=KEYS + VALUES, d_model=64, n_heads=2, n_layers=1, d_ff=64,
                       context=16, memory_layers=(0,), memory_top_k=4,
                       memory_write_threshold=0.2)
    model = HippocampalTransformer(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    for _ in range(250):
        cues, values = _episode(g)
        clear_memory(model)
        memorize(model, [[int(c), int(v)] for c, v in zip(cues, values, strict=True)])
        model.train()
        logits, _ = model(cues.view(-1, 1))
        loss = F.cross_entropy(logits[:, 0], values)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def _episode(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randperm(KEYS, generator=g)[:FACTS], KEYS + torch.randint(VALUES, (FACTS,),
                                                                           generator=g)


def test_one_shot_recall_on_and_near_chance_off(recall_model) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        hits, total = _recall(recall_model)
    finally:
        torch.set_num_threads(threads)
    chance = 1.0 / VALUES
    assert hits[True] / total >= 0.95
    assert hits[False] / total <= 3 * chance  # 80 draws at p = 1/16: mean 5, this is 15


def _recall(recall_model: HippocampalTransformer) -> tuple[dict[bool, int], int]:
    g = torch.Generator().manual_seed(12345)  # fact tables never seen in training
    hits = {True: 0, False: 0}
    total = 0
    for _ in range(5):
        cues, values = _episode(g)
        facts = [[int(c), int(v)] for c, v in zip(cues, values, strict=True)]
        for c, v in facts:
            for on in (True, False):
                out = one_shot_memorize_and_generate(recall_model, facts, [c], 1, use_memory=on)
                hits[on] += out.tokens == [v]
            total += 1
    return hits, total


def test_bad_input() -> None:
    with pytest.raises(ParameterError, match="memory_layers is empty"):
        memorize(_tiny(memory_layers=()), [[1, 2]])
    with pytest.raises(ParameterError, match=r"facts\[1\]: a fact needs at least 2 tokens"):
        memorize(_tiny(), [[1, 2], [3]])
    with pytest.raises(ParameterError, match=r"facts\[0\].*\[0, 40\)"):
        memorize(_tiny(), [[1, 99]])
    with pytest.raises(ParameterError, match="facts must be a non-empty sequence"):
        memorize(_tiny(), [])
    with pytest.raises(ParameterError, match="memory_top_k must be >= 1, got 0"):
        HybridConfig(memory_layers=(0,), memory_top_k=0)
    with pytest.raises(ParameterError, match="memory_layers: layer index 4 is past the depth"):
        HybridConfig(n_layers=4, memory_layers=(4,))
    with pytest.raises(ParameterError, match="memory_write_threshold must lie in"):
        HybridConfig(memory_write_threshold=-0.1)
