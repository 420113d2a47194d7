"""LIF layer speed: aura-snn against snnTorch, Norse, SpikingJelly and plain PyTorch loops.

Two workloads, float32 on the CPU, each at (T, B, N) = (100, 16, 512) and
(500, 32, 2048), forward alone (autograd recording, as in training) and
forward+backward (a dense upstream gradient), median of several runs:

1. ``lif``: the LIF layer alone on an input current ``[T, B, N]`` that requires grad;
2. ``linear_lif``: ``Linear(N, N)`` then LIF on input spikes, each library written the
   way its own documentation writes it (snnTorch: a loop calling ``Leaky`` on
   ``x[step]``; Norse: ``SequentialState(Linear, LIF)`` over the time-major tensor;
   SpikingJelly: ``SeqToANNContainer(Linear)`` + multi-step ``LIFNode``; ours:
   ``nn.Linear`` on ``[T, B, N]`` then :class:`aura_snn.LIF`), plus ``Linear`` alone.

Rows ``torch loop unbind`` and ``torch loop x[t]`` are the same few lines of plain
PyTorch LIF, iterating with ``x.unbind(0)`` or with ``x[t]``: the pair isolates the
cost of indexing an input that requires grad (backward then allocates a full-size
zero gradient per step, quadratic in ``T``), which is what makes the snnTorch and Norse
loops slow at the large size. Those three are timed once at the large size (they take
tens of seconds) and skipped there with ``--quick``.

Norse's ``LIF`` module is current-based (state ``v`` and ``i``), so its like-for-like
row on our side is ``aura CubaLIF``; the speed goal against Norse uses that row.

The copy bandwidth of the machine (``b.copy_(a)`` into a preallocated 256 MB buffer)
is the physical limit: our fused forward reads ``x`` and writes the spikes and the
saved membrane, backward reads the spike gradient and the saved membrane and writes
the input gradient: 24 bytes per element and step in float32.

``--gpu`` runs the Open Neuromorphic library-benchmark workload on CUDA instead
(``Linear(n, n)`` + LIF, T = 500, B = 16, n = 4096, 8192, 16384; forward and backward
timed separately) and exits with a message where CUDA is absent.

Usage::

    python benchmarks/bench_lif.py [--quick] [--json PATH] [--no-memory]
    python benchmarks/bench_lif.py --gpu [--json PATH]
"""

from __future__ import annotations

import gc
import importlib.metadata
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from _common import Goal, parser, print_goals, print_table, write_report
from torch import nn

import aura_snn  # the repository root is on sys.path through _common

TAU_MEM, TAU_SYN, DT, THRESHOLD = 10e-3, 5e-3, 1e-3, 1.0  # s, s, s, V
BETA = math.exp(-DT / TAU_MEM)  # snnTorch's per-step decay for the same tau
SIZES = [(100, 16, 512), (500, 32, 2048)]
LARGE = SIZES[-1]
SLOW_LIBS = ("snntorch", "norse", "torch loop x[t]")  # quadratic backward at large T
SLOW_AFTER_S = 5.0  # a run longer than this counts as a sample on its own (no warm-up)
SPEEDUP_TARGET, BANDWIDTH_TARGET, LINEAR_OVERHEAD_TARGET = 4.0, 0.30, 1.25
BYTES_PER_ELEMENT = {"fwd": 12, "fwd+bwd": 24}  # float32 traffic of the fused layer
GPU_SIZES, GPU_T, GPU_B, GPU_DEVICE = (4096, 8192, 16384), 500, 16, "cuda"


# -- plain PyTorch reference loop (our own few lines, no library) ------------------------

