"""Graph state files: every tensor and the header checksummed, indices and structure checked
against the graph before anything is used, loads all or nothing, files get the umask's
mode, and stale temporaries of a killed save are cleaned (issue "Hardening what landed",
items 1, 2 and 4).

Regression tests are named after the bug they pin; "before" numbers in docstrings were
measured on the code before the fix.
"""

from __future__ import annotations

import json
import math
import os
import random
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
import torch

from aura_snn.errors import AuraError, CorruptFileError, StateMismatchError
from aura_snn.graph import (
    Graph,
    InputRegion,
    PlasticityRule,
    PoissonRegion,
    SpikingRegion,
    SynapseModel,
    from_indices,
)

ROOT = Path(__file__).resolve().parents[2]
DT = 1e-4
W = 2.0 ** -9


# -- a graph that holds every kind of state --------------------------------------------
class Count(NamedTuple):
    n: torch.Tensor          # [B, nnz] arrivals per synapse


class SynapseCount(PlasticityRule):
    """State: arrivals per synapse; dw = eta * arrivals (so the plastic part changes)."""

    batch_reduction = "mean"

    def initial_state(self, projection, batch, device, dtype):  # noqa: ANN001, ANN201
        return Count(torch.zeros(batch, projection.nnz, device=device, dtype=dtype))

    def update(self, activity, w, state, dt, modulators):  # noqa: ANN001, ANN201
        return 2.0 ** -12 * activity.pre_syn, Count(state.n + activity.pre_syn)


class Resources(NamedTuple):
    x: torch.Tensor          # [B, n_pre]


class Depressing(SynapseModel):
    """e = U x; after a spike x -= U x; recovery towards 1 with tau (s)."""

    def __init__(self, U: float = 0.5, tau: float = 5e-3) -> None:
        self.U, self.tau = U, tau

    def initial_state(self, n_pre, batch, device, dtype):  # noqa: ANN001, ANN201
        return Resources(torch.ones(batch, n_pre, device=device, dtype=dtype))

    def step(self, y, state, dt):  # noqa: ANN001, ANN201
        e = self.U * state.x
        x = state.x - e * y
        return e, Resources(1.0 - (1.0 - x) * math.exp(-dt / self.tau))


def rich_graph(model: str = "cuba_refractory", n_e: int = 6) -> Graph:
    """Poisson -> E (sparse, per-synapse delays, traces, a rule: rule state, history and a
    plastic part) -> L (dense, a synapse model: synapse state); E has pending inputs."""
    g = Graph(dt=DT, seed=4).double()
    g.add(PoissonRegion("noise", 8, rate=400.0))
    init = {"v": {"uniform": [-0.06, -0.05]}} if model == "cuba_refractory" else None
    g.add(SpikingRegion("E", n_e, model, init=init))
    g.add(SpikingRegion("L", 3, "lif"))
    pre = [0, 1, 2, 3, 4, 5, 6, 7, 0, 3]
    post = [k % n_e for k in (0, 1, 2, 3, 4, 5, 0, 1, 2, 4)]
    conn = from_indices(pre, post, 8, n_e)
    weight = 64 * W if model == "cuba_refractory" else 0.5
    p = g.connect("noise", "E", connectivity=conn, weight=weight,
                  delay=np.array([0, 1, 2, 3, 0, 1, 2, 3, 1, 2]))
    p.enable_traces(tau_pre=2e-3, tau_post=4e-3)
    p.add_rule(SynapseCount())
    g.connect("E", "L", torch.full((n_e, 3), 0.5, dtype=torch.float64), synapse=Depressing())
    return g


def saved_rich(tmp_path: Path, model: str = "cuba_refractory", n_e: int = 6,
               steps: int = 200) -> tuple[Graph, Path]:
    g = rich_graph(model, n_e)
    g.run(steps, backend="torch")
    path = tmp_path / f"{model}-{n_e}.safetensors"
    g.save_state(path)
    return g, path


def engine_graph() -> Graph:
    """A graph the compiled engine runs: Poisson -> E, sparse."""
    g = Graph(dt=DT, seed=2).double()
    g.add(PoissonRegion("noise", 16, rate=300.0))
    g.add(SpikingRegion("E", 8, "cuba_refractory", init={"v": {"uniform": [-0.06, -0.05]}}))
    conn = from_indices(list(range(16)), [k % 8 for k in range(16)], 16, 8)
    g.connect("noise", "E", connectivity=conn, weight=32 * W, delay=2)
    return g


# -- safetensors layout ------------------------------------------------------------------
def layout(data: bytes) -> tuple[int, dict[str, Any]]:
    """``(start of the data section, header JSON)`` of a safetensors file."""
    n = int.from_bytes(data[:8], "little")
    return 8 + n, json.loads(data[8:8 + n])


