"""Training logs: one CSV row per optimizer step, and TensorBoard scalars when
``torch.utils.tensorboard`` can be imported.

Every row is written with one ``write`` of a complete line and flushed, so a run killed
at any point leaves a CSV that parses (at worst without the step in progress). The
header is fixed by the first row (its FFN firing-rate columns included). A resumed run
first drops the rows after the checkpoint it resumes from, rewriting the file
atomically, so the log holds each step once.
"""

from __future__ import annotations

import csv
import io
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aura_snn._io import atomic_write_text

BASE_COLUMNS = ("step", "tokens", "loss", "ppl", "lr", "grad_norm", "tokens_per_s",
                "elapsed_s", "val_loss", "val_ppl")


def perplexity(loss: float) -> float:
    r"""Perplexity :math:`e^{\mathcal{L}}` of a mean next-token cross-entropy
    :math:`\mathcal{L}` (nats per token); ``inf`` past float range."""
    return math.exp(loss) if loss < 709.0 else math.inf


def _line(values: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue()


def read_log(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """Rows of a training CSV (complete lines only: a line cut by a kill is dropped)."""
    p = Path(path)
    if not p.is_file():
        return []
    text = p.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text = text[:text.rfind("\n") + 1]
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return []
    header = rows[0]
    return [dict(zip(header, r, strict=True)) for r in rows[1:] if len(r) == len(header)]


class TrainLog:
    """CSV (and optional TensorBoard) writer of one run in ``out_dir``."""

    def __init__(self, out_dir: str | os.PathLike[str], *, resume_step: int | None,
                 tensorboard: bool) -> None:
        self.path = Path(out_dir) / "train_log.csv"
        self.header: list[str] | None = None
        if resume_step is not None and self.path.exists():
            text = self.path.read_text(encoding="utf-8")
            first = next(csv.reader(io.StringIO(text)), None)
            kept = [r for r in read_log(self.path) if int(r["step"]) <= resume_step]
            if first:
                self.header = first
                atomic_write_text(self.path, "".join(
                    [_line(first)] + [_line([r[k] for k in first]) for r in kept]))
        self._fh = None
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as exc:
                warnings.warn(f"TensorBoard logging is off: {exc}", stacklevel=2)
            else:
                self._tb = SummaryWriter(str(Path(out_dir) / "tensorboard"))

    def write(self, row: Mapping[str, Any]) -> None:
        """Append one step's values (missing columns empty, new unknown columns
        dropped after the header is fixed)."""
        if self.header is None:
            rates = sorted(k for k in row if k not in BASE_COLUMNS)
            self.header = [*BASE_COLUMNS, *rates]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "w", encoding="utf-8") as fh:
                fh.write(_line(self.header))
        if self._fh is None:
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        cells = ["" if row.get(k) is None else repr(row[k]) if isinstance(row[k], float)
                 else str(row[k]) for k in self.header]
        self._fh.write(_line(cells))
        self._fh.flush()
        if self._tb is not None:
            step = int(row["step"])
            for k, v in row.items():
                if k not in ("step", "elapsed_s") and isinstance(v, (int, float)) and v is not None:
                    self._tb.add_scalar(k.replace(".", "/"), float(v), step)

    def close(self) -> None:
        """Flush and close the files."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None


__all__ = ["BASE_COLUMNS", "TrainLog", "perplexity", "read_log"]
