"""The Loihi 2 fixed-point twin (``hardware.loihi``) against Lava's own simulator.

* Speed: LIF(100) -> Dense(100x100) -> LIF(100), 1,000 steps, one sample, constant
  random input currents: the twin's forward (best of repeats) against Lava 0.10's
  ``Loihi2SimCfg(select_tag="fixed_pt")``: ``lava_total_s`` is ``hardware.lava.run``
  (building the processes, compile, runtime, 1,000 steps, stop), ``lava_run_s`` Lava's
  ``Process.run`` call alone (compile, runtime creation and the steps); spikes are
  compared bit for bit.
* Demo classifier: ``aura_snn.tasks.digits`` trained briefly, its test accuracy in
  float (as trained; where the model resets by subtraction the twin and Lava reset to
  zero, ``approximate_reset=True``, and the case says so), in the twin and in Lava
  ``fixed_pt`` on the first test samples, with the spike agreement of Lava and the
  twin, and of Lava ``floating_pt`` and the float model.

    python benchmarks/bench_loihi_twin.py [--quick] [--json out/bench_loihi_twin.json]
"""

from __future__ import annotations

import time

import numpy as np
import torch
from _common import Goal, parser, print_goals, print_table, write_report
from torch import nn

from aura_snn import LIF
from aura_snn.tasks.digits import DigitsConfig, load_digits, train
from hardware.lava import run
from hardware.loihi import quantize


def _lava_run_only(model: nn.Module, x: torch.Tensor) -> float:
    """Seconds of Lava's ``run`` call alone (compiled network of ``hardware.lava``)."""
    import hardware.lava as hl

    spent = []
    real = hl._read_output

    def timed(sink):  # called right after sink.run returned
        spent.append(time.perf_counter())
        return real(sink)

    from lava.magma.core.process.process import AbstractProcess

    orig = AbstractProcess.run

    def run_timed(self, *a, **k):
        spent.append(time.perf_counter())
        return orig(self, *a, **k)

    AbstractProcess.run, hl._read_output = run_timed, timed
    try:
        hl.run(model, x, "fixed_pt", n_in=x.shape[-1])
    finally:
        AbstractProcess.run, hl._read_output = orig, real
    return spent[1] - spent[0]


def speed(repeats: int) -> dict:
    torch.manual_seed(0)
    model = nn.Sequential(LIF(8e-3, threshold=1.0, reset="zero"), nn.Linear(100, 100),
                          LIF(8e-3, threshold=1.0, reset="zero")).double()
    with torch.no_grad():
        model[1].weight.mul_(3).add_(0.3)
    x = torch.rand(1000, 1, 100, dtype=torch.float64) * 3
    twin = quantize(model, n_in=100)
    twin(x)
    t_twin = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        y = twin(x)
        t_twin.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    lava = run(model, x, "fixed_pt", n_in=100)
    t_lava = time.perf_counter() - t0
    t_run = _lava_run_only(model, x)
    return {"case": "LIF(100)->Dense(100x100)->LIF(100), 1000 steps", "twin_s": min(t_twin),
            "lava_total_s": t_lava, "lava_run_s": t_run, "speedup_vs_run": t_run / min(t_twin),
            "speedup_vs_total": t_lava / min(t_twin), "identical": bool(torch.equal(lava, y)),
            "spikes": int(y.sum())}


def demo(epochs: int, n_lava: int) -> dict:
    cfg = DigitsConfig(epochs=epochs)
    res = train(cfg)
    model = res.model.double().eval()
    _, _, x_te, y_te = load_digits(cfg.test_fraction, cfg.seed)
    x = x_te.double().unsqueeze(0).expand(cfg.steps, *x_te.shape)
    twin = quantize(model, approximate_reset=True)
    with torch.no_grad():
        acc_float = float((model(x).sum(0).argmax(1) == y_te).double().mean())
    tw = twin(x)
    acc_twin = float((tw.sum(0).argmax(1) == y_te).double().mean())
    lava = run(model, x[:, :n_lava], "fixed_pt", approximate_reset=True)
    agree = float((lava == tw[:, :n_lava]).double().mean())
    lava_f = run(model, x[:, :n_lava], "floating_pt", approximate_reset=True)
    with torch.no_grad():
        agree_f = float((lava_f == model(x[:, :n_lava])).double().mean())
    reset = model.lif1.neuron_parameters().reset
    return {"case": f"digits SpikingMLP ({epochs} epochs, reset {reset!r})",
            "acc_float": acc_float,
            "acc_twin": acc_twin, "n_test": len(y_te), "n_lava": n_lava,
            "acc_lava": float((lava.sum(0).argmax(1) == y_te[:n_lava]).double().mean()),
            "acc_twin_same_samples": float((tw[:, :n_lava].sum(0).argmax(1)
                                            == y_te[:n_lava]).double().mean()),
            "spike_agreement": agree, "float_spike_agreement": agree_f,
            "layer_errors": [e.__dict__ for e in twin.errors],
            "spike_error": twin.spike_error(model, x)}


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    s = speed(3 if args.quick else 10)
    d = demo(2 if args.quick else 10, 5 if args.quick else 20)
    print_table([s], list(s), title="Twin vs Lava (fixed_pt)")
    skip = ("layer_errors", "spike_error")
    print_table([{k: v for k, v in d.items() if k not in skip}],
                [k for k in d if k not in skip], title="Demo classifier")
    print_table(d["spike_error"], list(d["spike_error"][0]), title="Twin vs float, per layer")
    goals = [Goal("twin speed-up vs Lava run", ">= 50x", round(s["speedup_vs_run"], 1),
                  s["speedup_vs_run"] >= 50),
             Goal("fixed_pt spike agreement (speed case)", "100%", s["identical"], s["identical"]),
             Goal("fixed_pt spike agreement (demo)", "100%", d["spike_agreement"],
                  d["spike_agreement"] == 1.0),
             Goal("floating_pt spike agreement with the float model (demo)", "100%",
                  d["float_spike_agreement"], d["float_spike_agreement"] == 1.0)]
    print_goals(goals)
    write_report(args.json, [s, d], goals)
    np.seterr()


if __name__ == "__main__":
    main()
