"""``aura-snn simulate FILE --energy TARGET``: the run's counts, energy and sparsity in
``summary.json`` under ``"energy"``.

Oracle: counts computed here from the spike files the run wrote (``spikes_E.npz``, and
a monitor of the Poisson source) and the projections' synapse lists (the network the
file describes, built by :mod:`aura_snn.graph.config`), times the published pJ
figures written out here (cmos45: AC 0.9, MAC 4.6 pJ, Horowitz ISSCC 2014).
"""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import numpy as np
import pytest
from _net import NET, cli, hidden, write

from aura_snn.graph.config import build_graph, load_config
from aura_snn.graph.recorder import load_recording

PREFIX = "aura-snn simulate: error: "
RECURRENT = NET + """
[[projection]]
name = "EE"
pre = "E"
post = "E"
receptor = "exc"
weight = "2 mV"
delay = 3
connectivity = { rule = "fixed_probability", p = 0.1 }

[[monitor]]
target = "noise"
variable = "spikes"
"""


def _degrees(path: Path) -> dict[str, np.ndarray]:
    g = build_graph(load_config(path)).graph
    return {n: np.bincount(p.pre_idx.numpy(), minlength=p.n_pre)
            for n, p in g.projections.items()}


def test_energy_report_equals_counts_from_the_written_spikes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    net = write(tmp_path, RECURRENT)
    out = tmp_path / "out"
    assert cli(str(net), "--out", str(out), "--quiet", "--no-plots", "--energy", "cmos45") == 0
    assert "energy on cmos45" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    rep = summary["energy"]
    steps = summary["steps"]
    e = load_recording(out / "spikes_E.npz")["i"]
    noise = load_recording(out / "monitor_noise_spikes.npz")["i"]
    deg = _degrees(net)
    acs = {"in": deg["in"][noise].sum(), "EE": deg["EE"][e].sum()}
    assert acs["EE"] > 0 and len(noise) > 0
    lay = rep["layers"]
    for p in ("in", "EE"):
        assert lay[p]["acs"] == lay[p]["effective"] == acs[p]
        assert lay[p]["macs"] == 0 and lay[p]["dense"] == deg[p].sum() * steps
    assert lay["E"]["membrane_updates"] == 30 * steps and lay["E"]["spikes"] == len(e)
    assert lay["E"]["activation_sparsity"] == pytest.approx(1 - len(e) / (30 * steps))
    assert lay["noise"]["emitted"] == len(noise)
    assert rep["samples"] == 1 and rep["steps"] == steps and rep["target"]["name"] == "cmos45"
    assert rep["per_inference"]["compute_pJ"] == pytest.approx(0.9 * (acs["in"] + acs["EE"]))
    assert lay["in"]["activation_sparsity"] is None  # strict JSON: a projection has none


def test_without_energy_nothing_is_counted(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert cli(str(write(tmp_path)), "--out", str(out), "--quiet", "--no-plots") == 0
    assert "energy" not in json.loads((out / "summary.json").read_text())


@pytest.mark.parametrize("target, why", [
    ("tpu", ""),
    ("loihi2", " (no primary published per-operation energy for Loihi 2)")])
def test_unknown_target_is_one_line_naming_the_option(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str, why: str) -> None:
    out = tmp_path / "deep" / "out"
    assert cli(str(write(tmp_path)), "--out", str(out), "--quiet", "--energy", target) == 2
    assert capsys.readouterr().err == (
        f"{PREFIX}--energy: unknown target {target!r}{why}; known targets: cmos45, gpu, "
        f"loihi\n")
    assert not (tmp_path / "deep").exists() and hidden(tmp_path) == []


def test_missing_plugin_names_the_hardware_package(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.metadata.entry_points

    def without_reports(**kw):  # noqa: ANN003, ANN202
        return [] if kw.get("group") == "aura_snn.reports" else real(**kw)

    monkeypatch.setattr(importlib.metadata, "entry_points", without_reports)
    out = tmp_path / "out"
    assert cli(str(write(tmp_path)), "--out", str(out), "--quiet", "--energy", "cmos45") == 2
    assert capsys.readouterr().err == (
        f"{PREFIX}--energy: needs the hardware package (entry point 'energy' of group "
        f"'aura_snn.reports'), which is not installed\n")
    assert not out.exists()


def _current_input_net(tmp_path: Path) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((500, 20)) * 0.01
    x[x < 0.006] = 0.0                                    # real values with zeros
    np.save(tmp_path / "drive.npy", x)
    text = NET.replace('model = "poisson"\nrate = "100 Hz"', 'model = "input"\n'
                       'file = "drive.npy"')
    return write(tmp_path, text), x


def test_real_valued_input_is_macs_and_refused_on_loihi(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    net, x = _current_input_net(tmp_path)
    out = tmp_path / "out"
    assert cli(str(net), "--out", str(out), "--quiet", "--no-plots", "--energy", "loihi") == 2
    assert capsys.readouterr().err == (
        f"{PREFIX}--energy: 'loihi' has no MAC but projections ['in'] carry real-valued "
        f"outputs of regions ['noise']; choose a target with MACs (cmos45, gpu)\n")
    assert not out.exists() and hidden(tmp_path) == []
    assert cli(str(net), "--out", str(out), "--quiet", "--no-plots", "--energy", "cmos45") == 0
    rep = json.loads((out / "summary.json").read_text())["energy"]
    macs = ((x != 0) * _degrees(net)["in"]).sum()
    assert rep["layers"]["in"]["macs"] == macs > 0 and rep["layers"]["in"]["acs"] == 0
    assert rep["per_inference"]["compute_pJ"] == pytest.approx(4.6 * macs)
