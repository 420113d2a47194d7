r"""``aura-snn energy MODEL --target T [--json PATH] [--plot PATH]``.

``MODEL`` is a saved model folder (``aura-snn demo`` writes one in ``out/demo/model``),
a NIR file or a network file (``aura-snn simulate``'s TOML/YAML). A model runs on sample
input (:func:`hardware.cli._source.sample_input`: the whole digits test set, presented
as the demo presents it, for the demo classifier; ``--samples`` takes the first N) with
its operations counted once (:func:`aura_snn.metrics.ops.count_ops`); a network runs for
its duration (or ``--steps``) on the inputs it names, counted by
:func:`hardware.energy_graph.measure_graph`. Both are priced for ``--target``
(:func:`hardware.energy.energy`): ``cmos45``, ``loihi``, ``gpu`` or a TOML file of a
:class:`hardware.energy.Target`. Per layer and per inference (pJ):

.. math::
    E_\text{compute} = E_\text{MAC} N_\text{MAC} + E_\text{AC} N_\text{AC}
    + \text{neuron and spike terms where the target publishes them}

plus the memory convention and the dense-ANN equivalent of :mod:`hardware.energy`.
``--json`` writes the report (strict JSON: a sparsity that does not apply is ``null``),
``--plot`` the figure (:func:`aura_snn.plot.energy.plot_energy`), both atomically: a
failure leaves neither. Loihi has no multiplier: real-valued synaptic input is refused
unless ``--allow-mac`` prices it at Loihi's synaptic-op figure. Mistakes get one line
naming what is wrong and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

HELP = "estimate energy and sparsity of a model per hardware target (cmos45, loihi, gpu)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Register the ``energy`` options."""
    p.add_argument("model", metavar="MODEL",
                   help="saved model folder, NIR file or network file (.toml/.yaml)")
    p.add_argument("--target", required=True, metavar="NAME|FILE.toml",
                   help="cmos45, loihi, gpu, or a TOML file with the fields of "
                        "hardware.energy.Target (loihi2: no published figures)")
    p.add_argument("--json", default=None, metavar="PATH", help="write the report here")
    p.add_argument("--plot", default=None, metavar="PATH",
                   help="write the energy and sparsity figure here (.png, .pdf, .svg)")
    p.add_argument("--samples", type=int, default=None, metavar="N",
                   help="samples to run (default: the whole digits test set for the demo "
                        "classifier, 16 for other models, a network's own batch)")
    p.add_argument("--allow-mac", action="store_true",
                   help="price real-valued synaptic input on a target without a MAC "
                        "(loihi) at its synaptic-op figure instead of refusing it")
    p.add_argument("--steps", type=int, default=None,
                   help="steps of sample input (a network: instead of its duration)")
    p.add_argument("--dt", type=float, default=None, help="time step (s) where MODEL has none")
    p.add_argument("--input", default=None, metavar="FILE.npy", help="sample input [T, B, ...]")
    p.add_argument("--seed", type=int, default=0, help="seed of random sample input")


def _fail(msg: str) -> int:
    print(f"aura-snn energy: {msg}", file=sys.stderr)
    return 2


class _Refused(Exception):
    """A mistake already phrased for the user."""


def resolve_target(spec: str) -> Any:
    """The :class:`~hardware.energy.Target` named ``spec`` or read from the TOML file
    ``spec``; :class:`_Refused` with a one-line reason otherwise."""
    from pathlib import Path

    from hardware.energy import get_target, load_target

    if spec.lower().endswith(".toml") or Path(spec).is_file():
        try:
            return load_target(spec)
        except (OSError, ValueError, TypeError) as exc:  # TOMLDecodeError is a ValueError
            raise _Refused(f"--target {spec}: {str(exc).splitlines()[0]}") from None
    try:
        return get_target(spec)
    except ValueError as exc:
        reason = str(exc).removeprefix("target: ")
        raise _Refused(f"--target: {reason} (or give a TOML target file)") from None


def check_mac(counts: Any, target: Any, allow_mac: bool) -> None:
    """Refuse real-valued synaptic input on a target without a MAC unless allowed."""
    if target.supports_mac or allow_mac:
        return
    real = {n: c.macs for n, c in counts.layers.items() if c.macs > 0}
    if real:
        where = ", ".join(f"{n} ({v:,.0f} ops)" for n, v in real.items())
        raise _Refused(f"--target {target.name}: real-valued synaptic input in {where}; "
                       f"{target.name} has no multiplier (hardware.lava computes such a "
                       f"layer on the host): feed spikes with --input, or pass --allow-mac "
                       f"to price them at its synaptic-op figure")


