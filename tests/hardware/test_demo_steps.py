"""The hardware steps of ``aura-snn demo``: the NIR file read back and Lava's fixed_pt
run reproduce the model and its fixed-point twin spike for spike, the accuracies it
reports are those computed here from the model and the twin directly, and the energy
per target is the hand-counted operations times the published pJ figures."""

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
    out = capsys.readouterr().out
    assert "Lava fixed_pt" in out and "not published" in out
    # the energy step ran on the whole test set after Lava (its figures: test below)
    assert report["energy"]["samples"] == len(yte)
    assert set(report["energy"]["targets"]) == {"cmos45", "loihi", "gpu"}
    assert (tmp_path / "energy.json").is_file() and (tmp_path / "energy.png").is_file()


def _hand_counts(model: SpikingMLP, x: torch.Tensor) -> dict[str, float]:
    """Counts from the weights (numpy) and the spikes of a separate forward pass."""
    import numpy as np

    with torch.no_grad():
        s1 = model.lif1(model.fc1(x))
        s2 = model.lif2(model.fc2(s1))
    w1 = (model.fc1.weight.detach().numpy() != 0).astype(np.int64)
    w2 = (model.fc2.weight.detach().numpy() != 0).astype(np.int64)
    nz_x = (x.numpy().reshape(-1, x.shape[-1]) != 0).astype(np.int64)
    nz_s = (s1.numpy().reshape(-1, s1.shape[-1]) != 0).astype(np.int64)
    T, B = x.shape[:2]
    return dict(macs=float(np.einsum("ni,oi->", nz_x, w1)),
                acs=float(np.einsum("ni,oi->", nz_s, w2)),
                mu=float(T * B * (s1.shape[-1] + s2.shape[-1])),
                spikes=float(s1.sum() + s2.sum()),
                dense=float(T * B * (w1.size + w2.size)), B=float(B))


def test_energy_step_prices_the_counts_per_target(tmp_path, capsys):
    """Per-target totals = hand counts x the published pJ figures (Horowitz 2014: MAC
    4.6, AC 0.9, SRAM 10; Davies 2018 Table 2: 23.6 per synaptic op, 81/52 per
    active/inactive neuron update, 1.7 per spike); the table prints what the JSON holds."""
    import json

    cfg = DigitsConfig(hidden=24, steps=12)
    torch.manual_seed(1)
    model = SpikingMLP(64, cfg.hidden, 10, cfg.tau_mem, cfg.dt).double()
    with torch.no_grad():
        model.fc1.weight.mul_(6.0)
        model.fc1.weight[:, 10:14] = 0.0
        model.fc2.weight.abs_().mul_(1.5)
    _, _, xte, _ = load_digits(cfg.test_fraction, cfg.seed)
    x = xte.double().unsqueeze(0).expand(cfg.steps, -1, -1).contiguous()
    e = demo_steps.energy_step(tmp_path, model, x)
    h = _hand_counts(model, x)
    B = h["B"]
    cmos = (4.6 * h["macs"] + 0.9 * h["acs"]) / B
    cmos_mem = cmos + (10.0 * (h["macs"] + h["acs"] + h["mu"]) + 10.0 * h["mu"]) / B
    loihi = (23.6 * (h["macs"] + h["acs"]) + (81.0 + 1.7) * h["spikes"]
             + 52.0 * (h["mu"] - h["spikes"])) / B
    want = {"cmos45": (cmos, cmos_mem, 4.6 * h["dense"] / B),
            "loihi": (loihi, loihi, (23.6 * h["dense"] + 81.0 * h["mu"]) / B),
            "gpu": (cmos, cmos_mem, 4.6 * h["dense"] / B)}
    assert e["samples"] == len(xte) and e["steps"] == cfg.steps
    assert set(e["targets"]) == set(want) and "loihi2" in e["unavailable"]
    for name, (comp, mem, dense) in want.items():
        got = e["targets"][name]
        assert got["compute_pJ"] == pytest.approx(comp, rel=1e-12), name
        assert got["memory_pJ"] == pytest.approx(mem, rel=1e-12), name
        assert got["dense_ann_pJ"] == pytest.approx(dense, rel=1e-12), name
    assert e["activation_sparsity"] == pytest.approx(1 - h["spikes"] / h["mu"])
    assert "fc1" in e["targets"]["loihi"]["note"]          # pixels priced as synaptic ops
    on_disk = json.loads((tmp_path / "energy.json").read_text(),
                         parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
    assert on_disk["reports"]["loihi"]["per_inference"]["compute_pJ"] == \
        pytest.approx(loihi, rel=1e-12)
    assert (tmp_path / "energy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = {ln.split()[0]: ln.split() for ln in capsys.readouterr().out.splitlines()
            if ln.split() and ln.split()[0] in (*want, "loihi2")}
    for name, r in e["targets"].items():   # printed in nJ, 2 decimals, then the sparsity
        printed = [float(rows[name][i]) for i in (1, 3, 5, 7)]
        assert printed == pytest.approx([r["compute_pJ"] / 1e3, r["memory_pJ"] / 1e3,
                                         r["dense_ann_pJ"] / 1e3, e["activation_sparsity"]],
                                        abs=0.006)
    assert rows["loihi2"][1:3] == ["not", "published"]
