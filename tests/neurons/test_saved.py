"""Saved models (aura_snn.neurons.saved): the reloaded stack computes what the saved one
did (the in-memory model is the oracle), and damaged or mismatched folders are refused."""

from __future__ import annotations

import json
from collections import OrderedDict

import pytest
import torch
from torch import nn

from aura_snn.errors import CorruptFileError, ParameterError
from aura_snn.neurons import ALIF, LIF, CubaLIF
from aura_snn.neurons.saved import CONFIG, WEIGHTS, load_model, save_model
from aura_snn.tasks.digits import SpikingMLP


def _stack() -> nn.Sequential:
    torch.manual_seed(0)
    tau = 0.01 + 0.02 * torch.rand(12, dtype=torch.float64)
    return nn.Sequential(OrderedDict([
        ("fc1", nn.Linear(6, 12)),
        ("lif1", LIF(tau, dt=1e-3, threshold=0.7, reset="zero", v_reset=0.1,
                     reset_at="next_step", learn_threshold=True)),
        ("drop", nn.Dropout(0.2)),
        ("fc2", nn.Linear(12, 8, bias=False)),
        ("cuba", CubaLIF(0.02, 0.004, dt=1e-3, order="voltage_first", learn_tau=True)),
        ("fc3", nn.Linear(8, 5)),
        ("alif", ALIF(0.02, 0.1, beta=0.3, dt=1e-3)),
    ])).double()


def test_round_trip_reproduces_every_spike_and_membrane(tmp_path):
    model = _stack().eval()
    with torch.no_grad():
        for fc in (model.fc1, model.fc2, model.fc3):
            fc.weight.abs_().mul_(4.0)
        model.fc3.weight.mul_(2.0)
        model.lif1.threshold.fill_(0.55)  # a trained value differing from the constructor's
    x = torch.rand(40, 3, 6, dtype=torch.float64)
    save_model(model, tmp_path / "m", metadata={"note": "test"})
    loaded = load_model(tmp_path / "m").double()
    with torch.no_grad():
        want = model(x)
        got = loaded(x)
    for name in ("lif1", "cuba", "alif"):  # the comparison covers every layer's spikes
        assert model[: list(dict(model.named_children())).index(name) + 1](x).sum() > 20
    assert torch.equal(got, want)
    assert [n for n, _ in loaded.named_children()] == [n for n, _ in model.named_children()]
    assert isinstance(loaded.lif1.threshold, nn.Parameter)
    assert isinstance(loaded.cuba.tau_syn, nn.Parameter)
    assert torch.equal(loaded.lif1.tau_mem, model.lif1.tau_mem)  # per-neuron, float64
    cfg = json.loads((tmp_path / "m" / CONFIG).read_text())
    lif1 = next(e for e in cfg["layers"] if e["name"] == "lif1")["args"]
    assert lif1["tau_mem"] == "per_neuron" and lif1["threshold"] == pytest.approx(0.55)
    assert (lif1["reset"], lif1["reset_at"], lif1["v_reset"]) == ("zero", "next_step", 0.1)
    assert cfg["metadata"] == {"note": "test"}


def test_demo_classifier_saves_and_reloads(tmp_path):
    torch.manual_seed(1)
    model = SpikingMLP(64, 32, 10, 10e-3, 1e-3).eval()
    x = torch.rand(16, 4, 64) * 4
    save_model(model, tmp_path / "demo")
    with torch.no_grad():
        assert torch.equal(load_model(tmp_path / "demo")(x), model(x))


def test_flipped_byte_in_weights_is_refused(tmp_path):
    save_model(_stack(), tmp_path / "m")
    path = tmp_path / "m" / WEIGHTS
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match=WEIGHTS):
        load_model(tmp_path / "m")


def test_edited_config_does_not_match_its_weights(tmp_path):
    save_model(_stack(), tmp_path / "m")
    path = tmp_path / "m" / CONFIG
    path.write_text(path.read_text().replace('"v_reset": 0.1', '"v_reset": 0.2'))
    with pytest.raises(CorruptFileError, match="do not belong together"):
        load_model(tmp_path / "m")


