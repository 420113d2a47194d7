r"""One-shot memorisation: facts written once to the episodic memory, then used to answer.

:func:`memorize` runs each fact (a token sequence) through the model once, with the
memory layers writing (:mod:`hybrid.memory_layer`: the pair *previous state -> state*
of every salient token, write strength from the amygdala gate); nothing is trained.
:func:`one_shot_memorize_and_generate` then continues a prompt with
:func:`hybrid.generate.generate`, the memory layers retrieving the top-k memories of
each new token through the KV cache, so a prompt ending in a fact's first tokens is
answered from the fact's continuation. ``use_memory=False`` answers the same prompt
with retrieval switched off (the control: near chance on facts seen once).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from aura_snn.errors import ParameterError, ParameterTypeError

from .generate import Generation, _prompt_ids, generate
from .memory_layer import LayerMemory, memories
from .model import HippocampalTransformer
from .tokenizer import Tokenizer


def _layers(model: HippocampalTransformer) -> dict[int, LayerMemory]:
    if not isinstance(model, HippocampalTransformer):
        raise ParameterTypeError(f"model must be a HippocampalTransformer, got "
                                 f"{type(model).__name__}")
    layers = memories(model)
    if not layers:
        raise ParameterError("model: config.memory_layers is empty, so the model has no "
                             "episodic memory to write facts to")
    return layers


@contextmanager
def memory_mode(model: HippocampalTransformer, *, writing: bool, reading: bool = True,
                reward: float = 0.0) -> Iterator[None]:
    """Switch every memory layer's writing/reading (and reward, in [-1, 1]) for the block."""
    layers = _layers(model)
    old = {i: (m.writing, m.reading, m.reward) for i, m in layers.items()}
    for m in layers.values():
        m.writing, m.reading, m.reward = bool(writing), bool(reading), float(reward)
    try:
        yield
    finally:
        for i, m in layers.items():
            m.writing, m.reading, m.reward = old[i]


def clear_memory(model: HippocampalTransformer) -> None:
    """Empty every memory layer's store (on the model's device)."""
    p = next(model.parameters())
    for m in _layers(model).values():
        m.clear(p.device, p.dtype if p.dtype == torch.float64 else torch.float32)


@torch.no_grad()
def memorize(model: HippocampalTransformer, facts: Sequence[Any], *,
             tokenizer: Tokenizer | None = None, reward: float = 0.0) -> int:
    """Write each fact (text with ``tokenizer``, token ids, or a 1-d tensor; >= 2 tokens)
    once, in eval mode; returns the number of memories written over all layers."""
    if isinstance(facts, (str, torch.Tensor)) or not isinstance(facts, Sequence) or not facts:
        raise ParameterError("facts must be a non-empty sequence of facts (texts or token "
                             f"id sequences), got {type(facts).__name__}")
    cfg = model.config
    layers = _layers(model)
    rows = []
    for i, fact in enumerate(facts):
        try:
            ids = _prompt_ids(fact, tokenizer, cfg.vocab_size, cfg.context)
        except (ParameterError, ParameterTypeError) as exc:
            raise type(exc)(f"facts[{i}]: {exc}") from None
        if len(ids) < 2:
            raise ParameterError(f"facts[{i}]: a fact needs at least 2 tokens (a cue and "
                                 f"what follows it), got {ids}")
        rows.append(ids)
    device = next(model.parameters()).device
    before = sum(len(m.store) for m in layers.values())
    was_training = model.training
    model.eval()
    try:
        with memory_mode(model, writing=True, reward=reward):
            for ids in rows:
                model(torch.tensor([ids], dtype=torch.long, device=device))
    finally:
        model.train(was_training)
    return sum(len(m.store) for m in layers.values()) - before


def one_shot_memorize_and_generate(model: HippocampalTransformer, facts: Sequence[Any],
                                   prompt: str | Sequence[int] | torch.Tensor,
                                   max_new_tokens: int = 16, *,
                                   tokenizer: Tokenizer | None = None, clear: bool = True,
                                   use_memory: bool = True, reward: float = 0.0,
                                   **sampling: Any) -> Generation:
    """Write ``facts`` once (:func:`memorize`, after emptying the memory when ``clear``),
    then continue ``prompt`` by up to ``max_new_tokens`` tokens with retrieval on
    (``use_memory=False``: off). ``sampling``: keywords of :func:`hybrid.generate.generate`
    (default greedy, ``temperature=0``)."""
    if clear:
        clear_memory(model)
    memorize(model, facts, tokenizer=tokenizer, reward=reward)
    sampling.setdefault("temperature", 0.0)
    with memory_mode(model, writing=False, reading=use_memory):
        return generate(model, prompt, max_new_tokens, tokenizer=tokenizer, **sampling)
