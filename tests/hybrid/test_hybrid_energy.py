"""Energy per token of the hippocampal transformer (``hardware.energy_model`` over
``hybrid.spiking_part``).

Oracles: operation counts written by hand for a tiny model (products of each matrix
product, attention pairs of a cached decode, the tied head), spikes of the spiking FFN
from a LIF recurrence written out here in float64 on the FFN inputs captured by a hook,
and energies priced here with the published figures typed in (Horowitz 2014, Davies et
al. 2018); the event-driven FFN against the fused ``SpikingFFN`` (a separate
computation of the same sum) in float64.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

from aura_snn.errors import ParameterError, ShapeError
from hardware.energy_model import count_token_ops, spiking_regions, token_energy
from hybrid.config import HybridConfig
from hybrid.model import HippocampalTransformer
from hybrid.spiking_ffn import SpikingFFN
from hybrid.spiking_part import EventFFN, event_view, ffn_module, replaced_ffns

V, D, H, DFF, T = 11, 8, 2, 12, 3


def _model(ffn: object = ("dense", "spiking"), seed: int = 0) -> HippocampalTransformer:
    torch.manual_seed(seed)
    cfg = HybridConfig(vocab_size=V, d_model=D, n_heads=H, n_layers=2, d_ff=DFF, context=16,
                       ffn=ffn, T=T)
    m = HippocampalTransformer(cfg).double().eval()
    with torch.no_grad():  # a wider drive so that a fair share of neurons fires
        for b in m.blocks:
            if isinstance(b.ffn, SpikingFFN):
                b.ffn.fc1.weight.mul_(6.0)
    return m


def _decode(m: HippocampalTransformer) -> None:
    """Prompt of 3 tokens, then 2 one-token steps through the cache (5 positions)."""
    _, cache = m(torch.tensor([[1, 4, 7]]))
    _, cache = m(torch.tensor([[2]]), cache)
    m(torch.tensor([[9]]), cache)


def _hand_spikes(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spikes ``[T, N, d_ff]`` of LIF (direct input, subtract reset, tau 10 ms, dt 1 ms,
    threshold 1 V) driven by ``x W^T + b`` for T steps from rest."""
    a, c = math.exp(-1e-3 / 10e-3), x @ w.T + b
    v, out = torch.zeros_like(c), []
    for _ in range(T):
        u = a * v + c
        s = (u > 1.0).double()
        v = u - s
        out.append(s)
    return torch.stack(out)


def test_event_ffn_equals_fused_spiking_ffn() -> None:
    m = _model()
    x = torch.randn(2, 5, D, dtype=torch.float64)
    ev = ffn_module(m, 1)
    assert isinstance(ev, EventFFN) and ev.fc1 is m.blocks[1].ffn.fc1
    with torch.no_grad():
        ref = m.blocks[1].ffn(x)
        torch.testing.assert_close(ev(x), ref, rtol=0, atol=1e-12)
        spikes = ev.stack()(ev.drive(x))
        torch.testing.assert_close(ev.readout_of(spikes, x.shape), ref, rtol=0, atol=1e-12)
        hand = _hand_spikes(x.reshape(-1, D), ev.fc1.weight, ev.fc1.bias)
    assert torch.equal(spikes, hand) and 0 < hand.mean() < 1


def test_replaced_ffns_restores_and_checks() -> None:
    m = _model()
    orig = m.blocks[0].ffn
    toks = torch.tensor([[1, 2, 3]])
    zeroed = copy.deepcopy(m)  # oracle: layer 0's FFN outputs 0 when fc2 is all zeros
    with torch.no_grad():
        zeroed.blocks[0].ffn.fc2.weight.zero_()
        zeroed.blocks[0].ffn.fc2.bias.zero_()
        with replaced_ffns(m, {0: lambda x: torch.zeros_like(x)}):
            assert m.blocks[0].ffn is not orig
            torch.testing.assert_close(m(toks)[0], zeroed(toks)[0], rtol=0, atol=0)
    assert m.blocks[0].ffn is orig
    with pytest.raises(ParameterError, match="layer 5 is past the depth"):
        with replaced_ffns(m, {5: torch.tanh}):
            pass
    with pytest.raises(ParameterError, match="not spiking"):
        ffn_module(m, 0)
    with pytest.raises(ShapeError, match="replacement FFN must return"):
        with replaced_ffns(m, {1: lambda x: x[..., :2]}):
            m(toks)
    assert type(m.blocks[1].ffn) is SpikingFFN  # restored after the error