def test_unknown_layer_type_and_unsupported_layer(tmp_path):
    with pytest.raises(ParameterError, match="'1' is a ReLU"):
        save_model(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), tmp_path / "bad")
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())
    with pytest.raises(ParameterError, match="nn.Sequential"):
        save_model(nn.Linear(2, 2), tmp_path / "bad2")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / CONFIG).write_text(json.dumps(
        {"format": "aura-snn.model", "version": 1,
         "layers": [{"name": "a", "type": "Transformer", "args": {}}]}))
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "x")  # no weights file
    save_model(nn.Sequential(LIF()), tmp_path / "y")
    (tmp_path / "y" / CONFIG).write_text((tmp_path / "x" / CONFIG).read_text())
    with pytest.raises(CorruptFileError):
        load_model(tmp_path / "y")
    with pytest.raises(FileNotFoundError, match="not a saved aura-snn model"):
        load_model(tmp_path / "nowhere")


def _conv_stack() -> nn.Sequential:
    torch.manual_seed(3)
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv1d(2, 3, 3, padding=1, bias=False)),
        ("pool1", nn.AvgPool1d(2)),
        ("flat0", nn.Flatten(start_dim=1)),
        ("unf", nn.Identity()),
        ("lin", nn.Linear(12, 2 * 5 * 5)),
        ("lif", LIF(0.01, dt=1e-3, reset="zero")),
    ])).double(), nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(2, 4, (3, 2), stride=(1, 2), padding=(1, 0), dilation=1,
                           groups=2, padding_mode="zeros")),
        ("lif1", LIF(0.01, dt=1e-3, reset="zero")),
        ("pool", nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False)),
        ("flat", nn.Flatten(start_dim=1)),
        ("fc", nn.Linear(4 * 6 * 3, 5)),
        ("lif2", CubaLIF(0.02, 0.005, dt=1e-3, reset="zero")),
    ])).double()


def test_convolutional_stacks_round_trip_with_their_input_shape(tmp_path):
    """Conv1d/Conv2d (stride, padding, dilation, groups), AvgPool1d/2d, Identity: the
    reloaded layers compute what the saved ones did, sample by sample (T and B merged)."""
    for k, (model, shape) in enumerate(zip(_conv_stack(), ((2, 8), (2, 5, 5)), strict=True)):
        with torch.no_grad():
            for m in model:
                if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d):
                    m.weight.abs_().mul_(4.0)
        save_model(model, tmp_path / f"m{k}", input_shape=shape)
        cfg = json.loads((tmp_path / f"m{k}" / CONFIG).read_text())
        assert cfg["input_shape"] == list(shape)
        loaded = load_model(tmp_path / f"m{k}").double()
        x = torch.rand(6 * 3, *shape, dtype=torch.float64) * 3
        with torch.no_grad():
            for (name, a), (_, b) in zip(model.named_children(), loaded.named_children(),
                                         strict=True):
                assert type(a) is type(b), name
                if isinstance(a, LIF | CubaLIF):
                    x = x.reshape(6, 3, *x.shape[1:])
                    want, got = a(x), b(x)
                    x = want.reshape(18, *want.shape[2:])
                else:
                    want, got = a(x), b(x)
                    x = want
                assert torch.equal(got, want), name
        assert float(x.sum()) > 20  # the last layer's spikes


def test_bad_input_shape_refused(tmp_path):
    with pytest.raises(ParameterError, match="input_shape"):
        save_model(_stack(), tmp_path / "a", input_shape=(6, 0))
    save_model(_stack(), tmp_path / "b", input_shape=(6,))
    path = tmp_path / "b" / CONFIG
    path.write_text(path.read_text().replace('"input_shape": [\n    6\n  ]',
                                             '"input_shape": "six"'))
    with pytest.raises(CorruptFileError, match=r"config\.json.*'input_shape'"):
        load_model(tmp_path / "b")


def test_float64_model_loads_back_in_float64(tmp_path):
    """The weights come back in the dtype they were saved in (they were cast to the
    fresh layers' float32 before), so a float64 model reloads bit for bit."""
    model = _stack()
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(),
                                 strict=True):
        assert a.dtype == b.dtype and torch.equal(a, b), name
    assert isinstance(loaded.fc1.weight, nn.Parameter) and loaded.fc1.weight.requires_grad
