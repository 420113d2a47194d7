r"""NIR (Neuromorphic Intermediate Representation) export and import.

* :func:`to_nir` — a stack of layers and :mod:`aura_snn.neurons` modules (an
  ``nn.Sequential``, e.g. the ``aura-snn demo`` classifier), or an
  :class:`aura_snn.graph.Graph`, as a ``nir.NIRGraph`` (:mod:`.export`,
  :mod:`.export_graph`).
* :func:`from_nir` — a ``nir.NIRGraph`` or NIR file as a module running our neuron
  kernels on time-major ``[T, B, ...]`` input (:mod:`.imports`, :mod:`.executor`).
* :func:`write` / :func:`read` — HDF5 files through the ``nir`` package, written
  atomically; reading reports a bad node by name (:mod:`.reading`).

The conventions (``dt``, tau vs decay, ``r``, ``w_in``, ``v_leak``, ``v_reset``, reset
timing) are tabulated in :mod:`.conventions`. The ``nir`` package is an optional
peer: ``pip install aura-snn[peers]``.
"""

from __future__ import annotations

from aura_snn._lazy import lazy_exports

_EXPORTS = {"to_nir": "export", "from_nir": "imports", "read": "files", "write": "files",
            "NIRModule": "executor"}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
