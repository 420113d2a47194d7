"""``aura-snn energy``: the counts and energies it reports are those computed here from
the model's weights, the spikes of a separate forward pass and the published figures
(Horowitz ISSCC 2014: MAC 4.6 pJ, AC 0.9 pJ, SRAM 10 pJ; Davies et al. 2018 Table 2:
23.6 pJ per synaptic op, 81/52 pJ per active/inactive neuron update, 1.7 pJ per spike);
every mistake gets one line, a non-zero status and no file at --json/--plot."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from aura_snn.cli import build_parser, main
from aura_snn.neurons.saved import save_model
from aura_snn.tasks.digits import SpikingMLP, load_digits

STEPS, HID = 12, 24


def _saved(tmp_path, digits: bool = True) -> SpikingMLP:
    torch.manual_seed(0)
    model = SpikingMLP(64, HID, 10, 10e-3, 1e-3)
    with torch.no_grad():
        model.fc1.weight.abs_().mul_(3.0)
        model.fc1.weight[:, :5] = 0.0   # zero weights: no effective op
        model.fc2.weight.abs_().mul_(2.0)
        model.fc2.weight[0] = 0.0
    meta = ({"task": "scikit-learn digits", "config": {"steps": STEPS, "test_fraction": 0.2,
                                                        "seed": 0}} if digits else {})
    save_model(model, tmp_path / "model", metadata=meta)
    return model


def _hand(model: SpikingMLP, x: torch.Tensor) -> dict[str, float]:
    """Counts from the weights (numpy) and the spikes of a separate forward pass."""
    m = model.double()
    with torch.no_grad():
        s1 = m.lif1(m.fc1(x))
        s2 = m.lif2(m.fc2(s1))
    w1 = m.fc1.weight.detach().numpy() != 0
    w2 = m.fc2.weight.detach().numpy() != 0
    xin = x.numpy().reshape(-1, 64) != 0
    macs = float(np.einsum("ni,oi->", xin.astype(np.int64), w1.astype(np.int64)))
    acs = float(np.einsum("ni,oi->", (s1.numpy().reshape(-1, HID) != 0).astype(np.int64),
                          w2.astype(np.int64)))
    T, B = x.shape[:2]
    return dict(macs=macs, acs=acs, mu=float(T * B * (HID + 10)), B=B,
                s1=float(s1.sum()), s2=float(s2.sum()),
                spikes=float(s1.sum() + s2.sum()), dense=float(T * B * (64 * HID + HID * 10)))


def _strict(path) -> dict:
    def no_nan(c: str):
        raise AssertionError(f"non-standard JSON constant {c}")
    return json.loads(path.read_text(), parse_constant=no_nan)


def _digits_x(n: int) -> torch.Tensor:
    _, _, xte, _ = load_digits(0.2, 0)
    return xte[:n].double().unsqueeze(0).expand(STEPS, -1, -1).contiguous()


def test_cmos45_report_equals_the_hand_computation(tmp_path, capsys) -> None:
    model = _saved(tmp_path)
    js, fig = tmp_path / "r" / "e.json", tmp_path / "e.png"
    rc = main(["energy", str(tmp_path / "model"), "--target", "cmos45", "--samples", "40",
               "--json", str(js), "--plot", str(fig)])
    out = capsys.readouterr().out
    assert rc == 0, out
    h = _hand(model, _digits_x(40))
    rep = _strict(js)
    assert rep["samples"] == 40 and rep["steps"] == STEPS
    L = rep["layers"]
    assert L["fc1"]["macs"] == h["macs"] and L["fc1"]["acs"] == 0
    assert L["fc2"]["acs"] == h["acs"] and L["fc2"]["macs"] == 0
    assert L["lif1"]["spikes"] == h["s1"] and L["lif2"]["spikes"] == h["s2"]
    assert L["lif1"]["activation_sparsity"] == pytest.approx(1 - h["s1"] / (STEPS * 40 * HID))
    assert L["fc1"]["activation_sparsity"] is None   # no spikes out of a Linear: null
    comp = (4.6 * h["macs"] + 0.9 * h["acs"]) / 40
    mem = comp + (10.0 * (h["macs"] + h["acs"] + h["mu"]) + 10.0 * h["mu"]) / 40
    p = rep["per_inference"]
    assert p["compute_pJ"] == pytest.approx(comp, rel=1e-12)
    assert p["memory_pJ"] == pytest.approx(mem, rel=1e-12)
    assert p["dense_ann_pJ"] == pytest.approx(4.6 * h["dense"] / 40, rel=1e-12)
    assert rep["activation_sparsity"] == pytest.approx(1 - h["spikes"] / h["mu"])
    assert f"compute {comp:.1f} pJ" in out and "Horowitz" in out
    row = next(ln.split() for ln in out.splitlines() if ln.startswith("fc1 "))
    assert float(row[1]) == pytest.approx(h["macs"] / 40, abs=0.05)     # per inference
    assert float(row[-2]) == pytest.approx(4.6 * h["macs"] / 40, abs=0.05) and row[4] == "-"
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_whole_digits_test_set_by_default(tmp_path, capsys) -> None:
    _saved(tmp_path)
    js = tmp_path / "e.json"
    assert main(["energy", str(tmp_path / "model"), "--target", "gpu", "--json", str(js)]) == 0
    _, _, xte, _ = load_digits(0.2, 0)
    assert _strict(js)["samples"] == len(xte) == 360


def test_loihi_needs_spikes_or_allow_mac(tmp_path, capsys) -> None:
    model = _saved(tmp_path)
    js = tmp_path / "e.json"
    rc = main(["energy", str(tmp_path / "model"), "--target", "loihi", "--samples", "8",
               "--json", str(js)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "fc1" in err[0] and "real-valued" in err[0] and "--allow-mac" in err[0]
    assert not js.exists()
    h = _hand(model, _digits_x(8))
    assert main(["energy", str(tmp_path / "model"), "--target", "loihi", "--samples", "8",
                 "--allow-mac", "--json", str(js)]) == 0
    e = (23.6 * (h["macs"] + h["acs"]) + 81.0 * h["spikes"] + 52.0 * (h["mu"] - h["spikes"])
         + 1.7 * h["spikes"]) / 8
    assert _strict(js)["per_inference"]["compute_pJ"] == pytest.approx(e, rel=1e-12)
    # spike input (0/1) is all accumulates: Loihi prices it without the flag
    gen = torch.Generator().manual_seed(1)
    spk = (torch.rand(STEPS, 3, 64, generator=gen) < 0.2).double()
    np.save(tmp_path / "spk.npy", spk.numpy())
    assert main(["energy", str(tmp_path / "model"), "--target", "loihi", "--input",
                 str(tmp_path / "spk.npy"), "--json", str(js)]) == 0
    h = _hand(model, spk)
    rep = _strict(js)
    assert rep["layers"]["fc1"]["acs"] == h["macs"] and rep["layers"]["fc1"]["macs"] == 0
    e = (23.6 * (h["macs"] + h["acs"]) + 81.0 * h["spikes"] + 52.0 * (h["mu"] - h["spikes"])
         + 1.7 * h["spikes"]) / 3
    assert rep["per_inference"]["compute_pJ"] == pytest.approx(e, rel=1e-12)


def test_nir_file_counts_its_neurons(tmp_path, capsys) -> None:
    """Regression: neurons of a NIR-imported graph run through ``run``, which forward
    hooks never saw (no membrane updates, no spikes, no Loihi neuron energy)."""
    pytest.importorskip("nir", reason="the nir package (extra 'peers') is not installed")
    from hardware.nir import to_nir, write

    model = _saved(tmp_path, digits=False)
    write(tmp_path / "m.nir", to_nir(model, dt=1e-3))
    js = tmp_path / "e.json"
    assert main(["energy", str(tmp_path / "m.nir"), "--target", "loihi", "--allow-mac",
                 "--samples", "5", "--steps", "10", "--seed", "3", "--json", str(js)]) == 0
    gen = torch.Generator().manual_seed(3)      # the CLI's sample input: U[0, 1) currents
    h = _hand(model, torch.rand(10, 5, 64, generator=gen).double())
    rep = _strict(js)
    assert sum(c["spikes"] for c in rep["layers"].values()) == h["spikes"] > 0
    assert sum(c["membrane_updates"] for c in rep["layers"].values()) == h["mu"]
    e = (23.6 * (h["macs"] + h["acs"]) + 81.0 * h["spikes"] + 52.0 * (h["mu"] - h["spikes"])
         + 1.7 * h["spikes"]) / 5
    assert rep["per_inference"]["compute_pJ"] == pytest.approx(e, rel=1e-12)


def test_target_from_a_toml_file(tmp_path, capsys) -> None:
    model = _saved(tmp_path)
    t = tmp_path / "mine.toml"
    t.write_text('name = "mine"\ne_mac = 2.0\ne_ac = 0.5\ne_mem_read = 1.0\n'
                 'source = "made up for the test"\n')
    js = tmp_path / "e.json"
    assert main(["energy", str(tmp_path / "model"), "--target", str(t), "--samples", "6",
                 "--json", str(js)]) == 0
    h = _hand(model, _digits_x(6))
    rep = _strict(js)
    assert rep["target"]["name"] == "mine"
    comp = (2.0 * h["macs"] + 0.5 * h["acs"]) / 6
    assert rep["per_inference"]["compute_pJ"] == pytest.approx(comp, rel=1e-12)
    assert rep["per_inference"]["memory_pJ"] == pytest.approx(
        comp + (h["macs"] + h["acs"] + h["mu"]) / 6, rel=1e-12)
    t.write_text('name = "bad"\ne_mac = -1.0\ne_ac = 0.5\n')
    assert main(["energy", str(tmp_path / "model"), "--target", str(t)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mine.toml" in err[0] and "e_mac" in err[0]


@pytest.mark.parametrize("target, words", [
    ("tpu", ["--target", "'tpu'", "cmos45", "gpu", "loihi"]),
    ("loihi2", ["--target", "loihi2", "no primary published"]),
])
def test_refused_targets(tmp_path, capsys, target, words) -> None:
    _saved(tmp_path)
    js = tmp_path / "e.json"
    assert main(["energy", str(tmp_path / "model"), "--target", target, "--json",
                 str(js)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("aura-snn energy: ")
    for w in words:
        assert w in err[0]
    assert not js.exists()


def test_bad_model_and_paths_leave_nothing(tmp_path, capsys) -> None:
    js, fig = tmp_path / "e.json", tmp_path / "e.png"

    def one_line(*argv: str) -> str:
        assert main(["energy", *argv, "--target", "cmos45", "--json", str(js)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("aura-snn energy: "), err
        assert not js.exists() and not fig.exists()
        return err[0]

    assert "missing" in one_line(str(tmp_path / "missing"))
    bad = tmp_path / "broken"
    bad.mkdir()
    (bad / "config.json").write_text("{ not json")
    assert "not valid JSON" in one_line(str(bad))
    (tmp_path / "notes.txt").write_text("hello")
    assert "not a saved model folder" in one_line(str(tmp_path / "notes.txt"))
    _saved(tmp_path)
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    assert "afile" in one_line(str(tmp_path / "model"), "--plot", str(blocker / "e.png"))
    assert main(["energy", str(tmp_path / "model"), "--target", "cmos45", "--plot",
                 str(fig), "--json", str(blocker / "e.json")]) == 2
    assert "afile" in capsys.readouterr().err and not fig.exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


NETWORK = """
[simulation]
dt = "0.1 ms"
duration = "30 ms"
seed = 3

