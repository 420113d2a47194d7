"""Snapshots, resume and a killed worker of a partitioned run (issue 14, faults).

The oracle is the uninterrupted single-process run of the same graph (the torch
stepper, itself tested against Brian2): a run stopped and resumed from its snapshot,
and a run whose worker is killed mid-way, must give its spikes, recorded outputs,
monitors and final state (pending inputs included) bit for bit. The snapshot files are
checked against the tensors the test wrote and against hand-made damage. One Ray
cluster for the module, shut down at the end, no process of it left.
"""

from __future__ import annotations

import json
import os
import signal
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from aura_snn.errors import ShapeError, StateMismatchError
from aura_snn.graph import Graph, Observer, PoissonRegion, SpikingRegion

ray = pytest.importorskip("ray")

from test_distributed import _alive, _assert_same_state, _descendants, _ei  # noqa: E402

from aura_snn.graph.distributed import cluster, latest_snapshot, read_part  # noqa: E402
from aura_snn.graph.distributed.snapshot import (  # noqa: E402
    commit_snapshot,
    save_snapshot,
    snapshot_dir,
    write_part,
)
from aura_snn.graph.distributed.worker import RegionWorker  # noqa: E402

T = 400
SPLIT3 = {"drive": 1, "E1": 0, "I1": 1, "E2": 2, "I2": 0}


@pytest.fixture(scope="module", autouse=True)
def cluster_session() -> Iterator[None]:
    before = _descendants(os.getpid())
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    started = _descendants(os.getpid()) - before
    cluster.release_workers()
    ray.shutdown()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(p) for p in started):
        time.sleep(0.2)
    assert not [p for p in started if _alive(p)]


@pytest.fixture(scope="module")
def oracle() -> tuple[dict, dict, object]:
    """The uninterrupted one-process run: outputs, monitor data, final state."""
    g = _ei(torch.float64)
    mons = _mons(g)
    with torch.no_grad():
        r = g.run(T, record=list(g.regions), backend="torch")
    return r.outputs, [m.data() for m in mons], r.state


def _mons(g: Graph) -> list:
    return [g.monitor("E1", "spikes"), g.monitor("I2", "spikes"),
            g.monitor("E2", "v", neurons=[0, 5, 9], every=3), g.monitor("E1", "i", every=5)]


def _same_monitors(got: list, want: list, t_from: int = 0, t_to: int = T) -> None:
    for a, b in zip(got, want, strict=True):
        keep = (b["t"] >= t_from) & (b["t"] < t_to)
        assert set(a) == set(b)
        for key in b:
            if key != "_meta":
                assert np.array_equal(a[key], b[key][keep]), key


class _At(Observer):
    """Calls ``act`` once, when the observers get the chunk starting at ``t0``."""

    spike_regions = frozenset()

    def __init__(self, t0: int, act) -> None:  # noqa: ANN001
        self.t0, self.act, self.done = t0, act, False

    def observe(self, chunk) -> None:  # noqa: ANN001
        if not self.done and chunk.t0 >= self.t0:
            self.done = True
            self.act()


def _interrupt() -> None:
    raise KeyboardInterrupt


# -- stop and resume ------------------------------------------------------------------
def test_stopped_run_resumes_from_its_snapshot_with_identical_results(
        tmp_path: Path, oracle: tuple) -> None:
    """Ctrl+C at step 296 (the snapshot of step 300 begun, not complete): it is
    discarded whole and step 250 is the last one; a new graph resumed there on another
    partition finishes exactly like the uninterrupted run."""
    outputs, monitors, final = oracle
    ck = tmp_path / "ck"
    g1 = _ei(torch.float64)
    m1 = _mons(g1)
    g1.add_observer(_At(296, _interrupt))
    with pytest.raises(KeyboardInterrupt):
        g1.run(T, backend="ray", partition=SPLIT3, checkpoint_every=50, checkpoint_dir=ck)
    assert sorted(os.listdir(ck)) == ["snapshot-000000000250"]
    assert sorted(os.listdir(ck / "snapshot-000000000250")) == [
        "manifest.json", "observed.safetensors", "worker-0.safetensors",
        "worker-1.safetensors", "worker-2.safetensors"]
    _same_monitors([m.data() for m in m1], monitors, 0, 298)  # saw chunk 296-297
    g2 = _ei(torch.float64)
    m2 = _mons(g2)
    r2 = g2.run(T - 250, record=list(g2.regions), backend="ray", partition=2, resume=ck,
                checkpoint_every=100, checkpoint_dir=ck)
    for n in g2.regions:
        assert torch.equal(r2.outputs[n], outputs[n][250:]), n
    _same_monitors([m.data() for m in m2], monitors)  # replayed history + the rest
    _assert_same_state(r2.state, final)
    assert outputs["E1"][250:].sum() > 20
    assert [s.step for s in r2.distributed.snapshots] == [350, T]
    snap = latest_snapshot(ck)
    assert snap.step == T and snap.meta["observed"]["start"] == 0   # the whole chain


