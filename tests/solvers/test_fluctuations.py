"""Linear-noise fluctuations: exact invariants, two-method agreements and network ensembles."""

from __future__ import annotations

import numpy as np
import pytest

import meanfield as mf
import solvers
from meanfield.numeric import numeric
from solvers.lyapunov import (
    multinomial,
    noise_system,
    stationary_covariance,
    stationary_covariance_modes,
    zero_mass_basis,
)
from solvers.stationary import GibbsMap


@pytest.fixture(scope="module")
def single() -> mf.Model:
    return mf.models.chemical_single()


def _stable(model: mf.Model, gamma: float, cells: int) -> solvers.StationaryState:
    return next(s for s in solvers.stationary_states(model, gamma=gamma, cells=cells) if s.stable)


def test_zero_coupling_gives_the_multinomial_covariance() -> None:
    model = mf.models.chemical()
    fl = solvers.fluctuations(model, 0.0, cells=60)
    masses = (fl.rho * np.diff(fl.edges)).ravel()
    assert np.max(np.abs(fl.covariance - multinomial(masses, 2))) < 1e-10
    psi = fl.system.psi
    exact = psi.T @ multinomial(masses, 2) @ psi
    assert np.max(np.abs(fl.m_cov - exact)) < 1e-10
    assert abs(fl.m_cov[0, 1]) < 1e-12  # independent populations


def test_zero_coupling_transient_stays_multinomial(single: mf.Model) -> None:
    state = _stable(single, 0.0, 50)
    sol = solvers.solve(single, gamma=0.0, t_final=0.5, cells=50, initial=state.rho,
                        save_at=np.linspace(0, 0.5, 6))
    tr = solvers.transient_fluctuations(sol)
    masses = (sol.rho[0, 0] * sol.grid.h)
    assert np.max(np.abs(tr.covariance - multinomial(masses, 1)[None])) < 1e-9
    ds = tr.to_xarray()
    for name, var in ds.data_vars.items():
        assert {"long_name", "units", "description"} <= set(var.attrs), name
    np.testing.assert_allclose(ds["m_var"].values, tr.m_var)


def test_basis_is_orthonormal_and_mass_free() -> None:
    V = zero_mass_basis(2, 7)
    assert np.allclose(V.T @ V, np.eye(12), atol=1e-14)
    ones = np.zeros((14, 2))
    ones[:7, 0] = ones[7:, 1] = 1
    assert np.max(np.abs(ones.T @ V)) < 1e-14


def test_mass_is_conserved_by_the_linearised_dynamics() -> None:
    model = mf.models.chemical()
    state = _stable(model, 5.0, 40)
    system = noise_system(GibbsMap(numeric(model), state.grid, 5.0), state.rho, state.m)
    ones = np.zeros((80, 2))
    ones[:40, 0] = ones[40:, 1] = 1
    assert np.max(np.abs(ones.T @ system.A)) < 1e-10 * np.abs(system.A).max()
    assert np.max(np.abs(ones.T @ system.Q)) < 1e-12 * np.abs(system.Q).max()


def test_spectrum_at_zero_is_twice_the_integrated_autocovariance() -> None:
    model = mf.models.chemical()
    fl = solvers.fluctuations(model, 10.0, cells=80, tau=np.linspace(0, 0.5, 6),
                              omega=[0.0, 3.0])
    for name in ("m", "mean"):
        two_tau_var = 2 * fl.correlation_time[name] * fl.var[name]
        np.testing.assert_allclose(fl.spectrum[name][0], two_tau_var, rtol=1e-8)
        assert np.all(fl.spectrum[name][1] < fl.spectrum[name][0])
        np.testing.assert_allclose(fl.autocorrelation[name][0], 1.0, rtol=1e-12)
    # uneven lags take the per-lag exponential; both paths agree
    uneven = fl.autocovariance("m", [0.3, 0.1])
    even = fl.autocovariance("m", np.linspace(0, 0.5, 6))
    np.testing.assert_allclose(uneven[1], even[1], rtol=1e-9)
    np.testing.assert_allclose(uneven[0], even[3], rtol=1e-9)


def test_result_protocol(tmp_path) -> None:
    xr = pytest.importorskip("xarray")
    fl = solvers.fluctuations(mf.models.chemical_single(), 10.0, cells=60,
                              tau=np.linspace(0, 0.3, 4), omega=[0.0, 1.0])
    ds = fl.to_xarray()
    for name, var in ds.data_vars.items():
        assert {"long_name", "units", "description"} <= set(var.attrs), name
    fl.save(tmp_path / "f.nc")
    back = xr.open_dataset(tmp_path / "f.nc")
    np.testing.assert_allclose(back["m_var"].values, fl.m_var)
    back.close()
    assert "n·Var(m)" in repr(fl)


