"""hybrid.checkpoint / hybrid.train_state: exact resume, atomic folders, verification.

Oracles: the straight run itself (N steps in one go is the reference a resumed run
must repeat bit for bit, losses step by step and final weights); each generator's own
continuation for the RNG states; torch's ``optimizer.state_dict()`` for the optimizer
round trip; the bytes on disk (hashed here) for "nothing overwritten".
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from _train_lm import TinyLM, corpus

import hybrid.checkpoint as ck
from aura_snn.errors import CorruptFileError, StateMismatchError
from hybrid.train import train
from hybrid.train_config import TrainConfig
from hybrid.train_log import read_log
from hybrid.train_state import flatten_optimizer, rng_state, set_rng_state, unflatten_optimizer

ROOT = Path(__file__).resolve().parents[2]


def cfg(**kw) -> TrainConfig:
    base = dict(lr=5e-3, min_lr=5e-4, warmup_steps=2, max_steps=7, batch_size=3, seq_len=10,
                grad_accum=2, grad_clip=0.5, eval_every=0, tensorboard=False, device="cpu")
    return TrainConfig(**{**base, **kw})


def hippo(seed: int, **kw) -> torch.nn.Module:
    from hybrid import HippocampalTransformer, HybridConfig

    torch.manual_seed(seed)
    c = dict(vocab_size=32, d_model=16, n_heads=2, n_layers=2, d_ff=24, context=16,
             ffn=["spiking", "dense"], T=2, dropout=0.2)
    return HippocampalTransformer(HybridConfig(**{**c, **kw})).double()


def tiny(seed: int, **kw) -> torch.nn.Module:
    torch.manual_seed(seed)
    return TinyLM(dropout=0.3, **kw)


DATA = {"train": corpus(3000), "val": corpus(600, seed=1)}


@pytest.mark.parametrize("make", [tiny, hippo], ids=["tiny", "hippocampal"])
def test_resume_repeats_the_straight_run_bit_for_bit(tmp_path, make) -> None:
    straight = make(0)
    full = train(straight, DATA, cfg(), out_dir=tmp_path / "a")
    first = train(make(0), DATA, cfg(), out_dir=tmp_path / "b", until=3)
    assert first.checkpoint == tmp_path / "b" / "checkpoints" / "step-00000003"
    # a fresh process: other weights, other RNG streams, everything from the checkpoint
    torch.manual_seed(999)
    np.random.seed(5)
    random.seed(7)
    resumed_model = make(123)
    rest = train(resumed_model, DATA, cfg(), out_dir=tmp_path / "b")
    losses = [r["loss"] for r in full.rows]
    assert [r["loss"] for r in first.rows + rest.rows] == losses
    assert [r["grad_norm"] for r in first.rows + rest.rows] == [r["grad_norm"] for r in full.rows]
    assert rest.rows[0]["step"] == 4 and rest.step == 7
    for (name, a), b in zip(straight.state_dict().items(), resumed_model.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name
    log = read_log(tmp_path / "b" / "train_log.csv")
    assert [int(r["step"]) for r in log] == list(range(1, 8))
    assert [float(r["loss"]) for r in log] == losses
    # the RNG restore is what makes dropout repeat: without it the curve leaves the path
    bad = make(0)
    train(bad, DATA, cfg(), out_dir=tmp_path / "c", until=3)
    folder = ck.latest(tmp_path / "c" / "checkpoints")
    rng = ck.load_checkpoint(folder).rng
    torch.manual_seed(1)
    cpu = {k: v for k, v in rng.items() if k != "rank0.torch_cpu"}
    cpu["rank0.torch_cpu"] = torch.get_rng_state()
    _rewrite_rng(folder, cpu)
    off = train(make(0), DATA, cfg(), out_dir=tmp_path / "c")
    assert [r["loss"] for r in off.rows] != losses[3:]


def _rewrite_rng(folder: Path, rng: dict[str, torch.Tensor]) -> None:
    """Replace rng.safetensors and re-seal the manifest (a consistent, altered checkpoint)."""
    from safetensors.torch import save

    data = save(rng)
    (folder / "rng.safetensors").write_bytes(data)
    man = json.loads((folder / "manifest.json").read_text())
    man["files"]["rng.safetensors"] = {"bytes": len(data),
                                       "sha256": hashlib.sha256(data).hexdigest()}
    (folder / "manifest.json").write_text(json.dumps(man))


def test_rng_states_round_trip_through_tensors() -> None:
    torch.manual_seed(3)
    np.random.seed(3)
    random.seed(3)
    np.random.standard_normal()  # leaves numpy's cached Gaussian set
    random.gauss(0, 1)  # and python's gauss_next
    st = rng_state()
    expect = (torch.rand(4), np.random.standard_normal(3), random.gauss(0, 1), random.random())
    torch.rand(10), np.random.random(10), random.random()
    set_rng_state({k: v.clone() for k, v in st.items()})
    got = (torch.rand(4), np.random.standard_normal(3), random.gauss(0, 1), random.random())
    assert torch.equal(got[0], expect[0]) and np.array_equal(got[1], expect[1])
    assert got[2:] == expect[2:]


def test_optimizer_state_round_trips_through_tensors_and_json() -> None:
    model = TinyLM()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.8, 0.9))
    for _ in range(2):
        model(corpus(50)[:40].view(4, 10))[0].square().mean().backward()
        opt.step()
    sd = opt.state_dict()
    tensors, structure = flatten_optimizer(sd)
    back = unflatten_optimizer(tensors, json.loads(json.dumps(structure)), sd)
    assert back["param_groups"] == sd["param_groups"]
    assert back["state"].keys() == sd["state"].keys()
    for pid, entry in sd["state"].items():
        for key, v in entry.items():
            assert torch.equal(back["state"][pid][key], v) and \
                back["state"][pid][key].dtype == v.dtype


@pytest.fixture
def saved(tmp_path):
    out = tmp_path / "run"
    train(tiny(0), DATA, cfg(), out_dir=out, until=2)
    return out, ck.latest(out / "checkpoints")


def _damage(folder: Path, how: str) -> None:
    if how == "truncated":
        p = folder / "model.safetensors"
        p.write_bytes(p.read_bytes()[:-9])
    elif how == "flipped":
        p = folder / "optimizer.safetensors"
        b = bytearray(p.read_bytes())
        b[len(b) // 2] ^= 0x10
        p.write_bytes(bytes(b))
    elif how == "no_manifest":
        (folder / "manifest.json").unlink()
    elif how == "foreign":
        (folder / "manifest.json").write_text(json.dumps({"format": "someone-else", "files": {}}))
    elif how == "stray":
        (folder / "notes.txt").write_text("hello")
    elif how == "garbage_sealed":
        _rewrite_blob(folder, "model.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{nonsense")


def _rewrite_blob(folder: Path, name: str, data: bytes) -> None:
    (folder / name).write_bytes(data)
    man = json.loads((folder / "manifest.json").read_text())
    man["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (folder / "manifest.json").write_text(json.dumps(man))


@pytest.mark.parametrize("how,message", [
    ("truncated", r"model\.safetensors holds \d+ bytes, the manifest says \d+ \(truncated"),
    ("flipped", r"optimizer\.safetensors: SHA-256 differs"),
    ("no_manifest", r"no manifest\.json: an unfinished save or not an aura-snn checkpoint"),
    ("foreign", r"not an aura-snn hybrid checkpoint manifest \(format 'someone-else'\)"),
    ("stray", r"file notes\.txt is not in the manifest"),
    ("garbage_sealed", r"model\.safetensors: not a readable safetensors file"),
])
def test_damaged_checkpoints_are_refused_and_nothing_is_loaded(saved, how, message) -> None:
    out, folder = saved
    _damage(folder, how)
    model = tiny(42)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CorruptFileError, match=message) as info:
        train(model, DATA, cfg(), out_dir=out)
    assert str(folder) in str(info.value)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("change,message", [
    ("model", r"model\.d_ff is 24 there and 32 here"),
    ("train", r"train\.lr is 0\.005 there and 0\.002 here"),
    ("shape", r"tensor 'embed\.weight' is torch\.float64 \(32, 8\) in the checkpoint and "
              r"torch\.float64 \(32, 6\) here"),
])
def test_checkpoint_from_another_config_names_the_field(tmp_path, change, message) -> None:
    out = tmp_path / "run"
    train(hippo(0) if change == "model" else tiny(0), DATA, cfg(), out_dir=out, until=1)
    model = {"model": lambda: hippo(1, d_ff=32), "train": lambda: tiny(1),
             "shape": lambda: tiny(1, d=6)}[change]()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(StateMismatchError, match=message):
        train(model, DATA, cfg(lr=2e-3) if change == "train" else cfg(), out_dir=out)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    # fields that only change how a run is observed may differ
    if change == "train":
        res = train(tiny(1), DATA, cfg(eval_every=3, keep_last=1), out_dir=out, until=2)
        assert res.step == 2


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_nothing_saved_is_overwritten_and_old_checkpoints_rotate(saved, tmp_path) -> None:
    out, folder = saved
    before = _hashes(folder)
    with pytest.raises(FileExistsError, match="already holds checkpoints"):
        train(tiny(0), DATA, cfg(), out_dir=out, resume=False)
    with pytest.raises(FileExistsError, match="never overwritten"):
        ck.save_checkpoint(folder.parent, 2, model={}, optimizer={"state": {},
                           "param_groups": []}, rng={}, state={"step": 2})
    assert _hashes(folder) == before
    res = train(tiny(0), DATA, cfg(save_every=1, keep_last=2), out_dir=tmp_path / "rot")
    names = [p.name for _, p in ck.list_checkpoints(tmp_path / "rot" / "checkpoints")]
    assert names == ["step-00000006", "step-00000007"] and res.checkpoint.name == names[-1]
    assert not [p for p in (tmp_path / "rot" / "checkpoints").iterdir()
                if p.name.startswith(".")]


def test_a_save_cut_short_leaves_no_checkpoint(tmp_path, monkeypatch) -> None:
    root = tmp_path / "ck"
    t = {"w": torch.arange(6.0)}
    opt = {"state": {}, "param_groups": [{"params": [0], "lr": 0.1}]}
    calls = []

    def failing(path, data):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        Path(path).write_bytes(data)

    monkeypatch.setattr(ck, "_write", failing)
    with pytest.raises(OSError, match="disk full"):
        ck.save_checkpoint(root, 1, model=t, optimizer=opt, rng={}, state={"step": 1})
    assert list(root.iterdir()) == []
    monkeypatch.undo()
    # a process killed just before the rename leaves only its temporary folder
    script = textwrap.dedent(f"""
        import os, torch, hybrid.checkpoint as ck
        os.rename = lambda a, b: os._exit(9)
        ck.save_checkpoint({str(root)!r}, 1, model={{"w": torch.arange(6.0)}},
                           optimizer={opt!r}, rng={{}}, state={{"step": 1}})
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True)
    assert proc.returncode == 9, proc.stderr.decode()
    left = [p.name for p in root.iterdir()]
    assert len(left) == 1 and left[0].startswith(".step-00000001.") and ck.latest(root) is None
    path = ck.save_checkpoint(root, 1, model=t, optimizer=opt, rng={}, state={"step": 1})
    assert [p.name for p in root.iterdir()] == ["step-00000001"]  # the stale one removed
    loaded = ck.load_checkpoint(path)
    assert torch.equal(loaded.model["w"], t["w"]) and loaded.step == 1
