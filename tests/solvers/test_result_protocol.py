"""Every result type: ``to_xarray`` with CF metadata, ``save`` and ``solvers.load`` round trips."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import solvers
from meanfield import models

VOLATILE = {"created"}  # the only dataset attribute allowed to differ after a round trip


def _solution() -> Any:
    model = models.linear_ou()
    grid = solvers.Grid.uniform(*model.domain, 8)
    bump = np.exp(-grid.x**2)
    rho = np.stack([np.stack([bump, bump[::-1]]) * (1 + k) for k in range(3)])
    rho /= (rho @ grid.h)[..., None]
    return solvers.Solution.from_densities(model, 3.0, "sg", grid, [0.0, 0.1, 0.2], rho,
                                           info={"steps": 7, "scheme": "bdf2"})


def _state() -> Any:
    states = solvers.stationary_states(models.chemical_single(), gamma=2.5, cells=60)
    assert len(states) == 3
    assert all(s.eigenvalues is not None for s in states)
    return states[1]


def _branch() -> Any:
    branches = solvers.continuation(models.chemical_single(), np.linspace(1.0, 2.0, 3), cells=60)
    return branches[0]


def _network() -> Any:
    return solvers.simulate_network(models.chemical(), gamma=2.0, n=[30, 20], t_final=0.05,
                                    dt=0.01, seed=3, bins=12, fast=False)


def _fhn_pde() -> Any:
    from meanfield.fhn import GaussianStart, fhn_electrical

    with warnings.catch_warnings():  # a coarse grid on purpose: this tests storage, not accuracy
        warnings.simplefilter("ignore", solvers.ResolutionWarning)
        return solvers.solve_fhn_pde(fhn_electrical(regime="excitable", sigma=0.5), gamma=1.0,
                                     t_final=0.04, nv=12, nw=10, dt=0.02, w_range=(-1.8, 0.8),
                                     initial=GaussianStart(v=0.0, w=-0.6, v_std=0.6, w_std=0.4))


def _fhn_native() -> Any:
    from meanfield.fhn import GaussianStart, fhn_electrical

    with warnings.catch_warnings():  # a coarse grid on purpose: this tests storage, not accuracy
        warnings.simplefilter("ignore", solvers.ResolutionWarning)
        return solvers.solve_fhn_native(fhn_electrical(regime="excitable", sigma=0.5), gamma=1.0,
                                        t_final=0.04, nv=12, nw=10, w_range=(-1.8, 0.8),
                                        save_at=[0.0, 0.02, 0.04],
                                        initial=GaussianStart(v=0.0, w=-0.6, v_std=0.6,
                                                              w_std=0.4))


def _fhn_network() -> Any:
    from meanfield.fhn import fhn_chemical

    return solvers.simulate_fhn_network(fhn_chemical(), gamma=2.0, n=[15, 10], t_final=0.05,
                                        dt=0.01, seed=4, fast=False)


def _ensemble() -> Any:
    from solvers.network_ensemble import network_ensemble

    return network_ensemble(models.chemical(), seeds=[1, 2, 5], gamma=2.0, n=20, t_final=0.03,
                            dt=0.01, bins=8, fast=False)


def _fluctuations() -> Any:
    with warnings.catch_warnings():  # a coarse grid on purpose: this tests storage, not accuracy
        warnings.simplefilter("ignore", solvers.ResolutionWarning)
        return solvers.fluctuations(models.chemical(), 2.0, cells=20, tau=[0.0, 0.1, 0.3],
                                    omega=[0.0, 1.0])


def _transient() -> Any:
    return solvers.transient_fluctuations(_solution(), observables="m")


def _rescaled() -> Any:
    with warnings.catch_warnings():  # a coarse grid on purpose: this tests storage, not accuracy
        warnings.simplefilter("ignore", solvers.ResolutionWarning)
        return solvers.solve_rescaled(models.linear_ou(), gamma=50.0, t_final=0.02, cells=20,
                                      rtol=1e-3, save_at=[0.0, 0.01, 0.02])


def _constrained() -> Any:
    from solvers.limits import constrained_fokker_planck

    return constrained_fokker_planck(models.current_balanced(), t_final=0.02, cells=30,
                                     save_at=[0.0, 0.01, 0.02])


def _early() -> Any:
    from solvers.limits import early_behaviour

    return early_behaviour(models.chemical(), tau_final=1.0, panels=4, save_at=[0.0, 0.5, 1.0])


def _trajectory() -> Any:
    from solvers.limits import balance_trajectory

    return balance_trajectory(models.chemical(), [0.0, 0.5], start=[-0.9, -0.3])


def _balance_points() -> Any:
    import sympy as sp

    import meanfield as mf
    from meanfield.balance import balance_points

    x = mf.x  # three points: stable, unstable, stable
    model = mf.Model([mf.Population("E", -x, 0.5), mf.Population("I", -x, 0.5)],
                     [[4.0, 1.0], [4.0, 1.0]], [[x - 2, x + 1], [x - 2, x + 1]],
                     [mf.sigmoid(x, 0.5, 12), sp.Rational(1, 2) + 0 * x], (-3.0, 5.0))
    points = balance_points(model)
    assert len(points.all) == 3
    return points


FACTORIES: dict[str, Callable[[], Any]] = {
    "BalancePoints": _balance_points,
    "ConstrainedSolution": _constrained, "EarlyBehaviour": _early,
    "BalanceTrajectory": _trajectory,
    "RescaledSolution": _rescaled,
    "Fluctuations": _fluctuations, "TransientFluctuations": _transient,
    "NetworkEnsemble": _ensemble,
    "Solution": _solution, "StationaryState": _state, "Branch": _branch,
    "NetworkResult": _network, "FhnPdeResult": _fhn_pde, "FhnNetworkResult": _fhn_network,
    "FhnNativeResult": _fhn_native,
}


@pytest.fixture(scope="module", params=sorted(FACTORIES))
def result(request: pytest.FixtureRequest) -> Any:
    return FACTORIES[request.param]()


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Equal arrays (exactly), mappings, models, reports and numbers, recursively."""
    if hasattr(a, "to_json") and hasattr(a, "names"):
        assert a == b, where  # models compare by value
    elif hasattr(a, "as_dict"):
        assert_same(a.as_dict(), b.as_dict(), where)
    elif dataclasses.is_dataclass(a) and not isinstance(a, type):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            if f.name != "system":  # the linearised operator is rebuilt, not stored
                assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, Mapping):
        assert sorted(a) == sorted(b), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (tuple, list)) and not (a and isinstance(a[0], (int, float))):
        assert len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{k}]")
    elif a is None or isinstance(a, (str, bool)):
        assert a == b, where
    else:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=where)


