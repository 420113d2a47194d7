"""Saving and loading an :class:`~aura_snn.memory.store.EpisodicMemory`: one safetensors file.

File layout (``FORMAT_VERSION = 1``)
------------------------------------
A single safetensors file, written through :func:`aura_snn._io.atomic_path` (temporary
file, fsync, rename), so a crash leaves the old file or the new one. Nothing is pickled.

=====================  ===========  ================================================
tensor                 dtype        content
=====================  ===========  ================================================
``ids``                int64 [n]    live ids, increasing
``keys``               dtype [n,d]  keys as stored (unit rows for cosine)
``values``             [n, dv]      values (only when ``value_dim > 0``)
``importance``         float64 [n]  importance ``w_i``
``last_access``        float64 [n]  clock step of last access ``a_i``
``metadata``           uint8        UTF-8 JSON list of n dicts / nulls
``ivf.centroids``      [nlist, d]   IVF centroids (backend ivf, once trained)
``ivf.list_sizes``     int64        keys per list
``ivf.list_ids``       int64 [n]    ids in list order, so lists are rebuilt row for row
``faiss.index``        uint8        ``faiss.serialize_index`` bytes (backend faiss)
=====================  ===========  ================================================

The safetensors header metadata holds ``format``, ``format_version``, ``config`` (JSON:
every constructor argument, the clock ``step``, ``next_id`` and the index's drift
reference) and ``checksums`` (JSON: CRC-32 of every tensor's bytes). Loading checks
the format, version, checksums, dtypes, shapes and cross-references; any failure
raises :class:`~aura_snn.errors.CorruptFileError`, and nothing is changed in memory.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import atomic_path
from ..errors import AuraError, CorruptFileError
from .ivf import IVFIndex
from .store import EpisodicMemory

FORMAT = "aura_snn.memory.EpisodicMemory"
FORMAT_VERSION = 1


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _dtype_from(name: Any) -> torch.dtype:
    dtype = getattr(torch, str(name), None)
    if not isinstance(dtype, torch.dtype):
        raise CorruptFileError(f"unknown dtype {name!r} in the file's config")
    return dtype


def _crc(t: torch.Tensor) -> int:
    return zlib.crc32(np.ascontiguousarray(t.contiguous().view(-1).view(torch.uint8).numpy()))


def _config(mem: EpisodicMemory) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "dim": mem.dim, "value_dim": mem.value_dim, "metric": mem.metric,
        "backend": mem.backend, "capacity": mem.capacity, "tau": mem.tau,
        "min_retention": mem.min_retention, "clock_per_write": mem.clock_per_write,
        "nlist": mem.nlist, "nprobe": mem.nprobe, "train_min": mem.train_min,
        "kmeans_iters": mem.kmeans_iters, "seed": mem.seed, "kernel": mem.kernel,
        "auto_rebuild": mem.auto_rebuild,
        "dtype": _dtype_name(mem.dtype), "value_dtype": _dtype_name(mem.value_dtype),
        **mem._index_args,
    }
    state = {"step": mem.step, "next_id": mem._next_id,
             "index": None if mem.index is None else mem.index.config()}
    return {"constructor": cfg, "state": state}


def save_memory(mem: EpisodicMemory, path: str | Path) -> None:
    """Write ``mem`` to ``path`` atomically (format in the module docstring)."""
    rows = np.flatnonzero(mem._table.alive)
    r = torch.from_numpy(rows).to(mem.device)
    tensors: dict[str, torch.Tensor] = {
        "ids": torch.from_numpy(mem._table.ids[rows].copy()),
        "keys": mem._keys[r].cpu().contiguous(),
        "importance": torch.from_numpy(mem._importance[rows].copy()),
        "last_access": torch.from_numpy(mem._last[rows].copy()),
        "metadata": torch.frombuffer(
            bytearray(json.dumps([mem._meta[i] for i in rows.tolist()]).encode("utf-8")),
            dtype=torch.uint8),
    }
    if mem._values is not None:
        tensors["values"] = mem._values[r].cpu().contiguous()
    if isinstance(mem.index, IVFIndex):
        list_ids, sizes = mem.index.list_order()
        tensors["ivf.centroids"] = mem.index.centroids.cpu().contiguous()
        tensors["ivf.list_sizes"] = torch.from_numpy(sizes)
        tensors["ivf.list_ids"] = list_ids.cpu().contiguous()
    elif mem.index is not None:
        tensors["faiss.index"] = torch.from_numpy(np.array(mem.index.serialize(), dtype=np.uint8))
    header = {"format": FORMAT, "format_version": str(FORMAT_VERSION),
              "config": json.dumps(_config(mem)),
              "checksums": json.dumps({k: _crc(v) for k, v in tensors.items()})}
    from safetensors.torch import save_file

    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp), metadata=header)


def _read(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except FileNotFoundError:
        raise
    except Exception as exc:  # safetensors raises its own error type for bad headers/sizes
        raise CorruptFileError(f"{path}: not a readable safetensors file ({exc})") from exc
    return header, tensors


def load_memory(path: str | Path, device: torch.device | str | None = None) -> EpisodicMemory:
    """Read a store written by :func:`save_memory`; raise :class:`CorruptFileError` if bad."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no memory file at {path}")
    header, t = _read(path)
    try:
        return _build(path, header, t, device)
    except CorruptFileError:
        raise
    except (AuraError, ValueError, TypeError, KeyError, IndexError, RuntimeError) as exc:
        raise CorruptFileError(f"{path}: inconsistent memory file ({exc})") from exc


