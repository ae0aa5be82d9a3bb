"""Convergence studies: fitted slopes against the predicted ones, persistence, Dask, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from meanfield import models
from meanfield.studies import convergence, fitting, plotting, sweep

GAMMAS = [100.0, 1000.0, 1e4]


@pytest.fixture(scope="module")
def single() -> xr.Dataset:
    return convergence.gamma_convergence(models.chemical_single(), GAMMAS, cells=3000,
                                         fit_from=100.0)


def test_fit_slope_exact_power_law() -> None:
    s = np.array([1.0, 2.0, 4.0, 8.0])
    fit = fitting.fit_slope(s, 3.0 * s**-1.5)
    assert fit.slope == pytest.approx(-1.5, abs=1e-12)
    assert fit.constant == pytest.approx(3.0, rel=1e-12)
    assert fit(2.0) == pytest.approx(3.0 * 2**-1.5)
    assert fitting.fit_slope(s, [0.0, 1.0, 0.5, 0.25]).points == 3  # zero error ignored
    np.testing.assert_allclose(fitting.observed_orders(s, s**2), [2, 2, 2])
    with pytest.raises(ValueError, match=r"errors=.*at least two finite, positive"):
        fitting.fit_slope([1, 2], [0.0, 1.0])
    with pytest.raises(ValueError, match=r"errors=.*3 values"):
        fitting.fit_slope([1, 2, 3], [1.0, 2.0])


def test_projection_is_conservative_and_exact() -> None:
    edges = np.linspace(0, 1, 9)
    rho = np.arange(1.0, 9.0)[None, :]
    coarse = np.linspace(0, 1, 5)
    out = convergence.project(edges, rho, coarse)
    np.testing.assert_allclose(out[0], [1.5, 3.5, 5.5, 7.5])
    assert out[0] @ np.diff(coarse) == pytest.approx(rho[0] @ np.diff(edges), rel=1e-14)


def test_gamma_convergence_slopes_single_population(single: xr.Dataset) -> None:
    fitted = single["fitted_slope"].sel(population="E")
    assert float(fitted.sel(quantity="mean")) == pytest.approx(-2.0, abs=0.15)
    assert float(fitted.sel(quantity="balance_point")) == pytest.approx(-1.0, abs=0.05)
    assert float(fitted.sel(quantity="var")) == pytest.approx(-1.0, abs=0.05)
    assert float(fitted.sel(quantity="m")) == pytest.approx(-2.0, abs=0.15)
    assert float(fitted.sel(quantity="balance_residual")) == pytest.approx(-0.5, abs=0.1)
    np.testing.assert_array_equal(single["predicted_slope"].values, [-2, -1, -1, -2, -0.5])
    # the balance voltage of chemical_single is the reversal potential E = 2 (its docstring)
    assert float(single["balance_voltage"].sel(population="E")) == pytest.approx(2.0, abs=1e-10)
    assert float(single["errors"].sel(quantity="mean", gamma=1e4, population="E")) < 1e-7
    attrs = single.attrs
    assert attrs["study"] == "gamma_convergence"
    assert attrs["abscissa"] == "gamma"
    assert json.loads(attrs["parameters"])["gammas"] == GAMMAS
    assert json.loads(attrs["fitted_slopes"])["mean"]["E"] == pytest.approx(
        float(fitted.sel(quantity="mean")))
    assert "model" in attrs
    assert "meanfield_version" in attrs


def test_gamma_convergence_second_order_two_populations() -> None:
    ds = convergence.gamma_convergence(models.chemical(), [10.0, 100.0, 1000.0], cells=2500,
                                       order=2)
    fitted = ds["fitted_slope"]
    np.testing.assert_allclose(fitted.sel(quantity="mean").values, [-3, -3], atol=0.2)
    np.testing.assert_allclose(fitted.sel(quantity="var").values, [-2, -2], atol=0.2)
    np.testing.assert_allclose(fitted.sel(quantity="balance_point").values, [-1, -1], atol=0.1)
    # docs/mathematics.md §7: γ·(mean − v) approaches μ
    gap = 1000.0 * (ds["mean"].sel(gamma=1000.0) - ds["balance_voltage"])
    np.testing.assert_allclose(gap.values, ds["mu"].values, rtol=2e-2)


def test_non_concentrating_model_reports_balance_residual_only() -> None:
    ds = convergence.gamma_convergence(models.current_balanced(), [100.0, 1000.0, 1e4],
                                       cells=300, fit_from=100.0, options={"stability": False})
    assert ds["quantity"].values.tolist() == ["balance_residual"]
    assert "unavailable" in ds.attrs["predictions"]
    assert ds["predicted_slope"].values.tolist() == [-1.0]
    np.testing.assert_allclose(ds["fitted_slope"].values, [[-1, -1]], atol=0.1)


def test_dask_client_and_directory_give_the_same_study(tmp_path: Path,
                                                       single: xr.Dataset) -> None:
    client, cluster = sweep.open_client(workers=2, processes=False)
    try:
        on_dask = convergence.gamma_convergence(models.chemical_single(), GAMMAS, cells=3000,
                                                fit_from=100.0, client=client,
                                                directory=tmp_path)
    finally:
        client.close()
        cluster.close()
    xr.testing.assert_identical(on_dask, single)
    assert len(list(tmp_path.glob("point-*.nc"))) == 3
    again = convergence.gamma_convergence(models.chemical_single(), GAMMAS, cells=3000,
                                          fit_from=100.0, directory=tmp_path)
    xr.testing.assert_identical(again, single)


def test_grid_convergence_stationary_second_order() -> None:
    ds = convergence.grid_convergence(models.chemical_single(), 2.0, cells=[25, 50, 100, 200])
    assert float(ds["fitted_slope"].sel(quantity="L1", population="E")) == pytest.approx(2.0,
                                                                                       abs=0.15)
    assert json.loads(ds.attrs["parameters"])["reference_cells"] == 1600
    np.testing.assert_allclose(ds["h"].values, 8.0 / np.array([25, 50, 100, 200]))


@pytest.mark.filterwarnings("ignore:the grid does not resolve")
def test_grid_convergence_time_dependent_second_order() -> None:
    ds = convergence.grid_convergence(models.chemical(), 1.0, cells=[40, 80, 160], method="sg",
                                      t_final=0.2, reference_cells=640)
    np.testing.assert_allclose(ds["fitted_slope"].sel(quantity="L1").values, [2, 2], atol=0.3)
    np.testing.assert_allclose(ds["fitted_slope"].sel(quantity="mean").values, [2, 2], atol=0.2)


@pytest.mark.parametrize(("scheme", "order"), [("be", 1.0), ("bdf2", 2.0)])
def test_time_convergence_orders(scheme: str, order: float) -> None:
    from meanfield.errors import ResolutionWarning

    # 60 cells leave the start (Péclet number 0.6 at t = 0) unresolved: one note for the study
    with pytest.warns(ResolutionWarning, match=r"time_convergence: the grid of 60 cells does not "
                      r"resolve .*semi-discrete system.*cells=\d+") as record:
        ds = convergence.time_convergence(models.chemical(), 1.0, dts=[0.0125, 0.025, 0.05, 0.1],
                                          t_final=0.4, cells=60, expected_order=order,
                                          options={"scheme": scheme})
    assert len([r for r in record if r.category is ResolutionWarning]) == 1
    assert "does not resolve" in ds.attrs["resolution"]
    assert not ds.attrs["resolution"].startswith("the grid of 60 cells resolves")
    np.testing.assert_allclose(ds["fitted_slope"].sel(quantity="L1").values, [order, order],
                               atol=0.15)
    assert json.loads(ds.attrs["parameters"])["reference_dt"] == pytest.approx(0.0125 / 8)


def test_plot_and_table(single: xr.Dataset) -> None:
    figure = single.study.plot()
    visible = [ax for ax in figure.axes if ax.get_visible()]
    assert len(visible) == 5
    for ax in visible:
        assert ax.get_xlabel() == "coupling strength γ"
        assert ax.get_ylabel()
        assert ax.get_title()
        assert ax.get_xscale() == "log"
        assert ax.get_yscale() == "log"
    plotting.close(figure)
    table = single.study.slopes()
    assert "balance_residual" in table
    assert "-0.5" in table
    with pytest.raises(ValueError, match=r"ds=.*a convergence study"):
        plotting.plot(xr.Dataset({"a": ((), 1.0)}))


def test_bad_input() -> None:
    model = models.chemical_single()
    with pytest.raises(TypeError, match="model has type str"):
        convergence.gamma_convergence("chemical", [1, 10])
    with pytest.raises(ValueError, match=r"gammas=.*strictly increasing"):
        convergence.gamma_convergence(model, [10, 1])
    with pytest.raises(ValueError, match=r"method='euler'.*stationary, sg, fipy"):
        convergence.gamma_convergence(model, [10, 100], method="euler")
    with pytest.raises(ValueError, match=r"t_final=1\.0 .*None with method='stationary'"):
        convergence.gamma_convergence(model, [10, 100], t_final=1.0)
    with pytest.raises(ValueError, match=r"t_final=None .*time-dependent method 'sg'"):
        convergence.gamma_convergence(model, [10, 100], method="sg")
    with pytest.raises(ValueError, match=r"fit_from=1000\.0 .*at least two gammas"):
        convergence.gamma_convergence(model, [10, 100, 1000], fit_from=1000.0)
    with pytest.raises(ValueError, match=r"cells=.*at least 2 strictly increasing"):
        convergence.grid_convergence(model, 1.0, cells=[50])
    with pytest.raises(ValueError, match=r"reference_cells=100 .*integer >= 201"):
        convergence.grid_convergence(model, 1.0, cells=[50, 200], reference_cells=100)
    with pytest.raises(ValueError, match=r"dts=.*steps <= t_final"):
        convergence.time_convergence(model, 1.0, dts=[0.1, 2.0], t_final=1.0)
    with pytest.raises(ValueError, match=r"reference_dt=0\.2 .*smaller than min"):
        convergence.time_convergence(model, 1.0, dts=[0.1, 0.2], t_final=1.0, reference_dt=0.2)
    with pytest.raises(ValueError, match=r"method='stationary' .*'sg' or 'fipy'"):
        convergence.time_convergence(model, 1.0, dts=[0.1, 0.2], t_final=1.0,
                                     method="stationary")


def test_truncation_study_orders() -> None:
    ds = convergence.truncation_study(models.chemical(), [10.0, 100.0, 1000.0, 1e4],
                                      orders=(-2, 0, 1), cells=4000)
    fitted = ds["fitted_slope"]
    expected = {"mean_K-2": -1, "var_K-2": -1, "mean_K0": -2, "var_K0": -2, "mean_K1": -3}
    for quantity, slope in expected.items():
        np.testing.assert_allclose(fitted.sel(quantity=quantity).values, [slope, slope],
                                   atol=0.15 if slope > -3 else 0.25, err_msg=quantity)
        assert float(ds["predicted_slope"].sel(quantity=quantity)) == slope
    assert convergence.truncation_slopes(-1) == (-2.0, -1.0)
    figure = plotting.plot(ds)
    assert all(ax.get_ylabel() for ax in figure.axes if ax.get_visible())
    plotting.close(figure)


def test_truncation_exact_when_the_drift_series_ends() -> None:
    # chemical_single: linear drift and affine field, so the drift series stops at ε^0 and the
    # truncated equation at K = 0 is the exact one: it reproduces the finite-volume state
    ds = convergence.truncation_study(models.chemical_single(), [10.0, 100.0, 1000.0],
                                      orders=(-2, 0), cells=3000)
    assert float(ds["errors"].sel(quantity="mean_K0").max()) < 1e-11
    assert float(ds["errors"].sel(quantity="var_K0").max()) < 1e-9
    np.testing.assert_allclose(ds["fitted_slope"].sel(quantity="mean_K-2"), [-1.0], atol=0.1)


def test_truncation_bad_input() -> None:
    from meanfield.studies.truncated import truncated_stationary

    with pytest.raises(ValueError, match=r"orders=-3 .*integer >= -2"):
        convergence.truncation_study(models.chemical(), [10, 100], orders=(-3,))
    with pytest.raises(ValueError, match=r"orders=.*distinct"):
        convergence.truncation_study(models.chemical(), [10, 100], orders=(0, 0))
    with pytest.raises(ValueError, match=r"model=.*stationary expansion"):
        convergence.truncation_study(models.current_balanced(), [10, 100])
    with pytest.raises(ValueError, match=r"gamma=0 .*> 0"):
        truncated_stationary(models.chemical(), 0, 0)


def test_rescaled_solver_agrees_with_native(monkeypatch: pytest.MonkeyPatch) -> None:
    import solvers
    from solvers.rescaled import solve_rescaled

    # the study calls solvers.solve_rescaled (exported by the rescaled-solver issue)
    monkeypatch.setattr(solvers, "solve_rescaled", solve_rescaled, raising=False)
    ds = convergence.gamma_convergence(models.chemical_single(), [100.0, 1000.0, 1e4],
                                       cells=3000, fit_from=100.0, rescaled=True,
                                       rescaled_cells=100, rescaled_t_final=3.0)
    np.testing.assert_allclose(ds["rescaled_mean"], ds["mean"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(ds["rescaled_var"], ds["var"], rtol=1e-6)
    for q in ("mean", "var", "balance_point"):
        np.testing.assert_allclose(ds["fitted_slope"].sel(quantity=f"rescaled_{q}"),
                                   ds["fitted_slope"].sel(quantity=q), atol=0.05)
    monkeypatch.delattr(solvers, "solve_rescaled")
    with pytest.raises(ValueError, match=r"rescaled=True .*no solvers\.solve_rescaled"):
        convergence.gamma_convergence(models.chemical_single(), [10, 100], rescaled=True)


def test_unresolved_gamma_points_are_excluded_from_the_fits_and_flagged() -> None:
    """#13: one unresolved point (γ = 1e6 on 2500 cells) turned a slope of −3 into −0.2."""
    from meanfield.errors import ResolutionWarning

    gammas = [10.0, 100.0, 1000.0, 1e6]
    with pytest.warns(ResolutionWarning, match=r"excluded from the slope fits: gamma=\[1000000.0\]"
                      r".*cells=\d+") as record:
        ds = convergence.gamma_convergence(models.chemical(), gammas, cells=2500, order=2)
    assert len([r for r in record if r.category is ResolutionWarning]) == 1
    np.testing.assert_array_equal(ds["resolved"].values, [True, True, True, False])
    assert json.loads(ds.attrs["excluded_points"]) == [1e6]
    assert "unresolved" in ds.attrs["resolution"]
    assert ds.attrs["slope_anchor"] == 1000.0
    from meanfield.studies.plotting import slopes_table

    assert "note: 1 unresolved point(s) excluded from the slope fits: gamma=[1000000.0]" in (
        slopes_table(ds))
    np.testing.assert_allclose(ds["fitted_slope"].sel(quantity="mean").values, [-3, -3], atol=0.2)
    # the flagged point is really wrong: its variance error is O(1), not O(1/γ²)
    assert float(ds["errors"].sel(quantity="var", gamma=1e6).max()) > 0.1


