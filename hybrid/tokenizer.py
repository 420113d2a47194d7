"""Tokenizers of the hippocampal transformer: byte-level (no files) and trained BPE.

Both share one interface: ``encode(text, add_bos=False, add_eos=False) -> list[int]``,
``decode(ids) -> str`` (special tokens dropped; byte sequences that are not valid
UTF-8, as a sampled model may produce, decode with U+FFFD replacement characters),
``vocab_size``, ``bos_id``, ``eos_id``, ``pad_id`` and ``save(path)``.
Special tokens are reached only through their ids: text that spells ``<|eos|>``
encodes as ordinary text, so ``decode(encode(text)) == text`` for every string.

* :class:`ByteTokenizer`: ids 0..255 are the UTF-8 bytes of the text, then
  ``<|bos|>`` = 256, ``<|eos|>`` = 257, ``<|pad|>`` = 258. Lone surrogates (Python
  strings that are not valid Unicode) are kept by the ``surrogatepass`` codec.
* :class:`BPETokenizer`: byte-level BPE trained with the ``tokenizers`` package (GPT-2
  pre-tokenisation, every byte in the initial alphabet, so no text is unknown), the
  special tokens at ids 0, 1, 2.

:func:`save_tokenizer` writes ``tokenizer.json`` (or the file named) atomically; for
BPE it is the ``tokenizers`` JSON itself. :func:`load_tokenizer` reads either kind back,
identical, and never unpickles.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from aura_snn._checks import check_int
from aura_snn._io import atomic_write_text
from aura_snn.errors import CorruptFileError, ParameterError, ParameterTypeError

SPECIAL_TOKENS = ("<|bos|>", "<|eos|>", "<|pad|>")
FILE_NAME = "tokenizer.json"
BYTE_FORMAT = "aura-snn byte tokenizer"


class Tokenizer(Protocol):
    """What the model, data and generation code need of a tokenizer."""

    vocab_size: int
    bos_id: int
    eos_id: int
    pad_id: int

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]: ...

    def decode(self, ids: Iterable[int]) -> str: ...

    def save(self, path: str | os.PathLike[str]) -> Path: ...


def _check_text(text: Any) -> str:
    if not isinstance(text, str):
        raise ParameterTypeError(f"text must be a str, got {type(text).__name__}")
    return text


def _ids(ids: Iterable[int], vocab_size: int) -> list[int]:
    out = [int(i) for i in (ids.tolist() if hasattr(ids, "tolist") else ids)]
    bad = [i for i in out if not 0 <= i < vocab_size]
    if bad:
        raise ParameterError(f"ids must lie in [0, {vocab_size}), got {bad[0]}")
    return out


def _wrap(ids: list[int], bos: int, eos: int, add_bos: bool, add_eos: bool) -> list[int]:
    return ([bos] if add_bos else []) + ids + ([eos] if add_eos else [])


class ByteTokenizer:
    """UTF-8 bytes as tokens plus three special tokens (module docstring)."""

    vocab_size = 256 + len(SPECIAL_TOKENS)
    bos_id, eos_id, pad_id = 256, 257, 258
    kind = "byte"

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Byte values of ``text`` in UTF-8 (lone surrogates as their 3-byte forms)."""
        data = _check_text(text).encode("utf-8", "surrogatepass")
        return _wrap(list(data), self.bos_id, self.eos_id, add_bos, add_eos)

    def decode(self, ids: Iterable[int]) -> str:
        """Text of the byte ids; special ids dropped, invalid UTF-8 replaced by U+FFFD."""
        data = bytes(i for i in _ids(ids, self.vocab_size) if i < 256)
        try:
            return data.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return data.decode("utf-8", "replace")

    def to_json(self) -> str:
        """The JSON :func:`save_tokenizer` writes."""
        return json.dumps({"format": BYTE_FORMAT, "version": 1,
                           "special_tokens": list(SPECIAL_TOKENS)}, indent=2) + "\n"

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the tokenizer to ``path`` (a folder gets ``tokenizer.json``); returns the file."""
        return save_tokenizer(self, path)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ByteTokenizer)

    def __hash__(self) -> int:
        return hash(BYTE_FORMAT)


class BPETokenizer:
    """Byte-level BPE from the ``tokenizers`` package (module docstring).

    Build with :meth:`train` or :func:`load_tokenizer`; ``BPETokenizer(tok)`` wraps a
    ``tokenizers.Tokenizer`` that has the three special tokens.
    """

    kind = "bpe"

    def __init__(self, tokenizer: Any) -> None:
        self._tok = tokenizer
        self._tok.encode_special_tokens = True  # text spelling "<|eos|>" stays text
        ids = [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS]
        if any(i is None for i in ids):
            raise ParameterError(f"tokenizer must define the special tokens {SPECIAL_TOKENS}")
        self.bos_id, self.eos_id, self.pad_id = ids
        self.vocab_size = int(tokenizer.get_vocab_size())

    @classmethod
    def train(cls, texts: str | Iterable[str], vocab_size: int = 1024,
              min_frequency: int = 2) -> BPETokenizer:
        """Train on ``texts`` (a string or an iterable of strings, streamed) up to
        ``vocab_size`` tokens (>= 259: 256 bytes + specials), merging pairs seen at least
        ``min_frequency`` times."""
        import tokenizers as tk
        vocab_size = check_int("vocab_size", vocab_size, minimum=256 + len(SPECIAL_TOKENS))
        min_frequency = check_int("min_frequency", min_frequency, minimum=1)
        tok = tk.Tokenizer(tk.models.BPE())
        tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = tk.decoders.ByteLevel()
        trainer = tk.trainers.BpeTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
            special_tokens=list(SPECIAL_TOKENS),
            initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet())
        stream = [texts] if isinstance(texts, str) else texts
        tok.train_from_iterator((_check_text(t) for t in stream), trainer=trainer)
        return cls(tok)

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """BPE ids of ``text``."""
        text = _check_text(text)
        try:
            ids = self._tok.encode(text, add_special_tokens=False).ids
        except (TypeError, UnicodeEncodeError) as exc:
            raise ParameterError(f"text cannot be BPE-encoded (lone surrogate?): {exc}") from None
        return _wrap(list(ids), self.bos_id, self.eos_id, add_bos, add_eos)

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``, special tokens dropped."""
        return self._tok.decode(_ids(ids, self.vocab_size), skip_special_tokens=True)

    def to_json(self) -> str:
        """The ``tokenizers`` JSON of this tokenizer."""
        return self._tok.to_str()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the tokenizer to ``path`` (a folder gets ``tokenizer.json``); returns the file."""
        return save_tokenizer(self, path)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BPETokenizer) and other.to_json() == self.to_json()

    def __hash__(self) -> int:
        return hash(self.to_json())


def _file(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p / FILE_NAME if p.is_dir() or str(path).endswith(os.sep) else p


def save_tokenizer(tokenizer: ByteTokenizer | BPETokenizer, path: str | os.PathLike[str]) -> Path:
    """Write ``tokenizer``'s JSON to ``path`` atomically (a folder gets ``tokenizer.json``,
    beside a checkpoint); returns the file written."""
    if not isinstance(tokenizer, (ByteTokenizer, BPETokenizer)):
        raise ParameterTypeError(f"tokenizer must be a ByteTokenizer or BPETokenizer, got "
                                 f"{type(tokenizer).__name__}")
    target = _file(path)
    atomic_write_text(target, tokenizer.to_json())
    return target


def load_tokenizer(path: str | os.PathLike[str]) -> ByteTokenizer | BPETokenizer:
    """Read a tokenizer written by :func:`save_tokenizer` (a file, or a folder holding
    ``tokenizer.json``). A file of neither kind raises :class:`CorruptFileError`."""
    target = _file(path)
    if not target.is_file():
        raise FileNotFoundError(f"no tokenizer file: {str(target)!r}")
    try:
        text = target.read_text(encoding="utf-8")
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptFileError(f"{target}: not a tokenizer JSON file ({exc})") from None
    if isinstance(data, dict) and data.get("format") == BYTE_FORMAT:
        if data.get("special_tokens") != list(SPECIAL_TOKENS):
            raise CorruptFileError(f"{target}: special_tokens must be {list(SPECIAL_TOKENS)}, "
                                   f"got {data.get('special_tokens')!r}")
        return ByteTokenizer()
    if isinstance(data, dict) and isinstance(data.get("model"), dict) \
            and data["model"].get("type") == "BPE":
        import tokenizers as tk
        try:
            return BPETokenizer(tk.Tokenizer.from_str(text))
        except Exception as exc:  # the Rust parser raises its own exception type
            raise CorruptFileError(f"{target}: unreadable BPE tokenizer ({exc})") from None
    raise CorruptFileError(f"{target}: neither a byte nor a BPE tokenizer file")

