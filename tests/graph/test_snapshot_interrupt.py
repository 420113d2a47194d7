"""Ctrl+C while a partitioned run books a snapshot: the interrupt is held back until the
manifest is written and the snapshot is off the run's unfinished list, so the run's
clean-up never discards the snapshot it has just completed (after ``prune`` removed the
one before, that left no complete snapshot: seen once in the suite under load)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from aura_snn.graph.distributed import stream


@pytest.fixture(autouse=True)
def _python_sigint():  # noqa: ANN202
    """Python's own SIGINT handler for the test: another library imported in the same
    test process (Brian2) may have installed its own, which fails when the handler it
    wrapped is SIG_DFL or SIG_IGN (as under pytest-xdist)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def _interrupt_now() -> None:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)   # the handler would run here, at the next bytecode


def test_a_ctrl_c_during_commit_arrives_after_the_snapshot_is_booked(monkeypatch,
                                                                     tmp_path) -> None:
    run = stream.RunLog(0, 100, 10, [], [], False, 1e-3)
    run.unfinished[50] = []
    calls: list[str] = []

    def commit_snapshot(root, step, entries, meta):  # noqa: ANN001, ANN202
        _interrupt_now()
        calls.append(f"manifest {step}")

    monkeypatch.setattr(stream, "commit_snapshot", commit_snapshot)
    monkeypatch.setattr(stream, "run_meta", lambda *a: {})
    job = SimpleNamespace(checkpoint_dir=tmp_path, checkpoint_meta={}, graph=None,
                          partition=SimpleNamespace(assignment={}))
    with pytest.raises(KeyboardInterrupt):
        run.commit(job, 50, [{"bytes": 1, "seconds": 0.0}])
    assert calls == ["manifest 50"]
    assert 50 not in run.unfinished        # the clean-up will not discard it


def test_a_ctrl_c_while_a_folder_is_made_leaves_it_booked(monkeypatch, tmp_path) -> None:
    run = stream.RunLog(0, 100, 10, [], [], False, 1e-3)
    job = SimpleNamespace(checkpoint_dir=tmp_path)
    mkdir = Path.mkdir

    def interrupted_mkdir(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        _interrupt_now()       # held: delivered once the folder is on the list
        return mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", interrupted_mkdir)
    with pytest.raises(KeyboardInterrupt):
        stream._folder(job, 75, run, [])
    monkeypatch.undo()
    assert 75 in run.unfinished and stream.snapshot_dir(tmp_path, 75).is_dir()
