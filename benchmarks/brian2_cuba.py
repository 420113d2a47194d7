"""Brian2's CUBA network (Vogels & Abbott 2005, Brian2's examples/CUBA.py), run in its own
process by ``bench_region.py`` so that code-generation targets do not interfere and the
whole process can be timed.

    python benchmarks/brian2_cuba.py --target cython [--net net.npz] [--json out.json]

Without ``--net`` it is Brian2's example as written (4,000 neurons, ``connect(p=0.02)``,
random initial potentials). With ``--net`` it loads ``n``, ``v0`` and the synapse index
arrays ``ie, je, ii, ji`` written by the benchmark (the same connectivity aura-snn runs).
Prints (and writes) a JSON line with the timings: ``setup`` (network construction),
``run`` (``run()`` wall, code generation included), ``sim`` (Brian2's own timer of the
time-step loop), ``build`` (cpp_standalone: code generation + compilation), ``binary``
(cpp_standalone: the compiled program's wall time), ``spikes``.
This file imports numpy and brian2 only.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

T_START = time.perf_counter()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", choices=("numpy", "cython", "cpp_standalone"), required=True)
    ap.add_argument("--net", help="npz with n, v0, ie, je, ii, ji (else connect(p=0.02))")
    ap.add_argument("--duration", type=float, default=1.0, help="simulated seconds")
    ap.add_argument("--json", help="write the result here too")
    ap.add_argument("--spikes", help="save the spike monitor (i, t) to this .npz")
    ap.add_argument("--build-dir", help="cpp_standalone project folder (default: temporary)")
    args = ap.parse_args()

    import brian2 as b2
    import numpy as np
    from brian2 import (
        NeuronGroup,
        SpikeMonitor,
        Synapses,
        defaultclock,
        device,
        ms,
        mV,
        prefs,
        run,
        second,
        set_device,
    )
    t_import = time.perf_counter() - T_START
    if args.target == "cpp_standalone":
        set_device("cpp_standalone", build_on_run=False)
    else:
        prefs.codegen.target = args.target
    defaultclock.dt = 0.1 * ms

    t0 = time.perf_counter()
    ns = {"taum": 20 * ms, "taue": 5 * ms, "taui": 10 * ms,
          "Vt": -50 * mV, "Vr": -60 * mV, "El": -49 * mV,
          "we": (60 * 0.27 / 10) * mV,      # excitatory synaptic weight (voltage)
          "wi": (-20 * 4.5 / 10) * mV}      # inhibitory synaptic weight
    eqs = """
    dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
    dge/dt = -ge/taue : volt
    dgi/dt = -gi/taui : volt
    """
    net = np.load(args.net) if args.net else None
    n = int(net["n"]) if net is not None else 4000
    n_e = int(0.8 * n)
    P = NeuronGroup(n, eqs, threshold="v>Vt", reset="v = Vr", refractory=5 * ms,
                    method="exact", namespace=ns)
    if net is not None:
        P.v = net["v0"] * b2.volt
    else:
        P.v = "Vr + rand() * (Vt - Vr)"
    P.ge = 0 * mV
    P.gi = 0 * mV
    Ce = Synapses(P, P, on_pre="ge += we", namespace=ns)
    Ci = Synapses(P, P, on_pre="gi += wi", namespace=ns)
    if net is not None:
        Ce.connect(i=net["ie"], j=net["je"])
        Ci.connect(i=net["ii"], j=net["ji"])
    else:
        Ce.connect(f"i<{n_e}", p=0.02)
        Ci.connect(f"i>={n_e}", p=0.02)
    M = SpikeMonitor(P)
    t_setup = time.perf_counter() - t0

    out = {"target": args.target, "n": n, "import": t_import, "setup": t_setup}
    t0 = time.perf_counter()
    run(args.duration * second)
    out["run"] = time.perf_counter() - t0
    if args.target == "cpp_standalone":
        build_dir = args.build_dir or tempfile.mkdtemp(prefix="brian2_cuba_")
        t0 = time.perf_counter()
        device.build(directory=build_dir, compile=True, run=False, with_output=False)
        out["build"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        device.run(directory=build_dir, with_output=False)
        out["binary"] = time.perf_counter() - t0
    out["sim"] = float(device._last_run_time)
    out["synapses"] = int(len(Ce) + len(Ci))
    out["spikes"] = int(M.num_spikes)
    out["rate_hz"] = out["spikes"] / (n * args.duration)
    if args.spikes:
        np.savez(args.spikes, i=np.asarray(M.i), t=np.asarray(M.t / second))
    out["process"] = time.perf_counter() - T_START
    line = json.dumps(out)
    print(line)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
