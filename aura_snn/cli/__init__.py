"""The ``aura-snn`` command.

Subcommands, one module each in this package:

=========== ====================== ===================================================
command     module                 what it does
=========== ====================== ===================================================
``demo``    :mod:`.demo`           train the spiking digits classifier on the embedded
                                   data set (:mod:`aura_snn.tasks.digits`)
``simulate`` :mod:`.simulate`      run a region network described by a TOML/YAML file
                                   (:mod:`aura_snn.graph.config`)
``serve``   :mod:`.serve`          run a network continuously as services fed over
                                   HTTP, state saved and resumed (:mod:`aura_snn.serve`)
=========== ====================== ===================================================

Each subcommand module declares its options (``add_arguments``) and runs (``run``);
it imports only :mod:`argparse` at module level and the library code inside ``run``,
so ``aura-snn --help`` stays instant.

Packages above the core add subcommands without the core importing them (the import
rule of ``DESIGN.md``): an entry point in the group ``aura_snn.commands`` names a
module with ``HELP`` (one line), ``add_arguments`` and ``run``; ``hardware`` adds
``export`` and ``energy`` this way (``setup.cfg``).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from importlib.metadata import entry_points
from types import ModuleType

from .. import __version__

PLUGIN_GROUP = "aura_snn.commands"


def plugins() -> dict[str, ModuleType | ImportError]:
    """Subcommand modules registered by other packages, by command name; a module that
    fails to import is kept as its error, so the other commands still run and that one
    reports why it cannot."""
    found: dict[str, ModuleType | ImportError] = {}
    for ep in entry_points(group=PLUGIN_GROUP):
        try:
            found[ep.name] = importlib.import_module(ep.value)
        except ImportError as exc:
            found[ep.name] = exc
    return found


def _broken(name: str, exc: ImportError) -> int:
    import sys

    print(f"aura-snn {name}: unavailable, its module failed to import: {exc}",
          file=sys.stderr)
    return 2


def build_parser() -> argparse.ArgumentParser:
    """The ``aura-snn`` argument parser with every subcommand's options."""
    from . import demo, serve, simulate

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
    serve.add_arguments(sub.add_parser("serve", help=serve.HELP))
    for name, module in sorted(plugins().items()):
        if isinstance(module, ImportError):
            sp = sub.add_parser(name, help=f"(unavailable: {module})")
            sp.add_argument("rest", nargs=argparse.REMAINDER)
        else:
            module.add_arguments(sub.add_parser(name, help=module.HELP))
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
    elif args.command == "simulate":
        from .simulate import run
    elif args.command == "serve":
        from .serve import run
    else:
        module = plugins()[args.command]
        if isinstance(module, ImportError):
            return _broken(args.command, module)
        run = module.run
    return run(args)


__all__ = ["build_parser", "main"]