class _FastSigmoidSpike(torch.autograd.Function):
    """Heaviside forward, :math:`1/(1 + 25|x|)^2` backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad / (1.0 + 25.0 * x.abs()) ** 2


def torch_loop(x: torch.Tensor, index: bool) -> torch.Tensor:
    """LIF with exact decay and subtractive reset, one PyTorch op chain per step;
    ``index`` iterates with ``x[t]`` instead of ``x.unbind(0)``."""
    a = math.exp(-DT / TAU_MEM)
    v = torch.zeros_like(x[0])
    out = []
    steps = (x[t] for t in range(x.shape[0])) if index else x.unbind(0)
    for x_t in steps:
        v = a * v + (1.0 - a) * x_t
        s = _FastSigmoidSpike.apply(v - THRESHOLD)
        v = v - THRESHOLD * s
        out.append(s)
    return torch.stack(out)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


# -- each library's LIF layer: returns (run(x) -> spikes, input scale, note) --------------

def lif_layer(lib: str, device: str = "cpu") -> tuple[Callable[[torch.Tensor], torch.Tensor],
                                                       float, str]:
    """The LIF layer of ``lib`` as its documentation writes it. The input scale maps our
    input (steady-state voltage, V) to the library's convention, so all simulate the
    same neuron (tau 10 ms at dt 1 ms, threshold 1 V)."""
    if lib == "aura LIF":
        m = aura_snn.LIF(TAU_MEM, dt=DT, threshold=THRESHOLD).to(device)
        return m, 1.0, f"backend={m.backend} (fused kernel on {device})"
    if lib == "aura CubaLIF":
        m = aura_snn.CubaLIF(TAU_MEM, TAU_SYN, dt=DT, threshold=THRESHOLD).to(device)
        return m, 1.0 / (1.0 - math.exp(-DT / TAU_SYN)), "current-based, like Norse LIF"
    if lib == "snntorch":
        import snntorch as snn

        leaky = snn.Leaky(beta=BETA, threshold=THRESHOLD).to(device)

        def run(x: torch.Tensor) -> torch.Tensor:
            mem = torch.zeros_like(x[0])
            spk_rec = []
            for step in range(x.shape[0]):  # snnTorch's tutorials: lif(cur[step], mem)
                spk, mem = leaky(x[step], mem)
                spk_rec.append(spk)
            return torch.stack(spk_rec)

        return run, 1.0 - BETA, f"Leaky loop over x[step], snntorch {_version('snntorch')}"
    if lib == "norse":
        import norse.torch as ntorch

        p = ntorch.LIFParameters(tau_mem_inv=torch.as_tensor(1.0 / TAU_MEM),
                                 tau_syn_inv=torch.as_tensor(1.0 / TAU_SYN),
                                 v_th=torch.as_tensor(THRESHOLD))
        layer = ntorch.LIF(p, dt=DT).to(device)
        return (lambda x: layer(x)[0], 1.0 / (1.0 - math.exp(-DT / TAU_SYN)),
                f"norse.torch.LIF (current-based), norse {_version('norse')}")
    if lib == "spikingjelly":
        from spikingjelly.activation_based import neuron

        node = neuron.LIFNode(tau=TAU_MEM / DT, v_threshold=THRESHOLD, step_mode="m").to(device)

        def run(x: torch.Tensor) -> torch.Tensor:
            node.reset()  # SpikingJelly keeps v in the module between calls
            return node(x)

        return run, 1.0, f"LIFNode(step_mode='m'), spikingjelly {_version('spikingjelly')}"
    if lib == "torch loop unbind":
        return (lambda x: torch_loop(x, index=False)), 1.0, "plain PyTorch, x.unbind(0)"
    if lib == "torch loop x[t]":
        return (lambda x: torch_loop(x, index=True)), 1.0, "plain PyTorch, x[t] indexing"
    raise ValueError(f"unknown library {lib!r}")


LIF_LIBS = ("aura LIF", "aura CubaLIF", "snntorch", "norse", "spikingjelly",
            "torch loop unbind", "torch loop x[t]")
LINEAR_LIBS = ("Linear alone", "aura LIF", "snntorch", "norse", "spikingjelly",
               "torch loop unbind")


def make_linear(n: int, device: str = "cpu") -> nn.Linear:
    """``Linear(n, n)`` with the same weights for every library: std 3/sqrt(n), bias
    0.5, so 20%-dense input spikes drive a moderate firing rate."""
    g = torch.Generator().manual_seed(1234)
    lin = nn.Linear(n, n)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(n, n, generator=g) * (3.0 / math.sqrt(n)))
        lin.bias.fill_(0.5)
    return lin.to(device)


def linear_lif(lib: str, n: int, device: str = "cpu") -> tuple[Callable[[torch.Tensor],
                                                                        torch.Tensor],
                                                               list[nn.Parameter], str]:
    """``Linear(n, n)`` + LIF as ``lib``'s documentation writes it: (run, params, note)."""
    lin = make_linear(n, device)
    params = list(lin.parameters())
    if lib == "Linear alone":
        return lin, params, "nn.Linear on [T, B, N]"
    if lib == "aura LIF":
        lif = aura_snn.LIF(TAU_MEM, dt=DT, threshold=THRESHOLD).to(device)
        return (lambda x: lif(lin(x))), params, "nn.Linear on [T, B, N], then aura_snn.LIF"
    if lib == "snntorch":
        import snntorch as snn

        leaky = snn.Leaky(beta=BETA, threshold=THRESHOLD).to(device)

        def run(x: torch.Tensor) -> torch.Tensor:
            mem = torch.zeros(x.shape[1:], device=x.device)
            spk_rec = []
            for step in range(x.shape[0]):
                spk, mem = leaky(lin(x[step]), mem)
                spk_rec.append(spk)
            return torch.stack(spk_rec)

        return run, params, "per step: fc(x[step]) then Leaky"
    if lib == "norse":
        import norse.torch as ntorch

        p = ntorch.LIFParameters(tau_mem_inv=torch.as_tensor(1.0 / TAU_MEM),
                                 tau_syn_inv=torch.as_tensor(1.0 / TAU_SYN),
                                 v_th=torch.as_tensor(THRESHOLD))
        model = ntorch.SequentialState(lin, ntorch.LIF(p, dt=DT)).to(device)
        return (lambda x: model(x)[0]), params, "SequentialState(Linear, LIF)"
    if lib == "spikingjelly":
        from spikingjelly.activation_based import functional as sjf
        from spikingjelly.activation_based import layer, neuron

        net = nn.Sequential(layer.SeqToANNContainer(lin),
                            neuron.LIFNode(tau=TAU_MEM / DT, v_threshold=THRESHOLD,
                                           step_mode="m")).to(device)

        def run(x: torch.Tensor) -> torch.Tensor:
            sjf.reset_net(net)
            return net(x)

        return run, params, "SeqToANNContainer(Linear) + LIFNode(step_mode='m')"
    if lib == "torch loop unbind":
        return (lambda x: torch_loop(lin(x), index=False)), params, "nn.Linear, then unbind loop"
    raise ValueError(f"unknown library {lib!r}")


