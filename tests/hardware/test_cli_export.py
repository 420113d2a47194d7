"""``aura-snn export``: a saved classifier becomes a NIR file holding its weights, which
read back reproduces the classifier's spikes; a saved convolutional stack and a network
file with initial values become Loihi 2 files that Lava's ``fixed_pt`` simulator
reproduces (Lava is the oracle of the file's twin; the float model or graph, run here,
of the NIR file); mistakes get one line and exit 2, leaving nothing at ``--out``."""

from __future__ import annotations

import importlib.util
import re
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from aura_snn import LIF, CubaLIF
from aura_snn.cli import main
from aura_snn.neurons.saved import save_model
from aura_snn.tasks.digits import SpikingMLP

nir = pytest.importorskip("nir", reason="the nir package (extra 'peers') is not installed")


def _saved(tmp_path):
    torch.manual_seed(0)
    model = SpikingMLP(64, 24, 10, 10e-3, 1e-3)
    with torch.no_grad():
        model.fc1.weight.abs_().mul_(3.0)
        model.fc2.weight.abs_().mul_(2.0)
    save_model(model, tmp_path / "model")
    return model


def test_export_writes_the_weights_and_verifies(tmp_path, capsys):
    model = _saved(tmp_path)
    out = tmp_path / "clf.nir"
    rc = main(["export", str(tmp_path / "model"), "--to", "nir", "--out", str(out),
               "--verify", "--steps", "30"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "agree (100.00%)" in text
    graph = nir.read(str(out))
    weights = sorted((n.weight for n in graph.nodes.values() if hasattr(n, "weight")
                      and np.ndim(n.weight) == 2), key=lambda w: -w.shape[1])
    assert np.allclose(weights[0], model.fc1.weight.detach().numpy())
    assert np.allclose(weights[1], model.fc2.weight.detach().numpy())


def test_export_mistakes_are_one_line_and_leave_nothing(tmp_path, capsys):
    out = tmp_path / "x.nir"
    assert main(["export", str(tmp_path / "missing"), "--to", "nir", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing" in err[0]
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    assert main(["export", str(other), "--to", "nir", "--out", str(out)]) == 2
    assert "not a saved model folder" in capsys.readouterr().err
    assert not out.exists()


def test_export_to_lava_writes_the_twin_and_lava_agrees(tmp_path, capsys):
    pytest.importorskip("scipy")
    from hardware.lava_compat import import_lava

    try:
        import_lava()
    except ImportError as exc:
        pytest.skip(f"Lava is not installed: {exc}")
    from hardware.loihi import quantize
    from hardware.loihi_file import load_twin

    model = _saved(tmp_path)
    out = tmp_path / "clf.loihi2"
    rc = main(["export", str(tmp_path / "model"), "--to", "lava", "--out", str(out),
               "--verify", "--steps", "12", "--batch", "2"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "agree on" in text and "(100.00%)" in text
    want = quantize(model.double())  # the file holds exactly these integers
    got = load_twin(out)
    for a, b in zip(want.layers, got.layers, strict=True):
        assert torch.equal(a.weights, b.weights) and torch.equal(a.bias, b.bias)
        assert (a.du, a.dv, a.vth, a.weight_exp) == (b.du, b.dv, b.vth, b.weight_exp)
    data = bytearray(out.read_bytes())
    data[-3] ^= 1
    out.write_bytes(bytes(data))
    from aura_snn.errors import CorruptFileError

    with pytest.raises(CorruptFileError, match="clf.loihi2"):
        load_twin(out)


lava = pytest.mark.skipif(importlib.util.find_spec("lava") is None,
                          reason="lava-nc not installed (make setup installs it)")
SHAPE = (2, 6, 6)


def _conv(tmp_path, input_shape=SHAPE):
    """Conv2d -> LIF -> AvgPool2d -> Flatten -> Linear -> CubaLIF, saved (with its input
    shape unless ``input_shape`` is None)."""
    torch.manual_seed(1)
    m = nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(2, 4, 3, padding=1)),
        ("lif1", LIF(8e-3, dt=1e-3, threshold=1.0, reset="zero", input_scaling="direct")),
        ("pool", nn.AvgPool2d(2)), ("flat", nn.Flatten(start_dim=1)),
        ("fc", nn.Linear(36, 10)),
        ("lif2", CubaLIF(10e-3, 4e-3, dt=1e-3, threshold=0.4, reset="zero",
                         input_scaling="direct"))])).double()
    with torch.no_grad():
        m.conv.weight.mul_(3.0).add_(0.2)
        m.fc.weight.mul_(4.0).add_(0.3)
    save_model(m, tmp_path / "conv", input_shape=input_shape)
    return m


def _float_conv(m, x):
    """The float stack step by step (independent of the exporter's own loop)."""
    steps, batch = x.shape[:2]
    with torch.no_grad():
        h = m.lif1(m.conv(x.reshape(steps * batch, *SHAPE)).reshape(steps, batch, 4, 6, 6))
        h = m.fc(m.flat(m.pool(h.reshape(steps * batch, 4, 6, 6)))).reshape(steps, batch, 10)
        return m.lif2(h)


@lava
def test_saved_conv_model_exports_to_lava_and_lava_agrees(tmp_path, capsys):
    from hardware.loihi import quantize
    from hardware.loihi_file import load_twin

    model = _conv(tmp_path)
    out = tmp_path / "conv.loihi2"
    rc = main(["export", str(tmp_path / "conv"), "--to", "lava", "--out", str(out),
               "--verify", "--steps", "12", "--batch", "1"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "input [2, 6, 6], output [10]" in text
    assert re.search(r"agree on 120 of 120 output values \(100\.00%\); spikes [1-9]", text)
    back = load_twin(out)
    x = torch.rand(12, 2, *SHAPE, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    assert back.input_shape == SHAPE
    assert torch.equal(back(x), quantize(model, input_shape=SHAPE)(x))


def test_saved_conv_model_to_nir_reads_back_equal(tmp_path, capsys):
    model = _conv(tmp_path)
    out = tmp_path / "conv.nir"
    rc = main(["export", str(tmp_path / "conv"), "--to", "nir", "--out", str(out),
               "--verify", "--steps", "20", "--batch", "2"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "400 of 400 output values agree (100.00%)" in text
    graph = nir.read(str(out))
    conv = next(n for n in graph.nodes.values() if type(n).__name__ == "Conv2d")
    assert np.array_equal(conv.weight, model.conv.weight.detach().numpy())
    assert tuple(conv.input_shape) == (6, 6)
    from hardware.nir import from_nir

    x = torch.rand(20, 2, *SHAPE, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        got = from_nir(out).double()(x)
    want = _float_conv(model, x)
    assert torch.equal(got, want) and want.sum() > 5


def test_conv_model_without_input_shape_needs_the_option(tmp_path, capsys):
    _conv(tmp_path, input_shape=None)
    out = tmp_path / "c.nir"
    for to in ("nir", "lava"):
        assert main(["export", str(tmp_path / "conv"), "--to", to, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--input-shape" in err[0] and "Conv2d" in err[0]
        assert not out.exists()
    rc = main(["export", str(tmp_path / "conv"), "--to", "nir", "--out", str(out),
               "--input-shape", "2,6,6", "--verify", "--steps", "8", "--batch", "1"])
    assert rc == 0 and "(100.00%)" in capsys.readouterr().out
    out.unlink()
    assert main(["export", str(tmp_path / "conv"), "--to", "lava", "--out", str(out),
                 "--input-shape", "3,6,6"]) == 2  # the convolution takes 2 channels
    assert "do not take an input of shape (3, 6, 6)" in capsys.readouterr().err
    assert not out.exists()


NET = """
[simulation]
dt = "1 ms"
duration = "60 ms"
seed = 3
dtype = "float64"

[[region]]
name = "in"
size = 40
model = "input"
file = "in.npy"
{regions}
{projections}
"""
REGION = ('\n[[region]]\nname = "{name}"\nsize = {size}\nmodel = "cuba"\n'
          'params = {{ tau_mem = "20 ms", tau_syn = "5 ms", v_leak = "0 mV", '
          'threshold = "10 mV", v_reset = "0 mV", reset = "zero" }}\n'
          'init = {{ v = {{ uniform = ["0 mV", "10 mV"] }} }}\n')
PROJ = """
[[projection]]
name = "{pre}{post}"
pre = "{pre}"
post = "{post}"
weight = "{w}"
connectivity = {conn}
"""


def _network(tmp_path):
    """A reduced copy of examples/cuba.toml's form (E/I populations with uniform initial
    potentials, 10 % random connectivity, 1.62 mV / -9 mV synapses) that Lava's LIF can
    run: one current per neuron, no refractory period, reset to rest; driven by 40
    input spike trains read from a file."""
    np.save(tmp_path / "in.npy", (np.random.default_rng(0).random((60, 40)) < 0.1) * 1.0)
    regions = REGION.format(name="E", size=80) + REGION.format(name="I", size=20)
    k10 = "{ rule = \"fixed_indegree\", k = 10 }"
    p10 = "{ rule = \"fixed_probability\", p = 0.1 }"
    projs = "".join(PROJ.format(pre=a, post=b, w=w, conn=c) for a, b, w, c in [
        ("in", "E", "3 mV", k10), ("in", "I", "3 mV", k10), ("E", "E", "1.62 mV", p10),
        ("E", "I", "1.62 mV", p10), ("I", "E", "-9 mV", p10), ("I", "I", "-9 mV", p10)])
    path = tmp_path / "net.toml"
    path.write_text(NET.format(regions=regions, projections=projs))
    return path


@lava
def test_network_file_with_initial_values_exports_to_lava(tmp_path, capsys):
    from aura_snn.graph.config import build_graph, load_config
    from hardware.loihi_file import load_twin

    net = _network(tmp_path)
    out = tmp_path / "net.loihi2"
    rc = main(["export", str(net), "--to", "lava", "--out", str(out), "--verify"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "agree on 6,000 of 6,000 spike values (100.00%)" in text  # 60 steps x 100
    counts = re.search(r"E (\d+)/(\d+), I (\d+)/(\d+)", text).groups()
    assert counts[0] == counts[1] and counts[2] == counts[3] and int(counts[0]) > 50
    mism = [float(v) for v in re.findall(r"mismatch ([\d.]+)%", text)]
    assert len(mism) == 2 and max(mism) < 2.0  # measured: E 0.46 %, I 1.00 %
    graph = build_graph(load_config(net)).graph  # the float graph's seeded start
    twin = load_twin(out)
    for n in ("E", "I"):
        v0 = graph.initial_state(1).regions[n].v[0]
        r = twin.regions[n]
        assert 0 <= float(v0.min()) and float(v0.max()) < 0.01 and float(v0.std()) > 0.002
        assert torch.equal(r.v0, torch.round(v0.double() * 64 * r.scale).long()), n


def test_network_file_initial_values_refused_by_nir_unless_approximated(tmp_path, capsys):
    net = _network(tmp_path)
    out = tmp_path / "net.nir"
    assert main(["export", str(net), "--to", "nir", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "region 'E'" in err[0] and "initial values" in err[0]
    assert "--approximate init" in err[0] and not out.exists()
    with pytest.warns(UserWarning) as caught:
        rc = main(["export", str(net), "--to", "nir", "--out", str(out),
                   "--approximate", "init"])
    assert rc == 0 and out.exists()
    said = [str(w.message) for w in caught]
    assert all(any(f"'{n}'" in m and "initial values" in m and "approximately" in m
                   for m in said) for n in ("E", "I"))
    graph = nir.read(str(out))
    assert {"E", "I", "in"} <= set(graph.nodes)


def test_cuba_example_refused_for_lava_by_region_and_feature(tmp_path, capsys):
    from pathlib import Path

    cuba = Path(__file__).parents[2] / "examples" / "cuba.toml"
    out = tmp_path / "cuba.loihi2"
    assert main(["export", str(cuba), "--to", "lava", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("aura-snn export: region 'E'")
    assert "refractory period of 50 steps" in err[0] and "different currents" in err[0]
    assert not out.exists()


def _bad_model(kind: str) -> nn.Sequential:
    from aura_snn import ALIF

    lif = LIF(10e-3, dt=1e-3, reset="zero", input_scaling="direct")
    if kind == "alif":
        return nn.Sequential(OrderedDict([("fc", nn.Linear(4, 3)),
                                          ("alif", ALIF(10e-3, 0.1, dt=1e-3))]))
    if kind == "chain":
        return nn.Sequential(OrderedDict([("fc1", nn.Linear(4, 6)), ("lif1", lif),
                                          ("fc2", nn.Linear(5, 3)),
                                          ("lif2", LIF(10e-3, dt=1e-3, reset="zero"))]))
    if kind == "no_spiking":
        return nn.Sequential(OrderedDict([("fc", nn.Linear(4, 3))]))
    m = nn.Sequential(OrderedDict([("fc", nn.Linear(4, 3)), ("lif", lif)]))
    with torch.no_grad():
        if kind == "nan":
            m.fc.weight[1, 2] = float("nan")
        else:  # "overflow": a bias 500 times the largest weight
            m.fc.weight.fill_(0.01)
            m.fc.bias.fill_(5.0)
    return m


@pytest.mark.parametrize("kind,targets,match", [
    ("alif", ("lava",), "layer 'alif': ALIF is not supported"),
    ("alif", ("nir",), "'alif'.*adaptive threshold.*--approximate adaptation"),
    ("chain", ("lava",), "'fc2'.*Linear expects 5 inputs.*shape \\(6,\\)"),
    ("chain", ("nir",), "'fc2'"),
    ("no_spiking", ("lava", "nir"), "no spiking layer"),
    ("nan", ("lava", "nir"), "layer 'fc' \\(weight\\) holds 1 NaN"),
    ("overflow", ("lava",), "'fc->lif': 3 weights/biases overflow.*--allow-saturation"),
])
def test_bad_models_get_one_line_naming_the_problem(tmp_path, capsys, kind, targets, match):
    save_model(_bad_model(kind), tmp_path / "m")
    for to in targets:
        out = tmp_path / f"x.{to}"
        assert main(["export", str(tmp_path / "m"), "--to", to, "--out", str(out),
                     "--verify"]) == 2, to
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("aura-snn export: "), err
        assert re.search(match, err[0]), err[0]
        assert not out.exists()


def test_overflow_clipped_on_request_and_reported(tmp_path, capsys):
    from hardware.loihi_file import load_twin

    save_model(_bad_model("overflow"), tmp_path / "m")
    out = tmp_path / "o.loihi2"
    assert main(["export", str(tmp_path / "m"), "--to", "lava", "--out", str(out),
                 "--allow-saturation"]) == 0
    text = capsys.readouterr().out
    lay = load_twin(out).layers[0]
    excess = (round(5.0 * lay.scale) - (2 ** 15 - 1)) / lay.scale  # V, per bias
    assert f"clipped 3 (largest excess {excess:.3g} V)" in text
    assert torch.equal(lay.bias, torch.full((3,), 2 ** 15 - 1))


def test_failed_verify_leaves_nothing(tmp_path, capsys):
    _saved(tmp_path)
    bad = tmp_path / "x.npy"
    np.save(bad, np.zeros((5, 1, 63)))  # the classifier takes 64 inputs
    out = tmp_path / "clf.loihi2"
    assert main(["export", str(tmp_path / "model"), "--to", "lava", "--out", str(out),
                 "--verify", "--input", str(bad)]) == 2
    assert "x must be [T, B, 64]" in capsys.readouterr().err
    assert not out.exists()
