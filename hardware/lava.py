r"""Export a spiking ``nn.Sequential`` (or a graph) to a Lava process network and run it
in Lava's CPU simulator of Loihi 2 (``Loihi2SimCfg``), in ``fixed_pt`` or ``floating_pt``.

Each stage ``[Linear] -> LIF | CubaLIF`` of the source (see :mod:`hardware.loihi` for
the mapping and its refusals) becomes a Lava ``LIF`` (``du``, ``dv``, ``vth``,
``bias_mant = 0``) fed by a ``Dense`` (or ``Sparse`` when over half of the weights are
zero, ``DelaySparse`` when the stage has synaptic delays: the ``delays`` argument of
:func:`hardware.loihi.quantize`) from the previous stage. ``fixed_pt`` uses the integers of
:func:`hardware.loihi.quantize`, so its spikes equal the twin's bit for bit;
``floating_pt`` uses :math:`g W`, :math:`g b`, the exact decays :math:`1 - a` and the
threshold in volts, so its spikes equal the float model's (up to float rounding at
threshold ties).

Timing. Lava's ``Dense`` sends at step :math:`t` what it accumulated at :math:`t-1`, so
stage :math:`k` lags the input by :math:`d_k` steps (the number of connection
processes before it). :func:`run` feeds ``T + D`` steps (``D`` the total lag), starts
each stage's bias (a ``RingBuffer`` into its ``a_in``) at step :math:`d_k` and returns
the output's steps :math:`D \dots D+T-1`, aligned with the PyTorch model (read
through a Lava ``Extractor``, one channel message per step). Binary input
(all values 0 or 1) enters through a ``RingBuffer`` and the first ``Dense``; other
input is multiplied by the first layer's weights on the host (the twin's
``input_current`` in ``fixed_pt``) and enters the first ``LIF`` directly. Batch
elements run one after another, each in a fresh runtime that is stopped on success
and on error. A :class:`~aura_snn.graph.Graph` source is exported region by region
and projection by projection instead (:mod:`hardware.lava_graph`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from aura_snn._checks import check_choice
from aura_snn.errors import InputValueError, ParameterError

from .lava_compat import import_lava
from .loihi import LoihiLayer, LoihiTwin, quantize

MODES = ("fixed_pt", "floating_pt")


@dataclass
class LavaNetwork:
    """Lava processes of one export: ``lifs[k]`` per stage, ``conns[k]`` the
    ``Dense``/``Sparse`` into it (``None`` for a first stage fed by the host),
    ``lags[k]`` its delay in steps; ``twin`` holds the quantised parameters."""

    mode: str
    twin: LoihiTwin
    lifs: list[Any]
    conns: list[Any]
    lags: list[int]


def _connection(layer: LoihiLayer, mode: str) -> Any:
    import_lava()
    from lava.proc.dense.process import Dense
    from lava.proc.sparse.process import DelaySparse, Sparse
    from lava.utils.weightutils import SignMode

    if mode == "floating_pt":
        w: Any = layer.weights_f.numpy().astype(np.float64)
        kw: dict[str, Any] = {}
    else:
        w = layer.weights.numpy().astype(np.int32)
        kw = dict(weight_exp=layer.weight_exp, num_weight_bits=layer.num_weight_bits,
                  sign_mode=SignMode[layer.sign_mode.upper()])
    d = None if layer.delays is None else layer.delays.numpy().astype(int) * (w != 0)
    if d is not None and d.max() > 0:
        from scipy.sparse import csr_matrix

        return DelaySparse(weights=csr_matrix(w), delays=csr_matrix(d),
                           max_delay=int(d.max()), **kw)
    if layer.sparse or layer.delays is not None:
        from scipy.sparse import csr_matrix

        return Sparse(weights=csr_matrix(w), **kw)
    return Dense(weights=w, **kw)


def _lif(layer: LoihiLayer, mode: str) -> Any:
    import_lava()
    from lava.proc.lif.process import LIF

    n = (layer.weights.shape[0],)
    if mode == "floating_pt":
        return LIF(shape=n, du=layer.du_f, dv=layer.dv_f, vth=layer.vth_f, bias_mant=0.0)
    return LIF(shape=n, du=layer.du, dv=layer.dv, vth=layer.vth, bias_mant=0, bias_exp=0)


def export(source: nn.Module, mode: str = "fixed_pt", *, binary_input: bool = True,
           **quantize_kwargs: Any) -> LavaNetwork:
    """Build the Lava ``LIF``/``Dense``/``Sparse`` processes of ``source``, connected
    stage to stage; with ``binary_input`` the first stage gets a connection process too
    (its ``s_in`` takes the input spikes). Input, bias and output processes are added
    by :func:`run`. ``quantize_kwargs`` go to :func:`hardware.loihi.quantize`. A
    :class:`~aura_snn.graph.Graph` goes to :func:`hardware.lava_graph.export_graph`."""
    check_choice("mode", mode, MODES)
    from aura_snn.graph import Graph

    if isinstance(source, Graph):
        from .lava_graph import export_graph

        return export_graph(source, mode, **quantize_kwargs)  # type: ignore[return-value]
    twin = quantize(source, **quantize_kwargs)
    lifs, conns, lags, lag = [], [], [], 0
    for k, layer in enumerate(twin.layers):
        lif = _lif(layer, mode)
        conn = _connection(layer, mode) if (k or binary_input) else None
        if conn is not None:
            conn.a_out.connect(lif.a_in)
            if k:
                lifs[-1].s_out.connect(conn.s_in)
            lag += 1
        lifs.append(lif)
        conns.append(conn)
        lags.append(lag)
    return LavaNetwork(mode, twin, lifs, conns, lags)


def _host_current(net: LavaNetwork, x: torch.Tensor) -> np.ndarray:
    """First stage's input ``[T, n]`` computed on the host (non-binary input)."""
    layer = net.twin.layers[0]
    if net.mode == "fixed_pt":
        return net.twin.input_current(x.unsqueeze(1))[:, 0].numpy()
    return (x.double() @ layer.weights_f.T + layer.bias_f).numpy()


