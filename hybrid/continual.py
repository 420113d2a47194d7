r"""Continual learning of the hippocampal transformer: training continues on a second
corpus, with elastic weight consolidation or replay with sleep (:mod:`neuromodulation`).

The model, trained on corpus A, takes ``steps`` AdamW updates on windows of corpus B
(``batch_size`` windows of ``seq_len`` tokens, next-token cross-entropy :math:`\mathcal{L}_B`)
with one of three methods:

* ``"finetune"``: :math:`\mathcal{L}_B` alone;
* ``"ewc"``: :math:`\mathcal{L}_B + \frac{\lambda}{2}\sum_i F_i(\theta_i - \theta^*_i)^2`
  (:class:`neuromodulation.ewc.EWC`), :math:`F` the empirical diagonal Fisher of
  :math:`\log p(x_{L+1} \mid x_{1..L})` over ``fisher_samples`` windows of A (the next
  token after each window, one backward pass per window), :math:`\theta^*` the weights
  after A;
* ``"replay"``: ``replay_windows`` windows of A are stored once (one-shot) in a
  :class:`aura_snn.memory.replay.PrioritizedReplay`, priority = their loss. Awake,
  adenosine :math:`A` (:mod:`neuromodulation.adenosine`) builds with the spiking FFNs'
  rate :math:`r = \bar s / \Delta t` (Hz, :math:`\bar s` spikes per neuron per step) over
  the batch's time :math:`B L T \Delta t` (s), and scales the learning rate by
  :math:`g_\text{plast}(A) = 1/(1 + A/K_p)`; when it crosses its threshold, and once at
  the end, a sleep replays prioritised batches of A (importance-weighted loss,
  priorities updated) while the pressure clears (each batch ``replay_batch * seq_len *
  T * dt`` s asleep) until it falls to the wake level (at most ``max_sleep_batches`` per
  sleep). Needs spiking FFNs.

Data order (so a run can be repeated by hand): one ``torch.Generator`` seeded with
``seed`` draws, in turn, the Fisher windows (``ewc``) or the replay windows
(``replay``), then each update's batch (:func:`hybrid.data.random_batch`).
Forgetting is :math:`\mathrm{ppl}_A^\text{after} / \mathrm{ppl}_A^\text{before} - 1`,
validation perplexities over the first ``eval_windows`` windows
(:func:`hybrid.ddp.eval_windows`). :func:`stdlib_corpus` is a second corpus that ships
with Python: docstrings of standard-library modules.
"""

from __future__ import annotations

import importlib
import inspect
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from aura_snn._checks import check_choice, check_int, check_nonnegative, check_positive
from aura_snn.errors import ParameterError
from aura_snn.memory.replay import PrioritizedReplay
from neuromodulation import adenosine as ado
from neuromodulation.ewc import EWC

from .data import random_batch
from .ddp import eval_windows
from .model import HippocampalTransformer
from .train import evaluate

METHODS = ("finetune", "ewc", "replay")
STDLIB_MODULES = ("argparse", "bisect", "calendar", "collections", "configparser",
                  "contextlib", "csv", "dataclasses", "datetime", "decimal", "difflib",
                  "enum", "fnmatch", "fractions", "functools", "glob", "gzip", "heapq",
                  "html", "inspect", "itertools", "json", "logging", "operator", "pathlib",
                  "pprint", "queue", "random", "re", "shlex", "shutil", "statistics",
                  "string", "struct", "subprocess", "tarfile", "tempfile", "textwrap",
                  "threading", "tokenize", "traceback", "typing", "unittest", "urllib.parse",
                  "uuid", "warnings", "weakref", "zipfile")


def stdlib_corpus() -> dict[str, str]:
    """``{module: text}``: each module's docstring and those of its public members
    defined there (name, then docstring), for :data:`STDLIB_MODULES` (deterministic for
    one Python version)."""
    out = {}
    with warnings.catch_warnings():  # deprecated aliases (typing.io) warn when read
        warnings.simplefilter("ignore", DeprecationWarning)
        for name in STDLIB_MODULES:
            mod = importlib.import_module(name)
            parts = [inspect.getdoc(mod) or ""]
            for key, value in sorted(vars(mod).items()):
                if key.startswith("_") or getattr(value, "__module__", None) != mod.__name__:
                    continue
                doc = inspect.getdoc(value)
                if doc:
                    parts.append(f"{key}\n{doc}")
            out[name] = "\n\n".join(p for p in parts if p)
    return out


@dataclass(frozen=True)
class ContinualConfig:
    """Settings (module docstring); ``lr`` per AdamW update, ``weight_decay`` AdamW's."""

    method: str = "finetune"
    steps: int = 100
    batch_size: int = 8
    seq_len: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    ewc_lambda: float = 1e3
    fisher_samples: int = 64
    replay_windows: int = 128
    replay_batch: int = 8
    max_sleep_batches: int = 20
    eval_windows: int = 32
    seed: int = 0
    adenosine: ado.AdenosineParams = field(default_factory=lambda: ado.AdenosineParams(
        tau_wake=100.0, tau_sleep=2.0, kappa=2e-4, threshold=1.0, wake_level=0.1))

    def __post_init__(self) -> None:
        check_choice("method", self.method, METHODS)
        for name in ("steps", "batch_size", "seq_len", "fisher_samples", "replay_windows",
                     "replay_batch", "max_sleep_batches", "eval_windows"):
            check_int(name, getattr(self, name), minimum=1)
        check_positive("lr", self.lr)
        check_nonnegative("weight_decay", self.weight_decay)
        check_nonnegative("ewc_lambda", self.ewc_lambda)
        check_int("seed", self.seed, minimum=0)