def test_grid_convergence_flags_unresolved_grids() -> None:
    from meanfield.errors import ResolutionWarning

    with pytest.warns(ResolutionWarning, match=r"grid_convergence.*cells=\[8.0\]"):
        ds = convergence.grid_convergence(models.chemical_single(), 100.0, cells=[8, 400, 800],
                                          reference_cells=1600)
    np.testing.assert_array_equal(ds["resolved"].values, [False, True, True])
    assert json.loads(ds.attrs["excluded_points"]) == [8.0]


def test_study_modules_are_small_and_keep_their_public_names() -> None:
    """convergence.py was split by job; every public name is importable where it was."""
    import meanfield.studies as studies
    from meanfield.studies import native, predictions, study_dataset, truncation

    for module in (convergence, native, predictions, study_dataset, truncation):
        assert len(Path(module.__file__).read_text(encoding="utf-8").splitlines()) < 500
    for name in ("gamma_convergence", "grid_convergence", "time_convergence", "gamma_slopes",
                 "stationary_predictions"):
        assert getattr(studies, name) is getattr(convergence, name)
    assert convergence.truncation_study is truncation.truncation_study
    assert convergence.select_state is native.select_state
    assert convergence.truncation_slopes(1) == (-3.0, -2.0)


def test_non_positive_predicted_variance_is_left_out_and_said() -> None:
    """#13: the order-2 variance D/(γA) + c₂/γ² is negative below γ ≈ 0.97 (chemical_single)."""
    with pytest.warns(UserWarning, match=r"order-2 expansion predicts a non-positive variance "
                      r"\(E at gamma=0.5; order 2 needs gamma >> 0.967"):
        ds = convergence.gamma_convergence(models.chemical_single(), [0.5, 10.0, 100.0],
                                           cells=2000, order=2, fit_from=0.1)
    assert float(ds["predicted_var"].sel(gamma=0.5, population="E")) < 0
    var_errors = ds["errors"].sel(quantity="var", population="E").values
    assert np.isnan(var_errors[0])
    assert np.all(np.isfinite(var_errors[1:]))
    assert "not positive at gamma=[0.5]" in ds.attrs["predictions"]
    # the slope comes from γ = 10, 100 only: −2 (order 2), not spoiled by the invalid point
    assert float(ds["fitted_slope"].sel(quantity="var", population="E")) == pytest.approx(-2.0,
                                                                                        abs=0.2)


