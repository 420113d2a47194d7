"""Continual learning on digits: forgetting by its definition, and the claim that
replay with sleep consolidation keeps earlier classes while plain fine-tuning loses
them (class-incremental), with the final accuracies re-measured here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aura_snn.tasks.digits import load_digits
from neuromodulation.continual import ContinualConfig, average_forgetting, run


def test_average_forgetting_by_hand() -> None:
    r = np.array([[0.9, 0.0, 0.0],
                  [0.5, 0.8, 0.0],
                  [0.7, 0.2, 1.0]])
    # task 0: best before the end 0.9, final 0.7 -> 0.2; task 1: 0.8 -> 0.2 = 0.6
    assert average_forgetting(r) == pytest.approx((0.2 + 0.6) / 2, abs=1e-15)
    assert average_forgetting(r[:1, :1]) == 0.0


def _final_row(model: torch.nn.Module, steps: int) -> list[float]:
    """Class-incremental accuracy per task, written apart from the module's code."""
    _, _, xte, yte = load_digits(0.2, 0)
    with torch.no_grad():
        counts = model(xte.unsqueeze(0).repeat(steps, 1, 1)).sum(0)
    pred = counts.argmax(1)
    return [float((pred[(yte // 2) == k] == yte[(yte // 2) == k]).double().mean())
            for k in range(5)]


def test_replay_with_sleep_forgets_under_10_percent_where_finetuning_forgets_most() -> None:
    cfg = ContinualConfig(scenario="class")
    ft, rp = run("finetune", cfg), run("replay", cfg)
    for res in (ft, rp):
        assert np.allclose(res.accuracy[-1], _final_row(res.model, cfg.steps), atol=1e-12)
        # every task was learnt when it was trained (the diagonal), so forgetting is real
        assert min(np.diag(np.array(res.accuracy))) > 0.7
    assert ft.forgetting > 0.5 and ft.final_accuracy < 0.4
    assert rp.forgetting < 0.10 and rp.final_accuracy > 0.8
    assert rp.sleeps >= 5 and rp.replay_batches > rp.sleeps    # adenosine drove sleeps


def test_bad_method_and_scenario_are_named() -> None:
    with pytest.raises(ValueError, match="method"):
        run("dream")
    with pytest.raises(ValueError, match="scenario"):
        ContinualConfig(scenario="domain")
