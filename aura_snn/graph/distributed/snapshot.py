r"""Consistent snapshots of a partitioned run: one safetensors file per worker, a
manifest written last.

A snapshot of step :math:`s` is a folder ``DIR/snapshot-<s, 12 digits>/`` holding

* ``worker-<w>.safetensors`` per worker, written by the worker itself
  (:func:`write_part`, atomic: :func:`aura_snn._io.write_safetensors`): its regions'
  state and pending inputs (:func:`aura_snn.graph.state.to_tensors` of its sub-graph,
  the inputs still on their way included, so nothing is in flight outside the files),
  and ``param.<projection>.<buffer>`` for its plastic projections;
* ``manifest.json``, written last by the caller (:func:`commit_snapshot`, atomic
  rename) once every file is complete: the step, each file's SHA-256 and size, and
  ``meta`` (the graph's fingerprint, the partition, the run's own keys).

Random numbers need no saved generator: Poisson spikes are a pure function of the
region's seed and the step (:mod:`aura_snn.graph._rng`), so the step and the seeds
(fingerprinted) are the RNG state.

A snapshot counts only with its manifest and every file matching its hash:
:func:`latest_snapshot` returns the newest such one and warns, naming the folder, about
each newer one it skips. After a new snapshot is complete, every other snapshot folder
in ``DIR`` is removed (:func:`prune`); a snapshot begun but not completed is removed
whole (:func:`discard`). Nothing is unpickled: safetensors and JSON only.

Public API (also used by ``aura-snn serve``)::

    save_snapshot(dir, step, arrays_by_worker, meta) -> Snapshot   # write all, commit
    latest_snapshot(dir) -> Snapshot | None                        # newest complete
    read_part(snapshot, name) -> dict[str, torch.Tensor]           # one file, verified
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..._io import atomic_write_json, read_safetensors, verify_safetensors, write_safetensors
from ...errors import CorruptFileError, ParameterError

FORMAT = "aura-snn.snapshot"
VERSION = 1
MANIFEST = "manifest.json"
_NAME = re.compile(r"snapshot-(\d{12})")


@dataclass(frozen=True)
class Snapshot:
    """A complete snapshot: its folder, step, files ``{name: {"sha256", "bytes"}}`` and
    ``meta``."""

    path: Path
    step: int
    files: dict[str, dict[str, Any]]
    meta: dict[str, Any]


def snapshot_dir(root: str | os.PathLike[str], step: int) -> Path:
    """The folder of the snapshot of ``step`` in ``root``."""
    if not isinstance(step, int) or step < 0:
        raise ParameterError(f"step must be an int >= 0, got {step!r}")
    return Path(root) / f"snapshot-{step:012d}"


def part_name(worker: int | str) -> str:
    """File name of one worker's part (``worker-<w>.safetensors``)."""
    return f"worker-{worker}.safetensors"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_part(folder: str | os.PathLike[str], name: str,
               tensors: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Write one part atomically into ``folder``; returns ``{"name", "sha256",
    "bytes"}`` for the manifest."""
    path = Path(folder) / name
    write_safetensors(path, tensors, {"format": FORMAT, "part": name})
    return {"name": name, "sha256": _sha256(path), "bytes": path.stat().st_size}


def commit_snapshot(root: str | os.PathLike[str], step: int,
                    parts: list[dict[str, Any]], meta: Mapping[str, Any]) -> Snapshot:
    """Write the manifest of the snapshot of ``step`` (its parts already written, see
    :func:`write_part`), then :func:`prune` the others."""
    folder = snapshot_dir(root, step)
    files = {p["name"]: {"sha256": p["sha256"], "bytes": int(p["bytes"])} for p in parts}
    for name in files:
        if not (folder / name).is_file():
            raise ParameterError(f"snapshot {folder}: part {name!r} was not written")
    atomic_write_json(folder / MANIFEST, {"format": FORMAT, "version": VERSION,
                                          "step": step, "files": files, "meta": dict(meta)})
    prune(root, keep=step)
    return Snapshot(folder, step, files, json.loads(json.dumps(dict(meta))))


def save_snapshot(root: str | os.PathLike[str], step: int,
                  arrays_by_worker: Mapping[int | str, Mapping[str, torch.Tensor]],
                  meta: Mapping[str, Any]) -> Snapshot:
    """Write one part per key of ``arrays_by_worker`` and commit them (module
    docstring); ``meta`` must be JSON-serialisable."""
    try:
        json.dumps(dict(meta))
    except TypeError as exc:
        raise ParameterError(f"meta must be JSON-serialisable: {exc}") from None
    folder = snapshot_dir(root, step)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        parts = [write_part(folder, part_name(w), arrays)
                 for w, arrays in arrays_by_worker.items()]
    except BaseException:
        discard(root, step)
        raise
    return commit_snapshot(root, step, parts, meta)


def _steps(root: Path) -> list[int]:
    if not root.is_dir():
        return []
    found = []
    for entry in os.scandir(root):
        m = _NAME.fullmatch(entry.name)
        if m and entry.is_dir(follow_symlinks=False):
            found.append(int(m.group(1)))
    return sorted(found)


def _check(folder: Path) -> Snapshot | str:
    """The snapshot in ``folder``, or why it does not count."""
    man = folder / MANIFEST
    if not man.is_file():
        return "no manifest (a snapshot begun but not completed)"
    try:
        data = json.loads(man.read_text(encoding="utf-8"))
        step, files, meta = int(data["step"]), dict(data["files"]), dict(data["meta"])
        ok = data.get("format") == FORMAT and data.get("version") == VERSION
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"unreadable manifest ({type(exc).__name__}: {exc})"
    if not ok:
        return f"manifest of format {data.get('format')!r} version {data.get('version')!r}"
    if _NAME.fullmatch(folder.name) is None or int(folder.name[9:]) != step:
        return f"manifest names step {step}"
    for name, info in files.items():
        path = folder / name
        if "/" in name or not path.is_file():
            return f"file {name!r} is missing"
        if _sha256(path) != info.get("sha256"):
            return f"file {name!r} does not match its hash"
    return Snapshot(folder, step, files, meta)


def latest_snapshot(root: str | os.PathLike[str]) -> Snapshot | None:
    """The newest complete snapshot in ``root`` (``None`` when there is none); each
    newer folder skipped gets a warning naming it and why."""
    root = Path(root)
    for step in reversed(_steps(root)):
        folder = snapshot_dir(root, step)
        got = _check(folder)
        if isinstance(got, Snapshot):
            return got
        warnings.warn(f"snapshot {folder} ignored: {got}", RuntimeWarning, stacklevel=2)
    return None


def read_part(snap: Snapshot, name: str) -> dict[str, torch.Tensor]:
    """The tensors of part ``name`` of ``snap``, its hash and checksums verified."""
    if name not in snap.files:
        raise ParameterError(f"snapshot {snap.path} has no part {name!r}; it has "
                             f"{sorted(snap.files)}")
    path = snap.path / name
    if _sha256(path) != snap.files[name]["sha256"]:
        raise CorruptFileError(f"{path}: does not match the hash in its manifest")
    meta, tensors = read_safetensors(path)
    verify_safetensors(path, meta, tensors)
    return tensors


def prune(root: str | os.PathLike[str], keep: int) -> None:
    """Remove every snapshot folder in ``root`` but that of step ``keep``."""
    for step in _steps(Path(root)):
        if step != keep:
            discard(root, step)


def discard(root: str | os.PathLike[str], step: int) -> None:
    """Remove the snapshot folder of ``step`` whole (manifest first, so that what is
    left while removing never counts as complete)."""
    folder = snapshot_dir(root, step)
    try:
        (folder / MANIFEST).unlink()
    except FileNotFoundError:
        pass
    shutil.rmtree(folder, ignore_errors=True)


__all__ = ["MANIFEST", "Snapshot", "commit_snapshot", "discard", "latest_snapshot",
           "part_name", "prune", "read_part", "save_snapshot", "snapshot_dir", "write_part"]