def _build(path: Path, header: dict[str, str], t: dict[str, torch.Tensor],
           device: torch.device | str | None) -> EpisodicMemory:
    def bad(msg: str) -> CorruptFileError:
        return CorruptFileError(f"{path}: {msg}")

    if header.get("format") != FORMAT:
        raise bad(f"format {header.get('format')!r} is not {FORMAT!r}")
    if header.get("format_version") != str(FORMAT_VERSION):
        raise bad(f"format_version {header.get('format_version')!r} is not supported "
                  f"(this version reads {FORMAT_VERSION})")
    cfg = json.loads(header["config"])
    sums = json.loads(header["checksums"])
    if set(sums) != set(t):
        raise bad(f"tensors {sorted(t)} do not match the checksum list {sorted(sums)}")
    for name, tensor in t.items():
        if _crc(tensor) != sums[name]:
            raise bad(f"checksum mismatch in tensor {name!r} (file corrupted)")

    ctor = dict(cfg["constructor"])
    ctor["dtype"] = _dtype_from(ctor["dtype"])
    ctor["value_dtype"] = _dtype_from(ctor["value_dtype"])
    mem = EpisodicMemory(**ctor, device=device)
    ids = t["ids"]
    n = ids.shape[0]

    def expect(name: str, dtype: torch.dtype, shape: tuple[int, ...]) -> torch.Tensor:
        if name not in t:
            raise bad(f"tensor {name!r} is missing")
        x = t[name]
        if x.dtype != dtype or tuple(x.shape) != shape:
            raise bad(f"tensor {name!r} has dtype {x.dtype} and shape {tuple(x.shape)}, "
                      f"expected {dtype} and {shape}")
        return x

    expect("ids", torch.long, (n,))
    ids_np = ids.numpy()
    state = cfg["state"]
    next_id = int(state["next_id"])
    if n and ((np.diff(ids_np) <= 0).any() or ids_np[0] < 0 or ids_np[-1] >= next_id):
        raise bad("ids are not strictly increasing within [0, next_id)")
    keys = expect("keys", mem.dtype, (n, mem.dim))
    imp = expect("importance", torch.float64, (n,)).numpy()
    last = expect("last_access", torch.float64, (n,)).numpy()
    if not (np.isfinite(imp).all() and (imp >= 0).all() and np.isfinite(last).all()):
        raise bad("importance or last_access holds invalid values")
    if not bool(torch.isfinite(keys).all()):
        raise bad("keys hold NaN or infinite values")
    values = (expect("values", mem.value_dtype, (n, mem.value_dim)) if mem.value_dim else None)
    meta = json.loads(bytes(expect("metadata", torch.uint8, (t["metadata"].shape[0],)).numpy()))
    if not isinstance(meta, list) or len(meta) != n or any(
            m is not None and not isinstance(m, dict) for m in meta):
        raise bad("metadata is not a list of n dicts or nulls")

    mem._table.append(ids_np)
    mem._ensure_rows(n)
    mem._keys[:n] = keys.to(mem.device)
    if values is not None:
        mem._values[:n] = values.to(mem.device)
    mem._importance[:n] = imp
    mem._last[:n] = last
    mem._meta = list(meta)
    mem.step = float(state["step"])
    mem._next_id = next_id
    idx_cfg = state["index"]
    if idx_cfg is not None:
        mem.index = _restore_index(mem, t, ids_np, keys, idx_cfg, bad)
    return mem


def _restore_index(mem: EpisodicMemory, t: dict[str, torch.Tensor], ids_np: np.ndarray,
                   keys: torch.Tensor, cfg: dict[str, Any], bad: Any) -> Any:
    index = mem._new_index()
    if mem.backend == "faiss":
        if "faiss.index" not in t:
            raise bad("tensor 'faiss.index' is missing")
        index.deserialize(t["faiss.index"].numpy(), ids_np, cfg["trained_size"],
                          cfg["trained_imbalance"])
        return index
    for name in ("ivf.centroids", "ivf.list_sizes", "ivf.list_ids"):
        if name not in t:
            raise bad(f"tensor {name!r} is missing")
    cent, sizes, list_ids = t["ivf.centroids"], t["ivf.list_sizes"], t["ivf.list_ids"]
    if cent.dim() != 2 or cent.shape[1] != mem.dim or cent.dtype != mem.dtype:
        raise bad(f"ivf.centroids has shape {tuple(cent.shape)} and dtype {cent.dtype}")
    if (sizes.dtype != torch.long or sizes.shape != (cent.shape[0],) or bool((sizes < 0).any())
            or int(sizes.sum()) != ids_np.size):
        raise bad("ivf.list_sizes does not match the centroids and ids")
    if list_ids.dtype != torch.long or not np.array_equal(np.sort(list_ids.numpy()), ids_np):
        raise bad("ivf.list_ids is not a permutation of ids")
    rows = np.searchsorted(ids_np, list_ids.numpy())
    index.restore(cent, sizes.numpy(), list_ids, keys[torch.from_numpy(rows)],
                  cfg["trained_size"], cfg["trained_imbalance"])
    return index
