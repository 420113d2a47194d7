"""The network a service runs: a network file whose ``model = "input"`` regions are streams.

``aura-snn simulate`` reads an input region's values from its ``file``; a service reads
them from what clients push, so in a served network file an input region may omit
``file``. :func:`load_network` builds the graph of :func:`aura_snn.graph.config.build_graph`
with those regions as :class:`~aura_snn.graph.regions.InputRegion` (0/1 spikes or real
currents, as pushed), and records the file's identity (name and SHA-256 of its bytes)
that a ``--state`` folder is checked against.

Output regions are every region that is not an input region: each publishes its output
(spikes of a spiking region, samples of a Poisson region) step by step.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError


@dataclass
class Network:
    """A built served network.

    Attributes:
        graph: the :class:`~aura_snn.graph.Graph` (no state yet).
        path: the network file (resolved).
        sha256: hex digest of the file's bytes (its identity for ``--state``).
        inputs: input region name -> size (streams fed by clients).
        outputs: output region name -> size (published).
        dt: step (s).
        backend: the file's ``[simulation] backend``.
    """

    graph: Any
    path: Path
    sha256: str
    inputs: dict[str, int]
    outputs: dict[str, int]
    dt: float
    backend: str


def file_identity(path: str | Path) -> tuple[Path, str]:
    """``(resolved path, SHA-256 hex of its bytes)``."""
    p = Path(path).resolve()
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the network file ({exc.strerror})") from None
    return p, hashlib.sha256(data).hexdigest()


def load_network(path: str | Path) -> Network:
    """Read, check and build a served network file (module docstring; imports torch)."""
    from ..graph.config import build_graph, load_config
    from ..graph.regions import InputRegion

    resolved, digest = file_identity(path)
    cfg = load_config(resolved)
    streams: dict[str, int] = {}
    data = copy.deepcopy(cfg.data)
    for r in data["region"]:
        if r.get("model") == "input" and "file" not in r:
            streams[r["name"]] = int(r["size"])
            # built as a silent Poisson region, then replaced by a fed input region
            r["model"], r["rate"] = "poisson", "0 Hz"
    if not streams:
        raise cfg.error(("region",), "a served network needs at least one input region "
                                     "(model = \"input\" without 'file'): the clock of a "
                                     "service advances with the input clients push")
    built_cfg = copy.copy(cfg)
    built_cfg.data = data
    graph = build_graph(built_cfg).graph
    for name, size in streams.items():
        graph.regions[name] = InputRegion(name, size, spiking=False)
    graph.to(graph.dtype)
    outputs = {n: int(r.size) for n, r in graph.regions.items() if n not in streams}
    return Network(graph, resolved, digest, streams, outputs, cfg.dt, cfg.backend)


__all__ = ["Network", "file_identity", "load_network"]
