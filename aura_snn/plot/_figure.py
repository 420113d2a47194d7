"""The one matplotlib setup and figure-saving path of :mod:`aura_snn.plot`.

Every figure module gets pyplot from :func:`pyplot` (Agg backend, imported on first
use so that importing a figure module stays cheap) and writes files through
:func:`save_figure` (temporary file, then rename: a crash leaves the old file or the
new one, never half a PNG). numpy and torch are not imported here.
"""

from __future__ import annotations

import os
from typing import Any

from .._io import atomic_path


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (no display needed).

    ``force=False``: a backend the caller has already chosen is kept if Agg cannot
    replace it.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: int = 120) -> None:
    """Save a matplotlib figure to ``path`` atomically and close it.

    The format follows the extension (``.png`` when there is none); ``dpi`` is dots
    per inch; the bounding box is trimmed to the drawn content.
    """
    suffix = os.path.splitext(str(path))[1] or ".png"
    with atomic_path(path, suffix=suffix) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=suffix.lstrip("."))
    pyplot().close(fig)


__all__ = ["pyplot", "save_figure"]
