"""``aura-snn export MODEL --to nir|lava --out PATH [--verify]``.

``MODEL`` is a saved model folder (``aura-snn demo`` writes one in ``out/demo/model``),
a network file (``aura-snn simulate``'s TOML/YAML) or a NIR file. ``--to nir`` writes
the NIR graph (HDF5, atomically), ``--to lava`` the Loihi 2 fixed-point network
(:mod:`hardware.loihi_file`: the integers Lava's processes are built with) of a saved
model (``Linear``/``Conv1d``/``Conv2d``/``AvgPool``/``Flatten`` between ``LIF``/
``CubaLIF`` layers; the per-sample input shape from ``--input-shape``, the model's
saved ``input_shape`` or its first ``Linear``) or of a network file (its spiking and
input regions, initial values included). ``--verify`` runs the export in its target
on sample input and prints the agreement: the NIR file read back into our kernels
against the model run step by step; Lava's ``fixed_pt`` simulator against the file's
twin (and, for a network, the twin against the float graph). Mistakes (unsupported
layers, shapes that do not chain, no spiking layer, NaN weights, weights beyond the
fixed-point range without ``--allow-saturation``) get one line naming what is wrong
and exit status 2; nothing is left at ``--out`` on failure.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

HELP = "export a model or network to NIR (or Lava) and verify it"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Register the ``export`` options."""
    p.add_argument("model", metavar="MODEL",
                   help="saved model folder, network file (.toml/.yaml) or NIR file")
    p.add_argument("--to", choices=("nir", "lava"), required=True, help="target format")
    p.add_argument("--out", required=True, metavar="PATH", help="file to write")
    p.add_argument("--verify", action="store_true",
                   help="run the export on sample input and print the agreement")
    p.add_argument("--dt", type=float, default=None, help="time step (s) where MODEL has none")
    p.add_argument("--steps", type=int, default=None,
                   help="steps of sample input (default 16; a network file's duration)")
    p.add_argument("--batch", type=int, default=4, help="samples of sample input")
    p.add_argument("--input", default=None, metavar="FILE.npy", help="sample input [T, B, ...]")
    p.add_argument("--input-shape", default=None, metavar="C,H,W",
                   help="per-sample input shape of a saved model whose first layer is not "
                        "a Linear (default: the shape saved with it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--allow-saturation", action="store_true",
                   help="--to lava: clip weights beyond Loihi's fixed-point range "
                        "(reported per layer) instead of refusing them")
    p.add_argument("--approximate", default="", metavar="FEATURES",
                   help="comma-separated features NIR cannot express to approximate "
                        "(reset, next_step_reset, refractory, adaptation, poisson, init; "
                        "see hardware.nir.to_nir); default: refuse them")


