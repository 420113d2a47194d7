"""A tiny causal LM with the hippocampal transformer's forward signature, for the
trainer's tests: ``forward(tokens [B, L], cache=None) -> (logits [B, L, V], None)``.

Each position sees itself and its predecessor (a learned mix of the two embeddings),
so the gradient flows through context like an attention layer's; dropout (when > 0)
makes the loss depend on torch's RNG stream, which exact-resume tests need.
"""

from __future__ import annotations

import torch
from torch import nn


class TinyLM(nn.Module):
    def __init__(self, vocab: int = 32, d: int = 8, dropout: float = 0.0,
                 dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d, dtype=dtype)
        self.blocks = nn.ModuleList([nn.Linear(2 * d, d, dtype=dtype)])
        self.drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(d, dtype=dtype)
        self.head = nn.Linear(d, vocab, dtype=dtype)

    def forward(self, tokens: torch.Tensor, cache: object = None) -> tuple[torch.Tensor, None]:
        h = self.embed(tokens)
        prev = torch.cat([torch.zeros_like(h[:, :1]), h[:, :-1]], dim=1)
        h = h + torch.tanh(self.blocks[0](torch.cat([h, prev], dim=-1)))
        return self.head(self.norm(self.drop(h))), None


def corpus(n: int = 4000, vocab: int = 32, seed: int = 0) -> torch.Tensor:
    """A token stream with structure (a noisy +1 chain), so losses move."""
    g = torch.Generator().manual_seed(seed)
    x = torch.empty(n, dtype=torch.int64)
    x[0] = 0
    jumps = torch.randint(0, vocab, (n,), generator=g)
    noise = torch.rand(n, generator=g) < 0.3
    for i in range(1, n):
        x[i] = jumps[i] if noise[i] else (x[i - 1] + 1) % vocab
    return x
