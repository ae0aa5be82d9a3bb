"""The paired sweep (two populations' recurrences interleaved) against the single sweep and the
numpy twin."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from solvers.kernels import stage_numpy
from solvers.kernels_numba import evaluate, sweep, workspace_arrays


def _stage(P: int, Q: int, M: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    base = rng.normal(0.0, 3.0, (P, M - 1))
    slopes = rng.normal(0.0, 0.5, (P, Q, M - 1))
    m = rng.normal(size=Q)
    scale = rng.random((P, M - 1)) * M + 1.0
    widths = rng.random(M) / M + 1e-3
    weights = rng.normal(size=(P, M))
    rhs = rng.random((P, M))
    return base, slopes, m, scale, widths, weights, rhs


@pytest.mark.parametrize(("P", "Q", "M"), [(2, 2, 3000), (3, 2, 2500), (4, 5, 1500), (2, 1, 2)])
@pytest.mark.parametrize(("solve", "adjoint"), [(True, True), (True, False), (False, True)])
def test_paired_sweep_gives_the_numbers_of_single_sweeps(P, Q, M, solve, adjoint):
    """Same operations in the same order per population: equal to round-off (bit for bit unless
    the compiler contracts an expression into a fused multiply–add differently in the two
    functions; P odd: the last one by the single sweep; Q > 3: Jacobian levers stored and
    summed afterwards)."""
    base, slopes, m, scale, widths, weights, rhs = _stage(P, Q, M, seed=P * 100 + Q)
    kappa = 0.3
    start = np.random.default_rng(7).random((P, M))  # ρ read as given when solve is off
    single_rho, paired_rho = start.copy(), start.copy()
    single_jac, paired_jac = np.zeros((P, Q)), np.zeros((P, Q))
    single = np.empty((2, P))
    work = workspace_arrays(None, P, M)
    for p in range(P):
        single[:, p] = sweep(p, base, slopes, m, slopes, scale, widths, weights, kappa, rhs,
                             single_rho, work, solve, adjoint, single_jac)
    readout, magnitude = np.empty(P), np.empty(P)
    evaluate(base, slopes, m, slopes, scale, widths, weights, kappa, rhs, paired_rho, work, solve,
             adjoint, readout, magnitude, paired_jac)
    assert np.allclose(paired_rho, single_rho, rtol=1e-14, atol=0.0)
    assert np.allclose(readout, single[0], rtol=0.0, atol=1e-14 * single[1].max())
    assert np.allclose(magnitude, single[1], rtol=1e-14, atol=0.0)
    assert np.allclose(paired_jac, single_jac, rtol=0.0, atol=1e-12 * np.abs(single_jac).max())
    if adjoint:
        assert np.abs(paired_jac).max() > 0


@pytest.mark.parametrize("P", [2, 3])
def test_paired_sweep_agrees_with_the_numpy_twin(P):
    """ρ, readouts and Jacobian of the paired kernel against LAPACK-based numpy, to round-off."""
    Q, M = 2, 800
    base, slopes, m, scale, widths, weights, rhs = _stage(P, Q, M, seed=11 + P)
    kappa = 0.05
    rho, readout, magnitude, jac = np.empty((P, M)), np.empty(P), np.empty(P), np.zeros((P, Q))
    evaluate(base, slopes, m, slopes, scale, widths, weights, kappa, rhs, rho,
             workspace_arrays(None, P, M), True, True, readout, magnitude, jac)
    delta = base + np.einsum("q,pqe->pe", m, slopes)
    plain_rho, plain_readout, plain_magnitude, plain_jac = stage_numpy(
        delta, slopes, scale, widths, weights, kappa, rhs)
    assert np.allclose(rho, plain_rho, rtol=1e-12, atol=0.0)
    assert np.allclose(readout, plain_readout, rtol=1e-11, atol=1e-12 * magnitude.max())
    assert np.allclose(magnitude, plain_magnitude, rtol=1e-12)
    assert np.allclose(jac, plain_jac, rtol=1e-9, atol=1e-11 * np.abs(plain_jac).max())
