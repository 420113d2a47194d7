"""Memory store files: the header is covered by a checksum, so no single flipped bit of it
loads (issue "Hardening what landed", item 3); saved stores get the umask's mode and the
temporaries of killed saves are cleaned (item 4)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from aura_snn.errors import CorruptFileError
from aura_snn.memory import EpisodicMemory

ROOT = Path(__file__).resolve().parents[2]


def small_store() -> EpisodicMemory:
    mem = EpisodicMemory(4, value_dim=2, backend="flat", tau=1000.0, capacity=50)
    gen = torch.Generator().manual_seed(1)
    mem.write(torch.randn(6, 4, generator=gen), torch.randn(6, 2, generator=gen),
              [{"n": i} for i in range(6)])
    return mem


def contents(mem: EpisodicMemory) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, meta = mem.to_tensors()
    return tensors, json.loads(meta["config"])


def same_store(a: EpisodicMemory, b: EpisodicMemory) -> bool:
    (ta, ca), (tb, cb) = contents(a), contents(b)
    return ca == cb and ta.keys() == tb.keys() and all(
        ta[k].dtype == tb[k].dtype and torch.equal(ta[k], tb[k]) for k in ta)


def test_every_single_bit_flip_of_the_header_is_refused(tmp_path: Path) -> None:
    """Before (this store's 1,128-byte header, 9,024 flips): 89 loaded, every one with
    changed settings (tau 1000 -> 9000 and 18 other values, capacity 50 -> 5,
    min_retention 0 -> 8, ...), though the README said a corrupt file raises."""
    mem = small_store()
    path = tmp_path / "m.safetensors"
    mem.save(path)
    data = path.read_bytes()
    end = 8 + int.from_bytes(data[:8], "little")
    loaded, changed = [], []
    bad = tmp_path / "bad.safetensors"
    for bit in range(8 * end):
        out = bytearray(data)
        out[bit // 8] ^= 1 << (bit % 8)
        bad.write_bytes(bytes(out))
        try:
            back = EpisodicMemory.from_file(bad)
        except CorruptFileError as exc:
            assert str(bad) in str(exc)
            continue
        loaded.append(bit)
        if not same_store(back, mem):
            changed.append(bit)
    assert not changed, f"{len(changed)} of {8 * end} flips loaded with other settings"
    assert not loaded, f"{len(loaded)} of {8 * end} flips loaded"


def test_header_edit_without_the_header_checksum_is_refused(tmp_path: Path) -> None:
    """Settings edited and the tensor checksums left right: the header checksum says so."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    mem = small_store()
    path = tmp_path / "m.safetensors"
    mem.save(path)
    with safe_open(str(path), framework="pt") as f:
        header = f.metadata()
    cfg = json.loads(header["config"])
    cfg["constructor"]["tau"] = 9000.0
    save_file(load_file(path), str(tmp_path / "edited.safetensors"),
              metadata=dict(header, config=json.dumps(cfg)))
    with pytest.raises(CorruptFileError, match="header checksum"):
        EpisodicMemory.from_file(tmp_path / "edited.safetensors")
    without = {k: v for k, v in header.items() if k != "header_checksum"}
    save_file(load_file(path), str(tmp_path / "old.safetensors"), metadata=without)
    with pytest.raises(CorruptFileError, match="header_checksum"):
        EpisodicMemory.from_file(tmp_path / "old.safetensors")


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_saved_store_gets_the_mode_the_umask_says(tmp_path: Path, umask: int) -> None:
    """Before: 0600 under umask 022."""
    old = os.umask(umask)
    try:
        small_store().save(tmp_path / "m.safetensors")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "m.safetensors").st_mode) == 0o666 & ~umask


CHILD = """
import os, signal, sys
sys.path.insert(0, sys.argv[1])
import safetensors.torch, torch
from aura_snn.memory import EpisodicMemory
real = safetensors.torch.save_file
def save_then_die(tensors, filename, metadata=None):
    real(tensors, filename, metadata=metadata)
    os.kill(os.getpid(), signal.SIGKILL)
safetensors.torch.save_file = save_then_die
mem = EpisodicMemory(64, backend="flat")
mem.write(torch.randn(20000, 64))
mem.save(sys.argv[2])
"""


def test_killed_save_of_a_store_is_cleaned_by_the_next_save(tmp_path: Path) -> None:
    """Before: a 5 MB hidden temporary stayed beside the store after every later save."""
    target = tmp_path / "store.safetensors"
    small_store().save(target)
    proc = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(target)], timeout=300)
    assert proc.returncode == -9
    stale = [p for p in tmp_path.iterdir() if p.name.startswith(".store.safetensors.")]
    assert len(stale) == 1 and stale[0].stat().st_size > 5_000_000
    small_store().save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.safetensors"]
    assert same_store(EpisodicMemory.from_file(target), small_store())
