"""What one run of :func:`neuromodulation.experiments.distal_reward.run` measured, and
the statistics the paper's claim is stated in."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class DistalRewardResult(NamedTuple):
    """What :func:`run` measured. Weights are the excitatory ones in the projection's
    stored order (V/s); steps are absolute step indices.

    Attributes:
        w_initial, w_final: ``[n_syn]`` excitatory weights at the start and the end.
        chosen, pre, post: the chosen synapse's index and neurons.
        times: ``[chunks]`` end time of each chunk (s); chosen_w, p99, median: the chosen
            weight, the 99th percentile and the median of all excitatory weights then.
        pairings, rewards: steps of the pairings found and of the rewards delivered.
        syn_pre, syn_post: ``[n_syn]`` neurons of each excitatory synapse.
        rates: ``[n]`` firing rate of each neuron (Hz, mean over the batch);
            :attr:`rate_exc`, :attr:`rate_inh` the population means; n_exc: the
            excitatory neurons are ``0 .. n_exc - 1``.
        dopamine: ``[B]`` the dopamine level :math:`d` after the last step.
        backend: the graph backend that ran it (``"torch"`` until the engine compiles
            the Izhikevich neuron and the dopamine rule).
        steps_per_second: simulation speed of the whole loop (graph runs, spike
            readout, reward bookkeeping), batch elements counted once.
    """

    w_initial: np.ndarray
    w_final: np.ndarray
    chosen: int
    pre: int
    post: int
    times: np.ndarray
    chosen_w: np.ndarray
    p99: np.ndarray
    median: np.ndarray
    pairings: np.ndarray
    rewards: np.ndarray
    syn_pre: np.ndarray
    syn_post: np.ndarray
    rates: np.ndarray
    n_exc: int
    dopamine: np.ndarray
    backend: str
    steps_per_second: float

    @property
    def rate_exc(self) -> float:
        """Mean rate of the excitatory neurons (Hz)."""
        return float(self.rates[:self.n_exc].mean())

    @property
    def rate_inh(self) -> float:
        """Mean rate of the inhibitory neurons (Hz; 0 without any)."""
        inh = self.rates[self.n_exc:]
        return float(inh.mean()) if inh.size else 0.0

    @property
    def others(self) -> np.ndarray:
        """Indices of every excitatory synapse but the chosen one."""
        return np.delete(np.arange(self.w_final.size), self.chosen)

    def rank(self) -> float:
        """Fraction of the other excitatory synapses whose final weight is below the
        chosen one's (> 0.99: above their 99th percentile)."""
        return float((self.w_final[self.others] < self.w_final[self.chosen]).mean())

    def summary(self) -> dict[str, float | str]:
        """The chosen weight, its rank, the 99th percentile of all excitatory weights, and
        of the others: mean and median change, spread, the fraction within 0.25 of their
        start (V/s); rates (Hz), pairings, rewards, speed and backend."""
        o = self.others
        change = self.w_final[o] - self.w_initial[o]
        return {"chosen_initial": float(self.w_initial[self.chosen]),
                "chosen_final": float(self.w_final[self.chosen]), "rank": self.rank(),
                "p99_final": float(np.percentile(self.w_final, 99)),
                "others_mean_change": float(change.mean()),
                "others_median_change": float(np.median(change)),
                "others_std_final": float(self.w_final[o].std()),
                "others_within_0.25": float((np.abs(change) < 0.25).mean()),
                "rate_exc_hz": self.rate_exc, "rate_inh_hz": self.rate_inh,
                "pairings": int(self.pairings.size), "rewards": int(self.rewards.size),
                "steps_per_second": self.steps_per_second, "backend": self.backend}


__all__ = ["DistalRewardResult"]
