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
* :func:`one_shot_memorize_and_generate` (``hybrid.one_shot``): facts written once to the
  episodic memory of the memory layers, then used when answering.
* :func:`hybrid.generate.generate` over :mod:`hybrid.sampling` (the submodule keeps the
  name ``hybrid.generate``; the function is not re-exported).
"""

# Names load on first use (PEP 562), so ``aura-snn --help``, which imports the
# ``hybrid.cli`` plugins, stays free of torch and numpy.
_WHERE = {
    "HybridConfig": "config", "CorpusSplit": "data", "default_corpus": "data",
    "default_split": "data", "encode_text": "data", "iter_text_file": "data",
    "random_batch": "data", "split_documents": "data", "token_blocks": "data",
    "Generation": "generate", "HippocampalTransformer": "model",
    "KVCache": "model", "DenseFFN": "spiking_ffn", "FFNStats": "spiking_ffn",
    "SpikingFFN": "spiking_ffn", "BPETokenizer": "tokenizer", "ByteTokenizer": "tokenizer",
    "load_tokenizer": "tokenizer", "save_tokenizer": "tokenizer",
    "one_shot_memorize_and_generate": "one_shot",
}


def __getattr__(name: str) -> object:
    if name not in _WHERE:
        raise AttributeError(f"module 'hybrid' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)


__all__ = [
    "BPETokenizer", "ByteTokenizer", "CorpusSplit", "DenseFFN", "FFNStats", "Generation",
    "HippocampalTransformer", "HybridConfig", "KVCache", "SpikingFFN", "default_corpus",
    "default_split", "encode_text", "iter_text_file", "load_tokenizer",
    "one_shot_memorize_and_generate", "random_batch", "save_tokenizer", "split_documents",
    "token_blocks",
]
