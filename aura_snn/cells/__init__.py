"""Hippocampal populations: place, grid and time cells, and the theta-gamma code.

Each population is an ``nn.Module`` mapping its per-step input to rates ``[..., n]``
in Hz, built on a pure function in the same file (one source of truth per equation):

* :class:`PlaceCells` — Gaussian fields + k-winners-take-all (hard, or a learnable
  relaxed threshold with a target-sparsity penalty), positions in m or embeddings.
* :class:`GridCells` — three-cosine hexagonal maps in modules, path integration of a
  velocity input with explicit state; :func:`rate_map` and :func:`gridness` measure them.
* :class:`TimeCells` — log-spaced, scale-invariant fields in time since an event.
* :class:`ThetaGammaEncoding` — theta-gamma positional code for transformers
  (normalised values in [-1, 1], not rates).
"""

from __future__ import annotations

from .grid import (
    GridCells,
    GridParams,
    GridState,
    Trajectory,
    grid_rates,
    lattice_basis,
    path_integrate,
    path_integrate_sequence,
    random_walk,
    spread_offsets,
    wave_vectors,
)
from .gridness import (
    GridnessResult,
    autocorrelogram,
    gaussian_smooth,
    gridness,
    gridness_analysis,
    rate_map,
    rotate,
)
from .place import (
    PlaceCells,
    PlaceOutput,
    PlaceParams,
    active_fraction,
    k_from_sparsity,
    kwta_gate,
    place_activation,
    place_code,
    soft_threshold_gate,
    sparsity_penalty,
)
from .theta_gamma import (
    ThetaGammaEncoding,
    ThetaGammaParams,
    cycle_and_slot,
    theta_gamma_code,
    theta_gamma_encoding,
)
from .time_cells import (
    TimeCellParams,
    TimeCells,
    TimeCellState,
    preferred_times,
    time_cell_rates,
    time_since_event_step,
)

__all__ = [
    "GridCells", "GridParams", "GridState", "Trajectory", "grid_rates", "lattice_basis",
    "path_integrate", "path_integrate_sequence", "random_walk", "spread_offsets",
    "wave_vectors",
    "GridnessResult", "autocorrelogram", "gaussian_smooth", "gridness", "gridness_analysis",
    "rate_map", "rotate",
    "PlaceCells", "PlaceOutput", "PlaceParams", "active_fraction", "k_from_sparsity",
    "kwta_gate", "place_activation", "place_code", "soft_threshold_gate", "sparsity_penalty",
    "ThetaGammaEncoding", "ThetaGammaParams", "cycle_and_slot", "theta_gamma_code",
    "theta_gamma_encoding",
    "TimeCellParams", "TimeCells", "TimeCellState", "preferred_times", "time_cell_rates",
    "time_since_event_step",
]
