"""Helpers for the STDP tests: Poisson rasters, a graph whose postsynaptic spikes are
imposed by a teacher input, a direct driver of a rule's update, and a plain-Python
reference of the pair rule (loops over synapses, written apart from the package)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from aura_snn.functional.lif import LIFParameters
from aura_snn.graph import Graph, InputRegion, SpikingRegion
from aura_snn.graph.plasticity import SynapseActivity, reduce_batch
from aura_snn.graph.projection import Projection

DT = 1e-3


def poisson_raster(steps: int, batch: int, n: int, rate: float, seed: int) -> np.ndarray:
    """``[steps, batch, n]`` 0/1 spikes, each with probability ``rate * DT`` per step."""
    return (np.random.default_rng(seed).random((steps, batch, n)) < rate * DT).astype(np.float64)


def teacher_graph(w0: np.ndarray, rule: Any, *, same_step: bool = True,
                  sparse: bool = False, delay: int | np.ndarray = 0,
                  dtype: torch.dtype = torch.float64) -> tuple[Graph, Any]:
    """``pre`` (fed) -> ``post`` plastic, and ``teach`` (fed) -> ``post`` so strong that
    ``post`` spikes exactly when ``teach`` does (same-step edges; one step later with
    delayed ones): the membrane forgets within a step (tau_mem = 1.1 ms, dt = 1 ms:
    a = 0.40) and the plastic input is at most ``n_pre * |w| / (1 - a) < 100``, the
    threshold; the teacher adds 1000. ``delay`` (steps; ``[n_pre, n_post]`` per
    synapse) applies to the plastic edge when it is not same-step."""
    n_pre, n_post = w0.shape
    g = Graph(dt=DT).to(dtype)
    g.add(InputRegion("pre", n_pre))
    g.add(InputRegion("teach", n_post))
    lif = LIFParameters(tau_mem=1.1e-3, threshold=100.0, input_scaling="direct",
                        reset="zero")
    g.add(SpikingRegion("post", n_post, "lif", lif))
    g.connect("teach", "post", torch.eye(n_post, dtype=dtype) * 1000.0, same_step=same_step)
    p = g.connect("pre", "post", torch.tensor(w0, dtype=dtype), same_step=same_step,
                  sparse=sparse, delay=torch.as_tensor(delay))
    p.add_rule(rule)
    return g, p


def drive(rule: Any, w0: np.ndarray, pre: np.ndarray, post: np.ndarray) -> np.ndarray:
    """Call ``rule.update`` step by step on rasters ``[T, B, n]`` of a dense projection
    and hand ``dw`` to the projection as the stepper does (batch reduction, then
    :meth:`~aura_snn.graph.projection.Projection.apply_update`); returns the effective
    weights after every step ``[T, n_pre, n_post]``."""
    proj = Projection("p", "a", "b", torch.tensor(w0), same_step=True)
    proj.make_plastic()
    state = rule.initial_state(proj, pre.shape[1], torch.device("cpu"), torch.float64)
    pre_t, post_t = torch.tensor(pre), torch.tensor(post)
    out = []
    for t in range(pre.shape[0]):
        act = SynapseActivity(pre_t[t], post_t[t], None, None, t)
        w = proj.effective_weight().detach()
        dw, state = rule.update(act, w, state, DT, {})
        proj.apply_update(reduce_batch(dw, rule.batch_reduction, proj.weight.shape))
        out.append(proj.effective_weight().detach().clone())
    return torch.stack(out).numpy()


def reference_pair(w0: np.ndarray, pre: np.ndarray, post: np.ndarray, *, a_plus: float,
                   a_minus: float, tau_plus: float, tau_minus: float, w_min: float,
                   w_max: float, multiplicative: bool, nearest: bool) -> np.ndarray:
    """Pair STDP synapse by synapse, in Brian2's order (pre pathway, then post), each
    sample from the shared weights, the shared weights moved by the batch mean."""
    T, B, n = pre.shape
    m = post.shape[2]
    ap, aq = math.exp(-DT / tau_plus), math.exp(-DT / tau_minus)
    xp, xq = np.zeros((B, n)), np.zeros((B, m))
    w = w0.copy()
    for t in range(T):
        news = []
        for b in range(B):
            wb = w.copy()
            xp[b] *= ap
            xq[b] *= aq
            for i in range(n):
                if pre[t, b, i]:
                    xp[b, i] = 1.0 if nearest else xp[b, i] + 1.0
                    for j in range(m):
                        f = (wb[i, j] - w_min) if multiplicative else 1.0
                        wb[i, j] = min(max(wb[i, j] - a_minus * f * xq[b, j], w_min), w_max)
            for j in range(m):
                if post[t, b, j]:
                    xq[b, j] = 1.0 if nearest else xq[b, j] + 1.0
                    for i in range(n):
                        f = (w_max - wb[i, j]) if multiplicative else 1.0
                        wb[i, j] = min(max(wb[i, j] + a_plus * f * xp[b, i], w_min), w_max)
            news.append(wb)
        w = w + np.mean([wb - w for wb in news], axis=0)
    return w
