"""The ``--state`` folder of a service: complete snapshots, a manifest written last.

Layout::

    DIR/manifest.json           which snapshot is current, and which file wrote it
    DIR/snap-<step>-<n>/graph.safetensors     the graph state and weights
                                              (:mod:`aura_snn.graph.state_file`)
    DIR/snap-<step>-<n>/streams.safetensors   pending input and published output

A snapshot is written into a new ``snap-*`` folder (each file atomically,
:mod:`aura_snn._io`); only then is ``manifest.json`` replaced (atomically) to name it,
and the folders it no longer names are removed. A save interrupted at any point leaves
the previous manifest naming the previous, complete snapshot: the new one is discarded
whole (its folder is removed by the next save or by :func:`wipe`). Loading reads only
what the manifest names; nothing is ever unpickled.

The manifest records the network file (name and SHA-256 of its bytes): a folder written
by another network file is refused with :class:`~aura_snn.errors.StateMismatchError`
naming both files, before anything is read into the graph or written to the folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from .._io import atomic_write_json, read_safetensors, verify_safetensors, write_safetensors
from ..errors import CorruptFileError, StateMismatchError

FORMAT = "aura-snn.serve-state"
VERSION = 1
MANIFEST = "manifest.json"


def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    """The manifest of ``folder``, or ``None`` when it has no complete snapshot."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        man = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptFileError(f"{path}: unreadable manifest ({exc})") from None
    if not isinstance(man, dict) or man.get("format") != FORMAT:
        raise CorruptFileError(f"{path}: not an aura-snn service state manifest")
    if man.get("version") != VERSION:
        raise CorruptFileError(f"{path}: version {man.get('version')!r} is not supported "
                               f"(this version reads {VERSION})")
    for key in ("network", "sha256", "snapshot", "step"):
        if key not in man:
            raise CorruptFileError(f"{path}: manifest entry {key!r} is missing")
    return man


def check_network(folder: str | Path, network_path: Path, sha256: str) -> dict[str, Any] | None:
    """The manifest, after checking it was written by this network file (module
    docstring); ``None`` for a folder with no snapshot yet."""
    man = read_manifest(folder)
    if man is not None and man["sha256"] != sha256:
        raise StateMismatchError(
            f"--state {folder}: written by the network file {man['network']!r} "
            f"(sha256 {man['sha256'][:12]}), not by {str(network_path)!r} "
            f"(sha256 {sha256[:12]}); use another --state folder, or --wipe it")
    return man


def save_snapshot(folder: str | Path, graph: Any, streams: dict[str, Any], step: int,
                  network_path: Path, sha256: str) -> Path:
    """Write one complete snapshot and switch the manifest to it (module docstring)."""
    from ..graph import state_file

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    n = 0
    while (root / f"snap-{step:012d}-{n}").exists():
        n += 1
    snap = root / f"snap-{step:012d}-{n}"
    snap.mkdir()
    state_file.save(graph, snap / "graph.safetensors")
    write_safetensors(snap / "streams.safetensors", streams,
                      {"format": FORMAT, "step": str(step)})
    atomic_write_json(root / MANIFEST, {
        "format": FORMAT, "version": VERSION, "network": str(network_path),
        "sha256": sha256, "snapshot": snap.name, "step": int(step)})
    for old in root.glob("snap-*"):
        if old.name != snap.name and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return snap


def load_snapshot(folder: str | Path, man: dict[str, Any], graph: Any
                  ) -> tuple[Any, dict[str, Any]]:
    """``(graph state, stream tensors)`` of the snapshot ``man`` names; the graph's
    weights are replaced only when both files are intact and match."""
    from ..graph import state_file

    snap = Path(folder) / str(man["snapshot"])
    streams_path = snap / "streams.safetensors"
    meta, streams = read_safetensors(streams_path)
    verify_safetensors(streams_path, meta, streams)
    if meta.get("step") != str(man["step"]):
        raise CorruptFileError(f"{streams_path}: step {meta.get('step')!r} differs from the "
                               f"manifest's {man['step']}")
    state = state_file.load(graph, snap / "graph.safetensors")
    return state, streams


def wipe(folder: str | Path) -> bool:
    """Delete a service's saved state: the manifest first (so a crash midway leaves no
    snapshot that looks complete), then every snapshot folder and the folder itself if
    empty. Returns whether there was anything to delete; refuses a folder that holds
    other files than a service's state."""
    root = Path(folder)
    if not root.exists():
        return False
    if not root.is_dir():
        raise StateMismatchError(f"--state {folder}: not a folder")
    foreign = [p.name for p in root.iterdir()
               if p.name != MANIFEST and not p.name.startswith(("snap-", f".{MANIFEST}."))]
    if foreign:
        raise StateMismatchError(f"--state {folder}: holds {foreign[0]!r}, which is not "
                                 f"part of a service's state; not deleting it")
    (root / MANIFEST).unlink(missing_ok=True)
    for p in root.iterdir():
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    root.rmdir()
    return True


__all__ = ["check_network", "load_snapshot", "read_manifest", "save_snapshot", "wipe"]
