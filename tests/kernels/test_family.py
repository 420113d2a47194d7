"""The family's per-neuron step (aura_snn.kernels.family), run as plain Python on floats,
reproduces every compiled model's torch ``step`` bit for bit, for every reset mode and
timing; the same functions are what the fused kernels and the engine compile."""

from __future__ import annotations

import itertools

import pytest
import torch

from aura_snn.functional import registry
from aura_snn.functional.firing import RESET_CODE
from aura_snn.kernels import family

DT = 1e-4
F64 = torch.float64


def _run_family(spec: registry.ModelSpec, p: object, x: torch.Tensor) -> tuple:
    """``x [T, R, n]`` through ``family.receptor``/``family.neuron`` one neuron at a
    time with Python floats; returns spikes ``[T, n]`` and the final state fields."""
    fam = spec.compile(p, DT)
    T, R, n = x.shape
    roles = spec.roles

    def at(c: object, j: int) -> float:
        return float(c[j]) if isinstance(c, torch.Tensor) and c.numel() > 1 else float(c)

    v0 = torch.zeros(n, dtype=F64) + p.v_leak
    v = [float(a) for a in v0]
    cur = [[0.0] * n for _ in range(R)]
    ref = [0] * n
    bt = [0.0] * n
    spikes = torch.zeros(T, n, dtype=F64)
    for t in range(T):
        for j in range(n):
            drive = 0.0
            for r, (k, b, c) in enumerate(fam.receptors):
                ie, cur[r][j] = family.receptor(cur[r][j], float(x[t, r, j]), at(b, j),
                                                at(c, j), fam.late, 0.0)
                drive = at(k, j) * ie if r == 0 else drive + at(k, j) * ie
            v[j], ref[j], bt[j], s, _ = family.neuron(
                v[j], ref[j], bt[j], drive, at(fam.a_m, j), at(fam.v_leak, j),
                at(fam.threshold, j), at(fam.v_reset, j), at(fam.a_adapt, j), at(fam.beta, j),
                fam.n_ref, fam.reset, fam.next_step, "b" in roles, "ref" in roles, 0.0, 1.0)
            spikes[t, j] = 1.0 if s else 0.0
    state = {roles["v"]: torch.tensor(v, dtype=F64)}
    if "i" in roles:
        i = torch.tensor(cur, dtype=F64)
        state[roles["i"]] = i if spec.multi_receptor else i[0]
    if "ref" in roles:
        state[roles["ref"]] = torch.tensor(ref, dtype=F64)
    if "b" in roles:
        state[roles["b"]] = torch.tensor(bt, dtype=F64)
    return spikes, state


def _lin(lo: float, hi: float, n: int = 6) -> torch.Tensor:
    return torch.linspace(lo, hi, n, dtype=F64)


CASES = [
    *(("lif", dict(threshold=0.5, tau_mem=_lin(2e-3, 8e-3), reset=r, reset_at=a, v_reset=-0.1))
      for r, a in itertools.product(RESET_CODE, ("spike", "next_step"))),
    *(("cuba", dict(threshold=0.2, tau_mem=5e-3, tau_syn=_lin(1e-3, 3e-3), order=o, reset=r,
                    reset_at=a)) for o, r, a in itertools.product(
        ("current_first", "voltage_first"), ("subtract", "zero"), ("spike", "next_step"))),
    *(("alif", dict(threshold=_lin(0.3, 0.6), tau_mem=5e-3, tau_adapt=20e-3, beta=0.3, reset=r))
      for r in RESET_CODE),
    ("cuba_refractory", dict(refractory=1e-3, threshold=_lin(-0.051, -0.049))),
    ("cuba_refractory", dict(refractory=0.0, reset="subtract", tau_syn=(5e-3, 10e-3, 2e-3),
                             receptors=("a", "b", "c"))),
]


@pytest.mark.parametrize(("name", "kw"), CASES, ids=[f"{n}-{k}" for k, (n, _) in
                                                     enumerate(CASES)])
def test_family_step_reproduces_each_model_step(name: str, kw: dict) -> None:
    spec = registry.get(name)
    p = spec.parameters(**kw)
    R = len(spec.receptors(p))
    T, n = 200, 6
    g = torch.Generator().manual_seed(1)
    scale = {"cuba_refractory": 4e-3, "lif": 2.0, "alif": 2.0}.get(name, 0.5)
    x = torch.rand(T, R, n, generator=g, dtype=F64) * scale
    if name == "cuba_refractory":
        x[:, 1] *= -0.5
    state, ours = None, []
    for t in range(T):
        xt = x[t][:, None] if spec.multi_receptor else x[t, 0][None]
        s, state = spec.step(xt, state, p, DT)
        ours.append(s[0])
    spikes, fam_state = _run_family(spec, p, x)
    assert spikes.sum() > 5
    assert torch.equal(torch.stack(ours), spikes)
    for f, value in fam_state.items():
        ref = getattr(state, f)
        ref = ref[:, 0] if (spec.multi_receptor and f == spec.roles.get("i")) else ref[0]
        assert torch.equal(ref, value), f


def test_reset_codes_are_firings() -> None:
    assert (family.SUBTRACT, family.ZERO, family.NONE) == (
        RESET_CODE["subtract"], RESET_CODE["zero"], RESET_CODE["none"])
    fam = registry.get("lif").compile(registry.get("lif").parameters(reset="zero"), DT)
    assert fam.reset == RESET_CODE["zero"]