def _sink(n: int, steps: int) -> Any:
    """A Lava ``Extractor`` that forwards the ``n`` spikes of each step to the host (a
    channel buffering all ``steps`` vectors, so the run never waits on the reader); read
    it with :func:`_read_output`, under a :func:`_run_cfg` run configuration."""
    import_lava()
    from lava.proc.io.extractor import Extractor

    return Extractor(shape=(n,), buffer_size=steps)


def _run_cfg(mode: str) -> Any:
    """``Loihi2SimCfg(select_tag=mode)`` that also runs :func:`_sink`'s Extractor (its
    Loihi-protocol model carries no precision tag: it copies what it receives)."""
    import_lava()
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel

    return Loihi2SimCfg(select_tag=mode,
                        exception_proc_model_map={Extractor: PyLoihiExtractorModel})


def _read_output(sink: Any) -> np.ndarray:
    """The spikes a :func:`_sink` received, ``[n, steps]`` float64: one channel message
    per step. (A ``RingBuffer`` sink's ``data.get()`` costs Lava one message per value:
    its process model sends an array element by element, 22 s for 1,000 x 1,000.)"""
    steps = int(sink.out_port.external_pipe_buffer_size)
    return np.stack([np.asarray(sink.receive(), np.float64) for _ in range(steps)], axis=1)


def _run_one(source: nn.Module, x: torch.Tensor, mode: str, binary: bool,
             kw: dict[str, Any], read: Callable[[Any], np.ndarray]) -> np.ndarray:
    import_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.proc.io.source import RingBuffer as Source

    net = export(source, mode, binary_input=binary, **kw)
    if not binary and net.twin.layers[0].delays is not None:
        raise ParameterError("delays on the first layer need binary input (0/1 spikes "
                             "through DelaySparse); x is not binary")
    steps, lag = x.shape[0], net.lags[-1]
    total = steps + lag
    fixed = mode == "fixed_pt"
    pad = np.zeros((total, x.shape[1]))
    if binary:
        pad[:steps] = x.numpy()
        Source(data=pad.T.astype(np.int32) if fixed else pad.T).s_out.connect(
            net.conns[0].s_in)
    else:
        cur = np.zeros((total, net.twin.layers[0].weights.shape[0]))
        cur[:steps] = _host_current(net, x)
        Source(data=cur.T.astype(np.int32) if fixed else cur.T).s_out.connect(
            net.lifs[0].a_in)
    for k, (layer, lif) in enumerate(zip(net.twin.layers, net.lifs, strict=True)):
        if k == 0 and not binary:
            continue  # bias already in the host current
        bias = layer.bias.numpy() if fixed else layer.bias_f.numpy()
        if np.any(bias != 0):
            data = np.zeros((bias.shape[0], total))
            data[:, net.lags[k]:] = bias[:, None]
            Source(data=data.astype(np.int32) if fixed else data).s_out.connect(lif.a_in)
    sink = _sink(net.twin.layers[-1].weights.shape[0], total)
    net.lifs[-1].s_out.connect(sink.in_port)
    try:
        sink.run(condition=RunSteps(num_steps=total), run_cfg=_run_cfg(mode))
        out = read(sink)
    finally:
        sink.stop()  # a no-op when no runtime was created
    return out[:, lag:lag + steps].T.astype(np.float64)


def run(source: nn.Module, x: Any, mode: str = "fixed_pt", *,
        record: Any = None, **quantize_kwargs: Any) -> Any:
    """Run ``source`` in Lava's Loihi 2 simulator on ``x`` ``[T, B, n_in]``; returns the
    last stage's spikes ``[T, B, n_out]`` (float64 0/1), aligned with the PyTorch
    model (module docstring). ``quantize_kwargs`` go to
    :func:`hardware.loihi.quantize`. A :class:`~aura_snn.graph.Graph` source runs
    through :func:`hardware.lava_graph.run_graph` (``x`` by input region, ``record``
    the regions to return, a dict of spikes)."""
    check_choice("mode", mode, MODES)
    from aura_snn.graph import Graph

    if isinstance(source, Graph):
        from .lava_graph import run_graph

        return run_graph(source, x, mode, record=record, **quantize_kwargs)  # type: ignore[return-value]
    if record is not None:
        raise ParameterError("record names regions of a graph; a Sequential returns its "
                             "last layer")
    if not isinstance(x, torch.Tensor) or x.ndim < 3:
        raise ParameterError(f"x must be a [T, B, n_in] (or [T, B, *input_shape]) tensor, "
                             f"got {getattr(x, 'shape', type(x).__name__)}")
    if not torch.isfinite(x).all():
        raise InputValueError("x contains NaN or infinite values")
    twin = quantize(source, **quantize_kwargs)
    n_in = twin.layers[0].weights.shape[1]
    if tuple(x.shape[2:]) not in (twin.input_shape, (n_in,)):
        raise ParameterError(f"x must be [T, B, {', '.join(map(str, twin.input_shape))}], "
                             f"got {tuple(x.shape)}")
    x = x.detach().cpu().double().reshape(*x.shape[:2], n_in)
    binary = bool(((x == 0) | (x == 1)).all())
    outs = [_run_one(source, x[:, b], mode, binary, quantize_kwargs, _read_output)
            for b in range(x.shape[1])]
    return torch.from_numpy(np.stack(outs, axis=1)).reshape(*x.shape[:2], *twin.output_shape)
