"""Shared helpers of the ``aura-snn simulate`` tests: a small network file and runners."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from aura_snn.cli.simulate import add_arguments, run

ROOT = Path(__file__).resolve().parents[2]

NET = """\
[simulation]
dt = "0.1 ms"
duration = "50 ms"
seed = 3

[[region]]
name = "noise"
size = 20
model = "poisson"
rate = "100 Hz"

[[region]]
name = "E"
size = 30
model = "cuba_refractory"
params = { tau_mem = "20 ms", threshold = "-50 mV", v_reset = "-60 mV" }

[[projection]]
name = "in"
pre = "noise"
post = "E"
receptor = "exc"
weight = "3 mV"
connectivity = { rule = "fixed_probability", p = 0.2 }

[[monitor]]
target = "E"
variable = "v"
neurons = [0, 1]
every = 5
"""


def write(folder: Path, text: str = NET, name: str = "net.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line of ``text`` holding ``needle``."""
    return next(k for k, line in enumerate(text.splitlines(), 1) if needle in line)


def cli(*argv: str) -> int:
    """``aura-snn simulate ARGV`` in this process; the exit status."""
    p = argparse.ArgumentParser(prog="aura-snn simulate")
    add_arguments(p)
    return run(p.parse_args(list(argv)))


def hidden(folder: Path) -> list[str]:
    """Names starting with a dot in ``folder`` (staging folders, temporary files)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def interrupt_run(tmp: Path, sig: int, out: Path) -> subprocess.CompletedProcess[str]:
    """Start a long ``aura-snn simulate`` in a child, wait until it is simulating (its
    staging folder holds the streamed spike files), send ``sig`` and collect it."""
    net = write(tmp)
    proc = subprocess.Popen(
        [sys.executable, "-m", "aura_snn.cli", "simulate", str(net), "--out", str(out),
         "--quiet", "--duration", "1e5"], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            stages = [p for p in tmp.rglob(".*staging*") if p.is_dir()]
            if stages and any(stages[0].iterdir()):
                break
            if proc.poll() is not None:
                raise AssertionError(f"the run ended early: {proc.communicate()}")
            time.sleep(0.05)
        else:
            raise AssertionError("the run never started simulating")
        time.sleep(1.0)  # well inside the simulation loop
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


SIGINT, SIGTERM = signal.SIGINT, signal.SIGTERM
