r"""The reward loop of the distal-reward experiment: find the chosen pairings, schedule
their rewards, hand the rewards to the next chunks as dopamine release.

Pairing (Izhikevich 2007): a spike of the postsynaptic neuron at step :math:`t` is a
pairing when the latest presynaptic spike strictly before it, at :math:`t_\text{pre}`,
satisfies :math:`1 \le t - t_\text{pre} \le W` (:math:`W` = the window in steps, 10 ms
at 1 ms steps). Somatic spike times are compared, as in the paper; every such post spike
is one pairing. Each pairing at :math:`t` schedules one reward at :math:`t + \delta`,
:math:`\delta` drawn uniformly from the whole steps of ``[delay_min, delay_max]``.

Release per step (the ``modulators["dopamine"]`` of :class:`~neuromodulation.dopamine.
DopamineSTDP`, whose :math:`d \leftarrow a_d d + r`): :math:`r[t] = r_0 + R\,n[t]` with
:math:`n[t]` the rewards due at :math:`t`, :math:`R` the release per reward and the tonic
:math:`r_0 = d_0 (1 - a_d)`, which holds :math:`d` at the baseline :math:`d_0` (the
paper's constant 0.002 added to the dopamine in :math:`\dot w = c\,(d_0 + \text{DA})`).
"""

from __future__ import annotations

import numpy as np
import torch

from aura_snn._checks import check_int, check_nonnegative
from aura_snn.errors import ParameterError


def find_pairings(pre_steps: np.ndarray, post_steps: np.ndarray, last_pre: int | None,
                  window: int) -> tuple[np.ndarray, int | None]:
    """Post spikes that come ``1..window`` steps after the latest earlier pre spike.

    Args:
        pre_steps, post_steps: sorted spike steps (absolute) of the two neurons in one chunk.
        last_pre: the last pre spike step before the chunk (``None``: none yet).
        window: the pairing window :math:`W` (steps, >= 1).

    Returns:
        ``(steps of the pairing post spikes, last pre spike step after the chunk)``.
    """
    window = check_int("window", window, minimum=1)
    pre = np.asarray(pre_steps, dtype=np.int64)
    post = np.asarray(post_steps, dtype=np.int64)
    if last_pre is not None:
        pre = np.concatenate([np.array([last_pre], dtype=np.int64), pre])
    new_last = int(pre[-1]) if pre.size else last_pre
    if not pre.size or not post.size:
        return np.zeros(0, dtype=np.int64), new_last
    k = np.searchsorted(pre, post, side="left") - 1   # latest pre strictly before each post
    ok = k >= 0
    lag = np.where(ok, post - pre[np.maximum(k, 0)], 0)
    return post[ok & (lag >= 1) & (lag <= window)], new_last


class RewardSchedule:
    """Rewards due at future steps, and the release they make (module docstring).

    Args:
        delay_min, delay_max: reward delay bounds (steps, ``1 <= delay_min <= delay_max``).
        amount: release per reward :math:`R` (concentration units, >= 0).
        tonic: tonic release per step :math:`r_0` (>= 0).
        rng: the generator of the delays.
    """

    def __init__(self, delay_min: int, delay_max: int, amount: float, tonic: float,
                 rng: np.random.Generator) -> None:
        self.delay_min = check_int("delay_min", delay_min, minimum=1)
        self.delay_max = check_int("delay_max", delay_max, minimum=self.delay_min)
        check_nonnegative("amount", amount)
        check_nonnegative("tonic", tonic)
        self.amount, self.tonic, self.rng = float(amount), float(tonic), rng
        self.pending = np.zeros(0, dtype=np.int64)
        self.delivered: list[int] = []

    def schedule(self, pairing_steps: np.ndarray) -> np.ndarray:
        """Schedule one reward per pairing; returns their steps."""
        steps = np.asarray(pairing_steps, dtype=np.int64)
        due = steps + self.rng.integers(self.delay_min, self.delay_max + 1, size=steps.size)
        self.pending = np.sort(np.concatenate([self.pending, due]))
        return due

    def release(self, t0: int, steps: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Release ``[steps]`` for steps ``t0 .. t0 + steps - 1``; the rewards in it are
        delivered (moved from :attr:`pending` to :attr:`delivered`). A reward due before
        ``t0`` was missed by the caller and raises."""
        steps = check_int("steps", steps, minimum=1)
        if self.pending.size and self.pending[0] < t0:
            raise ParameterError(f"a reward was due at step {int(self.pending[0])}, before this "
                                 f"chunk (step {t0}): chunks must be no longer than the "
                                 f"shortest reward delay ({self.delay_min} steps)")
        inside = self.pending < t0 + steps
        now, self.pending = self.pending[inside], self.pending[~inside]
        r = np.full(steps, self.tonic)
        np.add.at(r, now - t0, self.amount)
        self.delivered.extend(int(t) for t in now)
        return torch.as_tensor(r, dtype=dtype)


__all__ = ["RewardSchedule", "find_pairings"]