def test_round_trip_gives_the_same_result(result: Any, tmp_path: Path) -> None:
    path = tmp_path / "result.nc"
    result.save(path)
    back = solvers.load(path)
    assert type(back) is type(result)
    assert_same(result, back, type(result).__name__)
    first, again = result.to_xarray(), back.to_xarray()
    assert {k: v for k, v in first.attrs.items() if k not in VOLATILE} == \
        {k: v for k, v in again.attrs.items() if k not in VOLATILE}


def test_every_variable_and_coordinate_has_cf_metadata(result: Any) -> None:
    ds = result.to_xarray()
    assert ds.attrs["result_type"] == type(result).__name__
    assert ds.attrs["Conventions"] == "CF-1.10"
    for key in ("model", "model_latex", "solver", "options", "info", "meanfield_version",
                "created"):
        assert isinstance(ds.attrs[key], str), key
    assert ("gamma" in ds.attrs or "gamma" in ds.coords) != (ds.attrs.get("limit") is not None)
    for name in [*ds.data_vars, *ds.coords]:
        for key in ("long_name", "units", "description"):
            assert ds[name].attrs.get(key), f"{name} has no {key}"


def test_load_refuses_a_file_of_another_type_and_an_unknown_type(tmp_path: Path) -> None:
    state = _state()
    ds = state.to_xarray()
    ds.attrs["result_type"] = "Branch"
    ds.to_netcdf(tmp_path / "mislabelled.nc")
    with pytest.raises(ValueError, match=r"^result file .*mislabelled.nc: .*'gamma'"):
        solvers.load(tmp_path / "mislabelled.nc")
    ds.attrs["result_type"] = "Spreadsheet"
    ds.to_netcdf(tmp_path / "unknown.nc")
    with pytest.raises(ValueError, match=r"unknown.nc: the result_type 'Spreadsheet' is not one"):
        solvers.load(tmp_path / "unknown.nc")
    with pytest.raises(ValueError, match=r"^result file <dataset>: holds a 'Spreadsheet', not a "
                       r"'StationaryState'"):
        solvers.StationaryState.from_xarray(ds)


