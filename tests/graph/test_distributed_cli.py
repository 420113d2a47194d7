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
