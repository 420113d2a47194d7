"""``aura-snn serve FILE --state DIR``: run a network continuously as services.

Input regions (``model = "input"`` without ``file``) read what clients push
(:class:`aura_snn.serve.Client`, or ``POST /push/<region>``), every other region
publishes its output (``GET /output/<region>``), and the whole brain state is saved to
``--state`` every ``--snapshot-every`` seconds and on SIGINT/SIGTERM; a restart with the
same ``--state`` resumes where it stopped (:mod:`aura_snn.serve`). ``--wipe`` deletes the
saved state after a confirmation (``--yes`` skips it) and exits.

Exit status: 0 after a clean stop (or a wipe), 1 when a wipe was declined, 2 on a user
error (one line on stderr: the file, the folder, the parameter).
"""

from __future__ import annotations

import argparse

HELP = "run a network continuously as services fed over HTTP (issue 14)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Register the ``serve`` options."""
    p.add_argument("file", help="network file (.toml/.yaml); input regions without 'file' "
                                "are streams clients push to")
    p.add_argument("--state", required=True, metavar="DIR",
                   help="folder of the saved brain state (resumed from when present)")
    p.add_argument("--port", type=int, default=8765,
                   help="HTTP port on 127.0.0.1 (default 8765; 0: any free port)")
    p.add_argument("--snapshot-every", type=float, default=None, metavar="SECONDS",
                   help="save a snapshot every SECONDS (default: only on shutdown)")
    p.add_argument("--max-buffer", type=int, default=20000, metavar="STEPS",
                   help="steps of output kept per region for readers (default 20000)")
    p.add_argument("--address", default=None,
                   help="a Ray cluster (ray://host:port or host:port) instead of a local one")
    p.add_argument("--wipe", action="store_true",
                   help="delete the saved state in --state (asks first) and exit")
    p.add_argument("--yes", action="store_true", help="with --wipe: do not ask")


def _wipe(args: argparse.Namespace) -> int:
    import sys

    from ..serve.state_dir import read_manifest, wipe

    man = read_manifest(args.state)
    what = (f"the snapshot at step {man['step']} written by {man['network']}"
            if man else "no complete snapshot")
    from pathlib import Path

    if not Path(args.state).exists():
        print(f"aura-snn serve: nothing to wipe: {args.state} does not exist")
        return 0
    if not args.yes:
        try:
            answer = input(f"Delete {args.state} ({what})? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("aura-snn serve: not wiped", file=sys.stderr)
            return 1
    wipe(args.state)
    print(f"aura-snn serve: wiped {args.state} ({what})")
    return 0


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM, then save the final snapshot (module docstring)."""
    import signal
    import sys

    from ..errors import AuraError

    try:
        if args.wipe:
            return _wipe(args)
        from ..serve.app import Service

        service = Service(args.file, args.state, port=args.port,
                          snapshot_every=args.snapshot_every, max_buffer=args.max_buffer,
                          address=args.address)
        old = {s: signal.signal(s, service.request_stop)
               for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            service.start()
            for s in old:   # ray.init installs its own SIGTERM handler: ours wins again
                signal.signal(s, service.request_stop)
            info = service.info
            print(f"aura-snn serve: {args.file} at http://{service.address} (state "
                  f"{args.state}, step {info['step']}; inputs {info['inputs']}, outputs "
                  f"{info['outputs']})", flush=True)
            service.wait()
        finally:
            final = service.stop()
            for s, h in old.items():
                signal.signal(s, h)
        print(f"aura-snn serve: stopped at step {final['step'] if final else '?'}; state "
              f"saved in {args.state}", flush=True)
        return 0
    except (AuraError, OSError) as exc:
        print(f"aura-snn serve: error: {exc}", file=sys.stderr)
        return 2
