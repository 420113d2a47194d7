"""``aura-snn demo``: train the spiking digits classifier and write a report folder.

The model, data and training loop are library code in :mod:`aura_snn.tasks.digits`;
this module parses the options, shows progress, prints the results table and writes
``summary.json``, ``raster.png`` and the trained classifier (``model/``, see
:mod:`aura_snn.neurons.saved`). Only :mod:`argparse` is imported at module level;
the work happens in :func:`run`.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Register the ``demo`` options."""
    p.add_argument("--out", default="out/demo", metavar="DIR",
                   help="output folder for summary.json, raster.png and model/ (default: out/demo)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default 20)")
    p.add_argument("--hidden", type=int, default=None, help="hidden LIF neurons (default 256)")
    p.add_argument("--steps", type=int, default=None, help="time steps per sample (default 16)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--quick", action="store_true", help="3 epochs, for a smoke test")


def run(args: argparse.Namespace) -> int:
    """Train, print the results table, write ``summary.json`` and ``raster.png``."""
    from dataclasses import replace
    from pathlib import Path

    from .._io import atomic_write_json
    from ..errors import AuraError
    from ..tasks.digits import DigitsConfig, train

    try:
        cfg = DigitsConfig(seed=args.seed)
        overrides = {k: getattr(args, k) for k in ("epochs", "hidden", "steps")
                     if getattr(args, k) is not None}
        if args.quick:
            overrides.setdefault("epochs", 3)
        cfg = replace(cfg, **overrides)
    except AuraError as exc:
        print(f"aura-snn demo: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    print(f"aura-snn demo: spiking MLP 64-{cfg.hidden}-10 on scikit-learn digits, "
          f"T={cfg.steps} steps of {cfg.dt * 1e3:g} ms, {cfg.epochs} epochs -> {out}/")
    result = _train_with_progress(train, cfg)
    _print_table(result)
    from ..plot import save_rasters

    out.mkdir(parents=True, exist_ok=True)
    save_rasters(out / "raster.png", result.rasters, cfg.dt,
                 title=f"one test image per digit, {cfg.steps} ms each "
                       f"(test accuracy {result.test_accuracy:.1%})",
                 segments=[str(d) for d in range(10)])
    atomic_write_json(out / "summary.json", result.to_json())
    from ..neurons.saved import save_model

    save_model(result.model, out / "model",
               metadata={"task": "scikit-learn digits", "config": result.config,
                         "test_accuracy": result.test_accuracy,
                         "input": "[T, B, 64] pixels in [0, 1], constant for T steps"})
    print(f"wrote {out / 'summary.json'}, {out / 'raster.png'} and the trained model "
          f"{out / 'model'}/ (config.json, weights.safetensors)")
    return _after_demo(out, result)


def _after_demo(out, result) -> int:  # noqa: ANN001
    """Run the steps other packages add after training (entry points in the group
    ``aura_snn.demo``: a module with ``after_demo(out, result) -> dict``; ``hardware``
    exports the classifier, runs it in Lava and reports its energy). What each returns
    is added to ``summary.json`` under its name."""
    from importlib import import_module
    from importlib.metadata import entry_points

    from .._io import atomic_write_json

    summary = result.to_json()
    for ep in sorted(entry_points(group="aura_snn.demo"), key=lambda e: e.name):
        try:
            summary[ep.name] = import_module(ep.value).after_demo(out, result)
        except ImportError as exc:
            print(f"aura-snn demo: step {ep.name!r} skipped: {exc}", file=sys.stderr)
            summary[ep.name] = {"skipped": str(exc)}  # an extra is missing
    if len(summary) > len(result.to_json()):
        atomic_write_json(out / "summary.json", summary)
    return 0


def _train_with_progress(train, cfg):  # noqa: ANN001, ANN202
    from tqdm import tqdm

    with tqdm(total=cfg.epochs, desc="training", unit="epoch", dynamic_ncols=True) as bar:
        def progress(epoch: int, n: int, loss: float) -> None:
            bar.set_postfix(loss=f"{loss:.3f}")
            bar.update(1)

        return train(cfg, progress=progress)


def _print_table(result) -> None:  # noqa: ANN001
    print(f"\ntest accuracy  {result.test_accuracy:.2%}   train accuracy "
          f"{result.train_accuracy:.2%}   training time {result.train_seconds:.1f} s")
    header = (f"{'layer':<8}{'neurons':>8}{'rate (Hz)':>11}{'spikes/neuron/step':>20}"
              f"{'sparsity':>10}")
    print(header)
    print("-" * len(header))
    for name, s in result.layers.items():
        print(f"{name:<8}{s['neurons']:>8d}{s['rate_hz']:>11.1f}"
              f"{s['spikes_per_neuron_step']:>20.4f}{s['sparsity']:>10.3f}")
