"""``aura-snn simulate`` writes nothing until the run succeeded, cleans up on SIGTERM, and
replaces the output of its own previous run whole, never a user's other files.

Regression tests of "Hardening what landed", item 9."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _net import NET, SIGTERM, cli, interrupt_run, write

PREFIX = "aura-snn simulate: error: "
NO_MONITOR = NET[:NET.index("[[monitor]]")]


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _all_hidden(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*"))


def test_error_after_parsing_creates_no_parent_folders(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, NET.replace('variable = "v"', 'variable = "w"'))
    out = tmp_path / "a" / "b" / "out"
    assert cli(str(bad), "--out", str(out), "--quiet") == 2
    assert "no variable 'w'" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
    assert _all_hidden(tmp_path) == []


def test_error_while_running_creates_no_parent_folders(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aura_snn.errors import ParameterError
    from aura_snn.graph import Graph

    def fail(self, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        raise ParameterError("the run failed")

    monkeypatch.setattr(Graph, "run", fail)
    out = tmp_path / "a" / "out"
    assert cli(str(write(tmp_path)), "--out", str(out), "--quiet") == 2
    assert not (tmp_path / "a").exists() and _all_hidden(tmp_path) == []


def test_missing_parents_are_created_when_the_run_succeeds(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "out"
    assert cli(str(write(tmp_path)), "--out", str(out), "--quiet", "--no-plots") == 0
    assert "summary.json" in _names(out) and _all_hidden(tmp_path) == []


def test_sigterm_removes_the_staging_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = interrupt_run(tmp_path, SIGTERM, out)
    assert r.returncode == 143, r.stderr
    assert r.stderr == f"aura-snn simulate: terminated; nothing was written to {out}\n"
    assert not out.exists()
    assert _all_hidden(tmp_path) == []


def test_rerun_replaces_our_previous_output_and_keeps_the_users_files(
        tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert cli(str(write(tmp_path)), "--out", str(out), "--quiet") == 0
    first = set(_names(out))
    assert {"raster.png", "monitor_E_v.npz", "manifest.json"} <= first
    (out / "notes.txt").write_text("mine")
    (out / "my_plot.png").write_bytes(b"mine")
    (out / "sub").mkdir()
    # the second run draws no plots and has no monitor: those files of the first go
    net2 = write(tmp_path, NO_MONITOR, "net2.toml")
    assert cli(str(net2), "--out", str(out), "--quiet", "--no-plots") == 0
    ours = ["network.toml", "spikes_E.npz", "summary.json"]
    assert _names(out) == sorted([*ours, "manifest.json", "notes.txt", "my_plot.png", "sub"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["written_by"] == "aura-snn simulate" and manifest["files"] == ours
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "my_plot.png").read_bytes() == b"mine"
    assert _all_hidden(tmp_path) == []


def test_failed_rerun_leaves_the_previous_output_as_it_was(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert cli(str(write(tmp_path)), "--out", str(out), "--quiet", "--no-plots") == 0
    before = {n: (out / n).read_bytes() for n in _names(out)}
    bad = write(tmp_path, NET.replace("neurons = [0, 1]", "neurons = [0, 99999]"), "bad.toml")
    assert cli(str(bad), "--out", str(out), "--quiet") == 2
    assert {n: (out / n).read_bytes() for n in _names(out)} == before


def test_a_manifest_never_reaches_outside_the_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (out / "manifest.json").write_text(json.dumps({
        "written_by": "aura-snn simulate",
        "files": ["../victim.txt", str(victim), "..", "sub", "summary.json"]}))
    (out / "sub").mkdir()
    assert cli(str(write(tmp_path)), "--out", str(out), "--quiet", "--no-plots") == 0
    assert victim.read_text() == "keep" and (out / "sub").is_dir()


def test_a_manifest_we_did_not_write_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text('{"name": "my own project"}')
    assert cli(str(write(tmp_path)), "--out", str(out), "--quiet", "--no-plots") == 2
    assert capsys.readouterr().err == PREFIX + (
        f"--out: {str(out / 'manifest.json')!r} was not written by aura-snn simulate; "
        f"choose another folder or remove it\n")
    assert _names(out) == ["manifest.json"]
    assert (out / "manifest.json").read_text() == '{"name": "my own project"}'