def test_two_runs_chained_through_a_checkpoint_equal_one_run(tmp_path: Path,
                                                             oracle: tuple) -> None:
    """Run 160 steps (a snapshot at its end), then 240 more from the folder."""
    outputs, _, final = oracle
    g1 = _ei(torch.float64)
    r1 = g1.run(160, record=["E2"], backend="ray", partition=2, checkpoint_dir=tmp_path)
    assert [s.step for s in r1.distributed.snapshots] == [160]
    g2 = _ei(torch.float64)
    r2 = g2.run(T - 160, record=["E2"], backend="ray", partition=SPLIT3, resume=tmp_path)
    assert torch.equal(torch.cat([r1.outputs["E2"], r2.outputs["E2"]]), outputs["E2"])
    _assert_same_state(r2.state, final)


# -- a killed worker ------------------------------------------------------------------
@pytest.mark.parametrize("every", [100, None])
def test_killed_worker_is_replaced_and_the_run_finishes_identically(
        tmp_path: Path, oracle: tuple, every: int | None) -> None:
    """SIGKILL to worker 1's process when the observers are at step 230: the run
    restarts from the last complete snapshot (that of step 200, or of 300 if the
    workers, which run up to two batches ahead of the observers, had written it; with
    no snapshots, from its start) on a new actor; spikes, outputs, monitors (one
    streamed to a file) and state equal."""
    outputs, monitors, final = oracle
    actors = cluster.workers(ray, 3, RegionWorker)
    pids = ray.get([a.pid.remote() for a in actors])
    g = _ei(torch.float64)
    mons = _mons(g)
    disk = g.monitor("E2", "spikes", to=tmp_path / "spikes_E2.npz")
    g.add_observer(_At(230, lambda: os.kill(pids[1], signal.SIGKILL)))
    kw = {"checkpoint_every": every, "checkpoint_dir": tmp_path / "ck"} if every else {}
    with pytest.warns(RuntimeWarning, match=r"worker was lost at step \d+.*restarting "
                                            r"from step \d+") as caught:
        r = g.run(T, record=list(g.regions), backend="ray", partition=SPLIT3, **kw)
    assert not _alive(pids[1])
    new = ray.get([a.pid.remote() for a in cluster.workers(ray, 3, RegionWorker)])
    assert pids[1] not in new
    for n in g.regions:
        assert torch.equal(r.outputs[n], outputs[n]), n
    _same_monitors([m.data() for m in mons], monitors)
    g.close_monitors()
    from aura_snn.graph import load_recording

    rec = load_recording(tmp_path / "spikes_E2.npz")
    e2 = outputs["E2"].nonzero()
    assert np.array_equal(rec["t"], e2[:, 0].numpy()) and np.array_equal(rec["i"],
                                                                          e2[:, 2].numpy())
    _assert_same_state(r.state, final)
    (rc,) = r.distributed.recoveries
    assert f"lost at step {rc.failed_at} (ActorDiedError); restarting from step " \
           f"{rc.restarted_from}" in str(caught[0].message)
    assert 232 <= rc.failed_at <= T and rc.lost_steps == rc.failed_at - rc.restarted_from
    if every:
        assert rc.restarted_from in (200, 300) and rc.restarted_from <= rc.failed_at
        assert rc.lost_steps <= 2 * every
    else:
        assert rc.restarted_from == 0
    assert rc.error == "ActorDiedError" and 0 < rc.restart_s < 60
    print(f"\nrecovery: {rc.lost_steps} steps lost, restart {rc.restart_s:.2f} s")
    if every:
        assert [s.step for s in r.distributed.snapshots] == [100, 200, 300, 400]
        assert sorted(os.listdir(tmp_path / "ck")) == ["snapshot-000000000400"]
    assert disk.path.is_file()


