r"""Elastic weight consolidation for gradient-trained parts (diagonal Fisher).

After a task :math:`k` is learnt, the parameters :math:`\theta^*_k` and the diagonal of
the Fisher information

.. math::

    F_{k,i} = \frac{1}{N} \sum_{n=1}^{N}
              \Big(\frac{\partial \log p(y_n \mid x_n; \theta)}{\partial \theta_i}
              \Big|_{\theta^*_k}\Big)^2

are kept (``fisher="empirical"``: :math:`y_n` the label; ``"true"``: :math:`y_n`
drawn from the model's own :math:`p(y \mid x_n)`, Kirkpatrick et al. 2017). The
gradients are per sample (one backward pass per sample), never the square of a
batch gradient. Learning a later task then adds the penalty

.. math::

    \Omega(\theta) = \frac{\lambda}{2} \sum_k \sum_i F_{k,i}
                     (\theta_i - \theta^*_{k,i})^2

(Kirkpatrick et al., PNAS 2017), or in the online variant (Schwarz et al., "Progress &
Compress", ICML 2018) one running term
:math:`\tilde F \leftarrow \gamma \tilde F + F_k`, :math:`\theta^* \leftarrow
\theta^*_k`, :math:`\Omega = \frac{\lambda}{2} \sum_i \tilde F_i (\theta_i -
\theta^*_i)^2`. :math:`\lambda` is dimensionless (the loss's unit per squared
parameter unit times the Fisher's inverse); :math:`\gamma \in [0, 1]`.

The model's class log-probabilities are given by the caller: ``log_probs(model, x) ->
[B, C]``; for a spiking classifier scored by spike counts :math:`c`, that is
:math:`\log \operatorname{softmax}(c)` (:func:`count_log_probs`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

import torch
from torch import nn

from aura_snn._checks import check_choice, check_in_range, check_int, check_nonnegative

LogProbs = Callable[[nn.Module, torch.Tensor], torch.Tensor]


class Anchor(NamedTuple):
    """One consolidated task: parameter values and their Fisher diagonal (by name)."""

    params: dict[str, torch.Tensor]
    fisher: dict[str, torch.Tensor]


def count_log_probs(steps: int) -> LogProbs:
    r""":math:`\log\operatorname{softmax}(\sum_t s_t)` ``[B, C]`` of a spiking model
    returning ``[T, B, C]`` spikes, ``x`` ``[B, F]`` presented as a constant current
    for ``steps`` steps."""
    check_int("steps", steps, minimum=1)

    def log_probs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(model(x.unsqueeze(0).expand(steps, *x.shape)).sum(0), -1)
    return log_probs


def _trainable(model: nn.Module) -> dict[str, nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def diagonal_fisher(model: nn.Module, samples: Iterable[tuple[torch.Tensor, torch.Tensor]],
                    log_probs: LogProbs, *, fisher: str = "empirical",
                    generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """:math:`F_i` (module docstring) over ``samples`` (batches ``(x, y)``), one
    backward pass per sample. ``fisher="true"`` draws each label from the model."""
    check_choice("fisher", fisher, ("empirical", "true"))
    params = _trainable(model)
    acc = {n: torch.zeros_like(p) for n, p in params.items()}
    n_seen = 0
    was_training = model.training
    model.eval()
    try:
        for x, y in samples:
            for b in range(len(x)):
                lp = log_probs(model, x[b:b + 1])[0]
                if fisher == "true":
                    c = torch.multinomial(lp.detach().exp(), 1, generator=generator)[0]
                else:
                    c = y[b]
                grads = torch.autograd.grad(lp[c], list(params.values()), allow_unused=True)
                for (n, _), g in zip(params.items(), grads, strict=True):
                    if g is not None:
                        acc[n] += g.detach() ** 2
                n_seen += 1
    finally:
        model.train(was_training)
    if n_seen == 0:
        raise ValueError("samples: no sample to estimate the Fisher information from")
    return {n: a / n_seen for n, a in acc.items()}


def penalty(model: nn.Module, anchors: Iterable[Anchor], lam: float) -> torch.Tensor:
    """:math:`\\Omega(\\theta)` (module docstring), differentiable in the parameters."""
    check_nonnegative("lam", lam)
    params = _trainable(model)
    total = torch.zeros((), dtype=next(iter(params.values())).dtype)
    for a in anchors:
        for n, p in params.items():
            if n in a.fisher:
                total = total + (a.fisher[n] * (p - a.params[n]) ** 2).sum()
    return 0.5 * lam * total


class EWC:
    """Consolidate tasks one after another and penalise drift from them.

    Args:
        model: the trained module (its parameters with ``requires_grad``).
        lam: :math:`\\lambda` (dimensionless, >= 0).
        online: the running single-term variant (Schwarz et al. 2018).
        gamma: decay :math:`\\gamma` of the online Fisher (ignored if not online).
        fisher: ``"empirical"`` or ``"true"`` (module docstring).
    """

    def __init__(self, model: nn.Module, lam: float, *, online: bool = False,
                 gamma: float = 1.0, fisher: str = "empirical") -> None:
        check_nonnegative("lam", lam)
        check_in_range("gamma", gamma, 0.0, 1.0)
        self.fisher = check_choice("fisher", fisher, ("empirical", "true"))
        self.model, self.lam, self.online, self.gamma = model, float(lam), online, gamma
        self.anchors: list[Anchor] = []

    def consolidate(self, samples: Iterable[tuple[torch.Tensor, torch.Tensor]],
                    log_probs: LogProbs, generator: torch.Generator | None = None) -> Anchor:
        """Estimate :math:`F_k` at the current parameters and keep the anchor."""
        f = diagonal_fisher(self.model, samples, log_probs, fisher=self.fisher,
                            generator=generator)
        theta = {n: p.detach().clone() for n, p in _trainable(self.model).items()}
        if self.online and self.anchors:
            prev = self.anchors[0].fisher
            f = {n: self.gamma * prev[n] + f[n] for n in f}
            self.anchors = []
        anchor = Anchor(theta, f)
        self.anchors.append(anchor)
        return anchor

    def penalty(self) -> torch.Tensor:
        """:math:`\\Omega(\\theta)` at the model's current parameters."""
        return penalty(self.model, self.anchors, self.lam)


__all__ = ["EWC", "Anchor", "count_log_probs", "diagonal_fisher", "penalty"]
