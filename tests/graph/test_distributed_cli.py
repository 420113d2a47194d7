"""``aura-snn simulate FILE --workers N`` writes what one process writes.

The oracle is the same command without ``--workers`` (one process, the engine): every
spike file and monitor file must hold equal arrays, and the summary's statistics must
be equal. One Ray cluster for the module, shut down at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from aura_snn.cli.simulate import add_arguments, run
from aura_snn.graph import load_recording

ray = pytest.importorskip("ray")

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    from test_distributed import _alive, _descendants

    before = _descendants(os.getpid())
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    from aura_snn.graph.distributed import release_workers

    started = _descendants(os.getpid()) - before
    release_workers()
    ray.shutdown()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(p) for p in started):
        time.sleep(0.2)
    assert not [p for p in started if _alive(p)]


def _cli(*argv: str) -> int:
    p = argparse.ArgumentParser(prog="aura-snn simulate")
    add_arguments(p)
    return run(p.parse_args(list(argv)))


def _small_cuba(tmp_path: Path) -> Path:
    """examples/cuba.toml at a tenth of the size, 20 ms, its v monitor kept."""
    text = (ROOT / "examples" / "cuba.toml").read_text()
    for old, new in (("size = 3200", "size = 320"), ("size = 800", "size = 80"),
                     ("p = 0.02", "p = 0.2"), ('duration = "1 s"', 'duration = "20 ms"')):
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "cuba.toml"
    path.write_text(text)
    return path


def test_simulate_with_workers_writes_the_same_outputs(tmp_path: Path) -> None:
    net = _small_cuba(tmp_path)
    one, two = tmp_path / "one", tmp_path / "two"
    assert _cli(str(net), "--out", str(one), "--no-plots", "--quiet") == 0
    assert _cli(str(net), "--out", str(two), "--no-plots", "--quiet", "--workers", "2") == 0
    files = sorted(p.name for p in one.iterdir())
    assert files == sorted(p.name for p in two.iterdir())
    recordings = [f for f in files if f.endswith(".npz")]
    assert {"spikes_E.npz", "spikes_I.npz", "monitor_E_v.npz"} <= set(recordings)
    for f in recordings:
        a, b = load_recording(one / f), load_recording(two / f)
        assert set(a) == set(b)
        for key in a:
            if key != "_meta":
                assert np.array_equal(a[key], b[key]), (f, key)
    assert load_recording(one / "spikes_E.npz")["t"].size > 0
    s1, s2 = (json.loads((d / "summary.json").read_text()) for d in (one, two))
    assert s1["regions"] == s2["regions"] and s1["projections"] == s2["projections"]
    assert s2["backend"] == "ray" and "distributed" not in s1
    d = s2["distributed"]
    assert d["workers"] == 2 and d["window_steps"] == 1 and d["exchanges"] == 2 * 200
    assert sorted(d["assignment"].values()) == [0, 1]


@pytest.mark.parametrize("argv,match", [
    (("--workers", "3"), "--workers: 3 workers but the network has 2 regions"),
    (("--workers", "0"), "--workers: must be >= 1"),
    (("--address", "127.0.0.1:1"), "--address: needs --workers"),
    (("--workers", "2", "--address", "127.0.0.1:1"), "--address: address='127.0.0.1:1': "
                                                     "cannot reach"),
])
def test_simulate_worker_options_are_one_line_errors(tmp_path: Path, argv: tuple,
                                                     match: str,
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    net = _small_cuba(tmp_path)
    out = tmp_path / "out"
    assert _cli(str(net), "--out", str(out), "--no-plots", "--quiet", *argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0], err
    assert not out.exists()


# -- snapshots: --checkpoint-every, --checkpoint-dir, --resume -------------------------
def _same_recordings(a_dir: Path, b_dir: Path) -> list[str]:
    """Every .npz of ``a_dir`` holds the same arrays in ``b_dir``; their names."""
    names = sorted(p.name for p in a_dir.iterdir() if p.suffix == ".npz")
    assert names == sorted(p.name for p in b_dir.iterdir() if p.suffix == ".npz")
    for f in names:
        a, b = load_recording(a_dir / f), load_recording(b_dir / f)
        assert set(a) == set(b), f
        for key in a:
            if key != "_meta":
                assert np.array_equal(a[key], b[key]), (f, key)
    return names


def test_a_run_cut_in_two_with_resume_equals_one_run(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    """Oracle: the uninterrupted one-process run (the engine, no Ray). The first part
    stops at step 80 (snapshots at 30, 60 and its end); ``--resume`` runs 80..200 and
    writes the whole run's files (the snapshot carries what the monitors saw)."""
    net = _small_cuba(tmp_path)
    one, first, second, ck = (tmp_path / n for n in ("one", "first", "second", "ck"))
    quiet = ("--no-plots", "--quiet")
    assert _cli(str(net), "--out", str(one), *quiet) == 0
    assert _cli(str(net), "--out", str(first), *quiet, "--workers", "2", "--duration",
                "0.008", "--checkpoint-every", "30",
                "--checkpoint-dir", str(ck)) == 0
    s1 = json.loads((first / "summary.json").read_text())["distributed"]
    assert [s["step"] for s in s1["snapshots"]] == [30, 60, 80]
    assert sorted(p.name for p in ck.iterdir()) == ["snapshot-000000000080"]   # pruned
    assert _cli(str(net), "--out", str(second), *quiet, "--workers", "2",
                "--resume", str(ck)) == 0
    names = _same_recordings(one, second)
    assert {"spikes_E.npz", "spikes_I.npz", "monitor_E_v.npz"} <= set(names)
    assert load_recording(one / "spikes_E.npz")["t"].max() > 80     # spikes after the cut
    s2 = json.loads((second / "summary.json").read_text())
    assert s2["distributed"]["resumed_from_step"] == 80 and s2["steps"] == 200
    assert s2["regions"] == json.loads((one / "summary.json").read_text())["regions"]
    assert [s["step"] for s in s2["distributed"]["snapshots"]] == [200]  # kept in ck
    capsys.readouterr()
    # nothing left to run; a snapshot of another network (other seeds): named, no output
    bad = tmp_path / "bad"
    for argv, match in (((), "--resume: the last snapshot in"),
                        (("--seed", "99"), "--resume: snapshot")):
        assert _cli(str(net), "--out", str(bad), *quiet, "--workers", "2",
                    "--resume", str(ck), *argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and match in err[0], err
        assert not bad.exists()
    assert "another network" in err[0]


@pytest.mark.parametrize("argv,match", [
    (("--workers", "2", "--checkpoint-every", "0", "--checkpoint-dir", "{ck}"),
     "--checkpoint-every: must be a number of steps >= 1"),
    (("--workers", "2", "--checkpoint-every", "often", "--checkpoint-dir", "{ck}"),
     "--checkpoint-every: must be a number of steps >= 1"),
    (("--workers", "2", "--checkpoint-every", "-3 s", "--checkpoint-dir", "{ck}"),
     "--checkpoint-every: must be"),
    (("--workers", "2", "--checkpoint-every", "10"), "--checkpoint-every: needs "
                                                      "--checkpoint-dir"),
    (("--checkpoint-every", "10", "--checkpoint-dir", "{ck}"), "--checkpoint-every: needs "
                                                               "--workers"),
    (("--resume", "{ck}"), "--resume: needs --workers"),
    (("--workers", "2", "--resume", "{ck}"), "--resume: no checkpoint folder"),
    (("--workers", "2", "--resume", "{empty}"), "--resume: "),
    (("--workers", "2", "--checkpoint-dir", "{file}"), "--checkpoint-dir: "),
])
def test_snapshot_options_are_one_line_errors(tmp_path: Path, argv: tuple, match: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    net = _small_cuba(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    where = {k: str(tmp_path / k) for k in ("ck", "empty", "file")}
    out = tmp_path / "out"
    argv = tuple(a.format(**where) for a in argv)
    assert _cli(str(net), "--out", str(out), "--no-plots", "--quiet", *argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0], err
    assert not out.exists() and not (tmp_path / "ck").exists()
    if "{empty}" in argv or where["empty"] in argv:
        assert "holds no complete snapshot" in err[0]
    if where["file"] in argv:
        assert "exists and is not a folder" in err[0]


def test_ctrl_c_of_a_partitioned_simulate_exits_130_and_leaves_a_snapshot_to_resume(
        tmp_path: Path) -> None:
    """SIGINT to ``aura-snn simulate --workers 2`` (its process group, as a terminal's
    Ctrl+C) once a snapshot exists: status 130, no ``--out``, only complete snapshot
    folders left (every file matching its manifest's hash), and resuming from the
    last one for 5 ms more equals the uninterrupted one-process run to that step."""
    import signal
    import subprocess
    import sys
    import warnings

    from aura_snn.graph.distributed import latest_snapshot

    net = _small_cuba(tmp_path)
    out, ck = tmp_path / "out", tmp_path / "ck"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "aura_snn.cli", "simulate", str(net), "--out", str(out),
         "--no-plots", "--quiet", "--workers", "2", "--duration", "5",
         "--checkpoint-every", "25", "--checkpoint-dir", str(ck)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                snap = latest_snapshot(ck)
            if snap is not None and snap.step >= 50:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in err.strip().splitlines()[-1]
    assert not out.exists()
    folders = sorted(p.name for p in ck.iterdir())
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # an incomplete folder would warn
        snap = latest_snapshot(ck)
    assert snap is not None and folders == [snap.path.name]
    from aura_snn.graph.distributed import read_part

    for name in snap.files:
        read_part(snap, name)                     # hashes and safetensors checks
    step = snap.step
    assert step >= 50 and step % 25 == 0
    dur = f"{(step + 50) * 1e-4:.6f}"
    one, resumed = tmp_path / "one", tmp_path / "resumed"
    assert _cli(str(net), "--out", str(one), "--no-plots", "--quiet", "--duration", dur) == 0
    assert _cli(str(net), "--out", str(resumed), "--no-plots", "--quiet", "--workers", "2",
                "--resume", str(ck), "--duration", dur) == 0
    _same_recordings(one, resumed)
