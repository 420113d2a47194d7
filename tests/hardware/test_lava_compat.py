"""Lava 0.10 imports on Python 3.11 through our shim, and its LIF process runs in both
the floating-point and the bit-accurate fixed-point simulation of Loihi 2."""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("lava") is None,
                                reason="lava-nc not installed (make setup installs it)")


def test_shim_patches_only_byte_encoder_and_restores_dataclass() -> None:
    from hardware.lava_compat import import_lava

    before = dataclasses.dataclass
    import_lava()
    assert dataclasses.dataclass is before
    from lava.magma.compiler.var_model import ByteEncoder, LoihiAddress

    assert ByteEncoder.__hash__ is not None  # the fix
    assert ByteEncoder(1, 2, 3) == ByteEncoder(1, 2, 3)
    assert LoihiAddress.__hash__ is None  # other dataclasses untouched (eq=True, unhashable)


@pytest.mark.parametrize("tag", ["floating_pt", "fixed_pt"])
def test_lava_lif_runs_in_simulation(tag: str) -> None:
    from hardware.lava_compat import import_lava

    import_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor

    steps = 40
    if tag == "floating_pt":
        lif = LIF(shape=(3,), du=0.0, dv=0.1, bias_mant=np.array([0.0, 0.15, 0.3]), vth=1.0)
    else:  # 12-bit decays, integer bias and threshold (mantissa of vth << 6)
        lif = LIF(shape=(3,), du=0, dv=409, bias_mant=np.array([0, 2, 4]), bias_exp=6,
                  vth=10)
    mon = Monitor()
    mon.probe(lif.s_out, steps)
    try:
        lif.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag=tag))
        spikes = mon.get_data()[lif.name]["s_out"]
    finally:
        lif.stop()
    counts = np.asarray(spikes).sum(0)
    assert counts[0] == 0  # no bias, no spikes
    assert 0 < counts[1] < counts[2]  # more drive, more spikes


def test_lava_imports_after_another_start_method_was_chosen() -> None:
    """Regression: Lava's import calls set_start_method('fork') and raised "context has
    already been set" after hypothesis (in the same xdist worker) had chosen 'spawn'."""
    import subprocess
    import sys

    code = ("import multiprocessing as mp; mp.set_start_method('spawn'); "
            "from hardware.lava_compat import import_lava; import_lava(); "
            "import lava.magma.runtime.message_infrastructure.multiprocessing; "
            "print(mp.get_start_method())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=str(__import__("pathlib").Path(__file__).parents[2]))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "fork"
