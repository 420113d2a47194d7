"""Fuzz the files aura-snn reads: flipped bits and truncations of a graph state file, a
memory store file and a network file (TOML and YAML) give a typed error (an
:class:`~aura_snn.errors.AuraError` that is a ``ValueError``) or an identical result,
never a crash or another exception (issue "Hardening what landed").

The binary files are checksummed, so "identical" is exact there. A network file is text
with no checksum: a flip in a comment, or a cut between two tables, can leave a valid
network that differs from the original, so for it the test asserts a typed error or a
graph that builds.

Before the hardening (150 examples each): the graph state fuzz ran the process out of
memory (a damaged ``batch`` allocated the state before any shape was checked; killed,
rc 137), the memory store fuzz found a header flip that loaded with another setting, and
the network fuzz an untyped ``UnicodeDecodeError`` (fixed in config.py meanwhile).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aura_snn.errors import AuraError
from aura_snn.graph import (
    Graph,
    PlasticityRule,
    PoissonRegion,
    SpikingRegion,
    SynapseModel,
    build_graph,
    from_indices,
    load_config,
)
from aura_snn.memory import EpisodicMemory

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def damage(data: bytes, bits: list[int], cut: int | None) -> bytes:
    out = bytearray(data)
    for b in bits:
        out[b % (8 * len(out)) // 8] ^= 1 << (b % 8)
    return bytes(out if cut is None else out[:cut % (len(out) + 1)])


damages = st.tuples(st.lists(st.integers(0, 2 ** 31), max_size=3),
                    st.one_of(st.none(), st.integers(0, 2 ** 31))).filter(
    lambda d: d[0] or d[1] is not None)


def typed(exc: BaseException) -> bool:
    return isinstance(exc, AuraError) and isinstance(exc, ValueError)


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


# -- graph state -------------------------------------------------------------------------
class Count(NamedTuple):
    n: torch.Tensor


class SynapseCount(PlasticityRule):
    batch_reduction = "mean"

    def initial_state(self, projection, batch, device, dtype):  # noqa: ANN001, ANN201
        return Count(torch.zeros(batch, projection.nnz, device=device, dtype=dtype))

    def update(self, activity, w, state, dt, modulators):  # noqa: ANN001, ANN201
        return 2.0 ** -12 * activity.pre_syn, Count(state.n + activity.pre_syn)


class Resources(NamedTuple):
    x: torch.Tensor


class Depressing(SynapseModel):
    def initial_state(self, n_pre, batch, device, dtype):  # noqa: ANN001, ANN201
        return Resources(torch.ones(batch, n_pre, device=device, dtype=dtype))

    def step(self, y, state, dt):  # noqa: ANN001, ANN201
        e = 0.5 * state.x
        return e, Resources(1.0 - (1.0 - (state.x - e * y)) * math.exp(-dt / 5e-3))


def graph() -> Graph:
    g = Graph(dt=1e-4, seed=4).double()
    g.add(PoissonRegion("noise", 5, rate=500.0))
    g.add(SpikingRegion("E", 4, "cuba_refractory", init={"v": {"uniform": [-0.06, -0.05]}}))
    g.add(SpikingRegion("L", 2, "lif"))
    p = g.connect("noise", "E", connectivity=from_indices([0, 1, 2, 3, 4], [0, 1, 2, 3, 0],
                                                          5, 4),
                  weight=2.0 ** -3, delay=np.array([0, 1, 2, 1, 0]))
    p.enable_traces(tau_pre=2e-3, tau_post=4e-3)
    p.add_rule(SynapseCount())
    g.connect("E", "L", torch.full((4, 2), 0.5, dtype=torch.float64), synapse=Depressing())
    return g


def graph_snapshot(g: Graph) -> dict[str, torch.Tensor]:
    out = {f"param.{k}": v.detach().clone() for k, v in g.state_dict().items()}
    if g.state is not None:
        out.update({k: v.clone() for k, v in g.state_tensors().items()})
    return out


def equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and torch.equal(a[k], b[k])
        for k in a)


@pytest.fixture(scope="module")
def state_file(folder: Path) -> tuple[bytes, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    g = graph()
    g.run(40, backend="torch")
    g.save_state(folder / "state.safetensors")
    fresh, back = graph(), graph()
    back.load_state(folder / "state.safetensors")
    return (folder / "state.safetensors").read_bytes(), graph_snapshot(back), \
        graph_snapshot(fresh)


@FUZZ
@given(d=damages)
def test_fuzz_graph_state_file(folder: Path, state_file, d) -> None:  # noqa: ANN001
    data, want, fresh = state_file
    path = folder / "bad-state.safetensors"
    path.write_bytes(damage(data, *d))
    g = graph()
    try:
        g.load_state(path)
    except Exception as exc:  # noqa: BLE001 - the point: which exceptions come out
        assert typed(exc), f"{type(exc).__name__}: {exc}"
        assert equal(graph_snapshot(g), fresh), "a failed load changed the graph"
        return
    assert equal(graph_snapshot(g), want)


# -- memory store ------------------------------------------------------------------------
def store() -> EpisodicMemory:
    gen = torch.Generator().manual_seed(2)
    mem = EpisodicMemory(4, value_dim=2, train_min=40, nlist=3, tau=1000.0, capacity=200)
    mem.write(torch.randn(120, 4, generator=gen), torch.randn(120, 2, generator=gen),
              [{"n": i} if i % 3 else None for i in range(120)])
    mem.delete(torch.arange(0, 120, 7))
    assert mem.index is not None
    return mem


def store_contents(mem: EpisodicMemory) -> tuple[dict[str, torch.Tensor], str]:
    tensors, meta = mem.to_tensors()
    return tensors, meta["config"]


@pytest.fixture(scope="module")
def store_file(folder: Path) -> tuple[bytes, tuple[dict[str, torch.Tensor], str]]:
    store().save(folder / "store.safetensors")
    back = EpisodicMemory.from_file(folder / "store.safetensors")
    return (folder / "store.safetensors").read_bytes(), store_contents(back)


@FUZZ
@given(d=damages)
def test_fuzz_memory_store_file(folder: Path, store_file, d) -> None:  # noqa: ANN001
    data, (want_t, want_cfg) = store_file
    path = folder / "bad-store.safetensors"
    path.write_bytes(damage(data, *d))
    try:
        got_t, got_cfg = store_contents(EpisodicMemory.from_file(path))
    except Exception as exc:  # noqa: BLE001
        assert typed(exc), f"{type(exc).__name__}: {exc}"
        return
    assert got_cfg == want_cfg and equal(got_t, want_t)


# -- network files -----------------------------------------------------------------------
TOML = """\
# a small network
[simulation]
dt = "0.1 ms"
duration = "20 ms"
seed = 3

