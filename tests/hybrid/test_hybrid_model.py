"""HippocampalTransformer: RoPE against a complex-number form, attention against an explicit
softmax, the KV cache against the full forward, the state dict against safetensors."""

from __future__ import annotations

import math

import pytest
import torch

from hybrid.config import HybridConfig
from hybrid.model import CausalSelfAttention, HippocampalTransformer
from hybrid.rotary import apply_rotary, full_tables, rotary_tables


def _rope_complex(x: torch.Tensor, positions: torch.Tensor, base: float) -> torch.Tensor:
    """RoPE written with complex numbers: z_i = x_i + i x_{i+h}, z_i * exp(i m base^(-2i/d))."""
    d = x.shape[-1]
    h = d // 2
    z = torch.complex(x[..., :h], x[..., h:])
    omega = base ** (-2.0 * torch.arange(h, dtype=torch.float64) / d)
    z = z * torch.exp(1j * positions.double()[:, None] * omega)
    return torch.cat((z.real, z.imag), dim=-1)


def test_rotary_equals_complex_form_and_is_relative() -> None:
    torch.manual_seed(0)
    d, base = 16, 500.0
    x = torch.randn(2, 3, 11, d, dtype=torch.float64)
    pos = torch.arange(7, 18)
    got = apply_rotary(x, *rotary_tables(pos, d, base, torch.float64))
    torch.testing.assert_close(got, _rope_complex(x, pos, base), rtol=0, atol=1e-12)
    q, k = torch.randn(d, dtype=torch.float64), torch.randn(d, dtype=torch.float64)

    def score(m: int, n: int) -> float:
        cq, sq = rotary_tables(torch.tensor([m]), d, base, torch.float64)
        ck, sk = rotary_tables(torch.tensor([n]), d, base, torch.float64)
        return float(apply_rotary(q[None], cq, sq) @ apply_rotary(k[None], ck, sk).T)

    for m, n in [(5, 2), (40, 1), (3, 9)]:
        for shift in (1, 17, 300):
            assert score(m + shift, n + shift) == pytest.approx(score(m, n), abs=1e-10)
    assert abs(score(5, 2) - score(6, 2)) > 1e-3  # and it does depend on m - n


def _explicit_attention(attn: CausalSelfAttention, x: torch.Tensor, base: float) -> torch.Tensor:
    """softmax(Q K^T / sqrt(d_h) + causal mask) V per head, RoPE by the complex form."""
    B, L, d = x.shape
    H, dh = attn.n_heads, attn.head_dim
    q, k, v = (x @ attn.qkv.weight.T).split(d, dim=-1)
    q, k, v = (t.reshape(B, L, H, dh).transpose(1, 2) for t in (q, k, v))
    pos = torch.arange(L)
    q, k = _rope_complex(q, pos, base), _rope_complex(k, pos, base)
    scores = q @ k.transpose(-1, -2) / math.sqrt(dh)
    mask = torch.full((L, L), -math.inf, dtype=x.dtype).triu(1)
    y = torch.softmax(scores + mask, dim=-1) @ v
    return y.transpose(1, 2).reshape(B, L, d) @ attn.proj.weight.T


def test_attention_equals_explicit_softmax_with_and_without_cache() -> None:
    torch.manual_seed(1)
    cfg = HybridConfig(d_model=24, n_heads=3, n_layers=1, d_ff=8, context=32,
                       rotary_base=1000.0)
    attn = CausalSelfAttention(cfg).double()
    with torch.no_grad():
        attn.qkv.weight.normal_(0, 0.5)
    x = torch.randn(2, 10, 24, dtype=torch.float64)
    ref = _explicit_attention(attn, x, 1000.0)
    rope = full_tables(*rotary_tables(torch.arange(10), cfg.head_dim, 1000.0, torch.float64))
    y, _ = attn(x, rope, None)
    torch.testing.assert_close(y, ref, rtol=0, atol=1e-12)
    # 4 cached positions, then 6 queries at once: the offset causal mask
    r1 = tuple(t[:4] for t in rope)
    r2 = tuple(t[4:] for t in rope)
    _, past = attn(x[:, :4], r1, None)
    y2, kv = attn(x[:, 4:], r2, past)
    torch.testing.assert_close(y2, ref[:, 4:], rtol=0, atol=1e-12)
    assert kv[0].shape == (2, 3, 10, 8)


