"""``aura-snn generate --checkpoint DIR --prompt TEXT``: continue a prompt with a trained
hippocampal transformer.

``DIR`` is a checkpoint folder (``step-*``), a ``checkpoints`` folder or a training
output folder (its newest checkpoint). The folder is verified whole first
(:func:`hybrid.checkpoint.load_checkpoint`), the model rebuilt from its saved
:class:`~hybrid.config.HybridConfig` and weights, the tokenizer read from its
``tokenizer.json``; :func:`hybrid.generate.generate` continues the prompt with the
KV cache (``--temperature 0``: greedy; ``--top-k``, ``--top-p``, ``--typical-p``,
``--repetition-penalty``, ``--stop``, ``--seed``). The continuation is printed to
stdout. Exit status 2 with one line for a missing or damaged checkpoint, a checkpoint of
another model, bad sampling options or a prompt longer than the context.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

HELP = "continue a prompt with a trained hippocampal transformer checkpoint"
MODEL_CLASS = "hybrid.model.HippocampalTransformer"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Register the ``generate`` options."""
    p.description = HELP
    p.add_argument("--checkpoint", required=True, metavar="DIR",
                   help="checkpoint folder, or a training output folder (newest checkpoint)")
    p.add_argument("--prompt", required=True, help="text to continue")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=1.0, help="0: greedy")
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None, help="nucleus mass in (0, 1]")
    p.add_argument("--typical-p", type=float, default=None, help="typical mass in (0, 1]")
    p.add_argument("--repetition-penalty", type=float, default=1.0)
    p.add_argument("--stop", action="append", default=[], metavar="TEXT",
                   help="stop before this text (repeatable)")
    p.add_argument("--seed", type=int, default=None, help="sampling seed (same seed, same text)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")


def resolve(path: str | Path) -> Path:
    """The checkpoint folder ``path`` names (module docstring)."""
    import hybrid.checkpoint as ck

    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(f"no checkpoint folder at {p}")
    if (p / ck.MANIFEST).exists() or p.name.startswith("step-"):
        return p  # a checkpoint folder (verified when loaded)
    newest = ck.latest(p) or ck.latest(p / "checkpoints")
    if newest is None:
        raise FileNotFoundError(f"no checkpoint in {p}")
    return newest


def load_model(path: str | Path, device: str = "cpu") -> tuple[Any, Any]:
    """``(model, tokenizer)`` of a checkpoint folder (verified, in eval mode)."""
    import hybrid.checkpoint as ck
    from aura_snn.errors import StateMismatchError
    from hybrid.config import HybridConfig
    from hybrid.ddp import pick_device
    from hybrid.model import HippocampalTransformer
    from hybrid.tokenizer import load_tokenizer

    folder = resolve(path)
    saved = ck.load_checkpoint(folder)
    if saved.state.get("model_class") != MODEL_CLASS:
        raise StateMismatchError(f"{folder}: a checkpoint of {saved.state.get('model_class')!r},"
                                 f" not of the hippocampal transformer")
    if "tokenizer.json" not in ck.read_manifest(folder)["files"]:
        raise StateMismatchError(f"{folder}: the checkpoint holds no tokenizer.json")
    model = HippocampalTransformer(HybridConfig.from_dict(saved.state["model_config"]))
    live = model.state_dict()
    if set(live) != set(saved.model):
        odd = sorted(set(live) ^ set(saved.model))[0]
        raise StateMismatchError(f"{folder}: tensor {odd!r} does not match the saved config")
    dtype = saved.model[next(iter(live))].dtype
    model = model.to(dtype=dtype)
    for name, t in live.items():
        if saved.model[name].shape != t.shape:
            raise StateMismatchError(f"{folder}: tensor {name!r} has shape "
                                     f"{tuple(saved.model[name].shape)}, the config gives "
                                     f"{tuple(t.shape)}")
    model.load_state_dict(saved.model, strict=True)
    model.to(pick_device(device)).eval()
    return model, load_tokenizer(folder / "tokenizer.json")


def run(args: argparse.Namespace) -> int:
    """Generate and print; returns the exit status."""
    from aura_snn.errors import AuraError

    try:
        from hybrid.generate import generate

        model, tokenizer = load_model(args.checkpoint, args.device)
        out = generate(model, args.prompt, args.max_new_tokens, tokenizer=tokenizer,
                       temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                       typical_p=args.typical_p, repetition_penalty=args.repetition_penalty,
                       stop=tuple(args.stop), seed=args.seed)
    except (AuraError, OSError, ValueError, TypeError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"aura-snn generate: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    sys.stdout.write(out.text + "\n")
    return 0
