"""The oracle of the service tests: the served network run offline, in one process, by
one :meth:`aura_snn.graph.Graph.run` call over the whole input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from aura_snn.serve import load_network

ROOT = Path(__file__).parents[2]
CHAIN = ROOT / "examples" / "serve_chain.toml"


def spikes(steps: int, seed: int, n: int = 32, p: float = 0.1) -> np.ndarray:
    """``[steps, n]`` 0/1 input."""
    return (np.random.default_rng(seed).random((steps, n)) < p).astype(np.float64)


def offline(x: np.ndarray, path: Path = CHAIN) -> tuple[dict[str, np.ndarray], dict]:
    """Outputs ``{region: [T, size]}`` of every non-input region and the final
    parameters (plastic weights included) of one offline run fed ``x``."""
    net = load_network(path)
    res = net.graph.run(x.shape[0], {"sensory": torch.as_tensor(x)[:, None, :]},
                        record=list(net.outputs))
    outs = {r: y[:, 0, :].numpy() for r, y in res.outputs.items()}
    return outs, {k: v.clone() for k, v in net.graph.state_dict().items()}
