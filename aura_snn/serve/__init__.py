"""Networks as long-running services (``aura-snn serve``, issue 14).

* :mod:`.network`: a network file whose input regions are streams;
* :mod:`.brain`: the brain actor: input streams, the clock, published output, snapshots;
* :mod:`.state_dir`: the ``--state`` folder (complete snapshots, manifest last, wipe);
* :mod:`.http`: the localhost JSON endpoint; :mod:`.client`: the Python client;
* :mod:`.app`: :class:`Service`, the whole thing (Ray, HTTP, periodic snapshots).

Names load on first use (PEP 562), so importing this package imports neither Ray nor
torch; :class:`Client` needs only numpy and the standard library.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {"Client": "client", "Output": "client", "ServiceError": "client",
          "ServiceUnreachableError": "client", "Service": "app", "Brain": "brain",
          "load_network": "network", "wipe": "state_dir", "read_manifest": "state_dir"}


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_NAMES)