def test_truncation_study_flags_an_unresolved_reference_state() -> None:
    """The exact state at γ = 1e6 on 1500 cells is unresolved: flagged, not fitted, said once."""
    from meanfield.errors import ResolutionWarning

    with pytest.warns(ResolutionWarning, match=r"truncation_study: 1 unresolved point\(s\) "
                      r"excluded from the slope fits: gamma=\[1000000.0\].*cells=\d+") as record:
        ds = convergence.truncation_study(models.chemical_single(), [10.0, 100.0, 1000.0, 1e6],
                                          orders=(-2,), cells=1500)
    assert len([r for r in record if r.category is ResolutionWarning]) == 1
    np.testing.assert_array_equal(ds["resolved"].values, [True, True, True, False])
    assert json.loads(ds.attrs["excluded_points"]) == [1e6]
    assert ds.attrs["slope_anchor"] == 1000.0
    # with the bad point the OU truncation would not show its slope −1
    assert float(ds["errors"].sel(quantity="var_K-2", gamma=1e6).max()) > 0.1
    np.testing.assert_allclose(ds["fitted_slope"].sel(quantity="mean_K-2"), [-1.0], atol=0.1)


def test_study_warnings_point_at_the_caller() -> None:
    from meanfield.errors import ResolutionWarning

    with pytest.warns(ResolutionWarning) as record:
        convergence.grid_convergence(models.chemical_single(), 100.0, cells=[8, 400, 800],
                                     reference_cells=1600)
    (warning,) = [r for r in record if r.category is ResolutionWarning]
    assert warning.filename == __file__
