"""Training checkpoints of the hippocampal transformer: one folder per step, written
atomically, verified whole before anything is used.

A checkpoint ``ROOT/step-00000100/`` holds

=========================== ==========================================================
``model.safetensors``       the model's ``state_dict`` (tied weights stored per name)
``optimizer.safetensors``   every tensor of the optimizer state (``state.<i>.<key>``)
``optimizer.json``          the rest of the optimizer state: param groups, scalars
``rng.safetensors``         RNG states of every rank: torch CPU and CUDA, numpy, python
``state.json``              step, data position, model and training configs, ...
``manifest.json``           format tag, step, byte size and SHA-256 of every file above
=========================== ==========================================================

plus any extra files the caller adds (a tokenizer). No pickle anywhere: tensors in
safetensors, structure in JSON. Saving writes into ``ROOT/.step-00000100.<pid>.tmp``,
fsyncs every file, writes the manifest last, fsyncs the folder, renames it to its final
name and fsyncs ``ROOT``: a kill at any moment leaves either no ``step-*`` folder or a
complete one. An existing checkpoint is never overwritten; the oldest beyond
``keep_last`` are removed after the new one has landed (renamed away first, so a
removal cut short never leaves a half folder under a checkpoint's name).

:func:`load_checkpoint` reads the manifest, checks that the folder holds exactly the
listed files with their sizes and hashes, then parses everything into memory; any
failure is a :class:`~aura_snn.errors.CorruptFileError` naming the folder and the file.
Applying the result to a model is the caller's step (:mod:`hybrid.train`), after it has
compared configs and shapes, so nothing is half-loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from aura_snn.errors import CorruptFileError, ParameterError

FORMAT = "aura-snn.hybrid.checkpoint"
VERSION = 1
MANIFEST = "manifest.json"
REQUIRED = ("model.safetensors", "optimizer.safetensors", "optimizer.json",
            "rng.safetensors", "state.json")
_NAME = re.compile(r"step-(\d{8,})")
_TEMP = re.compile(r"\.step-\d{8,}\.(\d+)\.[a-z0-9_]+\.tmp|\.step-\d{8,}\.(\d+)\.deleting")


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint, fully in memory (CPU tensors)."""

    path: Path
    step: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    rng: dict[str, torch.Tensor]
    state: dict[str, Any]


# -- writing -----------------------------------------------------------------------------
def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _jsonb(obj: Any) -> bytes:
    return (json.dumps(obj, indent=1, allow_nan=False) + "\n").encode("utf-8")


