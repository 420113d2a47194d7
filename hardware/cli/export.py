"""``aura-snn export MODEL --to nir|lava --out PATH [--verify]``.

``MODEL`` is a saved model folder (``aura-snn demo`` writes one in ``out/demo/model``),
a network file (``aura-snn simulate``'s TOML/YAML) or a NIR file. ``--to nir`` writes
the NIR graph (HDF5, atomically), ``--to lava`` the Loihi 2 fixed-point network
(:mod:`hardware.loihi_file`: the integers Lava's processes are built with); ``--verify``
runs the export in its target (NIR read back into our kernels; Lava's ``fixed_pt``
simulator against the file's twin) on sample input and prints the agreement. Mistakes get one line
naming what is wrong and exit status 2; nothing is left at ``--out`` on failure.
"""

from __future__ import annotations

import argparse
import sys

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
    p.add_argument("--steps", type=int, default=None, help="steps of sample input")
    p.add_argument("--batch", type=int, default=4, help="samples of sample input")
    p.add_argument("--input", default=None, metavar="FILE.npy", help="sample input [T, B, ...]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--approximate", default="", metavar="FEATURES",
                   help="comma-separated features NIR cannot express to approximate "
                        "(reset, next_step_reset, refractory, adaptation, poisson; see "
                        "hardware.nir.to_nir); default: refuse them")


def _fail(msg: str) -> int:
    print(f"aura-snn export: {msg}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Export, write atomically, optionally verify; returns the exit status."""
    from aura_snn.errors import AuraError

    try:
        from ._source import load_source, sample_input

        src = load_source(args.model, args.dt)
        import torch

        if args.to == "lava":
            return _to_lava(src, args)

        from hardware.nir import from_nir, to_nir, write

        approximate = {f.strip() for f in args.approximate.split(",") if f.strip()}
        graph = to_nir(src.model, dt=src.dt, approximate=approximate)
        write(args.out, graph)
        print(f"wrote {args.out}: {len(graph.nodes)} NIR nodes, {len(graph.edges)} edges "
              f"(dt {src.dt:g} s)")
        if not args.verify:
            return 0
        if src.kind == "network":
            return _fail("--verify runs module models; for a network file, compare "
                         "Graph.run with hardware.nir.from_nir in Python")
        x = sample_input(src, args.steps, args.batch, args.seed, args.input).double()
        back = from_nir(args.out, dt=src.dt).double()
        with torch.no_grad():
            want = src.model.double()(x)
            got = back(x)
        same = int((want == got).sum())
        print(f"verify: {same:,} of {want.numel():,} output values agree "
              f"({same / want.numel():.2%}); spikes {int(want.sum()):,} in the source, "
              f"{int(got.sum()):,} in the export")
        return 0 if same == want.numel() else 1
    except (AuraError, OSError, ValueError, TypeError, ImportError) as exc:
        return _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except KeyboardInterrupt:
        print("aura-snn export: interrupted", file=sys.stderr)
        return 130


def _to_lava(src, args: argparse.Namespace) -> int:  # noqa: ANN001
    """Write the Loihi 2 network file (:mod:`hardware.loihi_file`); ``--verify`` runs the
    model in Lava ``fixed_pt`` and compares its output spikes with the file's twin."""
    import torch

    from hardware.loihi import quantize
    from hardware.loihi_file import load_twin, save_twin

    from ._source import sample_input

    if src.kind != "model":
        return _fail("--to lava takes a saved model folder (a stack of Linear and LIF/"
                     "CubaLIF layers); export a network file with --to nir")
    model = src.model.double()
    twin = quantize(model)
    save_twin(twin, args.out)
    print(f"wrote {args.out}: Loihi 2 fixed-point network, {len(twin.layers)} layers")
    for e in twin.errors:
        print(f"  {e.name}: weight error max {e.weight_max_err:.3g} V (rel. RMS "
              f"{e.weight_rel_rmse:.2%}), threshold rel. {e.threshold_rel_err:.2g}, "
              f"clipped {e.clipped}")
    if not args.verify:
        return 0
    from hardware.lava import run as lava_run

    x = sample_input(src, args.steps, args.batch, args.seed, args.input).double()
    with torch.no_grad():
        want = load_twin(args.out)(x)
    got = lava_run(model, x, mode="fixed_pt")
    same = int((want == got.to(want.dtype)).sum())
    print(f"verify: Lava fixed_pt and the file's twin agree on {same:,} of {want.numel():,} "
          f"output values ({same / want.numel():.2%}); spikes {int(got.sum()):,} in Lava")
    return 0 if same == want.numel() else 1
