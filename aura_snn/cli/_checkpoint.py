"""``aura-snn simulate --workers N --checkpoint-every K --checkpoint-dir DIR --resume DIR``.

The options of a partitioned run's snapshots (:mod:`aura_snn.graph.distributed`:
``Graph.run(checkpoint_every=, checkpoint_dir=, resume=)``), checked before anything
runs, each error one line naming its option:

* ``--checkpoint-every K``: a snapshot every ``K`` steps, or every ``x`` seconds of
  wall time written ``"x s"``, at the next window boundary, into ``--checkpoint-dir``
  (a snapshot is also written at the end of the run whenever the folder is given);
* ``--resume DIR``: start from the last complete snapshot in ``DIR`` (written by a
  ``--checkpoint-dir DIR`` run of the same network file) and run to the end of the
  file's ``duration`` (or ``--duration``): a run cut in two equals the uninterrupted
  run, and its output files hold the whole run (the snapshot carries what the monitors
  had seen). The resumed run keeps writing snapshots to ``DIR`` unless
  ``--checkpoint-dir`` names another folder.

Snapshots live outside ``--out``: they are what is left when a run is stopped (Ctrl+C
discards only the snapshot in progress), while ``--out`` is written only by a run that
succeeded.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the snapshot options on ``parser`` (module docstring)."""
    parser.add_argument("--checkpoint-every", metavar="K",
                        help="with --workers: a snapshot every K steps, or every 'x s' "
                             "seconds, into --checkpoint-dir")
    parser.add_argument("--checkpoint-dir", metavar="DIR",
                        help="with --workers: the snapshots' folder (also written at the "
                             "end of the run; default with --resume: the resumed folder)")
    parser.add_argument("--resume", metavar="DIR",
                        help="with --workers: continue from the last complete snapshot in "
                             "DIR to the end of the run's duration")


def _error(msg: str) -> Exception:
    from ..errors import ConfigError

    return ConfigError(msg)


def _interval(value: str) -> int | str:
    """``--checkpoint-every``'s value for ``Graph.run``: an int of steps or ``"x s"``."""
    from ..errors import ParameterError
    from ..graph.distributed.runner import checkpoint_interval

    text = value.strip()
    every: int | str = int(text) if text.lstrip("-").isdigit() else text
    try:
        checkpoint_interval(every)
    except ParameterError:
        raise _error(f"--checkpoint-every: must be a number of steps >= 1 (e.g. 500) or of "
                     f"seconds written 'x s' with x > 0 (e.g. '30 s'), got {value!r}") from None
    return every


def options(args: argparse.Namespace) -> dict[str, Any]:
    """``Graph.run`` keywords of the snapshot options (none without them)."""
    given = {"--checkpoint-every": args.checkpoint_every,
             "--checkpoint-dir": args.checkpoint_dir, "--resume": args.resume}
    if args.workers is None:
        for flag, value in given.items():
            if value is not None:
                raise _error(f"{flag}: needs --workers N (snapshots are those of a "
                             f"partitioned run)")
        return {}
    out: dict[str, Any] = {}
    folder = args.checkpoint_dir if args.checkpoint_dir is not None else args.resume
    if args.checkpoint_every is not None:
        if folder is None:
            raise _error("--checkpoint-every: needs --checkpoint-dir DIR (the snapshots' "
                         "folder)")
        out["checkpoint_every"] = _interval(args.checkpoint_every)
    for flag, value in (("--checkpoint-dir", args.checkpoint_dir), ("--resume", args.resume)):
        if value is not None and Path(value).exists() and not Path(value).is_dir():
            raise _error(f"{flag}: {value!r} exists and is not a folder")
    if args.resume is not None:
        if not Path(args.resume).is_dir():
            raise _error(f"--resume: no checkpoint folder {args.resume!r}")
        out["resume"] = args.resume
    if folder is not None:
        out["checkpoint_dir"] = folder
    return out


def resume_step(graph: Any, folder: str, steps: int) -> int:
    """The step of the last complete snapshot in ``folder`` for ``graph``, which must
    come before the run's last step ``steps`` (errors name ``--resume``)."""
    from ..errors import AuraError
    from ..graph.distributed import checkpoint

    try:
        snap = checkpoint.find(graph, folder)
    except (AuraError, OSError) as exc:
        raise _error(f"--resume: {str(exc).removeprefix('resume: ')}") from None
    if snap.step >= steps:
        raise _error(f"--resume: the last snapshot in {folder!r} is at step {snap.step}, "
                     f"the run ends at step {steps}: nothing is left to run (a longer "
                     f"--duration continues it)")
    return snap.step


def tail(built: Any, start: int) -> tuple[dict, dict, dict]:
    """The run's fed inputs, modulators and modulation from step ``start`` on (a
    resumed run is fed what the uninterrupted one gets from there)."""
    from ..graph.regions import InputRegion

    g = built.graph
    inputs = {n: (x[start:] if isinstance(g.regions[n], InputRegion) else x)
              for n, x in built.inputs.items()}
    modulators = {k: v[start:] for k, v in (built.modulators or {}).items()}
    modulation = {r: {k: v[start:] for k, v in m.items()}
                  for r, m in (built.modulation or {}).items()}
    return inputs, modulators, modulation


__all__ = ["add_arguments", "options", "resume_step", "tail"]
