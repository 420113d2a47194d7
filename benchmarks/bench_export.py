r"""Export to neuromorphic targets, and measurement, timed: NIR and Lava export, Lava's
``fixed_pt`` simulator against our fixed-point twin, counter hook overhead, and the
demo classifier's energy per target (issue 11).

1. Networks of 1k, 10k and 100k synapses, float64, one sample, ``T`` steps (1,000;
   200 with ``--quick``):

   * ``dense``: ``nn.Sequential(LIF(n), Linear(n, m), LIF(m))``, ``n m`` synapses,
     real-valued input currents ``[T, 1, n]`` (the host computes the first stage's
     current, as :mod:`hardware.lava` does for non-binary input);
   * ``sparse``: a :class:`~aura_snn.graph.Graph` ``in (n) -> out LIF (m)`` through a
     sparse fixed-probability projection (``p`` = 0.1, ``n m p`` synapses expected;
     the drawn count is reported), Bernoulli(0.2) input spikes (Lava ``RingBuffer`` ->
     ``Sparse``).

   Columns: ``nir_s`` (:func:`hardware.nir.to_nir` + :func:`hardware.nir.write` of the
   HDF5 file, median), ``lava_export_s`` (:func:`hardware.lava.export`: the Lava process
   network, median), ``lava_compile_s`` (Lava's compile and runtime creation),
   ``lava_run_s`` (Lava's ``Runtime.start`` for the steps), ``lava_read_s`` (reading
   the output spikes back from Lava's sink), ``lava_total_s`` (:func:`hardware.lava.run`,
   wall: quantisation, processes, the above, runtime stopped), ``twin_s`` (the twin's run, best
   of repeats), ``agreement`` (fraction of output spike entries equal, Lava ``fixed_pt``
   vs twin) and the speed-ups of the twin over ``lava_run_s`` (steps alone) and over
   ``lava_compile_s + lava_run_s`` (Lava's ``Process.run`` call).
2. Counter overhead: :class:`aura_snn.metrics.ops.OpCounter` on the demo classifier's
   forward over the test set (median with vs without), and the graph counter
   (``aura_snn.metrics.graph_ops.GraphOpCounter``) on a CUBA graph of 4,000 neurons
   run by the compiled engine, when that module exists (else a "not measured" row);
   its counted synaptic events are checked against spikes x out-degree (``events_exact``).
3. Demo classifier (:mod:`aura_snn.tasks.digits`, trained here briefly, or
   ``--model`` a saved folder such as ``out/demo/model``): per-inference energy per
   target (:mod:`hardware.energy`: compute, with memory access, dense-ANN equivalent),
   and NeuroBench 2.3's synaptic operations, activation sparsity and membrane updates
   on an snnTorch twin of the same model against ours (membrane updates as
   ``OpCounter(membrane_updates="changed")``, NeuroBench's definition; our default,
   every neuron-step, is the row after them).

Goals: 100 % ``fixed_pt`` spike agreement for every network; twin >= 50x faster than
Lava's simulator (the smallest speed-up over Lava's ``Process.run``, i.e. compile,
runtime creation and steps, as ``bench_loihi_twin.py`` measures it; the speed-up over
the steps alone is reported beside it); counter overhead <= 10 % of run time (each
counter); NeuroBench's figures equal ours. A goal not measured is ``met: false``.

    python benchmarks/bench_export.py [--quick] [--json PATH] [--model DIR]
"""

from __future__ import annotations

import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import Goal, median_time, parser, print_goals, print_table, write_report
from torch import nn

from aura_snn import LIF

DT = 1e-3  # s
TAU, THRESHOLD = 8e-3, 1.0  # s, V
SPARSE_P, INPUT_RATE = 0.1, 0.2  # connection probability, input spikes per step
#: synapses -> (n, m) of the dense stack and of the sparse graph (n m p synapses).
SIZES = {1_000: ((25, 40), (100, 100)), 10_000: ((100, 100), (250, 400)),
         100_000: ((250, 400), (1000, 1000))}
