"""Numba's cache is dropped when a file the kernel inlines changes (regression: edits of
``functional/surrogate.py`` or ``kernels/family.py`` ran stale compiled kernels)."""

from __future__ import annotations

from pathlib import Path

from aura_snn.kernels._numba_cache import invalidate_if_changed


def _fake_cache(folder: Path) -> list[Path]:
    cache = folder / "__pycache__"
    cache.mkdir(exist_ok=True)
    files = [cache / "kern.step-12.py311.nbi", cache / "kern.step-12.py311.1.nbc"]
    for f in files:
        f.write_bytes(b"compiled")
    (cache / "other.step-3.py311.nbi").write_bytes(b"someone else's")
    return files


def test_cache_is_dropped_only_when_a_dependency_changes(tmp_path: Path) -> None:
    mod, dep = tmp_path / "kern.py", tmp_path / "family.py"
    mod.write_text("def step(): ...\n")
    dep.write_text("def update(x): return x\n")
    files = _fake_cache(tmp_path)
    assert invalidate_if_changed(str(mod), [str(dep)])          # no stamp yet: drop
    assert not any(f.exists() for f in files)
    assert (tmp_path / "__pycache__" / "other.step-3.py311.nbi").exists()
    files = _fake_cache(tmp_path)
    assert not invalidate_if_changed(str(mod), [str(dep)])      # unchanged: keep
    assert all(f.exists() for f in files)
    dep.write_text("def update(x): return -x\n")                 # an inlined file changed
    assert invalidate_if_changed(str(mod), [str(dep)])
    assert not any(f.exists() for f in files)


def test_the_kernel_modules_register_what_they_inline() -> None:
    import aura_snn.graph._kernels as engine_kernels
    import aura_snn.kernels.cpu as cpu

    for module in (cpu, engine_kernels):
        stamp = Path(module.__file__).parent / "__pycache__" / \
            f"{Path(module.__file__).stem}.aura-deps"
        assert stamp.exists(), module.__name__
