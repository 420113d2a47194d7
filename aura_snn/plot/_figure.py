"""The one matplotlib setup, house style and figure-saving path of :mod:`aura_snn.plot`.

Every figure module gets pyplot from :func:`pyplot` (Agg backend, imported on first
use so that importing a figure module stays cheap), creates its figures with
:func:`new_figure` (the house style below, constrained layout) and writes files
through :func:`save_figure` (temporary file, then rename: a crash leaves the old file
or the new one, never half a PNG). numpy and torch are not imported here.

House style (:data:`STYLE`): 9 pt text, titles on the left, no top or right spines,
a light grid behind the data, legends without frames and outside the data, and one
colour-blind-safe palette (:data:`PALETTE`, Okabe & Ito 2008) in which the ``k``-th
region or projection of a run has the same colour in every figure
(:func:`region_color`). Axes say their unit in parentheses: ``time (ms)``,
``rate (Hz)``, ``weight (mV)``.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from typing import Any

from .._io import atomic_path

#: Okabe & Ito's colour-blind-safe palette (blue, vermillion, bluish green, reddish
#: purple, orange, sky blue, yellow, black).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442",
           "#000000")

#: matplotlib rc settings of every aura-snn figure.
STYLE: dict[str, Any] = {
    "font.size": 9, "axes.titlesize": 9.5, "axes.titlelocation": "left",
    "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
    "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.color": "0.9", "grid.linewidth": 0.6, "axes.axisbelow": True,
    "legend.frameon": False, "legend.fontsize": 8, "lines.linewidth": 1.0,
    "image.cmap": "viridis", "figure.facecolor": "white", "savefig.facecolor": "white",
}


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (no display needed).

    ``force=False``: a backend the caller has already chosen is kept if Agg cannot
    replace it.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def region_color(k: int) -> str:
    """Colour of the ``k``-th region (or projection) of a figure: :data:`PALETTE` in turn."""
    return PALETTE[k % len(PALETTE)]


@contextlib.contextmanager
def house_style() -> Iterator[Any]:
    """Context in which pyplot draws in :data:`STYLE`; yields pyplot. Artists take the
    style when they are created, so draw the whole figure inside it."""
    plt = pyplot()
    from cycler import cycler

    with plt.rc_context({**STYLE, "axes.prop_cycle": cycler(color=list(PALETTE))}):
        yield plt


def new_figure(nrows: int = 1, ncols: int = 1, *, width: float = 8.0,
               height: float = 3.0, **kw: Any) -> tuple[Any, Any]:
    """``plt.subplots`` in the house style with a constrained layout (call it inside
    :func:`house_style`); ``width``/``height`` in inches; returns ``(figure, axes)``."""
    plt = pyplot()
    return plt.subplots(nrows, ncols, figsize=(width, height), layout="constrained", **kw)


def nice_ceil(x: float) -> float:
    """The smallest of ``1, 2, 5 × 10^k`` that is ``>= x`` (``x > 0``): bin widths and
    window lengths people read at a glance."""
    if not (x > 0 and math.isfinite(x)):
        raise ValueError(f"x must be a finite number > 0, got {x!r}")
    e = math.floor(math.log10(x))
    for m in (1.0, 2.0, 5.0, 10.0):
        v = m * 10.0 ** e
        if v >= x * (1 - 1e-9):
            return float(f"{v:.12g}")
    return float(f"{10.0 ** (e + 1):.12g}")  # pragma: no cover - m = 10 always fits


def time_unit(span_s: float) -> tuple[str, float]:
    """``(unit, scale)`` for a time axis spanning ``span_s`` seconds: ms up to 2 s,
    else s; multiply seconds by ``scale``."""
    return ("ms", 1e3) if span_s <= 2.0 else ("s", 1.0)


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: int = 120) -> None:
    """Save a matplotlib figure to ``path`` atomically and close it.

    The format follows the extension (``.png`` when there is none); ``dpi`` is dots
    per inch; the bounding box is trimmed to the drawn content.
    """
    suffix = os.path.splitext(str(path))[1] or ".png"
    with atomic_path(path, suffix=suffix) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=suffix.lstrip("."))
    pyplot().close(fig)


__all__ = ["PALETTE", "STYLE", "house_style", "new_figure", "nice_ceil", "pyplot",
           "region_color", "save_figure", "time_unit"]