def test_branch_plot_draws_the_bifurcation_figure() -> None:
    import matplotlib

    matplotlib.use("Agg")
    fig = _branch().plot(quantity="m")
    assert len(fig.axes) >= 1
    assert fig.axes[0].lines


def test_old_names_are_deprecated_aliases() -> None:
    run = _network()
    with pytest.warns(DeprecationWarning, match="histogram is deprecated; use rho"):
        np.testing.assert_array_equal(run.histogram, run.rho)


def test_balance_points_of_a_non_concentrating_model_round_trip(tmp_path: Path) -> None:
    from meanfield.balance import balance_points

    points = balance_points(models.current_balanced())
    points.save(tmp_path / "bp.nc")
    back = solvers.load(tmp_path / "bp.nc")
    assert not back.concentrating
    assert back.all == ()
    np.testing.assert_array_equal(back.moments, points.moments)


def test_loaded_fluctuations_evaluate_the_same_autocovariance(tmp_path: Path) -> None:
    fl = _fluctuations()
    fl.save(tmp_path / "fl.nc")
    back = solvers.load(tmp_path / "fl.nc")
    lags = [0.0, 0.2]
    np.testing.assert_array_equal(back.autocovariance("m", lags), fl.autocovariance("m", lags))


def _drop_first(values: np.ndarray) -> np.ndarray:
    out = values.copy()
    out[..., 0] = np.nan
    return out


BAD = [
    ("NetworkResult", "final_states", lambda a: np.nan_to_num(a, nan=1.0),
     r"final_states do not hold n = \[30, 20\] agents"),
    ("NetworkResult", "rho", lambda a: -a, "rho has negative values"),
    ("StationaryState", "stable", lambda a: a + 5, "stable has codes other than"),
    ("StationaryState", "eigenvalue_real", _drop_first, "eigenvalue_count does not match"),
    ("Branch", "mean", _drop_first, "mean has .* values that are NaN"),
    ("NetworkEnsemble", "mean", lambda a: a.astype(str), "mean has dtype <U"),
    ("FhnNetworkResult", "agent_population", lambda a: a + 2, "agent_population has indices"),
    ("FhnPdeResult", "mean_v", lambda a: a[..., None], r"mean_v has dims"),
    ("Fluctuations", "m_cov", lambda a: a[0], r"m_cov has dims \('population',\), expected"),
    ("RescaledSolution", "y_edges", lambda a: a[..., ::-1].copy(), "y_edges are not strictly"),
    ("RescaledSolution", "rho", lambda a: 2 * a, "mass does not match the integral of rho"),
    ("ConstrainedSolution", "rho", lambda a: 2 * a, "mass does not match the integral of rho"),
    ("EarlyBehaviour", "weights", lambda a: 2 * a, "weights are not nonnegative with total 1"),
    ("BalanceTrajectory", "stable", lambda a: a + 3, "stable has codes other than 0 and 1"),
    ("BalancePoints", "jacobian", lambda a: a[..., 0], r"jacobian has dims"),
]


@pytest.mark.parametrize(("kind", "name", "edit", "match"), BAD)
def test_inconsistent_files_are_refused_naming_the_file(kind: str, name: str, edit: Any,
                                                       match: str, tmp_path: Path) -> None:
    ds = FACTORIES[kind]().to_xarray()
    var = ds[name]
    values = edit(var.values)
    dims = var.dims if values.ndim == var.ndim else (*var.dims, "extra")[: values.ndim]
    ds = ds.drop_vars(name).assign({name: (dims, values)})
    path = tmp_path / f"{kind}.nc"
    ds.to_netcdf(path)
    with pytest.raises(ValueError, match=rf"^result file {path}: {match}"):
        solvers.load(path)
