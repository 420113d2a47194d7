"""Episodic memories in checkpoints (hybrid.memory_state): a model rebuilt from a
checkpoint recalls what the saved one memorised. Oracle: the original model in this
process (its logits, greedy tokens and stored tensors), compared exactly."""

from __future__ import annotations

import pytest
import torch

import hybrid.checkpoint as ck
from aura_snn.errors import CorruptFileError
from hybrid import HippocampalTransformer, HybridConfig
from hybrid.memory_layer import memories
from hybrid.memory_state import memory_file_name, memory_files, restore_memories
from hybrid.one_shot import memorize, memory_mode

FACTS = [[3, 17, 29, 5], [8, 21, 2, 33], [11, 4, 38, 19]]
CFG = dict(vocab_size=40, d_model=16, n_heads=2, n_layers=2, d_ff=32, context=32,
           memory_layers=(0, 1), memory_top_k=3, memory_write_threshold=0.2)


def _model(seed: int) -> HippocampalTransformer:
    torch.manual_seed(seed)
    return HippocampalTransformer(HybridConfig(**CFG)).double().eval()


def _save(model: HippocampalTransformer, root) -> ck.Checkpoint:
    path = ck.save_checkpoint(root, 1, model=model.state_dict(), optimizer={"state": {},
                              "param_groups": []}, rng={}, state={"step": 1},
                              extra_files=memory_files(model))
    return ck.load_checkpoint(path)


def _fresh(saved: ck.Checkpoint) -> HippocampalTransformer:
    model = _model(seed=99)  # other weights, empty memory
    model.load_state_dict(saved.model, strict=True)
    return model


@torch.no_grad()
def _greedy(model: HippocampalTransformer, cue: list[int], n: int = 3) -> list[int]:
    ids = list(cue)
    for _ in range(n):
        logits, _ = model(torch.tensor([ids]))
        ids.append(int(logits[0, -1].argmax()))
    return ids[len(cue):]


def test_reloaded_model_recalls_exactly_what_was_memorised(tmp_path) -> None:
    model = _model(seed=0)
    written = memorize(model, FACTS)
    assert written > 0
    saved = _save(model, tmp_path)
    assert sorted(n for n in ck.read_manifest(saved.path)["files"] if n.startswith("memory")) \
        == [memory_file_name(0), memory_file_name(1)]
    probe = torch.tensor([[f[0] for f in FACTS] + [f[1] for f in FACTS]])
    with memory_mode(model, writing=False):
        want_logits, _ = model(probe)
        want_tokens = [_greedy(model, f[:2]) for f in FACTS]

    blank = _fresh(saved)
    with memory_mode(blank, writing=False):
        blank_logits, _ = blank(probe)
    assert not torch.equal(blank_logits, want_logits)  # the memory changes the answer

    fresh = _fresh(saved)
    assert restore_memories(fresh, saved) == written
    for i, mem in memories(model).items():
        a, b = mem.store.to_tensors()[0], memories(fresh)[i].store.to_tensors()[0]
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), (i, k)
    with memory_mode(fresh, writing=False):
        got_logits, _ = fresh(probe)
        got_tokens = [_greedy(fresh, f[:2]) for f in FACTS]
    assert torch.equal(got_logits, want_logits)
    assert got_tokens == want_tokens


def test_missing_file_empties_the_store_and_damage_is_refused(tmp_path) -> None:
    model = _model(seed=0)
    saved = _save(model, tmp_path / "empty")  # nothing memorised: no memory files
    fresh = _fresh(saved)
    memorize(fresh, FACTS)
    assert restore_memories(fresh, saved) == 0
    assert all(len(m.store) == 0 for m in memories(fresh).values())

    memorize(model, FACTS)
    saved = _save(model, tmp_path / "full")
    path = saved.path / memory_file_name(1)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    fresh = _fresh(saved)
    memorize(fresh, FACTS[:1])
    before = len(memories(fresh)[0].store)
    with pytest.raises(CorruptFileError, match=memory_file_name(1).replace(".", r"\.")):
        restore_memories(fresh, saved)
    assert len(memories(fresh)[0].store) == before  # nothing replaced


def test_training_checkpoints_carry_the_memories(tmp_path) -> None:
    from hybrid.train import train
    from hybrid.train_config import TrainConfig

    model = _model(seed=0).float()
    memorize(model, FACTS)
    cfg = TrainConfig(lr=1e-3, min_lr=1e-4, warmup_steps=1, max_steps=2, batch_size=2,
                      seq_len=8, tensorboard=False, device="cpu")
    tokens = torch.arange(400) % 40
    train(model, {"train": tokens, "val": None}, cfg, out_dir=tmp_path, until=1)
    fresh = _model(seed=99).float()
    train(fresh, {"train": tokens, "val": None}, cfg, out_dir=tmp_path, until=1)  # resume
    for i, mem in memories(model).items():
        a, b = mem.store.to_tensors()[0], memories(fresh)[i].store.to_tensors()[0]
        assert len(mem.store) > 0 and a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)
