"""Import Intel Lava (lava-nc 0.10.0) on Python 3.11.

lava-nc 0.10.0, the last release, declares Python < 3.11. On 3.11 exactly one thing
breaks: ``lava/magma/compiler/var_model.py`` uses an instance of the dataclass
``ByteEncoder`` as a field default, and Python 3.11's ``dataclasses`` rejects
unhashable defaults ("mutable default ... use default_factory"). Declaring
``ByteEncoder`` with ``unsafe_hash=True`` is the whole fix.

:func:`import_lava` applies that fix while the module is first imported, by wrapping
``dataclasses.dataclass`` for that one class only; site-packages is never edited and
every other dataclass is created exactly as before.

Lava's message infrastructure also calls ``multiprocessing.set_start_method('fork')``
when it is imported, which raises "context has already been set" in a process where
anything chose a start method first (hypothesis does, for one of its checks). Lava's
runtime needs ``fork``, so :func:`import_lava` imports that module with
``set_start_method`` allowed to replace an earlier choice (it is a no-op when the
method already is ``fork``). Install Lava with
``make setup`` (it runs ``pip install --no-deps --ignore-requires-python
lava-nc==0.10.0`` after the ``[lava]`` extra's real dependencies).
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from types import ModuleType
from typing import Any

from aura_snn.errors import MissingExtraError

_TARGET_MODULE = "lava.magma.compiler.var_model"
_TARGET_CLASS = "ByteEncoder"
_MP_MODULE = "lava.magma.runtime.message_infrastructure.multiprocessing"


def _patched_dataclass(original: Any) -> Any:
    def dataclass(cls: type | None = None, /, **kwargs: Any) -> Any:
        def wrap(c: type) -> type:
            if c.__module__ == _TARGET_MODULE and c.__name__ == _TARGET_CLASS:
                return original(c, **{**kwargs, "unsafe_hash": True})
            return original(c, **kwargs)

        return wrap if cls is None else wrap(cls)

    return dataclass


def import_lava() -> ModuleType:
    """Import ``lava`` (with the Python 3.11 fix) and return the package.

    Raises :class:`~aura_snn.errors.MissingExtraError` naming the install command if
    lava-nc is not installed.
    """
    if _TARGET_MODULE not in sys.modules:
        original = dataclasses.dataclass
        dataclasses.dataclass = _patched_dataclass(original)
        try:
            importlib.import_module(_TARGET_MODULE)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.split(".")[0] == "lava":
                raise MissingExtraError(
                    "lava-nc is not installed: pip install 'aura-snn[lava]' then "
                    "pip install --no-deps --ignore-requires-python lava-nc==0.10.0 "
                    "(make setup does both)") from exc
            raise
        finally:
            dataclasses.dataclass = original
    if _MP_MODULE not in sys.modules:
        import multiprocessing as mp

        set_start = mp.set_start_method

        def set_start_method(method: str, force: bool = False) -> None:
            if mp.get_start_method(allow_none=True) != method:
                set_start(method, force=True)

        mp.set_start_method = set_start_method
        try:
            importlib.import_module(_MP_MODULE)
        finally:
            mp.set_start_method = set_start
    return importlib.import_module("lava")
