"""The hippocampal transformer: attention core, spiking FFN blocks, episodic memory.

Built on :mod:`aura_snn` (LIF neurons and kernels, the theta-gamma code) and
:mod:`neuromodulation`; never imports :mod:`hardware`.

* :class:`HybridConfig` (``hybrid.config``): validated hyper-parameters, JSON round trip.
* :class:`HippocampalTransformer` (``hybrid.model``): causal attention with rotary or
  theta-gamma positions, dense or spiking FFN per layer, tied head, :class:`KVCache`.
* :class:`SpikingFFN`, :class:`DenseFFN` (``hybrid.spiking_ffn``).
* :class:`ByteTokenizer`, :class:`BPETokenizer`, :func:`save_tokenizer`,
  :func:`load_tokenizer` (``hybrid.tokenizer``).
* :func:`default_corpus`, :func:`default_split`, :func:`iter_text_file`,
  :func:`token_blocks` (``hybrid.data``).
* :func:`generate` (``hybrid.generate``) over :mod:`hybrid.sampling`.
"""

from .config import HybridConfig
from .data import (
    CorpusSplit,
    default_corpus,
    default_split,
    encode_text,
    iter_text_file,
    random_batch,
    split_documents,
    token_blocks,
)
from .generate import Generation, generate
from .model import HippocampalTransformer, KVCache
from .spiking_ffn import DenseFFN, FFNStats, SpikingFFN
from .tokenizer import BPETokenizer, ByteTokenizer, load_tokenizer, save_tokenizer

__all__ = [
    "BPETokenizer", "ByteTokenizer", "CorpusSplit", "DenseFFN", "FFNStats", "Generation",
    "HippocampalTransformer", "HybridConfig", "KVCache", "SpikingFFN", "default_corpus",
    "default_split", "encode_text", "generate", "iter_text_file", "load_tokenizer",
    "random_batch", "save_tokenizer", "split_documents", "token_blocks",
]