# -- the snapshot files ---------------------------------------------------------------
def test_snapshot_files_manifest_hashes_and_pruning(tmp_path: Path) -> None:
    a = {"x": torch.arange(6, dtype=torch.float64).view(2, 3), "n": torch.tensor(7)}
    b = {"y": torch.tensor([1, 2, 3], dtype=torch.int32)}
    s10 = save_snapshot(tmp_path, 10, {0: a, 1: b}, {"who": "test"})
    assert sorted(os.listdir(s10.path)) == ["manifest.json", "worker-0.safetensors",
                                            "worker-1.safetensors"]
    got = read_part(latest_snapshot(tmp_path), "worker-0.safetensors")
    assert set(got) == {"x", "n"} and torch.equal(got["x"], a["x"]) and int(got["n"]) == 7
    man = json.loads((s10.path / "manifest.json").read_text())
    import hashlib

    for name, info in man["files"].items():
        assert info["sha256"] == hashlib.sha256((s10.path / name).read_bytes()).hexdigest()
    assert man["step"] == 10 and man["meta"] == {"who": "test"}
    s30 = save_snapshot(tmp_path, 30, {0: a}, {})
    assert sorted(os.listdir(tmp_path)) == ["snapshot-000000000030"]   # 10 pruned
    # by hand: step 10 complete (a copy of 30 renamed), step 20 parts without a manifest,
    # then one byte of 30 flipped
    import shutil

    shutil.copytree(s30.path, snapshot_dir(tmp_path, 10))
    man = json.loads((s30.path / "manifest.json").read_text())
    (snapshot_dir(tmp_path, 10) / "manifest.json").write_text(json.dumps({**man, "step": 10}))
    write_part(snapshot_dir(tmp_path, 20), "worker-0.safetensors", a)
    raw = bytearray((s30.path / "worker-0.safetensors").read_bytes())
    raw[-1] ^= 1
    (s30.path / "worker-0.safetensors").write_bytes(bytes(raw))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        snap = latest_snapshot(tmp_path)
    assert snap.step == 10
    msgs = [str(w.message) for w in caught]
    assert len(msgs) == 2
    assert "snapshot-000000000030 ignored: file 'worker-0.safetensors' does not match" \
        in msgs[0]
    assert "snapshot-000000000020 ignored: no manifest" in msgs[1]
    with pytest.raises(ValueError, match="part 'worker-9.safetensors' was not written"):
        commit_snapshot(tmp_path, 40, [{"name": "worker-9.safetensors", "sha256": "0",
                                        "bytes": 0}], {})


def test_resume_refuses_another_network_and_a_wrong_batch(tmp_path: Path) -> None:
    g = _ei(torch.float64)
    g.run(20, backend="ray", partition=2, checkpoint_dir=tmp_path)
    other = Graph(dt=1e-4, seed=3).double()
    other.add(PoissonRegion("drive", 40, rate=100.0))
    other.add(SpikingRegion("E1", 60, "cuba_refractory"))
    other.connect("drive", "E1", torch.full((40, 60), 0.01, dtype=torch.float64),
                  receptor="exc")
    with pytest.raises(StateMismatchError, match="snapshot-000000000020 was written by "
                                                 "another network"):
        other.run(5, backend="ray", partition=2, resume=tmp_path)
    assert other.state is None
    g2 = _ei(torch.float64)
    with pytest.raises(ShapeError, match="has batch 1, the run has 3"):
        g2.run(5, backend="ray", partition=2, resume=tmp_path, batch_size=3)
    with pytest.raises(FileNotFoundError, match="holds no complete snapshot"):
        g2.run(5, backend="ray", partition=2, resume=tmp_path / "snapshot-000000000020")
    with pytest.raises(ValueError, match="checkpoint_every needs checkpoint_dir"):
        g2.run(5, backend="ray", partition=2, checkpoint_every=3)
    with pytest.raises(ValueError, match="checkpoint_every='3 m'"):
        g2.run(5, backend="ray", partition=2, checkpoint_every="3 m", checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="apply to backend='ray' only"):
        g2.run(5, resume=tmp_path)
    assert g2.state is None
