r"""The episodic memory stores of a model as checkpoint files, and back.

A model's memory layers (:func:`hybrid.memory_layer.memories`) each hold an
:class:`aura_snn.memory.EpisodicMemory` that fills at run time (:func:`hybrid.one_shot.memorize`,
or writing during training); it is state, not a parameter, so ``state_dict`` misses it.
:func:`memory_files` turns every non-empty store into the bytes of its own verified
safetensors file (:mod:`aura_snn.memory.persist`: CRC-32 of the header and of every
tensor, no pickle), named ``memory.layer<i>.safetensors``; the training loop passes them
to :func:`hybrid.checkpoint.save_checkpoint` as extra files, so they land atomically with
the weights and are listed (size, SHA-256) in its manifest. :func:`restore_memories`
reads them back (each checked against the manifest, then by the memory format itself)
and empties the stores of layers the checkpoint has no file for; any bad file raises
:class:`~aura_snn.errors.CorruptFileError` before a single store is replaced.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import torch
from torch import nn

from aura_snn.errors import CorruptFileError
from aura_snn.memory.persist import load_memory, save_memory
from aura_snn.memory.store import EpisodicMemory

from . import checkpoint as ck
from .memory_layer import LayerMemory, memories

PREFIX, SUFFIX = "memory.layer", ".safetensors"


def memory_file_name(layer: int) -> str:
    """``memory.layer<layer>.safetensors``: the checkpoint file of layer ``layer``'s store."""
    return f"{PREFIX}{layer}{SUFFIX}"


def _layers(model: nn.Module) -> dict[int, LayerMemory]:
    """:func:`hybrid.memory_layer.memories`, or none for a model without ``blocks``."""
    return memories(model) if isinstance(getattr(model, "blocks", None), nn.ModuleList) else {}


def memory_files(model: nn.Module) -> dict[str, bytes]:
    """The bytes of a memory file for each memory layer of ``model`` with a non-empty store."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="aura-memory-") as tmp:
        for i, layer in _layers(model).items():
            if len(layer.store):
                path = Path(tmp) / memory_file_name(i)
                save_memory(layer.store, path)
                out[path.name] = path.read_bytes()
    return out


def restore_memories(model: nn.Module, ckpt: ck.Checkpoint | str | os.PathLike[str]) -> int:
    """Load each memory layer's store from checkpoint ``ckpt`` (a folder or a loaded
    :class:`~hybrid.checkpoint.Checkpoint`); stores without a file are emptied. All files
    are verified before any store changes. Returns the number of memories restored."""
    folder = ckpt.path if isinstance(ckpt, ck.Checkpoint) else Path(ckpt)
    layers = _layers(model)
    listed = ck.read_manifest(folder)["files"]
    for name in listed:
        m = re.fullmatch(re.escape(PREFIX) + r"(\d+)" + re.escape(SUFFIX), name)
        if m and int(m.group(1)) not in layers:
            raise CorruptFileError(f"{folder}: {name} is for layer {m.group(1)}, which "
                                      f"has no memory in this model (layers {sorted(layers)})")
    p = next(model.parameters())
    loaded: dict[int, EpisodicMemory] = {}
    with tempfile.TemporaryDirectory(prefix="aura-memory-") as tmp:
        for i in layers:
            data = ck.read_extra(folder, memory_file_name(i))
            if data is not None:
                path = Path(tmp) / memory_file_name(i)
                path.write_bytes(data)
                loaded[i] = load_memory(path, device=p.device)
    for i, layer in layers.items():
        if i in loaded:
            layer.store = loaded[i]
        else:
            layer.clear(p.device, p.dtype if p.dtype == torch.float64 else torch.float32)
    return sum(len(s) for s in loaded.values())


__all__ = ["memory_file_name", "memory_files", "restore_memories"]