def test_token_ops_match_hand_counts() -> None:
    m = _model()
    inputs: list[torch.Tensor] = []
    hook = m.blocks[1].ln2.register_forward_hook(lambda _m, _a, out: inputs.append(out))
    with event_view(m):
        assert spiking_regions(m) == ("blocks.1.ffn",)
        ops = count_token_ops(m, lambda: _decode(m), tokens=5)
    hook.remove()
    fc1, fc2 = m.blocks[1].ffn.fc1, m.blocks[1].ffn.fc2
    assert bool((fc2.weight != 0).all())
    spikes = float(_hand_spikes(torch.cat([x.reshape(-1, D) for x in inputs]),
                                fc1.weight, fc1.bias).sum())
    attention = 2 * D * (3 * 3 + 1 * 4 + 1 * 5)  # q.k and weights.v, per layer
    per_layer = 5 * (3 * D * D + D * D) + attention
    core = 2 * per_layer + 5 * 2 * D * DFF + 5 * V * D  # + layer 0 dense FFN + tied head
    assert ops.core_macs == pytest.approx(core / 5, rel=1e-12)
    r = ops.regions["blocks.1.ffn"]
    assert r.macs == pytest.approx(D * DFF, rel=1e-12)     # fc1, real-valued input
    assert r.acs == pytest.approx(spikes * D / 5, rel=1e-12)  # fc2, one per spike and output
    assert r.updates == T * DFF and r.spikes == pytest.approx(spikes / 5, rel=1e-12)
    assert 0 < r.firing_rate < 1 and r.activation_sparsity == pytest.approx(1 - r.firing_rate)

    e = token_energy(ops)
    s = spikes / 5
    assert e["cmos45"]["core_pJ"] == pytest.approx(4.6 * core / 5)
    assert e["cmos45"]["spiking_pJ"] == pytest.approx(4.6 * D * DFF + 0.9 * s * D)
    loihi = 4.6 * D * DFF + 23.6 * s * D + (81 + 1.7) * s + 52 * (T * DFF - s)
    assert e["loihi"]["mac_on"] == "gpu" and e["loihi"]["spiking_pJ"] == pytest.approx(loihi)
    assert e["loihi"]["total_pJ"] == pytest.approx(4.6 * core / 5 + loihi)
    assert e["gpu"]["total_pJ"] == pytest.approx(e["cmos45"]["total_pJ"])
    with pytest.raises(ParameterError, match="host"):
        token_energy(ops, host="loihi")


def test_dense_twin_is_all_core() -> None:
    m = _model("dense")
    ops = count_token_ops(m, lambda: _decode(m), tokens=5)
    attention = 2 * D * (3 * 3 + 4 + 5)
    core = 2 * (5 * 4 * D * D + attention) + 2 * 5 * 2 * D * DFF + 5 * V * D
    assert ops.regions == {} and ops.core_macs == pytest.approx(core / 5, rel=1e-12)
    with pytest.raises(ParameterError, match="tokens"):
        count_token_ops(m, lambda: None, tokens=0)
    with pytest.raises(ParameterError, match="regions"):
        count_token_ops(m, lambda: None, tokens=1, regions=["blocks.9"])


def test_hardware_imports_no_hybrid() -> None:
    """DESIGN.md: hardware sees aura_snn modules only (an AST scan of every file)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "hardware"
    bad = []
    for f in root.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad += [f"{f.name}: {n}" for n in names if n.split(".")[0] in ("hybrid",
                                                                             "neuromodulation")]
    assert not bad, bad
