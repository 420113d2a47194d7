"""The energy figures draw per-inference energies (the report's batch totals over its
samples, computed here by hand) in a unit that keeps the ticks short, go logarithmic
when the energies span more than 100x, and name every target and its source."""

from __future__ import annotations

import pytest

from aura_snn.plot.energy import (
    energy_figure,
    energy_targets_figure,
    energy_unit,
    plot_energy,
    plot_energy_targets,
)

NAN = float("nan")


def _report(name: str, scale: float, samples: int = 4) -> dict:
    """A hand-written report: layer energies (pJ) are totals over ``samples``."""
    def syn(c: float, m: float, d: float) -> dict:
        return {"kind": "Linear", "activation_sparsity": NAN, "compute_pJ": c,
                "memory_pJ": m, "dense_ann_pJ": d}

    def neu(c: float, m: float, sp: float) -> dict:
        return {"kind": "neuron", "activation_sparsity": sp, "compute_pJ": c,
                "memory_pJ": m, "dense_ann_pJ": 0.0}

    layers = {"fc1": syn(4e6 * scale, 8e6 * scale, 6e6 * scale),
              "lif1": neu(0.0, 2e4 * scale, 0.75),
              "fc2": syn(4e4 * scale, 8e4 * scale, 1e5 * scale),
              "lif2": neu(0.0, 4e3 * scale, None)}   # None: as strict JSON reads NaN back
    per = {k: sum(v[k] for v in layers.values()) / samples
           for k in ("compute_pJ", "memory_pJ", "dense_ann_pJ")}
    return {"target": {"name": name, "source": f"paper of {name}"}, "samples": samples,
            "steps": 8, "layers": layers, "per_inference": per}


def _heights(ax) -> list[float]:
    return [p.get_height() for p in ax.patches]


def test_unit_keeps_numbers_below_ten_thousand() -> None:
    assert energy_unit([9999.0]) == ("pJ", 1.0)
    assert energy_unit([1e4, 3.0]) == ("nJ", 1e3)
    assert energy_unit([2.5e8]) == ("µJ", 1e6)
    assert energy_unit([]) == ("pJ", 1.0)


def test_one_target_per_layer_in_nj_on_a_log_axis(tmp_path) -> None:
    rep = _report("cmos45", 1.0)
    fig = energy_figure(rep)
    ax_e, ax_s = fig.axes
    # per inference: totals / 4 samples, in nJ; bars by convention, then by layer
    totals = {"compute_pJ": (4e6, 0.0, 4e4, 0.0), "memory_pJ": (8e6, 2e4, 8e4, 4e3),
              "dense_ann_pJ": (6e6, 0.0, 1e5, 0.0)}
    want = [v / 4 / 1e3 for vals in totals.values() for v in vals]
    assert _heights(ax_e) == pytest.approx(want)
    assert ax_e.get_ylabel() == "energy per inference (nJ)"
    assert ax_e.get_yscale() == "log"                        # 2000 nJ vs 0.01 nJ
    assert "cmos45" in ax_e.get_title("left")
    assert _heights(ax_s) == pytest.approx([0.75])           # lif1 only (lif2 has none)
    assert "fraction of zero outputs" in ax_s.get_ylabel()
    assert any("paper of cmos45" in t.get_text() for t in fig.texts)
    plot_energy(rep, tmp_path / "e.png")
    assert (tmp_path / "e.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="report"):
        plot_energy({"layers": {}}, tmp_path / "f.png")


def test_targets_side_by_side_with_the_unpublished_one_named(tmp_path) -> None:
    reps = {"cmos45": _report("cmos45", 1.0), "loihi": _report("loihi", 5.0)}
    fig = energy_targets_figure(reps, {"loihi2": "no primary figure"},
                                {"loihi": "fc1 priced as synaptic ops"})
    ax_t, ax_l, ax_s = fig.axes
    per = {t: r["per_inference"] for t, r in reps.items()}
    unit, size = energy_unit([v for p in per.values() for v in p.values()])
    want = [per[t][k] / size if t in per else 0.0
            for k in ("compute_pJ", "memory_pJ", "dense_ann_pJ")
            for t in ("cmos45", "loihi", "loihi2")]
    assert _heights(ax_t) == pytest.approx(want)
    assert ax_t.get_ylabel() == f"energy per inference ({unit})" and unit == "µJ"
    assert ax_t.get_yscale() == "linear"                     # 10.5 µJ vs 2.1 µJ
    assert [t.get_text() for t in ax_t.get_xticklabels()] == ["cmos45", "loihi", "loihi2"]
    assert any("not" in t.get_text() and "published" in t.get_text() for t in ax_t.texts)
    # compute per layer and target: fc1, lif1, fc2, lif2 for cmos45 then for loihi
    lw = [v / 4 / 1e3 for s in (1.0, 5.0) for v in (4e6 * s, 0.0, 4e4 * s, 0.0)]
    assert _heights(ax_l) == pytest.approx(lw) and ax_l.get_yscale() == "log"
    assert "(nJ)" in ax_l.get_ylabel()
    assert _heights(ax_s) == pytest.approx([0.75])
    title = fig._suptitle.get_text()
    assert all(t in title for t in ("cmos45", "loihi", "loihi2", "4 samples"))
    notes = " ".join(t.get_text() for t in fig.texts)
    for words in ("paper of cmos45", "paper of loihi", "fc1 priced", "no primary figure"):
        assert words in notes
    plot_energy_targets(reps, tmp_path / "t.png", {"loihi2": "x"})
    assert (tmp_path / "t.png").stat().st_size > 0
    with pytest.raises(ValueError, match="reports"):
        energy_targets_figure({})
