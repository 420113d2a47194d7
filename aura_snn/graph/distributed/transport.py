r"""Shipping a worker's part of a run to its actor without pickling tensor storage.

Ray moves NumPy arrays through its shared-memory object store as out-of-band buffers
(no copy into the pickle, zero-copy reads on the same node), but a torch tensor is
pickled with its storage serialised into the pickle stream, which for the 80 million
synapses of a 1M-neuron CUBA network is most of the cost of starting a run (copy
into a byte string, into the object store, out again, and a parse). :class:`Shipped`
pickles an object with every large strided CPU tensor replaced by a reference to its
storage, held as a NumPy ``uint8`` array beside the pickle; :meth:`Shipped.load`
copies each storage once (so tensors stay writable and independent of the store) and
rebuilds the tensors as views of it: tensors that shared a storage share it again, one
tensor object referenced twice is one object again, a ``Parameter`` is a ``Parameter``
with its ``requires_grad``. Everything else (small tensors, other layouts and
subclasses, Python objects) goes through the pickle as before. The pickle is made with
cloudpickle (what Ray uses), so it holds only what Ray would have sent anyway; it is
never read from a file.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch

MIN_BYTES = 1 << 16     # tensors of at least this many bytes of storage travel as arrays


def _cloudpickle() -> Any:
    from ray import cloudpickle

    return cloudpickle


def _shippable(obj: Any) -> bool:
    return (type(obj) in (torch.Tensor, torch.nn.Parameter) and obj.layout == torch.strided
            and obj.device.type == "cpu" and not obj.is_quantized and not obj.is_conj()
            and not obj.is_neg() and obj.untyped_storage().nbytes() >= MIN_BYTES)


class Shipped:
    """``obj`` as a pickle with its large tensors' storages beside it (module docstring)."""

    def __init__(self, obj: Any) -> None:
        storages: dict[int, int] = {}
        arrays: list[np.ndarray] = []
        tensors: dict[int, int] = {}
        table: list[tuple[Any, ...]] = []
        keep: list[torch.Tensor] = []     # the tensors pickled, alive while ids are keys

        class _Pickler(_cloudpickle().CloudPickler):
            def persistent_id(self, o: Any) -> Any:   # noqa: ANN401 - pickle's protocol
                if not isinstance(o, torch.Tensor) or not _shippable(o):
                    return None
                k = tensors.get(id(o))
                if k is None:
                    st = o.untyped_storage()
                    s = storages.get(st.data_ptr())
                    if s is None:
                        s = storages[st.data_ptr()] = len(arrays)
                        base = torch.empty(0, dtype=torch.uint8)
                        base.set_(st, 0, (st.nbytes(),), (1,))
                        arrays.append(base.numpy())
                    k = tensors[id(o)] = len(table)
                    keep.append(o)
                    table.append((s, o.dtype, tuple(o.shape), o.stride(), o.storage_offset(),
                                  isinstance(o, torch.nn.Parameter), o.requires_grad))
                return k

        buf = io.BytesIO()
        _Pickler(buf, protocol=5).dump(obj)
        self.pickle = buf.getvalue()
        self.arrays = arrays
        self.table = table

    @property
    def nbytes(self) -> int:
        """Bytes of the pickle and the storages."""
        return len(self.pickle) + sum(a.nbytes for a in self.arrays)

    def load(self) -> Any:
        """The object, its tensors rebuilt on storages copied out of the arrays."""
        bases = [torch.from_numpy(np.array(a, copy=True)) for a in self.arrays]
        built: dict[int, torch.Tensor] = {}
        table = self.table

        class _Unpickler(_cloudpickle().pickle.Unpickler):
            def persistent_load(self, k: Any) -> Any:   # noqa: ANN401 - pickle's protocol
                if k not in built:
                    s, dtype, shape, stride, offset, param, grad = table[k]
                    t = bases[s].view(dtype).as_strided(shape, stride, offset)
                    built[k] = torch.nn.Parameter(t, requires_grad=grad) if param else \
                        t.requires_grad_(grad)
                return built[k]

        return _Unpickler(io.BytesIO(self.pickle)).load()


__all__ = ["MIN_BYTES", "Shipped"]
