"""Gates and ACh/NE: each output against its equation written out here, the ranges the
docstrings promise, and the amygdala's strength deciding what an episodic memory keeps."""

from __future__ import annotations

import math

import pytest
import torch

from aura_snn.memory import EpisodicMemory
from neuromodulation.attention import Acetylcholine, Norepinephrine
from neuromodulation.gates import Amygdala, Endocrine, Thalamus


def _sig(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def test_amygdala_salience_and_write_strength() -> None:
    a = Amygdala(gain=3.0, threshold=0.4, floor=0.2)
    r = torch.tensor([-0.9, 0.0, 0.3], dtype=torch.float64)
    nu = torch.tensor([0.0, 0.1, 2.0], dtype=torch.float64)
    want = [_sig(3.0 * (0.9 - 0.4)), _sig(3.0 * (0.1 - 0.4)), _sig(3.0 * (2.3 - 0.4))]
    assert a.salience(r, nu).tolist() == pytest.approx(want, rel=1e-12)
    m = a.write_strength(r, nu)
    assert m.tolist() == pytest.approx([0.2 + 0.8 * w for w in want], rel=1e-12)
    assert float(m.min()) >= 0.2 and float(m.max()) <= 1.0


def test_salient_memories_survive_eviction_that_takes_the_unsalient() -> None:
    """Write strength as importance: with room for 4 of 8 memories, the 4 salient ones
    (reward 0.9) stay and the 4 neutral ones go."""
    a = Amygdala()
    mem = EpisodicMemory(8, capacity=4)
    keys = torch.randn(8, 8)
    reward = torch.tensor([0.9, 0.0] * 4)
    ids = mem.write(keys, importance=a.write_strength(reward, 0.0))
    assert len(mem) == 4 and set(mem.last_evicted.tolist()) == set(ids[1::2].tolist())


def test_endocrine_level_is_exact_and_scales_are_clipped() -> None:
    e = Endocrine(tau=20.0, beta_lr=-0.7, beta_decay=0.4, max_scale=3.0)
    h = torch.tensor(0.0, dtype=torch.float64)
    for _ in range(50):
        h = e.step(h, 2.0, 0.4)
    assert float(h) == pytest.approx(2.0 * (1 - math.exp(-20.0 / 20.0)), rel=1e-12)
    assert float(e.lr_scale(h)) == pytest.approx(math.exp(-0.7 * float(h)), rel=1e-12)
    assert float(e.decay_scale(torch.tensor(10.0))) == 3.0       # e^4 clipped to 3
    assert float(e.lr_scale(torch.tensor(10.0))) == pytest.approx(1 / 3)


def test_thalamus_soft_and_hard_gates() -> None:
    t = Thalamus(gain=8.0, threshold=0.6)
    x = torch.ones(3, 2, 4, dtype=torch.float64)
    s = torch.tensor([0.1, 0.6, 0.95], dtype=torch.float64)
    y = t(x, s)
    for b, sb in enumerate(s.tolist()):
        assert torch.all(y[b] == _sig(8.0 * (sb - 0.6)))
    hard = Thalamus(threshold=0.6, hard=True)(x, s)
    assert hard[:, 0, 0].tolist() == [0.0, 1.0, 1.0]


def test_acetylcholine_gain_lr_and_recurrent_suppression() -> None:
    ach = Acetylcholine(gain=2.0, lr=0.5, recurrent=0.8)
    a = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    assert ach.input_gain(a).tolist() == [1.0, 2.0, 3.0]
    assert ach.lr_scale(a).tolist() == [1.0, 1.25, 1.5]
    assert float(ach.recurrent_gain(a)) == pytest.approx(1 - 0.8 * 0.5)


def test_norepinephrine_surprise_is_relative_to_the_running_error() -> None:
    ne = Norepinephrine(gain=1.5, lr=2.0, max_gain=3.0, tau=5.0)
    m = torch.tensor(0.0, dtype=torch.float64)
    for _ in range(200):                            # habituate to |e| = 0.5
        nu, m = ne.surprise(m, 0.5, 0.1)
    assert float(m) == pytest.approx(0.5 * (1 - math.exp(-200 * 0.1 / 5.0)), rel=1e-12)
    assert float(nu) == 0.0 or float(nu) < 0.02      # as usual: (almost) not novel
    nu, _ = ne.surprise(m, 2.0, 0.1)                 # four times the usual error
    assert float(nu) == pytest.approx(2.0 / (float(m) + 1e-6) - 1, rel=1e-12)
    assert float(ne.input_gain(nu)) == 3.0           # clipped at max_gain
    assert float(ne.lr_scale(0.25)) == 1.5
    assert float(ne.unfamiliarity(0.8)) == pytest.approx(0.2)


@pytest.mark.parametrize("make,name", [
    (lambda: Amygdala(floor=1.5), "floor"),
    (lambda: Amygdala().salience(2.0, 0.0), "reward"),
    (lambda: Amygdala().salience(0.0, -1.0), "novelty"),
    (lambda: Endocrine(tau=0.0), "tau"),
    (lambda: Endocrine(max_scale=0.5), "max_scale"),
    (lambda: Endocrine().step(0.0, float("nan"), 1.0), "stress"),
    (lambda: Thalamus(threshold=2.0), "threshold"),
    (lambda: Thalamus().gate(1.5), "salience"),
    (lambda: Acetylcholine(recurrent=2.0), "recurrent"),
    (lambda: Acetylcholine().input_gain(-0.1), "attention"),
    (lambda: Norepinephrine(max_gain=0.5), "max_gain"),
    (lambda: Norepinephrine().input_gain(-1.0), "novelty"),
])
def test_bad_inputs_are_named(make, name: str) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match=name):
        make()
