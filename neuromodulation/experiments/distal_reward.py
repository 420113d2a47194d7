r"""Izhikevich (2007) distal reward: dopamine-modulated STDP finds the one synapse whose
pre-post pairing is rewarded seconds later, in a network firing at random.

Izhikevich, "Solving the distal reward problem through linkage of STDP and dopamine
signaling", Cereb. Cortex 17 (2007); his published code (ModelDB 84167, ``daspnet.m``)
for the numbers the text leaves out. Defaults (:class:`DistalRewardConfig`), in SI:

========================== ============================================ ===============
quantity                   value                                        source
========================== ============================================ ===============
neurons                    800 RS + 200 FS Izhikevich (``"paper"``       paper
                           integration: two half steps), dt = 1 ms
connections                each neuron -> 100 distinct random targets;   paper (spnet)
                           excitatory onto any neuron but itself,
                           inhibitory onto excitatory ones only
weights                    excitatory 1 V/s (= 1 mV/ms) at the start,    paper
                           plastic in [0, 4]; inhibitory -1, fixed
axonal delays              excitatory 1..20 ms, 5 synapses of each        paper (spnet)
                           per neuron; inhibitory 1 ms
thalamic input             20 V/s for one step, Poisson 1 Hz per neuron  paper (spnet:
                                                                        one random
                                                                        neuron per ms)
STDP (eligibility jumps)   A+ = 0.1, A- = 0.15, tau+- = 20 ms, nearest   daspnet.m
                           pairing (the trace is reset to 0.1 per spike)
eligibility, dopamine      tau_c = 1 s, tau_d = 0.2 s                   paper
weight                     dw/dt = c d / tau_s, tau_s = 10 ms (daspnet:  daspnet.m
                           w += (0.002 + DA) c every 10 ms)
dopamine                   baseline d0 = 0.002 (tonic release), +0.5    daspnet.m
                           per reward
reward                     1..3 s after each spike of post 1..10 ms     paper (daspnet
                           after a spike of pre                         uses 20 ms)
========================== ============================================ ===============

Chosen synapse: an excitatory -> excitatory synapse drawn at random among those with the
shortest delay (1 ms): a pairing is judged on somatic spike times, as in the paper, so
on a synapse with a delay longer than the lag the pair arrives post-before-pre and its
reward would depress it. Its start weight is the others' unless ``chosen_w0`` is given
(``daspnet.m`` starts it at 0).

Departures: Poisson thalamic input (independent per neuron) instead of exactly one
neuron per ms; the weight moves every step by the exact integral of :math:`c d/\tau_s`
(:mod:`neuromodulation.dopamine`) instead of every 10 ms; :math:`d` starts at its
baseline :math:`d_0`. :func:`speed_up` divides every slow time of the rule (tau_c,
tau_d, tau_s, reward delays) by one factor, for runs shorter than the paper's hour.

What the unrewarded synapses do: their eligibility has a mean :math:`\bar c =
\tau_c (A_+ - A_-) r_\text{pre} r_\text{post} \tau_\pm` (Poisson neurons; negative,
since :math:`A_- > A_+`), which the tonic and the rewarded dopamine turn into a steady
downward drift :math:`\bar c\,\bar d\,T/\tau_s` (the formula gives about -0.8 V/s
over the paper's hour at its 0.9 Hz), and each reward moves every synapse eligible at
that moment, so the rest also spreads. ``tests/neuromodulation/test_distal_reward.py``
checks the drift against this prediction.

Speed (torch stepper, float64, one thread, 2-core machine): the 1,000-neuron network
runs ~180 steps/s with the 1..20 ms delays (the paper's hour: ~5.6 h) and ~480 with
1 ms delays (~2.1 h); the per-synapse delays cost about 60 % of the step in
:meth:`~aura_snn.graph.projection.Projection.propagate` and ``at_synapses``. The Izhikevich
neuron and :class:`~neuromodulation.dopamine.DopamineSTDP` have no compiled form, so the
engine cannot run it.

The loop (:func:`run`): the graph runs in chunks (``chunk`` s, no longer than the shortest
reward delay); after each chunk the recorded spikes of the chosen pair give the pairings
(:func:`~neuromodulation.experiments._reward.find_pairings`), whose rewards are
scheduled and handed to later chunks as ``modulators["dopamine"]``: a closed loop with
no approximation, since no reward is due within the chunk that caused it.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from aura_snn._checks import check_choice, check_int, check_nonnegative, check_positive
from aura_snn.errors import ParameterError
from aura_snn.functional.izhikevich import PRESETS, IzhikevichParameters
from aura_snn.graph import Graph, PoissonRegion, SpikingRegion
from aura_snn.graph.connectivity import from_indices, one_to_one
from neuromodulation.dopamine import DopamineSTDP, DopamineSTDPParameters

from ._result import DistalRewardResult
from ._reward import RewardSchedule, find_pairings

DTYPES = {"float64": torch.float64, "float32": torch.float32}


@dataclass(frozen=True)
class DistalRewardConfig:
    """Parameters of the experiment (module docstring for sources). Weights, input and
    the synaptic jump of the Izhikevich input are in V/s (1 V/s = 1 mV/ms); times in s.

    Attributes:
        n_exc, n_inh: excitatory (RS) and inhibitory (FS) neurons.
        synapses_per_neuron: outgoing synapses of every neuron (distinct targets).
        dt: step (s). duration: simulated time (s). chunk: length of one run (s).
        w_exc, w_max, w_inh: start and upper bound of excitatory weights, the fixed
            inhibitory weight (V/s); excitatory weights are bounded below by 0.
        chosen_w0: start weight of the chosen synapse (``None``: ``w_exc``).
        max_delay: longest excitatory axonal delay (s); delays are whole steps 1..K.
        thalamic_rate (Hz), thalamic_weight (V/s): the random input per neuron.
        a_plus, a_minus, tau_plus, tau_minus: STDP eligibility jumps and windows (s).
        tau_c, tau_d, tau_s: eligibility, dopamine and weight time constants (s).
        dopamine_baseline: :math:`d_0`; reward: release per reward.
        window: pairing window (s). reward_delay: ``(min, max)`` delay of a reward (s).
        batch: independent copies of the network's activity (own thalamic streams,
            pairings, rewards and dopamine) sharing one weight matrix, moved by the batch
            mean of their changes (:class:`~neuromodulation.dopamine.DopamineSTDP`): per
            unit of time the weights drift as in one network while the noise of the
            changes falls by sqrt(batch).
        seed: connectivity, chosen synapse, reward delays and thalamic streams.
        dtype: ``"float64"`` or ``"float32"``.
    """

    n_exc: int = 800
    n_inh: int = 200
    synapses_per_neuron: int = 100
    dt: float = 1e-3
    duration: float = 3600.0
    chunk: float = 0.1
    w_exc: float = 1.0
    w_max: float = 4.0
    w_inh: float = -1.0
    chosen_w0: float | None = None
    max_delay: float = 20e-3
    thalamic_rate: float = 1.0
    thalamic_weight: float = 20.0
    a_plus: float = 0.1
    a_minus: float = 0.15
    tau_plus: float = 20e-3
    tau_minus: float = 20e-3
    tau_c: float = 1.0
    tau_d: float = 0.2
    tau_s: float = 10e-3
    dopamine_baseline: float = 0.002
    reward: float = 0.5
    window: float = 10e-3
    reward_delay: tuple[float, float] = (1.0, 3.0)
    batch: int = 1
    seed: int = 0
    dtype: str = "float64"

    def __post_init__(self) -> None:
        check_int("n_exc", self.n_exc, minimum=2)
        check_int("n_inh", self.n_inh, minimum=0)
        m = check_int("synapses_per_neuron", self.synapses_per_neuron, minimum=1)
        if m > self.n_exc - 1:
            raise ParameterError(f"synapses_per_neuron must be <= n_exc - 1 = "
                                 f"{self.n_exc - 1} (distinct targets), got {m}")
        for name in ("dt", "duration", "chunk", "max_delay", "tau_plus", "tau_minus",
                     "tau_c", "tau_d", "tau_s", "window"):
            check_positive(name, getattr(self, name), "s")
        for name in ("w_exc", "w_max", "thalamic_rate", "thalamic_weight", "a_plus",
                     "a_minus", "dopamine_baseline", "reward"):
            check_nonnegative(name, getattr(self, name))
        if self.w_exc > self.w_max:
            raise ParameterError(f"w_exc must be <= w_max, got {self.w_exc} > {self.w_max}")
        if self.chosen_w0 is not None and not 0.0 <= self.chosen_w0 <= self.w_max:
            raise ParameterError(f"chosen_w0 must lie in [0, w_max={self.w_max}], got "
                                 f"{self.chosen_w0!r}")
        if not (isinstance(self.w_inh, (int, float)) and math.isfinite(self.w_inh)
                and self.w_inh <= 0):
            raise ParameterError(f"w_inh must be a finite number <= 0, got {self.w_inh!r}")
        lo, hi = self.reward_delay
        if not 0 < lo <= hi:
            raise ParameterError(f"reward_delay must be (min, max) with 0 < min <= max, got "
                                 f"{self.reward_delay!r}")
        if self.chunk > lo + 1e-12:
            raise ParameterError(f"chunk must be <= the shortest reward delay {lo} s (a "
                                 f"reward must never fall due in the chunk that earned "
                                 f"it), got {self.chunk}")
        check_int("batch", self.batch, minimum=1)
        check_int("seed", self.seed, minimum=0)
        check_choice("dtype", self.dtype, DTYPES)

    def steps(self, seconds: float) -> int:
        """``seconds`` in whole steps of ``dt`` (at least 1)."""
        return max(1, round(seconds / self.dt))


def speed_up(config: DistalRewardConfig, factor: float) -> DistalRewardConfig:
    """The same experiment with its slow clock ``factor`` times faster: tau_c, tau_d,
    tau_s, the reward delays (and the chunk, if longer than the new shortest delay)
    divided by ``factor``; the neurons, STDP window and pairing window unchanged.

    This keeps what makes the reward distal (delay / tau_c) and the change per reward
    (c at the reward times R tau_cd / tau_s). What it shortens: the background
    eligibility of the other synapses has variance proportional to tau_c, so the number
    of rewards the chosen synapse needs to stand out falls by ``factor``."""
    check_positive("factor", factor)
    lo, hi = config.reward_delay
    lo_new = lo / factor
    return dataclasses.replace(config, tau_c=config.tau_c / factor,
                               tau_d=config.tau_d / factor, tau_s=config.tau_s / factor,
                               reward_delay=(lo_new, hi / factor),
                               chunk=min(config.chunk, lo_new))


#: The slow clock factor of :func:`shortened` (tau_c 0.1 s, rewards 0.1-0.3 s later).
SHORT_SPEED_UP = 10.0
#: The thalamic rate of :func:`shortened` (Hz; the network then fires at ~2.3 Hz).
SHORT_THALAMIC_RATE = 3.0


def shortened(duration: float, *, n_exc: int = 800, n_inh: int = 200,
              synapses_per_neuron: int = 100, batch: int = 1, seed: int = 0,
              **overrides: object) -> DistalRewardConfig:
    """The shortened protocol of the tests and the benchmark: the paper's experiment with

    1. every axonal delay 1 ms (``max_delay = dt``), as in ``daspnet.m``, the paper's own
       code (its text's 1..20 ms runs about 3x slower on the torch stepper);
    2. thalamic input at :data:`SHORT_THALAMIC_RATE` instead of 1 Hz, so the chosen
       pairing (rate ~ r_pre r_post x 10 ms) comes ~6x more often;
    3. the slow clock :data:`SHORT_SPEED_UP` times faster (:func:`speed_up`).

    The paper needs ~1 h for the chosen synapse to stand out; this needs ~1-3 min
    (``batch`` copies shorten it further, :class:`DistalRewardConfig`)."""
    base = DistalRewardConfig(n_exc=n_exc, n_inh=n_inh,
                              synapses_per_neuron=synapses_per_neuron, duration=duration,
                              max_delay=1e-3, thalamic_rate=SHORT_THALAMIC_RATE,
                              batch=batch, seed=seed)
    return dataclasses.replace(speed_up(base, SHORT_SPEED_UP), **overrides)


class Network(NamedTuple):
    """The built experiment: the graph, the plastic projection ``"exc"`` and the chosen
    synapse (index ``k`` in the projection's stored order, neurons ``pre -> post``)."""

    graph: Graph
    rule: DopamineSTDP
    chosen: int
    pre: int
    post: int


def _targets(rng: np.random.Generator, rows: np.ndarray, pool: int, m: int) -> np.ndarray:
    """``[len(rows), m]`` distinct targets in ``[0, pool)`` per row, never the row's own
    neuron (uniform over m-subsets: the smallest m of random keys)."""
    keys = rng.random((rows.size, pool))
    inside = rows < pool
    keys[np.nonzero(inside)[0], rows[inside]] = 2.0
    return np.argsort(keys, axis=1)[:, :m]


def build(config: DistalRewardConfig) -> Network:
    """The graph of the experiment (module docstring), weights in V/s."""
    c = config
    n, m = c.n_exc + c.n_inh, c.synapses_per_neuron
    rng = np.random.default_rng(c.seed)
    t_exc = _targets(rng, np.arange(c.n_exc), n, m)
    t_inh = _targets(rng, np.arange(c.n_exc, n), c.n_exc, m)
    k_max = max(1, round(c.max_delay / c.dt))
    delay = np.tile(np.arange(m) % k_max, c.n_exc)          # steps d: arrival 1 + d
    pre_e, post_e = np.repeat(np.arange(c.n_exc), m), t_exc.ravel()
    dtype = DTYPES[c.dtype]

    def per_neuron(exc: float, inh: float) -> torch.Tensor:
        return torch.tensor([exc] * c.n_exc + [inh] * c.n_inh, dtype=dtype)

    (a_rs, b, v_c, d_rs), (a_fs, _, _, d_fs) = PRESETS["RS"], PRESETS["FS"]
    g = Graph(dt=c.dt, seed=c.seed).to(dtype)
    g.add(PoissonRegion("thalamus", n, c.thalamic_rate))
    g.add(SpikingRegion("net", n, "izhikevich", IzhikevichParameters(
        a=per_neuron(a_rs, a_fs), b=b, v_reset=v_c, d=per_neuron(d_rs, d_fs),
        integration="paper")))
    g.connect("thalamus", "net", c.thalamic_weight, connectivity=one_to_one(n),
              same_step=True, name="thalamic")
    w0 = np.full(pre_e.size, c.w_exc)
    ee = np.nonzero((post_e < c.n_exc) & (delay == 0))[0]
    k_given = int(ee[rng.integers(ee.size)])
    if c.chosen_w0 is not None:
        w0[k_given] = c.chosen_w0
    exc = g.connect("net", "net", w0, connectivity=from_indices(pre_e, post_e, n, n),
                    delay=delay, sign="exc", name="exc")
    if c.n_inh:
        g.connect("net", "net", c.w_inh, delay=0, sign="inh", name="inh",
                  connectivity=from_indices(np.repeat(np.arange(c.n_exc, n), m),
                                            t_inh.ravel(), n, n))
    rule = DopamineSTDP(DopamineSTDPParameters(
        a_plus=c.a_plus, a_minus=c.a_minus, tau_plus=c.tau_plus, tau_minus=c.tau_minus,
        tau_c=c.tau_c, tau_d=c.tau_d, tau_s=c.tau_s, c_max=math.inf, w_min=0.0,
        w_max=c.w_max, integration="exact", pairing="nearest"))
    exc.add_rule(rule)
    pre, post = int(pre_e[k_given]), int(post_e[k_given])
    hit = ((exc.pre_idx == pre) & (exc.post_idx == post)).nonzero().flatten()
    return Network(g, rule, int(hit[0]), pre, post)


def run(config: DistalRewardConfig | None = None) -> DistalRewardResult:
    """Run the experiment for ``config.duration`` seconds (module docstring)."""
    c = DistalRewardConfig() if config is None else config
    if not isinstance(c, DistalRewardConfig):
        raise ParameterError(f"config must be a DistalRewardConfig, got {type(c).__name__}")
    net = build(c)
    g, proj, dtype = net.graph, net.graph.projection("exc"), DTYPES[c.dtype]
    st = g.initial_state(c.batch)
    key = f"exc.{net.rule.slot}"
    rs = st.rules[key]
    st.rules[key] = rs._replace(d=torch.full_like(rs.d, c.dopamine_baseline))
    g.state = st
    tonic = c.dopamine_baseline * (1.0 - math.exp(-c.dt / c.tau_d))
    rng = np.random.default_rng([c.seed, 1])
    scheds = [RewardSchedule(c.steps(c.reward_delay[0]), c.steps(c.reward_delay[1]),
                             c.reward, tonic, rng) for _ in range(c.batch)]
    total, chunk, window = c.steps(c.duration), c.steps(c.chunk), c.steps(c.window)
    w_initial = proj.effective_weight().detach().cpu().numpy().copy()
    times, chosen_w, p99, med, pairings = [], [], [], [], []
    last_pre: list[int | None] = [None] * c.batch
    t0, counts = 0, np.zeros(c.n_exc + c.n_inh)
    start, res = time.perf_counter(), None
    with torch.no_grad():
        while t0 < total:
            steps = min(chunk, total - t0)
            rel = torch.stack([s.release(t0, steps, dtype) for s in scheds], dim=1)
            res = g.run(steps, record=["net"], modulators={"dopamine": rel})
            spikes = res.outputs["net"].cpu().numpy() > 0           # [T, B, n]
            for b, sched in enumerate(scheds):
                found, last_pre[b] = find_pairings(
                    t0 + np.flatnonzero(spikes[:, b, net.pre]),
                    t0 + np.flatnonzero(spikes[:, b, net.post]), last_pre[b], window)
                sched.schedule(found)
                pairings.extend(found.tolist())
            counts += spikes.sum(axis=(0, 1))
            t0 += steps
            w = proj.effective_weight().detach().cpu().numpy()
            times.append(t0 * c.dt)
            chosen_w.append(float(w[net.chosen]))
            p99.append(float(np.percentile(w, 99)))
            med.append(float(np.median(w)))
    wall = time.perf_counter() - start
    seconds = total * c.dt * c.batch
    delivered = sorted(t for sc in scheds for t in sc.delivered)
    return DistalRewardResult(
        w_initial, proj.effective_weight().detach().cpu().numpy().copy(), net.chosen,
        net.pre, net.post, np.array(times), np.array(chosen_w), np.array(p99),
        np.array(med), np.array(pairings, dtype=np.int64),
        np.array(delivered, dtype=np.int64), proj.pre_idx.cpu().numpy().copy(),
        proj.post_idx.cpu().numpy().copy(), counts / seconds, c.n_exc,
        g.state.rules[key].d.cpu().numpy().copy(), res.backend, total / wall)


__all__ = ["DTYPES", "SHORT_SPEED_UP", "SHORT_THALAMIC_RATE", "DistalRewardConfig",
           "DistalRewardResult", "Network", "build", "run", "shortened", "speed_up"]
