"""``hardware.lava`` on an ``aura_snn.graph.Graph``, run in Lava 0.10's own simulator.

Oracles: in ``fixed_pt`` Lava's bit-accurate Dense/Sparse/DelaySparse/LIF processes,
whose spikes must equal the graph twin's bit for bit (the twin is itself checked
against a NumPy transcription of Lava in ``test_loihi_graph.py``); in ``floating_pt``
the float graph (torch backend), whose spikes Lava's float models must reproduce. One
sample per run mostly (Lava: ~1 s to compile and start per batch element)."""

from __future__ import annotations

import importlib.util
import multiprocessing as mp

import numpy as np
import pytest
import torch
from loihi_graph_nets import build, feedforward, recurrent

pytestmark = pytest.mark.skipif(importlib.util.find_spec("lava") is None,
                                reason="lava-nc not installed (make setup installs it)")

NETS = {"feedforward": feedforward, "recurrent": recurrent}


def _x(n: int, binary: bool, seed: int = 3, steps: int = 40, batch: int = 1) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    x = (rng.random((steps, batch, n)) < 0.3) * 1.0 if binary else \
        rng.random((steps, batch, n)) * 0.8
    return torch.from_numpy(x)


@pytest.mark.parametrize("net,binary,batch", [("feedforward", True, 2),
                                              ("feedforward", False, 1),
                                              ("recurrent", True, 1),
                                              ("recurrent", False, 1)])
def test_fixed_pt_bit_identical_to_graph_twin(net, binary, batch):
    from hardware.lava import export, run
    from hardware.loihi import quantize

    graph, desc = NETS[net]()
    twin = quantize(graph)
    x = _x(desc["regions"][0][2], binary, batch=batch)
    lava = run(graph, x, "fixed_pt", record=list(twin.regions))
    ours = twin.run(x)
    for n in twin.regions:
        assert torch.equal(lava[n].bool(), ours[n]), n
        assert lava[n].sum() > 10, n
    if net == "feedforward" and binary:
        net_ = export(graph, "fixed_pt")
        kinds = {k: type(v).__name__ for k, v in net_.conns.items()}
        assert kinds == {"in_A": "Dense", "A_B": "DelaySparse", "in_B": "Dense",
                         "A_C_exc": "Dense", "A_C_inh": "DelaySparse", "B_D": "DelaySparse"}
        assert net_.lags == {"in": 0, "A": 0, "B": 1, "C": 0, "D": 0}  # in -> B same-step


@pytest.mark.parametrize("net", list(NETS))
def test_floating_pt_identical_to_float_graph(net):
    from hardware.lava import run

    graph, desc = NETS[net]()
    x = _x(desc["regions"][0][2], True, seed=4)
    names = [r[0] for r in desc["regions"][1:]]
    with torch.no_grad():
        ours = graph.run(x.shape[0], {"in": x}, record=names, backend="torch", reset=True)
    lava = run(graph, x, "floating_pt", record=names)
    for n in names:
        assert torch.equal(lava[n], ours.outputs[n]), n
        assert lava[n].sum() > 10, n


def test_separate_components_and_default_outputs():
    """Two unconnected chains (two runtimes); ``record`` defaults to the regions no
    projection leaves."""
    from hardware.lava import run
    from hardware.loihi import quantize

    rng = np.random.default_rng(6)
    graph = build([("a", "input", 6), ("b", "input", 5), ("X", "lif", 8), ("Y", "lif", 7),
                   ("Z", "cuba", 4)],
                  [dict(name="aX", pre="a", post="X", w=rng.normal(0.5, 0.5, (6, 8))),
                   dict(name="XZ", pre="X", post="Z", w=rng.normal(0.3, 0.3, (8, 4))),
                   dict(name="bY", pre="b", post="Y", w=rng.normal(0.6, 0.5, (5, 7)))])
    xs = {"a": _x(6, True, 1), "b": _x(5, True, 2)}
    lava = run(graph, xs, "fixed_pt")
    assert set(lava) == {"Y", "Z"}
    ours = quantize(graph).run(xs)
    assert all(torch.equal(lava[n].bool(), ours[n]) and lava[n].sum() > 5 for n in lava)


def test_cycle_faster_than_lava_refused_naming_projection():
    """E -> I same-step and I -> E with delay 0: the graph goes round in one step, Lava
    needs two; delays that alignment pushes beyond 63 steps are refused too."""
    from hardware.lava import export

    graph, _ = recurrent(inhibitory_delay=0)
    with pytest.raises(ValueError, match=r"\['I_E'\] close a cycle.*add delay"):
        export(graph, "fixed_pt")
    g = build([("in", "input", 3), ("A", "lif", 2), ("B", "lif", 2)],
              [dict(name="inA", pre="in", post="A", w=np.ones((3, 2))),
               dict(name="AB", pre="A", post="B", w=np.ones((2, 2)), same_step=True),
               dict(name="inB", pre="in", post="B", w=np.ones((3, 2)), delay=63)])
    with pytest.raises(ValueError, match="'inB'.*64 steps.*63"):
        export(g, "fixed_pt")


def _children() -> list[str]:
    from pathlib import Path

    tasks = list(Path("/proc/self/task").glob("*/children"))
    if not tasks:
        pytest.skip("needs Linux /proc")
    pids = [p for t in tasks for p in t.read_text().split()]
    return [p for p in pids if Path(f"/proc/{p}/stat").exists()
            and Path(f"/proc/{p}/stat").read_text().split(") ")[-1][0] != "Z"]


def test_graph_runtime_stopped_on_success_and_error(monkeypatch):
    import hardware.lava as hl

    graph = build([("in", "input", 4), ("X", "lif", 3)],
                  [dict(name="p", pre="in", post="X", w=np.full((4, 3), 0.6))])
    x = _x(4, True, steps=10)
    before = len(_children())
    hl.run(graph, x, "fixed_pt")
    assert len(_children()) == before and not mp.active_children()

    def boom(sink):
        assert len(_children()) > before  # the runtime's workers are alive here
        raise RuntimeError("read failed")

    monkeypatch.setattr(hl, "_read_output", boom)
    with pytest.raises(RuntimeError, match="read failed"):
        hl.run(graph, x, "fixed_pt")
    assert len(_children()) == before and not mp.active_children()


def test_bad_arguments_named():
    from hardware.lava import run

    graph, _ = feedforward()
    with pytest.raises(ValueError, match="record.*'in' is not a spiking region"):
        run(graph, _x(12, True, steps=3), "fixed_pt", record=["in"])
    with pytest.raises(ValueError, match="mode"):
        run(graph, _x(12, True, steps=3), "fixed")
    with pytest.raises(ValueError, match="exactly the input regions"):
        run(graph, {"x": _x(12, True, steps=3)})
    with pytest.raises(ValueError, match="record names regions of a graph"):
        run(torch.nn.Sequential(), _x(12, True, steps=3), record=["A"])