SPEEDUP_TARGET, OVERHEAD_TARGET = 50.0, 0.10
LAVA_BUDGET_S = 120.0  # per Lava run; a network predicted over it runs fewer steps


# -- 1. networks ---------------------------------------------------------------------------

def dense_net(n: int, m: int, steps: int, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    """``LIF(n) -> Linear(n, m) -> LIF(m)`` and input currents ``[T, 1, n]`` (V)."""
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(LIF(TAU, dt=DT, threshold=THRESHOLD, reset="zero"),
                          nn.Linear(n, m),
                          LIF(TAU, dt=DT, threshold=THRESHOLD, reset="zero")).double()
    mean = 10.0 / n  # layer 1 fires ~0.15 per step: mean drive ~1.5 V
    with torch.no_grad():
        model[1].weight.copy_(mean + mean * torch.randn(m, n, generator=g, dtype=torch.float64))
        model[1].bias.zero_()
    x = torch.rand(steps, 1, n, generator=g, dtype=torch.float64) * 3.0
    return model, x


def sparse_net(n: int, m: int, steps: int, seed: int = 0) -> tuple[Any, torch.Tensor]:
    """Graph ``in (n) -> out LIF (m)``, fixed-probability sparse projection, and
    Bernoulli input spikes ``[T, 1, n]``."""
    from aura_snn.functional.lif import LIFParameters
    from aura_snn.graph import Graph, InputRegion, SpikingRegion
    from aura_snn.graph.connectivity import fixed_probability

    rng = np.random.default_rng(seed)
    conn = fixed_probability(n, m, SPARSE_P, seed=seed)
    mean = 1.5 / (n * SPARSE_P * INPUT_RATE)  # mean drive ~1.5 V
    w = mean + mean * rng.standard_normal(conn.n_synapses)
    g = Graph(dt=DT).double()
    g.add(InputRegion("in", n))
    g.add(SpikingRegion("out", m, "lif", LIFParameters(tau_mem=TAU, threshold=THRESHOLD,
                                                       reset="zero")))
    g.connect("in", "out", torch.from_numpy(w), connectivity=conn, sparse=True, name="in_out")
    x = torch.from_numpy((rng.random((steps, 1, n)) < INPUT_RATE).astype(np.float64))
    return g, x


@contextmanager
def lava_clock(times: list[tuple[float, float]], reads: list[float]) -> Iterator[None]:
    """Within the block, each Lava ``Process.run`` appends ``(compile and runtime
    creation s, steps s)`` to ``times`` (the same calls as Lava's own ``run``: create the
    runtime if there is none, then ``Runtime.start``, timed apart), and each read of a
    sink's spikes by :mod:`hardware.lava` its seconds to ``reads``."""
    import hardware.lava as hl
    from hardware.lava_compat import import_lava

    import_lava()  # Lava's Python 3.11 fix before any lava module loads
    from lava.magma.core.process.process import AbstractProcess

    orig, orig_read = AbstractProcess.run, hl._read_output

    def run(self: Any, condition: Any, run_cfg: Any = None, compile_config: Any = None) -> None:
        t0 = time.perf_counter()
        if not self.runtime:
            self.create_runtime(run_cfg=run_cfg, compile_config=compile_config)
        t1 = time.perf_counter()
        self.runtime.start(condition)
        times.append((t1 - t0, time.perf_counter() - t1))

    def read(sink: Any) -> np.ndarray:
        t0 = time.perf_counter()
        out = orig_read(sink)
        reads.append(time.perf_counter() - t0)
        return out

    AbstractProcess.run, hl._read_output = run, read
    try:
        yield
    finally:
        AbstractProcess.run, hl._read_output = orig, orig_read


def _best(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up (numba kernels, caches)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return min(out)


def network_row(kind: str, synapses: int, steps: int, repeats: int, tmp: Path,
                prev: dict[str, Any] | None = None) -> dict[str, Any]:
    """Export, run and compare one network (module docstring, item 1)."""
    from hardware.lava import export, run
    from hardware.loihi import quantize
    from hardware.nir import to_nir, write

    dense, sparse = SIZES[synapses]
    n, m = dense if kind == "dense" else sparse
    planned = steps
    predicted = predicted_lava_s(prev, steps, m)
    if predicted > LAVA_BUDGET_S:
        steps = max(100, int(steps * LAVA_BUDGET_S / predicted))
    src, x = dense_net(n, m, steps) if kind == "dense" else sparse_net(n, m, steps)
    kw: dict[str, Any] = {"n_in": n} if kind == "dense" else {}
    path = tmp / f"{kind}_{synapses}.nir"
    nir_kw: dict[str, Any] = {"input_shape": (n,)} if kind == "dense" else {}
    nir_s = median_time(lambda: write(path, to_nir(src, dt=DT, **nir_kw)), repeats)
    lava_export_s = median_time(
        lambda: export(src, "fixed_pt", **({"binary_input": False, **kw}
                                           if kind == "dense" else kw)), repeats)
    twin = quantize(src, **kw)
    if kind == "dense":
        def twin_run() -> torch.Tensor:
            return twin(x)
    else:
        def twin_run() -> torch.Tensor:
            return twin.run(x)["out"]
    twin_s = _best(twin_run, repeats)
    ours = twin_run().bool()
    times: list[tuple[float, float]] = []
    reads: list[float] = []
    t0 = time.perf_counter()
    with lava_clock(times, reads):
        lava = run(src, x, "fixed_pt", **kw)
    lava_total = time.perf_counter() - t0
    lava = (lava if kind == "dense" else lava["out"]).bool()
    compile_s, run_s = (sum(t[i] for t in times) for i in (0, 1))
    syn = n * m if kind == "dense" else int(src.projections["in_out"].nnz)
    return {"network": f"{kind} {synapses // 1000}k", "kind": kind, "n": n, "m": m,
            "synapses": syn, "steps": steps,
            "steps_reduced_from": planned if steps != planned else None,
            "nir_s": nir_s, "nir_bytes": path.stat().st_size, "lava_export_s": lava_export_s,
            "lava_compile_s": compile_s, "lava_run_s": run_s, "lava_read_s": sum(reads),
            "lava_total_s": lava_total, "twin_s": twin_s,
            "agreement": float((lava == ours).double().mean()),
            "spikes_out": int(ours.sum()), "rate_out": float(ours.double().mean()),
            "speedup_vs_run": run_s / twin_s,
            "speedup_vs_process_run": (compile_s + run_s) / twin_s}


def predicted_lava_s(prev: dict[str, Any] | None, steps: int, m: int) -> float:
    """Seconds predicted for ``hardware.lava.run`` of ``steps`` steps on a network of
    ``m`` outputs from the previous size's row: its time per step scaled by the ratio
    of output neurons (reading the spikes back, one Lava message per value, dominates
    at the large sizes), times 2 for safety; 0 without a previous row."""
    if prev is None:
        return 0.0
    return 2.0 * prev["lava_total_s"] / prev["steps"] * steps * m / prev["m"]


def networks(steps: int, repeats: int) -> list[dict[str, Any]]:
    """Every network of :data:`SIZES`, dense then sparse; one whose Lava run is predicted
    (:func:`predicted_lava_s`) over :data:`LAVA_BUDGET_S` runs fewer steps
    (``steps_reduced_from``)."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as d:
        for kind in ("dense", "sparse"):
            prev = None
            for syn in SIZES:
                row = prev = network_row(kind, syn, steps, repeats, Path(d), prev)
                rows.append(row)
                print(f"  {row['network']}: agreement {row['agreement']:.4f}, Lava "
                      f"{row['lava_total_s']:.2f} s, twin {row['twin_s'] * 1e3:.2f} ms",
                      flush=True)
    return rows


# -- 2. counter overhead -------------------------------------------------------------------

def _interleaved(fa: Callable[[], Any], fb: Callable[[], Any], repeats: int,
                 paired: bool = False) -> tuple[float, ...]:
    """Median seconds of ``fa`` and ``fb``, run alternately after one warm-up each (so
    a change of machine load hits both alike); with ``paired`` also the median of the
    per-pair ratios ``t_b / t_a``."""
    fa()
    fb()
    ta, tb = [], []
    for _ in range(repeats):
        for f, out in ((fa, ta), (fb, tb)):
            t0 = time.perf_counter()
            f()
            out.append(time.perf_counter() - t0)
    if paired:
        return (statistics.median(ta), statistics.median(tb),
                statistics.median(b / a for a, b in zip(ta, tb, strict=True)))
    return statistics.median(ta), statistics.median(tb)


def op_counter_overhead(model: nn.Module, x: torch.Tensor, repeats: int) -> dict[str, Any]:
    """The demo classifier's forward on ``x`` with and without an ``OpCounter``
    (:func:`aura_snn.metrics.ops.count_ops`: hooks attached, counted, detached)."""
    from aura_snn.metrics.ops import count_ops

    def plain() -> None:
        with torch.no_grad():
            model(x)

    # a forward is a few ms, so the machine's noise is of the size of the overhead: many
    # interleaved pairs, overhead as the median of the per-pair ratios
    pairs = 20 * repeats
    base, counted, ratio = _interleaved(plain, lambda: count_ops(model, x), pairs,
                                        paired=True)
    return {"counter": "OpCounter (module forward)",
            "workload": f"demo classifier, T={x.shape[0]}, B={x.shape[1]}, {pairs} pairs",
            "run_s": base, "counted_s": counted, "overhead": ratio - 1.0}


def graph_counter_overhead(steps: int, repeats: int) -> dict[str, Any]:
    """A CUBA graph of 4,000 neurons (2 % connectivity, ``bench_region.build_cuba``) run
    by the compiled engine with and without ``GraphOpCounter``; the counted synaptic
    events are checked against spikes times out-degree from the recorded spikes."""
    import importlib.util

    from bench_region import build_cuba

    g, _ = build_cuba(4000, p=0.02)
    row: dict[str, Any] = {"counter": "GraphOpCounter (engine run)",
                           "workload": f"CUBA 4000 neurons p=2%, {steps} steps"}

    def plain() -> None:
        with torch.no_grad():
            g.run(steps, reset=True, backend="engine")

    if importlib.util.find_spec("aura_snn.metrics.graph_ops") is None:
        row["run_s"] = median_time(plain, repeats)
        row["note"] = "not measured: graph counter absent (aura_snn.metrics.graph_ops)"
        return row
    from aura_snn.metrics.graph_ops import GraphOpCounter

    def counted() -> None:
        with torch.no_grad(), GraphOpCounter(g):
            g.run(steps, reset=True, backend="engine")

    row["run_s"], row["counted_s"] = _interleaved(plain, counted, repeats)
    row["overhead"] = row["counted_s"] / row["run_s"] - 1.0
    with torch.no_grad(), GraphOpCounter(g) as oc:  # exactness, untimed
        res = g.run(steps, reset=True, backend="engine", record=list(g.regions))
    expect = 0
    for p in g.projections.values():
        out_deg = np.bincount(p.to_coo()[0], minlength=p.n_pre)
        expect += int((res.outputs[p.pre].double().sum((0, 1)).numpy() * out_deg).sum())
    got = oc.counts.total("effective")
    row["events_counted"], row["events_expected"] = got, expect
    row["events_exact"] = got == expect
    return row


# -- 3. demo classifier: energy per target, NeuroBench ----------------------------------------

def demo_model(model_dir: str | None, epochs: int) -> tuple[nn.Module, dict[str, Any], str]:
    """The demo classifier and its task config: loaded from ``model_dir`` (a folder that
    ``aura-snn demo`` saved) or trained for ``epochs`` epochs."""
    from dataclasses import asdict

    from aura_snn.tasks.digits import DigitsConfig, train

    if model_dir is not None:
        from aura_snn.neurons.saved import load_model, read_config

        meta = read_config(model_dir).get("metadata", {})
        cfg = {**asdict(DigitsConfig()), **meta.get("config", {})}
        return load_model(model_dir).eval(), cfg, f"loaded from {model_dir}"
    res = train(DigitsConfig(epochs=epochs))
    return res.model.eval(), res.config, (f"trained {epochs} epochs, test accuracy "
                                          f"{res.test_accuracy:.3f}")


def demo_input(cfg: dict[str, Any]) -> torch.Tensor:
    """The test set as the demo presents it: constant pixels, ``[T, B, 64]``."""
    from aura_snn.tasks.digits import load_digits

    _, _, x_te, _ = load_digits(cfg["test_fraction"], cfg["seed"])
    return x_te.unsqueeze(0).expand(cfg["steps"], *x_te.shape).contiguous()


def energy_rows(model: nn.Module, x: torch.Tensor) -> list[dict[str, Any]]:
    """Per-inference energy for cmos45, loihi and gpu (:func:`hardware.energy.energy`).
    Loihi has no multiplier: the first layer's real-valued products are priced at its
    synaptic-op figure (``strict=False``), as ``aura-snn demo`` does."""
    from aura_snn.metrics.ops import count_ops
    from hardware.energy import energy, get_target

    counts = count_ops(model, x)
    macs = counts.per_sample("macs")
    rows = []
    for name in ("cmos45", "loihi", "gpu"):
        rep = energy(counts, name, steps=int(x.shape[0]), strict=False)
        p, t = rep["per_inference"], get_target(name)
        rows.append({"target": name, "compute_nJ": p["compute_pJ"] / 1e3,
                     "memory_nJ": p["memory_pJ"] / 1e3, "dense_ann_nJ": p["dense_ann_pJ"] / 1e3,
                     "macs": macs, "acs": counts.per_sample("acs"),
                     "activation_sparsity": counts.activation_sparsity,
                     "source": rep["target"]["source"],
                     "note": (f"{macs:,.0f} real-valued products per inference priced at the "
                              f"synaptic-op figure ({t.e_mac:g} pJ; no multiplier)")
                     if macs and not t.supports_mac else None})
    return rows


class _Gain(nn.Module):
    """Multiplies by a constant: our LIF's input gain ``g`` in front of an snnTorch
    ``Leaky`` (which adds its input as it is). Not a connection layer, so NeuroBench
    counts no operation in it."""

    def __init__(self, g: float) -> None:
        super().__init__()
        self.g = g

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.g


def snntorch_twin(model: nn.Module) -> nn.Module:
    """The same classifier in snnTorch: each ``Linear`` shared as it is, each LIF
    (reset at the spike, to zero, ``v_leak = v_reset = 0``) as ``_Gain(g)`` then
    ``snn.Leaky(beta=a, reset_mechanism="zero", reset_delay=False)``, with ``a`` and
    ``g`` from the model registry. With ``reset_delay=False`` and a zero reset,
    snnTorch's update is ``mem = a mem + g x``, ``S = H(mem - threshold)``, ``mem = 0``
    where ``S`` (its pending-reset term is always 0: a membrane left at or below
    threshold), which is ours (``aura_snn.functional.lif``)."""
    import snntorch as snn

    from aura_snn.functional.registry import spec_of
    from aura_snn.neurons.base import SpikingNeuron

    layers: list[nn.Module] = []
    children = list(model.named_children())
    last = max(i for i, (_, m) in enumerate(children) if isinstance(m, SpikingNeuron))
    for i, (name, m) in enumerate(children):
        if isinstance(m, nn.Linear):
            layers.append(m)
            continue
        p = m.neuron_parameters() if isinstance(m, SpikingNeuron) else None
        spec = spec_of(p)
        if spec is None or spec.name != "lif" or p.reset != "zero" or p.reset_at != "spike" \
                or p.v_leak != 0.0 or p.v_reset != 0.0:
            raise ValueError(f"model: layer {name!r} ({type(m).__name__}) has no snnTorch "
                             "twin here (Linear and zero-reset LIF only)")
        cf = spec.compile(p, m.dt)
        beta = torch.tensor(float(cf.a_m), dtype=torch.float32)
        layers += [_Gain(float(cf.receptors[0][0])),
                   snn.Leaky(beta=beta, threshold=float(p.threshold), reset_mechanism="zero",
                             reset_delay=False, init_hidden=True, output=i == last)]
    return nn.Sequential(*layers)


def neurobench_rows(model: nn.Module, x: torch.Tensor) -> list[dict[str, Any]]:
    """NeuroBench 2.3's metrics (passed as classes) on :func:`snntorch_twin` of ``model``
    against ours on ``model``, both on ``x`` (``[T, B, 64]``; NeuroBench takes
    ``[B, T, 64]``). One row per metric, ``equal`` at a relative 1e-12; a first row
    compares the two models' output spikes (the twin must compute what ours does)."""
    import math

    import snntorch as snn  # noqa: F401  (the twin needs it; fail here if absent)
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import ConnectionSparsity, Footprint
    from neurobench.metrics.workload import (
        ActivationSparsity,
        MembraneUpdates,
        SynapticOperations,
    )
    from neurobench.models import SNNTorchModel

    from aura_snn.metrics.ops import connection_sparsity, count_ops, footprint

    peer = snntorch_twin(model)
    xb = x.transpose(0, 1).contiguous()
    with torch.no_grad():
        ours_spikes = model(x)
        peer_spikes = SNNTorchModel(peer)(xb).transpose(0, 1)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(xb, torch.zeros(xb.shape[0])), batch_size=xb.shape[0])
    ref = Benchmark(SNNTorchModel(peer), loader, [], [],
                    [[ConnectionSparsity, Footprint],
                     [ActivationSparsity, SynapticOperations, MembraneUpdates]]).run()
    got = count_ops(model, x, membrane_updates="changed")  # NeuroBench's definition
    every = count_ops(model, x).per_sample("membrane_updates")  # ours: every neuron-step
    syn = ref["SynapticOperations"]
    pairs = [("effective MACs per sample", got.per_sample("macs"), syn["Effective_MACs"]),
             ("effective ACs per sample", got.per_sample("acs"), syn["Effective_ACs"]),
             ("dense synaptic ops per sample", got.per_sample("dense"), syn["Dense"]),
             ('membrane updates per sample (membrane_updates="changed")',
              got.per_sample("membrane_updates"), ref["MembraneUpdates"]),
             ("activation sparsity", got.activation_sparsity, ref["ActivationSparsity"]),
             ("connection sparsity", connection_sparsity(model), ref["ConnectionSparsity"]),
             ("footprint of the snnTorch twin (bytes)", float(footprint(peer)),
              float(ref["Footprint"]))]
    agree = float((ours_spikes == peer_spikes.to(ours_spikes.dtype)).double().mean())
    rows = [{"metric": "output spikes, ours vs snnTorch twin (fraction equal)", "ours": agree,
             "neurobench": 1.0, "equal": agree == 1.0}]
    rows += [{"metric": k, "ours": a, "neurobench": float(b),
              "equal": math.isclose(a, float(b), rel_tol=1e-12, abs_tol=0.0)}
             for k, a, b in pairs]
    rows.append({"metric": 'membrane updates per sample, ours (membrane_updates="all", '
                 "every neuron-step; not a NeuroBench figure)", "ours": every,
                 "neurobench": None, "equal": None})
    return rows


# -- goals, tables, main -------------------------------------------------------------------

def make_goals(nets: list[dict[str, Any]], counters: list[dict[str, Any]],
               nb: list[dict[str, Any]] | str) -> list[Goal]:
    """The issue's goals from the rows; a goal with nothing measured is not met."""
    agree = [r["agreement"] for r in nets if "agreement" in r]
    speed = [r["speedup_vs_process_run"] for r in nets if "speedup_vs_process_run" in r]
    goals = [Goal("fixed_pt spike agreement, every exported network (lowest)", "100%",
                  min(agree) if agree else "not measured",
                  bool(agree) and len(agree) == len(nets) and min(agree) == 1.0),
             Goal("twin speed-up vs Lava's simulator (Process.run), smallest",
                  f">= {SPEEDUP_TARGET:g}x", round(min(speed), 1) if speed else "not measured",
                  bool(speed) and min(speed) >= SPEEDUP_TARGET)]
    for c in counters:
        ov = c.get("overhead")
        goals.append(Goal(f"counter overhead, {c['counter']}", f"<= {OVERHEAD_TARGET:.0%}",
                          round(ov, 3) if ov is not None else c.get("note", "not measured"),
                          ov is not None and ov <= OVERHEAD_TARGET))
    if isinstance(nb, str):
        goals.append(Goal("NeuroBench-equivalent figures equal NeuroBench's", "all equal",
                          nb, False))
    else:
        cmp = [r for r in nb if r["equal"] is not None]  # rows with a NeuroBench figure
        n_eq = sum(bool(r["equal"]) for r in cmp)
        goals.append(Goal("NeuroBench-equivalent figures equal NeuroBench's", "all equal",
                          f"{n_eq}/{len(cmp)} equal", bool(cmp) and n_eq == len(cmp)))
    return goals


NET_COLUMNS = ["network", "synapses", "steps", "nir_s", "lava_export_s", "lava_compile_s",
               "lava_run_s", "lava_read_s", "lava_total_s", "twin_s", "agreement",
               "rate_out", "speedup_vs_run", "speedup_vs_process_run"]


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--model", metavar="DIR",
                   help="a saved demo classifier (aura-snn demo writes out/demo/model); "
                        "default: train one here")
    args = p.parse_args()
    quick = args.quick
    steps, repeats = (200, 3) if quick else (1000, 10)
    epochs, cuba_steps = (2, 2000) if quick else (10, 10_000)
    t_start = time.perf_counter()
    print(f"networks: {steps} steps, Lava fixed_pt", flush=True)
    try:
        nets, nets_note = networks(steps, repeats), None
    except ImportError as exc:  # lava-nc or nir missing: the goals say not measured
        nets, nets_note = [], f"not measured: {exc}"
        print(f"  {nets_note}")
    children = len(multiprocessing.active_children())  # Lava's actors, all stopped?
    print("demo classifier ...", flush=True)
    model, cfg, how = demo_model(args.model, epochs)
    x = demo_input(cfg)
    counters = [op_counter_overhead(model, x, repeats), graph_counter_overhead(cuba_steps,
                                                                               repeats)]
    energy = energy_rows(model, x)
    try:
        nb: list[dict[str, Any]] | str = neurobench_rows(model, x)
    except ImportError as exc:
        nb = f"not measured: {exc}"
    if nets:
        print_table(nets, NET_COLUMNS, title="Export and Lava fixed_pt vs the fixed-point twin "
                    "(seconds; speed-ups of the twin)")
    print_table(counters, ["counter", "workload", "run_s", "counted_s", "overhead",
                           "events_exact", "note"], title="Counter overhead")
    print_table(energy, ["target", "compute_nJ", "memory_nJ", "dense_ann_nJ", "macs", "acs",
                         "activation_sparsity", "source"],
                title=f"Demo classifier ({how}): energy per inference, {x.shape[1]} test "
                      f"samples of {x.shape[0]} steps")
    if isinstance(nb, str):
        print(f"\nNeuroBench: {nb}")
    else:
        print_table(nb, ["metric", "ours", "neurobench", "equal"],
                    title="NeuroBench 2.3 on an snnTorch twin vs ours")
    goals = make_goals(nets, counters, nb)
    print_goals(goals)
    reduced = [r["network"] for r in nets if r["steps_reduced_from"]]
    results = ([{"section": "networks", **r} for r in nets]
               + ([{"section": "networks", "note": nets_note}] if nets_note else [])
               + [{"section": "counters", **r} for r in counters]
               + [{"section": "energy", **r} for r in energy]
               + ([{"section": "neurobench", **r} for r in nb] if not isinstance(nb, str)
                  else [{"section": "neurobench", "note": nb}]))
    write_report(args.json, results, goals, meta={
        "quick": quick, "steps": steps, "repeats": repeats, "model": how,
        "lava_budget_s": LAVA_BUDGET_S, "child_processes_left": children,
        "steps_reduced": reduced or "none: every network ran the full steps",
        "seconds": time.perf_counter() - t_start})
    print(f"\n{time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