# -- timing --------------------------------------------------------------------------------

def _once(fn: Callable[[], Any]) -> float:
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def timed(fn: Callable[[], Any], repeats: int, slow_repeats: int = 1) -> tuple[float, int]:
    """(median seconds, runs). One warm-up run; a warm-up slower than ``SLOW_AFTER_S``
    counts as a sample (warm-up effects are negligible there) and the runs stop at
    ``slow_repeats``."""
    first = _once(fn)
    times = [first] if first > SLOW_AFTER_S else []
    want = slow_repeats if first > SLOW_AFTER_S else repeats
    while len(times) < want:
        times.append(_once(fn))
    return statistics.median(times), len(times)


def time_modes(run: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
               gout: torch.Tensor, leaves: list[torch.Tensor],
               repeats: int) -> list[tuple[str, float, int]]:
    """Time ``run(x)`` (forward, autograd recording as in training) and
    ``run(x).backward(gout)`` (the gradients of ``leaves`` cleared before each run).
    Returns ``[(mode, median seconds, runs)]``."""
    def fwd() -> None:
        run(x)

    def fwd_bwd() -> None:
        for t in leaves:
            t.grad = None
        run(x).backward(gout)

    run(x[:2]).backward(gout[:2])  # compile/load kernels outside the timed runs
    return [(mode, *timed(fn, repeats)) for mode, fn in (("fwd", fwd), ("fwd+bwd", fwd_bwd))]


