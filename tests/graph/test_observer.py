"""The observer hook: one interface for recorders and counters, on the torch stepper.

Oracle for the synaptic event counts: recorded spikes times the out-degree of each
presynaptic neuron, computed here with numpy from the weight matrix's nonzeros.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aura_snn.graph import Graph, InputRegion, Observer, Probe, SpikingRegion, fixed_probability


class Counter(Observer):
    spike_regions = None          # every spiking region
    count_events = True

    def __init__(self) -> None:
        self.events: dict[str, list[np.ndarray]] = {}
        self.spikes: dict[str, int] = {}
        self.rows: list[np.ndarray] = []
        self.probe = Probe("E", "v", np.array([0, 3]), every=5)
        self.calls = {"start": 0, "finish": 0}

    @property
    def probes(self) -> tuple[Probe, ...]:
        return (self.probe,)

    def start(self, graph, steps):  # noqa: ANN001, ANN201
        self.calls["start"] += 1

    def observe(self, chunk):  # noqa: ANN001, ANN201
        for k, v in chunk.events.items():
            self.events.setdefault(k, []).append(v)
        for k, (t, _, _) in chunk.spikes.items():
            self.spikes[k] = self.spikes.get(k, 0) + t.size
        t_rows, vals = chunk.values[self.probe]
        if t_rows.size:
            self.rows.append(vals)

    def finish(self, graph):  # noqa: ANN001, ANN201
        self.calls["finish"] += 1


@pytest.mark.parametrize("backend", ["torch", "engine"])
def test_observer_gets_spikes_probes_and_synaptic_event_counts(backend: str) -> None:
    T, B = 300, 2
    g = Graph(dt=1e-3, seed=3).double()
    g.add(InputRegion("in", 20))
    g.add(SpikingRegion("E", 10, "lif"))
    g.connect("in", "E", connectivity=fixed_probability(20, 10, 0.3, seed=1), weight=4.0)
    g.connect("E", "E", torch.full((10, 10), 0.05, dtype=torch.float64), name="rec")
    x = (torch.rand(T, B, 20, generator=torch.Generator().manual_seed(0)) < 0.1).double()
    obs = g.add_observer(Counter())
    rec = g.monitor("E", "spikes")
    r = g.run(T, inputs={"in": x}, record=["E"], backend=backend)
    assert obs.calls == {"start": 1, "finish": 1}
    w_in = g.projection("in-E").dense_weight().detach().numpy()
    deg_in = (w_in != 0).sum(1)
    e = r.outputs["E"].numpy()
    expect_in = (x.numpy() * deg_in).sum((1, 2))
    expect_rec = (e * 10).sum((1, 2))
    assert np.array_equal(np.concatenate(obs.events["in-E"]), expect_in)
    assert np.array_equal(np.concatenate(obs.events["rec"]), expect_rec)
    assert obs.spikes == {"in": int(x.sum()), "E": int(e.sum())} and e.sum() > 50
    assert len(rec.data()["t"]) == int(e.sum())
    # probe rows of v (neurons 0 and 3) at steps 0, 5, 10, ...; the last is step 295
    rows = np.concatenate(obs.rows)               # one chunk per step (torch) or many
    assert rows.shape == (T // 5, B, 2)
    g.remove_observer(obs)
    r2 = g.run(296, inputs={"in": x[:296]}, reset=True, backend=backend)
    assert np.array_equal(rows[-1], r2.state.regions["E"].v[:, [0, 3]].numpy())


def test_engine_skips_the_event_sort_only_when_events_are_in_order() -> None:
    """The O(n) order check against np.lexsort on random, sorted and nearly sorted
    event lists (the engine sorts whenever the check says no)."""
    from aura_snn.graph._engine_chunk import sorted_events as _sorted_events

    rng = np.random.default_rng(0)
    for trial in range(300):
        n = int(rng.integers(0, 30))
        t, b, i = (rng.integers(0, k, n) for k in (5, 2, 6))
        if trial % 3:   # sorted, unique events, then maybe one swap
            key = np.unique(np.stack([t, b, i], 1), axis=0)
            t, b, i = key.T.copy() if len(key) else (t[:0], b[:0], i[:0])
            if trial % 3 == 2 and len(t) > 1:
                k = int(rng.integers(0, len(t) - 1))
                t[[k, k + 1]], b[[k, k + 1]], i[[k, k + 1]] = t[[k + 1, k]], b[[k + 1, k]], \
                    i[[k + 1, k]]
        order = np.lexsort((i, b, t))
        keys = list(zip(t.tolist(), b.tolist(), i.tolist(), strict=True))
        strictly = all(keys[k] < keys[k + 1] for k in range(len(keys) - 1))
        assert _sorted_events(t, b, i) == strictly
        if strictly:
            assert np.array_equal(order, np.arange(len(t)))
