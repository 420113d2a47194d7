"""Loihi 2 network files (``hardware.loihi_file``): a twin written and read back computes
what the original computes. Oracles: the original twin (bit for bit), the float stack
run step by step here (a configuration where the twin is exact: weights and biases on
the 8-bit grid at scale 64, membrane decay below Lava's 12-bit step so ``dv = 0``, the
threshold a quarter step above a grid point so the float membrane's drift of ~1e-6 per
step cannot cross it), and for graphs the NumPy transcription of Lava's LIF in
``loihi_graph_nets.py``. Damaged or inconsistent files raise ``CorruptFileError``
naming the file and the field."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from aura_snn import LIF
from aura_snn._io import read_safetensors, write_safetensors
from aura_snn.errors import CorruptFileError
from hardware.loihi import quantize
from hardware.loihi_file import load_twin, save_twin

DT = 1e-3
SHAPE = (2, 6, 6)


def _lif(threshold: float = 1 + 1 / 256) -> LIF:
    # tau 1000 s: a = 1 - 1e-6 per step, below Lava's 12-bit decay step (dv = 0)
    return LIF(1e3, dt=DT, threshold=threshold, reset="zero", input_scaling="direct")


def _conv_stack() -> nn.Sequential:
    """Conv2d -> LIF -> AvgPool2d -> Flatten -> Linear -> LIF, every weight on the grid of
    the scale 64: conv weights k/32, biases k/64, Linear k/8 (the pooled matrix k/32)."""
    m = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), _lif(), nn.AvgPool2d(2),
                      nn.Flatten(start_dim=1), nn.Linear(36, 10), _lif()).double()
    rng = np.random.default_rng(4)
    with torch.no_grad():
        m[0].weight.copy_(torch.from_numpy(rng.integers(-26, 30, (4, 2, 3, 3)) / 32))
        m[0].bias.copy_(torch.from_numpy(rng.integers(-16, 16, 4) / 64))
        m[4].weight.copy_(torch.from_numpy(rng.integers(-8, 9, (10, 36)) / 8))
        m[4].bias.copy_(torch.from_numpy(rng.integers(-16, 16, 10) / 64))
    return m


def _float_run(m: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """The float stack step by step: stateless layers per step, neurons over time."""
    steps, batch = x.shape[:2]
    with torch.no_grad():
        h = m[1](m[0](x.reshape(steps * batch, *SHAPE)).reshape(steps, batch, 4, 6, 6))
        h = m[4](m[3](m[2](h.reshape(steps * batch, 4, 6, 6)))).reshape(steps, batch, 10)
        return m[5](h)


def _spikes(steps: int = 40, batch: int = 2, seed: int = 1) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy((rng.random((steps, batch, *SHAPE)) < 0.3) * 1.0)


def test_conv_twin_round_trip_keeps_shapes_and_spikes(tmp_path):
    model = _conv_stack()
    twin = quantize(model, input_shape=SHAPE, scale=[64.0, 64.0], weight_exp=[0, 0])
    path = save_twin(twin, tmp_path / "conv.loihi2")
    back = load_twin(path)
    assert back.input_shape == SHAPE and back.output_shape == (10,)
    x = _spikes()
    want = twin(x)
    assert want.shape == (40, 2, 10)
    assert torch.equal(back(x), want)
    assert torch.equal(want, _float_run(model, x))  # the twin is exact here
    assert 0.2 < float(want.mean()) < 0.4  # measured 0.30 (layer 1: 0.38)
    ref = [lay.bool() for lay in twin.run(x)]
    assert all(torch.equal(a, b) for a, b in zip(back.run(x), ref, strict=True))


def test_conv_twin_ending_in_conv_keeps_its_output_shape(tmp_path):
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, bias=False), _lif()).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(
            np.random.default_rng(2).integers(-20, 45, (3, 2, 3, 3)) / 32))
    twin = quantize(model, input_shape=SHAPE, scale=64.0, weight_exp=0)
    back = load_twin(save_twin(twin, tmp_path / "c.loihi2"))
    x = _spikes(seed=3)
    assert back.output_shape == (3, 6, 6)
    with torch.no_grad():
        ref = model[1](model[0](x.reshape(80, *SHAPE)).reshape(40, 2, 3, 6, 6))
    assert torch.equal(back(x), ref) and ref.sum() > 50


def _rewrite(path, **changes) -> None:
    """Rewrite ``path`` with header entries changed (checksums recomputed), as a buggy
    or hand-made writer would."""
    meta, tensors = read_safetensors(path)
    meta.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in changes.items()})
    write_safetensors(path, tensors, {k: v for k, v in meta.items()
                                      if k not in ("checksums", "header_checksum")})


@pytest.mark.parametrize("changes,field", [
    ({"input_shape": [2, 6, 5]}, "input_shape"),       # 60 values, the weights take 72
    ({"input_shape": [2, -6, -6]}, "input_shape"),
    ({"input_shape": "[2, 6"}, "input_shape"),
    ({"output_shape": [11]}, "output_shape"),
    ({"kind": "cake"}, "kind"),
])
def test_mismatched_header_named(tmp_path, changes, field):
    twin = quantize(_conv_stack(), input_shape=SHAPE)
    path = save_twin(twin, tmp_path / "bad.loihi2")
    _rewrite(path, **changes)
    with pytest.raises(CorruptFileError, match=rf"bad\.loihi2.*{field}"):
        load_twin(path)


def test_bad_layer_table_named(tmp_path):
    twin = quantize(_conv_stack(), input_shape=SHAPE)
    path = save_twin(twin, tmp_path / "t.loihi2")
    meta, _ = read_safetensors(path)
    layers = json.loads(meta["layers"])
    layers[1]["vth"] = "high"
    _rewrite(path, layers=layers)
    with pytest.raises(CorruptFileError, match=r"t\.loihi2.*layer 1.*vth"):
        load_twin(path)
    layers[1]["vth"] = 64
    del layers[0]["du"]
    _rewrite(path, layers=layers)
    with pytest.raises(CorruptFileError, match=r"t\.loihi2.*layer 0.*du"):
        load_twin(path)
    # weights of layer 1 that do not take layer 0's outputs
    meta, tensors = read_safetensors(path)
    layers[0]["du"] = 4095
    tensors["1.weights"] = tensors["1.weights"][:, :-1].contiguous()
    write_safetensors(path, tensors, {"format": meta["format"], "kind": meta["kind"],
                                      "layers": json.dumps(layers),
                                      "input_shape": meta["input_shape"],
                                      "output_shape": meta["output_shape"]})
    with pytest.raises(CorruptFileError, match=r"t\.loihi2.*layer 1.*weights"):
        load_twin(path)


def test_flat_file_without_shapes_reads_as_flat(tmp_path):
    """Files written before the shapes were stored load with flat shapes."""
    twin = quantize(_conv_stack(), input_shape=SHAPE)
    path = save_twin(twin, tmp_path / "old.loihi2")
    meta, tensors = read_safetensors(path)
    write_safetensors(path, tensors, {"format": meta["format"], "layers": meta["layers"]})
    back = load_twin(path)
    assert back.input_shape == (72,) and back.output_shape == (10,)
    x = _spikes(steps=10, batch=1)
    assert torch.equal(back(x.reshape(10, 1, 72)), twin(x))


# --- graph twins --------------------------------------------------------------------------
def _graph_twin(net: str):
    """The feed-forward (same-step edge, per-synapse delays, sparse, multi-receptor) or
    recurrent test graph of loihi_graph_nets, region A/E starting from initial values."""
    from loihi_graph_nets import feedforward, recurrent

    graph, desc = (feedforward if net == "feedforward" else recurrent)()
    first = desc["regions"][1][0]
    graph.region(first).init = {"v": {"uniform": [0.0, 0.9]}}
    return graph, desc, quantize(graph)


@pytest.mark.parametrize("net", ["feedforward", "recurrent"])
def test_graph_twin_round_trip(tmp_path, net):
    from loihi_graph_nets import oracle

    graph, desc, twin = _graph_twin(net)
    back = load_twin(save_twin(twin, tmp_path / "g.loihi2"))
    assert (back.dt, back.inputs, back.step_order) == (twin.dt, twin.inputs, twin.step_order)
    for n, r in twin.regions.items():
        got = back.regions[n]
        assert (got.du, got.dv, got.vth, got.scale, got.v_leak) == \
            (r.du, r.dv, r.vth, r.scale, r.v_leak)
        for f in ("u0", "v0", "u0_f", "v0_f"):
            a, b = getattr(r, f), getattr(got, f)
            assert (a is None and b is None) or torch.equal(a, b), (n, f)
    assert back.regions[desc["regions"][1][0]].v0 is not None
    for p, q in zip(twin.projections, back.projections, strict=True):
        assert (p.name, p.pre, p.post, p.weight_exp, p.sign_mode, p.same_step, p.sparse) == \
            (q.name, q.pre, q.post, q.weight_exp, q.sign_mode, q.same_step, q.sparse)
        assert torch.equal(p.weights, q.weights) and torch.equal(p.delays, q.delays)
    rng = np.random.default_rng(6)
    x = torch.from_numpy((rng.random((40, 2, twin.inputs["in"])) < 0.3) * 1.0)
    want, got = twin.run(x), back.run(x)
    assert all(torch.equal(want[n], got[n]) for n in want)
    assert all(int(s.sum()) > 10 for s in got.values())
    # and the same file from rest is Lava's transcription of the graph
    graph.region(desc["regions"][1][0]).init = {}
    rest = load_twin(save_twin(quantize(graph), tmp_path / "r.loihi2"))
    ref = oracle(desc, rest, {"in": x[:, 0].numpy()})
    assert all(np.array_equal(rest.run(x)[n][:, 0].numpy(), s) for n, s in ref.items())


@pytest.mark.parametrize("edit,match", [
    (lambda m: {"projections": [dict(json.loads(m["projections"])[0], post="nowhere")]
                + json.loads(m["projections"])[1:]}, r"projection 'in_A'.*'post'"),
    (lambda m: {"step_order": json.loads(m["step_order"])[1:]}, "step_order"),
    (lambda m: {"inputs": {"in": 13}}, r"projection 'in_A'.*weights.*\(20, 13\)"),
    (lambda m: {"dt": -1.0}, "'dt'"),
    (lambda m: {"regions": [dict(json.loads(m["regions"])[0], du=5000)]
                + json.loads(m["regions"])[1:]}, r"region 0.*'du' = 5000"),
])
def test_graph_file_with_fields_that_do_not_fit_named(tmp_path, edit, match):
    _, _, twin = _graph_twin("feedforward")
    path = save_twin(twin, tmp_path / "g.loihi2")
    meta, _ = read_safetensors(path)
    _rewrite(path, **edit(meta))
    with pytest.raises(CorruptFileError, match=rf"g\.loihi2.*{match}"):
        load_twin(path)


def test_graph_initial_state_of_wrong_length_named(tmp_path):
    _, _, twin = _graph_twin("feedforward")
    path = save_twin(twin, tmp_path / "g.loihi2")
    meta, tensors = read_safetensors(path)
    tensors["region0.v0"] = tensors["region0.v0"][:-1].contiguous()
    write_safetensors(path, tensors, {k: v for k, v in meta.items()
                                      if k not in ("checksums", "header_checksum")})
    with pytest.raises(CorruptFileError, match=r"g\.loihi2.*region 'A'.*'v0'.*\(19,\)"):
        load_twin(path)