def _peer_available(lib: str) -> str | None:
    """None if ``lib`` can run here, else why not."""
    module = {"snntorch": "snntorch", "norse": "norse", "spikingjelly": "spikingjelly"}.get(lib)
    if module is None:
        return None
    try:
        __import__(module)
    except ImportError as exc:
        return f"not installed ({exc.name})"
    return None


def _skip_reason(lib: str, size: tuple[int, int, int], quick: bool) -> str | None:
    """Why ``lib`` is not timed at ``size`` (not installed, or too slow for ``--quick``)."""
    why = _peer_available(lib)
    if why is None and quick and size == LARGE and lib in SLOW_LIBS:
        why = "skipped with --quick (tens of seconds at this size)"
    return why


def bench_lif(size: tuple[int, int, int], repeats: int, quick: bool) -> list[dict[str, Any]]:
    T, B, N = size
    torch.manual_seed(0)
    base = torch.rand(T, B, N) * 2.4  # steady-state voltage, mean 1.2 V vs threshold 1 V
    gout = torch.randn(T, B, N)
    rows = []
    for lib in LIF_LIBS:
        row: dict[str, Any] = {"workload": "lif", "T": T, "B": B, "N": N, "library": lib}
        why = _skip_reason(lib, size, quick)
        if why is not None:
            rows.append({**row, "mode": "fwd+bwd", "note": why})
            continue
        run, scale, note = lif_layer(lib)
        x = (base * scale).requires_grad_()
        with torch.no_grad():
            rate = float(run(x).mean())
        for mode, t, n in time_modes(run, x, gout, [x], repeats):
            rows.append({**row, "mode": mode, "median_ms": t * 1e3, "runs": n,
                         "rate": rate, "load": round(os.getloadavg()[0], 2), "note": note})
        print(f"  lif {size} {lib}: fwd+bwd {rows[-1]['median_ms']:.1f} ms", flush=True)
    return rows


def bench_linear_lif(size: tuple[int, int, int], repeats: int,
                     quick: bool) -> list[dict[str, Any]]:
    T, B, N = size
    torch.manual_seed(0)
    x = (torch.rand(T, B, N) < 0.2).float()  # input spikes, no grad
    gout = torch.randn(T, B, N)
    rows = []
    for lib in LINEAR_LIBS:
        row: dict[str, Any] = {"workload": "linear_lif", "T": T, "B": B, "N": N,
                               "library": lib}
        why = _skip_reason(lib, size, quick)
        if why is not None:
            rows.append({**row, "mode": "fwd+bwd", "note": why})
            continue
        run, params, note = linear_lif(lib, N)
        with torch.no_grad():
            rate = float(run(x).mean()) if lib != "Linear alone" else None
        for mode, t, n in time_modes(run, x, gout, params, repeats):
            rows.append({**row, "mode": mode, "median_ms": t * 1e3, "runs": n,
                         "rate": rate, "load": round(os.getloadavg()[0], 2), "note": note})
        print(f"  linear_lif {size} {lib}: fwd+bwd {rows[-1]['median_ms']:.1f} ms", flush=True)
    return rows


# -- machine limits and memory ----------------------------------------------------------------

