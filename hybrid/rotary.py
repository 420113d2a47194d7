r"""Rotary position embedding (RoPE, Su et al. 2021) for queries and keys.

A head vector :math:`x \in \mathbb{R}^{d_h}` (``d_h`` even) is read as :math:`d_h/2` complex
numbers :math:`z_i = x_i + \mathrm{i}\, x_{i + d_h/2}` (the "half split" pairing) and
position :math:`m` multiplies each by a phase:

.. math::
    z_i \mapsto z_i\, e^{\mathrm{i} m \omega_i}, \qquad \omega_i = b^{-2i/d_h},
    \quad i = 0 .. d_h/2 - 1,

i.e. :math:`x'_i = x_i\cos m\omega_i - x_{i+d_h/2}\sin m\omega_i` and
:math:`x'_{i+d_h/2} = x_i\sin m\omega_i + x_{i+d_h/2}\cos m\omega_i`. Because each pair is
rotated, :math:`\langle R_m q, R_n k\rangle = \mathrm{Re}\sum_i q_i \bar k_i
e^{\mathrm{i}(m-n)\omega_i}` depends on positions only through :math:`m - n`: attention
scores are relative, and keys rotated once can be cached.

Symbols: ``base`` :math:`b` (dimensionless, > 1), positions :math:`m` (token index),
angles in radians. Angles are computed in float64 and cast to the input's dtype.
"""

from __future__ import annotations

import torch

from aura_snn.errors import ParameterError, ShapeError


def rotary_angles(positions: torch.Tensor, head_dim: int, base: float = 10000.0) -> torch.Tensor:
    """Angles :math:`m\\,\\omega_i` ``[L, head_dim/2]`` (rad, float64) of integer
    ``positions`` ``[L]``."""
    if head_dim % 2 or head_dim < 2:
        raise ParameterError(f"head_dim must be even and >= 2 for rotary positions, "
                             f"got {head_dim}")
    if positions.is_floating_point() or positions.dim() != 1:
        raise ParameterError(f"positions must be a 1-d integer tensor, got dtype "
                             f"{positions.dtype}, shape {tuple(positions.shape)}")
    wd = torch.float32 if positions.device.type == "mps" else torch.float64
    i = torch.arange(head_dim // 2, dtype=wd, device=positions.device)
    omega = float(base) ** (-2.0 * i / head_dim)
    return positions.to(wd).unsqueeze(-1) * omega


def rotary_tables(positions: torch.Tensor, head_dim: int, base: float,
                  dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cos, sin)`` ``[L, head_dim/2]`` of :func:`rotary_angles`, in ``dtype``."""
    a = rotary_angles(positions, head_dim, base)
    return torch.cos(a).to(dtype), torch.sin(a).to(dtype)


def full_tables(cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``(C, S)`` ``[L, d_h]`` with :math:`C = [\cos, \cos]`, :math:`S = [-\sin, \sin]`
    (halves), so that :math:`x' = x \odot C + \mathrm{swap}(x) \odot S` with
    :math:`\mathrm{swap}([x_1, x_2]) = [x_2, x_1]`: the rotation of the module docstring
    in four elementwise kernels instead of seven, equal to it bit for bit (the same
    products; :math:`a + (-b) = a - b` and :math:`a + b = b + a` exactly). Build them once
    per forward and pass them to :func:`rotate`."""
    return torch.cat((cos, cos), dim=-1), torch.cat((-sin, sin), dim=-1)


def rotate(x: torch.Tensor, c: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` ``[..., L, d_h]`` by the :func:`full_tables` ``c, s`` ``[L, d_h]``."""
    if x.shape[-2:] != c.shape:
        raise ShapeError(f"x must have shape [..., {c.shape[0]}, {c.shape[1]}] to match the "
                         f"rotary tables, got {tuple(x.shape)}")
    return x * c + x.roll(c.shape[-1] // 2, dims=-1) * s


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` ``[..., L, d_h]`` by the tables ``[L, d_h/2]`` (module docstring)."""
    half = cos.shape[-1]
    if x.shape[-1] != 2 * half or x.shape[-2] != cos.shape[0]:
        raise ShapeError(f"x must have shape [..., {cos.shape[0]}, {2 * half}] to match the "
                         f"rotary tables, got {tuple(x.shape)}")
    return rotate(x, *full_tables(cos, sin))
