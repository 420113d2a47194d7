r"""``HippocampalTransformer``: a causal transformer whose FFNs may be spiking.

Per token :math:`w_p` at position :math:`p` (``[B, L]`` token ids in, ``[B, L, V]`` logits out):

.. math::
    h^{(0)}_p = E[w_p] \;(\text{rotary}) \quad\text{or}\quad
    \sqrt{d}\,E[w_p] + \mathrm{TG}(p) \;(\text{theta-gamma}),

    h \leftarrow h + \mathrm{Drop}(\mathrm{Attn}(\mathrm{LN}_1 h)), \qquad
    h \leftarrow h + \mathrm{Drop}(\mathrm{FFN}_\ell(\mathrm{LN}_2 h)) \quad (\text{layer } \ell),

    \text{logits}_p = E\, \mathrm{LN}_f(h_p) \;(\text{tied head}) .

:math:`\mathrm{TG}` is the theta-gamma code of :mod:`aura_snn.cells.theta_gamma` (the
embedding scaled by :math:`\sqrt{d}` as Vaswani et al. scale theirs beside a fixed code).
Attention is causal, :math:`\mathrm{softmax}(QK^\top/\sqrt{d_h} + M)V` per head through
:func:`torch.nn.functional.scaled_dot_product_attention` (flash / memory-efficient
kernels on GPU), with rotary positions (:mod:`hybrid.rotary`) applied to :math:`Q, K`
when ``positions="rotary"``. :math:`\mathrm{FFN}_\ell` is :class:`~hybrid.spiking_ffn.DenseFFN`
or :class:`~hybrid.spiking_ffn.SpikingFFN` per ``config.ffn``.

Key-value cache: ``forward(tokens, cache)`` returns ``(logits, cache)``; the cache holds
every layer's keys (rotated) and values ``[B, H, P, d_h]`` of the ``P`` tokens seen so
far, so feeding one new token costs one position of work. Both FFN kinds are
position-wise (a spiking FFN restarts its neurons from rest for each token), so the
cached result equals the full forward. ``P + L`` may not exceed ``config.context``.
Outside autograd the keys and values live in a :class:`KVArena` (preallocated, grown by
doubling) and each step writes one position into it instead of copying the cache;
rotary tables are built once for the whole context and sliced.

Episodic memory (``config.memory_layers``, :mod:`hybrid.memory_layer`): those layers'
attention also sees each query's top-k retrieved memories, and writes salient states
while writing is switched on; the cache carries each memory layer's last normed state.

Options (:mod:`hybrid.options`): thalamic gating of the embeddings, place-code layers
after blocks, plastic branches in blocks, mixture-of-depths routed blocks. Routed and
plastic layers look along the whole sequence: such a model refuses a KV cache.

The state dict holds plain, unshared tensors (the tied head reuses the embedding
matrix without a second entry), so it saves to safetensors as it is.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from aura_snn.cells.theta_gamma import ThetaGammaEncoding
from aura_snn.errors import ParameterError, ParameterTypeError, ShapeError

from .config import HybridConfig
from .memory_layer import LayerMemory, Retrieved, attend
from .options import MoDBlock, PlaceCodeLayer, PlasticBranch, ThalamicGate
from .rotary import full_tables, rotary_tables, rotate
from .spiking_ffn import DenseFFN, FFNStats, SpikingFFN


class KVArena:
    """Preallocated key/value storage ``[B, H, capacity, d_h]`` per layer, shared by the
    caches of one decode: a cache of ``P`` positions is a view of the first ``P``; the
    next step writes its keys at ``P`` and returns a view one longer (no copy of the
    ``P`` cached positions per step, as ``torch.cat`` makes). ``filled`` is how far
    some cache has written: a step from an older cache (``P < filled``: a second
    continuation of the same prefix) must not overwrite what the newer one sees, so it
    copies into a new arena instead. Used outside autograd only (in-place writes)."""

    __slots__ = ("keys", "values", "filled")

    def __init__(self, past_keys: tuple[torch.Tensor, ...],
                 past_values: tuple[torch.Tensor, ...], capacity: int) -> None:
        def grow(t: torch.Tensor) -> torch.Tensor:
            B, H, P, d = t.shape
            buf = t.new_empty(B, H, capacity, d)
            buf[:, :, :P] = t
            return buf

        self.keys = tuple(grow(k) for k in past_keys)
        self.values = tuple(grow(v) for v in past_values)
        self.filled = int(past_keys[0].shape[2])

    @property
    def capacity(self) -> int:
        """Positions each buffer holds."""
        return int(self.keys[0].shape[2])


class KVCache(NamedTuple):
    """Keys and values of the tokens seen so far, one ``[B, H, P, d_h]`` pair per layer,
    each memory layer's normed state of the last token ``[B, d]`` (None elsewhere), and
    the :class:`KVArena` the keys and values are views of (None after a full forward)."""

    keys: tuple[torch.Tensor, ...]
    values: tuple[torch.Tensor, ...]
    memory_prev: tuple[torch.Tensor | None, ...] = ()
    arena: KVArena | None = None

    @property
    def length(self) -> int:
        """Tokens held, :math:`P`."""
        return int(self.keys[0].shape[2])

    @property
    def batch_size(self) -> int:
        """Sequences held, :math:`B`."""
        return int(self.keys[0].shape[0])


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with optional rotary positions and a KV cache."""

    def __init__(self, config: HybridConfig) -> None:
        super().__init__()
        self.n_heads, self.head_dim = config.n_heads, config.head_dim
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=False)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=False)
        self.dropout = float(config.dropout)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None,
                past: tuple[torch.Tensor, torch.Tensor] | None,
                memory: Retrieved | None = None, score_scale: torch.Tensor | None = None,
                store: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``x`` ``[B, L, d]`` -> ``(y [B, L, d], (K, V))`` with ``K, V`` ``[B, H, P + L, d_h]``;
        ``rope``: the :func:`hybrid.rotary.full_tables` ``[L, d_h]`` of the positions;
        ``memory`` (with ``score_scale`` :math:`\\beta` ``[H]``): see
        :func:`hybrid.memory_layer.attend`; ``store``: a :class:`KVArena`'s buffers of
        this layer, whose first ``P`` positions are ``past``: the new keys and values
        are written after them and ``K, V`` are views of the buffers."""
        B, L, d = x.shape
        qkv = self.qkv(x).view(B, L, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if rope is not None:  # queries and keys rotated in one call
            (q, k), v = rotate(qkv[:2], *rope), qkv[2]
        else:
            q, k, v = qkv
        P = 0
        if past is not None:
            P = past[0].shape[2]
            if store is None:
                k, v = torch.cat((past[0], k), dim=2), torch.cat((past[1], v), dim=2)
            else:
                store[0][:, :, P:P + L] = k
                store[1][:, :, P:P + L] = v
                k, v = store[0][:, :, :P + L], store[1][:, :, :P + L]
        if P == 0:
            mask, causal = None, L > 1
        elif L == 1:
            mask, causal = None, False  # one new query sees every cached key
        else:  # query i (absolute P + i) sees keys j <= P + i
            i = torch.arange(L, device=x.device).unsqueeze(1)
            mask, causal = torch.arange(P + L, device=x.device) <= P + i, False
        drop = self.dropout if self.training else 0.0
        if memory is not None:
            i = torch.arange(L, device=x.device).unsqueeze(1)
            allowed = torch.arange(P + L, device=x.device) <= P + i
            n = memory.states.shape[2]
            kv_m = F.linear(memory.states, self.qkv.weight[d:])  # [B, L, k, 2d]
            k_m, v_m = kv_m.view(B, L, n, 2, self.n_heads, self.head_dim).permute(3, 0, 4, 1, 2, 5)
            c = memory.scores.unsqueeze(1)  # -inf marks a missing memory, whatever beta's sign
            bias = (score_scale.view(1, -1, 1, 1) * c.nan_to_num(neginf=0.0)).masked_fill(
                c == -math.inf, -math.inf)
            y = attend(q, k, v, allowed, k_m, v_m, bias, drop)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                               dropout_p=drop)
        return self.proj(y.transpose(1, 2).reshape(B, L, d)), (k, v)


class Block(nn.Module):
    """Pre-norm transformer block: attention, then a dense or spiking FFN."""

    def __init__(self, config: HybridConfig, kind: str, layer: int = -1) -> None:
        super().__init__()
        self.memory = (LayerMemory(config.d_model, config.n_heads, config.memory_top_k,
                                   config.memory_write_threshold)
                       if layer in config.memory_layers else None)
        self.ln1 = nn.LayerNorm(config.d_model, eps=config.norm_eps)
        self.attn = CausalSelfAttention(config)
        self.ln2 = nn.LayerNorm(config.d_model, eps=config.norm_eps)
        if kind == "spiking":
            self.ffn: nn.Module = SpikingFFN(
                config.d_model, config.d_ff, T=config.T, readout=config.readout,
                tau_mem=config.tau_mem, dt=config.dt, threshold=config.threshold,
                input_scaling=config.input_scaling, surrogate=config.surrogate,
                slope=config.slope)
        else:
            self.ffn = DenseFFN(config.d_model, config.d_ff)
        self.drop = nn.Dropout(config.dropout)
        self.plastic = (PlasticBranch(config.d_model, config.plastic_eta, config.norm_eps)
                        if layer in config.plastic_layers else None)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None,
                past: tuple[torch.Tensor, torch.Tensor] | None,
                prev: torch.Tensor | None = None,
                store: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor], torch.Tensor | None]:
        """``x`` ``[B, L, d]`` -> ``(x', (K, V), last)``; ``prev``/``last``: the memory's
        normed state of the token before ``x`` / of its last token (None without memory);
        ``store`` as in :meth:`CausalSelfAttention.forward`."""
        xn = self.ln1(x)
        if self.memory is None:
            a, kv = self.attn(xn, rope, past, store=store)
            last = None
        else:
            a, kv = self.attn(xn, rope, past, self.memory.retrieve(xn), self.memory.score_scale,
                              store)
            self.memory.write(xn, prev)
            last = xn[:, -1].detach()
        # nn.Dropout is the identity in eval; skipping its call saves a module call per
        # use, which a one-token decode step is made of
        drop = self.drop if self.training and self.drop.p > 0 else _identity
        x = x + drop(a)
        x = x + drop(self.ffn(self.ln2(x)))
        return (x if self.plastic is None else self.plastic(x)), kv, last


class HippocampalTransformer(nn.Module):
    """The hippocampal transformer (module docstring); built from a :class:`HybridConfig`.

    ``forward(tokens, cache=None) -> (logits, cache)``: ``tokens`` ``[B, L]`` integer ids
    in ``[0, vocab_size)``, ``logits`` ``[B, L, vocab_size]`` (unnormalised log-probabilities
    of the next token), ``cache`` a :class:`KVCache` holding ``P + L`` positions.
    """

    def __init__(self, config: HybridConfig) -> None:
        super().__init__()
        if not isinstance(config, HybridConfig):
            raise ParameterTypeError(f"config must be a HybridConfig, got "
                                     f"{type(config).__name__}")
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.theta_gamma = (ThetaGammaEncoding(config.d_model, config.theta_hz, config.gamma_hz)
                            if config.positions == "theta_gamma" else None)
        self.blocks = nn.ModuleList(Block(config, kind, i) for i, kind in enumerate(config.ffn))
        self.thalamic = ThalamicGate(config.d_model) if config.thalamic_gate else None
        self.places = nn.ModuleDict({str(i): PlaceCodeLayer(config.d_model, config.place_cells,
                                                            config.place_sparsity,
                                                            config.norm_eps)
                                     for i in config.place_layers})
        self.routers = nn.ModuleDict({str(i): MoDBlock(config.d_model, config.mod_capacity)
                                      for i in config.mod_layers})
        self.ln_f = nn.LayerNorm(config.d_model, eps=config.norm_eps)
        self.head = (None if config.tie_embeddings
                     else nn.Linear(config.d_model, config.vocab_size, bias=False))
        self._init_weights()
        self._rotary_tables: dict[tuple[torch.dtype, torch.device],
                                  tuple[torch.Tensor, torch.Tensor]] = {}

    def _init_weights(self) -> None:
        """Embeddings and attention ~ N(0, init_std), attention outputs scaled by
        :math:`1/\\sqrt{2 L_\\text{layers}}` (GPT-2); FFNs keep ``nn.Linear``'s default."""
        std = self.config.init_std
        nn.init.normal_(self.embed.weight, 0.0, std)
        if self.head is not None:
            nn.init.normal_(self.head.weight, 0.0, std)
        for block in self.blocks:
            nn.init.normal_(block.attn.qkv.weight, 0.0, std)
            nn.init.normal_(block.attn.proj.weight, 0.0, std / math.sqrt(2 * len(self.blocks)))

    def _check(self, tokens: torch.Tensor, cache: KVCache | None) -> int:
        if not isinstance(tokens, torch.Tensor):
            raise ParameterTypeError(f"tokens must be a torch.Tensor, got {type(tokens).__name__}")
        if tokens.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise ParameterTypeError(f"tokens must be an integer tensor, got dtype {tokens.dtype}")
        if tokens.dim() != 2 or tokens.shape[1] == 0:
            raise ShapeError(f"tokens must have shape [B, L] with L >= 1, got "
                             f"{tuple(tokens.shape)}")
        P = 0
        if cache is not None and (self.config.mod_layers or self.config.plastic_layers):
            raise ParameterError(f"cache: a model with mod_layers={self.config.mod_layers} or "
                                 f"plastic_layers={self.config.plastic_layers} looks along the "
                                 f"whole sequence and takes no KV cache (generate with "
                                 f"use_cache=False)")
        if cache is not None:
            if not isinstance(cache, KVCache) or len(cache.keys) != len(self.blocks):
                raise ParameterTypeError(f"cache must be a KVCache with {len(self.blocks)} "
                                         f"layers (as returned by forward), got {type(cache)}")
            if cache.batch_size != tokens.shape[0]:
                raise ShapeError(f"tokens has batch size {tokens.shape[0]} but the cache holds "
                                 f"{cache.batch_size} sequences")
            P = cache.length
        if P + tokens.shape[1] > self.config.context:
            raise ParameterError(f"tokens: {tokens.shape[1]} new + {P} cached positions exceed "
                                 f"the context of {self.config.context}")
        lo, hi = (int(t) for t in torch.aminmax(tokens))
        if lo < 0 or hi >= self.config.vocab_size:
            raise ParameterError(f"tokens must lie in [0, {self.config.vocab_size}), got "
                                 f"{lo if lo < 0 else hi}")
        return P

    def forward(self, tokens: torch.Tensor, cache: KVCache | None = None
                ) -> tuple[torch.Tensor, KVCache]:
        """Logits ``[B, L, V]`` of ``tokens`` after the ``cache``'s positions, and the new cache."""
        P = self._check(tokens, cache)
        L = tokens.shape[1]
        h = self.embed(tokens.long())
        if self.thalamic is not None:
            h = self.thalamic(h)
        rope = None
        if self.theta_gamma is not None:
            h = self.theta_gamma(h * math.sqrt(self.config.d_model), offset=P)
        else:
            C, S = self._rotary(h.dtype, h.device)
            rope = (C[P:P + L], S[P:P + L])
        arena = self._arena(cache, L)
        keys, values, lasts = [], [], []
        for i, block in enumerate(self.blocks):
            past = None if cache is None else (cache.keys[i], cache.values[i])
            prev = cache.memory_prev[i] if cache is not None and cache.memory_prev else None
            if str(i) in self.routers:  # routed: no cache (refused in _check)
                h = self.routers[str(i)](h, rope, lambda x, r, _b=block: _b(x, r, None, None))
                k = v = h.new_zeros(h.shape[0], self.config.n_heads, 0, self.config.head_dim)
                last = None
            else:
                store = None if arena is None else (arena.keys[i], arena.values[i])
                h, (k, v), last = block(h, rope, past, prev, store)
            if str(i) in self.places:
                h = self.places[str(i)](h)
            keys.append(k)
            values.append(v)
            lasts.append(last)
        h = self.ln_f(h)
        weight = self.embed.weight if self.head is None else self.head.weight
        if arena is not None:
            arena.filled = P + L
        return F.linear(h, weight), KVCache(tuple(keys), tuple(values), tuple(lasts), arena)

    def _arena(self, cache: KVCache | None, L: int) -> KVArena | None:
        """The :class:`KVArena` this forward writes its ``L`` keys into: the cache's own
        while it has room and no other step wrote past the cache, else a new one with
        room for twice the positions (at most the context; amortised, one copy of the
        cache per doubling); None for a forward without cache or under autograd (the
        ``torch.cat`` path, no in-place writes)."""
        if cache is None or torch.is_grad_enabled():
            return None
        P, arena = cache.length, cache.arena
        if arena is not None and arena.filled == P and arena.capacity >= P + L:
            return arena
        return KVArena(cache.keys, cache.values,
                       min(self.config.context, max(2 * (P + L), 32)))

    def _rotary(self, dtype: torch.dtype, device: torch.device
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """The :func:`hybrid.rotary.full_tables` of positions ``0 .. context - 1``, built
        once per dtype and device (not in the state dict); a forward slices its rows.
        Each row is the table :func:`~hybrid.rotary.rotary_tables` gives for its position
        alone (elementwise maths), so slicing changes no value; a decoding step no longer
        rebuilds its row (~10 tensor ops)."""
        key = (dtype, device)
        tables = self._rotary_tables.get(key)
        if tables is None:
            # ordinary tensors even when first built under torch.inference_mode (a
            # generation), since training forwards save them for backward
            with torch.inference_mode(False):
                positions = torch.arange(self.config.context, device=device)
                tables = full_tables(*rotary_tables(positions, self.config.head_dim,
                                                    self.config.rotary_base, dtype))
            self._rotary_tables[key] = tables
        return tables

    def ffn_stats(self) -> dict[int, FFNStats]:
        """:class:`FFNStats` of each spiking layer's last forward, by layer index."""
        return {i: b.ffn.last_stats for i, b in enumerate(self.blocks)
                if isinstance(b.ffn, SpikingFFN) and b.ffn.last_stats is not None}

    def num_parameters(self) -> int:
        """Learnable parameters (the tied head counted once)."""
        return sum(p.numel() for p in self.parameters())