[[region]]
name = "noise"
size = 12
model = "poisson"
rate = "100 Hz"

[[region]]
name = "E"
size = 10
model = "cuba_refractory"
params = { tau_mem = "20 ms", threshold = "-50 mV", v_reset = "-60 mV" }
init = { v = { uniform = ["-60 mV", "-50 mV"] } }

[[projection]]
name = "in"
pre = "noise"
post = "E"
receptor = "exc"
weight = "3 mV"
connectivity = { rule = "fixed_probability", p = 0.2 }

[[projection]]
pre = "E"
post = "E"
weight = { dist = "uniform", low = "0.5 mV", high = "1 mV" }
delay = "1 ms"
connectivity = { rule = "fixed_indegree", k = 3 }

[[monitor]]
target = "E"
variable = "v"
neurons = [0, 1]
every = 5
"""

YAML = """\
# a small network
simulation: {dt: 0.1 ms, duration: 20 ms, seed: 3}
region:
  - {name: noise, size: 12, model: poisson, rate: 100 Hz}
  - name: E
    size: 10
    model: cuba_refractory
    params: {tau_mem: 20 ms, threshold: -50 mV, v_reset: -60 mV}
projection:
  - {name: in, pre: noise, post: E, receptor: exc, weight: 3 mV,
     connectivity: {rule: fixed_probability, p: 0.2}}
  - {pre: E, post: E, weight: 0.5 mV, delay: 1 ms,
     connectivity: {rule: fixed_indegree, k: 3}}
monitor:
  - {target: E, variable: v, neurons: [0, 1], every: 5}
"""


@pytest.mark.parametrize(("name", "text"), [("net.toml", TOML), ("net.yaml", YAML)])
def test_network_files_build(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text)
    built = build_graph(load_config(folder / name))
    assert {"noise", "E"} <= set(built.graph.regions)


@FUZZ
@given(d=damages, yaml=st.booleans())
def test_fuzz_network_file(folder: Path, d, yaml: bool) -> None:  # noqa: ANN001
    name, text = ("net.yaml", YAML) if yaml else ("net.toml", TOML)
    path = folder / f"bad-{name}"
    path.write_bytes(damage(text.encode(), *d))
    try:
        build_graph(load_config(path))
    except Exception as exc:  # noqa: BLE001
        assert typed(exc), f"{type(exc).__name__}: {exc}"
