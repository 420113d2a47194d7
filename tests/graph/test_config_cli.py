"""Network files (TOML/YAML): errors name file, line and field; ``aura-snn simulate``
writes everything or nothing."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from aura_snn.cli.simulate import add_arguments, run
from aura_snn.errors import ConfigError
from aura_snn.graph.config import build_graph, load_config, parse_quantity

ROOT = Path(__file__).resolve().parents[2]

SMALL = """\
[simulation]
dt = "0.1 ms"
duration = "50 ms"
seed = 3

[[region]]
name = "noise"
size = 20
model = "poisson"
rate = "100 Hz"

[[region]]
name = "E"
size = 30
model = "cuba_refractory"
params = { tau_mem = "20 ms", threshold = "-50 mV", v_reset = "-60 mV" }
init = { v = { uniform = ["-60 mV", "-50 mV"] } }

[[projection]]
name = "in"
pre = "noise"
post = "E"
receptor = "exc"
weight = "3 mV"
connectivity = { rule = "fixed_probability", p = 0.2 }

[[projection]]
pre = "E"
post = "E"
weight = { dist = "uniform", low = "0.5 mV", high = "1 mV" }
delay = "1 ms"
connectivity = { rule = "fixed_indegree", k = 3 }

[[monitor]]
target = "E"
variable = "v"
neurons = [0, 1]
every = 5
"""


def _write(tmp: Path, text: str, name: str = "net.toml") -> Path:
    p = tmp / name
    p.write_text(textwrap.dedent(text))
    return p


def _line_of(text: str, needle: str, nth: int = 0) -> int:
    hits = [k for k, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[nth]


def _err(tmp: Path, text: str, name: str = "net.toml") -> str:
    with pytest.raises(ConfigError) as info:
        build_graph(load_config(_write(tmp, text, name)))
    return str(info.value)


@pytest.mark.parametrize("old,new,needle,msg", [
    ('duration = "50 ms"', 'duration = "50 mV"', "duration", "expected a time"),
    ('rate = "100 Hz"', 'rate = "100 Hz"\ncolour = 3', "colour", "unknown key 'colour'"),
    ("p = 0.2 }", "p = 1.2 }", "p = 1.2", "probability in [0, 1]"),
    ('post = "E"\nreceptor', 'post = "F"\nreceptor', 'post = "F"', "unknown region 'F'"),
    ('tau_mem = "20 ms"', 'tau_men = "20 ms"', "tau_men", "unknown key 'tau_men'"),
    ("size = 30", "size = -3", "size = -3", "must be >= 1"),
    ('model = "poisson"', 'model = "hodgkin_huxley"', "hodgkin_huxley", "must be one of"),
    ('weight = "3 mV"', 'weight = "3 ms"', 'weight = "3 ms"', "expected a potential"),
    ('delay = "1 ms"', 'delay = "0.05 ms"', "delay", "multiple of dt"),
    ('variable = "v"', 'variable = "w"', 'variable = "w"', "no variable 'w'"),
    ('rule = "fixed_indegree", k = 3', 'rule = "fixed_indegree", k = 300', "k = 300",
     "at most 30"),
    ('name = "E"', 'name = "noise"  # again', "# again", "duplicate name"),
    ('target = "E"', 'target = "X"', 'target = "X"', "unknown region or projection"),
    ('tau_mem = "20 ms"', 'tau_mem = "0.01 ms"', "tau_mem", "dt must be smaller"),
])
def test_toml_errors_name_the_line_and_field(tmp_path: Path, old: str, new: str, needle: str,
                                             msg: str) -> None:
    assert old in SMALL
    text = SMALL.replace(old, new, 1)
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        cfg = load_config(path)
        built = build_graph(cfg)
        from aura_snn.graph.config import monitor_specs
        for spec, p in monitor_specs(cfg):
            try:
                built.graph.monitor(spec["target"], spec["variable"])
            except ValueError as exc:
                raise cfg.error((*p, "variable"), str(exc)) from None
    text_msg = str(info.value)
    line = _line_of(text, needle)
    assert text_msg.startswith(f"net.toml:{line}: "), text_msg
    assert msg in text_msg, text_msg


def test_invalid_toml_syntax_reports_its_line(tmp_path: Path) -> None:
    text = SMALL.replace("seed = 3", "seed = = 3")
    msg = _err(tmp_path, text)
    assert msg.startswith(f"net.toml:{_line_of(text, 'seed = = 3')}: invalid TOML"), msg


def test_yaml_errors_name_the_line(tmp_path: Path) -> None:
    text = """\
    simulation:
      dt: 0.1 ms
      duration: 20 ms
    region:
      - name: E
        size: 10
        model: lif
        params:
          tau_mem: 10 ms
          threshold: 1.0
      - name: I
        size: 5
        model: lif
    projection:
      - pre: E
        post: I
        weight: 0.5
        connectivity:
          rule: fixed_probability
          p: -0.5
    """
    msg = _err(tmp_path, text, "net.yaml")
    assert msg.startswith("net.yaml:20: projection[0].connectivity.p:"), msg
    assert "probability" in msg
    good = text.replace("p: -0.5", "p: 0.5")
    built = build_graph(load_config(_write(tmp_path, good, "ok.yml")))
    assert built.steps == 200 and built.graph.projections["E-I"].nnz > 0


def test_quantities() -> None:
    cfg = load_config(ROOT / "examples" / "cuba.toml")
    assert parse_quantity("-49 mV", "voltage", cfg, ("x",)) == pytest.approx(-0.049)
    assert parse_quantity("0.1 ms", "time", cfg, ("x",)) == pytest.approx(1e-4)
    assert parse_quantity(2, "rate", cfg, ("x",)) == 2.0
    with pytest.raises(ConfigError, match="unknown unit 'mA'"):
        parse_quantity("3 mA", None, cfg, ("x",))


def test_cuba_example_builds_the_vogels_abbott_network() -> None:
    cfg = load_config(ROOT / "examples" / "cuba.toml")
    g = build_graph(cfg).graph
    assert [r.size for r in g.regions.values()] == [3200, 800]
    n_syn = sum(p.nnz for p in g.projections.values())
    assert abs(n_syn - 0.02 * 4000 ** 2) < 5 * np.sqrt(0.02 * 4000 ** 2)
    we = g.projections["EE"].weight
    assert float(we[0]) == pytest.approx(60 * 0.27 / 10 * 1e-3, rel=1e-15)  # float64 kept
    assert float(g.projections["IE"].weight[0]) == pytest.approx(-20 * 4.5 / 10 * 1e-3,
                                                                 rel=1e-15)
    assert cfg.steps == 10_000


# -- command line ---------------------------------------------------------------------
def _cli(*argv: str) -> int:
    p = argparse.ArgumentParser(prog="aura-snn simulate")
    add_arguments(p)
    return run(p.parse_args(list(argv)))


def test_simulate_writes_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    net = _write(tmp_path, SMALL)
    out = tmp_path / "out"
    assert _cli(str(net), "--out", str(out), "--quiet") == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["isi_histogram.png", "manifest.json", "monitor_E_v.npz",
                            "network.toml",
                            "population_rate.png", "raster.png", "spikes_E.npz",
                            "summary.json", "weight_histogram.png"])
    summary = json.loads((out / "summary.json").read_text())
    e = summary["regions"]["E"]
    assert e["neurons"] == 30 and e["spikes"] > 0 and e["rate_hz"] > 0
    assert set(e) >= {"cv_isi_mean", "synchrony_chi", "rate_hz_std"}
    assert summary["backend"] == "engine" and summary["steps"] == 500
    assert summary["projections"]["E-E"]["delay_steps_max"] == 10
    for png in ("raster.png", "weight_histogram.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from aura_snn.graph import load_recording
    v = load_recording(out / "monitor_E_v.npz")
    assert v["values"].shape == (100, 1, 2)
    assert "simulated 0.05 s" in capsys.readouterr().out
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no staging left


def test_simulate_hdf5_and_torch_backend(tmp_path: Path) -> None:
    pytest.importorskip("h5py", reason="h5py is needed for --format h5")
    net = _write(tmp_path, SMALL)
    out = tmp_path / "o"
    assert _cli(str(net), "--out", str(out), "--quiet", "--format", "h5", "--no-plots",
                "--backend", "torch", "--duration", "0.01") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["backend"] == "torch" and summary["steps"] == 100
    assert (out / "spikes_E.h5").exists() and not (out / "raster.png").exists()


def test_simulate_errors_exit_2_and_write_nothing(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    bad = _write(tmp_path, SMALL.replace('variable = "v"', 'variable = "w"'))
    # fails after the graph is built and monitors were opened: still nothing written
    assert _cli(str(bad), "--out", str(out), "--quiet") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "net.toml:" in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert _cli(str(tmp_path / "missing.toml"), "--out", str(out)) == 2
    assert "no such file" in capsys.readouterr().err


def test_command_line_entry_point(tmp_path: Path) -> None:
    net = _write(tmp_path, SMALL)
    r = subprocess.run([sys.executable, "-m", "aura_snn.cli", "simulate", str(net), "--out",
                        str(tmp_path / "o"), "--quiet", "--no-plots"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "aura_snn.cli", "simulate", "--help"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0 and "--out" in r.stdout


def test_simulate_cli_module_imports_only_argparse() -> None:
    code = ("import sys, importlib.util, importlib.machinery\n"
            "spec = importlib.util.spec_from_file_location('m', "
            f"{str(ROOT / 'aura_snn/cli/simulate.py')!r})\n"
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
            "print('torch' in sys.modules, 'numpy' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["False", "False"], r.stderr


def test_cli_parser_imports_neither_torch_nor_numpy() -> None:
    """``aura-snn --help`` builds the parser of every subcommand: all of them light."""
    code = ("import sys\n"
            "from aura_snn.cli import build_parser\n"
            "build_parser()\n"
            "print('torch' in sys.modules, 'numpy' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=ROOT, timeout=60)
    assert r.stdout.split() == ["False", "False"], r.stderr


# -- hostile YAML (issue "Hardening what landed", item 7) -------------------------------
LAUGHS = """\
a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_billion_laughs_yaml_is_refused_before_any_expansion(tmp_path: Path) -> None:
    """A 324-byte file whose aliases expand to 9**9 strings. Loaded in a child limited to
    1 GiB of address space and 60 s, so an expanding loader fails this test instead of
    taking the machine with it."""
    path = tmp_path / "laughs.yaml"
    path.write_text(LAUGHS)
    assert len(LAUGHS.encode()) == 324
    code = ("import resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
            "from aura_snn.errors import ConfigError\n"
            "from aura_snn.graph.config import load_config\n"
            "try:\n"
            f"    load_config({str(path)!r})\n"
            "except ConfigError as exc:\n"
            "    print(exc)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout == ("laughs.yaml:2: b[0]: YAML aliases are not allowed (*a refers to "
                        "the anchor &a of line 1); write the value out\n")


def test_yaml_alias_names_the_line_and_field_of_its_use(tmp_path: Path) -> None:
    text = """\
    simulation:
      dt: 0.1 ms
    region:
      - name: E
        size: 10
        params: &p {tau_mem: 10 ms, threshold: 1.0}
        model: lif
      - name: I
        size: 5
        model: lif
        params: *p
    """
    msg = _err(tmp_path, text, "net.yaml")
    assert msg == ("net.yaml:11: region[1].params: YAML aliases are not allowed (*p refers to "
                   "the anchor &p of line 6); write the value out")


@pytest.mark.parametrize("name,text", [
    ("deep.yaml", "a: " + "[" * 5000 + "]" * 5000 + "\n"),
    ("deep.toml", "[simulation]\nseed = 1\nx = " + "[" * 5000 + "]" * 5000 + "\n"),
])
def test_deeply_nested_file_is_one_error(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / name)
    line = 1 if name.endswith("yaml") else 3
    assert str(info.value).startswith(f"{name}:{line}: "), str(info.value)
    assert "nested more than 64 levels deep" in str(info.value)
