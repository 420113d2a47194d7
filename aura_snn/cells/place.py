r"""Place cells: Gaussian spatial tuning followed by a sparse k-winners-take-all code.

Tuning (O'Keefe & Dostrovsky 1971; Gaussian fields as in most models since):

.. math::
    u_i(x) = \exp\!\left(-\frac{\lVert x - c_i \rVert^2}{2\sigma^2}\right), \qquad
    r_i(x) = r_\text{max}\, u_i(x)\, g_i(x)

Sparse code (CA1/CA3 codes are sparse, a few percent of cells active per place):

* ``mode="hard"`` — k-winners-take-all. The :math:`k = \operatorname{round}(s\,n)`
  largest :math:`u_i` per input keep their rate (:math:`g_i = 1`), the others are
  silenced (:math:`g_i = 0`). Ties are broken by :func:`torch.topk`, so exactly
  :math:`k` cells are active and the active fraction is :math:`k/n`, within
  :math:`0.5/n` of :math:`s` (0.5 percentage point for :math:`n \ge 100`).
  Gradients flow through the kept rates only.
* ``mode="soft"`` — a differentiable relaxation of kWTA: a global threshold
  :math:`\theta` (learnable; it plays the role of the k-th largest activation, i.e.
  of feedback inhibition) and a sigmoid gate of temperature :math:`T`,

  .. math::
      g_i = \operatorname{sigmoid}\!\left(\frac{u_i - \theta}{T}\right).

  A cell counts as *active* when :math:`u_i > \theta` (:math:`g_i > 1/2`). The
  sparsity penalty :func:`sparsity_penalty` is
  :math:`(\hat a - s)^2` where :math:`\hat a` takes the value of the measured active
  fraction and the gradient of the mean gate (a straight-through estimator,
  Bengio et al. 2013), so minimising it moves the *measured* fraction itself to the
  target rather than a temperature-dependent proxy.

Symbols: ``x`` :math:`x` input position (m for 2-D positions, or any embedding of
dimension :math:`d`, same unit as the centres), ``centres`` :math:`c_i` (same unit as
``x``), ``sigma`` :math:`\sigma` field width (same unit), ``r_max``
:math:`r_\text{max}` peak rate (Hz), ``sparsity`` :math:`s` target active fraction
(dimensionless, 0 < s <= 1), ``threshold`` :math:`\theta` (dimensionless, on the
normalised activation :math:`u \in (0, 1]`), ``temperature`` :math:`T`
(dimensionless, > 0). Output rates are in Hz, shape ``[..., n]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from .._checks import check_choice, check_in_range, check_int, check_positive, check_tensor
from ..errors import ParameterError, ShapeError

MODES = ("hard", "soft")


@dataclass(frozen=True)
class PlaceParams:
    """Parameters of a place-cell population (module docstring for the equations).

    Attributes:
        sigma: field width :math:`\\sigma` (m, or the unit of the input space), > 0.
        r_max: peak firing rate :math:`r_\\text{max}` (Hz), > 0.
        sparsity: target active fraction :math:`s` in (0, 1]; default 0.03 (3 %).
        temperature: soft-gate temperature :math:`T` (dimensionless), > 0.
    """

    sigma: float = 0.1
    r_max: float = 20.0
    sparsity: float = 0.03
    temperature: float = 0.05

    def __post_init__(self) -> None:
        check_positive("sigma", self.sigma, "m")
        check_positive("r_max", self.r_max, "Hz")
        check_in_range("sparsity", self.sparsity, 0.0, 1.0, low_inclusive=False)
        check_positive("temperature", self.temperature)


class PlaceOutput(NamedTuple):
    """What a place-cell population computes for one input (all ``[..., n]``).

    Attributes:
        rates: firing rates (Hz) after the sparse code.
        gate: :math:`g_i` in [0, 1] (exactly 0/1 in hard mode).
        active: boolean mask of the active cells.
    """

    rates: torch.Tensor
    gate: torch.Tensor
    active: torch.Tensor


def place_activation(x: torch.Tensor, centres: torch.Tensor, sigma: float | torch.Tensor
                     ) -> torch.Tensor:
    """Normalised Gaussian tuning :math:`u_i = \\exp(-\\lVert x - c_i\\rVert^2 / 2\\sigma^2)`.

    Args:
        x: inputs ``[..., d]`` (m or embedding units).
        centres: field centres ``[n, d]`` (same unit).
        sigma: field width (same unit), scalar or ``[n]``.

    Returns:
        ``[..., n]`` activations in (0, 1], dimensionless.
    """
    check_tensor("centres", centres, ndim=2)
    check_tensor("x", x)
    if x.dim() < 1 or x.shape[-1] != centres.shape[-1]:
        raise ShapeError(
            f"x must have shape [..., {centres.shape[-1]}] to match centres "
            f"{tuple(centres.shape)}, got {tuple(x.shape)}"
        )
    # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2 as a matmul (fast, no [..., n, d] tensor);
    # rounding is ~eps (||x||^2 + ||c||^2) absolute, so u has relative error
    # ~eps (||x||^2 + ||c||^2) / (2 sigma^2); clamped at 0
    sq_dist = (x.square().sum(-1, keepdim=True) - 2.0 * x @ centres.T
               + centres.square().sum(-1)).clamp_min(0.0)
    return torch.exp(-sq_dist / (2.0 * sigma * sigma))


def k_from_sparsity(n: int, sparsity: float) -> int:
    """Number of winners :math:`k = \\max(1, \\operatorname{round}(s\\,n))` for ``n`` cells."""
    n = check_int("n", n, minimum=1)
    check_in_range("sparsity", sparsity, 0.0, 1.0, low_inclusive=False)
    return max(1, min(n, round(sparsity * n)))


def kwta_gate(u: torch.Tensor, k: int) -> torch.Tensor:
    """Hard k-winners-take-all gate: 1 for the ``k`` largest entries of the last axis, else 0.

    Exactly ``k`` ones per row (ties broken by :func:`torch.topk`); same dtype as ``u``.
    """
    k = check_int("k", k, minimum=1)
    if k > u.shape[-1]:
        raise ShapeError(f"k must be <= the number of cells {u.shape[-1]}, got {k}")
    idx = torch.topk(u, k, dim=-1).indices
    return torch.zeros_like(u).scatter_(-1, idx, 1.0)


def soft_threshold_gate(u: torch.Tensor, threshold: torch.Tensor | float, temperature: float
                        ) -> torch.Tensor:
    """Relaxed kWTA :math:`g = \\operatorname{sigmoid}((u - \\theta) / T)` (differentiable in θ).

    ``threshold`` :math:`\\theta` and ``temperature`` :math:`T` are dimensionless.
    """
    return torch.sigmoid((u - threshold) / temperature)


def place_code(x: torch.Tensor, centres: torch.Tensor, p: PlaceParams, mode: str = "hard",
               threshold: torch.Tensor | float | None = None) -> PlaceOutput:
    """Rates of a place-cell population with its sparse code (module docstring).

    Args:
        x: inputs ``[..., d]`` (m or embedding units).
        centres: field centres ``[n, d]``.
        p: parameters.
        mode: ``"hard"`` (kWTA with k = round(sparsity n)) or ``"soft"`` (sigmoid gate).
        threshold: :math:`\\theta` for ``mode="soft"`` (dimensionless); ignored in hard mode.

    Returns:
        :class:`PlaceOutput` with rates in Hz, ``[..., n]``.
    """
    check_choice("mode", mode, MODES)
    u = place_activation(x, centres, p.sigma)
    if mode == "hard":
        gate = kwta_gate(u, k_from_sparsity(centres.shape[0], p.sparsity))
        active = gate > 0.5
    else:
        if threshold is None:
            raise ParameterError("threshold is required for mode='soft', got None")
        gate = soft_threshold_gate(u, threshold, p.temperature)
        active = u > threshold
    return PlaceOutput(p.r_max * u * gate, gate, active)


def active_fraction(active: torch.Tensor) -> torch.Tensor:
    """Measured active fraction: mean of a boolean ``active`` mask (0-d tensor)."""
    return active.to(torch.float32).mean()


def sparsity_penalty(gate: torch.Tensor, active: torch.Tensor, target: float) -> torch.Tensor:
    """Target-sparsity penalty :math:`(\\hat a - s)^2` with a straight-through active fraction.

    :math:`\\hat a = a + \\bar g - \\operatorname{sg}(\\bar g)` where :math:`a` is the
    measured active fraction of ``active``, :math:`\\bar g` the mean gate and sg stops
    gradients: its value is :math:`a`, its gradient that of :math:`\\bar g`.
    """
    check_in_range("target", target, 0.0, 1.0)
    mean_gate = gate.mean()
    a = active.to(gate.dtype).mean()
    a_hat = a + mean_gate - mean_gate.detach()
    return (a_hat - target).square()


class PlaceCells(nn.Module):
    """A population of ``n`` place cells with a sparse (kWTA) code.

    ``forward(x)`` maps inputs ``[..., d]`` (positions in m, or embeddings) to rates
    ``[..., n]`` in Hz via :func:`place_code`. Centres and sigma are buffers; in
    ``mode="soft"`` the threshold :math:`\\theta` is an ``nn.Parameter`` (initial value
    ``threshold``), trained with :meth:`sparsity_loss`. After each forward,
    :attr:`measured_sparsity` gives the active fraction of that call (a meter: it does
    not change outputs); :meth:`active_fraction` measures it for given inputs.

    Args:
        centres: field centres ``[n, d]`` (m or embedding units).
        params: :class:`PlaceParams`.
        mode: ``"hard"`` or ``"soft"``.
        threshold: initial :math:`\\theta` in (0, 1) for ``mode="soft"``.
    """

    def __init__(self, centres: torch.Tensor, params: PlaceParams | None = None,
                 mode: str = "hard", threshold: float = 0.5) -> None:
        super().__init__()
        check_tensor("centres", centres, ndim=2)
        self.params = params if params is not None else PlaceParams()
        self.mode = check_choice("mode", mode, MODES)
        self.register_buffer("centres", centres.detach().clone())
        if mode == "soft":
            check_in_range("threshold", threshold, 0.0, 1.0, False, False)
            self.threshold = nn.Parameter(torch.tensor(float(threshold), dtype=centres.dtype,
                                                       device=centres.device))
        else:
            self.threshold = None
        self._last_active: torch.Tensor | None = None

    @classmethod
    def uniform(cls, n: int, arena: tuple[float, float] = (1.0, 1.0),
                params: PlaceParams | None = None, mode: str = "hard", threshold: float = 0.5,
                generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
                device: torch.device | str | None = None) -> PlaceCells:
        """``n`` cells with centres drawn uniformly in the box ``[0, w] x [0, h]`` (m)."""
        n = check_int("n", n, minimum=1)
        check_positive("arena width", arena[0], "m")
        check_positive("arena height", arena[1], "m")
        size = torch.tensor(arena, dtype=dtype)
        centres = torch.rand(n, 2, generator=generator, dtype=dtype) * size
        return cls(centres.to(device), params, mode, threshold)

    @property
    def n(self) -> int:
        """Number of cells."""
        return int(self.centres.shape[0])

    def code(self, x: torch.Tensor) -> PlaceOutput:
        """Rates, gates and active mask for ``x`` ``[..., d]`` (see :func:`place_code`)."""
        check_tensor("x", x)
        centres = self.centres.to(x.dtype)
        out = place_code(x, centres, self.params, self.mode, self.threshold)
        self._last_active = active_fraction(out.active).detach()  # no device sync here
        return out

    @property
    def measured_sparsity(self) -> float:
        """Active fraction of the last forward call (NaN before the first call)."""
        return float("nan") if self._last_active is None else float(self._last_active)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rates (Hz) ``[..., n]`` for inputs ``x`` ``[..., d]``."""
        return self.code(x).rates

    def active_fraction(self, x: torch.Tensor) -> float:
        """Measured fraction of active cells over all inputs in ``x`` ``[..., d]``."""
        with torch.no_grad():
            return float(active_fraction(self.code(x).active))

    def sparsity_loss(self, x: torch.Tensor) -> torch.Tensor:
        """:func:`sparsity_penalty` towards ``params.sparsity`` for inputs ``x``."""
        out = self.code(x)
        return sparsity_penalty(out.gate, out.active, self.params.sparsity)

    def extra_repr(self) -> str:
        return f"n={self.n}, d={self.centres.shape[1]}, mode={self.mode!r}, {self.params}"
