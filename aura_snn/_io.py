"""Atomic file writes and checksummed safetensors files.

Everything aura-snn persists (memory stores, checkpoints, exports, summaries) goes
through :func:`atomic_path`: the data is written to a temporary file in the target's
folder, flushed to disk, given the mode the process umask says (``0o666 & ~umask``, as
``open()`` would), then renamed over the target. A crash leaves either the old file or
the new one, never half of one; a process killed during a save leaves its temporary
``.<name>.<pid>@<host>.<random><suffix>.tmp``, which the next save to the same path
removes (only names of that pattern for that exact target, and only when the process
that wrote it is gone or it is older than :data:`STALE_AFTER_S`).

Safetensors files of aura-snn (graph states, memory stores) are written by
:func:`write_safetensors` and read by :func:`read_safetensors` +
:func:`verify_safetensors`: the header metadata carries ``checksums`` (JSON: CRC-32 of
every tensor's bytes) and ``header_checksum`` (CRC-32 of every other metadata entry and
of every tensor's name, dtype and shape), so a flipped bit anywhere in the file, header
included, raises :class:`~aura_snn.errors.CorruptFileError` naming the file and the
first bad entry before anything is used. CRC-32 finds accidental damage (every 1-, 2-
and 3-bit error, every burst up to 32 bits); it is no signature: anyone editing a file
can recompute it, so readers still check what they read against what they expect.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import tempfile
import time
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .errors import CorruptFileError

CHECKSUMS = "checksums"
HEADER_CHECKSUM = "header_checksum"
STALE_AFTER_S = 3600.0
"""A temporary of ours untouched for this long (s) is stale even if its writer's pid is
alive (pid reuse) or the writer ran on another host (shared folders)."""


def _read_umask() -> int:
    """The process umask (read once, at import, when nothing else runs yet)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()
_HOST = hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:6]


def current_umask() -> int:
    """The umask now: from ``/proc/self/status`` where the kernel reports it (reading it
    with ``os.umask`` would change it for an instant, racing other threads), else the
    one read at import."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return _UMASK


def _temp_pattern(name: str, suffix: str) -> re.Pattern[str]:
    """Names :func:`atomic_path` gives temporaries of target ``name`` (also the older
    form without ``<pid>@<host>.``); tempfile's random part is 8 of ``[a-z0-9_]``."""
    return re.compile(rf"\.{re.escape(name)}\.(?:(\d+)@([0-9a-f]{{6}})\.)?[a-z0-9_]{{8}}"
                      rf"{re.escape(suffix)}\.tmp")


def _writer_gone(pid: int, host: str) -> bool:
    if host != _HOST or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: alive, another user's
        return False
    return False


def remove_stale_temporaries(path: str | os.PathLike[str], suffix: str = "") -> list[Path]:
    """Remove temporaries that :func:`atomic_path` left beside ``path`` in saves that
    never finished (module docstring); returns the paths removed. Files of other names,
    other targets or saves still in progress are never touched."""
    target = Path(path)
    pattern = _temp_pattern(target.name, suffix)
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if m is None:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            old = now - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER_S
            gone = m.group(1) is not None and _writer_gone(int(m.group(1)), m.group(2))
            if old or gone:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:  # vanished meanwhile, or not ours to remove
            continue
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left untouched.
    ``suffix`` keeps an extension for libraries that infer the format from it. The file
    gets mode ``0o666 & ~umask`` after the writer is done (some writers, safetensors'
    among them, replace the temporary with a file of their own, mode 0600). Stale
    temporaries of earlier, killed saves to ``path`` are removed first.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target, suffix)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}@{_HOST}.",
                                    suffix=suffix + ".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~current_umask())
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


# -- checksummed safetensors -------------------------------------------------------------
def tensor_crc(t: Any) -> int:
    """CRC-32 of a tensor's bytes (C order)."""
    import numpy as np
    import torch

    flat = t.detach().cpu().contiguous().reshape(-1)
    return zlib.crc32(np.ascontiguousarray(flat.view(torch.uint8).numpy()))


def header_crc(metadata: Mapping[str, str], tensors: Mapping[str, Any]) -> int:
    """CRC-32 of every metadata entry but ``header_checksum`` and of every tensor's name,
    dtype and shape (canonical JSON)."""
    body = {k: v for k, v in metadata.items() if k != HEADER_CHECKSUM}
    specs = {k: [str(v.dtype).removeprefix("torch."), list(v.shape)] for k, v in tensors.items()}
    blob = json.dumps({"metadata": body, "tensors": specs}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=True)
    return zlib.crc32(blob.encode("ascii"))


