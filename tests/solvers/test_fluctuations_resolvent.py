"""The resolvent method (few observables, any size) against the dense Lyapunov solve."""

from __future__ import annotations

import numpy as np
import pytest

import meanfield as mf
import solvers
from solvers.fluctuations_resolvent import resolvent_moments


def _stable(model: mf.Model, gamma: float, cells: int) -> solvers.StationaryState:
    return next(s for s in solvers.stationary_states(model, gamma=gamma, cells=cells) if s.stable)


@pytest.mark.parametrize(("name", "gamma", "cells"), [("chemical", 10.0, 200),
                                                      ("current_balanced", 1.0, 150),
                                                      ("chemical_single", 100.0, 300)])
def test_resolvent_agrees_with_the_dense_solve(name: str, gamma: float, cells: int) -> None:
    model = getattr(mf.models, name)()
    state = _stable(model, gamma, cells)
    omega = [0.0, 0.5, 7.0]
    dense = solvers.fluctuations(model, gamma, state=state, method="dense", omega=omega)
    sparse = solvers.fluctuations(model, gamma, state=state, method="resolvent", omega=omega)
    assert sparse.info["method"] == "resolvent"
    assert sparse.covariance.shape == (0, 0)
    for key in ("m", "mean"):
        scale = np.max(np.abs(dense.cov[key]))
        assert np.max(np.abs(sparse.cov[key] - dense.cov[key])) < 1e-8 * scale, key
        np.testing.assert_allclose(sparse.correlation_time[key], dense.correlation_time[key],
                                   rtol=1e-8)
        np.testing.assert_allclose(sparse.spectrum[key], dense.spectrum[key], rtol=1e-8)
    np.testing.assert_allclose(sparse.power_spectrum("m", [3.0]), dense.power_spectrum("m", [3.0]),
                               rtol=1e-8, atol=1e-14)


def test_auto_switches_to_the_resolvent_beyond_the_dense_limit() -> None:
    """4100 cells (beyond DENSE_LIMIT): second-order grid convergence towards the fine value."""
    model = mf.models.chemical_single()
    gamma = 10.0
    values = {}
    for cells in (250, 500, 4100):
        fl = solvers.fluctuations(model, gamma, cells=cells, observables="m")
        assert fl.info["method"] == ("resolvent" if cells == 4100 else "dense")
        values[cells] = np.array([fl.m_var[0], fl.correlation_time["m"][0]])
    e1, e2 = np.abs(values[250] - values[4100]), np.abs(values[500] - values[4100])
    order = np.log2(e1 / e2)
    assert np.all(np.abs(order - 2) < 0.3), order


def test_resolvent_result_round_trips(tmp_path) -> None:
    pytest.importorskip("xarray")
    model = mf.models.chemical_single()
    fl = solvers.fluctuations(model, 10.0, cells=200, method="resolvent", omega=[0.0, 2.0])
    fl.save(tmp_path / "r.nc")
    back = solvers.load(tmp_path / "r.nc")
    np.testing.assert_allclose(back.m_var, fl.m_var, rtol=1e-14)
    np.testing.assert_allclose(back.power_spectrum("m", [2.0]), fl.power_spectrum("m", [2.0]),
                               rtol=1e-12)
    assert back.info["method"] == "resolvent"


def test_resolvent_bad_input() -> None:
    model = mf.models.chemical_single()
    state = _stable(model, 10.0, 100)
    with pytest.raises(ValueError, match="method"):
        solvers.fluctuations(model, 10.0, state=state, method="krylov")
    with pytest.raises(ValueError, match="tau"):
        solvers.fluctuations(model, 10.0, state=state, method="resolvent", tau=[0.0, 0.1])
    with pytest.raises(ValueError, match="P·M <= 4000"):
        solvers.fluctuations(model, 10.0, cells=5000, method="dense")
    fl = solvers.fluctuations(model, 10.0, state=state, method="resolvent")
    with pytest.raises(ValueError, match="method='dense'"):
        fl.autocovariance("m", [0.1])
    with pytest.raises(ValueError, match="omega"):
        fl.power_spectrum("m", [0.0])
    with pytest.raises(ValueError, match="omega"):
        solvers.fluctuations(model, 10.0, state=state, method="resolvent", omega=[-1.0])
    with pytest.raises(ValueError, match="rtol=1e-16"):  # below the rounding floor
        resolvent_moments(fl.system, fl.system.bands.psi, rtol=1e-16, max_halvings=1)


def test_compiled_banded_solves_agree_with_the_numpy_twin_and_solve_the_system() -> None:
    pytest.importorskip("numba")
    from solvers.fluctuations_numba import shifted_solve
    from solvers.fluctuations_resolvent import shifted_solve_numpy

    rng = np.random.default_rng(3)
    P, M, k = 2, 37, 3
    lower, upper = rng.uniform(0.1, 2.0, (P, M - 1)), rng.uniform(0.1, 2.0, (P, M - 1))
    diag = np.zeros((P, M))  # a generator: columns of L sum to zero
    diag[:, :-1] -= lower
    diag[:, 1:] -= upper
    rhs = rng.normal(size=(P * M, k)) + 1j * rng.normal(size=(P * M, k))
    omega = np.array([0.3, 1.0, 17.0])
    fast = shifted_solve(omega, diag, lower, upper, rhs)
    np.testing.assert_allclose(fast, shifted_solve_numpy(omega, diag, lower, upper, rhs),
                               rtol=1e-12, atol=1e-14)
    for p in range(P):  # (−iω − Lᵀ) x = rhs, Lᵀ assembled densely
        L = np.diag(diag[p]) + np.diag(lower[p], -1) + np.diag(upper[p], 1)
        for w, om in enumerate(omega):
            x = fast[w, p * M:(p + 1) * M]
            np.testing.assert_allclose((-1j * om * np.eye(M) - L.T) @ x,
                                       rhs[p * M:(p + 1) * M], atol=1e-12)
