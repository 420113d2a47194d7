"""``aura-snn train`` and ``aura-snn generate`` (plugins of hybrid.cli).

Oracles: the token files against the corpus split encoded here by the tokenizer; the
generated text against a greedy loop written here (argmax over the full window, no
cache) on weights read straight from model.safetensors; the file's bytes for the
validation cut; one-line errors naming file, line and key.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from aura_snn.cli import main

TINY = """
out_dir = "unused"
[model]
d_model = 16
n_heads = 2
n_layers = 1
d_ff = 24
context = 16
ffn = "spiking"
T = 2
[train]
lr = 1e-2
warmup_steps = 1
max_steps = 6
batch_size = 4
seq_len = 16
eval_every = 3
eval_windows = 4
tensorboard = false
device = "cpu"
[data]
{data}
"""


def write(tmp: Path, data: str = 'corpus = "pydoc"', name: str = "run.toml", **swap) -> Path:
    """The tiny run file with ``data`` as its [data] table and each ``old: new`` swapped."""
    text = TINY.format(data=data)
    for old, new in swap.items():
        assert old in text, old
        text = text.replace(old, new)
    p = tmp / name
    p.write_text(text)
    return p


def one_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("cli")
    out = tmp / "out"
    assert main(["train", "--config", str(write(tmp)), "--out", str(out), "--quiet"]) == 0
    return out


def test_train_writes_tokens_log_and_checkpoint(trained) -> None:
    from hybrid.data import default_split
    from hybrid.tokenizer import ByteTokenizer
    from hybrid.train_log import read_log

    split, tok = default_split(0.1), ByteTokenizer()
    train_ids = np.fromfile(trained / "data" / "train.bin", dtype=np.uint16)
    val_ids = np.fromfile(trained / "data" / "val.bin", dtype=np.uint16)
    assert train_ids.tolist() == tok.encode(split.train)
    assert val_ids.tolist() == tok.encode(split.validation)
    rows = read_log(trained / "train_log.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r["val_loss"] != "" for r in rows] == [False, False, True, False, False, True]
    assert "rate.0" in rows[0] and 0 <= float(rows[-1]["rate.0"]) <= 1
    folder = trained / "checkpoints" / "step-00000006"
    state = json.loads((folder / "state.json").read_text())
    assert state["model_config"]["vocab_size"] == 259 and state["model_config"]["d_ff"] == 24
    assert json.loads((folder / "tokenizer.json").read_text())["format"] == \
        "aura-snn byte tokenizer"


def test_generate_equals_a_greedy_loop_on_the_saved_weights(trained, capsys) -> None:
    from safetensors.torch import load_file

    from hybrid import ByteTokenizer, HippocampalTransformer, HybridConfig

    folder = trained / "checkpoints" / "step-00000006"
    state = json.loads((folder / "state.json").read_text())
    model = HippocampalTransformer(HybridConfig.from_dict(state["model_config"]))
    model.load_state_dict(load_file(folder / "model.safetensors"))
    model.eval()
    ids = ByteTokenizer().encode("The ")
    new = []
    with torch.no_grad():
        for _ in range(8):
            logits, _ = model(torch.tensor([ids[-16:]]))
            nxt = int(logits[0, -1].argmax())
            ids.append(nxt)
            new.append(nxt)
    capsys.readouterr()
    assert main(["generate", "--checkpoint", str(trained), "--prompt", "The ",
                 "--max-new-tokens", "8", "--temperature", "0"]) == 0
    assert capsys.readouterr().out == ByteTokenizer().decode(new) + "\n"


def test_rerun_resumes_and_refuses_other_settings(trained, tmp_path, capsys) -> None:
    config = write(tmp_path)
    assert main(["train", "--config", str(config), "--out", str(trained), "--quiet"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    other = write(tmp_path, name="b.toml", **{"max_steps = 6": "max_steps = 9"})
    assert main(["train", "--config", str(other), "--out", str(trained), "--quiet"]) == 2
    assert "train.max_steps is 6 there and 9 here" in one_error(capsys)
    other = write(tmp_path, 'corpus = "pydoc"\nval_fraction = 0.2', name="c.toml")
    assert main(["train", "--config", str(other), "--out", str(trained), "--quiet"]) == 2
    assert "data.val_fraction is 0.1 there and 0.2 here" in one_error(capsys)
    assert main(["train", "--config", str(config), "--out", str(trained), "--no-resume"]) == 2
    assert "already holds checkpoints" in one_error(capsys)


@pytest.mark.parametrize("swap,message", [
    ({"lr = 1e-2": "lrate = 1e-2"}, r"run.toml:\d+: train\.lrate: unknown key"),
    ({"[data]": "colour = 3\n[data]"}, r"train\.colour: unknown key"),
    ({"n_heads = 2": "n_heads = -1"}, r"run.toml:\d+: model\.n_heads: .*-1"),
    ({"seq_len = 16": "seq_len = 32"}, r"train\.seq_len: is 32, longer than the model's "
                                       r"context of 16"),
    ({"max_steps = 6": "max_steps = 0"}, r"train\.max_steps: TrainConfig\.max_steps must be "
                                         r">= 1, got 0"),
    ({'out_dir = "unused"': 'out_dir = "unused"\nextra = 1'}, r"extra: unknown key"),
])
def test_bad_run_files_get_one_line_and_write_nothing(tmp_path, capsys, swap, message) -> None:
    out = tmp_path / "out"
    code = main(["train", "--config", str(write(tmp_path, **swap)), "--out", str(out)])
    assert code == 2
    assert re.search(message, one_error(capsys))
    assert not (out / "checkpoints").exists()


def test_missing_or_damaged_checkpoint_and_long_prompt(trained, tmp_path, capsys) -> None:
    import shutil

    assert main(["train", "--config", str(tmp_path / "none.toml")]) == 2
    assert "no such run file" in one_error(capsys)
    assert main(["generate", "--checkpoint", str(tmp_path / "nope"), "--prompt", "x"]) == 2
    assert "no checkpoint folder" in one_error(capsys)
    assert main(["generate", "--checkpoint", str(trained), "--prompt", "x" * 17]) == 2
    assert "prompt has 17 tokens, longer than the context of 16" in one_error(capsys)
    bad = tmp_path / "bad"
    shutil.copytree(trained / "checkpoints" / "step-00000006", bad)
    blob = bytearray((bad / "model.safetensors").read_bytes())
    blob[-3] ^= 1
    (bad / "model.safetensors").write_bytes(bytes(blob))
    assert main(["generate", "--checkpoint", str(bad), "--prompt", "x"]) == 2
    assert "model.safetensors: SHA-256 differs" in one_error(capsys)


def test_text_file_corpus_with_bpe(tmp_path, capsys) -> None:
    from hybrid.tokenizer import load_tokenizer

    words = [f"token{i % 37} value{(i * 7) % 11}" for i in range(3000)]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(" ".join(words))
    data = 'corpus = "corpus.txt"\ntokenizer = "bpe"\nvocab_size = 300\nval_fraction = 0.25'
    out = tmp_path / "out"
    assert main(["train", "--config", str(write(tmp_path, data)), "--out", str(out),
                 "--quiet"]) == 0
    tok = load_tokenizer(out / "checkpoints" / "step-00000006" / "tokenizer.json")
    state = json.loads((out / "checkpoints" / "step-00000006" / "state.json").read_text())
    assert 259 < tok.vocab_size <= 300 and state["model_config"]["vocab_size"] == tok.vocab_size
    text = corpus.read_text()
    val_text = tok.decode(np.fromfile(out / "data" / "val.bin", dtype=np.uint16).tolist())
    train_text = tok.decode(np.fromfile(out / "data" / "train.bin", dtype=np.uint16).tolist())
    assert train_text + val_text == text
    assert abs(len(val_text) - 0.25 * len(text)) < 64 and val_text.startswith("token")
    capsys.readouterr()
    assert main(["generate", "--checkpoint", str(out), "--prompt", "token1",
                 "--max-new-tokens", "5", "--seed", "3", "--top-k", "5"]) == 0
    first = capsys.readouterr().out
    assert main(["generate", "--checkpoint", str(out), "--prompt", "token1",
                 "--max-new-tokens", "5", "--seed", "3", "--top-k", "5"]) == 0
    assert capsys.readouterr().out == first


def test_example_config_parses() -> None:
    from hybrid.cli._run_config import build_model_config, load_run_config

    run = load_run_config(Path(__file__).resolve().parents[2] / "examples" / "hybrid_tiny.toml")
    cfg = build_model_config(run, 259)
    assert cfg.ffn == ("dense", "spiking") and run.train.seq_len <= cfg.context
    assert run.data.corpus == "pydoc" and run.out_dir == "out/hybrid_tiny"
