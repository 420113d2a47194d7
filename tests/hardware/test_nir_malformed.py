"""Malformed NIR graphs and files: each error names the node (or file) and the problem.

Oracle: the defect is planted by hand in an otherwise valid graph or file (h5py edits
of a file written by ``nir.write``), and the test checks the message names exactly
that node and that problem.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from aura_snn.errors import CorruptFileError, ParameterError, ShapeError
from aura_snn.neurons import LIF
from hardware.nir import from_nir, to_nir, write

nir = pytest.importorskip("nir")
DT = 1e-3


def good(n_in: int = 4, n: int = 3, weight: np.ndarray | None = None) -> object:
    w = np.ones((n, n_in)) if weight is None else weight
    return nir.NIRGraph(
        nodes={"in": nir.Input(input_type=np.array([n_in])),
               "fc1": nir.Affine(weight=w, bias=np.zeros(w.shape[0])),
               "lif1": nir.LIF(tau=np.full(n, 1e-2), r=np.ones(n), v_leak=np.zeros(n),
                               v_threshold=np.ones(n), v_reset=np.zeros(n)),
               "out": nir.Output(output_type=np.array([n]))},
        edges=[("in", "fc1"), ("fc1", "lif1"), ("lif1", "out")], type_check=False)


def test_a_valid_graph_loads(tmp_path) -> None:
    write(tmp_path / "ok.nir", good())
    m = from_nir(tmp_path / "ok.nir", dt=DT, dtype=torch.float64)
    assert m(torch.ones(5, 2, 4, dtype=torch.float64)).shape == (5, 2, 3)


def test_unknown_node_type_in_a_file(tmp_path) -> None:
    path = tmp_path / "g.nir"
    write(path, good())
    with h5py.File(path, "r+") as f:
        del f["node/nodes/lif1/type"]
        f["node/nodes/lif1"].create_dataset("type", data="Izhikevich",
                                            dtype=h5py.string_dtype())
    with pytest.raises(CorruptFileError, match="node 'lif1': unknown NIR node type "
                                               "'Izhikevich'"):
        from_nir(path, dt=DT)


def test_missing_parameter_in_a_file(tmp_path) -> None:
    path = tmp_path / "g.nir"
    write(path, good())
    with h5py.File(path, "r+") as f:
        del f["node/nodes/lif1/tau"]
    with pytest.raises(CorruptFileError, match="node 'lif1' \\(LIF\\): missing parameter"
                                               "\\(s\\) 'tau'"):
        from_nir(path, dt=DT)


def test_nan_weights_in_memory_and_in_a_file(tmp_path) -> None:
    w = np.ones((3, 4))
    w[1, 2] = np.nan
    with pytest.raises(ParameterError, match="node 'fc1' \\(Affine\\): parameter 'weight' "
                                             "has 1 NaN"):
        from_nir(good(weight=w), dt=DT)
    write(tmp_path / "nan.nir", good(weight=w))
    with pytest.raises(ParameterError, match="nan.nir: node 'fc1'"):
        from_nir(tmp_path / "nan.nir", dt=DT)
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), LIF(dt=DT, reset="zero"))
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    with pytest.raises(ParameterError, match="node '0' \\(Affine\\).*NaN"):
        from_nir(to_nir(model))


def test_shapes_that_do_not_chain() -> None:
    g = good(n_in=4, n=5, weight=np.ones((3, 4)))   # fc1 gives 3, lif1 has 5 neurons
    with pytest.raises(ShapeError, match="node 'lif1' \\(LIF\\).*\\[5\\].*\\[3\\]"):
        from_nir(g, dt=DT)
    g = good()
    g.nodes["in"] = nir.Input(input_type=np.array([7]))
    with pytest.raises(ShapeError, match="node 'fc1' \\(Affine\\).*needs input of shape "
                                         "\\[4\\].*\\[7\\]"):
        from_nir(g, dt=DT)
    g = good()
    g.nodes["out"] = nir.Output(output_type=np.array([4]))
    with pytest.raises(ShapeError, match="node 'out' \\(Output\\).*\\[4\\].*\\[3\\]"):
        from_nir(g, dt=DT)


def test_truncated_and_non_hdf5_files(tmp_path) -> None:
    path = tmp_path / "g.nir"
    write(path, good())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match="g.nir: not a readable NIR file"):
        from_nir(path, dt=DT)
    text = tmp_path / "notes.nir"
    text.write_text("this is not HDF5\n")
    with pytest.raises(CorruptFileError, match="notes.nir: not a readable NIR file"):
        from_nir(text, dt=DT)
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as f:
        f.create_dataset("x", data=1)
    with pytest.raises(CorruptFileError, match="no 'node' group"):
        from_nir(empty, dt=DT)


def test_bad_edges_delays_and_unsupported_values() -> None:
    g = good()
    g.edges.append(("lif1", "ghost"))
    with pytest.raises(ParameterError, match="edge \\('lif1', 'ghost'\\): no node named "
                                             "'ghost'"):
        from_nir(g, dt=DT)
    g = good()
    g.nodes["d"] = nir.Delay(delay=np.full(3, 1.5e-3))
    g.edges = [("in", "fc1"), ("fc1", "d"), ("d", "lif1"), ("lif1", "out")]
    with pytest.raises(ParameterError, match="node 'd' \\(Delay\\).*not a whole number of "
                                             "steps"):
        from_nir(g, dt=DT)
    g = good()
    g.nodes["lif1"].v_leak = np.array([0.0, 0.1, 0.0])
    with pytest.raises(ParameterError, match="node 'lif1' \\(LIF\\): per-neuron v_leak"):
        from_nir(g, dt=DT)
    g = good()
    g.nodes["lif1"].tau = np.full(3, 5e-4)
    with pytest.raises(ParameterError, match="node 'lif1' \\(LIF\\).*dt must be smaller"):
        from_nir(g, dt=DT)
    with pytest.raises(ParameterError, match="dt \\(s\\) is required"):
        from_nir(good())
    with pytest.raises(ParameterError, match="approximate must be one of"):
        to_nir(torch.nn.Sequential(torch.nn.Linear(2, 2), LIF(dt=DT)), approximate={"x"})


def test_missing_nir_package_names_the_extra(monkeypatch) -> None:
    import sys

    from aura_snn.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "nir", None)    # as if nir were not installed
    with pytest.raises(MissingExtraError, match="pip install aura-snn\\[peers\\]"):
        to_nir(torch.nn.Sequential(torch.nn.Linear(2, 2), LIF(dt=DT, reset="zero")))
