"""The hardware steps of ``aura-snn demo``: the NIR file read back and Lava's fixed_pt
run reproduce the model and its fixed-point twin spike for spike, and the accuracies it
reports are those computed here from the model and the twin directly."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from aura_snn.tasks.digits import DigitsConfig, SpikingMLP, evaluate, load_digits
from hardware.cli import demo_steps

pytest.importorskip("nir", reason="the nir package (extra 'peers') is not installed")


def test_after_demo_reports_exact_agreement(tmp_path, monkeypatch, capsys):
    pytest.importorskip("scipy")
    from hardware.lava_compat import import_lava

    try:
        import_lava()
    except ImportError as exc:
        pytest.skip(f"Lava is not installed: {exc}")
    cfg = DigitsConfig(hidden=24, steps=12)
    torch.manual_seed(0)
    model = SpikingMLP(64, cfg.hidden, 10, cfg.tau_mem, cfg.dt)
    with torch.no_grad():
        model.fc1.weight.mul_(6.0)
        model.fc2.weight.abs_().mul_(1.5)
    monkeypatch.setattr(demo_steps, "LAVA_SAMPLES", 3)
    from dataclasses import asdict

    report = demo_steps.after_demo(tmp_path, SimpleNamespace(config=asdict(cfg), model=model))
    _, _, xte, yte = load_digits(cfg.test_fraction, cfg.seed)
    assert report["float_accuracy"] == pytest.approx(evaluate(model, xte.double(), yte,
                                                              cfg.steps))
    assert report["nir_spike_agreement"] == 1.0
    assert report["lava_vs_twin_spike_agreement"] == 1.0
    from hardware.loihi import quantize

    x = xte.double().unsqueeze(0).expand(cfg.steps, -1, -1)
    twin_acc = float((quantize(model)(x).sum(0).argmax(1) == yte).double().mean())
    assert report["twin_accuracy"] == pytest.approx(twin_acc)
    assert (tmp_path / "model.nir").is_file()
    assert "Lava fixed_pt" in capsys.readouterr().out
