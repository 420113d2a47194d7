r"""Settings of :func:`hybrid.train.train` and the learning-rate schedule they define.

Schedule (step :math:`s = 0 \dots S-1` is the :math:`(s+1)`-th optimizer update,
:math:`W` warm-up steps, :math:`S` = ``max_steps``):

.. math::
    \eta(s) = \begin{cases}
      \eta_{\max}\,\dfrac{s + 1}{W} & s < W \\[4pt]
      \eta_{\min} + \tfrac12(\eta_{\max} - \eta_{\min})
        \Bigl(1 + \cos\dfrac{\pi (s - W)}{S - W}\Bigr) & W \le s < S
    \end{cases}

(linear warm-up reaching :math:`\eta_{\max}` at step :math:`W - 1`, cosine decay toward
:math:`\eta_{\min}`). It is a pure function of the step, so the "scheduler state" of a
checkpoint is the step count alone.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aura_snn.errors import ConfigError, ParameterError, ParameterTypeError

RESUME_MAY_CHANGE = frozenset({"eval_every", "eval_windows", "save_every", "keep_last",
                               "tensorboard", "compile", "activation_checkpointing",
                               "device"})
"""Fields that only change how a run is observed or computed, not its trajectory: a run
may resume from a checkpoint written with other values of these (``device`` and
``compile`` may change the rounding, so bit-exact resume needs them equal too)."""


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; every field is checked on construction.

    ``lr``/``min_lr``: peak and final learning rate :math:`\\eta_{\\max}, \\eta_{\\min}`
    (per update); ``warmup_steps``: :math:`W`; ``max_steps``: :math:`S` optimizer
    updates; ``weight_decay``: AdamW's decoupled decay :math:`\\lambda` (applied to
    matrices, i.e. parameters of 2 or more dimensions, not to biases, gains or scalars);
    ``beta1``/``beta2``/``eps``: AdamW's moment decays and denominator guard;
    ``grad_clip``: maximum global L2 norm of the gradient (0: no clipping);
    ``spike_rate_weight``: :math:`\\lambda_r \\ge 0` of the activity penalty
    :math:`\\lambda_r \\bar r` added to the loss (:func:`hybrid.train.spike_rate_penalty`;
    0: none);
    ``grad_accum``: micro-batches per update; ``batch_size``: windows per micro-batch
    per process; ``seq_len``: tokens per window :math:`L`; ``eval_every``: updates
    between validation passes (0: only at the end); ``eval_windows``: validation windows
    per pass; ``save_every``: updates between checkpoints (0: only at the end; the end
    is always saved); ``keep_last``: checkpoints kept; ``seed``: model-independent seed
    of data order and RNG streams; ``bf16``: bfloat16 autocast (CUDA only; ignored with
    a warning on CPU); ``activation_checkpointing``: recompute each block's activations
    in backward; ``compile``: ``torch.compile`` the model; ``device``: ``auto``, ``cpu``
    or ``cuda``; ``tensorboard``: also log to TensorBoard when it can be imported.
    """

    lr: float = 3e-4
    min_lr: float = 3e-5
    warmup_steps: int = 100
    max_steps: int = 1000
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0
    spike_rate_weight: float = 0.0
    grad_accum: int = 1
    batch_size: int = 8
    seq_len: int = 128
    eval_every: int = 100
    eval_windows: int = 16
    save_every: int = 0
    keep_last: int = 3
    seed: int = 0
    bf16: bool = False
    activation_checkpointing: bool = False
    compile: bool = False
    device: str = "auto"
    tensorboard: bool = True

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            kind = f.type if isinstance(f.type, str) else f.type.__name__
            if kind == "bool" and not isinstance(v, bool):
                raise ParameterTypeError(f"TrainConfig.{f.name} must be true or false, "
                                         f"got {v!r}")
            if kind == "int" and (isinstance(v, bool) or not isinstance(v, int)):
                raise ParameterTypeError(f"TrainConfig.{f.name} must be an integer, got {v!r}")
            if kind == "float":
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise ParameterTypeError(f"TrainConfig.{f.name} must be a number, "
                                             f"got {v!r}")
                if not math.isfinite(v):
                    raise ParameterError(f"TrainConfig.{f.name} must be finite, got {v!r}")
                object.__setattr__(self, f.name, float(v))
            if kind == "str" and not isinstance(v, str):
                raise ParameterTypeError(f"TrainConfig.{f.name} must be a string, got {v!r}")

        def need(ok: bool, name: str, rule: str) -> None:
            if not ok:
                raise ParameterError(f"TrainConfig.{name} must be {rule}, got "
                                     f"{getattr(self, name)!r}")

        need(self.lr > 0, "lr", "> 0")
        need(0 <= self.min_lr <= self.lr, "min_lr", f"in [0, lr={self.lr}]")
        need(self.max_steps >= 1, "max_steps", ">= 1")
        need(0 <= self.warmup_steps < self.max_steps, "warmup_steps",
             f"in [0, max_steps={self.max_steps})")
        need(self.weight_decay >= 0, "weight_decay", ">= 0")
        need(0 <= self.beta1 < 1, "beta1", "in [0, 1)")
        need(0 <= self.beta2 < 1, "beta2", "in [0, 1)")
        need(self.eps > 0, "eps", "> 0")
        need(self.grad_clip >= 0, "grad_clip", ">= 0 (0: no clipping)")
        need(self.spike_rate_weight >= 0, "spike_rate_weight", ">= 0 (0: no penalty)")
        for name in ("grad_accum", "batch_size", "seq_len", "eval_windows", "keep_last"):
            need(getattr(self, name) >= 1, name, ">= 1")
        need(self.eval_every >= 0, "eval_every", ">= 0 (0: only at the end)")
        need(self.save_every >= 0, "save_every", ">= 0 (0: only at the end)")
        need(self.seed >= 0, "seed", ">= 0")
        need(self.device in ("auto", "cpu", "cuda"), "device", "'auto', 'cpu' or 'cuda'")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "train") -> TrainConfig:
        """Build from a mapping (a config file's ``[train]`` table); an unknown key is a
        :class:`~aura_snn.errors.ConfigError` naming it (``where`` prefixes it)."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"{where}: must be a table of settings, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        for key in d:
            if key not in known:
                raise ConfigError(f"{where}.{key}: unknown key; known keys are "
                                  f"{', '.join(sorted(known))}")
        return cls(**dict(d))

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-able dict (the inverse of :meth:`from_dict`)."""
        return dataclasses.asdict(self)

    @property
    def tokens_per_step(self) -> int:
        """Tokens one process trains on per update: ``batch_size * seq_len * grad_accum``."""
        return self.batch_size * self.seq_len * self.grad_accum


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate :math:`\\eta(s)` of update ``step`` (module docstring)."""
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ParameterError(f"step must be an integer >= 0, got {step!r}")
    w, s_max = cfg.warmup_steps, cfg.max_steps
    if step < w:
        return cfg.lr * (step + 1) / w
    progress = min(1.0, (step - w) / (s_max - w))
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + math.cos(math.pi * progress))


__all__ = ["RESUME_MAY_CHANGE", "TrainConfig", "lr_at"]