def seal(tensors: Mapping[str, Any], metadata: Mapping[str, str]) -> dict[str, str]:
    """``metadata`` with ``checksums`` and ``header_checksum`` (re)computed for
    ``tensors``."""
    body = {k: v for k, v in metadata.items() if k not in (CHECKSUMS, HEADER_CHECKSUM)}
    body[CHECKSUMS] = json.dumps({k: tensor_crc(v) for k, v in tensors.items()},
                                 sort_keys=True)
    body[HEADER_CHECKSUM] = str(header_crc(body, tensors))
    return body


def write_safetensors(path: str | os.PathLike[str], tensors: Mapping[str, Any],
                      metadata: Mapping[str, str]) -> None:
    """Write ``tensors`` (CPU copies) and ``metadata`` plus checksums atomically."""
    from safetensors.torch import save_file

    flat = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = seal(flat, metadata)
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(flat, str(tmp), metadata=meta)


def read_safetensors(path: str | os.PathLike[str]) -> tuple[dict[str, str], dict[str, Any]]:
    """``(metadata, tensors)`` of a safetensors file, on the CPU, unverified (see
    :func:`verify_safetensors`). Anything unreadable (a damaged header, offsets outside
    the file, an unknown dtype ...) raises :class:`CorruptFileError` naming the file."""
    from safetensors import safe_open

    name = os.fspath(path)
    if not os.path.isfile(name):
        raise FileNotFoundError(f"no such file: {name!r}")
    try:
        with safe_open(name, framework="pt", device="cpu") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except FileNotFoundError:
        raise
    except BaseException as exc:
        # safetensors raises SafetensorError, ValueError, TypeError, OSError ... and a
        # malformed header can make its Rust core panic (pyo3's PanicException, a
        # BaseException); anything but an interrupt means the file is unreadable
        if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
            raise
        raise CorruptFileError(f"{name}: not a readable safetensors file "
                               f"({type(exc).__name__}: {exc})") from None
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise CorruptFileError(f"{name}: safetensors metadata must map strings to strings")
    return meta, tensors


def verify_safetensors(path: str | os.PathLike[str], metadata: Mapping[str, str],
                       tensors: Mapping[str, Any]) -> None:
    """Check ``header_checksum`` first, then every tensor's checksum; raise
    :class:`CorruptFileError` naming the file and the first bad entry."""
    name = os.fspath(path)

    def bad(msg: str) -> CorruptFileError:
        return CorruptFileError(f"{name}: {msg}")

    stored = metadata.get(HEADER_CHECKSUM)
    if stored is None:
        raise bad(f"no {HEADER_CHECKSUM!r} in the header (damaged, or written before "
                  f"headers were checksummed: save it again with this version)")
    try:
        header_ok = stored == str(header_crc(metadata, tensors))
    except (TypeError, ValueError, RuntimeError) as exc:
        raise bad(f"header cannot be checksummed ({exc})") from None
    if not header_ok:
        raise bad("header checksum mismatch: the metadata or a tensor's name, dtype or "
                  "shape changed (file corrupted)")
    try:
        sums = json.loads(metadata[CHECKSUMS])
        if not isinstance(sums, dict):
            raise TypeError(f"a JSON object, got {type(sums).__name__}")
    except (KeyError, TypeError, ValueError) as exc:
        raise bad(f"header entry {CHECKSUMS!r} is not a checksum list ({exc})") from None
    extra, missing = sorted(set(tensors) - set(sums)), sorted(set(sums) - set(tensors))
    if extra or missing:
        raise bad(f"tensor {(extra or missing)[0]!r} is "
                  f"{'not in the checksum list' if extra else 'listed but missing'}")
    for key in sorted(tensors):
        try:
            ok = tensor_crc(tensors[key]) == sums[key]
        except (TypeError, ValueError, RuntimeError) as exc:
            raise bad(f"tensor {key!r} cannot be checksummed ({exc})") from None
        if not ok:
            raise bad(f"checksum mismatch in tensor {key!r} (file corrupted)")


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Serialise ``obj`` as indented JSON and write it atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_jsonable) + "\n")


def _jsonable(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")