def list_checkpoints(root: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """``(step, folder)`` of every ``step-*`` folder under ``root``, oldest first."""
    r = Path(root)
    if not r.is_dir():
        return []
    found = [(int(m.group(1)), r / e.name) for e in os.scandir(r)
             if e.is_dir() and (m := _NAME.fullmatch(e.name))]
    return sorted(found)


def _remove_stale(root: Path) -> None:
    """Temporaries of saves and removals whose process is gone."""
    for e in os.scandir(root):
        m = _TEMP.fullmatch(e.name)
        if m is None or not e.is_dir():
            continue
        pid = int(m.group(1) or m.group(2))
        try:
            os.kill(pid, 0)
            continue  # still running (or another user's)
        except ProcessLookupError:
            shutil.rmtree(e.path, ignore_errors=True)
        except OSError:
            continue


def save_checkpoint(root: str | os.PathLike[str], step: int, *,
                    model: Mapping[str, torch.Tensor], optimizer: Mapping[str, Any],
                    rng: Mapping[str, torch.Tensor], state: Mapping[str, Any],
                    extra_files: Mapping[str, bytes] | None = None,
                    keep_last: int = 3) -> Path:
    """Write ``ROOT/step-<step>`` atomically (module docstring) and keep the newest
    ``keep_last`` checkpoints; returns the new folder. ``model``: a ``state_dict``;
    ``optimizer``: an optimizer ``state_dict``; ``rng``: tensors
    (:func:`hybrid.train_state.rng_state`, one set per rank under ``rank<r>.``
    prefixes); ``state``: JSON-able values."""
    from safetensors.torch import save as st_save

    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ParameterError(f"step must be an integer >= 0, got {step!r}")
    if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1:
        raise ParameterError(f"keep_last must be an integer >= 1, got {keep_last!r}")
    extra = dict(extra_files or {})
    for name in extra:
        if name in REQUIRED or name == MANIFEST or not re.fullmatch(r"[\w.\-]+", name):
            raise ParameterError(f"extra file name {name!r} is reserved or not a plain name")
    r = Path(root)
    r.mkdir(parents=True, exist_ok=True)
    final = r / f"step-{step:08d}"
    if final.exists():
        raise FileExistsError(f"checkpoint {final} exists already; it is never overwritten")
    _remove_stale(r)
    from .train_state import flatten_optimizer

    opt_tensors, opt_json = flatten_optimizer(optimizer)
    blobs = {
        # clone: tied weights share storage, which safetensors refuses; each name is stored
        "model.safetensors": st_save({k: v.detach().cpu().clone().contiguous()
                                      for k, v in model.items()}),
        "optimizer.safetensors": st_save(opt_tensors),
        "optimizer.json": _jsonb(opt_json),
        "rng.safetensors": st_save({k: v.detach().cpu().contiguous() for k, v in rng.items()}),
        "state.json": _jsonb(dict(state)),
        **extra,
    }
    tmp = Path(tempfile.mkdtemp(prefix=f".step-{step:08d}.{os.getpid()}.", suffix=".tmp",
                                dir=r))
    try:
        files = {}
        for name, data in blobs.items():
            _write(tmp / name, data)
            files[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        _write(tmp / MANIFEST, _jsonb({"format": FORMAT, "version": VERSION, "step": step,
                                       "files": files}))
        _fsync_dir(tmp)
        if final.exists():
            raise FileExistsError(f"checkpoint {final} appeared during the save; "
                                  f"it is never overwritten")
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(r)
    for _, old in list_checkpoints(r)[:-keep_last]:
        gone = r / f".{old.name}.{os.getpid()}.deleting"
        os.rename(old, gone)
        shutil.rmtree(gone, ignore_errors=True)
    return final


# -- reading -----------------------------------------------------------------------------
def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The verified manifest of a checkpoint folder: format, version, and every listed
    file present with its size and SHA-256, nothing unlisted."""
    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(f"no checkpoint folder at {p}")

    def bad(msg: str) -> CorruptFileError:
        return CorruptFileError(f"{p}: {msg}")

    mf = p / MANIFEST
    if not mf.is_file():
        raise bad(f"no {MANIFEST}: an unfinished save or not an aura-snn checkpoint")
    try:
        man = json.loads(mf.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad(f"{MANIFEST} is not valid JSON ({exc})") from None
    if not isinstance(man, dict) or man.get("format") != FORMAT:
        raise bad(f"{MANIFEST} is not an aura-snn hybrid checkpoint manifest "
                  f"(format {man.get('format') if isinstance(man, dict) else None!r})")
    if man.get("version") != VERSION:
        raise bad(f"checkpoint format version {man.get('version')!r}; this version reads "
                  f"{VERSION}")
    files = man.get("files")
    if not isinstance(files, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("bytes"), int)
            and isinstance(v.get("sha256"), str) for v in files.values()):
        raise bad(f"{MANIFEST} has no valid file list")
    if not isinstance(man.get("step"), int):
        raise bad(f"{MANIFEST} has no integer step")
    for name in REQUIRED:
        if name not in files:
            raise bad(f"{MANIFEST} does not list {name}")
    unlisted = sorted({e.name for e in os.scandir(p)} - {MANIFEST} - set(files))
    if unlisted:
        raise bad(f"file {unlisted[0]} is not in the manifest (foreign or stray file)")
    for name, meta in files.items():
        f = p / name
        if not f.is_file() or os.sep in name or name.startswith("."):
            raise bad(f"{name} is missing")
        if f.stat().st_size != meta["bytes"]:
            raise bad(f"{name} holds {f.stat().st_size} bytes, the manifest says "
                      f"{meta['bytes']} (truncated or replaced)")
        if _sha256(f) != meta["sha256"]:
            raise bad(f"{name}: SHA-256 differs from the manifest (file corrupted)")
    return man


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load as st_load

    try:
        return dict(st_load(path.read_bytes()))
    except BaseException as exc:  # the Rust core may panic (a BaseException)
        if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
            raise
        raise CorruptFileError(f"{path}: not a readable safetensors file "
                               f"({type(exc).__name__}: {exc})") from None


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptFileError(f"{path}: not valid JSON ({exc})") from None


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Verify (:func:`read_manifest`) and read a checkpoint folder into memory."""
    p = Path(path)
    man = read_manifest(p)
    opt_t, opt_j = _tensors(p / "optimizer.safetensors"), _json(p / "optimizer.json")
    state = _json(p / "state.json")
    try:
        optimizer = {"tensors": opt_t, "state": dict(opt_j["state"]),
                     "param_groups": list(opt_j["param_groups"])}
        for entry in optimizer["state"].values():
            for v in entry.values():
                if "tensor" in v and v["tensor"] not in opt_t:
                    raise KeyError(v["tensor"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise CorruptFileError(f"{p}: optimizer.json does not match optimizer.safetensors "
                               f"({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or state.get("step") != man["step"]:
        raise CorruptFileError(f"{p}: state.json's step differs from the manifest's")
    return Checkpoint(p, man["step"], _tensors(p / "model.safetensors"), optimizer,
                      _tensors(p / "rng.safetensors"), state)


def read_extra(ckpt: Checkpoint | str | os.PathLike[str], name: str) -> bytes | None:
    """The bytes of an extra file of a checkpoint (verified against its manifest), or
    ``None`` when it has none of that name."""
    p = ckpt.path if isinstance(ckpt, Checkpoint) else Path(ckpt)
    man = read_manifest(p)
    if name not in man["files"] or name in REQUIRED:
        return None
    data = (p / name).read_bytes()
    if hashlib.sha256(data).hexdigest() != man["files"][name]["sha256"]:
        raise CorruptFileError(f"{p}: {name}: SHA-256 differs from the manifest")
    return data


def latest(root: str | os.PathLike[str]) -> Path | None:
    """The newest ``step-*`` folder under ``root`` (unverified), or ``None``."""
    found = list_checkpoints(root)
    return found[-1][1] if found else None


__all__ = ["Checkpoint", "FORMAT", "latest", "list_checkpoints", "load_checkpoint",
           "read_extra", "read_manifest", "save_checkpoint"]
