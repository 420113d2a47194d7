"""Spiking MLP on scikit-learn's digits (8x8 images shipped with scikit-learn).

Model: pixels (scaled to [0, 1]) are presented as a constant input current for ``T``
steps -> ``Linear(64, H)`` -> :class:`~aura_snn.neurons.LIF` -> ``Linear(H, 10)`` ->
:class:`~aura_snn.neurons.LIF`. The class score is the output spike count over the
``T`` steps; the loss is cross-entropy on those counts (rate coding), trained with
surrogate gradients through the fused LIF kernel.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .._checks import check_int, check_positive
from ..metrics import Monitor
from ..neurons import LIF


@dataclass(frozen=True)
class DigitsConfig:
    """Training configuration (``dt`` and ``tau_mem`` in seconds)."""

    hidden: int = 256
    steps: int = 16
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-2
    tau_mem: float = 10e-3
    dt: float = 1e-3
    test_fraction: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("hidden", self.hidden, minimum=1)
        check_int("steps", self.steps, minimum=1)
        check_int("epochs", self.epochs, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        check_positive("lr", self.lr)
        check_positive("test_fraction", self.test_fraction)


@dataclass
class DigitsResult:
    """What a training run measured."""

    config: dict[str, Any]
    test_accuracy: float
    train_accuracy: float
    history: list[dict[str, float]] = field(default_factory=list)
    layers: dict[str, dict[str, float]] = field(default_factory=dict)
    rasters: dict[str, torch.Tensor] = field(default_factory=dict)
    train_seconds: float = 0.0
    model: nn.Module | None = None

    def to_json(self) -> dict[str, Any]:
        """Everything measured, without the rasters and the model (saved apart)."""
        d = {k: v for k, v in self.__dict__.items() if k not in ("rasters", "model")}
        return asdict(DigitsResult(**d))


class SpikingMLP(nn.Sequential):
    """``fc1: Linear -> lif1: LIF -> fc2: Linear -> lif2: LIF`` on time-major input
    ``[T, B, 64]``, returning output spikes ``[T, B, n_out]``. A plain ``nn.Sequential``,
    so it saves (:func:`aura_snn.neurons.saved.save_model`) and exports as one. The
    neurons reset to zero at a spike, as NIR's LIF node and Loihi's LIF do, so the
    exports compute exactly what was trained (reset by subtraction scored 96.9 % against
    96.1 % here; both above the 95 % the tests ask)."""

    def __init__(self, n_in: int, hidden: int, n_out: int, tau_mem: float, dt: float) -> None:
        super().__init__(OrderedDict([
            ("fc1", nn.Linear(n_in, hidden)),
            ("lif1", LIF(tau_mem, dt=dt, surrogate="fast_sigmoid", reset="zero")),
            ("fc2", nn.Linear(hidden, n_out)),
            ("lif2", LIF(tau_mem, dt=dt, surrogate="fast_sigmoid", reset="zero")),
        ]))


def load_digits(test_fraction: float, seed: int) -> tuple[torch.Tensor, ...]:
    """Digits as float32 tensors ``(x_train, y_train, x_test, y_test)``, pixels in [0, 1],
    split with a seeded stratified shuffle."""
    from sklearn.datasets import load_digits as sk_load
    from sklearn.model_selection import train_test_split

    data = sk_load()
    x = (data.data / 16.0).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(x, data.target, test_size=test_fraction,
                                          random_state=seed, stratify=data.target)
    return (torch.from_numpy(xtr), torch.from_numpy(ytr).long(), torch.from_numpy(xte),
            torch.from_numpy(yte).long())


def _present(x: torch.Tensor, steps: int) -> torch.Tensor:
    """Constant-current presentation: ``[B, F] -> [T, B, F]`` (the input layer's gain is
    learnt by the first ``Linear``)."""
    return x.unsqueeze(0).expand(steps, *x.shape)


def evaluate(model: SpikingMLP, x: torch.Tensor, y: torch.Tensor, steps: int,
             batch_size: int = 256) -> float:
    """Accuracy of the spike-count argmax."""
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            counts = model(_present(x[i:i + batch_size], steps)).sum(0)
            correct += int((counts.argmax(1) == y[i:i + batch_size]).sum())
    return correct / len(x)


def train(cfg: DigitsConfig = DigitsConfig(),
          progress: Callable[[int, int, float], None] | None = None) -> DigitsResult:
    """Train the spiking MLP; ``progress(epoch, n_epochs, loss)`` is called each epoch.

    Returns accuracies, the per-epoch history, and per-layer firing statistics and
    spike rasters measured on the test set by a :class:`~aura_snn.metrics.Monitor`.
    """
    import time

    torch.manual_seed(cfg.seed)
    xtr, ytr, xte, yte = load_digits(cfg.test_fraction, cfg.seed)
    model = SpikingMLP(xtr.shape[1], cfg.hidden, 10, cfg.tau_mem, cfg.dt)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    gen = torch.Generator().manual_seed(cfg.seed)
    history = []
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        total = 0.0
        for i in range(0, len(xtr), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            counts = model(_present(xtr[idx], cfg.steps)).sum(0)
            loss = nn.functional.cross_entropy(counts, ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        history.append({"epoch": epoch + 1, "loss": total / len(xtr)})
        if progress is not None:
            progress(epoch + 1, cfg.epochs, total / len(xtr))
    seconds = time.perf_counter() - t0
    model.eval()
    test_acc = evaluate(model, xte, yte, cfg.steps)
    train_acc = evaluate(model, xtr, ytr, cfg.steps)
    with Monitor(model) as mon, torch.no_grad():
        model(_present(xte, cfg.steps))
    layers = mon.summary(cfg.dt)
    # one test sample of each digit, presented back to back: [10 T, neurons] per layer
    first = torch.stack([torch.nonzero(yte == d)[0, 0] for d in range(10)])
    with Monitor(model) as mon, torch.no_grad():
        model(_present(xte[first], cfg.steps))
    rasters = {name: s.permute(1, 0, 2).reshape(-1, s.shape[-1])
               for name, s in mon.spikes.items()}
    return DigitsResult(config=asdict(cfg), test_accuracy=test_acc, train_accuracy=train_acc,
                        history=history, layers=layers, rasters=rasters,
                        train_seconds=seconds, model=model)
