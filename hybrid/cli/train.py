"""``aura-snn train --config FILE [--out DIR] [--no-resume]``: train the hippocampal
transformer described by a run file (:mod:`hybrid.cli._run_config`).

Builds the tokenizer and token arrays, seeds torch with ``train.seed`` and builds the
model, then runs :func:`hybrid.train.train` with a progress bar (tokens/s, loss,
perplexity; validation lines as they come) into ``DIR`` (``--out``, else the file's
``out_dir``, else ``out/hybrid``): ``checkpoints/step-*`` (each with the tokenizer and
the run file's settings), ``train_log.csv``, ``tensorboard/`` and ``data/``. An existing
checkpoint there is resumed (the corpus must give the same tokens); ``--no-resume``
refuses a folder that holds checkpoints. Under ``torchrun`` every process runs this
command; rank 0 prepares the data and writes.

Exit status 0; 2 with one line ``aura-snn train: ...`` for a bad run file, value or
corpus, a damaged checkpoint or one from another config; 130 on Ctrl+C (the last
checkpoint stays).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

HELP = "train the hippocampal transformer from a run file (TOML/JSON/YAML)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Register the ``train`` options."""
    p.description = HELP
    p.add_argument("--config", required=True, metavar="FILE",
                   help="run file with [model], [train] and [data] tables")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default: the file's out_dir, else out/hybrid)")
    p.add_argument("--no-resume", action="store_true",
                   help="refuse an output folder that already holds checkpoints")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _fail(msg: str) -> int:
    print(f"aura-snn train: {msg}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Train; returns the exit status."""
    from aura_snn.errors import AuraError

    ctx = None
    try:
        from hybrid.ddp import init_from_env, shutdown

        from ._run_config import load_run_config

        cfg = load_run_config(args.config)
        ctx = init_from_env(cfg.train.device)
        return _train(cfg, args, ctx)
    except (AuraError, OSError, ValueError, TypeError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return _fail(msg)
    except KeyboardInterrupt:
        print("aura-snn train: interrupted (the last checkpoint is kept)", file=sys.stderr)
        return 130
    finally:
        if ctx is not None:
            shutdown(ctx)


def _train(cfg: Any, args: argparse.Namespace, ctx: Any) -> int:
    """Prepare data and model (rank 0 writes ``data/``), check a resumed corpus, train."""
    import dataclasses
    import json
    from pathlib import Path

    import torch

    import hybrid.checkpoint as ck
    from aura_snn.errors import StateMismatchError
    from hybrid.ddp import barrier
    from hybrid.model import HippocampalTransformer
    from hybrid.tokenizer import load_tokenizer
    from hybrid.train import train

    from ._run_config import build_model_config, open_data, prepare_data

    out = Path(args.out or cfg.out_dir or "out/hybrid")
    newest = ck.latest(out / "checkpoints")
    saved_run = None
    if newest is not None and args.no_resume:
        raise FileExistsError(f"{out / 'checkpoints'} already holds checkpoints (newest "
                              f"{newest.name}); resume from it or choose another --out")
    if newest is not None:
        ck.read_manifest(newest)  # damaged: refuse before anything is rebuilt
        saved_run = json.loads((newest / "run.json").read_text(encoding="utf-8")) \
            if (newest / "run.json").is_file() else None
    if ctx.is_main:
        tok = load_tokenizer(newest / "tokenizer.json") if saved_run else None
        prepare_data(cfg, out, tok)
    barrier(ctx)
    data = open_data(out)
    tokenizer = load_tokenizer(out / "data" / "tokenizer.json")
    run_info = {"data": dataclasses.asdict(cfg.data), "tokens": data["meta"]["counts"],
                "sha256": data["meta"]["sha256"]}
    if saved_run is not None:
        for key in sorted(set(saved_run["data"]) | set(run_info["data"])):
            if saved_run["data"].get(key) != run_info["data"].get(key):
                raise StateMismatchError(
                    f"checkpoint is from a different config: data.{key} is "
                    f"{saved_run['data'].get(key)!r} there and {run_info['data'].get(key)!r} "
                    f"here")
        if saved_run["sha256"] != run_info["sha256"]:
            raise StateMismatchError("data.corpus: the corpus gives other tokens than the "
                                     "checkpoint was trained on (its file changed)")
    model_cfg = build_model_config(cfg, tokenizer.vocab_size)
    torch.manual_seed(cfg.train.seed)
    model = HippocampalTransformer(model_cfg)
    extra = {"tokenizer.json": tokenizer.to_json().encode("utf-8"),
             "run.json": (json.dumps(run_info, indent=1) + "\n").encode("utf-8")}
    bar = None
    if ctx.is_main and not args.quiet:
        from tqdm import tqdm

        start = ck.latest(out / "checkpoints")
        bar = tqdm(total=cfg.train.max_steps, initial=int(start.name[5:]) if start else 0,
                   unit="step", file=sys.stderr, dynamic_ncols=True)
        n = model.num_parameters()
        bar.write(f"aura-snn train: {n:,} parameters, layers {list(model_cfg.ffn)}, "
                  f"{data['meta']['counts']['train']:,} train tokens -> {out}")

    def log(row: dict) -> None:
        if bar is None:
            return
        bar.update(1)
        bar.set_postfix_str(f"loss {row['loss']:.3f} ppl {row['ppl']:.2f} "
                            f"{row['tokens_per_s']:,.0f} tok/s")
        if row.get("val_loss") is not None:
            rates = " ".join(f"{k} {v:.3f}" for k, v in row.items() if k.startswith("rate."))
            bar.write(f"step {row['step']}: val loss {row['val_loss']:.4f} ppl "
                      f"{row['val_ppl']:.2f} {rates}".rstrip())

    try:
        res = train(model, {"train": data["train"], "val": data["val"]}, cfg.train,
                    out_dir=out, resume=not args.no_resume, log=log, ctx=ctx,
                    extra_files=extra)
    finally:
        if bar is not None:
            bar.close()
    if ctx.is_main:
        last = res.rows[-1] if res.rows else None
        summary = (f"loss {last['loss']:.4f}, ppl {last['ppl']:.2f}" if last else
                   "nothing to do: the run is complete")
        print(f"aura-snn train: step {res.step}/{cfg.train.max_steps}, {summary}; "
              f"checkpoint {res.checkpoint}")
    return 0
