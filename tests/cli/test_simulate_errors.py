"""``aura-snn simulate`` never shows a traceback for a user's mistake: one line naming the
file, the line and the field, exit status 2 (130 for Ctrl+C).

Regression tests of "Hardening what landed", items 6 (allocation, encoding, overflow,
Ctrl+C; a network is sized before it is built) and 8 (errors found while running name
the real line and field, and the user's paths, never the staging folder)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _net import NET, ROOT, SIGINT, cli, hidden, interrupt_run, line_of, write

from aura_snn.graph import config

PREFIX = "aura-snn simulate: error: "


def _one_line(err: str) -> str:
    assert "Traceback" not in err, err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    return err[:-1]


# -- item 6: sizes, encodings, overflow, Ctrl+C -----------------------------------------
def test_region_of_a_trillion_neurons_is_refused_with_its_estimate(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "available_memory", lambda: 8_000_000_000)
    text = NET.replace("size = 30", "size = 1000000000000")
    out = tmp_path / "deep" / "out"
    assert cli(str(write(tmp_path, text)), "--out", str(out), "--quiet") == 2
    msg = _one_line(capsys.readouterr().err)
    m = re.fullmatch(
        PREFIX + rf"net\.toml:{line_of(text, 'size = 1000000000000')}: region\[1\]\.size: "
        r"the network does not fit in memory: 1000000000020 neurons and 4000000000000 "
        r"synapses need about (\d+) bytes \(([\d.]+ [kMGTP]?B)\), more than the "
        r"8000000000 bytes \(8 GB\) available", msg)
    assert m, msg
    # at least a float64 potential per neuron and a float64 weight per synapse
    assert int(m.group(1)) >= 8 * (1_000_000_000_020 + 4_000_000_000_000)
    assert not out.exists() and not (tmp_path / "deep").exists()
    assert hidden(tmp_path) == []


def test_projection_that_does_not_fit_names_its_connectivity(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "available_memory", lambda: 8_000_000_000)
    text = NET.replace("size = 30", "size = 2000000") + (
        '\n[[projection]]\nname = "EE"\npre = "E"\npost = "E"\nweight = "1 mV"\n'
        'connectivity = { rule = "all_to_all" }\n')
    assert cli(str(write(tmp_path, text)), "--out", str(tmp_path / "o"), "--quiet") == 2
    msg = _one_line(capsys.readouterr().err)
    line = line_of(text, 'rule = "all_to_all"')
    assert msg.startswith(PREFIX + f"net.toml:{line}: projection[1].connectivity: the network "
                                   f"does not fit in memory: 2000020 neurons and "
                                   f"4000008000000 synapses need about "), msg


def test_network_size_counts_neurons_and_expected_synapses_by_hand() -> None:
    size = config.network_size(config.load_config(ROOT / "examples" / "cuba.toml"))
    assert size.neurons == 3200 + 800
    assert size.synapses == pytest.approx(0.02 * (3200 + 800) ** 2)   # four 2 % projections
    assert size.bytes >= 8 * (size.neurons + size.synapses)
    assert set(size.regions) == {("region", 0, "size"), ("region", 1, "size")}
    assert size.blame(10 ** 12) == ("projection", 0, "connectivity")  # EE: most synapses


def test_a_network_that_fits_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "available_memory", lambda: 8_000_000_000)
    assert cli(str(write(tmp_path)), "--out", str(tmp_path / "o"), "--quiet",
               "--no-plots") == 0


def test_file_that_is_not_utf8_names_its_line_and_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = NET.replace('name = "E"', 'name = "E\xe9"')  # saved as Latin-1 below
    path = tmp_path / "net.toml"
    path.write_bytes(text.encode("latin-1"))
    assert cli(str(path), "--out", str(tmp_path / "o"), "--quiet") == 2
    msg = _one_line(capsys.readouterr().err)
    line = line_of(text, "\xe9")
    assert msg == PREFIX + (f"net.toml:{line}: region[1].name: not UTF-8 text (byte 0xe9 at "
                            f"column 10); save the file as UTF-8")


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400"])
def test_duration_that_is_not_finite_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str) -> None:
    assert cli(str(write(tmp_path)), "--out", str(tmp_path / "o"), "--quiet",
               f"--duration={value}") == 2
    msg = _one_line(capsys.readouterr().err)
    shown = {"1e400": "inf"}.get(value, value)
    assert msg == PREFIX + (f"--duration: must be a finite time of at least one step "
                            f"(0.0001 s), got {shown}")
    assert not (tmp_path / "o").exists()


def test_duration_of_more_steps_than_a_run_counts(tmp_path: Path) -> None:
    """In a child with a timeout: a loader that accepts the duration would simulate for
    ever."""
    text = NET.replace('duration = "50 ms"', "duration = 1e300")
    for net, extra, where in [
            (write(tmp_path, text, "long.toml"), [],
             f"long.toml:{line_of(text, 'duration')}: simulation.duration: "),
            (write(tmp_path), ["--duration", "1e300"], "--duration: ")]:
        r = subprocess.run([sys.executable, "-m", "aura_snn.cli", "simulate", str(net),
                            "--out", str(tmp_path / "o"), "--quiet", *extra],
                           capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert r.returncode == 2, r.stderr
        msg = _one_line(r.stderr)
        assert msg.startswith(PREFIX + where + "must be at most 9007199254740992 steps"), msg


def test_ctrl_c_exits_130_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "a" / "out"
    r = interrupt_run(tmp_path, SIGINT, out)
    assert r.returncode == 130, r.stderr
    assert r.stderr == f"aura-snn simulate: interrupted; nothing was written to {out}\n"
    assert not (tmp_path / "a").exists()
    assert hidden(tmp_path) == []


# -- item 8: errors found while running -------------------------------------------------
def test_monitor_neuron_out_of_range_names_the_monitor_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = NET.replace("neurons = [0, 1]", "neurons = [0, 99999]")
    out = tmp_path / "o"
    assert cli(str(write(tmp_path, text)), "--out", str(out), "--quiet") == 2
    msg = _one_line(capsys.readouterr().err)
    assert msg == PREFIX + (f"net.toml:{line_of(text, '99999')}: monitor[0].neurons: neuron "
                            f"99999 is out of range for region 'E' of 30 neurons")
    assert not out.exists() and hidden(tmp_path) == []


def test_monitor_synapse_out_of_range_names_the_projection(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (NET.replace('rule = "fixed_probability", p = 0.2', 'rule = "all_to_all"')
            .replace('target = "E"\nvariable = "v"', 'target = "in"\nvariable = "weights"')
            .replace("neurons = [0, 1]", "neurons = [600]"))
    assert cli(str(write(tmp_path, text)), "--out", str(tmp_path / "o"), "--quiet") == 2
    msg = _one_line(capsys.readouterr().err)
    assert msg == PREFIX + (f"net.toml:{line_of(text, '[600]')}: monitor[0].neurons: synapse "
                            f"600 is out of range for projection 'in' of 600 synapses")


def test_nan_in_an_input_file_names_the_region_file_and_the_users_path(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = np.zeros((1000, 20))
    x[10, 2] = np.nan
    x[11, 3] = np.inf
    (tmp_path / "data").mkdir()
    np.save(tmp_path / "data" / "drive.npy", x)
    text = NET.replace('model = "poisson"\nrate = "100 Hz"',
                       'model = "input"\nfile = "data/drive.npy"')
    assert cli(str(write(tmp_path, text)), "--out", str(tmp_path / "o"), "--quiet") == 2
    msg = _one_line(capsys.readouterr().err)
    assert msg == PREFIX + (f"net.toml:{line_of(text, 'drive.npy')}: region[0].file: "
                            f"data/drive.npy holds 2 NaN or infinite values (the first at "
                            f"step 10, neuron 2)")


def test_an_error_while_running_never_shows_the_staging_folder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An error only the run finds (here: forced) names the [simulation] table and the
    user's --out, not the hidden staging folder nor line 1's backend field."""
    from aura_snn.errors import ParameterError
    from aura_snn.graph import Graph

    def fail(self, steps, inputs=None, **kw):  # noqa: ANN001, ANN202
        raise ParameterError(f"cannot write {self.monitors[0].path}: disk full")

    monkeypatch.setattr(Graph, "run", fail)
    text = "# a comment first\n" + NET
    out = tmp_path / "o"
    assert cli(str(write(tmp_path, text)), "--out", str(out), "--quiet") == 2
    msg = _one_line(capsys.readouterr().err)
    assert "staging" not in msg and "backend" not in msg, msg
    assert msg == PREFIX + (f"net.toml:{line_of(text, '[simulation]')}: simulation: cannot "
                            f"write {out / 'spikes_E.npz'}: disk full")
