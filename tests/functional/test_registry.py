"""The model registry: one spec per model, read by regions, network files and the engine.

Oracles: the compiled family's update is written out here in numpy from
:class:`~aura_snn.functional.registry.CompiledFamily`'s docstring (not calling our
kernels), and each model's ``compile`` adapter must make it reproduce that model's
``step`` spike for spike; units are checked against the dataclass fields.
"""

from __future__ import annotations

import dataclasses
import sys
import types

import numpy as np
import pytest
import torch

from aura_snn.errors import ParameterError
from aura_snn.functional import registry
from aura_snn.functional.firing import RESET_CODE

DT = 1e-4


def test_the_four_models_are_registered_with_units_for_every_number() -> None:
    specs = registry.models()
    assert {"lif", "cuba", "alif", "cuba_refractory"} <= set(specs)
    for spec in specs.values():
        numeric = {f.name for f in dataclasses.fields(spec.parameters)
                   if f.type in ("Scalar", "float", "float | None", "tuple[Scalar, ...]")}
        assert numeric <= set(spec.units), (spec.name, numeric - set(spec.units))
        assert set(spec.state._fields) == set(spec.state_units)
        assert set(spec.roles.values()) <= set(spec.state._fields)
    assert registry.get("cuba_refractory").dimension("refractory") == "time"
    assert registry.get("lif").dimension("threshold") == "voltage"
    with pytest.raises(ParameterError, match="neuron model must be one of 'alif'|'lif'"):
        registry.get("no_such_model")


def _family_run(fam: registry.CompiledFamily, x: np.ndarray) -> np.ndarray:
    """The family update of the CompiledFamily docstring, written out in numpy:
    x [T, R, n] -> spikes [T, n]."""
    T, R, n = x.shape
    v = np.full(n, float(fam.v_leak))
    i = np.zeros((R, n))
    b = np.zeros(n)
    ref = np.zeros(n)
    th0 = float(fam.threshold)
    out = np.zeros((T, n))
    for t in range(T):
        drive = np.zeros(n)
        i_hat = np.zeros((R, n))
        for r, (k, b_r, _c) in enumerate(fam.receptors):
            i_hat[r] = b_r * i[r] + (0.0 if fam.late else 1.0) * x[t, r]
            drive = drive + k * i_hat[r]
        for r, (_, _, c_r) in enumerate(fam.receptors):
            i[r] = c_r * i_hat[r] + (1.0 if fam.late else 0.0) * x[t, r]
        b_dec = fam.a_adapt * b
        theta = th0 + fam.beta * b_dec
        c = np.maximum(ref - 1, 0)
        free = c == 0
        u = np.where(free, fam.v_leak + fam.a_m * (v - fam.v_leak) + drive, v)
        s = free & (u - theta > 0)
        if fam.reset == RESET_CODE["subtract"]:
            v = np.where(s, u - theta, u)
        elif fam.reset == RESET_CODE["zero"]:
            v = np.where(s, fam.v_reset, u)
        else:
            v = u
        ref = np.where(s, fam.n_ref, c)
        b = b_dec + s
        out[t] = s
    return out


CASES = {
    "lif": dict(threshold=0.5, tau_mem=5e-3),
    "cuba": dict(threshold=0.2, tau_mem=5e-3, tau_syn=2e-3),
    "cuba_vf": dict(threshold=0.2, tau_mem=5e-3, tau_syn=2e-3, order="voltage_first"),
    "alif": dict(threshold=0.5, tau_mem=5e-3, tau_adapt=20e-3, beta=0.3),
    "cuba_refractory": dict(refractory=2e-3, threshold=-50e-3),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_compile_adapter_reproduces_its_model_step(case: str) -> None:
    name = "cuba" if case == "cuba_vf" else case
    spec = registry.get(name)
    p = spec.parameters(**CASES[case])
    R = len(spec.receptors(p))
    T, n = 400, 16
    g = torch.Generator().manual_seed(3)
    scale = {"cuba_refractory": 4e-3, "lif": 2.0, "alif": 2.0}.get(name, 0.5)
    x = torch.rand(T, R, n, generator=g, dtype=torch.float64) * scale
    if name == "cuba_refractory":
        x[:, 1] *= -0.5                        # the inhibitory receptor
    state, ours = None, []
    for t in range(T):
        xt = x[t][:, None] if spec.multi_receptor else x[t, 0][None]
        s, state = spec.step(xt, state, p, DT)
        ours.append(s[0].numpy())
    ref = _family_run(spec.compile(p, DT), x.numpy())
    assert ref.sum() > 20
    np.testing.assert_array_equal(np.stack(ours), ref)


def test_a_new_model_is_one_file(tmp_path: object) -> None:
    """A model written in one module (its parameters, state, step and SPEC), registered,
    runs as a graph region by name."""
    from typing import NamedTuple

    from aura_snn.graph import Graph, InputRegion, SpikingRegion

    mod = types.ModuleType("aura_snn_test_model")

    @dataclasses.dataclass(frozen=True)
    class Params:
        gain: float = 2.0

        def validate(self, dt: float) -> None:
            pass

    class State(NamedTuple):
        v: torch.Tensor

    def initial_state(x: torch.Tensor, p: Params) -> State:
        return State(torch.zeros_like(x))

    def step(x: torch.Tensor, state: State | None, p: Params, dt: float):  # noqa: ANN202
        v = (state or initial_state(x, p)).v + p.gain * x
        s = (v > 1.0).to(x.dtype)
        return s, State(v - s)

    mod.step, mod.initial_state = step, initial_state
    sys.modules[mod.__name__] = mod
    try:
        registry.register(registry.ModelSpec(
            name="doubler", module=mod, parameters=Params, state=State,
            units={"gain": ""}, state_units={"v": "V"}))
        g = Graph(dt=1e-3).double()
        g.add(InputRegion("in", 1))
        g.add(SpikingRegion("E", 1, "doubler"))
        g.connect("in", "E", torch.ones(1, 1, dtype=torch.float64))
        x = torch.full((6, 1, 1), 0.25, dtype=torch.float64)
        r = g.run(6, inputs={"in": x}, record=["E"])
        # v gains 0.5 per step from step 1 on: 0.5, 1.0, 1.5 -> spike (0.5), 1.0, 1.5 -> spike
        assert r.outputs["E"][:, 0, 0].tolist() == [0, 0, 0, 1, 0, 1]
        assert "doubler" in g.engine_reason()
    finally:
        registry._MODELS.pop("doubler", None)
        del sys.modules[mod.__name__]