[[region]]
name = "in"
size = 20
model = "input"
file = "{file}"

[[region]]
name = "E"
size = 10
model = "cuba_refractory"
params = {{ {params} }}

[[projection]]
name = "in-E"
pre = "in"
post = "E"
receptor = "exc"
weight = "4 mV"
connectivity = {{ rule = "all_to_all" }}

[[projection]]
name = "EE"
pre = "E"
post = "E"
receptor = "exc"
weight = "1 mV"
delay = "1 ms"
connectivity = {{ rule = "one_to_one" }}
"""
PARAMS = ('tau_mem = "20 ms", tau_syn = ["5 ms", "10 ms"], receptors = ["exc", "inh"], '
          'v_leak = "-60 mV", threshold = "-50 mV", v_reset = "-60 mV", refractory = "2 ms"')


def test_network_file_is_run_for_its_duration_and_priced(tmp_path, capsys) -> None:
    """Events of a projection = sum over steps of the pre outputs x each one's out-degree
    (all_to_all onto 10 neurons: 10; one_to_one: 1), from a separate run of the graph."""
    from aura_snn.graph.config import build_graph, load_config

    rng = np.random.default_rng(0)
    np.save(tmp_path / "in.npy", (rng.random((300, 20)) < 0.05).astype(np.float64))
    np.save(tmp_path / "cur.npy", rng.random((300, 20)))
    net = tmp_path / "net.toml"
    net.write_text(NETWORK.format(file="in.npy", params=PARAMS))
    js = tmp_path / "e.json"
    assert main(["energy", str(net), "--target", "cmos45", "--json", str(js)]) == 0
    built = build_graph(load_config(net))
    r = built.graph.run(built.steps, built.inputs, record=["in", "E"])
    s_in, s_e = float(r.outputs["in"].sum()), float(r.outputs["E"].sum())
    assert built.steps == 300 and s_e > 0
    acs, mu = 10 * s_in + 1 * s_e, 10 * 300.0
    rep = _strict(js)
    assert rep["layers"]["in-E"]["acs"] == 10 * s_in and rep["layers"]["EE"]["acs"] == s_e
    assert rep["layers"]["E"]["spikes"] == s_e and rep["steps"] == 300
    p = rep["per_inference"]
    assert p["compute_pJ"] == pytest.approx(0.9 * acs, rel=1e-12)
    assert p["memory_pJ"] == pytest.approx(0.9 * acs + 10.0 * (acs + mu) + 10.0 * mu,
                                           rel=1e-12)
    assert p["dense_ann_pJ"] == pytest.approx(4.6 * (200 + 10) * 300, rel=1e-12)
    assert main(["energy", str(net), "--target", "loihi", "--json", str(js)]) == 0
    e = 23.6 * acs + (81.0 + 1.7) * s_e + 52.0 * (mu - s_e)
    assert _strict(js)["per_inference"]["compute_pJ"] == pytest.approx(e, rel=1e-12)
    capsys.readouterr()
    net.write_text(NETWORK.format(file="cur.npy", params=PARAMS))   # real-valued input: MACs
    js.unlink()
    assert main(["energy", str(net), "--target", "loihi", "--json", str(js)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "in-E" in err[0] and "--allow-mac" in err[0]
    assert not js.exists()


def test_help_lists_energy_as_available(capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    line = next(ln for ln in capsys.readouterr().out.splitlines()
                if ln.strip().startswith("energy"))
    assert "unavailable" not in line and "energy" in line.split(None, 1)[1]
