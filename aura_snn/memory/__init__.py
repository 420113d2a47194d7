"""Episodic memory: one-shot writes, centroid-index (IVF) retrieval, forgetting, persistence.

=======================  ==================================================
module                   what it holds
=======================  ==================================================
:mod:`.store`            :class:`EpisodicMemory` (``to_tensors``/``from_tensors``),
                         :class:`SearchResult`
:mod:`.ivf`              :class:`IVFIndex` (k-means lists, nprobe search)
:mod:`.kmeans`           :func:`kmeans`, :func:`assign` (seeded, torch)
:mod:`.faiss_backend`    :class:`FaissIVFIndex` (``backend="faiss"``, extra ``peers``)
:mod:`.cogmap`           :class:`CognitiveMap`, :func:`build_cognitive_map`
:mod:`.replay`           :class:`PrioritizedReplay`, :class:`SumTree`
:mod:`.ingest`           :func:`ingest_jsonl`, :func:`ingest_csv_pairs`
:mod:`.persist`          the file around ``to_tensors`` (safetensors, checksums,
                         atomic write), :data:`FORMAT_VERSION`
=======================  ==================================================
"""

from __future__ import annotations

from .cogmap import CognitiveMap, build_cognitive_map
from .ingest import IngestReport, MalformedRowsWarning, RowError, ingest_csv_pairs, ingest_jsonl
from .ivf import IVFIndex
from .kmeans import KMeansResult, assign, kmeans
from .persist import FORMAT_VERSION, load_memory, save_memory
from .replay import PrioritizedReplay, ReplaySample, SumTree
from .store import EpisodicMemory, MemoryEntries, SearchResult

__all__ = [
    "FORMAT_VERSION",
    "CognitiveMap",
    "EpisodicMemory",
    "IVFIndex",
    "IngestReport",
    "KMeansResult",
    "MalformedRowsWarning",
    "MemoryEntries",
    "PrioritizedReplay",
    "ReplaySample",
    "RowError",
    "SearchResult",
    "SumTree",
    "assign",
    "build_cognitive_map",
    "ingest_csv_pairs",
    "ingest_jsonl",
    "kmeans",
    "load_memory",
    "save_memory",
]
