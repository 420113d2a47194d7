"""Saving and loading an :class:`~aura_snn.memory.store.EpisodicMemory`: one safetensors file.

This module handles the file only; what is stored comes from the store's public
tensor interface, :meth:`EpisodicMemory.to_tensors` / :meth:`EpisodicMemory.from_tensors`
(their docstrings list every tensor and the ``config`` JSON).

File layout (``FORMAT_VERSION = 1``)
------------------------------------
A single safetensors file, written through :func:`aura_snn._io.atomic_path` (temporary
file, fsync, rename), so a crash leaves the old file or the new one. Nothing is pickled.

Its tensors are exactly those of :meth:`EpisodicMemory.to_tensors` (that docstring
is the one table of names, dtypes and contents). ``faiss.index`` (FAISS's own bytes)
is parsed only with ``trusted=True``; by default the FAISS index is rebuilt from
``keys`` and ``faiss.list_ids``.

The safetensors header metadata holds ``format``, ``format_version``, ``config`` (JSON:
every constructor argument, the clock ``step``, ``next_id`` and the index's drift
reference), ``checksums`` (JSON: CRC-32 of every tensor's bytes) and ``header_checksum``
(CRC-32 of the other header entries and of every tensor's name, dtype and shape;
:mod:`aura_snn._io`). Loading checks the format and version, then the header checksum
(before any setting is read), then every tensor's checksum, then dtypes, shapes and
cross-references in :meth:`~EpisodicMemory.from_tensors`; any failure raises
:class:`~aura_snn.errors.CorruptFileError` naming the file and the first bad entry, and
nothing is changed in memory. Files written before the header was checksummed (no
``header_checksum``) are refused the same way: load them with the version that wrote
them and save them again.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .._io import (
    CHECKSUMS,
    HEADER_CHECKSUM,
    read_safetensors,
    verify_safetensors,
    write_safetensors,
)
from ..errors import AuraError, CorruptFileError
from .store import EpisodicMemory

FORMAT = "aura_snn.memory.EpisodicMemory"
FORMAT_VERSION = 1

_RESERVED = ("format", "format_version", CHECKSUMS, HEADER_CHECKSUM)


def save_memory(mem: EpisodicMemory, path: str | Path) -> None:
    """Write ``mem`` to ``path`` atomically (format in the module docstring)."""
    tensors, meta = mem.to_tensors()
    clash = sorted(set(meta) & set(_RESERVED))
    if clash:  # pragma: no cover - to_tensors writes only "config"
        raise RuntimeError(f"to_tensors metadata uses reserved header keys {clash}")
    header = {"format": FORMAT, "format_version": str(FORMAT_VERSION), **meta}
    write_safetensors(path, tensors, header)


def load_memory(path: str | Path, device: torch.device | str | None = None, *,
                trusted: bool = False) -> EpisodicMemory:
    """Read a store written by :func:`save_memory`; raise :class:`CorruptFileError` if bad.

    ``trusted=False`` (default) never hands bytes of the file to FAISS's parser: a FAISS
    index is rebuilt from the plain tensors and the keys (identical searches). Pass
    ``trusted=True`` only for files you wrote: CRCs find damage, not deliberate edits.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no memory file at {path}")
    header, t = read_safetensors(path)
    _check_header(path, header, t)
    try:
        meta = {k: v for k, v in header.items() if k not in _RESERVED}
        return EpisodicMemory.from_tensors(t, meta, device=device, trusted=trusted)
    except CorruptFileError:
        raise
    except (AuraError, ValueError, TypeError, KeyError, IndexError, RuntimeError) as exc:
        raise CorruptFileError(f"{path}: inconsistent memory file ({exc})") from exc


def _check_header(path: Path, header: dict[str, str], t: dict[str, torch.Tensor]) -> None:
    """Format, version, the header checksum and the checksum of every tensor."""
    if header.get("format") != FORMAT:
        raise CorruptFileError(f"{path}: format {header.get('format')!r} is not {FORMAT!r}")
    if header.get("format_version") != str(FORMAT_VERSION):
        raise CorruptFileError(f"{path}: format_version {header.get('format_version')!r} is "
                               f"not supported (this version reads {FORMAT_VERSION})")
    verify_safetensors(path, header, t)
