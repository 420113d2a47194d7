r"""Continual learning on scikit-learn's digits: tasks of two classes, learnt in sequence.

The spiking classifier of :mod:`aura_snn.tasks.digits` (``Linear -> LIF -> Linear ->
LIF``, scored by output spike counts, surrogate gradients) learns the tasks
``(0, 1), (2, 3), ..., (8, 9)`` one after another with one of three methods:

* ``"finetune"``: plain training on the current task;
* ``"ewc"``: plus the elastic weight consolidation penalty of every earlier task
  (:mod:`neuromodulation.ewc`);
* ``"replay"``: awake, each batch's samples are written one-shot to a bank (at most
  ``replay_per_class`` per class, priority = their loss, in an
  :class:`aura_snn.memory.replay.PrioritizedReplay`), adenosine builds with the
  network's spike rate (:mod:`neuromodulation.adenosine`) and scales the learning rate
  by :math:`g_\text{plast}(A)`; when it crosses its threshold, and at the end of each
  task, a sleep phase replays prioritised batches from the bank (importance-weighted
  loss, priorities updated to the new losses) while the pressure clears, until it
  falls to the wake level.

Scenarios: ``"class"`` (one 10-way output; a test sample is right if the argmax over
all 10 classes is its class, the hard, class-incremental setting) and ``"task"`` (the
argmax over the two classes of the sample's task, in training too).

After task :math:`i` the accuracy :math:`R_{ij}` on each task :math:`j`'s test set is
measured; the average forgetting (Chaudhry et al. 2018) is
:math:`\frac{1}{n-1}\sum_{j<n-1} \big(\max_{j \le i < n-1} R_{ij} - R_{n-1,j}\big)`.
Time: one presented sample lasts ``steps * dt`` seconds of the adenosine clock.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from aura_snn._checks import check_choice, check_int, check_nonnegative, check_positive
from aura_snn.memory.replay import PrioritizedReplay
from aura_snn.neurons import LIF
from aura_snn.tasks.digits import SpikingMLP, load_digits

from . import adenosine as ado
from .ewc import EWC, count_log_probs

METHODS = ("finetune", "ewc", "replay")
TASKS = ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9))


@dataclass(frozen=True)
class ContinualConfig:
    """Experiment settings (``dt``, ``tau_mem`` in s; ``lr`` of Adam)."""

    scenario: str = "class"
    hidden: int = 128
    steps: int = 16
    epochs: int = 12
    batch_size: int = 32
    lr: float = 1e-2
    tau_mem: float = 10e-3
    dt: float = 1e-3
    ewc_lambda: float = 5e3
    fisher_samples: int = 200
    replay_per_class: int = 20
    replay_batch: int = 32
    adenosine: ado.AdenosineParams = field(default_factory=lambda: ado.AdenosineParams(
        tau_wake=100.0, tau_sleep=2.0, kappa=2e-3, threshold=1.0, wake_level=0.1,
        k_plasticity=1.0))
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice("scenario", self.scenario, ("class", "task"))
        for name in ("hidden", "steps", "epochs", "batch_size", "fisher_samples",
                     "replay_batch"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("replay_per_class", self.replay_per_class, minimum=0)
        check_positive("lr", self.lr)
        check_nonnegative("ewc_lambda", self.ewc_lambda)


@dataclass
class ContinualResult:
    method: str
    config: dict[str, Any]
    accuracy: list[list[float]]   #: R[i][j]: after task i, on task j
    forgetting: float
    final_accuracy: float         #: mean over tasks of R[n-1][j]
    sleeps: int = 0
    replay_batches: int = 0
    model: nn.Module | None = None  #: the trained classifier (not serialised)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "model"}


def average_forgetting(r: np.ndarray) -> float:
    """Chaudhry et al. (2018) average forgetting of an accuracy matrix (docstring)."""
    n = r.shape[0]
    if n < 2:
        return 0.0
    return float(np.mean([r[j:n - 1, j].max() - r[n - 1, j] for j in range(n - 1)]))


def _logits(model: nn.Module, x: torch.Tensor, steps: int) -> torch.Tensor:
    return model(x.unsqueeze(0).expand(steps, *x.shape)).sum(0)


def _scenario(logits: torch.Tensor, y: torch.Tensor, scenario: str) -> torch.Tensor:
    """Task scenario: each row's logits outside its task's pair (known from its label,
    as task identity is given in that setting) leave the argmax and the softmax."""
    if scenario == "class":
        return logits
    keep = torch.arange(logits.shape[-1]).unsqueeze(0) // 2 == (y // 2).unsqueeze(1)
    return logits.masked_fill(~keep, float("-inf"))


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: ContinualConfig
              ) -> float:
    with torch.no_grad():
        pred = _scenario(_logits(model, x, cfg.steps), y, cfg.scenario).argmax(1)
    return float((pred == y).double().mean())


class _Rate:
    """Mean spike rate (Hz) of every LIF layer during the last forward pass."""

    def __init__(self, model: nn.Module, dt: float) -> None:
        self.dt, self.spikes, self.count, self.steps = dt, 0.0, 0, 1
        for m in model.modules():
            if isinstance(m, LIF):
                m.register_forward_hook(self._hook)

    def _hook(self, _m: nn.Module, _a: tuple, out: Any) -> None:
        s = out[0] if isinstance(out, tuple) else out
        self.spikes += float(s.detach().sum())
        self.count += s[0].numel()  # neurons x batch, per step
        self.steps = s.shape[0]

    def take(self) -> float:
        r = self.spikes / max(1, self.count * self.steps) / self.dt
        self.spikes, self.count = 0.0, 0
        return r


def run(method: str, cfg: ContinualConfig = ContinualConfig()) -> ContinualResult:
    """Learn the five tasks in sequence with ``method``; the accuracy matrix and
    forgetting (module docstring)."""
    check_choice("method", method, METHODS)
    torch.manual_seed(cfg.seed)
    xtr, ytr, xte, yte = load_digits(0.2, cfg.seed)
    model = SpikingMLP(xtr.shape[1], cfg.hidden, 10, cfg.tau_mem, cfg.dt)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    tasks = [torch.tensor(t) for t in TASKS]
    ewc = EWC(model, cfg.ewc_lambda) if method == "ewc" else None
    log_probs = count_log_probs(cfg.steps)
    rate = _Rate(model, cfg.dt)
    p = cfg.adenosine
    a_state = ado.initial_state()
    bank_x, bank_y, per_class = [], [], np.zeros(10, dtype=int)
    buf = PrioritizedReplay(max(1, 10 * cfg.replay_per_class), seed=cfg.seed)
    sleeps = replay_batches = 0
    sample_time = cfg.steps * cfg.dt

    def losses_of(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(_scenario(_logits(model, x, cfg.steps), y,
                                                     cfg.scenario), y, reduction="none")

    def sleep() -> int:
        nonlocal a_state
        done = 0
        while len(buf) and (done == 0 or bool(a_state.asleep)):
            d = buf.sample(cfg.replay_batch)
            x = torch.stack([bank_x[i] for i in d.ids.tolist()])
            y = torch.stack([bank_y[i] for i in d.ids.tolist()])
            losses = losses_of(x, y)
            loss = (d.weights.to(losses.dtype) * losses).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            buf.update_priorities(d.slots, losses.detach())
            a_state = ado.step(a_state._replace(asleep=torch.tensor(True)), 0.0, p,
                               cfg.replay_batch * sample_time)
            rate.take()
            done += 1
        return done

    r = np.zeros((len(tasks), len(tasks)))
    for k, cls in enumerate(tasks):
        sel = torch.isin(ytr, cls)
        x_k, y_k = xtr[sel], ytr[sel]
        for _ in range(cfg.epochs):
            perm = torch.randperm(len(x_k), generator=gen)
            for i in range(0, len(x_k), cfg.batch_size):
                idx = perm[i:i + cfg.batch_size]
                xb, yb = x_k[idx], y_k[idx]
                per = losses_of(xb, yb)
                loss = per.mean() + (ewc.penalty() if ewc is not None else 0.0)
                if method == "replay":
                    for g in opt.param_groups:
                        g["lr"] = cfg.lr * float(ado.plasticity(a_state.level, p))
                opt.zero_grad()
                loss.backward()
                opt.step()
                activity = rate.take()
                if method != "replay":
                    continue
                for b in range(len(yb)):  # one-shot writes, up to replay_per_class each
                    c = int(yb[b])
                    if per_class[c] < cfg.replay_per_class:
                        bank_x.append(xb[b].clone())
                        bank_y.append(yb[b].clone())
                        buf.add(len(bank_x) - 1, float(per[b].detach()))
                        per_class[c] += 1
                a_state = ado.step(a_state, activity, p, len(yb) * sample_time)
                if bool(a_state.asleep):
                    sleeps += 1
                    replay_batches += sleep()
        if method == "replay" and float(a_state.level) > p.wake_level:
            a_state = a_state._replace(asleep=torch.tensor(True))
            sleeps += 1
            replay_batches += sleep()
        for g in opt.param_groups:
            g["lr"] = cfg.lr
        if ewc is not None:
            n = min(cfg.fisher_samples, len(x_k))
            ewc.consolidate([(x_k[:n], y_k[:n])], _masked(log_probs, cls, cfg.scenario))
        for j, cj in enumerate(tasks):
            s = torch.isin(yte, cj)
            r[k, j] = _accuracy(model, xte[s], yte[s], cfg)
    return ContinualResult(method, {**asdict(cfg), "adenosine": asdict(cfg.adenosine)},
                           r.tolist(), average_forgetting(r), float(r[-1].mean()), sleeps,
                           replay_batches, model)


def _masked(log_probs: Any, classes: torch.Tensor, scenario: str) -> Any:
    """The task scenario's log-probabilities (softmax over the task's classes)."""
    if scenario == "class":
        return log_probs

    def masked(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        keep = torch.zeros(10, dtype=torch.bool)
        keep[classes] = True
        return torch.log_softmax(log_probs(model, x).masked_fill(~keep, float("-inf")), -1)
    return masked


__all__ = ["METHODS", "TASKS", "ContinualConfig", "ContinualResult", "average_forgetting",
           "run"]
