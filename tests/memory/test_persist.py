"""Persistence: round trip in a new process, corrupt and truncated files, atomic writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from aura_snn.errors import CorruptFileError
from aura_snn.memory import FORMAT_VERSION, EpisodicMemory

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import json, sys
import torch
from safetensors.torch import load_file, save_file
from aura_snn.memory import EpisodicMemory

mem = EpisodicMemory.from_file(sys.argv[1])
q = load_file(sys.argv[2])["queries"]
res = mem.search(q, 6, touch=False)
save_file({"ids": res.ids, "scores": res.scores, "values": res.values}, sys.argv[3])
meta = mem.get(res.ids[0]).metadata
print(json.dumps({"len": len(mem), "step": mem.step, "stats": mem.index_stats(), "meta": meta}))
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory, clustered) -> tuple[EpisodicMemory, Path, torch.Tensor]:
    x, q = clustered(5000, 24, 20, n_queries=30, seed=3)
    mem = EpisodicMemory(24, value_dim=2, train_min=2000, nprobe=4, tau=50.0)
    mem.write(x[:3000], torch.randn(3000, 2), [{"n": i, "tag": f"e{i}"} for i in range(3000)])
    mem.write(x[3000:], torch.randn(2000, 2), importance=torch.rand(2000))
    mem.delete(torch.arange(0, 5000, 7))
    assert mem.index is not None
    path = tmp_path_factory.mktemp("mem") / "store.safetensors"
    mem.save(path)
    return mem, path, q


def test_round_trip_in_new_process_gives_identical_results(saved, tmp_path) -> None:
    mem, path, q = saved
    save_file({"queries": q}, tmp_path / "q.safetensors")
    out = tmp_path / "out.safetensors"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path), str(tmp_path / "q.safetensors"),
                           str(out)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    got = load_file(out)
    ref = mem.search(q, 6, touch=False)
    assert torch.equal(got["ids"], ref.ids)
    assert torch.equal(got["scores"], ref.scores)
    assert torch.equal(got["values"], ref.values)
    assert child["len"] == len(mem) and child["step"] == mem.step
    assert child["stats"] == json.loads(json.dumps(mem.index_stats()))
    assert child["meta"] == mem.get(ref.ids[0]).metadata


def test_loaded_store_keeps_every_field_and_keeps_working(saved) -> None:
    mem, path, _ = saved
    other = EpisodicMemory.from_file(path)
    assert torch.equal(other.ids, mem.ids)
    a, b = mem.get(mem.ids), other.get(other.ids)
    for x, y in zip(a[:2] + a[4:], b[:2] + b[4:], strict=True):
        assert torch.equal(x, y)
    assert torch.equal(a.values, b.values) and a.metadata == b.metadata
    torch.testing.assert_close(other.retention(), mem.retention())
    new = other.write(torch.randn(3, 24), torch.randn(3, 2))
    assert int(new[0]) == 5000  # ids continue after the saved next_id, never reused
    other.delete(new[:1])
    assert len(other) == len(mem) + 2


def test_file_has_format_and_version_header(saved) -> None:
    _, path, _ = saved
    with safe_open(str(path), framework="pt") as f:
        header = f.metadata()
    assert header["format"] == "aura_snn.memory.EpisodicMemory"
    assert header["format_version"] == str(FORMAT_VERSION) == "1"
    assert json.loads(header["config"])["constructor"]["dim"] == 24


def _damage(path: Path, dest: Path, how: str) -> Path:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        data = data[: len(data) - 1000]
    elif how == "flipped":
        data[-200] ^= 0xFF  # inside the tensor data, after the header
    elif how == "garbage":
        data = bytearray(b"not a safetensors file at all" * 10)
    elif how == "empty":
        data = bytearray()
    dest.write_bytes(bytes(data))
    return dest


@pytest.mark.parametrize("how", ["truncated", "flipped", "garbage", "empty"])
def test_corrupt_file_raises_and_leaves_memory_intact(saved, tmp_path, how) -> None:
    mem, path, q = saved
    bad = _damage(path, tmp_path / "bad.safetensors", how)
    target = EpisodicMemory.from_file(path)
    before = target.search(q, 5, touch=False)
    with pytest.raises(CorruptFileError):
        target.load(bad)
    after = target.search(q, 5, touch=False)
    assert len(target) == len(mem)
    assert torch.equal(before.ids, after.ids) and torch.equal(before.scores, after.scores)


def test_foreign_or_inconsistent_file_raises(tmp_path) -> None:
    foreign = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(3)}, foreign, metadata={"format": "pt"})
    with pytest.raises(CorruptFileError, match="format"):
        EpisodicMemory.from_file(foreign)
    mem = EpisodicMemory(3, backend="flat")
    mem.write(torch.randn(4, 3))
    good = tmp_path / "good.safetensors"
    mem.save(good)
    tensors = load_file(good)
    with safe_open(str(good), framework="pt") as f:
        header = f.metadata()
    future = dict(header, format_version="99")
    save_file(tensors, tmp_path / "future.safetensors", metadata=future)
    with pytest.raises(CorruptFileError, match="format_version"):
        EpisodicMemory.from_file(tmp_path / "future.safetensors")
    with pytest.raises(FileNotFoundError):
        EpisodicMemory.from_file(tmp_path / "missing.safetensors")


def test_save_is_atomic(tmp_path, monkeypatch) -> None:
    mem = EpisodicMemory(3, backend="flat")
    mem.write(torch.randn(4, 3))
    path = tmp_path / "m.safetensors"
    mem.save(path)
    original = path.read_bytes()
    mem.write(torch.randn(2, 3))

    def boom(*args, **kwargs):
        raise OSError("disk full")

    import safetensors.torch

    monkeypatch.setattr(safetensors.torch, "save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        mem.save(path)
    assert path.read_bytes() == original  # the old file survives a failed save
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]  # no temp left
