"""Feed a served sensory -> association -> motor chain and remember what it did.

Start the service first (it runs until Ctrl+C and saves its state on the way out)::

    aura-snn serve examples/serve_chain.toml --state out/serve_chain --port 8765
    python examples/serve_client.py --port 8765

This script pushes trials of a few fixed sensory spike patterns (Poisson, 200 ms each)
to ``sensory``, prints the motor rates of each trial as it is published, and hands each
trial's association rates to two memory services (Ray actors in this process):

* the *writer* stores them in an episodic memory (:mod:`aura_snn.memory`), the key being
  the association rates and the value the motor rates, and saves the store atomically
  after every write;
* the *searcher* reads the saved store (only when the file changed) and answers queries.

Last, noisy versions of each pattern are pushed and the searcher recalls which pattern
the association layer's response resembles most. Run it twice: the service resumes
from its saved state, so the trials continue where the first run stopped.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np


class MemoryWriter:
    """Writes episodes into an episodic memory saved at ``path`` after each write."""

    def __init__(self, path: str, dim: int, value_dim: int) -> None:
        from aura_snn.memory import EpisodicMemory

        self.path = Path(path)
        self.mem = (EpisodicMemory.from_file(self.path) if self.path.exists() else
                    EpisodicMemory(dim, value_dim=value_dim, backend="flat"))

    def write(self, key: list[float], value: list[float], meta: dict) -> int:
        import torch

        ids = self.mem.write(torch.tensor([key]), torch.tensor([value]), [meta])
        self.mem.save(self.path)
        return int(ids[0])


class MemorySearcher:
    """Searches the store the writer saved (reloaded when the file changed)."""

    def __init__(self, path: str) -> None:
        self.path, self.mtime, self.mem = Path(path), None, None

    def search(self, query: list[float], k: int = 3) -> list[tuple[int, float, dict]]:
        import torch

        from aura_snn.memory import EpisodicMemory

        mtime = self.path.stat().st_mtime_ns
        if mtime != self.mtime:
            self.mem, self.mtime = EpisodicMemory.from_file(self.path), mtime
        res = self.mem.search(torch.tensor([query]), k=k, touch=False)
        ids = [int(i) for i in res.ids[0] if int(i) >= 0]
        meta = self.mem.get(torch.tensor(ids)).metadata
        return [(i, float(s), m) for i, s, m in zip(ids, res.scores[0].tolist(), meta,
                                                          strict=True)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--patterns", type=int, default=3)
    p.add_argument("--trials", type=int, default=3, help="trials per pattern")
    p.add_argument("--steps", type=int, default=200, help="steps per trial")
    p.add_argument("--memory", default="out/serve_memory.safetensors")
    args = p.parse_args()

    import ray

    from aura_snn.serve import Client

    client = Client(f"127.0.0.1:{args.port}")
    info = client.status()            # fails here, naming the address, if nothing serves
    size, dt = info["inputs"]["sensory"], info["dt"]
    print(f"service at step {info['step']}: inputs {info['inputs']}, outputs "
          f"{info['outputs']}")
    rng = np.random.default_rng(0)
    rates = np.full((args.patterns, size), 5.0)                  # Hz per sensory neuron
    for k in range(args.patterns):        # each pattern drives its own third at 150 Hz
        rates[k, rng.permutation(size)[:size // 3]] = 150.0
    os.makedirs(os.path.dirname(args.memory) or ".", exist_ok=True)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        writer = ray.remote(MemoryWriter).remote(args.memory, info["outputs"]["association"],
                                                 info["outputs"]["motor"])
        searcher = ray.remote(MemorySearcher).remote(args.memory)
        client.cursor = {"motor": info["step"], "association": info["step"]}

        def trial(pattern: int, noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
            r = rates[pattern] * (1 + noise * rng.standard_normal(size)).clip(0)
            client.push("sensory", (rng.random((args.steps, size)) < r * dt).astype(float))
            motor, assoc = client.read("motor"), client.read("association")
            return motor.rate_hz, assoc.rate_hz

        for t in range(args.trials):
            for k in range(args.patterns):
                motor, assoc = trial(k)
                mid = ray.get(writer.write.remote(assoc.tolist(), motor.tolist(),
                                                  {"pattern": k, "trial": t}))
                print(f"trial {t} pattern {k}: motor {np.round(motor).astype(int)} Hz "
                      f"(memory {mid})", flush=True)
        right = 0
        for k in range(args.patterns):
            _, assoc = trial(k, noise=0.3)
            hits = ray.get(searcher.search.remote(assoc.tolist()))
            got = hits[0][2]["pattern"]
            right += got == k
            print(f"noisy pattern {k}: recalled pattern {got} (score {hits[0][1]:.3f})")
        print(f"recalled {right}/{args.patterns}; service at step {client.status()['step']}")
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
