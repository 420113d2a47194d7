"""``hardware.lava``: our export run in Lava 0.10's own simulator (``Loihi2SimCfg``).

Oracles: in ``fixed_pt`` Lava's bit-accurate process models, whose spikes must equal
the PyTorch twin of ``hardware.loihi`` bit for bit (the twin is itself checked
against a NumPy transcription of Lava's equations in ``test_loihi.py``); in
``floating_pt`` our float model, whose spikes Lava's float models must reproduce. Runs
are kept short (Lava: ~0.5 s compile and start per batch element)."""

from __future__ import annotations

import importlib.util
import multiprocessing as mp

import numpy as np
import pytest
import torch
from torch import nn

from aura_snn import LIF, CubaLIF
from aura_snn.tasks.digits import SpikingMLP, load_digits

pytestmark = pytest.mark.skipif(importlib.util.find_spec("lava") is None,
                                reason="lava-nc not installed (make setup installs it)")

DT = 1e-3


def _net(seed: int, sizes: list[int], kinds: list[str], density: list[float]) -> nn.Sequential:
    g = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    for i, kind in enumerate(kinds):
        lin = nn.Linear(sizes[i], sizes[i + 1]).double()
        with torch.no_grad():
            w = torch.randn(sizes[i + 1], sizes[i], generator=g, dtype=torch.float64)
            w = (w * 2.5 / sizes[i] ** 0.5 + 0.5) / density[i] ** 0.5
            lin.weight.copy_(w * (torch.rand(w.shape, generator=g) < density[i]))
            lin.bias.copy_(torch.rand(sizes[i + 1], generator=g, dtype=torch.float64) * 0.2)
        neuron = (CubaLIF(tau_mem=10e-3, tau_syn=4e-3, dt=DT, threshold=0.8, reset="zero")
                  if kind == "cuba" else LIF(8e-3, dt=DT, threshold=1.0, reset="zero"))
        layers += [lin, neuron]
    return nn.Sequential(*layers)


CASES = [  # seed, sizes, kinds, density, binary input
    (0, [12, 24, 6], ["lif", "lif"], [1.0, 1.0], True),
    (1, [10, 30, 20, 5], ["cuba", "lif", "cuba"], [1.0, 0.25, 1.0], False),
    (2, [16, 20, 8], ["lif", "cuba"], [0.3, 0.3], True),
]


def _input(seed: int, n: int, binary: bool, steps: int = 40, batch: int = 2) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    x = (rng.random((steps, batch, n)) < 0.4) * 1.0 if binary else rng.random((steps, batch, n)) * 3
    return torch.from_numpy(x)


@pytest.mark.parametrize("seed,sizes,kinds,density,binary", CASES)
def test_fixed_pt_bit_identical_to_twin(seed, sizes, kinds, density, binary):
    from hardware.lava import export, run
    from hardware.loihi import quantize

    model = _net(seed, sizes, kinds, density)
    net = export(model, "fixed_pt", binary_input=binary)
    names = [type(c).__name__ for c in net.conns]
    assert names == [("Sparse" if d < 0.5 else "Dense") if (k or binary) else "NoneType"
                     for k, d in enumerate(density)]
    x = _input(seed, sizes[0], binary)
    lava = run(model, x, "fixed_pt")
    twin = quantize(model)(x)
    assert torch.equal(lava, twin)
    assert lava.sum() > 20


@pytest.mark.parametrize("seed,sizes,kinds,density,binary", CASES[:2])
def test_floating_pt_identical_to_float_model(seed, sizes, kinds, density, binary):
    from hardware.lava import run

    model = _net(seed, sizes, kinds, density)
    x = _input(seed + 10, sizes[0], binary)
    with torch.no_grad():
        ours = model(x)
    lava = run(model, x, "floating_pt")
    assert torch.equal(lava, ours)
    assert lava.sum() > 20


def test_leading_neuron_layer_fed_currents():
    """LIF(20) -> Dense(20x8) -> CubaLIF(8), the first population driven by currents."""
    from hardware.lava import run
    from hardware.loihi import quantize

    model = nn.Sequential(LIF(8e-3, dt=DT, threshold=1.0, reset="zero"), nn.Linear(20, 8),
                          CubaLIF(10e-3, 4e-3, dt=DT, threshold=0.5, reset="zero")).double()
    with torch.no_grad():
        model[1].weight.mul_(4).add_(0.6)
    x = _input(5, 20, False)
    lava = run(model, x, "fixed_pt", n_in=20)
    assert torch.equal(lava, quantize(model, n_in=20)(x)) and lava.sum() > 10
    with torch.no_grad():
        assert torch.equal(run(model, x, "floating_pt", n_in=20), model(x))


