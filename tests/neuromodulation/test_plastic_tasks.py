"""Learning with PlasticLinear: the tasks of Miconi et al. 2018 and 2019, small.

Pattern completion (Miconi et al. 2018, sec. 4.1): a few random +-1 patterns are shown
once each, then a copy of one with half its bits zeroed; the network must fill them
in. W, alpha and eta are trained by backprop over random episodes. Before the
degraded copy the units' activity is reset to zero, so the only memory of the
episode is the weights: with plasticity off the output on a zeroed bit is a fixed
function of the visible bits, which are independent of the zeroed bit's value, so
each zeroed bit is right with probability exactly 1/2 and the count of right bits over
n is Binomial(n, 1/2) (sd 0.5/sqrt(n)).

Delayed cue-reward association with a mid-episode switch (Backpropamine, Miconi et al.
2019, retroactive modulation): an episode has K cues, each with a correct action out
of A = 2; a trial shows a cue with a randomly proposed action, and one step later
(cue gone) a reward of +1 if the proposal was right, -1 if not. After one pass over
the cues every cue's correct action changes; two more passes follow; then each cue is
queried alone and the network must answer the new action. Only a modulator M(t) that
the network outputs from the reward input, acting on the eligibility trace of the
trial, can write the answer into the plastic weights: M must switch learning on at
reward steps (sign of the reward) and off at cue steps and queries. Without a
modulator the trace of the cue rows is a function of cues and proposals only (the
reward input is zero when a cue is on, so pre x post is zero on cue rows at reward
steps), and proposals are drawn independently of the answers; the same holds for the
simple (non-retroactive) modulated form, whose M at a cue step cannot know the reward
yet. These controls, and the non-plastic network, answer right with probability
exactly 1/2, so their accuracy over n answers is Binomial(n, 1/2) / n.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from neuromodulation.plastic import PlasticLinear, PlasticState

# -- pattern completion ---------------------------------------------------------------
PRES, DELAY, TEST, GAIN = 3, 2, 3, 20.0  # steps, steps, steps, input gain


def _patterns(batch: int, bits: int, count: int, g: torch.Generator
              ) -> tuple[torch.Tensor, ...]:
    pats = torch.randint(0, 2, (batch, count, bits), generator=g).float() * 2 - 1
    target = pats[torch.arange(batch), torch.randint(0, count, (batch,), generator=g)]
    hidden = torch.argsort(torch.rand(batch, bits, generator=g), 1)[:, : bits // 2]
    keep = torch.ones(batch, bits).scatter_(1, hidden, 0.0)
    return pats, target, keep


def _complete(layer: PlasticLinear, pats: torch.Tensor, target: torch.Tensor,
              keep: torch.Tensor) -> torch.Tensor:
    """Recurrent tanh network h(t) = tanh(h(t-1) (W + alpha Hebb) + GAIN input(t)), the
    trace updated with pre h(t-1) and post h(t) (Miconi's setup); returns the last h."""
    batch, count, bits = pats.shape
    state = layer.reset_trace(batch)
    h = torch.zeros(batch, bits)

    def tick(h: torch.Tensor, state: PlasticState, inp: torch.Tensor
             ) -> tuple[torch.Tensor, PlasticState]:
        h_new = torch.tanh(layer.current(h, state) + GAIN * inp)
        return h_new, layer.update(state, h, h_new)

    for p in range(count):
        for _ in range(PRES):
            h, state = tick(h, state, pats[:, p])
        for _ in range(DELAY):
            h, state = tick(h, state, torch.zeros_like(h))
    h = torch.zeros_like(h)  # the episode's memory must be in the weights
    for _ in range(TEST):
        h, state = tick(h, state, target * keep)
    return h


def _train_completion(plastic: bool, iters: int, bits: int = 64, count: int = 3,
                      seed: int = 0) -> float:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    layer = PlasticLinear(bits, bits, rule="hebb", eta=0.1, learn_eta=plastic,
                          alpha_init=0.01 if plastic else 0.0, learn_alpha=plastic)
    opt = torch.optim.Adam(layer.parameters(), lr=3e-3)
    for _ in range(iters):
        pats, target, keep = _patterns(16, bits, count, g)
        loss = (_complete(layer, pats, target, keep) - target).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        pats, target, keep = _patterns(200, bits, count, torch.Generator().manual_seed(99))
        h = _complete(layer, pats, target, keep)
    hidden = keep == 0
    return ((torch.sign(h) == target) & hidden).sum().item() / hidden.sum().item()


def test_pattern_completion_needs_plasticity() -> None:
    """64 bits, 3 patterns, 250 batches of 16 episodes. Plastic: > 0.9 of the zeroed
    bits right (measured 0.973). Plasticity off (alpha = 0, W still trained): within
    0.03 of 1/2 over n = 200 x 32 = 6400 zeroed bits, 4.8 binomial sd (two-sided
    p ~ 2e-6); measured 0.501."""
    plastic = _train_completion(True, 250)
    frozen = _train_completion(False, 250)
    assert plastic > 0.9, plastic
    assert abs(frozen - 0.5) < 0.03, (frozen, 0.5 / math.sqrt(200 * 32))


@pytest.mark.slow
def test_pattern_completion_larger() -> None:
    """256 bits, 5 patterns (Miconi used 1000 and 5), 300 batches; bound as above for
    n = 200 x 128 = 25600 bits (sd 0.0031): 0.02 is 6.4 sd. Measured 0.989 and 0.496
    (about 60 s on one core)."""
    plastic = _train_completion(True, 300, bits=256, count=5)
    frozen = _train_completion(False, 300, bits=256, count=5)
    assert plastic > 0.9, plastic
    assert abs(frozen - 0.5) < 0.02, frozen


# -- Backpropamine: delayed reward, mapping switched mid-episode -------------------------
D, K, A = 20, 3, 2
IN = D + A + 1            # cue, proposed action (one-hot), reward


def _reward_episodes(batch: int, g: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Inputs ``[2 * 3K, B, IN]`` (cue+proposal step, reward step per trial), queries
    ``[K, B, IN]`` and the answers after the switch ``[B, K]``."""
    b = torch.arange(batch)
    cues = torch.randint(0, 2, (batch, K, D), generator=g).float() * 2 - 1
    first = torch.randint(0, A, (batch, K), generator=g)
    after = (first + torch.randint(1, A, (batch, K), generator=g)) % A  # every answer moves
    steps = []
    for passes, answer in ((1, first), (2, after)):
        for _ in range(passes):
            order = torch.argsort(torch.rand(batch, K, generator=g), 1)
            for j in range(K):
                k = order[:, j]
                proposal = torch.randint(0, A, (batch,), generator=g)
                cue_step = torch.zeros(batch, IN)
                cue_step[:, :D] = cues[b, k]
                cue_step[b, D + proposal] = 1.0
                reward_step = torch.zeros(batch, IN)
                reward_step[:, -1] = (proposal == answer[b, k]).float() * 2 - 1
                steps += [cue_step, reward_step]
    queries = torch.zeros(K, batch, IN)
    queries[:, :, :D] = cues.transpose(0, 1)
    return torch.stack(steps), queries, after


class _RewardNet(nn.Module):
    """One plastic tanh layer IN -> A; with a modulator, M(t) = tanh(u . [x(t), y(t)] + c)
    (a scalar per episode and step) read out from the network's input and output."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        if kind == "retroactive":
            self.layer = PlasticLinear(IN, A, modulated=True, retroactive=True, eta=0.5,
                                       alpha_init=0.1, bias=True)
        elif kind == "simple":
            self.layer = PlasticLinear(IN, A, modulated=True, alpha_init=0.1, bias=True)
        elif kind == "plastic":
            self.layer = PlasticLinear(IN, A, rule="hebb", eta=0.5, alpha_init=0.1, bias=True)
        else:
            self.layer = PlasticLinear(IN, A, alpha_init=0.0, learn_alpha=False,
                                       learn_eta=False, bias=True)
        self.modulator = nn.Linear(IN + A, 1) if self.layer.modulated else None

    def forward(self, steps: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        state = self.layer.reset_trace(steps.shape[1])
        logits = []
        for n, x in enumerate(torch.cat([steps, queries])):
            i = self.layer.current(x, state)
            y = torch.tanh(i)
            m = None
            if self.modulator is not None:
                m = torch.tanh(self.modulator(torch.cat([x, y], 1)))[:, 0]
            state = self.layer.update(state, x, y, m)
            if n >= steps.shape[0]:
                logits.append(i)
        return torch.stack(logits)  # [K, B, A]


def _train_reward(kind: str, iters: int, seed: int) -> float:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net = _RewardNet(kind)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(iters):
        steps, queries, answer = _reward_episodes(32, g)
        loss = nn.functional.cross_entropy(net(steps, queries).reshape(-1, A),
                                           answer.t().reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        steps, queries, answer = _reward_episodes(500, torch.Generator().manual_seed(1234))
        return (net(steps, queries).argmax(-1) == answer.t()).float().mean().item()


def test_backpropamine_switches_learning_on_and_off() -> None:
    """600 batches of 32 episodes for each network. Retroactive modulation, seeds 0-3
    measured 0.94, 0.92, 0.87, 0.95 (mean 0.92, sd 0.035; ``test_backpropamine_seeds``):
    > 0.8 asked. The controls (simple modulation 0.493, plain Hebbian 0.493,
    non-plastic 0.485) are exactly at chance: over n = 500 x 3 = 1500 answers the sd is
    0.013, so each must lie within 0.05 (3.9 sd) of 1/2. The margin asserted, 0.25, is
    below the worst measured seed (0.87) minus the controls' bound (0.55)."""
    learned = _train_reward("retroactive", 600, 0)
    controls = {kind: _train_reward(kind, 600, 0) for kind in ("simple", "plastic", "none")}
    assert learned > 0.8, learned
    for kind, acc in controls.items():
        assert abs(acc - 0.5) < 0.05, (kind, acc)
    assert learned - max(controls.values()) > 0.25, (learned, controls)


@pytest.mark.slow
def test_backpropamine_seeds() -> None:
    """The seed spread the margin above rests on: four seeds, each > 0.8."""
    learned = [_train_reward("retroactive", 600, seed) for seed in range(4)]
    assert min(learned) > 0.8, learned
