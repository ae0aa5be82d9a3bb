"""The initial layer of the zoomed solver against the exact Gaussian transient of an OU model.

With affine drift ``f_p = −α_p(x − μ_p)``, coupling ``Φ_pq = x − E_q`` and readout
``Ψ_q = 1 + k_q x`` (``meanfield.models.linear_ou``), a Gaussian stays Gaussian and its mean and
variance obey closed linear ODEs: ``mean' = −a mean + b``, ``var' = −2a var + 2D`` with
``a_p = α_p + γ Σ_q g_pq m_q``, ``b_p = α_p μ_p + γ Σ_q g_pq m_q E_q``, ``m_q = 1 + k_q mean_q``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import meanfield as mf
from meanfield.errors import ResolutionWarning
from solvers.limits import balance_points
from solvers.rescaled import Gaussian, solve_rescaled

ALPHA, MU, E, K = np.array([1.0, 2.0]), np.array([0.5, -0.5]), np.array([1.5, -1.0]), 0.1


def _exact(model, gamma, mean0, var0, times):
    g, D = np.array(model.g, dtype=float), np.array(model.diffusion)

    def rhs(_t, u):
        mean, var = u[:2], u[2:]
        m = 1 + K * mean
        a = ALPHA + gamma * (g @ m)
        b = ALPHA * MU + gamma * (g @ (m * E))
        return np.concatenate([-a * mean + b, -2 * a * var + 2 * D])

    out = solve_ivp(rhs, (0.0, times[-1]), np.concatenate([mean0, var0]), method="Radau",
                    t_eval=times, rtol=1e-12, atol=1e-30)
    return out.y[:2].T, out.y[2:].T


@pytest.mark.parametrize("gamma", [1e4, 1e6, 1e9])
def test_variance_is_exact_through_the_initial_layer_with_default_settings(gamma):
    # 30 concentration widths off the balance point and 4 wide: the former solver (window on
    # the balance point) was 32-47 % off in the variance here, without a warning
    model = mf.models.linear_ou()
    point = next(b for b in balance_points(model) if b.stable)
    width = np.sqrt(np.array(model.diffusion) / (gamma * point.slope))
    start, spread = point.v + 30 * width, 4 * width
    times = np.array([0.0, 0.05, 0.2, 0.5, 1.0, 2.0, 4.0]) / (gamma * point.slope.min())
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResolutionWarning)  # resolved: no warning either
        sol = solve_rescaled(model, gamma=gamma, t_final=times[-1], save_at=times,
                             initial=[Gaussian(c, s) for c, s in zip(start, spread, strict=True)])
    mean, var = _exact(model, gamma, start, spread**2, times)
    np.testing.assert_allclose(sol.t, times, rtol=1e-12)
    assert np.max(np.abs(sol.var / var - 1)) < 1e-2
    assert np.max(np.abs(sol.mean - mean) / width) < 1e-3
    np.testing.assert_allclose(sol.mass, 1.0, atol=1e-12)
    # the window follows the profile: little flow across the cells, so little smearing
    assert sol.info["variance_error"].max() < 1e-3
