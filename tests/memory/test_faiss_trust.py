"""A FAISS index read from a store file is rebuilt from the store's own keys unless the
file is trusted (issue "Hardening what landed", item 5): its ``faiss.index`` bytes are
protected only by CRCs that anyone editing the file can recompute."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from aura_snn.errors import CorruptFileError
from aura_snn.memory import EpisodicMemory

faiss = pytest.importorskip("faiss", reason="faiss-cpu not installed (extra 'peers')")


def faiss_store(x: torch.Tensor, **kw: object) -> EpisodicMemory:
    mem = EpisodicMemory(x.shape[1], backend="faiss", train_min=600, nprobe=3, nlist=12, **kw)
    ids = mem.write(x)
    mem.delete(ids[::5])                 # removals reorder FAISS's lists
    mem.write(x[:50] + 0.01)
    assert mem.index is not None
    return mem


def reseal(path: Path, out: Path, change: object) -> Path:
    from aura_snn._io import read_safetensors, write_safetensors

    meta, tensors = read_safetensors(path)
    change(tensors)  # type: ignore[operator]
    write_safetensors(out, tensors, meta)
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_untrusted_load_rebuilds_the_index_list_for_list(clustered, tmp_path: Path,
                                                         dtype: torch.dtype) -> None:
    x, q = clustered(1000, 16, 10, n_queries=40, seed=2, dtype=dtype)
    mem = faiss_store(x, dtype=dtype)
    path = tmp_path / "f.safetensors"
    mem.save(path)
    want = mem.search(q, 6, touch=False)
    for trusted in (False, True):
        back = EpisodicMemory.from_file(path, trusted=trusted)
        got = back.search(q, 6, touch=False)
        assert torch.equal(got.ids, want.ids) and torch.equal(got.scores, want.scores)
        assert bytes(back.index.serialize()) == bytes(mem.index.serialize())
    other = EpisodicMemory(16, backend="faiss", dtype=dtype)
    other.load(path)                                   # load() rebuilds too
    assert torch.equal(other.search(q, 6, touch=False).ids, want.ids)


def test_edited_faiss_bytes_are_never_parsed_unless_trusted(clustered, tmp_path: Path,
                                                            monkeypatch) -> None:
    """Before: the ``faiss.index`` bytes of another index (same size), with the checksums
    recomputed, loaded and searches returned that index's neighbours (40 of 40 queries
    wrong); there was no way to refuse parsing them."""
    x, q = clustered(1000, 16, 10, n_queries=40, seed=2)
    mem = faiss_store(x)
    path = tmp_path / "f.safetensors"
    mem.save(path)
    want = mem.search(q, 6, touch=False)
    noise = torch.randn(1000, 16, generator=torch.Generator().manual_seed(9))
    impostor = faiss_store(torch.nn.functional.normalize(noise, dim=1))
    blob = torch.from_numpy(np.array(impostor.index.serialize(), dtype=np.uint8))
    edited = reseal(path, tmp_path / "edited.safetensors",
                    lambda t: t.update({"faiss.index": blob}))

    parsed: list[int] = []
    real = faiss.deserialize_index
    monkeypatch.setattr(faiss, "deserialize_index", lambda b: parsed.append(1) or real(b))
    got = EpisodicMemory.from_file(edited).search(q, 6, touch=False)
    assert not parsed
    assert torch.equal(got.ids, want.ids) and torch.equal(got.scores, want.scores)
    trusted = EpisodicMemory.from_file(edited, trusted=True).search(q, 6, touch=False)
    assert parsed == [1]
    wrong = int((trusted.ids != want.ids).any(dim=1).sum())
    assert wrong > 30                                   # trusted means trusted


@pytest.mark.parametrize(("key", "value", "why"), [
    ("faiss.list_ids", lambda t: t.flip(0)[:-1], "list_ids"),
    ("faiss.list_sizes", lambda t: t + 1, "list_sizes"),
    ("faiss.centroids", lambda t: t.fill_(float("nan")), "centroids"),
    ("faiss.centroids", lambda t: t[:, :3].contiguous(), "centroids")])
def test_inconsistent_index_tensors_are_refused(clustered, tmp_path: Path, key: str,
                                                value: object, why: str) -> None:
    x, _ = clustered(1000, 16, 10, seed=2)
    path = tmp_path / "f.safetensors"
    faiss_store(x).save(path)
    bad = reseal(path, tmp_path / "bad.safetensors",
                 lambda t: t.update({key: value(t[key].clone())}))  # type: ignore[operator]
    with pytest.raises(CorruptFileError, match=why):
        EpisodicMemory.from_file(bad)