def _fail(msg: str) -> int:
    print(f"aura-snn export: {msg}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Export, write atomically, optionally verify; returns the exit status. An error
    after the file was written (during ``--verify``) removes it again."""
    from aura_snn.errors import AuraError

    out = Path(args.out)
    before = out.stat().st_mtime_ns if out.is_file() else None
    try:
        from ._source import load_source, parse_shape

        shape = parse_shape(args.input_shape) if args.input_shape else None
        src = load_source(args.model, args.dt, shape)
        _check_finite(src)
        return _to_lava(src, args) if args.to == "lava" else _to_nir(src, args)
    except (AuraError, OSError, ValueError, TypeError, ImportError, RuntimeError) as exc:
        if out.is_file() and out.stat().st_mtime_ns != before:
            out.unlink()  # written by this run, then verification failed
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        msg = re.sub(r"pass approximate=\{'(\w+)'\}", r"pass --approximate \1", msg)
        return _fail(msg.replace("pass allow_saturation=True", "pass --allow-saturation"))
    except KeyboardInterrupt:
        print("aura-snn export: interrupted", file=sys.stderr)
        return 130


def _check_finite(src: Any) -> None:
    """Refuse NaN or infinite weights before anything is written, naming the tensor."""
    import torch

    from aura_snn.errors import InputValueError

    if src.kind == "network":
        named = [(f"projection {n!r}", p.dense_weight()) for n, p in
                 src.model.projections.items()]
    else:
        named = [(f"layer {n.rsplit('.', 1)[0]!r} ({n.rsplit('.', 1)[-1]})", t)
                 for n, t in src.model.state_dict().items()]
    for what, t in named:
        t = t.detach()
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise InputValueError(f"{what} holds {bad} NaN or infinite value(s)")


def _stepped(model: Any) -> Any:
    """``model`` with the layers between neuron modules wrapped in ``PerStep`` (they act
    on one sample: T and B merged), the form the NIR exporter reads."""
    from torch import nn

    from aura_snn.neurons.base import SpikingNeuron
    from hardware.nir.modules import PerStep

    return nn.Sequential(OrderedDict(
        (n, m if isinstance(m, SpikingNeuron) else PerStep(m))
        for n, m in model.named_children()))


def run_stack(model: Any, x: Any) -> Any:
    """The float model step by step: stateless layers per step, neurons over time."""
    import torch

    from aura_snn.neurons.base import SpikingNeuron
    from hardware._loihi_affine import per_step

    with torch.no_grad():
        for m in model.children():
            x = m(x) if isinstance(m, SpikingNeuron) else per_step([m], x)
    return x


def _to_nir(src: Any, args: argparse.Namespace) -> int:
    from hardware.nir import from_nir, to_nir, write

    from ._source import sample_input, sample_shape

    approximate = {f.strip() for f in args.approximate.split(",") if f.strip()}
    if src.kind == "model":
        graph = to_nir(_stepped(src.model), dt=src.dt, input_shape=sample_shape(src),
                       approximate=approximate)
    else:
        graph = to_nir(src.model, dt=src.dt, approximate=approximate)
    x = None
    if args.verify and src.kind != "network":
        x = sample_input(src, args.steps, args.batch, args.seed, args.input).double()
    write(args.out, graph)
    print(f"wrote {args.out}: {len(graph.nodes)} NIR nodes, {len(graph.edges)} edges "
          f"(dt {src.dt:g} s)")
    if not args.verify:
        return 0
    if x is None:
        return _fail("--verify runs module models; for a network file, compare "
                     "Graph.run with hardware.nir.from_nir in Python")
    back = from_nir(args.out, dt=src.dt).double()
    model = src.model.double()
    want = run_stack(model, x) if src.kind == "model" else model(x)
    got = back(x)
    same = int((want == got).sum())
    print(f"verify: {same:,} of {want.numel():,} output values agree "
          f"({same / want.numel():.2%}); spikes {int(want.sum()):,} in the source, "
          f"{int(got.sum()):,} in the export")
    return 0 if same == want.numel() else 1


def _to_lava(src: Any, args: argparse.Namespace) -> int:
    """Write the Loihi 2 network file (:mod:`hardware.loihi_file`); ``--verify`` runs the
    model in Lava ``fixed_pt`` and compares its output spikes with the file's twin."""
    import torch

    from hardware.loihi import quantize
    from hardware.loihi_file import load_twin, save_twin

    from ._source import sample_input, sample_shape

    if src.kind == "network":
        return _graph_to_lava(src, args)
    if src.kind != "model":
        return _fail("--to lava takes a saved model folder or a network file; a NIR file "
                     "holds no Loihi 2 mapping (load it with hardware.nir.from_nir)")
    model, shape = src.model.double(), sample_shape(src)
    kw = {"input_shape": shape, "allow_saturation": args.allow_saturation}
    twin = quantize(model, **kw)
    x = sample_input(src, args.steps, args.batch, args.seed, args.input).double() \
        if args.verify else None
    save_twin(twin, args.out)
    print(f"wrote {args.out}: Loihi 2 fixed-point network, {len(twin.layers)} layers, "
          f"input {list(twin.input_shape)}, output {list(twin.output_shape)}")
    for e in twin.errors:
        print(f"  {e.name}: weight error max {e.weight_max_err:.3g} V (rel. RMS "
              f"{e.weight_rel_rmse:.2%}), threshold rel. {e.threshold_rel_err:.2g}, "
              f"clipped {e.clipped}" + (f" (largest excess {e.clipped_max:.3g} V)"
                                        if e.clipped else ""))
    if x is None:
        return 0
    from hardware.lava import run as lava_run

    with torch.no_grad():
        want = load_twin(args.out)(x)
    got = lava_run(model, x, mode="fixed_pt", **kw)
    same = int((want == got.to(want.dtype)).sum())
    print(f"verify: Lava fixed_pt and the file's twin agree on {same:,} of {want.numel():,} "
          f"output values ({same / want.numel():.2%}); spikes {int(got.sum()):,} in Lava")
    return 0 if same == want.numel() else 1


def _graph_inputs(src: Any, twin: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Each input region's ``[T, 1, size]`` from the network file (its first ``--steps``
    steps, default the file's duration)."""
    from aura_snn.errors import ParameterError

    steps = args.steps or src.steps
    xs = {}
    for name in twin.inputs:
        x = src.inputs[name]
        if x.shape[0] < steps:
            raise ParameterError(f"--steps {steps}: input region {name!r} holds "
                                 f"{x.shape[0]} steps")
        xs[name] = x[:steps].double()
    return xs


def _graph_to_lava(src: Any, args: argparse.Namespace) -> int:
    import torch

    from hardware.loihi import quantize
    from hardware.loihi_file import load_twin, save_twin
    from hardware.loihi_graph import ProjectionError, RegionError

    if args.input is not None:
        return _fail("--input is for a saved model; a network file's input regions read "
                     "their own files")
    graph = src.model
    twin = quantize(graph, allow_saturation=args.allow_saturation)
    xs = _graph_inputs(src, twin, args) if args.verify else None
    save_twin(twin, args.out)
    print(f"wrote {args.out}: Loihi 2 fixed-point network, {len(twin.regions)} regions, "
          f"{len(twin.projections)} projections, inputs {sorted(twin.inputs)}")
    for e in twin.errors:
        if isinstance(e, RegionError):
            print(f"  region {e.name}: threshold rel. {e.threshold_rel_err:.2g}, decay "
                  f"error u {e.decay_u_err:.2g} v {e.decay_v_err:.2g}"
                  + (f", initial values max {e.init_max_err:.3g} V"
                     if e.init_max_err else ""))
        elif isinstance(e, ProjectionError):
            print(f"  projection {e.name}: weight error max {e.weight_max_err:.3g} V (rel. "
                  f"RMS {e.weight_rel_rmse:.2%}), clipped {e.clipped}"
                  + (f" (largest excess {e.clipped_max:.3g} V)" if e.clipped else ""))
    if xs is None:
        return 0
    from hardware.lava import run as lava_run

    with torch.no_grad():
        want = load_twin(args.out).run(xs)
    got = lava_run(graph, xs, mode="fixed_pt", record=list(twin.regions),
                   allow_saturation=args.allow_saturation)
    same = sum(int((want[n] == got[n].bool()).sum()) for n in want)
    total = sum(want[n].numel() for n in want)
    per = ", ".join(f"{n} {int(got[n].sum())}/{int(want[n].sum())}" for n in want)
    print(f"verify: Lava fixed_pt and the file's twin agree on {same:,} of {total:,} spike "
          f"values ({same / total:.2%}); spikes Lava/twin: {per}")
    rows = twin.spike_error(graph, xs)
    print("twin vs float graph (same initial state): " + ", ".join(
        f"{r['name']} mismatch {r['mismatch']:.2%} (rates {r['rate_float']:.3f} float, "
        f"{r['rate_twin']:.3f} twin)" for r in rows))
    return 0 if same == total else 1
