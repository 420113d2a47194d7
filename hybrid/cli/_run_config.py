"""Run files of ``aura-snn train``: a ``[model]``, a ``[train]`` and a ``[data]`` table
(TOML, JSON or YAML), and the token arrays they describe.

``[model]`` holds :class:`hybrid.config.HybridConfig` fields (``vocab_size`` defaults to
the tokenizer's), ``[train]`` :class:`hybrid.train_config.TrainConfig` fields and
``[data]`` the :class:`DataConfig` fields below; a top-level ``out_dir`` is the default
output folder. Unknown keys and bad values are :class:`~aura_snn.errors.ConfigError`
``file:line: section.key: message``.

Data preparation (rank 0; the other ranks wait, then read): the corpus is split into
train and validation text, the tokenizer built (byte-level, or BPE trained on the train
text; on a resume, the one stored in the checkpoint), and the token ids streamed into
``OUT/data/train.bin`` and ``val.bin`` (``uint16``/``uint32``, written atomically),
read back memory-mapped, so a corpus larger than memory trains. A file corpus streams
through :func:`hybrid.data.iter_text_file`: the text after the point where
``1 - val_fraction`` of the file's bytes have been read (moved to the next space when
one is near) is validation, the text before it trains.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aura_snn._io import atomic_path, atomic_write_text
from aura_snn.errors import AuraError, ConfigError

TOP_KEYS = ("model", "train", "data", "out_dir")


@dataclass(frozen=True)
class DataConfig:
    """``corpus``: ``"pydoc"`` (the embedded ``pydoc_data.topics``) or a text/JSONL
    file (relative to the run file's folder); ``format``: ``auto``/``text``/``jsonl``;
    ``text_key``: the JSONL field holding text; ``tokenizer``: ``byte`` or ``bpe``;
    ``vocab_size``: BPE vocabulary (>= 259); ``val_fraction``: validation share in
    [0, 1)."""

    corpus: str = "pydoc"
    format: str = "auto"
    text_key: str = "text"
    tokenizer: str = "byte"
    vocab_size: int = 1024
    val_fraction: float = 0.1


@dataclass
class RunConfig:
    """A checked run file."""

    path: Path
    model: dict[str, Any]
    train: Any  # TrainConfig
    data: DataConfig
    out_dir: str | None
    lines: Any = field(default=None, repr=False)

    def error(self, where: tuple[str, ...], msg: str) -> ConfigError:
        """A ConfigError ``file:line: a.b: msg``."""
        line = self.lines.line(where) if self.lines is not None else None
        return ConfigError(f"{self.path}:{line if line else '?'}: {'.'.join(where)}: {msg}")


def _parse(p: Path) -> tuple[Any, Any]:
    from aura_snn.graph.config import toml_lines, yaml_load_with_lines

    suffix = p.suffix.lower()
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a UTF-8 text file") from None
    if suffix == ".toml":
        import tomllib

        try:
            return tomllib.loads(text), toml_lines(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: invalid TOML: {exc}") from None
    if suffix in (".yaml", ".yml"):
        import yaml

        try:
            return yaml_load_with_lines(text, p.name)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: invalid YAML: {' '.join(str(exc).split())}") from None
    if suffix == ".json":
        try:
            return json.loads(text), None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{p}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    raise ConfigError(f"{p}: run files end in .toml, .json, .yaml or .yml")


def _first_word_key(msg: str, keys: Any) -> str | None:
    word = msg.split(" ", 1)[0].split(":", 1)[0].split("[", 1)[0]
    word = word.removeprefix("TrainConfig.")
    return word if word in keys else None


def load_run_config(path: str | os.PathLike[str]) -> RunConfig:
    """Read and check a run file (nothing is built or written)."""
    from hybrid.config import HybridConfig
    from hybrid.train_config import TrainConfig

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such run file")
    raw, lines = _parse(p)
    run = RunConfig(p, {}, None, DataConfig(), None, lines)
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: a run file is a table of [model], [train] and [data]")
    for key in raw:
        if key not in TOP_KEYS:
            raise run.error((str(key),), f"unknown key; known keys are {', '.join(TOP_KEYS)}")
    for sec in ("model", "train", "data"):
        if not isinstance(raw.get(sec, {}), dict):
            raise run.error((sec,), f"must be a table, got {type(raw[sec]).__name__}")
    tables = {sec: dict(raw.get(sec, {})) for sec in ("model", "train", "data")}
    known = {"model": {f.name for f in dataclasses.fields(HybridConfig)},
             "train": {f.name for f in dataclasses.fields(TrainConfig)},
             "data": {f.name for f in dataclasses.fields(DataConfig)}}
    for sec, table in tables.items():
        for key in table:
            if key not in known[sec]:
                raise run.error((sec, str(key)), f"unknown key; known keys are "
                                                 f"{', '.join(sorted(known[sec]))}")
    try:
        run.train = TrainConfig(**tables["train"])
    except (AuraError, ValueError, TypeError) as exc:
        key = _first_word_key(str(exc), tables["train"])
        raise run.error(("train", key) if key else ("train",), str(exc)) from None
    run.data = _data_config(run, tables["data"])
    run.model = tables["model"]
    out = raw.get("out_dir")
    if out is not None and not isinstance(out, str):
        raise run.error(("out_dir",), f"must be a string, got {out!r}")
    run.out_dir = out
    return run


def _data_config(run: RunConfig, table: dict[str, Any]) -> DataConfig:
    d = DataConfig(**table)
    checks = (("corpus", isinstance(d.corpus, str) and d.corpus != "", "a non-empty string"),
              ("format", d.format in ("auto", "text", "jsonl"), "'auto', 'text' or 'jsonl'"),
              ("text_key", isinstance(d.text_key, str), "a string"),
              ("tokenizer", d.tokenizer in ("byte", "bpe"), "'byte' or 'bpe'"),
              ("vocab_size", isinstance(d.vocab_size, int) and not isinstance(d.vocab_size, bool)
               and d.vocab_size >= 259, "an integer >= 259"),
              ("val_fraction", isinstance(d.val_fraction, (int, float)) and
               not isinstance(d.val_fraction, bool) and 0 <= d.val_fraction < 1, "in [0, 1)"))
    for name, ok, rule in checks:
        if not ok:
            raise run.error(("data", name), f"must be {rule}, got {getattr(d, name)!r}")
    return d


def build_model_config(run: RunConfig, vocab_size: int) -> Any:
    """The :class:`HybridConfig` of ``[model]``, ``vocab_size`` from the tokenizer."""
    from hybrid.config import HybridConfig

    table = dict(run.model)
    if table.setdefault("vocab_size", vocab_size) != vocab_size:
        raise run.error(("model", "vocab_size"), f"is {table['vocab_size']} but the "
                                                 f"{run.data.tokenizer} tokenizer has "
                                                 f"{vocab_size} tokens (leave it out)")
    try:
        cfg = HybridConfig.from_dict(table)
    except (AuraError, ValueError, TypeError) as exc:
        key = _first_word_key(str(exc), table)
        raise run.error(("model", key) if key else ("model",), str(exc)) from None
    if run.train.seq_len > cfg.context:
        raise run.error(("train", "seq_len"), f"is {run.train.seq_len}, longer than the "
                                              f"model's context of {cfg.context}")
    return cfg


def _texts(run: RunConfig) -> tuple[Any, Any]:
    """``(train chunks, val chunks)`` factories (each call streams again)."""
    from hybrid.data import default_split, iter_text_file

    d = run.data
    if d.corpus == "pydoc":
        split = default_split(d.val_fraction)
        return (lambda: iter([split.train])), (lambda: iter([split.validation]))
    p = Path(d.corpus) if Path(d.corpus).is_absolute() else run.path.parent / d.corpus
    if not p.is_file():
        raise run.error(("data", "corpus"), f"no such corpus file: {str(p)!r}")
    total = p.stat().st_size
    cut = (1.0 - d.val_fraction) * total

    def part(val: bool) -> Any:
        read = 0
        for chunk in iter_text_file(p, format=d.format, text_key=d.text_key):
            size = len(chunk.encode("utf-8", "surrogatepass"))
            if d.val_fraction > 0 and read < cut < read + size:  # the chunk the cut falls in
                i = int(len(chunk) * (cut - read) / size)
                j = chunk.find(" ", i)
                i = j + 1 if 0 <= j < i + 64 else i  # at a word boundary where one is near
                head, tail = chunk[:i], chunk[i:]
            elif d.val_fraction > 0 and read >= cut:
                head, tail = "", chunk
            else:
                head, tail = chunk, ""
            read += size
            piece = tail if val else head
            if piece:
                yield piece

    return (lambda: part(False)), (lambda: part(True))


def _write_ids(path: Path, chunks: Any, tok: Any, dtype: Any) -> tuple[int, str]:
    h, n = hashlib.sha256(), 0
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        for chunk in chunks:
            ids = np.asarray(tok.encode(chunk), dtype=dtype)
            fh.write(ids.tobytes())
            h.update(ids.tobytes())
            n += len(ids)
    return n, h.hexdigest()


def prepare_data(run: RunConfig, out: Path, tokenizer: Any | None = None) -> dict[str, Any]:
    """Build the tokenizer (unless given) and write ``OUT/data`` (module docstring);
    returns ``{"tokenizer", "counts", "sha256"}``."""
    from hybrid.tokenizer import BPETokenizer, ByteTokenizer

    train_text, val_text = _texts(run)
    if tokenizer is None:
        tokenizer = (ByteTokenizer() if run.data.tokenizer == "byte" else
                     BPETokenizer.train(train_text(), vocab_size=run.data.vocab_size))
    folder = out / "data"
    folder.mkdir(parents=True, exist_ok=True)
    dtype = np.uint16 if tokenizer.vocab_size <= 1 << 16 else np.uint32
    counts, sums = {}, {}
    for name, chunks in (("train", train_text()), ("val", val_text())):
        counts[name], sums[name] = _write_ids(folder / f"{name}.bin", chunks, tokenizer, dtype)
    atomic_write_text(folder / "tokenizer.json", tokenizer.to_json())
    atomic_write_text(folder / "meta.json", json.dumps(
        {"dtype": np.dtype(dtype).name, "counts": counts, "sha256": sums}) + "\n")
    return {"tokenizer": tokenizer, "counts": counts, "sha256": sums}


def open_data(out: Path) -> dict[str, Any]:
    """The prepared arrays, memory-mapped: ``{"train", "val", "meta"}`` (``val`` is
    ``None`` when empty)."""
    folder = out / "data"
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    arrays = {}
    for name in ("train", "val"):
        n = meta["counts"][name]
        arrays[name] = (np.memmap(folder / f"{name}.bin", dtype=meta["dtype"], mode="r",
                                  shape=(n,)) if n else None)
    return {**arrays, "meta": meta}


__all__ = ["DataConfig", "RunConfig", "build_model_config", "load_run_config", "open_data",
           "prepare_data"]