def tensor_span(data: bytes, name: str) -> tuple[int, int]:
    start, header = layout(data)
    a, b = header[name]["data_offsets"]
    return start + a, start + b


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def snapshot(g: Graph) -> dict[str, torch.Tensor]:
    """Every parameter, buffer and state tensor of ``g`` (copies)."""
    out = {f"param.{k}": v.detach().clone() for k, v in g.state_dict().items()}
    if g.state is not None:
        out.update({k: v.clone() for k, v in g.state_tensors().items()})
    return out


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and torch.equal(a[k], b[k])
        for k in a)


# -- item 1: checksums, index ranges ---------------------------------------------------
CHILD_RUN = """
import sys
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])
from test_state_file import engine_graph
from aura_snn.errors import CorruptFileError
g = engine_graph()
try:
    g.load_state(sys.argv[3])
except CorruptFileError as exc:
    print("CorruptFileError:", exc)
    sys.exit(0)
g.run(3000, backend="engine")
print("ran")
"""


def test_flipped_bit_in_post_idx_is_refused_not_a_segfault(tmp_path: Path) -> None:
    """Before: the file loaded and ``g.run()`` on the engine died with SIGSEGV (rc -11)."""
    g = engine_graph()
    g.run(20, backend="engine")
    path = tmp_path / "s.safetensors"
    g.save_state(path)
    data = path.read_bytes()
    a, _ = tensor_span(data, "param.projections.noise-E.post_idx")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(flip(data, 8 * (a + 3 * 8 + 3) + 6))  # bit 30 of post_idx[3]: ~1e9
    proc = subprocess.run(
        [sys.executable, "-c", CHILD_RUN, str(ROOT), str(Path(__file__).parent), str(bad)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"rc {proc.returncode}: {proc.stderr[-2000:]}"
    assert "CorruptFileError" in proc.stdout and "post_idx" in proc.stdout
    assert str(bad) in proc.stdout


def test_random_bit_flips_in_tensors_are_detected(tmp_path: Path) -> None:
    """Before: 50 of 50 random flips in the tensor data loaded silently."""
    _, path = saved_rich(tmp_path)
    data = path.read_bytes()
    start, _ = layout(data)
    rng = random.Random(7)
    loaded = []
    for k in range(50):
        bit = rng.randrange(8 * start, 8 * len(data))
        bad = tmp_path / f"flip{k}.safetensors"
        bad.write_bytes(flip(data, bit))
        try:
            rich_graph().load_state(bad)
            loaded.append(bit)
        except CorruptFileError as exc:
            assert str(bad) in str(exc)
    assert not loaded, f"{len(loaded)} of 50 flips loaded silently"


def test_every_state_key_is_checksummed(tmp_path: Path) -> None:
    """Flip one bit in each tensor (rule, synapse, history, trace, pending, plastic part,
    weights, indices, membrane ...): each is refused, naming that tensor."""
    _, path = saved_rich(tmp_path)
    data = path.read_bytes()
    _, header = layout(data)
    names = sorted(k for k in header if k != "__metadata__")
    for needle in ("rule.noise-E.rule0.n", "synapse.E-L.x", "history.noise-E",
                   "trace.noise-E.pre", "pending.E", "region.E.v",
                   "param.projections.noise-E.plastic_weight",
                   "param.projections.noise-E.weight", "param.projections.noise-E.pre_idx"):
        assert needle in names
    for name in names:
        a, b = tensor_span(data, name)
        if a == b:
            continue
        bad = tmp_path / "bad.safetensors"
        bad.write_bytes(flip(data, 8 * a + 1))
        with pytest.raises(CorruptFileError, match=f"'{name}'"):
            rich_graph().load_state(bad)


def _edited(tmp_path: Path, edit: Any) -> Path:
    """A file whose checksums are right but whose content ``edit`` changed (what someone
    editing the file, or another program, could write)."""
    g = engine_graph()
    g.run(20, backend="engine")
    edit(g)
    path = tmp_path / "edited.safetensors"
    g.save_state(path)
    return path


@pytest.mark.parametrize(("key", "value", "why"), [
    ("post_idx", 8, "post_idx"), ("post_idx", -1, "post_idx"), ("pre_idx", 16, "pre_idx")])
def test_out_of_range_index_with_valid_checksums_is_refused(tmp_path: Path, key: str,
                                                           value: int, why: str) -> None:
    """Before: loaded (and the engine then read outside its arrays)."""
    def edit(g: Graph) -> None:
        getattr(g.projections["noise-E"], key)[5] = value
    path = _edited(tmp_path, edit)
    target = engine_graph()
    with pytest.raises(CorruptFileError, match=rf"{why}.*\[5\]"):
        target.load_state(path)
    assert target.state is None


def test_unsorted_indices_and_other_delays_are_refused(tmp_path: Path) -> None:
    def unsort(g: Graph) -> None:
        p = g.projections["noise-E"]
        p.pre_idx[0], p.pre_idx[1] = 1, 0
    with pytest.raises(CorruptFileError, match="order"):
        engine_graph().load_state(_edited(tmp_path, unsort))

    def delay(g: Graph) -> None:
        g.projections["noise-E"].delay.fill_(7)
    with pytest.raises(StateMismatchError, match="delay"):
        engine_graph().load_state(_edited(tmp_path, delay))


def reseal(path: Path, out: Path, change: Any) -> Path:
    """Rewrite a verified file with ``change(tensors)`` applied and checksums recomputed
    (what someone editing the file with our own helpers could do)."""
    from aura_snn._io import read_safetensors, write_safetensors

    meta, tensors = read_safetensors(path)
    change(tensors)
    write_safetensors(out, tensors, meta)
    return out


def test_huge_batch_with_valid_checksums_is_refused_before_allocating(tmp_path: Path) -> None:
    g = engine_graph()
    g.run(5)
    g.save_state(tmp_path / "b.safetensors")
    path = reseal(tmp_path / "b.safetensors", tmp_path / "huge.safetensors",
                  lambda t: t.update(batch=torch.tensor(2 ** 40)))
    with pytest.raises(CorruptFileError, match="batch"):
        engine_graph().load_state(path)


def test_corrupt_safetensors_header_raises_typed_errors(tmp_path: Path) -> None:
    """Flip bits of the header (every bit of the length, 1,500 random bits of the JSON and
    metadata): a typed error and the graph untouched, or the same state (never another
    exception). Before: of these 1,564 flips 178 raised an untyped RuntimeError (from
    ``load_state_dict``, some after replacing weights) and 105 a ParameterError or
    ShapeError instead of CorruptFileError."""
    _, path = saved_rich(tmp_path, steps=50)
    data = path.read_bytes()
    start, _ = layout(data)
    ref = rich_graph()
    ref.load_state(path)
    want = snapshot(ref)
    target = rich_graph()
    fresh = snapshot(target)
    rng = random.Random(3)
    bits = list(range(64)) + rng.sample(range(64, 8 * start), 1500)
    changed = []
    for bit in bits:
        bad = tmp_path / "h.safetensors"
        bad.write_bytes(flip(data, bit))
        try:
            target.load_state(bad)
        except (CorruptFileError, StateMismatchError):
            continue
        if not same(snapshot(target), want):
            changed.append(bit)
        target = rich_graph()
    assert not changed, f"{len(changed)} header flips changed the loaded state"
    assert same(snapshot(target), fresh)


def test_older_format_without_checksums_is_refused(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    _, path = saved_rich(tmp_path)
    old = {"format": "aura-snn.graph-state", "version": "1", "dt": repr(DT),
           "regions": json.dumps(["noise", "E", "L"]),
           "projections": json.dumps(["noise-E", "E-L"])}
    save_file(load_file(path), str(tmp_path / "v1.safetensors"), metadata=old)
    with pytest.raises(CorruptFileError, match="version"):
        rich_graph().load_state(tmp_path / "v1.safetensors")


# -- item 2: all or nothing, structure in the header -----------------------------------
def test_failed_load_leaves_the_graph_unchanged(tmp_path: Path) -> None:
    """Before: an untyped RuntimeError (size mismatch) after the first projection's weight
    had already been replaced by the file's."""
    _, path = saved_rich(tmp_path, n_e=6)
    target = rich_graph(n_e=7)
    with torch.no_grad():
        target.projections["noise-E"].weight.mul_(0.5)
    target.run(30, backend="torch")
    before = snapshot(target)
    with pytest.raises(StateMismatchError, match=r"'E'.*size.*6.*7") as info:
        target.load_state(path)
    assert isinstance(info.value, AuraError) and isinstance(info.value, ValueError)
    assert same(snapshot(target), before)


def test_state_of_a_cuba_graph_is_refused_by_a_lif_graph(tmp_path: Path) -> None:
    """Before: loaded without error (the lif region took the cuba region's ``v``)."""
    _, path = saved_rich(tmp_path, model="cuba")
    target = rich_graph(model="lif")
    with pytest.raises(StateMismatchError, match=r"region 'E'.*model.*'cuba'.*'lif'"):
        target.load_state(path)
    assert target.state is None


def test_projection_structure_mismatch_is_named(tmp_path: Path) -> None:
    _, path = saved_rich(tmp_path)
    other = rich_graph()
    other.projections["noise-E"].add_rule(SynapseCount())      # a second rule slot
    with pytest.raises(StateMismatchError, match=r"projection 'noise-E'.*rules"):
        other.load_state(path)
    g = Graph(dt=DT, seed=4).double()
    g.add(InputRegion("noise", 8))
    g.add(SpikingRegion("E", 6, "cuba_refractory"))
    g.add(SpikingRegion("L", 3, "lif"))
    with pytest.raises(StateMismatchError, match=r"region 'noise'.*kind"):
        g.load_state(path)


def test_round_trip_with_every_kind_of_state_resumes_exactly(tmp_path: Path) -> None:
    g, path = saved_rich(tmp_path)
    cont = g.run(100, record=["E", "L"], backend="torch").outputs
    h = rich_graph()
    h.load_state(path)
    again = h.run(100, record=["E", "L"], backend="torch").outputs
    assert torch.equal(cont["E"], again["E"]) and torch.equal(cont["L"], again["L"])
    assert cont["E"].sum() > 0
    assert torch.equal(h.projections["noise-E"].plastic_weight,
                       g.projections["noise-E"].plastic_weight)
    # without weights: the state only, the graph's weights kept
    k = rich_graph()
    w = k.projections["noise-E"].weight.clone()
    k.load_state(path, weights=False)
    assert torch.equal(k.projections["noise-E"].weight, w)


def test_plastic_part_is_created_or_cleared_to_match_the_file(tmp_path: Path) -> None:
    g = engine_graph()
    g.run(5)
    p = g.projections["noise-E"]
    p.apply_update(torch.full_like(p.weight, W))     # a plastic part without any rule
    path = tmp_path / "p.safetensors"
    g.save_state(path)
    h = engine_graph()
    h.load_state(path)
    assert torch.equal(h.projections["noise-E"].plastic_weight, p.plastic_weight)
    plain = engine_graph()
    plain.run(5)
    plain.save_state(tmp_path / "plain.safetensors")
    h.load_state(tmp_path / "plain.safetensors")      # the file has no plastic part: zero
    assert torch.equal(h.projections["noise-E"].effective_weight(),
                       plain.projections["noise-E"].effective_weight())


# -- item 4: modes, stale temporaries ----------------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_saved_state_gets_the_mode_the_umask_says(tmp_path: Path, umask: int) -> None:
    """Before: 0600 under umask 022 (the safetensors writer replaced the temporary)."""
    g = engine_graph()
    g.run(5)
    old = os.umask(umask)
    try:
        g.save_state(tmp_path / "m.safetensors")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "m.safetensors").st_mode) == 0o666 & ~umask


CHILD_KILLED = """
import os, signal, sys
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])
import safetensors.torch
from test_state_file import engine_graph
real = safetensors.torch.save_file
def save_then_die(tensors, filename, metadata=None):
    real(tensors, filename, metadata=metadata)
    os.kill(os.getpid(), signal.SIGKILL)        # killed before the rename
safetensors.torch.save_file = save_then_die
g = engine_graph()
g.run(5)
g.save_state(sys.argv[3])
"""


def test_killed_save_leaves_a_temporary_that_the_next_save_removes(tmp_path: Path) -> None:
    """Before: the hidden temporary of the killed save stayed after later saves."""
    target = tmp_path / "s.safetensors"
    proc = subprocess.run([sys.executable, "-c", CHILD_KILLED, str(ROOT),
                           str(Path(__file__).parent), str(target)], timeout=300)
    assert proc.returncode == -9
    stale = [p.name for p in tmp_path.iterdir() if p.name.startswith(".s.safetensors.")]
    assert len(stale) == 1 and not target.exists()
    others = [tmp_path / ".s.safetensors.keep", tmp_path / ".t.safetensors.abcdefgh.tmp",
              tmp_path / ".s.safetensorsXabcdefgh.safetensors.tmp"]
    for o in others:
        o.write_bytes(b"not ours")
    g = engine_graph()
    g.run(5)
    g.save_state(target)
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert left == sorted(o.name for o in others)
    engine_graph().load_state(target)


def test_temporary_of_a_save_in_progress_is_kept(tmp_path: Path) -> None:
    """Another process saving the same path now: its temporary is not ours to remove."""
    child = textwrap.dedent("""
        import sys, time
        sys.path.insert(0, sys.argv[1])
        from aura_snn._io import atomic_path
        with atomic_path(sys.argv[2], suffix=".safetensors") as tmp:
            tmp.write_bytes(b"partial")
            print("writing", flush=True)
            sys.stdin.readline()
    """)
    target = tmp_path / "s.safetensors"
    proc = subprocess.Popen([sys.executable, "-c", child, str(ROOT), str(target)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        g = engine_graph()
        g.run(5)
        g.save_state(target)
        assert len([p for p in tmp_path.iterdir() if p.name.startswith(".")]) == 1
    finally:
        proc.communicate("done\n", timeout=60)
    assert proc.returncode == 0
    assert target.read_bytes() == b"partial"       # the other save finished last
