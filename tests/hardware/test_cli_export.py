"""``aura-snn export``: a saved classifier becomes a NIR file holding its weights, which
read back reproduces the classifier's spikes; mistakes get one line and exit 2."""

from __future__ import annotations

import numpy as np
import pytest
import torch

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