def test_demo_classifier_in_lava_fixed_pt_equals_twin():
    """The demo's SpikingMLP (reset 'subtract', run as Lava's reset to 0 by request) on
    digits presented as constant currents."""
    from hardware.lava import run
    from hardware.loihi import quantize

    torch.manual_seed(0)
    model = SpikingMLP(64, 32, 10, tau_mem=10e-3, dt=DT).double()
    with torch.no_grad():
        model.fc1.weight.mul_(8.0)
        model.fc2.weight.mul_(10.0).add_(0.6)
    _, _, x_test, _ = load_digits(0.2, 0)
    x = x_test[:2].double().unsqueeze(0).expand(16, 2, 64)
    lava = run(model, x, "fixed_pt", approximate_reset=True)
    twin = quantize(model, approximate_reset=True)
    assert torch.equal(lava, twin(x))
    assert twin.run(x)[0].sum() > 20 and lava.sum() > 0
    if model.lif1.neuron_parameters().reset == "zero":  # the demo's reset since 7adc17f
        with torch.no_grad():
            assert torch.equal(run(model, x, "floating_pt"), model(x))


@pytest.mark.parametrize("mode", ["fixed_pt", "floating_pt"])
def test_delays_run_as_delay_sparse(mode):
    """Synaptic delays (0..5 steps) on the second layer: Lava's DelaySparse against the
    twin (fixed_pt) and against our float neurons fed the delayed sums (floating_pt)."""
    from hardware.lava import export, run
    from hardware.loihi import quantize

    model = _net(8, [10, 16, 6], ["lif", "cuba"], [1.0, 0.6])
    d = torch.from_numpy(np.random.default_rng(8).integers(0, 6, (6, 16)))
    net = export(model, mode, delays={"2": d})
    assert type(net.conns[1]).__name__ == "DelaySparse"
    x = _input(8, 10, True)
    lava = run(model, x, mode, delays={"2": d})
    if mode == "fixed_pt":
        ref = quantize(model, delays={"2": d})(x)
    else:
        with torch.no_grad():
            s1 = model[:2](x)  # [T, B, 16]
            w, b = model[2].weight, model[2].bias
            cur = torch.zeros(x.shape[0], x.shape[1], 6, dtype=torch.float64)
            for k in range(6):
                cur[k:] += s1[:x.shape[0] - k] @ (w * (d == k)).T
            ref = model[3](cur + b)
    assert torch.equal(lava, ref)
    assert lava.sum() > 10
    with pytest.raises(ValueError, match="0..63"):
        quantize(model, delays={"2": d + 60})
    with pytest.raises(ValueError, match="no Linear"):
        quantize(model, delays={"fc9": d})


def _children() -> list[str]:
    """Live child processes of this process (Linux ``/proc``; Lava forks its workers)."""
    from pathlib import Path

    tasks = list(Path("/proc/self/task").glob("*/children"))
    if not tasks:
        pytest.skip("needs Linux /proc")
    pids = [p for t in tasks for p in t.read_text().split()]
    return [p for p in pids if Path(f"/proc/{p}/stat").exists()
            and Path(f"/proc/{p}/stat").read_text().split(") ")[-1][0] != "Z"]


def test_runtime_stopped_on_success_and_error(monkeypatch):
    import hardware.lava as hl

    model = _net(3, [6, 5], ["lif"], [1.0])
    x = _input(3, 6, True, steps=10, batch=1)
    before = len(_children())
    hl.run(model, x, "fixed_pt")
    assert len(_children()) == before and not mp.active_children()

    def boom(sink):
        assert len(_children()) > before  # the runtime's workers are alive here
        raise RuntimeError("read failed")

    monkeypatch.setattr(hl, "_read_output", boom)
    with pytest.raises(RuntimeError, match="read failed"):
        hl.run(model, x, "fixed_pt")
    assert len(_children()) == before and not mp.active_children()


def test_bad_arguments_named():
    from hardware.lava import run

    model = _net(4, [3, 2], ["lif"], [1.0])
    with pytest.raises(ValueError, match="mode"):
        run(model, torch.zeros(5, 1, 3), "float")
    with pytest.raises(ValueError, match="NaN"):
        run(model, torch.full((5, 1, 3), float("nan")))
    with pytest.raises(ValueError, match=r"\[T, B, n_in\]"):
        run(model, torch.zeros(5, 3))
