"""Ours -> NIR file -> ours: the imported module spikes exactly as the original model.

Oracle: the original model's own forward (our neuron modules and torch layers), which
the NIR path does not use: the file holds only NIR nodes, rebuilt by
:func:`hardware.nir.from_nir` into different modules (gains, scales, delays).
Covers the ``aura-snn demo`` classifier (reset by subtraction, exported with the
documented ``"reset"`` approximation), a convolutional stack (Conv2d, AvgPool2d,
Flatten), CubaLIF in both orders, per-neuron time constants and thresholds, IF,
snnTorch-style next-step resets, and both integration conventions.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from aura_snn.errors import ParameterError
from aura_snn.neurons import LIF, CubaLIF
from aura_snn.tasks.digits import SpikingMLP
from hardware.nir import from_nir, read, to_nir, write
from hardware.nir.modules import IFNeuron, PerStep

pytest.importorskip("nir")
DT = 1e-3


def roundtrip(model: nn.Module, tmp_path, x: torch.Tensor, **kw) -> torch.Tensor:
    path = tmp_path / "m.nir"
    write(path, to_nir(model, **kw))
    integration = kw.get("integration", "euler")
    back = from_nir(read(path), integration=integration, dtype=torch.float64)
    assert back.metadata["dt"] == pytest.approx(DT)
    ref = model(x)
    assert 0.03 < float(ref.mean()) < 0.7            # spikes to compare
    got = back(x)
    assert torch.equal(got, ref)
    return ref


def test_demo_classifier_roundtrip_with_the_reset_approximation(tmp_path) -> None:
    torch.manual_seed(0)
    model = SpikingMLP(64, 32, 10, 20e-3, DT).double()
    with torch.no_grad():  # a trained-like operating point: both layers firing
        model.fc1.weight.copy_(torch.randn(32, 64, dtype=torch.float64) * 0.5)
        model.fc1.bias.fill_(2.0)
        model.fc2.weight.copy_(torch.randn(10, 32, dtype=torch.float64) * 0.5)
        model.fc2.bias.fill_(2.0)
    x = torch.rand(120, 4, 64, dtype=torch.float64)
    ref = roundtrip(model, tmp_path, x)  # the demo resets to zero, as NIR's LIF: exact
    assert ref.shape == (120, 4, 10)                 # 4800 output spike slots
    model.lif1 = LIF(20e-3, dt=DT, reset="subtract").double()  # not expressible in NIR
    with pytest.raises(ParameterError, match="layer 'lif1'.*reset='subtract'.*'reset'"):
        to_nir(model)
    with pytest.warns(UserWarning, match="lif1"):
        roundtrip(model, tmp_path, x, approximate={"reset"})


@pytest.mark.parametrize("integration", ["euler", "exact"])
def test_conv_stack_roundtrip(tmp_path, integration: str) -> None:
    torch.manual_seed(1)
    model = nn.Sequential(
        PerStep(nn.Conv2d(2, 4, 3, padding=1)),
        LIF(torch.linspace(4e-3, 9e-3, 4 * 6 * 6).reshape(4, 6, 6), dt=DT, reset="zero",
            threshold=0.3, integration="exact"),
        PerStep(nn.AvgPool2d(2)),
        nn.Flatten(start_dim=2),
        nn.Linear(36, 7),
        CubaLIF(6e-3, 2e-3, dt=DT, reset="zero", threshold=torch.linspace(0.2, 0.4, 7),
                order="voltage_first", v_reset=0.05),
        nn.Linear(7, 5),
        CubaLIF(5e-3, 3e-3, dt=DT, reset="zero", threshold=0.2, integration="euler",
                input_scaling="direct"),
    ).double()
    x = torch.rand(50, 3, 2, 6, 6, dtype=torch.float64) * 2.0
    roundtrip(model, tmp_path, x, input_shape=(2, 6, 6), integration=integration)


def test_if_and_next_step_resets_roundtrip(tmp_path) -> None:
    torch.manual_seed(2)
    model = nn.Sequential(
        nn.Linear(5, 6), IFNeuron(dt=DT, threshold=1.5, v_reset=-0.2),
        nn.Linear(6, 4), LIF(8e-3, dt=DT, input_scaling="direct", reset_at="next_step",
                             detach_reset=True, threshold=0.8),
    ).double()
    x = torch.rand(80, 2, 5, dtype=torch.float64) * 1.5
    with pytest.raises(ParameterError, match="layer '3'.*next_step"):
        to_nir(model, approximate={"reset"})
    with pytest.warns(UserWarning):
        roundtrip(model, tmp_path, x, approximate={"reset", "next_step_reset"})


def test_stack_errors_name_the_layer() -> None:
    with pytest.raises(ParameterError, match="no spiking layer"):
        to_nir(nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(TypeError, match="layer '1' \\(ReLU\\)"):
        to_nir(nn.Sequential(nn.Linear(2, 2), nn.ReLU(), LIF(dt=DT, reset="zero")))
    with pytest.raises(ParameterError, match="layer '1' \\(Flatten\\).*start_dim"):
        to_nir(nn.Sequential(nn.Linear(2, 2), nn.Flatten(), LIF(dt=DT, reset="zero")))
    with pytest.raises(ValueError, match="layer '1'.*needs input of shape \\[3\\]"):
        to_nir(nn.Sequential(nn.Linear(2, 2), nn.Linear(3, 2), LIF(dt=DT, reset="zero")))