CONFIGS = [
    dict(ffn="dense", positions="rotary"),
    dict(ffn="spiking", positions="rotary"),
    dict(ffn=("spiking", "dense"), positions="theta_gamma"),
    dict(ffn="spiking", positions="theta_gamma", readout="membrane"),
]


@pytest.mark.parametrize("opts", CONFIGS)
@torch.no_grad()
def test_kv_cache_equals_full_forward(opts: dict) -> None:
    torch.manual_seed(2)
    cfg = HybridConfig(vocab_size=50, d_model=32, n_heads=4, n_layers=2, d_ff=48, context=24,
                       **opts)
    model = HippocampalTransformer(cfg).double().eval()
    tokens = torch.randint(0, 50, (2, 20))
    full, cache = model(tokens)
    assert cache.length == 20
    got = []
    logits, cache = model(tokens[:, :5])
    got.append(logits)
    logits, cache = model(tokens[:, 5:8], cache)  # a chunk after the cache
    got.append(logits)
    for i in range(8, 20):
        logits, cache = model(tokens[:, i:i + 1], cache)
        got.append(logits)
    inc = torch.cat(got, dim=1)
    assert cache.length == 20
    err = float((inc - full).abs().max())
    assert err < 1e-10, err
    stats = model.ffn_stats()
    assert set(stats) == set(cfg.spiking_layers)
    for st in stats.values():
        assert 0.0 < float(st.firing_rate) < 1.0


@torch.no_grad()
def test_positions_matter_and_tied_head() -> None:
    torch.manual_seed(3)
    for positions in ("rotary", "theta_gamma"):
        cfg = HybridConfig(vocab_size=30, d_model=16, n_heads=2, n_layers=1, d_ff=16,
                           context=16, positions=positions)
        model = HippocampalTransformer(cfg).double().eval()
        a, _ = model(torch.tensor([[3, 4, 5]]))
        b, _ = model(torch.tensor([[4, 3, 5]]))
        assert float((a[0, 2] - b[0, 2]).abs().max()) > 1e-8  # order seen at the last token
        seen: list[torch.Tensor] = []
        model.ln_f.register_forward_hook(lambda m, i, o, seen=seen: seen.append(o))
        logits, _ = model(torch.tensor([[1, 2]]))
        torch.testing.assert_close(logits, seen[0] @ model.embed.weight.T, rtol=0, atol=1e-12)
    assert not any(k.startswith("head") for k in model.state_dict())
    untied = HippocampalTransformer(cfg.replace(tie_embeddings=False))
    assert untied.num_parameters() == model.num_parameters() + 30 * 16


def test_state_dict_saves_to_safetensors(tmp_path) -> None:
    from safetensors.torch import load_file, save_file

    cfg = HybridConfig(vocab_size=40, d_model=16, n_heads=2, n_layers=2, d_ff=16, context=8,
                       ffn=("dense", "spiking"))
    model = HippocampalTransformer(cfg)
    save_file(model.state_dict(), str(tmp_path / "m.safetensors"))
    other = HippocampalTransformer(cfg)
    other.load_state_dict(load_file(str(tmp_path / "m.safetensors")))
    x = torch.randint(0, 40, (1, 8))
    assert torch.equal(model.eval()(x)[0], other.eval()(x)[0])