@dataclass
class ContinualResult:
    """Perplexities on A and B before and after, forgetting, and the sleep log (one row
    per update: ``activity_hz``, adenosine ``level`` after it, ``replayed`` batches)."""

    method: str
    ppl_a_before: float
    ppl_a_after: float
    ppl_b_before: float
    ppl_b_after: float
    sleeps: int = 0
    replay_batches: int = 0
    log: list[dict[str, float]] = field(default_factory=list)

    @property
    def forgetting(self) -> float:
        return self.ppl_a_after / self.ppl_a_before - 1.0


def _ppl(model: HippocampalTransformer, ids: torch.Tensor, cfg: ContinualConfig) -> float:
    return math.exp(evaluate(model, eval_windows(ids, cfg.seq_len, cfg.eval_windows)))


def _window_losses(model: HippocampalTransformer, x: torch.Tensor, y: torch.Tensor
                   ) -> torch.Tensor:
    logits, _ = model(x)
    return F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(1)


def _rate_hz(model: HippocampalTransformer) -> float:
    stats = model.ffn_stats()
    if not stats:
        return 0.0
    return sum(float(s.firing_rate) for s in stats.values()) / len(stats) / model.config.dt


def continue_training(model: HippocampalTransformer, first: tuple[torch.Tensor, torch.Tensor],
                      second: tuple[torch.Tensor, torch.Tensor], cfg: ContinualConfig
                      ) -> ContinualResult:
    """Train ``model`` (already trained on A) on B with ``cfg.method``; ``first`` and
    ``second`` are ``(train ids, validation ids)`` 1-d token tensors of A and B."""
    if not isinstance(model, HippocampalTransformer):
        raise ParameterError(f"model must be a HippocampalTransformer, got "
                             f"{type(model).__name__}")
    if cfg.method == "replay" and not model.config.spiking_layers:
        raise ParameterError("method 'replay': adenosine builds with FFN spikes, and this "
                             "model has no spiking FFN (config.ffn is all dense)")
    (train_a, val_a), (train_b, val_b) = first, second
    c, L = model.config, cfg.seq_len
    before_a, before_b = _ppl(model, val_a, cfg), _ppl(model, val_b, cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ewc = buf = bank = None
    if cfg.method == "ewc":
        x, y = random_batch(train_a, cfg.fisher_samples, L, gen)
        ewc = EWC(model, cfg.ewc_lambda)
        ewc.consolidate([(x, y[:, -1])],
                        lambda m, xs: torch.log_softmax(m(xs)[0][:, -1], -1))
    if cfg.method == "replay":
        bank = random_batch(train_a, cfg.replay_windows, L, gen)
        buf = PrioritizedReplay(cfg.replay_windows, seed=cfg.seed)
        with torch.no_grad():
            model.eval()
            buf.add(torch.arange(cfg.replay_windows), _window_losses(model, *bank).double())
    p, state = cfg.adenosine, ado.initial_state()
    res = ContinualResult(cfg.method, before_a, math.nan, before_b, math.nan)

    def sleep() -> int:
        nonlocal state
        done = 0
        while done < cfg.max_sleep_batches and (done == 0 or bool(state.asleep)):
            d = buf.sample(cfg.replay_batch)
            losses = _window_losses(model, bank[0][d.ids], bank[1][d.ids])
            loss = (d.weights.to(losses.dtype) * losses).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            buf.update_priorities(d.slots, losses.detach().double())
            state = ado.step(state._replace(asleep=torch.tensor(True)), 0.0, p,
                             cfg.replay_batch * L * c.T * c.dt)
            done += 1
        state = state._replace(asleep=torch.tensor(False))
        res.sleeps += 1
        res.replay_batches += done
        return done

    model.train()
    for g in opt.param_groups:
        g["lr"] = cfg.lr
    for _ in range(cfg.steps):
        x, y = random_batch(train_b, cfg.batch_size, L, gen)
        loss = _window_losses(model, x, y).mean()
        if ewc is not None:
            loss = loss + ewc.penalty()
        if buf is not None:
            for g in opt.param_groups:
                g["lr"] = cfg.lr * float(ado.plasticity(state.level, p))
        opt.zero_grad()
        loss.backward()
        opt.step()
        row: dict[str, Any] = {"loss": float(loss.detach()), "activity_hz": 0.0, "replayed": 0}
        if buf is not None:
            row["activity_hz"] = _rate_hz(model)
            state = ado.step(state, row["activity_hz"], p, cfg.batch_size * L * c.T * c.dt)
            if bool(state.asleep):
                row["replayed"] = sleep()
        row["level"] = float(state.level)
        res.log.append(row)
    if buf is not None and float(state.level) > p.wake_level:
        state = state._replace(asleep=torch.tensor(True))
        res.log[-1]["replayed"] += sleep()
        res.log[-1]["level"] = float(state.level)
    res.ppl_a_after, res.ppl_b_after = _ppl(model, val_a, cfg), _ppl(model, val_b, cfg)
    return res


__all__ = ["METHODS", "STDLIB_MODULES", "ContinualConfig", "ContinualResult",
           "continue_training", "stdlib_corpus"]
