"""The IF model (:mod:`aura_snn.functional.integrate_fire`).

Oracles: the step count to the first spike under constant input (analytic), and a
plain-Python loop of :math:`u = v + x`, :math:`S = [u > \\vartheta]`, reset, written
here from the module docstring.
"""

from __future__ import annotations

import math

import torch

from aura_snn.functional import integrate_fire as F
from aura_snn.functional import registry
from aura_snn.functional.loop import run


def test_constant_input_spikes_after_ceil_threshold_over_input_steps() -> None:
    p = F.IFParameters(threshold=1.0)
    x = torch.full((20, 1, 1), 0.3, dtype=torch.float64)
    s = run(F.step, x, None, p, 1e-3).spikes[:, 0, 0]
    first = int(torch.nonzero(s)[0])
    assert first + 1 == math.ceil(1.0 / 0.3 + 1e-12)  # 4 steps: 0.3, 0.6, 0.9, 1.2
    assert torch.equal(s.nonzero().flatten(), torch.tensor([3, 7, 11, 15, 19]))


def test_random_input_matches_a_plain_loop_and_the_spec_is_registered() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.rand(50, 2, 6, generator=g, dtype=torch.float64) * 0.6 - 0.1
    p = F.IFParameters(threshold=0.8, v_reset=-0.2)
    got = run(F.step, x, None, p, 1e-3).spikes
    v = [[0.0] * 6 for _ in range(2)]
    for t in range(50):
        for b in range(2):
            for n in range(6):
                u = v[b][n] + float(x[t, b, n])
                spk = u > 0.8
                v[b][n] = -0.2 if spk else u
                assert float(got[t, b, n]) == float(spk)
    spec = registry.get("if")
    fam = spec.compile(p, 1e-3)
    assert (fam.a_m, fam.v_leak, fam.receptors) == (1.0, 0.0, ((1.0, 0.0, 0.0),))
    assert spec.parameters is F.IFParameters