def test_bad_tokens_and_context() -> None:
    cfg = HybridConfig(vocab_size=20, d_model=16, n_heads=2, n_layers=1, d_ff=8, context=6)
    model = HippocampalTransformer(cfg)
    with pytest.raises(ValueError, match="tokens.*context of 6"):
        model(torch.zeros(1, 7, dtype=torch.long))
    _, cache = model(torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="tokens: 3 new \\+ 4 cached"):
        model(torch.zeros(1, 3, dtype=torch.long), cache)
    with pytest.raises(ValueError, match="batch size 2"):
        model(torch.zeros(2, 1, dtype=torch.long), cache)
    with pytest.raises(ValueError, match=r"\[0, 20\), got 20"):
        model(torch.full((1, 2), 20))
    with pytest.raises(TypeError, match="integer"):
        model(torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"\[B, L\]"):
        model(torch.zeros(3, dtype=torch.long))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rotate_equals_the_pairwise_formula_bit_for_bit(dtype: torch.dtype) -> None:
    """The four-kernel form the model runs (:func:`hybrid.rotary.rotate` on
    ``full_tables``) equals the pair rotation written out here, x1 cos - x2 sin and
    x1 sin + x2 cos, exactly (not to a tolerance), queries and keys stacked together."""
    from hybrid.rotary import rotate

    torch.manual_seed(1)
    d = 12
    x = torch.randn(2, 3, 4, 9, d, dtype=dtype)
    cos, sin = rotary_tables(torch.arange(30, 39), d, 10000.0, dtype)
    x1, x2 = x[..., :d // 2], x[..., d // 2:]
    want = torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    assert torch.equal(rotate(x, *full_tables(cos, sin)), want)


@torch.no_grad()
def test_cache_arena_keeps_every_cache_valid_and_branches_copy() -> None:
    """Outside autograd a decode writes its keys into a preallocated arena; each cache
    is a view of its first ``P`` positions. Two continuations of one cache (the second
    must not overwrite what the first sees), an older cache reused after newer steps,
    and growth past the arena's capacity all equal the full forward of their tokens."""
    torch.manual_seed(4)
    cfg = HybridConfig(vocab_size=40, d_model=16, n_heads=2, n_layers=2, d_ff=24,
                       context=80)
    model = HippocampalTransformer(cfg).double().eval()
    prefix = torch.randint(0, 40, (1, 6))
    a_tok = torch.randint(0, 40, (1, 50))   # 56 positions: past the first arena's 32
    b_tok = torch.randint(0, 40, (1, 3))
    _, cache = model(prefix)
    _, c1 = model(a_tok[:, :1], cache)
    assert c1.arena is not None and c1.arena.capacity == 32
    branch_point = c1
    got_a = []
    for i in range(1, a_tok.shape[1]):
        logits, c1 = model(a_tok[:, i:i + 1], c1)
        got_a.append(logits)
    assert c1.length == 56 and c1.arena.capacity == 66   # grew once: 2 * (32 + 1)
    full_a, _ = model(torch.cat((prefix, a_tok), dim=1))
    err = float((torch.cat(got_a, dim=1) - full_a[:, 7:]).abs().max())
    assert err < 1e-10, err
    # the branch point's arena was filled further by branch a: branch b copies
    got_b = []
    c2 = branch_point
    for i in range(b_tok.shape[1]):
        logits, c2 = model(b_tok[:, i:i + 1], c2)
        got_b.append(logits)
    assert c2.arena is not branch_point.arena
    full_b, _ = model(torch.cat((prefix, a_tok[:, :1], b_tok), dim=1))
    err = float((torch.cat(got_b, dim=1) - full_b[:, 7:]).abs().max())
    assert err < 1e-10, err
    # the branch point still holds its own keys: the full forward's first 7
    _, ref = model(torch.cat((prefix, a_tok[:, :1]), dim=1))
    for mine, want in zip(branch_point.keys + branch_point.values, ref.keys + ref.values,
                          strict=True):
        assert mine.shape[2] == 7
        torch.testing.assert_close(mine, want, rtol=0, atol=1e-12)