def write_outputs(report: dict[str, Any], json_path: str | None, plot_path: str | None,
                  plot: Any) -> None:
    """Write the JSON and the figure (``plot(report, path)``) atomically: the JSON's
    temporary is made first and renamed last, so a failure in either leaves neither."""
    import contextlib
    import json

    from aura_snn._io import atomic_path
    from hardware.energy_graph import strict_json

    def cannot(flag: str, path: str, exc: OSError) -> _Refused:
        return _Refused(f"{flag} {path}: cannot write ({exc.strerror or exc})")

    with contextlib.ExitStack() as stack:
        if json_path is not None:
            text = json.dumps(strict_json(report), indent=2, allow_nan=False) + "\n"
            try:
                tmp = stack.enter_context(atomic_path(json_path))
                tmp.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise cannot("--json", json_path, exc) from None
        if plot_path is not None:
            try:
                plot(report, plot_path)
            except OSError as exc:
                raise cannot("--plot", plot_path, exc) from None
            except ValueError as exc:  # matplotlib: an unknown format
                raise _Refused(f"--plot {plot_path}: {str(exc).splitlines()[0]}") from None


def run(args: argparse.Namespace) -> int:
    """Count, price, print, write; returns the exit status."""
    from aura_snn.errors import AuraError

    try:
        target = resolve_target(args.target)
        if args.samples is not None and args.samples < 1:
            raise _Refused(f"--samples: must be >= 1, got {args.samples}")
        from ._source import load_source

        src = load_source(args.model, args.dt)
        report = (_network_report if src.kind == "network" else _module_report)(
            src, target, args)
        from aura_snn.plot.energy import plot_energy
        from hardware.energy import format_report

        print(format_report(report))
        print(f"input: {report['input']}; activation sparsity {report['activation_sparsity']:.3f}"
              f" (zero fraction of all neuron outputs)")
        write_outputs(report, args.json, args.plot, plot_energy)
        for path in (args.json, args.plot):
            if path is not None:
                print(f"wrote {path}")
        return 0
    except _Refused as exc:
        return _fail(str(exc))
    except (AuraError, OSError, ValueError, TypeError, ImportError) as exc:
        return _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except KeyboardInterrupt:
        print("aura-snn energy: interrupted", file=sys.stderr)
        return 130


def _module_report(src: Any, target: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Count a module on its sample input once and price it (:func:`hardware.energy.energy`)."""
    import torch

    from aura_snn.metrics.ops import count_ops
    from hardware.energy import energy

    from ._source import sample_input

    digits = src.metadata.get("task") == "scikit-learn digits"
    batch = args.samples or (sys.maxsize if digits else 16)  # the test set is sliced
    x = sample_input(src, args.steps, batch, args.seed, args.input).double()
    with torch.no_grad():
        counts = count_ops(src.model.double().eval(), x)
    check_mac(counts, target, args.allow_mac)
    report = energy(counts, target, steps=int(x.shape[0]), strict=not args.allow_mac)
    report.update(model=str(args.model), kind=src.kind,
                  activation_sparsity=counts.activation_sparsity,
                  input=_describe_input(args, digits, x))
    return report


def _network_report(src: Any, target: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Run a network file's graph for its duration (or ``--steps``) on the inputs it
    names and price it (:func:`hardware.energy_graph.measure_graph`)."""
    from hardware.energy_graph import mac_projections, measure_graph

    if args.input is not None:
        raise _Refused("--input: a network file names its own inputs (input regions' "
                       "'file'); edit the file instead")
    graph = src.model
    if not target.supports_mac and not args.allow_mac and mac_projections(graph):
        macs = mac_projections(graph)
        pre = sorted({graph.projections[n].pre for n in macs})
        raise _Refused(f"--target {target.name}: projections {', '.join(macs)} carry "
                       f"real-valued outputs of {', '.join(pre)}; {target.name} has no "
                       f"multiplier: make them spiking, or pass --allow-mac to price them "
                       f"at its synaptic-op figure")
    steps = args.steps or src.steps
    report = measure_graph(graph, steps, target, inputs=src.inputs or None,
                           strict=not args.allow_mac, batch_size=args.samples)
    report.update(model=str(args.model),
                  input=f"the file's inputs and sources, {steps} steps of {graph.dt:g} s")
    return report


def _describe_input(args: argparse.Namespace, digits: bool, x: Any) -> str:
    if args.input is not None:
        return f"from {args.input}"
    if digits:
        return "digits test images, constant pixel currents in [0, 1]"
    return f"uniform random currents in [0, 1), seed {args.seed}"
