"""Network checks split from test_fluctuations_network.py (so the two files run in parallel):
the variance at n = 10⁴ and the correlation time of m (statistics only, seeded)."""

from __future__ import annotations

import numpy as np
import pytest

import meanfield as mf
from tests.solvers.test_fluctuations_network import (
    SEEDS,
    STEPS_PER_TAU,
    _ensemble,
    _prediction,
    check_variance,
)


@pytest.mark.slow
def test_stationary_variance_of_m_at_ten_thousand_agents() -> None:
    check_variance("chemical_single", 100.0, 10_000)


@pytest.mark.slow
def test_correlation_time_matches_network_ensembles() -> None:
    """τ_c within 10 %: one population at γ = 100, where the autocorrelation of m is one
    exponential to 1 % (checked on the prediction), so ``τ = −Δ/log r(Δ)`` at ``Δ = τ_c/2``
    (the lag-Δ maximum-likelihood estimate of an exponential) estimates it; 20 seeds × 100 τ_c
    give a standard error of about 5 % (measured 5.2 %), so 10 % is two standard errors."""
    model = mf.models.chemical_single()
    gamma, n = 100.0, 1000
    state, fl = _prediction(model, gamma, method="dense")
    tau_c = float(fl.correlation_time["m"][0])
    lag = tau_c / 2
    lags = np.linspace(0, 3 * tau_c, 7)
    predicted = fl.autocovariance("m", lags)[:, 0, 0] / fl.m_var[0]
    np.testing.assert_allclose(predicted, np.exp(-lags / tau_c), atol=0.01)
    dt = tau_c / STEPS_PER_TAU
    m = _ensemble(model, gamma, n, state, dt=dt, burn=4 * tau_c, length=100 * tau_c,
                  spacing=lag)[:, :, 0]
    y = m - m.mean()
    r = np.mean(y[:, 1:] * y[:, :-1], axis=1) / np.mean(y**2, axis=1)
    per_seed = -lag / np.log(r)
    estimate, se = per_seed.mean(), per_seed.std(ddof=1) / np.sqrt(SEEDS)
    assert se < 0.06 * tau_c, (estimate, se, tau_c)
    assert abs(estimate - tau_c) < 0.1 * tau_c, (estimate, se, tau_c)
