"""Plasticity and modulators in the network files of ``aura-snn simulate`` (issue 12,
"Command line and files" and "Bad input").

Oracles: the same network built with the library API (regions, a projection with its
connectivity, the rule attached by hand, ``Graph.run`` with hand-made modulator
tensors), never through the file reader; ``np.histogram`` of the saved weights for
the figure's bars; the file's own text for the line of every error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from _net import cli, hidden, line_of, write

from aura_snn.graph import Graph, load_recording
from aura_snn.graph import connectivity as C
from aura_snn.graph.projection import Projection
from aura_snn.graph.regions import PoissonRegion, SpikingRegion

PREFIX = "aura-snn simulate: error: "
DT = 5e-4
STEPS = 400

NET = """\
[simulation]
dt = "0.5 ms"
duration = "200 ms"
seed = 5

[[region]]
name = "noise"
size = 40
model = "poisson"
rate = "250 Hz"
seed = 11

[[region]]
name = "E"
size = 6
model = "cuba_refractory"
seed = 12

[region.params]
tau_mem = "10 ms"
tau_syn = ["2 ms"]
receptors = ["exc"]
v_leak = "-60 mV"
threshold = "-50 mV"
v_reset = "-60 mV"
refractory = "1 ms"

[[projection]]
name = "in"
pre = "noise"
post = "E"
receptor = "exc"
weight = { dist = "uniform", low = "0 mV", high = "4 mV" }
connectivity = { rule = "fixed_probability", p = 0.5, seed = 13 }
seed = 14
RULE

