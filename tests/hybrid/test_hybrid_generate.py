"""Sampling filters against hand computations on a fixed distribution; generation against a
greedy loop written here (window rule, cache on/off), seeds, exact stop strings, errors."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from hybrid.config import HybridConfig
from hybrid.generate import generate
from hybrid.model import HippocampalTransformer
from hybrid.sampling import (
    repetition_penalty,
    select,
    top_k_filter,
    top_p_filter,
    typical_filter,
)
from hybrid.tokenizer import ByteTokenizer

P = [0.4, 0.25, 0.15, 0.1, 0.06, 0.04]
LOGITS = torch.tensor([math.log(p) for p in P], dtype=torch.float64) + 3.0  # any offset


def _kept(logits: torch.Tensor) -> set[int]:
    return {i for i, v in enumerate(logits.tolist()) if v > -math.inf}


def test_top_k_keeps_the_k_largest_and_ties() -> None:
    assert _kept(top_k_filter(LOGITS, 3)) == {0, 1, 2}
    assert _kept(top_k_filter(LOGITS, 1)) == {0}
    assert _kept(top_k_filter(LOGITS, 10)) == set(range(6))
    tied = torch.tensor([1.0, 2.0, 2.0, 0.0])
    assert _kept(top_k_filter(tied, 2)) == {1, 2}
    assert _kept(top_k_filter(tied, 1)) == {1, 2}  # both at the k-th value


def test_top_p_keeps_smallest_set_with_mass_at_least_p() -> None:
    # cumulative mass in probability order: 0.40, 0.65, 0.80, 0.90, 0.96, 1.00
    assert _kept(top_p_filter(LOGITS, 0.3)) == {0}
    assert _kept(top_p_filter(LOGITS, 0.6)) == {0, 1}
    assert _kept(top_p_filter(LOGITS, 0.7)) == {0, 1, 2}
    assert _kept(top_p_filter(LOGITS, 0.93)) == {0, 1, 2, 3, 4}
    assert _kept(top_p_filter(LOGITS, 1.0)) == set(range(6))
    dyadic = torch.tensor([2.0, 1.0, 0.0, 0.0], dtype=torch.float64) * math.log(2.0)
    assert _kept(top_p_filter(dyadic, 0.75)) == {0, 1}  # 1/2 + 1/4, exactly 0.75, is enough
    shuffled = LOGITS[[3, 0, 5, 1, 4, 2]]  # same distribution, other token order
    assert _kept(top_p_filter(shuffled, 0.7)) == {1, 3, 5}


def test_typical_keeps_tokens_closest_to_the_entropy() -> None:
    H = -sum(p * math.log(p) for p in P)  # 1.5255 nats
    dev = [abs(-math.log(p) - H) for p in P]
    order = sorted(range(6), key=lambda i: dev[i])
    assert order == [1, 2, 0, 3, 4, 5]  # the most probable token is not the most typical
    for tau, expected in [(0.2, {1}), (0.3, {1, 2}), (0.5, {1, 2, 0}), (0.85, {1, 2, 0, 3})]:
        mass, kept = 0.0, set()
        for i in order:  # smallest prefix with mass >= tau
            if mass >= tau:
                break
            kept.add(i)
            mass += P[i]
        assert kept == expected
        assert _kept(typical_filter(LOGITS, tau)) == expected


def test_repetition_penalty_divides_positive_multiplies_negative() -> None:
    logits = torch.tensor([2.0, -1.0, 0.5, -3.0])
    out = repetition_penalty(logits, [0, 1, 1], 2.0)
    assert out.tolist() == [1.0, -2.0, 0.5, -3.0]
    assert logits.tolist() == [2.0, -1.0, 0.5, -3.0]  # input untouched
    assert repetition_penalty(logits, [0], 1.0).tolist() == logits.tolist()


def test_select_draws_from_the_filtered_tempered_distribution() -> None:
    g = torch.Generator().manual_seed(5)
    n = 20_000
    draws = [select(LOGITS, temperature=0.5, top_k=4, generator=g) for _ in range(n)]
    w = [P[i] ** 2 for i in range(4)]  # T = 0.5 squares probabilities; top-4 renormalised
    expected = [x / sum(w) for x in w] + [0.0, 0.0]
    for i in range(6):
        freq = draws.count(i) / n
        sigma = math.sqrt(expected[i] * (1 - expected[i]) / n)
        assert abs(freq - expected[i]) <= 4.5 * sigma + 1e-12, (i, freq, expected[i])
    assert select(LOGITS, temperature=0.0) == 0
    assert select(LOGITS, temperature=0.0, previous=[0], repetition=10.0) == 1


def _model(ffn: object = ("dense", "spiking"), context: int = 16) -> HippocampalTransformer:
    torch.manual_seed(7)
    cfg = HybridConfig(vocab_size=259, d_model=32, n_heads=4, n_layers=2, d_ff=32,
                       context=context, ffn=ffn)
    return HippocampalTransformer(cfg).double()


def _reference(model: HippocampalTransformer, prompt: list[int], n: int, seed: int,
               **kw: float) -> list[int]:
    """Decoding that recomputes the window every step (window rule of hybrid.generate:
    when the window would exceed the context, keep the last context // 2 tokens)."""
    C = model.config.context
    g = torch.Generator().manual_seed(seed)
    ids, start, out = list(prompt), 0, []
    with torch.no_grad():
        for _ in range(n):
            if len(ids) - start > C:
                start = len(ids) - C // 2
            logits, _ = model(torch.tensor([ids[start:]]))
            out.append(select(logits[0, -1], previous=ids, generator=g, **kw))
            ids.append(out[-1])
    return out


@pytest.mark.parametrize("ffn", ["dense", ("dense", "spiking")])
def test_generation_with_and_without_cache_equals_reference(ffn: object) -> None:
    model = _model(ffn)
    prompt = [72, 101, 108, 108, 111]
    for kw in (dict(temperature=0.0, repetition=1.5), dict(temperature=1.0, top_k=50)):
        ref = _reference(model, prompt, 30, seed=4, **kw)  # 35 > 16: the window slides
        assert len(set(ref)) > 10  # not a constant run, so the window's content matters
        for use_cache in (True, False):
            got = generate(model, prompt, 30, use_cache=use_cache, seed=4,
                           temperature=kw["temperature"], top_k=kw.get("top_k"),
                           repetition_penalty=kw.get("repetition", 1.0))
            assert got.tokens == ref and got.stop_reason == "length"
    assert model.training  # mode restored


def test_seed_reproducible_and_cache_independent() -> None:
    model = _model()
    kw = dict(temperature=1.0, top_p=0.9, repetition_penalty=1.3)
    a = generate(model, [1, 2, 3], 20, seed=11, **kw)
    assert generate(model, [1, 2, 3], 20, seed=11, **kw).tokens == a.tokens
    assert generate(model, [1, 2, 3], 20, seed=11, use_cache=False, **kw).tokens == a.tokens
    assert generate(model, [1, 2, 3], 20, seed=12, **kw).tokens != a.tokens


def test_stop_strings_stop_exactly() -> None:
    model, tok = _model("dense", context=64), ByteTokenizer()
    full = generate(model, "abc", 40, tokenizer=tok, seed=3, top_k=20, stop_at_eos=False)
    stop = full.text[12:14]
    k = next(k for k in range(1, 41) if stop in tok.decode(full.tokens[:k]))
    got = generate(model, "abc", 40, tokenizer=tok, seed=3, top_k=20, stop=[stop, "\x00zz"],
                   stop_at_eos=False)
    assert got.stop_reason == "stop"
    assert got.tokens == full.tokens[:k]
    assert got.text == tok.decode(full.tokens[:k]).split(stop)[0]
    assert stop not in got.text


def test_eos_stops() -> None:
    model = _model()
    free = generate(model, [5, 6], 10, temperature=0.0)

    class EosAtThird(ByteTokenizer):
        eos_id = free.tokens[2]

    got = generate(model, [5, 6], 10, tokenizer=EosAtThird(), temperature=0.0)
    first = free.tokens.index(free.tokens[2])
    assert got.stop_reason == "eos" and got.tokens == free.tokens[:first + 1]


def test_bad_generation_arguments_named() -> None:
    model = _model(context=8)
    with pytest.raises(ValueError, match="prompt has 9 tokens, longer than the context of 8"):
        generate(model, list(range(9)), 4)
    with pytest.raises(ValueError, match="prompt"):
        generate(model, [], 4)
    with pytest.raises(ValueError, match="prompt: a text prompt needs a tokenizer"):
        generate(model, "hi", 4)
    with pytest.raises(ValueError, match="top_p"):
        generate(model, [1], 4, top_p=0.0)
    with pytest.raises(ValueError, match="typical_p"):
        generate(model, [1], 4, typical_p=1.5)
    with pytest.raises(ValueError, match="temperature"):
        generate(model, [1], 4, temperature=-1.0)
    with pytest.raises(ValueError, match="top_k"):
        generate(model, [1], 4, top_k=0)
    with pytest.raises(ValueError, match="stop"):
        generate(model, [1], 4, stop=["x"])
    assert generate(model, [1], 0).tokens == []


def test_training_after_generation_equals_training_without_it() -> None:
    """``generate`` runs under ``torch.inference_mode``; whatever it leaves behind (the
    rotary tables, the spiking FFN's launch plans and coefficient rows) must be ordinary
    tensors that a training step can save for backward: the gradients after a generation
    equal those of a copy of the model that never generated."""
    model = _model(("spiking", "dense"), context=32)
    twin = copy.deepcopy(model)
    generate(model, [5, 6, 7], 12, temperature=0.0, stop_at_eos=False)
    batch = torch.randint(0, 259, (2, 9))
    grads = []
    for m in (model, twin):
        m.train()
        logits, _ = m(batch[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), batch[:, 1:].reshape(-1))
        grads.append(torch.autograd.grad(loss, list(m.parameters()), allow_unused=True))
    for a, b in zip(*grads, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.equal(a, b)
    assert any(a is not None and float(a.abs().sum()) > 0 for a in grads[0])
