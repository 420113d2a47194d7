"""The ``aura-snn`` command.

Subcommands, one module each in this package:

=========== ====================== ===================================================
command     module                 what it does
=========== ====================== ===================================================
``demo``    :mod:`.demo`           train the spiking digits classifier on the embedded
                                   data set (:mod:`aura_snn.tasks.digits`)
``simulate`` :mod:`.simulate`      run a region network described by a TOML/YAML file
                                   (:mod:`aura_snn.graph.config`)
=========== ====================== ===================================================

Each subcommand module declares its options (``add_arguments``) and runs (``run``);
it imports only :mod:`argparse` at module level and the library code inside ``run``,
so ``aura-snn --help`` stays instant.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .. import __version__


def build_parser() -> argparse.ArgumentParser:
    """The ``aura-snn`` argument parser with every subcommand's options."""
    from . import demo, simulate

    p = argparse.ArgumentParser(
        prog="aura-snn",
        description="aura-snn: simulate spiking regions and train spiking networks.",
        epilog="Run 'aura-snn COMMAND --help' for the options of a command.")
    p.add_argument("--version", action="version", version=f"aura-snn {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    demo.add_arguments(sub.add_parser(
        "demo", help="train the spiking digits classifier (embedded data)"))
    simulate.add_arguments(sub.add_parser(
        "simulate", help="simulate spiking regions from a TOML/YAML file"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aura-snn`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "demo":
        from .demo import run
    else:
        from .simulate import run
    return run(args)


__all__ = ["build_parser", "main"]
