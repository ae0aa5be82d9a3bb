"""Truncated rescaled equations solved in time against the exact zoomed solver."""

from __future__ import annotations

import json

import numpy as np
import pytest

import meanfield as mf
from meanfield.studies import rescaled, truncation_study
from meanfield.studies.rescaled import plot, solve_truncated
from solvers.rescaled import solve_rescaled


@pytest.fixture(scope="module")
def study():
    return truncation_study(mf.models.chemical(), [1e2, 1e3, 1e4], orders=(-2, -1, 0),
                            kind="transient", cells=100, rtol=1e-6)


def test_truncation_error_decays_like_eps_to_the_order_plus_four(study):
    slopes = json.loads(study.attrs["fitted_slopes"])
    for k in (-2, -1, 0):
        for p in ("E", "I"):
            assert abs(slopes[f"mean_K{k}_{p}"] + (k + 4) / 2) < 0.2, (k, p, slopes)
    # each extra order helps at every γ, and the leading (OU) truncation is O(1/γ) in var too
    mean = study["mean_error"].max("population").values
    assert np.all(mean[1:] < mean[:-1])
    assert abs(slopes["var_K-2_E"] + 1) < 0.15


def test_study_dataset_carries_model_parameters_and_plots(study):
    assert mf.Model.from_json(study.attrs["model"]) == mf.models.chemical()
    assert json.loads(study.attrs["parameters"])["orders"] == [-2, -1, 0]
    assert study["mean_error"].dims == ("order", "gamma", "population")
    figure = plot(study)
    assert len(figure.axes) == 2


def test_high_order_truncation_reproduces_the_exact_solver_at_large_gamma():
    model = mf.models.linear_ou()  # affine h, linear f: the series stops, order 0 is exact
    exact = solve_rescaled(model, gamma=1e6, t_final=1e-5, cells=100, rtol=1e-3,
                           save_at=[1e-5])
    trunc = solve_truncated(model, gamma=1e6, order=0, t_final=1e-5, cells=100, rtol=1e-3,
                            save_at=[1e-5])
    np.testing.assert_allclose(trunc.mean[-1], exact.mean[-1], atol=1e-12)
    np.testing.assert_allclose(trunc.var[-1], exact.var[-1], rtol=1e-8)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="gammas"):
        truncation_study(mf.models.chemical(), [1e3, 1e2], kind="transient")
    with pytest.raises(ValueError, match="order"):
        solve_truncated(mf.models.chemical(), gamma=10.0, order=-3, t_final=1.0)
    with pytest.raises(TypeError, match="orders"):
        truncation_study(mf.models.chemical(), [1e2, 1e3], orders="0", kind="transient")
    with pytest.raises(ValueError, match="kind"):
        truncation_study(mf.models.chemical(), [1e2, 1e3], kind="steady")
    with pytest.warns(DeprecationWarning, match="kind='transient'"), \
            pytest.raises(ValueError, match="gammas"):
        rescaled.truncation_study(mf.models.chemical(), [1e3, 1e2])


def test_truncated_stationary_state_is_a_density_in_x():
    from meanfield.studies.truncated import truncated_stationary

    model = mf.models.chemical()
    state = truncated_stationary(model, 1e3, -2)
    np.testing.assert_allclose(np.trapezoid(state.rho, state.x, axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.trapezoid(state.x * state.rho, state.x, axis=-1), state.mean,
                               rtol=0, atol=1e-12)
    # the Ornstein-Uhlenbeck truncation is a Gaussian of variance D/(γ A) at its centre
    nm = mf.numeric(model)
    slope = np.array([nm.field_functions(p)[1](state.center[p], *state.m) for p in range(2)])
    np.testing.assert_allclose(state.var, np.array(model.diffusion) / (1e3 * slope), rtol=1e-10)
    with pytest.warns(DeprecationWarning, match="use rho"):
        q = state.q
    np.testing.assert_allclose(np.trapezoid(q, state.y, axis=-1), 1.0, rtol=1e-12)
