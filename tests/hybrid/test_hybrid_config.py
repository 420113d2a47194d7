"""HybridConfig: validation names the field and value, unknown keys refused, JSON round trip."""

from __future__ import annotations

import json

import pytest

from hybrid.config import HybridConfig


def test_defaults_and_ffn_forms() -> None:
    c = HybridConfig(n_layers=3, ffn="spiking")
    assert c.ffn == ("spiking",) * 3 and c.spiking_layers == (0, 1, 2)
    assert HybridConfig(n_layers=3, ffn=["dense", "spiking", "dense"]).spiking_layers == (1,)
    assert HybridConfig(n_layers=3, ffn={2: "spiking"}).ffn == ("dense", "dense", "spiking")
    assert HybridConfig(n_layers=3, ffn={"2": "spiking"}).spiking_layers == (2,)  # JSON keys
    assert c.head_dim == c.d_model // c.n_heads


def test_dense_twin_is_one_switch() -> None:
    c = HybridConfig(n_layers=2, ffn=("dense", "spiking"), T=6)
    twin = c.replace(ffn="dense")
    assert twin.ffn == ("dense", "dense")
    assert {k: v for k, v in twin.to_dict().items() if k != "ffn"} == \
        {k: v for k, v in c.to_dict().items() if k != "ffn"}


@pytest.mark.parametrize("changes, field, value", [
    ({"n_heads": -2}, "n_heads", "-2"),
    ({"T": 0}, "T", "0"),
    ({"d_model": 30, "n_heads": 4}, "d_model", "30"),
    ({"n_layers": 2, "ffn": {5: "spiking"}}, "ffn", "5"),
    ({"n_layers": 2, "ffn": ("dense",)}, "ffn", "1 entries"),
    ({"ffn": "convolutional"}, "ffn", "'convolutional'"),
    ({"readout": "voltage"}, "readout", "'voltage'"),
    ({"positions": "sinusoidal"}, "positions", "'sinusoidal'"),
    ({"dropout": 1.0}, "dropout", "1.0"),
    ({"tau_mem": 1e-3, "dt": 1e-3}, "tau_mem", "0.001"),
    ({"vocab_size": 1}, "vocab_size", "1"),
    ({"context": 0}, "context", "0"),
    ({"d_model": 36, "n_heads": 4}, "head width", "9"),  # odd head width, rotary
    ({"threshold": -1.0}, "threshold", "-1.0"),
    ({"surrogate": "relu"}, "surrogate", "'relu'"),
])
def test_bad_values_name_field_and_value(changes: dict, field: str, value: str) -> None:
    with pytest.raises(ValueError) as info:
        HybridConfig(**changes)
    assert field in str(info.value) and value in str(info.value)


def test_wrong_types_are_type_errors() -> None:
    with pytest.raises(TypeError, match="n_heads"):
        HybridConfig(n_heads="4")
    with pytest.raises(TypeError, match="tie_embeddings"):
        HybridConfig(tie_embeddings=1)


def test_unknown_keys_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'n_head'"):
        HybridConfig.from_dict({"n_head": 4})
    with pytest.raises(ValueError, match="'heads'"):
        HybridConfig().replace(heads=2)


def test_json_round_trip() -> None:
    c = HybridConfig(vocab_size=300, d_model=48, n_heads=3, n_layers=3, d_ff=96, context=64,
                     dropout=0.1, positions="theta_gamma", ffn={1: "spiking"}, T=5,
                     readout="membrane", tau_mem=20e-3, slope=10.0, tie_embeddings=False)
    text = c.to_json()
    assert json.loads(text)["ffn"] == ["dense", "spiking", "dense"]
    back = HybridConfig.from_json(text)
    assert back == c and type(back.ffn) is tuple
    assert HybridConfig.from_json(HybridConfig().to_json()) == HybridConfig()
    with pytest.raises(ValueError, match="JSON"):
        HybridConfig.from_json("{not json")
