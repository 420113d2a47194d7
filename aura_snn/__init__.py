"""aura-snn: spiking regions, hybrid ANN-SNN training, neuromorphic export and energy.

The core package. It knows nothing of transformers, plasticity rules or hardware
targets (see ``shared/DESIGN.md``); ``neuromodulation``, ``hybrid`` and ``hardware``
build on it.
"""

from __future__ import annotations

__version__ = "0.1.0"

import importlib as _importlib  # noqa: E402
from typing import Any as _Any  # noqa: E402

# Names resolve on first use (PEP 562): `aura-snn --help` and the numpy-only parts of
# the graph package start without importing torch and numba.
_LAZY = {
    "LIF": "neurons", "CubaLIF": "neurons", "ALIF": "neurons", "detach_state": "neurons",
}
_SUBMODULES = ("cells", "functional", "graph", "kernels", "memory", "metrics", "neurons",
               "plot", "tasks")

__all__ = ["ALIF", "LIF", "CubaLIF", "detach_state", *_SUBMODULES]


def __getattr__(name: str) -> _Any:
    if name in _LAZY:
        value = getattr(_importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = _importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
