"""Reading records from files into an :class:`~aura_snn.memory.store.EpisodicMemory`.

Both readers work in three passes: parse and validate every row, encode every valid
row with the caller's encoder, then write all of them with one
:meth:`~aura_snn.memory.store.EpisodicMemory.write` (which is itself all-or-nothing).
Malformed rows are never dropped silently: each is listed (1-based physical line
number and reason) in the returned :class:`IngestReport` and announced through a
:class:`MalformedRowsWarning`. What happens to the valid rows depends on
``on_malformed``:

* ``"reject"`` (default): nothing is written if any row is malformed;
* ``"skip"``: the valid rows are written, the malformed ones reported;
* ``"raise"``: :class:`~aura_snn.errors.InputValueError` (carrying the report as
  ``.report``), nothing written.

If the encoder raises, or returns a tensor of the wrong shape or with NaN/inf, the
error propagates (with a note naming the line) and the memory is unchanged.

Encoders: ``encoder(text) -> Tensor [dim]``, or with ``batched=True``
``encoder(list_of_texts) -> Tensor [n, dim]``. Values are encoded by ``value_encoder``
(default: ``encoder``) to ``[value_dim]``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .._checks import check_choice, check_int
from ..errors import InputValueError, ParameterError, ShapeError
from .store import EpisodicMemory

Encoder = Callable[[Any], torch.Tensor]


class MalformedRowsWarning(UserWarning):
    """Some rows of an ingested file were malformed (see the report for line numbers)."""


@dataclass(frozen=True)
class RowError:
    """A malformed row: its first physical line (1-based) and why it was rejected."""

    line: int
    message: str


@dataclass
class IngestReport:
    """What an ingestion read, wrote and rejected."""

    path: str
    rows: int  #: data rows read (blank lines and the CSV header not counted)
    written: int  #: memories written
    ids: torch.Tensor  #: ids of the memories written, int64
    errors: list[RowError] = field(default_factory=list)  #: malformed rows, in file order

    @property
    def malformed(self) -> int:
        return len(self.errors)

    @property
    def lines(self) -> list[int]:
        """Line numbers of the malformed rows."""
        return [e.line for e in self.errors]

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class _Row:
    line: int
    key: str
    value: str | list[float] | None
    metadata: dict[str, Any] | None
    importance: float = 1.0


def _json_safe(meta: dict[str, Any]) -> str | None:
    try:
        json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return f"metadata is not JSON-serialisable ({exc})"
    return None


def ingest_jsonl(path: str | Path, memory: EpisodicMemory, encoder: Encoder, *,
                 key_field: str = "text", value_field: str | None = None,
                 value_encoder: Encoder | None = None,
                 metadata_fields: Sequence[str] | None = None,
                 importance_field: str | None = None, batched: bool = False,
                 batch_size: int = 256, on_malformed: str = "reject") -> IngestReport:
    """Ingest a JSON-lines file: one object per line, ``record[key_field]`` is the key text.

    ``value_field`` (needs ``memory.value_dim > 0``): a text (encoded) or a list of
    ``value_dim`` numbers. Metadata: the record itself, or only ``metadata_fields``.
    ``importance_field``: a number >= 0 (default importance 1). Blank lines are skipped.
    """
    check_choice("on_malformed", on_malformed, ("reject", "skip", "raise"))
    if value_field is not None and memory.value_dim == 0:
        raise ParameterError(f"value_field={value_field!r} needs a memory with value_dim > 0")
    rows: list[_Row] = []
    errors: list[RowError] = []
    data = Path(path).read_bytes()
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            errors.append(RowError(lineno, "not valid UTF-8"))
            continue
        except json.JSONDecodeError as exc:
            errors.append(RowError(lineno, f"invalid JSON ({exc.msg} at column {exc.colno})"))
            continue
        msg = _check_record(rec, key_field, value_field, importance_field, memory.value_dim)
        if msg is None:
            meta = rec if metadata_fields is None else {
                f: rec[f] for f in metadata_fields if f in rec}
            msg = _json_safe(meta)
        if msg is not None:
            errors.append(RowError(lineno, msg))
            continue
        imp = 1.0 if importance_field is None else float(rec.get(importance_field, 1.0))
        rows.append(_Row(lineno, rec[key_field],
                         None if value_field is None else rec[value_field], meta, imp))
    return _finish(str(path), memory, rows, errors, encoder, value_encoder, batched,
                   batch_size, on_malformed)


def _check_record(rec: Any, key_field: str, value_field: str | None,
                  importance_field: str | None, value_dim: int) -> str | None:
    if not isinstance(rec, dict):
        return f"expected a JSON object, got {type(rec).__name__}"
    key = rec.get(key_field)
    if not isinstance(key, str) or not key.strip():
        return f"field {key_field!r} must be a non-empty string, got {key!r}"
    if value_field is not None:
        v = rec.get(value_field)
        if isinstance(v, list):
            if len(v) != value_dim or not all(
                    isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a)
                    for a in v):
                return f"field {value_field!r} must be a text or {value_dim} finite numbers"
        elif not isinstance(v, str) or not v.strip():
            return f"field {value_field!r} must be a non-empty string or a list of numbers"
    if importance_field is not None and importance_field in rec:
        w = rec[importance_field]
        if (isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w)
                or w < 0):
            return f"field {importance_field!r} must be a number >= 0, got {w!r}"
    return None


def ingest_csv_pairs(path: str | Path, memory: EpisodicMemory, encoder: Encoder, *,
                     header: bool = True, key_column: int | str = 0,
                     value_column: int | str = 1, value_encoder: Encoder | None = None,
                     delimiter: str = ",", batched: bool = False, batch_size: int = 256,
                     on_malformed: str = "reject") -> IngestReport:
    """Ingest a CSV of (key text, value text) pairs, e.g. cue and target.

    Each row must have as many fields as the header (or, without a header, as the first
    row). The key text is encoded as the key; the value text is encoded as the value
    when ``memory.value_dim > 0``. Metadata: the row as ``{column: text}`` (columns
    named by the header, else ``"key"`` and ``"value"``).
    """
    check_choice("on_malformed", on_malformed, ("reject", "skip", "raise"))
    text = Path(path).read_bytes().decode("utf-8", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[_Row] = []
    errors: list[RowError] = []
    names: list[str] | None = None
    width: int | None = None
    prev = 0
    while True:
        try:
            rec = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(RowError(prev + 1, f"CSV syntax error ({exc}) in lines "
                                             f"{prev + 1}-{reader.line_num}"))
            prev = reader.line_num
            continue
        line, prev = prev + 1, reader.line_num
        if not rec or all(not f.strip() for f in rec):
            continue
        if any("\udc80" <= ch <= "\udcff" for f in rec for ch in f):
            errors.append(RowError(line, "not valid UTF-8"))
            continue
        if header and names is None:
            names = rec
            width = len(rec)
            ki, vi = _column(key_column, names, "key_column"), _column(value_column, names,
                                                                      "value_column")
            continue
        if width is None:
            width = len(rec)
            ki, vi = _column(key_column, None, "key_column"), _column(value_column, None,
                                                                     "value_column")
            if max(ki, vi) >= width:
                raise ParameterError(f"key_column={key_column!r} and value_column="
                                     f"{value_column!r} must lie below the {width} fields "
                                     f"of the first row")
        if len(rec) != width:
            errors.append(RowError(line, f"expected {width} fields, got {len(rec)}"))
            continue
        key, value = rec[ki], rec[vi]
        if not key.strip() or not value.strip():
            errors.append(RowError(line, "key and value texts must be non-empty"))
            continue
        meta = dict(zip(names, rec, strict=True)) if names else {"key": key, "value": value}
        rows.append(_Row(line, key, value if memory.value_dim else None, meta))
    return _finish(str(path), memory, rows, errors, encoder, value_encoder, batched,
                   batch_size, on_malformed)


def _column(col: int | str, names: list[str] | None, param: str) -> int:
    if isinstance(col, str):
        if names is None or col not in names:
            raise ParameterError(f"{param}={col!r} is not a column name; allowed: "
                                 f"{names if names else 'integer positions (no header)'}")
        return names.index(col)
    i = check_int(param, col, minimum=0)
    if names is not None and i >= len(names):
        raise ParameterError(f"{param}={i} must be < the {len(names)} header columns")
    return i


def _encode(texts: list[str], lines: list[int], enc: Encoder, dim: int, batched: bool,
            batch_size: int, what: str, path: str, device: torch.device) -> torch.Tensor:
    """Encode ``texts`` to ``[n, dim]``, checking every output; errors name the line."""
    out: list[torch.Tensor] = []
    step = batch_size if batched else 1
    for s in range(0, len(texts), step):
        chunk = texts[s:s + step]
        try:
            y = enc(chunk) if batched else enc(chunk[0])
        except Exception as exc:
            exc.add_note(f"while encoding the {what} of {path} line {lines[s]}; "
                         f"nothing was written")
            raise
        if not isinstance(y, torch.Tensor) or not y.is_floating_point():
            raise InputValueError(f"{what} encoder must return a floating tensor for {path} "
                                  f"line {lines[s]}, got {type(y).__name__}; nothing was written")
        expected = (len(chunk), dim) if batched else (dim,)
        if tuple(y.shape) != expected:
            raise ShapeError(f"{what} encoder returned shape {tuple(y.shape)} for {path} line "
                             f"{lines[s]}, expected {list(expected)}; nothing was written")
        if not bool(torch.isfinite(y).all()):
            raise InputValueError(f"{what} encoder returned NaN or inf for {path} line "
                                  f"{lines[s]}; nothing was written")
        out.append(y.detach().to(device).reshape(-1, dim))
    return torch.cat(out) if out else torch.empty(0, dim, device=device)


def _finish(path: str, memory: EpisodicMemory, rows: list[_Row], errors: list[RowError],
            encoder: Encoder, value_encoder: Encoder | None, batched: bool, batch_size: int,
            on_malformed: str) -> IngestReport:
    batch_size = check_int("batch_size", batch_size, minimum=1)
    n_rows = len(rows) + len(errors)
    report = IngestReport(path, n_rows, 0, torch.empty(0, dtype=torch.long), errors)
    if errors:
        shown = ", ".join(str(e.line) for e in errors[:20]) + (" ..." if len(errors) > 20 else "")
        fate = ("the other rows were written" if on_malformed == "skip" and rows
                else "nothing was written")
        warnings.warn(f"{path}: {len(errors)} malformed row(s) at line(s) {shown}; {fate}",
                      MalformedRowsWarning, stacklevel=3)
        if on_malformed == "raise":
            exc = InputValueError(f"{path}: {len(errors)} malformed row(s) at line(s) {shown} "
                                  f"(first: {errors[0].message}); nothing was written")
            exc.report = report  # type: ignore[attr-defined]
            raise exc
        if on_malformed == "reject":
            return report
    if not rows:
        return report
    lines = [r.line for r in rows]
    keys = _encode([r.key for r in rows], lines, encoder, memory.dim, batched, batch_size,
                   "key", path, memory.device)
    values = None
    if memory.value_dim:
        if any(r.value is None for r in rows):
            raise ParameterError(f"memory has value_dim={memory.value_dim}: give a value "
                                 f"column/field to ingest into it")
        values = torch.zeros(len(rows), memory.value_dim, dtype=memory.value_dtype,
                             device=memory.device)
        texts = [(i, r.value) for i, r in enumerate(rows) if isinstance(r.value, str)]
        for i, r in enumerate(rows):
            if isinstance(r.value, list):
                values[i] = torch.tensor(r.value, dtype=memory.value_dtype, device=memory.device)
        if texts:
            enc_v = _encode([t for _, t in texts], [lines[i] for i, _ in texts],
                            value_encoder or encoder, memory.value_dim, batched, batch_size,
                            "value", path, memory.device)
            at = torch.tensor([i for i, _ in texts], device=memory.device)
            values[at] = enc_v.to(memory.value_dtype)
    ids = memory.write(keys, values, [r.metadata for r in rows],
                       importance=torch.tensor([r.importance for r in rows], dtype=torch.float64))
    report.written, report.ids = len(rows), ids
    return report
