"""Peer-convention conversions: round trips and Loihi's 12-bit decays."""

from __future__ import annotations

import math

import pytest

from aura_snn.errors import ParameterError
from aura_snn.functional import conventions as C


def test_beta_round_trip_and_value() -> None:
    beta = C.beta_from_tau(20e-3, 1e-3)
    assert beta == pytest.approx(math.exp(-1 / 20), rel=1e-15)
    assert C.tau_from_beta(beta, 1e-3) == pytest.approx(20e-3, rel=1e-12)
    assert C.tau_from_beta(0.95, 1e-3, "euler") == pytest.approx(1e-3 / 0.05)


def test_norse_and_spikingjelly_units() -> None:
    assert C.tau_inv_from_tau(5e-3) == pytest.approx(200.0)
    assert C.tau_from_tau_inv(200.0) == pytest.approx(5e-3)
    assert C.tau_steps_from_tau(20e-3, 1e-3) == pytest.approx(20.0)
    assert C.tau_from_tau_steps(2.0, 1e-3) == pytest.approx(2e-3)


def test_loihi_decay_quantisation_error_is_half_an_lsb() -> None:
    for tau in (2e-3, 5e-3, 20e-3, 100e-3, 1.0):
        d = C.loihi_decay_from_tau(tau, 1e-3)
        assert 0 <= d <= 4096
        assert abs(C.decay_from_loihi(d) - math.exp(-1e-3 / tau)) <= 0.5 / 4096 + 1e-15


def test_invalid() -> None:
    with pytest.raises(ParameterError, match="beta must lie in"):
        C.tau_from_beta(1.0, 1e-3)
    with pytest.raises(ParameterError, match="dt must be smaller than tau"):
        C.beta_from_tau(1e-4, 1e-3)
    with pytest.raises(ParameterError, match="d must lie in"):
        C.decay_from_loihi(5000)
