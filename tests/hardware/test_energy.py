"""hardware.energy against energies computed in the test from hand counts and the
published figures (Horowitz 2014: MAC 4.6 pJ, AC 0.9 pJ, SRAM 10 pJ; Davies 2018 Table 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from aura_snn.neurons import LIF
from hardware.energy import Target, format_report, load_target, measure

T, B, NIN, NH, NOUT = 8, 2, 6, 7, 3


def _model() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    l1, l2 = nn.Linear(NIN, NH, bias=False), nn.Linear(NH, NOUT, bias=False)
    with torch.no_grad():
        l1.weight.abs_().mul_(3.0)
        l2.weight[0, :3] = 0.0
    m = nn.Sequential(l1, LIF(5e-3, dt=1e-3, input_scaling="direct"), l2,
                      LIF(5e-3, dt=1e-3, input_scaling="direct"))
    x = torch.rand(T, B, NIN)
    x[x < 0.4] = 0.0
    return m, x


def _hand(m: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Counts by explicit numpy loops over the recorded layer inputs."""
    with torch.no_grad():
        s1 = m[1](m[0](x))
        s2 = m[3](m[2](s1))
    w1, w2 = m[0].weight.detach().numpy(), m[2].weight.detach().numpy()
    macs = sum(int(xi != 0) * int(w1[o, i] != 0) for xi_v in x.reshape(-1, NIN).numpy()
               for o in range(NH) for i, xi in enumerate(xi_v))
    acs = sum(int(si != 0) * int(w2[o, i] != 0) for s_v in s1.reshape(-1, NH).numpy()
              for o in range(NOUT) for i, si in enumerate(s_v))
    mu = T * B * (NH + NOUT)
    spikes = float(s1.sum() + s2.sum())
    return dict(macs=macs, acs=acs, mu=mu, spikes=spikes, dense=T * B * (NIN * NH + NH * NOUT))


def test_cmos45_both_conventions(tmp_path) -> None:
    m, x = _model()
    h = _hand(m, x)
    assert h["macs"] > 0 and h["acs"] > 0
    rep = measure(m, x, "cmos45", json_path=tmp_path / "r.json")
    comp = (4.6 * h["macs"] + 0.9 * h["acs"]) / B
    mem = comp + (10.0 * (h["macs"] + h["acs"] + h["mu"]) + 10.0 * h["mu"]) / B
    assert rep["per_inference"]["compute_pJ"] == pytest.approx(comp, rel=1e-12)
    assert rep["per_inference"]["memory_pJ"] == pytest.approx(mem, rel=1e-12)
    assert rep["per_inference"]["dense_ann_pJ"] == pytest.approx(4.6 * h["dense"] / B)
    assert rep["per_step"]["compute_per_step_pJ"] == pytest.approx(comp / T)
    assert json.loads((tmp_path / "r.json").read_text())["per_inference"]["compute_pJ"] == \
        pytest.approx(comp)
    assert "per inference" in format_report(rep)


def test_loihi_neuron_and_spike_terms() -> None:
    m, x = _model()
    h = _hand(m, x)
    with pytest.raises(ValueError, match="no MAC"):
        measure(m, x, "loihi")
    rep = measure(m, x, "loihi", strict=False)
    e = 23.6 * (h["macs"] + h["acs"]) + 81.0 * h["spikes"] + 52.0 * (h["mu"] - h["spikes"]) \
        + 1.7 * h["spikes"]
    assert rep["per_inference"]["compute_pJ"] == pytest.approx(e / B, rel=1e-12)


def test_unknown_and_user_target(tmp_path) -> None:
    m, x = _model()
    with pytest.raises(ValueError, match="cmos45"):
        measure(m, x, "tpu")
    with pytest.raises(ValueError, match="loihi2"):
        measure(m, x, "loihi2")
    with pytest.raises(ValueError, match="e_mac"):
        Target("bad", e_mac=float("nan"), e_ac=1.0)
    p = tmp_path / "t.toml"
    p.write_text('name = "mine"\ne_mac = 2.0\ne_ac = 0.5\n')
    h = _hand(m, x)
    rep = measure(m, x, load_target(p))
    assert rep["per_inference"]["compute_pJ"] == pytest.approx(
        (2.0 * h["macs"] + 0.5 * h["acs"]) / B, rel=1e-12)
    assert np.isfinite(rep["layers"]["1"]["activation_sparsity"])


def test_plot_written(tmp_path) -> None:
    from aura_snn.plot.energy import plot_energy

    m, x = _model()
    plot_energy(measure(m, x, "cmos45"), tmp_path / "e.png")
    assert (tmp_path / "e.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="report"):
        plot_energy({"layers": {}}, tmp_path / "f.png")
