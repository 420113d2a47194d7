"""The ``aura-snn`` command.

Subcommands:
  demo       train the spiking digits classifier on the embedded data set
  simulate   run a region network described by a TOML/YAML file

Heavy modules are imported inside each subcommand so ``aura-snn --help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aura-snn",
        description="aura-snn: simulate spiking regions and train spiking networks.",
        epilog="Run 'aura-snn COMMAND --help' for the options of a command.")
    p.add_argument("--version", action="version", version=f"aura-snn {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="train the spiking digits classifier (embedded data)")
    from .tasks.digits_cli import add_arguments as add_demo

    add_demo(demo)

    sim = sub.add_parser("simulate", help="simulate spiking regions from a TOML/YAML file")
    from .graph.simulate_cli import add_arguments as add_sim

    add_sim(sim)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aura-snn`` console script; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "demo":
        from .tasks.digits_cli import run as run_demo

        return run_demo(args)
    from .graph.simulate_cli import run as run_sim

    return run_sim(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
