"""The hippocampal transformer: spiking-FFN model against its dense twin (issue 13).

Both models have the same shape and parameter count (a spiking FFN has the dense FFN's
``fc1``/``fc2``; its LIF constants are buffers) and train for the same tokens on the
embedded corpus (``pydoc_data.topics``, byte tokens, :func:`hybrid.data.default_split`)
with :func:`hybrid.train.train` (AdamW, warmup + cosine, the same seed and data order,
and the activity penalty ``spike_rate_weight=0.5`` of :mod:`hybrid.spiking_ffn`, which
is zero for the dense twin: it has no spikes).
Each model trains in its own child process (a fresh ``python`` running this file), so
its peak resident memory (CPU: ``ru_maxrss``; CUDA: ``max_memory_allocated``) is its own.

Measured per model:

* validation perplexity :math:`e^{\\mathcal{L}}` over the first validation windows, and
  on the same forwards the FFN firing rate (spikes per neuron per step) and activation
  sparsity (``1 - rate``, NeuroBench's), plus the share of token x neuron spike counts
  that are zero;
* training tokens/s (median over updates after 3 warm-up updates, evaluation excluded);
* generation tokens/s of 256 new tokens (greedy, after a 16-token prompt) with the KV
  cache and without it (every step re-reads the whole window);
* continual learning (spiking model): validation perplexity on corpus A before and
  after training goes on with the standard library's docstrings (``continual_steps``
  updates), by fine-tuning, EWC, replay with sleep (:mod:`hybrid.continual`);
* energy per token per target (:mod:`hardware.energy_model`: dense core MACs, spiking
  FFN MACs/ACs/neuron updates) over a cached decode of validation tokens, the spiking
  FFNs in their event-driven form (:func:`hybrid.spiking_part.event_view`).

    python benchmarks/bench_hybrid.py [--quick] [--json out/bench_hybrid.json]

Expected time on 2 CPU cores: ``--quick`` ~2 min, the full run ~5 min (300 updates
of 1,024 tokens per model at d_model 128, 4 layers). The figure goes next to the JSON
(``.png``) or to ``--figure``. Speeds on a shared machine move with its load (the JSON
records the load average). One-token calls of the fused CPU LIF kernel (d_ff 256,
T 4) took 3-8 ms on numba's thread pool beside torch's busy threads; they now run
serially on the calling thread (:func:`aura_snn.kernels.cpu.serial`), ~0.12 ms, and
with the launch plan each LIF module keeps for such calls ~0.04 ms (in a tight loop).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from _common import Goal, parser, print_goals, print_table, write_report

from hardware.energy_model import count_token_ops, ops_dict, token_energy
from hybrid.config import HybridConfig
from hybrid.continual import METHODS, ContinualConfig, continue_training, stdlib_corpus
from hybrid.data import default_split, encode_text
from hybrid.ddp import eval_windows
from hybrid.generate import generate
from hybrid.model import HippocampalTransformer
from hybrid.spiking_part import event_view
from hybrid.tokenizer import ByteTokenizer
from hybrid.train import train
from hybrid.train_config import TrainConfig

SIZES = {
    "quick": {"d_model": 64, "n_heads": 4, "n_layers": 2, "d_ff": 256, "seq_len": 64,
              "batch": 8, "steps": 80, "val_windows": 32, "energy_tokens": 48,
              "continual_steps": 30},
    "full": {"d_model": 128, "n_heads": 4, "n_layers": 4, "d_ff": 512, "seq_len": 128,
             "batch": 8, "steps": 300, "val_windows": 128, "energy_tokens": 128,
             "continual_steps": 60},
}
CONTEXT, PROMPT, NEW = 288, 16, 256
KINDS = ("dense", "spiking")


def model_config(size: dict[str, int], kind: str) -> HybridConfig:
    return HybridConfig(vocab_size=ByteTokenizer().vocab_size, d_model=size["d_model"],
                        n_heads=size["n_heads"], n_layers=size["n_layers"], d_ff=size["d_ff"],
                        context=CONTEXT, ffn=kind, T=4)


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


@torch.no_grad()
def validate(model: HippocampalTransformer, windows: torch.Tensor, batch: int = 16
             ) -> dict[str, float]:
    """Perplexity over ``windows`` [n, L+1] and the FFN activity on the same forwards."""
    model.eval()
    nll = n_tok = spikes = updates = zero_counts = counts = 0.0
    for k in range(0, len(windows), batch):
        w = windows[k:k + batch]
        logits, _ = model(w[:, :-1])
        nll += float(F.cross_entropy(logits.flatten(0, 1).double(), w[:, 1:].reshape(-1),
                                     reduction="sum"))
        n_tok += w[:, 1:].numel()
        for s in model.ffn_stats().values():
            n = float(s.tokens) * model.config.d_ff
            spikes += float(s.firing_rate) * n * model.config.T
            updates += n * model.config.T
            zero_counts += float(s.count_sparsity) * n
            counts += n
    rate = spikes / updates if updates else float("nan")
    return {"val_ppl": float(torch.tensor(nll / n_tok).exp()), "ffn_firing_rate": rate,
            "ffn_activation_sparsity": 1.0 - rate,
            "ffn_zero_count_share": zero_counts / counts if counts else float("nan")}


def generation_speed(model: HippocampalTransformer, prompt: list[int], repeats: int = 5
                     ) -> dict[str, float]:
    """Tokens/s of ``NEW`` greedy tokens with and without the KV cache: ``repeats``
    alternating pairs of runs (a load change hits both modes alike), each mode's median,
    and the speed-up as the median of the per-pair ratios (one run each read 3.2x and
    4.4x on the same model in two runs of this script)."""
    rates: dict[bool, list[float]] = {True: [], False: []}
    for cache in (True, False):
        generate(model, prompt, 8, temperature=0.0, use_cache=cache, stop_at_eos=False)
    for _ in range(repeats):
        for cache in (True, False):
            t0 = time.perf_counter()
            g = generate(model, prompt, NEW, temperature=0.0, use_cache=cache,
                         stop_at_eos=False)
            rates[cache].append(len(g.tokens) / (time.perf_counter() - t0))
    return {"gen_cached_tok_s": statistics.median(rates[True]),
            "gen_uncached_tok_s": statistics.median(rates[False]),
            "kv_speedup": statistics.median(c / u for c, u in
                                            zip(rates[True], rates[False], strict=True)),
            "gen_repeats": repeats}


def energy_per_token(model: HippocampalTransformer, ids: torch.Tensor) -> dict[str, Any]:
    """Per-token counts and energies of a cached decode of ``ids`` (one token a step)."""
    def run() -> None:
        cache = None
        for t in ids.tolist():
            _, cache = model(torch.tensor([[t]]), cache)

    model.eval()
    with event_view(model):
        ops = count_token_ops(model, run, tokens=len(ids))
    return {"ops": ops_dict(ops), "energy": token_energy(ops)}


def child(kind: str, size_name: str, out_path: str) -> None:
    """Train and measure one model; write its results as JSON to ``out_path``."""
    size = SIZES[size_name]
    torch.manual_seed(0)
    tok = ByteTokenizer()
    split = default_split()
    train_ids, val_ids = encode_text(split.train, tok), encode_text(split.validation, tok)
    model = HippocampalTransformer(model_config(size, kind))
    cfg = TrainConfig(lr=3e-3, min_lr=3e-4, warmup_steps=max(1, size["steps"] // 10),
                      max_steps=size["steps"], batch_size=size["batch"],
                      seq_len=size["seq_len"], weight_decay=0.1, spike_rate_weight=0.5,
                      eval_every=0,
                      save_every=0, seed=0, tensorboard=False)
    cuda = torch.cuda.is_available()
    rss0 = _rss_mib()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        res = train(model, {"train": train_ids, "val": None}, cfg, out_dir=tmp)
    train_s = time.perf_counter() - t0
    rates = [r["tokens_per_s"] for r in res.rows[3:]] or [r["tokens_per_s"] for r in res.rows]
    peak = (torch.cuda.max_memory_allocated() / 2**20 if cuda
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    model = model.cpu()
    row: dict[str, Any] = {
        "model": kind, "parameters": model.num_parameters(),
        "train_tokens": size["steps"] * cfg.tokens_per_step, "train_s": train_s,
        "final_train_loss": res.rows[-1]["loss"], "train_tok_s": statistics.median(rates),
        "peak_mem_MiB": peak, "rss_before_train_MiB": rss0,
        "peak_mem_kind": "cuda max_memory_allocated" if cuda else "CPU peak RSS (process)"}
    row.update(validate(model, eval_windows(val_ids, size["seq_len"], size["val_windows"])))
    row.update(generation_speed(model, encode_text(split.validation, tok)[:PROMPT].tolist()))
    row.update(energy_per_token(model, val_ids[PROMPT:PROMPT + size["energy_tokens"]]))
    if kind == "spiking":
        row["continual"] = continual(model, (train_ids, val_ids), size)
    Path(out_path).write_text(json.dumps(row))


def continual(model: HippocampalTransformer, first: tuple[torch.Tensor, torch.Tensor],
              size: dict[str, int]) -> dict[str, dict[str, float]]:
    """Forgetting of corpus A when training goes on with the stdlib docstrings, per
    method of :mod:`hybrid.continual`, each from a copy of the trained model."""
    text = "\n\n".join(stdlib_corpus().values())
    cut = int(0.9 * len(text))
    tok = ByteTokenizer()
    second = (encode_text(text[:cut], tok), encode_text(text[cut:], tok))
    out = {}
    for method in METHODS:
        cfg = ContinualConfig(method=method, steps=size["continual_steps"],
                              batch_size=size["batch"], seq_len=size["seq_len"], lr=1e-3,
                              eval_windows=size["val_windows"])
        t0 = time.perf_counter()
        res = continue_training(copy.deepcopy(model), first, second, cfg)
        out[method] = {"ppl_a_before": res.ppl_a_before, "ppl_a_after": res.ppl_a_after,
                       "ppl_b_before": res.ppl_b_before, "ppl_b_after": res.ppl_b_after,
                       "forgetting": res.forgetting, "sleeps": res.sleeps,
                       "replay_batches": res.replay_batches,
                       "seconds": time.perf_counter() - t0}
    return out


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(13, 3.8))
    names = [r["model"] for r in rows]
    ax[0].bar(names, [r["val_ppl"] for r in rows], color=["tab:gray", "tab:orange"])
    ax[0].set_ylabel("validation perplexity")
    ax[1].bar(names, [r["train_tok_s"] for r in rows], color=["tab:gray", "tab:orange"])
    ax[1].set_ylabel("training tokens/s")
    targets = list(rows[0]["energy"])
    width = 0.38
    for i, r in enumerate(rows):
        e = r["energy"]
        xs = [k + (i - 0.5) * width for k in range(len(targets))]
        core = [e[t]["core_pJ"] / 1e3 for t in targets]
        spk = [e[t]["spiking_pJ"] / 1e3 for t in targets]
        ax[2].bar(xs, core, width, label=f"{r['model']}: dense core")
        ax[2].bar(xs, spk, width, bottom=core, label=f"{r['model']}: spiking FFNs")
    ax[2].set_xticks(range(len(targets)), targets)
    ax[2].set_ylabel("energy per token (nJ)")
    ax[2].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    tmp.replace(path)
    print(f"wrote {path}")


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--figure", metavar="PATH", help="figure file (default: the JSON's .png)")
    p.add_argument("--child", nargs=3, metavar=("KIND", "SIZE", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(*args.child)
        return
    size_name = "quick" if args.quick else "full"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in KINDS:
            out = Path(tmp) / f"{kind}.json"
            subprocess.run([sys.executable, __file__, "--child", kind, size_name, str(out)],
                           check=True)
            rows.append(json.loads(out.read_text()))
    dense, spk = rows
    cols = ["model", "parameters", "train_tokens", "val_ppl", "ffn_firing_rate",
            "ffn_activation_sparsity", "ffn_zero_count_share", "train_tok_s",
            "gen_cached_tok_s", "gen_uncached_tok_s", "kv_speedup", "peak_mem_MiB"]
    print_table(rows, cols, title=f"Dense twin vs spiking FFNs ({size_name}, "
                                  f"{dense['train_tokens']} training tokens each)")
    erows = [{"model": r["model"], "target": t, "mac_on": e["mac_on"],
              "core_pJ": e["core_pJ"], "spiking_pJ": e["spiking_pJ"], "total_pJ": e["total_pJ"]}
             for r in rows for t, e in r["energy"].items()]
    print_table(erows, list(erows[0]), title="Energy per token (compute convention)")
    crows = [{"method": k, **v} for k, v in spk["continual"].items()]
    print_table(crows, list(crows[0]), title="Continual learning (spiking model): corpus A "
                "(pydoc topics) then B (stdlib docstrings)")
    ratio = spk["val_ppl"] / dense["val_ppl"]
    thr = spk["train_tok_s"] / dense["train_tok_s"]
    goals = [
        Goal("spiking val perplexity within 10% of the dense twin", "ratio <= 1.10",
             round(ratio, 4), ratio <= 1.10),
        Goal("spiking FFN activation sparsity", ">= 0.85",
             round(spk["ffn_activation_sparsity"], 4), spk["ffn_activation_sparsity"] >= 0.85),
        Goal("spiking training throughput vs dense (CPU)" if not torch.cuda.is_available()
             else "spiking training throughput vs dense (CUDA)", ">= 0.5x", round(thr, 3),
             thr >= 0.5),
        Goal("KV-cache generation speed-up at 256 tokens (spiking)", ">= 5x",
             round(spk["kv_speedup"], 2), spk["kv_speedup"] >= 5),
        Goal("KV-cache generation speed-up at 256 tokens (dense)", ">= 5x",
             round(dense["kv_speedup"], 2), dense["kv_speedup"] >= 5),
        Goal("same parameter count", "equal", spk["parameters"],
             spk["parameters"] == dense["parameters"]),
    ]
    print_goals(goals)
    write_report(args.json, rows, goals, {"size": size_name, "sizes": SIZES[size_name],
                                          "context": CONTEXT, "prompt": PROMPT, "new": NEW,
                                          "load_average_1_5_15": os.getloadavg()})
    fig = args.figure or (Path(args.json).with_suffix(".png") if args.json else None)
    if fig:
        plot(rows, Path(fig))


if __name__ == "__main__":
    main()
