"""Model options (hybrid.options), each against a computation written here.

Oracles: the plain block (capacity 1), the block run on the router's top tokens at their
own positions (capacity c), the gate / place-code / Hebbian / hormone equations written
out in the test, the plain model with gated embedding rows.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from aura_snn.errors import ParameterError, ParameterTypeError
from hybrid.config import HybridConfig
from hybrid.model import HippocampalTransformer
from hybrid.options import EndocrineLR
from hybrid.rotary import full_tables, rotary_tables

BASE = dict(vocab_size=30, d_model=16, n_heads=2, n_layers=2, d_ff=24, context=16)


def _model(**kw) -> HippocampalTransformer:
    torch.manual_seed(0)
    return HippocampalTransformer(HybridConfig(**{**BASE, **kw})).double()


def _copy(dst: HippocampalTransformer, src: HippocampalTransformer) -> None:
    missing, unexpected = dst.load_state_dict(src.state_dict(), strict=False)
    assert not unexpected


def test_mod_capacity_one_equals_the_plain_block_and_trains_the_router() -> None:
    plain, routed = _model(), _model(mod_layers=(0, 1), mod_capacity=1.0)
    _copy(routed, plain)
    tokens = torch.randint(0, 30, (3, 9), generator=torch.Generator().manual_seed(1))
    got = routed(tokens)[0]
    assert torch.allclose(got, plain(tokens)[0], atol=1e-12)
    got.square().sum().backward()
    assert routed.routers["0"].router.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("capacity", [0.25, 0.5, 0.8])
def test_mod_changes_exactly_ceil_cn_tokens_the_block_on_them(capacity: float) -> None:
    model = _model(mod_layers=(0,), mod_capacity=capacity)
    block, router = model.blocks[0], model.routers["0"]
    B, L, d = 2, 10, 16
    x = torch.randn(B, L, d, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    rope = full_tables(*rotary_tables(torch.arange(L), 8, 10000.0, torch.float64))
    with torch.no_grad():
        out = router(x, rope, lambda xs, r: block(xs, r, None, None))
        n = math.ceil(capacity * L)
        scores = x @ router.router.weight[0]
        for b in range(B):
            changed = (out[b] != x[b]).any(-1)
            assert int(changed.sum()) == n
            top = sorted(torch.argsort(scores[b], descending=True)[:n].tolist())
            assert changed.nonzero().flatten().tolist() == top
            sel = torch.tensor(top)
            ref = block(x[b:b + 1, sel], (rope[0][sel], rope[1][sel]), None, None)[0][0]
            assert torch.allclose(out[b, sel], ref, atol=1e-12)


def test_thalamic_gate_equals_gated_embedding_rows() -> None:
    plain = _model(tie_embeddings=False)
    gated = _model(tie_embeddings=False, thalamic_gate=True)
    _copy(gated, plain)
    gate = gated.thalamic.salience
    with torch.no_grad():
        gate.weight.normal_(0.0, 30.0, generator=torch.Generator().manual_seed(3))
        gate.bias.fill_(0.2)
        E = plain.embed.weight
        s = torch.sigmoid(E @ gate.weight[0] + gate.bias)
        g = torch.sigmoid(10.0 * (s - 0.5))  # Thalamus defaults: gain 10, threshold 0.5
        assert g.min() < 0.2 and g.max() > 0.8  # the gate really varies across tokens
        plain.embed.weight.copy_(E * g.unsqueeze(1))
    tokens = torch.randint(0, 30, (2, 7), generator=torch.Generator().manual_seed(4))
    assert torch.allclose(gated(tokens)[0], plain(tokens)[0], atol=1e-12)


def test_place_code_layer_equals_gaussian_kwta_readout() -> None:
    model = _model(place_layers=(1,), place_cells=20, place_sparsity=0.1)
    layer = model.places["1"]
    with torch.no_grad():
        layer.out.weight.normal_(generator=torch.Generator().manual_seed(5))
        h = torch.randn(3, 4, 16, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
        z = F.layer_norm(h, (16,), layer.norm.weight, layer.norm.bias, layer.norm.eps)
        dist2 = ((z.unsqueeze(-2) - layer.centres) ** 2).sum(-1)  # [3, 4, 20]
        u = torch.exp(-dist2 / (2 * 16.0))  # sigma = sqrt(d)
        keep = torch.zeros_like(u)
        keep.scatter_(-1, u.topk(2, dim=-1).indices, 1.0)  # round(0.1 * 20) winners
        want = h + (u * keep) @ layer.out.weight.T
        assert torch.allclose(layer(h), want, atol=1e-12)


def test_plastic_branch_equals_a_hebbian_loop() -> None:
    model = _model(plastic_layers=(0,), plastic_eta=0.3)
    branch = model.blocks[0].plastic
    with torch.no_grad():
        branch.out.weight.normal_(generator=torch.Generator().manual_seed(7))
        h = torch.randn(2, 6, 16, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
        z = F.layer_norm(h, (16,), branch.norm.weight, branch.norm.bias, branch.norm.eps)
        W, alpha, eta = branch.plastic.weight, branch.plastic.alpha, 0.3
        want = h.clone()
        for b in range(2):
            H = torch.zeros(16, 16, dtype=torch.float64)
            for t in range(6):
                y = torch.tanh(z[b, t] @ (W + alpha * H))
                H = (1 - eta) * H + eta * torch.outer(z[b, t], y)
                want[b, t] += branch.out.weight @ y
        assert torch.allclose(branch(h), want, atol=1e-12)


def test_endocrine_lr_follows_the_hormone() -> None:
    w = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.SGD([{"params": [w], "lr": 0.1}])
    hook = EndocrineLR()
    h, scales = 0.0, []
    for loss in (2.0, 5.0, 1.0, 0.0):
        scales.append(hook(opt, loss, dt=10.0))
        h = h + (1 - math.exp(-10.0 / 60.0)) * (loss - h)  # tau 60 s
        want = min(max(math.exp(-0.5 * h), 0.1), 10.0)  # beta_lr -0.5, max_scale 10
        assert scales[-1] == pytest.approx(want, rel=1e-6)
        assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * want, rel=1e-6)


def test_routed_or_plastic_models_refuse_a_cache_and_bad_fields() -> None:
    model = _model(mod_layers=(1,), mod_capacity=0.5)
    _, cache = _model()(torch.tensor([[1, 2]]))
    with pytest.raises(ParameterError, match="mod_layers=.*use_cache=False"):
        model(torch.tensor([[3]]), cache)
    for field, value, err, match in [
            ("mod_capacity", 0.0, ParameterError, "mod_capacity must lie in"),
            ("mod_capacity", 1.5, ParameterError, "mod_capacity must lie in"),
            ("place_sparsity", 0.0, ParameterError, "place_sparsity must lie in"),
            ("place_cells", 0, ParameterError, "place_cells must be >= 1"),
            ("plastic_eta", 2.0, ParameterError, "plastic_eta must lie in"),
            ("thalamic_gate", "yes", ParameterTypeError, "thalamic_gate must be a bool"),
            ("endocrine_lr", 1, ParameterTypeError, "endocrine_lr must be a bool"),
            ("mod_layers", (0, 2), ParameterError, "mod_layers: layer index 2 is past"),
            ("plastic_layers", (1, 1), ParameterError, "plastic_layers: repeated")]:
        with pytest.raises(err, match=match):
            HybridConfig(**{**BASE, field: value})