def test_transient_is_second_order_in_time(single: mf.Model) -> None:
    sol = solvers.solve(single, gamma=5.0, t_final=0.5, cells=100, save_at=np.linspace(0, 0.5, 11))
    runs = [solvers.transient_fluctuations(sol, substeps=s, observables="m").m_var
            for s in (1, 2, 4)]
    e1, e2 = np.max(np.abs(runs[0] - runs[2])), np.max(np.abs(runs[1] - runs[2]))
    order = np.log2((e1 - e2) / e2)
    assert 1.7 < order < 2.3, order


def test_transient_reaches_the_stationary_prediction(single: mf.Model) -> None:
    gamma = 10.0
    state = _stable(single, gamma, 150)
    sol = solvers.solve(single, gamma=gamma, t_final=1.5, cells=150, initial=state.rho,
                        save_at=np.linspace(0, 1.5, 31))
    tr = solvers.transient_fluctuations(sol)
    fl = solvers.fluctuations(single, gamma, state=state)
    np.testing.assert_allclose(tr.m_var[-1], fl.m_var, rtol=2e-3)
    np.testing.assert_allclose(tr.mean_var[-1], fl.mean_var, rtol=2e-3)


def test_transient_against_network_ensembles(single: mf.Model) -> None:
    gamma, n, seeds = 5.0, 500, 80
    sol = solvers.solve(single, gamma=gamma, t_final=1.0, cells=100,
                        save_at=np.linspace(0, 1, 26))
    tr = solvers.transient_fluctuations(sol, observables="m")
    ms = np.array([solvers.simulate_network(single, gamma=gamma, n=n, t_final=1.0, dt=2e-3,
                                            seed=s, scheme="ou", save_at=[0.1, 1.0]).m[:, 0]
                   for s in range(seeds)])
    var = n * ms.var(axis=0, ddof=1)
    se = var * np.sqrt(2 / (seeds - 1))
    predicted = tr.m_var[[2, -1], 0]
    assert np.all(np.abs(var - predicted) < 3 * se), (var, se, predicted)


def test_bad_input(single: mf.Model) -> None:
    with pytest.raises(ValueError, match="observables"):
        solvers.fluctuations(single, 1.0, cells=20, observables=("m", "var"))
    with pytest.raises(TypeError, match="model"):
        solvers.fluctuations("single", 1.0)
    with pytest.raises(ValueError, match="P·M <= 4000"):
        solvers.fluctuations(single, 1.0, cells=5000, method="dense")
    state = _stable(single, 1.0, 20)
    with pytest.raises(ValueError, match="gamma=2"):
        solvers.fluctuations(single, 2.0, state=state)
    with pytest.raises(ValueError, match="cells"):
        solvers.fluctuations(single, 1.0, state=state, cells=30)
    with pytest.raises(ValueError, match="state"):  # bistable: two stable states
        solvers.fluctuations(single, 2.5, cells=40)
    with pytest.raises(TypeError, match="solution"):
        solvers.transient_fluctuations(state)
    fl = solvers.fluctuations(single, 1.0, state=state, observables="m")
    with pytest.raises(ValueError, match="name"):
        fl.autocovariance("mean", [0.0])
    with pytest.raises(ValueError, match="tau"):
        fl.autocovariance("m", [-1.0])


def test_unresolved_grid_warns(single: mf.Model) -> None:
    with pytest.warns(solvers.ResolutionWarning, match="cells"):
        solvers.fluctuations(single, 100.0, cells=60, observables="m")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", solvers.ResolutionWarning)
        solvers.fluctuations(single, 1.0, cells=200, observables="m")


@pytest.mark.parametrize(("name", "gamma"), [("chemical", 10.0), ("current_balanced", 10.0),
                                         ("chemical_single", 100.0)])
def test_reversible_modes_agree_with_bartels_stewart(name: str, gamma: float) -> None:
    model = getattr(mf.models, name)()
    state = _stable(model, gamma, 80)
    system = noise_system(GibbsMap(numeric(model), state.grid, gamma), state.rho, state.m)
    dense, _ = stationary_covariance(system)
    modes = stationary_covariance_modes(system)
    assert np.max(np.abs(modes - dense)) < 1e-10 * np.max(np.abs(dense))
    residual = system.A @ modes + modes @ system.A.T + system.Q
    assert np.max(np.abs(residual)) < 1e-9 * np.max(np.abs(system.Q))
