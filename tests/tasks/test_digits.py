"""The spiking digits classifier trains to >= 95 % test accuracy on the CPU."""

from __future__ import annotations

import json
import math

import pytest

from aura_snn.cli import main
from aura_snn.tasks.digits import DigitsConfig, train


def test_spiking_mlp_reaches_95_percent_and_reports_rates() -> None:
    result = train(DigitsConfig())  # the demo's configuration: 20 epochs, ~15-40 s on 2 cores
    assert result.test_accuracy >= 0.95, result.test_accuracy
    assert set(result.layers) == {"lif1", "lif2"}
    for layer in result.layers.values():
        assert 0.0 < layer["rate_hz"] < 1000.0 and math.isfinite(layer["rate_hz"])
        assert 0.0 < layer["sparsity"] < 1.0
    assert result.history[-1]["loss"] < result.history[0]["loss"]


def test_demo_command_writes_summary_and_raster(tmp_path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--hidden", "32", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["epochs"] == 3
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    assert {"lif1", "lif2"} == set(summary["layers"])
    assert (out / "raster.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = capsys.readouterr().out
    assert "test accuracy" in text and "sparsity" in text
    # the saved classifier, reloaded, scores exactly the test accuracy the run reported
    from aura_snn.neurons.saved import load_model
    from aura_snn.tasks.digits import evaluate, load_digits

    cfg = summary["config"]
    _, _, xte, yte = load_digits(cfg["test_fraction"], cfg["seed"])
    model = load_model(out / "model")
    assert evaluate(model, xte, yte, cfg["steps"]) == summary["test_accuracy"]


def test_demo_rejects_bad_options(capsys) -> None:
    assert main(["demo", "--epochs", "0", "--out", "unused"]) == 2
    assert "epochs must be >= 1" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"]])
def test_help(argv, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
