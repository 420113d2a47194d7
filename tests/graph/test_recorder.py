"""Monitors: memory, NPZ and HDF5 recordings agree; streaming; subsampling; atomicity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aura_snn.errors import CorruptFileError, ParameterError
from aura_snn.graph import Graph, PoissonRegion, SpikingRegion, fixed_probability, load_recording
from aura_snn.graph.recorder import Recorder


def _graph() -> Graph:
    g = Graph(dt=1e-4, seed=1).double()
    g.add(PoissonRegion("in", 30, rate=300.0))
    g.add(SpikingRegion("E", 12, "cuba_refractory", init={"v": {"uniform": [-0.06, -0.05]}}))
    g.connect("in", "E", 2e-3, connectivity=fixed_probability(30, 12, 0.3, seed=2))
    return g


@pytest.mark.parametrize("backend", ["torch", "engine"])
def test_memory_npz_and_hdf5_recordings_are_identical(tmp_path, backend: str) -> None:  # noqa: ANN001
    pytest.importorskip("h5py", reason="h5py is needed for HDF5 monitors")
    g = _graph()
    mons = {}
    for to in (None, tmp_path / "a.npz", tmp_path / "a.h5"):
        key = "mem" if to is None else to.suffix
        mons[key] = (g.monitor("E", "spikes", to=to, chunk=97),
                     g.monitor("E", "v", neurons=[0, 3, 7], every=4, to=to and
                               to.with_name("v" + to.suffix), chunk=50),
                     g.monitor("E", "i", every=10, to=to and to.with_name("i" + to.suffix)),
                     g.monitor("in-E", "weights", every=500,
                               to=to and to.with_name("w" + to.suffix)))
    with torch.no_grad():
        g.run(1500, backend=backend)
        g.run(501, backend=backend)   # a second run appends
    # disk files do not exist under their final names before close
    assert not (tmp_path / "a.npz").exists() and not (tmp_path / "v.h5").exists()
    g.close_monitors()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    ref = [m.data() for m in mons["mem"]]
    for key in (".npz", ".h5"):
        got = [m.data() for m in mons[key]]
        for a, b in zip(ref, got, strict=True):
            assert set(a) == set(b)
            for k in a:
                if k != "_meta":
                    assert np.array_equal(a[k], b[k]), (key, k)
    spikes, v, cur, w = ref
    assert spikes["t"].size > 20 and spikes["t"].max() >= 1500       # both runs recorded
    assert np.array_equal(v["t"], np.arange(0, 2001, 4)) and v["values"].shape == (501, 1, 3)
    assert cur["values"].shape == (201, 2, 1, 12)                     # [rows, R, B, n]
    assert w["values"].shape == (5, g.projections["in-E"].nnz)
    assert spikes["_meta"]["dt"] == 1e-4 and v["_meta"]["neurons"] == [0, 3, 7]
    t_s, i_s = mons["mem"][0].spike_times()
    assert np.allclose(t_s, spikes["t"] * 1e-4) and np.array_equal(i_s, spikes["i"])


def test_streamed_file_grows_in_chunks_and_abort_leaves_nothing(tmp_path) -> None:  # noqa: ANN001
    g = _graph()
    m = g.monitor("E", "v", to=tmp_path / "v.npz", chunk=100)
    with torch.no_grad():
        g.run(1000, backend="torch")
    # ten chunks were written while running: the temporary file holds them
    tmp = [p for p in tmp_path.iterdir() if p.name.startswith(".v.npz")]
    assert len(tmp) == 1 and tmp[0].stat().st_size > 1000 * 12 * 8
    m.abort()
    assert list(tmp_path.iterdir()) == []


def test_monitor_validation() -> None:
    g = _graph()
    with pytest.raises(ParameterError, match="no variable 'u'"):
        g.monitor("E", "u")
    with pytest.raises(ParameterError, match="no receptor 'nmda'"):
        g.monitor("E", "i:nmda")
    with pytest.raises(ParameterError, match="keeps no traces"):
        g.monitor("in-E", "pre_trace")
    with pytest.raises(ParameterError, match="every"):
        Recorder("E", "v", every=0)
    with pytest.raises(ParameterError, match=".npz, .h5"):
        Recorder("E", "v", to="x.csv")


def test_corrupt_monitor_files(tmp_path) -> None:  # noqa: ANN001
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CorruptFileError):
        load_recording(tmp_path / "bad.npz")
    pytest.importorskip("h5py", reason="h5py is needed for HDF5 monitors")
    (tmp_path / "bad.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(CorruptFileError):
        load_recording(tmp_path / "bad.h5")


def test_an_interrupt_inside_a_chunk_write_never_writes_a_member_twice(tmp_path, monkeypatch) -> None:  # noqa: ANN001,E501
    """Ctrl-C landing inside a streamed write, then the run's ``finally`` flushing again:
    the zip must not hold a member twice (CI once saw 'Duplicate name: values/000301.npy'
    on stderr), and a monitor that lost a chunk refuses to go on or to close (its file
    would have a gap) until it is aborted, which leaves no file."""
    import warnings

    g = _graph()
    mon = g.monitor("E", "v", to=tmp_path / "v.npz", chunk=10)
    real, calls = np.lib.format.write_array, {"n": 0}

    def interrupted_once(*a, **k):  # noqa: ANN002,ANN003,ANN202
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(np.lib.format, "write_array", interrupted_once)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # a duplicate zip member is a UserWarning
        with torch.no_grad(), pytest.raises(KeyboardInterrupt):
            g.run(100, backend="torch")
        assert calls["n"] == 3               # the run's finally wrote nothing more
        with torch.no_grad(), pytest.raises(ParameterError, match="gap; abort"):
            g.run(20, backend="torch")
        with pytest.raises(ParameterError, match="KeyboardInterrupt"):
            mon.close()
    mon.abort()
    assert list(tmp_path.iterdir()) == []
