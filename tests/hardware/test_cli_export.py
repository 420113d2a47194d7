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
