"""The automatic partition against brute force, and the window D by hand (no Ray)."""

from __future__ import annotations

import itertools

import pytest
import torch

from aura_snn.errors import ParameterError
from aura_snn.graph import Graph, PoissonRegion, SpikingRegion, fixed_probability
from aura_snn.graph.distributed import auto_partition, make_partition
from aura_snn.graph.distributed.partition import region_costs, units


def _clusters(seed: int) -> Graph:
    """Two clusters of three regions, dense inside (p = 0.3), sparse between (0.02),
    region sizes varying."""
    g = Graph(dt=1e-3, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    sizes = [int(s) for s in torch.randint(20, 60, (6,), generator=gen)]
    names = [f"R{k}" for k in range(6)]
    for n, s in zip(names, sizes, strict=True):
        g.add(SpikingRegion(n, s, "lif"))
    order = [int(k) for k in torch.randperm(6, generator=gen)]   # hide the clusters
    cluster = {names[k]: (0 if pos < 3 else 1) for pos, k in enumerate(order)}
    for a, b in itertools.permutations(names, 2):
        p = 0.3 if cluster[a] == cluster[b] else 0.02
        ia, ib = names.index(a), names.index(b)
        g.connect(a, b, 0.1, connectivity=fixed_probability(
            g.regions[a].size, g.regions[b].size, p, seed=100 * seed + 10 * ia + ib),
            delay=1 + (ia + ib) % 3)
    return g


def _brute_force(g: Graph, workers: int, cap: float) -> int:
    """The smallest cut (synapses) of any assignment with every load <= cap and every
    worker used."""
    names, cost = list(g.regions), region_costs(g)
    best = None
    for assign in itertools.product(range(workers), repeat=len(names)):
        if len(set(assign)) < workers:
            continue
        loads = [0] * workers
        for n, w in zip(names, assign, strict=True):
            loads[w] += cost[n]
        if max(loads) > cap:
            continue
        where = dict(zip(names, assign, strict=True))
        cut = sum(p.nnz for p in g.projections.values() if where[p.pre] != where[p.post])
        best = cut if best is None else min(best, cut)
    assert best is not None
    return best


def _cap(g: Graph, workers: int) -> float:
    """The documented load bound: 1.1 x the mean load, or the largest load of a
    longest-processing-time-first assignment if that is larger."""
    loads = [0] * workers
    for c in sorted((r.size + sum(p.nnz for p in g.incoming(n))
                     for n, r in g.regions.items()), reverse=True):
        loads[loads.index(min(loads))] += c
    return max(1.1 * sum(loads) / workers, max(loads))


@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("seed", range(8))
def test_auto_partition_reaches_the_brute_force_minimum_cut(seed: int, workers: int) -> None:
    g = _clusters(seed)
    part = make_partition(g, workers)
    cap = _cap(g, workers)
    assert max(part.loads) <= cap and len(part.loads) == workers
    assert sum(part.loads) == sum(r.size for r in g.regions.values()) + \
        sum(p.nnz for p in g.projections.values())
    assert part.cut_synapses == sum(g.projections[c].nnz for c in part.cut)
    assert part.cut_synapses == _brute_force(g, workers, cap)


def test_window_is_one_plus_the_smallest_cut_delay() -> None:
    g = Graph(dt=1e-3)
    for n in ("a", "b", "c"):
        g.add(SpikingRegion(n, 4, "lif"))
    g.connect("a", "b", torch.ones(4, 4), delay=torch.tensor([[3, 4, 5, 6]] * 4))
    g.connect("b", "c", torch.ones(4, 4), delay=2)
    g.connect("a", "a", torch.ones(4, 4), delay=0)
    assert make_partition(g, {"a": 0, "b": 1, "c": 1}).window == 1 + 3
    assert make_partition(g, {"a": 0, "b": 0, "c": 1}).window == 1 + 2
    assert make_partition(g, {"a": 0, "b": 1, "c": 0}).window == 1 + 2
    assert make_partition(g, {"a": 0, "b": 0, "c": 0}).window is None


def test_bound_regions_stay_together() -> None:
    """Same-step and plastic edges join their regions into one unit."""
    g = Graph(dt=1e-3)
    g.add(PoissonRegion("p", 30, rate=10.0))
    for n in ("a", "b", "c", "d"):
        g.add(SpikingRegion(n, 30, "lif"))
    g.connect("p", "a", torch.ones(30, 30), same_step=True)
    plastic = g.connect("b", "c", torch.ones(30, 30))
    plastic.add_rule(lambda proj, pre, post, traces: None)
    g.connect("a", "d", torch.ones(30, 30), delay=1)
    assert sorted(map(sorted, units(g))) == [["a", "p"], ["b", "c"], ["d"]]
    for n in (1, 2, 3):
        a = auto_partition(g, n)
        assert a["p"] == a["a"] and a["b"] == a["c"] and len(set(a.values())) == n
    with pytest.raises(ParameterError, match="more workers than regions that can be placed"):
        auto_partition(g, 4)


def test_partition_errors_name_the_problem() -> None:
    g = Graph(dt=1e-3)
    g.add(SpikingRegion("a", 4, "lif"))
    g.add(SpikingRegion("b", 4, "lif"))
    g.connect("a", "b", torch.ones(4, 4))
    for bad, match in (({"a": 0, "b": -1}, r"partition\['b'\] must be a worker index"),
                       ({"a": 0, "b": 1.0}, r"partition\['b'\] must be a worker index"),
                       (0, "partition must be >= 1"),
                       (3, "partition=3: more workers than regions"),
                       ({"a": 1, "b": 1}, r"indices \[1\]")):
        with pytest.raises(ParameterError, match=match):
            make_partition(g, bad)
    with pytest.raises(TypeError, match="partition must be a dict"):
        make_partition(g, ["a", "b"])
    with pytest.raises(TypeError, match="partition must be a dict"):
        make_partition(g, True)
