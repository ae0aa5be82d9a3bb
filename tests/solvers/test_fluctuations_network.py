"""The linear-noise prediction against seeded network ensembles at stationarity.

Statistics only (never seeded values): ``n·Var(m_q)`` from time averages over ``S`` seeds, the
seed-to-seed standard error, and the correlation time of ``m``. The networks use the
``"ou"`` scheme, whose stationary variance carries a first-order step bias: measured
``|bias| ≈ 1.9 Δt/τ`` (E/I ``chemical`` at γ = 100: −17 % at ``Δt = τ/10``, −3 % at ``τ/40``;
γ = 1: +13 % and −5 %), so the tolerance is ``3 SE + 2.5 Δt/τ_min`` relative.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import meanfield as mf
import solvers

SEEDS = 20
STEPS_PER_TAU = 20
BIAS_PER_STEP = 2.5  # relative stationary-variance bias per Δt/τ_min of the "ou" scheme


def _prediction(model: mf.Model, gamma: float, *, method: str = "resolvent"
                ) -> tuple[solvers.StationaryState, solvers.Fluctuations]:
    """The prediction on a grid that resolves the state (1600 cells per population)."""
    state = next(s for s in solvers.stationary_states(model, gamma=gamma, cells=1600) if s.stable)
    with warnings.catch_warnings():
        warnings.simplefilter("error", solvers.ResolutionWarning)
        fl = solvers.fluctuations(model, gamma, state=state, observables="m", method=method)
    return state, fl


def _ensemble(model: mf.Model, gamma: float, n: int, state: solvers.StationaryState,
              *, dt: float, burn: float, length: float, spacing: float) -> np.ndarray:
    """m(t) (S, nt, P) after ``burn`` on each seed (the initial iid sample is not stationary)."""
    runs = [solvers.simulate_network(model, gamma=gamma, n=n, t_final=burn + length, dt=dt,
                                     seed=seed, initial=state, scheme="ou", bins=4,
                                     save_at=np.arange(burn, burn + length + 1e-9, spacing)).m
            for seed in range(SEEDS)]
    return np.array(runs)


CASES = [(name, gamma, 1000) for name in ("chemical_single", "chemical", "current_balanced")
         for gamma in (1.0, 10.0, 100.0)]  # n = 10⁴: test_fluctuations_network_time.py


@pytest.mark.slow
@pytest.mark.parametrize(("name", "gamma", "n"), CASES)
def test_stationary_variance_of_m_matches_network_ensembles(name: str, gamma: float,
                                                            n: int) -> None:
    check_variance(name, gamma, n)


def check_variance(name: str, gamma: float, n: int) -> None:
    """n·Var(m_q) of ``S`` seeds within 3 standard errors plus the step bias."""
    model = getattr(mf.models, name)()
    state, fl = _prediction(model, gamma)
    tau = fl.correlation_time["m"]
    dt = float(tau.min()) / STEPS_PER_TAU
    m = _ensemble(model, gamma, n, state, dt=dt, burn=4 * tau.max(), length=45 * tau.max(),
                  spacing=float(tau.min()) / 2)
    y = m - m.mean(axis=(0, 1))  # grand mean: no per-seed centring bias
    per_seed = n * np.mean(y**2, axis=1)  # (S, P)
    var = per_seed.mean(axis=0)
    se = per_seed.std(axis=0, ddof=1) / np.sqrt(SEEDS)
    assert np.all(se < 0.065 * var), se / var  # enough seeds for about a 5 % standard error
    bias = BIAS_PER_STEP * dt / tau.min() * fl.m_var
    assert np.all(np.abs(var - fl.m_var) < 3 * se + bias), (var, se, fl.m_var)
