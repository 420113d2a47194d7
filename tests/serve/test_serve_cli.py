"""``aura-snn serve``: signals, snapshots, ``--wipe``, refused folders.

Oracle: the network run offline in one call (:mod:`serve_oracle`). A served process is
fed input, stopped by SIGTERM, and a new service resumed from its folder is fed more:
what it publishes from step 0 must equal the offline run of all the input. A snapshot
interrupted before its manifest is written must leave the previous one in force. The
Ray clusters here are started and stopped by the services themselves.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from serve_oracle import CHAIN, offline, spikes

from aura_snn.cli import main
from aura_snn.serve import Brain, Client, Service
from aura_snn.serve import state_dir as sd

ray = pytest.importorskip("ray")


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _step(state: Path) -> int | None:
    man = sd.read_manifest(state)
    return None if man is None else man["step"]


def test_sigterm_saves_the_state_and_a_restart_resumes_it(tmp_path: Path) -> None:
    a1, a2, b = spikes(200, seed=5), spikes(150, seed=6), spikes(200, seed=7)
    want, _ = offline(np.concatenate([a1, a2, b]))
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "aura_snn.cli", "serve", str(CHAIN), "--state", str(state),
         "--port", "0", "--snapshot-every", "0.3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert " at http://" in line, (line, proc.stderr.read() if proc.poll() else "")
        address = line.split(" at http://")[1].split(" ")[0]
        c = Client(address)
        c.push("sensory", a1)
        deadline = time.monotonic() + 60
        while _step(state) != 200 and time.monotonic() < deadline:   # periodic snapshot
            time.sleep(0.1)
        assert _step(state) == 200
        c.push("sensory", a2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped at step 350" in out
    assert _step(state) == 350                                        # final snapshot
    assert len(list(state.glob("snap-*"))) == 1
    with Service(CHAIN, state) as s:
        c = Client(s.address)
        c.push("sensory", b)
        got = c.read("motor", since=0).spikes
    assert np.array_equal(got, want["motor"])


def test_interrupted_snapshot_leaves_the_previous_one(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    a1, a2, b = spikes(120, seed=8), spikes(80, seed=9), spikes(100, seed=10)
    want, _ = offline(np.concatenate([a1, a2, b]))
    state = tmp_path / "state"
    brain = Brain(str(CHAIN), str(state))
    brain.push("sensory", a1)
    brain.push("sensory", a2[:30, :])
    assert brain.snapshot()["step"] == 150
    brain.push("sensory", a2[30:])

    def killed(*_: object) -> None:
        raise KeyboardInterrupt
    monkeypatch.setattr(sd, "atomic_write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        brain.snapshot()
    monkeypatch.undo()
    assert _step(state) == 150 and len(list(state.glob("snap-*"))) == 2
    again = Brain(str(CHAIN), str(state))
    assert again.step == 150
    again.push("sensory", a2[30:])
    again.push("sensory", b)
    got = again.read("motor", 0)
    t, i = np.asarray(got["events"]["t"]), np.asarray(got["events"]["i"])
    assert np.array_equal(np.stack(np.nonzero(want["motor"])), np.stack([t, i]))
    again.snapshot()
    assert _step(state) == 300 and len(list(state.glob("snap-*"))) == 1


def _saved_state(folder: Path) -> Path:
    brain = Brain(str(CHAIN), str(folder))
    brain.push("sensory", spikes(20, seed=11))
    brain.snapshot()
    return folder


def test_wipe_asks_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    state = _saved_state(tmp_path / "state")
    before = _tree(state)
    argv = ["serve", str(CHAIN), "--state", str(state), "--wipe"]
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    assert main(argv) == 1
    assert _tree(state) == before
    asked: list[str] = []
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or "y")
    assert main(argv) == 0
    assert "step 20" in asked[0] and "serve_chain.toml" in asked[0]
    assert not state.exists()
    _saved_state(state)

    def no_prompt(prompt: str) -> str:
        raise AssertionError("--yes must not ask")
    monkeypatch.setattr("builtins.input", no_prompt)
    assert main([*argv, "--yes"]) == 0
    assert not state.exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    assert main(["serve", str(CHAIN), "--state", str(tmp_path / "mine"), "--wipe",
                 "--yes"]) == 2
    assert "notes.txt" in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_cli_refuses_a_folder_of_another_network(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    state = _saved_state(tmp_path / "state")
    before = _tree(state)
    other = tmp_path / "other.toml"
    other.write_text(CHAIN.read_text().replace('size = 8', 'size = 9'))
    assert main(["serve", str(other), "--state", str(state), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "serve_chain.toml" in err and "other.toml" in err and "--state" in err
    assert _tree(state) == before
    assert json.loads((state / "manifest.json").read_text())["step"] == 20
    assert not ray.is_initialized()