[output]
weight_samples = 7
weight_every = 10
"""

STDP = ('plasticity = { rule = "stdp", a_plus = "0.2 mV", a_minus = "0.22 mV", '
        'tau_plus = "20 ms", tau_minus = "15 ms", w_min = 0, w_max = "4 mV" }')


def _net(rule: str = STDP, extra: str = "") -> str:
    return NET.replace("RULE", rule) + extra


def _python_graph() -> tuple[Graph, Projection]:
    """The network of :data:`NET` through the library API (SI values written out)."""
    from aura_snn.functional import registry

    g = Graph(dt=DT, seed=5)
    g.to(torch.float64)
    g.add_region(PoissonRegion("noise", 40, torch.tensor(250.0, dtype=torch.float64), seed=11))
    params = registry.get("cuba_refractory").parameters(
        tau_mem=0.01, tau_syn=(0.002,), receptors=("exc",), v_leak=-0.06, threshold=-0.05,
        v_reset=-0.06, refractory=0.001)
    g.add_region(SpikingRegion("E", 6, "cuba_refractory", params, seed=12))
    conn = C.fixed_probability(40, 6, 0.5, seed=13, autapses=True)
    p = Projection("in", "noise", "E", {"dist": "uniform", "low": 0.0, "high": 0.004},
                   connectivity=conn, receptor="exc", seed=14)
    g.add_projection(p)
    return g, p


def _simulate(tmp: Path, text: str, *flags: str) -> tuple[Path, dict[str, Any]]:
    out = tmp / "out"
    assert cli(str(write(tmp, text)), "--out", str(out), "--quiet", *flags) == 0
    return out, json.loads((out / "summary.json").read_text())


def _check_same_run(out: Path, summary: dict, g: Graph, p: Projection,
                    **run: Any) -> np.ndarray:
    plast = summary["projections"]["in"]["plasticity"]
    idx, every = plast["sampled_synapses"], plast["sample_every_steps"]
    assert len(idx) == 7 and every == 10 and idx == sorted(set(idx))
    mon = g.monitor("in", "weights", neurons=idx, every=every)
    before = p.to_coo()[2].copy()
    with torch.no_grad():
        g.run(STEPS, backend=summary["backend"], **run)   # the backend the file run used
    pre, post, after, _ = p.to_coo()
    saved = np.load(out / "weights_in.npz", allow_pickle=False)
    np.testing.assert_array_equal(saved["pre"], pre)
    np.testing.assert_array_equal(saved["post"], post)
    np.testing.assert_array_equal(saved["before"], before)
    np.testing.assert_array_equal(saved["after"], after)
    traj = load_recording(out / "weight_trajectory_in.npz")
    np.testing.assert_array_equal(traj["t"], mon.data()["t"])
    np.testing.assert_array_equal(traj["values"], mon.data()["values"])
    assert plast["after"]["mean"] == pytest.approx(float(after.mean()), rel=1e-12)
    assert plast["before"]["std"] == pytest.approx(float(before.std()), rel=1e-12)
    tenth = 0.1 * 4e-3
    assert plast["after"]["low_tenth"] == pytest.approx(float(np.mean(after < tenth)))
    assert plast["after"]["high_tenth"] == pytest.approx(float(np.mean(after > 4e-3 - tenth)))
    return after - before


def test_stdp_file_equals_the_network_built_in_python(tmp_path: Path) -> None:
    from neuromodulation.stdp import PairSTDP, PairSTDPParameters

    out, summary = _simulate(tmp_path, _net(), "--no-plots")
    g, p = _python_graph()
    p.add_rule(PairSTDP(PairSTDPParameters(a_plus=2e-4, a_minus=2.2e-4, tau_plus=0.02,
                                           tau_minus=0.015, w_min=0.0, w_max=0.004)))
    dw = _check_same_run(out, summary, g, p)
    assert np.count_nonzero(dw) > 0.5 * dw.size      # the rule did change the weights
    assert summary["projections"]["in"]["plasticity"]["rules"] == ["PairSTDP"]


def test_triplet_and_stp_tables_equal_the_python_network(tmp_path: Path) -> None:
    from neuromodulation.stdp import TripletSTDP, TripletSTDPParameters
    from neuromodulation.stp import TsodyksMarkram, TsodyksMarkramParameters

    rules = ('[[projection.plasticity]]\nrule = "stp"\nU = 0.9\ntau_f = "5 ms"\n'
             'tau_d = "3 ms"\n\n[[projection.plasticity]]\nrule = "triplet"\n'
             'a2_plus = "0.1 mV"\na3_plus = "0.2 mV"\na2_minus = "0.15 mV"\n'
             'a3_minus = "0.01 mV"\nw_max = "4 mV"\npairing = "nearest"\n')
    out, summary = _simulate(tmp_path, _net(rules), "--no-plots")
    g, p = _python_graph()
    p.synapse = TsodyksMarkram(TsodyksMarkramParameters(U=0.9, tau_f=0.005, tau_d=0.003))
    p.add_rule(TripletSTDP(TripletSTDPParameters(a2_plus=1e-4, a3_plus=2e-4, a2_minus=1.5e-4,
                                                 a3_minus=1e-5, w_max=0.004,
                                                 pairing="nearest")))
    dw = _check_same_run(out, summary, g, p)
    assert np.count_nonzero(dw) > 0
    plast = summary["projections"]["in"]["plasticity"]
    assert plast["synapse_model"] == "TsodyksMarkram" and plast["rules"] == ["TripletSTDP"]


def _schedule(tonic: float, pulses: list[tuple[float, float]], width_steps: int) -> np.ndarray:
    """A modulator written out by hand: ``tonic`` in every step plus each pulse
    ``(time s, amplitude)`` over ``width_steps`` steps from its step."""
    s = np.full(STEPS, tonic)
    for t, a in pulses:
        k = int(round(t / DT))
        s[k:k + width_steps] += a
    return s


def test_dopamine_and_modulators_equal_the_python_network(tmp_path: Path) -> None:
    from neuromodulation.dopamine import DopamineSTDP, DopamineSTDPParameters

    rule = ('plasticity = { rule = "dopamine", a_plus = "0.5 mV", a_minus = "0.55 mV", '
            'tau_c = "100 ms", tau_d = "50 ms", tau_s = "10 ms", c_max = inf, '
            'w_max = "4 mV", modulator = "da" }')
    mods = ('\n[modulators.da]\ntonic = 0.001\ntimes = ["50 ms", "120.2 ms"]\n'
            'amplitudes = [0.5, -0.25]\nwidth = "2 ms"\n\n'
            '[modulators.ach]\nregion = "E"\ninput = "gain"\ntonic = 1.5\n'
            'times = ["100 ms"]\namplitudes = 2.0\nwidth = "50 ms"\n\n'
            '[modulators.ne]\nregion = "E"\ninput = "threshold"\ntimes = ["20 ms"]\n'
            'amplitudes = "-3 mV"\nwidth = "30 ms"\n\n'
            '[modulators.fatigue]\nregion = "E"\ntonic = 0.8\n')   # gains multiply
    out, summary = _simulate(tmp_path, _net(rule, mods), "--no-plots")
    g, p = _python_graph()
    p.add_rule(DopamineSTDP(DopamineSTDPParameters(
        a_plus=5e-4, a_minus=5.5e-4, tau_c=0.1, tau_d=0.05, tau_s=0.01, c_max=float("inf"),
        w_max=0.004, modulator="da")))
    as_t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    dw = _check_same_run(
        out, summary, g, p,
        modulators={"da": as_t(_schedule(0.001, [(0.05, 0.5), (0.1202, -0.25)], 4))},
        modulation={"E": {"gain": as_t(_schedule(1.5, [(0.1, 2.0)], 100) * 0.8),
                          "threshold": as_t(_schedule(0.0, [(0.02, -0.003)], 60))}})
    assert np.count_nonzero(dw) > 0
    spikes = load_recording(out / "spikes_E.npz")
    assert spikes["t"].size > 0


def test_histogram_bars_equal_np_histogram_of_the_saved_weights(tmp_path: Path) -> None:
    import matplotlib.image as mpimg

    from aura_snn.plot import save_figure
    from aura_snn.plot.weights import before_after_figure, trajectory_figure

    out, summary = _simulate(tmp_path, _net())
    assert {"weights_before_after.png", "weight_trajectories.png"} <= set(summary["files"])
    saved = np.load(out / "weights_in.npz", allow_pickle=False)
    edges = np.linspace(0.0, 0.004, 41)          # 40 bins over the rule's [w_min, w_max]
    fig = before_after_figure({"in": (saved["before"], saved["after"])}, {"in": (0.0, 4e-3)})
    for ax, w in zip(fig.axes, (saved["before"], saved["after"]), strict=True):
        (bars,) = ax.containers
        np.testing.assert_array_equal([b.get_height() for b in bars],
                                      np.histogram(w, bins=edges)[0])
        np.testing.assert_allclose([b.get_x() for b in bars], edges[:-1] * 1e3, rtol=1e-12)
    assert sum(b.get_height() for b in fig.axes[1].containers[0]) == saved["after"].size
    # the figure simulate wrote is this figure, pixel for pixel
    save_figure(fig, tmp_path / "again.png", dpi=130)
    np.testing.assert_array_equal(mpimg.imread(out / "weights_before_after.png"),
                                  mpimg.imread(tmp_path / "again.png"))
    traj = load_recording(out / "weight_trajectory_in.npz")
    tf = trajectory_figure({"in": (traj["t"] * DT, traj["values"])}, {"in": (0.0, 4e-3)})
    lines = [ln for ln in tf.axes[0].get_lines() if len(ln.get_xdata()) > 2]
    assert len(lines) == 7
    np.testing.assert_allclose(lines[3].get_ydata(), traj["values"][:, 3] * 1e3, rtol=1e-12)


# -- bad input: one line naming the file, line and field; exit 2; nothing written ------
def _error(tmp: Path, text: str, capsys: pytest.CaptureFixture[str]) -> str:
    out = tmp / "o"
    assert cli(str(write(tmp, text)), "--out", str(out), "--quiet") == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert not out.exists() and hidden(tmp) == []
    return err[:-1]


BAD_RULES = [
    ('tau_plus = "20 ms"', 'tau_plus = "-20 ms"', "tau_plus",
     "tau_plus must be finite and > 0 s, got -0.02"),
    ('a_plus = "0.2 mV"', "a_plus = nan", "a_plus", "must be finite, got nan"),
    ('w_min = 0, w_max = "4 mV"', 'w_min = "5 mV", w_max = "4 mV"', "w_min",
     "w_min must be <= w_max, got w_min=0.005 and w_max=0.004"),
    ('w_max = "4 mV"', 'w_max = "3 mV"', "w_max",
     "w_max = 0.003 V is below the largest starting weight"),
    ('rule = "stdp"', 'rule = "hebbian"', "rule",
     "unknown rule 'hebbian'; rules: dopamine, stdp, stp, triplet"),
    ('tau_minus = "15 ms"', 'tau_minus = "15 mV"', "tau_minus",
     "expected a time (s, ms, us), got '15 mV' (voltage)"),
    ('tau_minus = "15 ms"', 'tau_m = "15 ms"', "tau_m", "unknown key 'tau_m'; allowed: rule, "),
    ('rule = "stdp"', 'rule = "stdp", weight_dependence = "multiplicative"', "a_plus",
     "expected a number without a unit, got '0.2 mV'"),
    ('rule = "stdp"', 'rule = "stdp", pairing = "closest"', "pairing", "pairing must be one"),
]


@pytest.mark.parametrize(("old", "new", "field", "message"), BAD_RULES,
                         ids=[b[2] + ":" + b[1][:18] for b in BAD_RULES])
def test_bad_rule_values_are_one_line_naming_the_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, field: str,
        message: str) -> None:
    text = _net(STDP.replace(old, new))
    msg = _error(tmp_path, text, capsys)
    head = PREFIX + f"net.toml:{line_of(text, 'plasticity =')}: projection[0].plasticity.{field}: "
    assert msg.startswith(head + message), msg


DA = ('plasticity = { rule = "dopamine", w_max = "4 mV", modulator = "da" }')
BAD_MODULATORS = [
    (DA, '\n[modulators.da]\ntonic = 0.0\n\n[modulators.ach]\nregion = "CA1"\n',
     'region = "CA1"', "modulators.ach.region",
     "unknown region 'CA1'; regions are ['noise', 'E']"),
    (DA, '\n[modulators.da]\ntonic = 0.0\n\n[modulators.ach]\nregion = "noise"\n',
     'region = "noise"', "modulators.ach.region",
     "region 'noise' (poisson) takes no modulation input; only spiking regions do"),
    (DA, '\n[modulators.dopamine]\ntonic = 0.0\n', "plasticity =", "projection[0].plasticity",
     "the rule of projection 'in' reads the modulator 'da', which [modulators] does not "
     "define (signals: ['dopamine'])"),
    (STDP, '\n[modulators.da]\ntonic = 0.0\n', "[modulators.da]", "modulators.da",
     "signal 'da' is read by no rule (rules read [])"),
    (DA, '\n[modulators.da]\ntimes = ["1 s", "-2 s"]\n', "times", "modulators.da.times",
     "must be >= 0 s, got -2 s"),
    (DA, '\n[modulators.da]\ntimes = ["1 s", "2 s"]\namplitudes = [1, 2, 3]\n', "amplitudes",
     "modulators.da.amplitudes", "needs one amplitude per time (2) or one number, got 3"),
    (DA, '\n[modulators.da]\ntonic = nan\n', "tonic", "modulators.da.tonic",
     "must be finite, got nan"),
    (DA, '\n[modulators.da]\ntonic = 0.0\n\n[modulators.ach]\nregion = "E"\ninput = "tau"\n',
     'input = "tau"', "modulators.ach.input", "must be one of 'gain', 'threshold'; got 'tau'"),
]


@pytest.mark.parametrize(("rule", "extra", "needle", "field", "message"), BAD_MODULATORS,
                         ids=[b[3] for b in BAD_MODULATORS])
def test_bad_modulators_are_one_line_naming_the_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], rule: str, extra: str,
        needle: str, field: str, message: str) -> None:
    text = _net(rule, extra)
    msg = _error(tmp_path, text, capsys)
    assert msg.startswith(PREFIX + f"net.toml:{line_of(text, needle)}: {field}: {message}"), msg


def test_an_error_in_the_second_of_two_rule_tables_names_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = ('[[projection.plasticity]]\nrule = "stp"\nU = 0.3\n\n'
             '[[projection.plasticity]]\nrule = "stp"\ntau_d = "-1 ms"\n')
    text = _net(rules)
    msg = _error(tmp_path, text, capsys)
    assert msg == PREFIX + (f"net.toml:{line_of(text, 'tau_d')}: projection[0].plasticity[1]"
                            f".tau_d: tau_d must be finite and > 0 s, got -0.001")
    text = _net(rules.replace('tau_d = "-1 ms"', "U = 0.5"))
    msg = _error(tmp_path, text, capsys)
    second = [k for k, ln in enumerate(text.splitlines(), 1) if 'rule = "stp"' in ln][1]
    assert msg == PREFIX + (f"net.toml:{second}: projection[0].plasticity[1].rule: projection "
                            f"'in' already has a synapse model (TsodyksMarkram); one per "
                            f"projection")


def test_yaml_rule_errors_name_their_line(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    import tomllib

    import yaml

    data = tomllib.loads(_net(STDP.replace('tau_plus = "20 ms"', 'tau_plus = "-20 ms"')))
    text = yaml.safe_dump(data, sort_keys=False)
    out = tmp_path / "o"
    assert cli(str(write(tmp_path, text, "net.yaml")), "--out", str(out), "--quiet") == 2
    msg = capsys.readouterr().err.strip()
    assert msg == PREFIX + (f"net.yaml:{line_of(text, 'tau_plus')}: projection[0].plasticity."
                            f"tau_plus: tau_plus must be finite and > 0 s, got -0.02")


def test_a_rule_that_does_not_fit_its_projection_names_the_sizes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule from another package (entry point of group aura_snn.rules) whose state
    needs a square projection: the reader reports the projection's sizes."""
    from aura_snn.errors import ShapeError
    from aura_snn.graph import config_plasticity
    from aura_snn.graph.plasticity import PlasticityRule

    class Square(PlasticityRule):
        @classmethod
        def from_config(cls, table: dict, projection: Any) -> Square:
            return cls()

        def initial_state(self, projection: Any, batch: int, device: Any, dtype: Any) -> Any:
            if projection.n_pre != projection.n_post:
                raise ShapeError(f"needs n_pre == n_post, got {projection.n_pre} and "
                                 f"{projection.n_post}")
            return None

        def update(self, *args: Any) -> Any:  # pragma: no cover - never run
            return None, None

    class EntryPoint:
        value = "tests:Square"

        def load(self) -> type:
            return Square

    monkeypatch.setattr(config_plasticity, "rule_names", lambda: {"square": EntryPoint()})
    text = _net('plasticity = { rule = "square" }')
    msg = _error(tmp_path, text, capsys)
    assert msg.startswith(PREFIX + f"net.toml:{line_of(text, 'square')}: projection[0]."
                                   f"plasticity.rule: rule 'square' does not fit projection "
                                   f"'in' (40 -> 6 neurons, "), msg
    assert msg.endswith("synapses): needs n_pre == n_post, got 40 and 6"), msg


def test_examples_build() -> None:
    from aura_snn.graph.config import build_graph, load_config

    root = Path(__file__).resolve().parents[2] / "examples"
    for name in ("stdp.toml", "dopamine.toml"):
        built = build_graph(load_config(root / name))
        assert any(p.rules for p in built.graph.projections.values()), name


@pytest.mark.slow
def test_stdp_example_splits_correlated_from_independent_inputs(tmp_path: Path) -> None:
    """examples/stdp.toml: the correlated group is potentiated to its bound, the
    independent one depressed (Song & Abbott 2001's competition), from the saved
    weights (not the summary)."""
    root = Path(__file__).resolve().parents[2] / "examples"
    out = tmp_path / "out"
    assert cli(str(root / "stdp.toml"), "--out", str(out), "--quiet", "--no-plots") == 0
    a, b = (np.load(out / f"weights_{n}.npz", allow_pickle=False) for n in ("A_out", "B_out"))
    assert np.mean(a["after"] > 0.9 * 2e-3) > 0.9
    assert b["after"].mean() < 0.8 * b["before"].mean()
    assert np.mean(b["after"] < 0.1 * 2e-3) > 1.5 * np.mean(b["before"] < 0.1 * 2e-3)
