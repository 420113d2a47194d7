"""Text for the hippocampal transformer: the embedded corpus, files streamed, token blocks.

* :func:`default_corpus`: the documents of ``pydoc_data.topics`` (the help topics that
  ship with CPython, about 465 KB of English and code, no download), by topic name.
* :func:`split_documents`: a deterministic train/validation split by whole documents:
  documents are visited in the order of the CRC-32 of their names (a fixed
  pseudo-random order, the same on every machine and Python version) and each is put
  in validation if it still fits under ``val_fraction`` of the characters; the rest
  train. No document is in both.
* :func:`iter_text_file`: a text or JSONL file read in chunks of about ``chunk_chars``
  characters, so a corpus larger than memory streams. Text chunks end at whitespace
  where one exists (the rest carries over), so a BPE tokenizer seldom sees a word cut.
  JSONL lines are objects whose ``text_key`` field is a string; records are joined by a
  blank line. An empty file, a binary file (a NUL byte, or bytes that are not UTF-8) and
  a malformed JSONL line raise :class:`~aura_snn.errors.ConfigError` naming the file
  (and the line).
* :func:`token_blocks`: any iterable of text chunks -> a generator of ``block_size + 1``
  token ids (inputs ``b[:-1]``, targets ``b[1:]``), consecutive blocks overlapping by one
  token, so every token is a target exactly once; the tail shorter than a block is dropped.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import torch

from aura_snn._checks import check_in_range, check_int
from aura_snn.errors import ConfigError, ParameterError, ParameterTypeError, ShapeError

from .tokenizer import Tokenizer

DOC_SEPARATOR = "\n\n"
FORMATS = ("auto", "text", "jsonl")


class CorpusSplit(NamedTuple):
    """Train and validation text (documents joined by a blank line)."""

    train: str
    validation: str


def default_corpus() -> dict[str, str]:
    """The ``pydoc_data.topics`` documents, ``{topic: text}`` sorted by topic."""
    from pydoc_data.topics import topics

    return {k: topics[k] for k in sorted(topics)}


def split_documents(documents: dict[str, str], val_fraction: float = 0.1) -> CorpusSplit:
    """Split ``documents`` (``{name: text}``) into train/validation (module docstring).

    ``val_fraction`` in [0, 1): the validation share of characters is at most this.
    Within each part documents keep their name order."""
    if not isinstance(documents, dict) or not documents:
        raise ParameterTypeError("documents must be a non-empty dict {name: text}")
    check_in_range("val_fraction", val_fraction, 0.0, 1.0, high_inclusive=False)
    target = val_fraction * sum(len(t) for t in documents.values())
    val: set[str] = set()
    size = 0
    for name in sorted(documents, key=lambda n: (zlib.crc32(n.encode("utf-8")), n)):
        if size + len(documents[name]) <= target:
            val.add(name)
            size += len(documents[name])
    names = sorted(documents)
    return CorpusSplit(DOC_SEPARATOR.join(documents[n] for n in names if n not in val),
                       DOC_SEPARATOR.join(documents[n] for n in names if n in val))


def default_split(val_fraction: float = 0.1) -> CorpusSplit:
    """:func:`split_documents` of :func:`default_corpus`."""
    return split_documents(default_corpus(), val_fraction)


def _format(path: Path, fmt: str) -> str:
    if fmt not in FORMATS:
        raise ParameterError(f"format must be one of {', '.join(map(repr, FORMATS))}; got {fmt!r}")
    if fmt != "auto":
        return fmt
    return "jsonl" if path.suffix.lower() in (".jsonl", ".ndjson") else "text"


def _text_chunks(path: Path, chunk_chars: int) -> Iterator[str]:
    carry = ""
    with open(path, encoding="utf-8", errors="strict", newline="") as fh:
        offset = 0
        while True:
            try:
                block = fh.read(chunk_chars)
            except UnicodeDecodeError as exc:
                raise ConfigError(f"{path}: not a UTF-8 text file (undecodable byte "
                                  f"0x{exc.object[exc.start]:02x} after character "
                                  f"{offset}): binary data?") from None
            if "\x00" in block:
                raise ConfigError(f"{path}: not a text file (NUL byte after character "
                                  f"{offset + block.index(chr(0))}): binary data?")
            offset += len(block)
            if not block:
                break
            text = carry + block
            cut = max(text.rfind(" "), text.rfind("\n"))
            if cut <= 0 or len(text) - cut > chunk_chars:  # no whitespace: cut anywhere
                carry, text = "", text
            else:
                carry, text = text[cut + 1:], text[:cut + 1]
            yield text
    if carry:
        yield carry


def _jsonl_chunks(path: Path, chunk_chars: int, text_key: str) -> Iterator[str]:
    parts: list[str] = []
    size, lead = 0, ""
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if b"\x00" in raw:
                raise ConfigError(f"{path}:{lineno}: not a text file (NUL byte): binary data?")
            try:
                line = raw.decode("utf-8").strip()
                if not line:
                    continue
                record = json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ConfigError(f"{path}:{lineno}: not a JSON line ({exc})") from None
            if not isinstance(record, dict) or not isinstance(record.get(text_key), str):
                raise ConfigError(f"{path}:{lineno}: {text_key}: each line must be an object "
                                  f"with a string field {text_key!r}")
            parts.append(record[text_key])
            size += len(record[text_key])
            if size >= chunk_chars:
                yield lead + DOC_SEPARATOR.join(parts)
                parts, size, lead = [], 0, DOC_SEPARATOR
    if parts:
        yield lead + DOC_SEPARATOR.join(parts)


def iter_text_file(path: str | os.PathLike[str], chunk_chars: int = 1 << 20,
                   format: str = "auto", text_key: str = "text") -> Iterator[str]:
    """Stream the text of ``path`` in chunks of about ``chunk_chars`` characters.

    ``format``: ``"text"``, ``"jsonl"`` or ``"auto"`` (``.jsonl``/``.ndjson`` suffix ->
    JSONL). The path, format and size are checked at the call; errors met while
    reading (module docstring) name the file, and a JSONL file with no record raises
    at the end of the stream.
    """
    p = Path(path)
    chunk_chars = check_int("chunk_chars", chunk_chars, minimum=1)
    kind = _format(p, format)
    if not p.is_file():
        raise FileNotFoundError(f"no such corpus file: {str(p)!r}")
    if p.stat().st_size == 0:
        raise ConfigError(f"{p}: the corpus file is empty")
    chunks = (_jsonl_chunks(p, chunk_chars, text_key) if kind == "jsonl"
              else _text_chunks(p, chunk_chars))
    return _non_empty(p, chunks)


def _non_empty(path: Path, chunks: Iterator[str]) -> Iterator[str]:
    empty = True
    for chunk in chunks:
        if chunk:
            empty = False
            yield chunk
    if empty:
        raise ConfigError(f"{path}: the corpus file holds no text")

def token_blocks(chunks: Iterable[str], tokenizer: Tokenizer, block_size: int
                 ) -> Iterator[torch.Tensor]:
    """Blocks of ``block_size + 1`` token ids (int64) from streamed text (module docstring).

    Each chunk is encoded on its own and the ids concatenated; memory holds one chunk's
    ids and one block at a time."""
    block_size = check_int("block_size", block_size, minimum=1)
    buf: list[int] = []
    start = 0
    for chunk in chunks:
        buf = buf[start:] + tokenizer.encode(chunk)
        start = 0
        while len(buf) - start >= block_size + 1:
            yield torch.tensor(buf[start:start + block_size + 1], dtype=torch.int64)
            start += block_size


def encode_text(text: str, tokenizer: Tokenizer) -> torch.Tensor:
    """All token ids of ``text`` as a 1-d int64 tensor."""
    return torch.tensor(tokenizer.encode(text), dtype=torch.int64)


def random_batch(ids: torch.Tensor, batch_size: int, block_size: int,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` ``[batch_size, block_size]``: windows of ``ids`` at uniform random starts
    (drawn from ``generator``), ``y`` shifted by one token."""
    batch_size = check_int("batch_size", batch_size, minimum=1)
    block_size = check_int("block_size", block_size, minimum=1)
    if ids.dim() != 1 or ids.numel() < block_size + 1:
        raise ShapeError(f"ids must be 1-d with at least block_size + 1 = {block_size + 1} "
                          f"tokens, got shape {tuple(ids.shape)}")
    starts = torch.randint(0, ids.numel() - block_size, (batch_size,), generator=generator)
    idx = starts.unsqueeze(1) + torch.arange(block_size + 1)
    windows = ids[idx]
    return windows[:, :-1], windows[:, 1:]