def copy_bandwidth(mbytes: int = 256, repeats: int = 10) -> dict[str, float]:
    """Copy bandwidth in GB/s (bytes read + written per second) of ``b.copy_(a)``
    into a preallocated buffer, and of a copy into a fresh ``empty_like`` (page faults)."""
    a = torch.rand(mbytes * 2**20 // 4)
    b = torch.empty_like(a)
    b.copy_(a)
    pre = statistics.median(_once(lambda: b.copy_(a)) for _ in range(repeats))
    fresh = statistics.median(_once(lambda: torch.empty_like(a).copy_(a))
                              for _ in range(max(3, repeats // 2)))
    nbytes = 2 * a.numel() * a.element_size()
    return {"buffer_MB": mbytes, "preallocated_GBps": nbytes / pre / 1e9,
            "fresh_empty_like_GBps": nbytes / fresh / 1e9}


def _peak_rss_mb() -> float:
    """Peak resident memory of this process (MB): ``VmHWM`` where ``/proc`` has it.

    ``getrusage(...).ru_maxrss`` is the fallback only: on Linux it survives
    ``fork``+``exec``, so a child started by a large parent reports the parent's peak."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def memory_worker(workload: str, lib: str, T: int, B: int, N: int) -> dict[str, float]:
    """In a fresh process: extra peak RSS (MB) of one forward+backward, over the peak
    reached with the inputs allocated and the library warmed up on a tiny input."""
    torch.manual_seed(0)
    if workload == "lif":
        run, scale, _ = lif_layer(lib)
        tiny = (torch.rand(2, 1, 8) * scale).requires_grad_()
        run(tiny).sum().backward()  # lazy initialisation, kernel loading
        x = (torch.rand(T, B, N) * 2.4 * scale).requires_grad_()
        params: list[nn.Parameter] = []
    else:
        run, params, _ = linear_lif(lib, N)
        x = (torch.rand(T, B, N) < 0.2).float()
        run(x[:2, :1]).sum().backward()
    gout = torch.randn(T, B, N)
    gc.collect()
    base = _peak_rss_mb()
    for p in params:
        p.grad = None
    run(x).backward(gout)
    peak = _peak_rss_mb()
    return {"base_MB": round(base, 1), "peak_MB": round(peak, 1),
            "delta_MB": round(peak - base, 1)}


def measure_memory(workload: str, lib: str, size: tuple[int, int, int]) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--memory-worker", workload, lib, *map(str, size)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def page_fault_figures() -> dict[str, Any]:
    """``page_faults.py``'s figures, measured in a fresh process (its fault counter and
    heap are then this measurement's alone)."""
    script = Path(__file__).with_name("page_faults.py")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=600, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def spikingjelly_cpu_path() -> dict[str, Any]:
    """Which implementation SpikingJelly's multi-step LIFNode runs here, from a profile."""
    if _peer_available("spikingjelly") is not None:
        return {"available": False}
    run, _, _ = lif_layer("spikingjelly")
    x = torch.rand(8, 2, 16).requires_grad_()
    with torch.profiler.profile() as prof:
        out = run(x)
        grad_fn = type(out.grad_fn).__name__
        out.sum().backward()
    names = {e.name for e in prof.events()}
    per_step = sum(1 for e in prof.events() if e.name == "autograd::engine::evaluate_function: "
                   "MulBackward0")
    return {
        "forward_op": sorted(n for n in names if n.startswith("sj_lif::")),
        "hand_written_backward_used": "sj_lif::backward" in names,
        "output_grad_fn": grad_fn,
        "autograd_mul_nodes_for_T=8": per_step,
        "summary": ("forward: custom op sj_lif::forward, whose CPU body is SpikingJelly's "
                    "Torch reference loop (_ops/lif/reference.py, a Python loop over "
                    "unbind); backward: "
                    + ("its hand-written sj_lif::backward"
                       if "sj_lif::backward" in names else
                       f"autograd through the per-step ops (grad_fn {grad_fn}); the "
                       "hand-written _ops/lif/cpu.py backward is not called")),
    }


# -- CPU main ------------------------------------------------------------------------------------

def _ms(rows: list[dict[str, Any]], workload: str, lib: str, size: tuple[int, int, int],
        mode: str = "fwd+bwd") -> float | None:
    for r in rows:
        if (r["workload"], r["library"], (r["T"], r["B"], r["N"]), r["mode"]) == (
                workload, lib, size, mode) and "median_ms" in r:
            return r["median_ms"]
    return None


def goals_from(rows: list[dict[str, Any]], bw: dict[str, float]) -> list[Goal]:
    goals = []
    for size in SIZES:
        tag = "x".join(map(str, size))
        for peer, ours in (("spikingjelly", "aura LIF"), ("snntorch", "aura LIF"),
                           ("norse", "aura CubaLIF"), ("torch loop unbind", "aura LIF")):
            t_ours, t_peer = _ms(rows, "lif", ours, size), _ms(rows, "lif", peer, size)
            if t_ours is None or t_peer is None:
                continue
            ratio = t_peer / t_ours
            goals.append(Goal(f"lif fwd+bwd {tag}: {ours} vs {peer}", f">= {SPEEDUP_TARGET:g}x",
                              round(ratio, 2), ratio >= SPEEDUP_TARGET))
        t_lin = _ms(rows, "linear_lif", "Linear alone", size)
        t_both = _ms(rows, "linear_lif", "aura LIF", size)
        if t_lin is not None and t_both is not None:
            ratio = t_both / t_lin
            goals.append(Goal(f"linear_lif fwd+bwd {tag}: (Linear+LIF) / Linear alone",
                              f"<= {LINEAR_OVERHEAD_TARGET:g}", round(ratio, 3),
                              ratio <= LINEAR_OVERHEAD_TARGET))
    t = _ms(rows, "lif", "aura LIF", LARGE)
    if t is not None:
        frac = bandwidth_fraction(t, LARGE, "fwd+bwd", bw)
        goals.append(Goal(f"lif fwd+bwd {'x'.join(map(str, LARGE))}: fraction of copy bandwidth",
                          f">= {BANDWIDTH_TARGET:.0%}", round(frac, 3), frac >= BANDWIDTH_TARGET))
    return goals


def bandwidth_fraction(ms: float, size: tuple[int, int, int], mode: str,
                       bw: dict[str, float]) -> float:
    nbytes = BYTES_PER_ELEMENT[mode] * math.prod(size)
    return nbytes / (ms / 1e3) / 1e9 / bw["preallocated_GBps"]


def main_cpu(args: Any) -> None:
    import numba

    repeats = {SIZES[0]: 3 if args.quick else 7, LARGE: 1 if args.quick else 3}
    load_start = os.getloadavg()
    print(f"load average {load_start[0]:.2f}; torch threads {torch.get_num_threads()}, "
          f"numba threads {numba.get_num_threads()}", flush=True)
    bw = copy_bandwidth()
    print(f"copy bandwidth: {bw['preallocated_GBps']:.1f} GB/s preallocated, "
          f"{bw['fresh_empty_like_GBps']:.1f} GB/s into a fresh empty_like", flush=True)
    sj_path = spikingjelly_cpu_path()
    faults = page_fault_figures()
    print(f"page faults (fresh process): {faults}", flush=True)
    rows: list[dict[str, Any]] = []
    for size in SIZES:
        rows += bench_lif(size, repeats[size], args.quick)
    for size in SIZES:
        rows += bench_linear_lif(size, repeats[size], args.quick)

    for r in rows:  # time relative to ours in the same workload, size and mode
        ours = "aura CubaLIF" if (r["workload"] == "lif" and r["library"] == "norse") \
            else "aura LIF"
        t_ours = _ms(rows, r["workload"], ours, (r["T"], r["B"], r["N"]), r["mode"])
        if "median_ms" in r and t_ours:
            r["x_ours"] = r["median_ms"] / t_ours
        if r["library"].startswith("aura") and r["workload"] == "lif" and "median_ms" in r:
            r["bw_frac"] = bandwidth_fraction(r["median_ms"], (r["T"], r["B"], r["N"]),
                                              r["mode"], bw)

    memory: list[dict[str, Any]] = []
    if not args.no_memory:
        mem_sizes = [SIZES[0]] if args.quick else SIZES
        for size in mem_sizes:
            for lib in LIF_LIBS:
                if _peer_available(lib) is None and lib != "torch loop x[t]":
                    memory.append({"workload": "lif", "T": size[0], "B": size[1],
                                   "N": size[2], "library": lib,
                                   **measure_memory("lif", lib, size)})
                    print(f"  memory lif {size} {lib}: {memory[-1]}", flush=True)

    cols = ["workload", "T", "B", "N", "library", "mode", "median_ms", "runs", "x_ours",
            "bw_frac", "rate", "load", "note"]
    for workload in ("lif", "linear_lif"):
        print_table([r for r in rows if r["workload"] == workload], cols,
                    title=f"{workload}: float32, CPU; x_ours = time / ours (aura CubaLIF "
                          "for norse on lif)")
    if memory:
        print_table(memory, ["workload", "T", "B", "N", "library", "delta_MB", "peak_MB",
                             "error"],
                    title="extra peak RSS of one fwd+bwd (fresh process per library)")
    else:
        print("\npeak memory: skipped (--no-memory)")
    print(f"\ncopy bandwidth {bw['preallocated_GBps']:.1f} GB/s (b.copy_(a), 256 MB, "
          f"preallocated; {bw['fresh_empty_like_GBps']:.1f} GB/s into a fresh empty_like)")
    for r in rows:
        if r["library"] == "aura LIF" and r["workload"] == "lif" and "bw_frac" in r:
            print(f"aura LIF {r['mode']} {r['T']}x{r['B']}x{r['N']}: "
                  f"{BYTES_PER_ELEMENT[r['mode']]} B/element -> "
                  f"{r['bw_frac'] * bw['preallocated_GBps']:.1f} GB/s = "
                  f"{r['bw_frac']:.0%} of copy bandwidth")
    print(f"SpikingJelly on CPU: {sj_path.get('summary', 'not installed')}")
    goals = goals_from(rows, bw)
    print_goals(goals)
    if args.quick:
        print("(--quick: snnTorch, Norse and the x[t] loop are not timed at the large size, "
              "so their goals there are absent)")
    write_report(args.json, rows, goals,
                 meta={"quick": args.quick, "copy_bandwidth": bw,
                       "load_average_start": load_start, "load_average_end": os.getloadavg(),
                       "numba_threads":
                       numba.get_num_threads(), "spikingjelly_cpu_path": sj_path,
                       "memory": memory, "page_faults": faults,
                       "bytes_per_element": BYTES_PER_ELEMENT,
                       "sizes": SIZES})


# -- GPU mode: Open Neuromorphic library benchmark workload ------------------------------------

def _gpu_model(lib: str, n: int) -> tuple[Callable[[torch.Tensor], torch.Tensor],
                                          list[nn.Parameter], str]:
    """``Linear(n, n)`` + LIF on CUDA, as ``lib`` writes it (Norse through torch.compile)."""
    if lib == "norse (torch.compile)":
        run, params, note = linear_lif("norse", n, GPU_DEVICE)
        return torch.compile(run), params, note + ", torch.compile"
    return linear_lif(lib, n, GPU_DEVICE)


def main_gpu(args: Any) -> None:
    if not torch.cuda.is_available():
        sys.exit("bench_lif.py --gpu: no CUDA device is available (torch.cuda.is_available() "
                 "is False); run it on a machine with an NVIDIA GPU and a CUDA build of torch.")
    libs = ["aura LIF", "snntorch", "norse (torch.compile)", "spikingjelly"]
    if args.sj_impl != "auto":
        libs = ["spikingjelly"]
    rows: list[dict[str, Any]] = []
    repeats = 3 if args.quick else 10
    for n in GPU_SIZES:
        torch.manual_seed(0)
        x = (torch.rand(GPU_T, GPU_B, n, device=GPU_DEVICE) < 0.2).float()
        gout = torch.randn(GPU_T, GPU_B, n, device=GPU_DEVICE)
        for lib in libs:
            name = lib if lib != "spikingjelly" else f"spikingjelly ({args.sj_impl})"
            row: dict[str, Any] = {"n": n, "T": GPU_T, "B": GPU_B, "library": name}
            why = _peer_available(lib.split(" ")[0])
            if why is not None:
                rows.append({**row, "note": why})
                continue
            try:
                run, params, note = _gpu_model(lib, n)
                fwd_t, bwd_t = [], []
                torch.cuda.reset_peak_memory_stats()
                for i in range(repeats + 1):  # first run: warm-up (compilation, autotuning)
                    for p in params:
                        p.grad = None
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    out = run(x)
                    torch.cuda.synchronize()
                    t1 = time.perf_counter()
                    out.backward(gout)
                    torch.cuda.synchronize()
                    t2 = time.perf_counter()
                    del out
                    if i:
                        fwd_t.append(t1 - t0)
                        bwd_t.append(t2 - t1)
                rows.append({**row, "fwd_ms": statistics.median(fwd_t) * 1e3,
                             "bwd_ms": statistics.median(bwd_t) * 1e3,
                             "peak_GB": torch.cuda.max_memory_allocated() / 1e9, "note": note})
            except Exception as exc:  # one library failing must not hide the others
                msg = " ".join(f"error: {type(exc).__name__}: {exc}".split())
                rows.append({**row, "note": msg[:200]})
            print(f"  gpu n={n} {name}: {rows[-1]}", flush=True)
            gc.collect()
            torch.cuda.empty_cache()
    if args.sj_impl == "auto":  # SpikingJelly reads its CUDA implementation at import
        for impl in ("cuda", "triton", "torch"):
            cmd = [sys.executable, __file__, "--gpu", "--sj-impl", impl, "--rows-only"]
            if args.quick:
                cmd.append("--quick")
            env = {**os.environ, "SJ_LIF_CUDA_IMPLEMENTATION": impl}
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            if proc.returncode == 0:
                rows += json.loads(proc.stdout.strip().splitlines()[-1])
            else:
                rows.append({"library": f"spikingjelly ({impl})",
                             "note": (proc.stderr.strip().splitlines() or ["failed"])[-1][:200]})
    if args.rows_only:
        print(json.dumps(rows))
        return
    print_table(rows, ["n", "T", "B", "library", "fwd_ms", "bwd_ms", "peak_GB", "note"],
                title=f"GPU ({torch.cuda.get_device_name(0)}): Linear(n, n) + LIF, float32")
    write_report(args.json, rows, [], meta={"mode": "gpu", "quick": args.quick})


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--no-memory", action="store_true",
                   help="skip the peak-memory subprocesses")
    p.add_argument("--gpu", action="store_true",
                   help="Open Neuromorphic workload on CUDA (exits if CUDA is absent)")
    p.add_argument("--sj-impl", default="auto", choices=("auto", "cuda", "triton", "torch"),
                   help=argparse_suppress())
    p.add_argument("--rows-only", action="store_true", help=argparse_suppress())
    p.add_argument("--memory-worker", nargs=5, metavar=("WORKLOAD", "LIB", "T", "B", "N"),
                   help=argparse_suppress())
    args = p.parse_args()
    if args.memory_worker:
        workload, lib, *size = args.memory_worker
        print(json.dumps(memory_worker(workload, lib, *map(int, size))))
    elif args.gpu:
        main_gpu(args)
    else:
        main_cpu(args)


def argparse_suppress() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
