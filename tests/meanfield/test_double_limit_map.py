"""The double-limit map: simulation beside the linear-noise theory, resumable, exponents."""

from __future__ import annotations

import numpy as np
import pytest

import meanfield as mf
from meanfield.studies import double_limit_map
from meanfield.studies.double_limit_map import concentrated_grid, plot_exponents


def test_map_exponents_and_resume(tmp_path) -> None:
    model = mf.models.chemical()
    kwargs = dict(alphas=[0.0, 1.0], ns=[100, 400], seeds=[0], horizon=80.0,
                  directory=tmp_path / "runs")
    ds = double_limit_map(model, **kwargs)
    again = double_limit_map(model, **kwargs)  # every point reused from the directory
    np.testing.assert_array_equal(ds["simulation"].values, again["simulation"].values)
    theory = ds["theory_exponent"]
    leading = ds["leading_exponent"]
    # γ fixed (α = 0): the theory's input fluctuation is exactly n^{-1/2}, the rest constant
    np.testing.assert_allclose(theory.sel(alpha=0.0).values, [[0, 0], [0, 0], [-0.5, -0.5]],
                               atol=1e-9)
    # α = 1: the theory follows the leading order (γ from 100 to 400 is already large)
    np.testing.assert_allclose(theory.sel(alpha=1.0).values,
                               np.repeat(leading.sel(alpha=1.0).values[:, None], 2, axis=1),
                               atol=0.06)
    # at α = 1 (γ = n, short correlation times) the network agrees with the theory: values
    # within 20 %, exponents within 0.15
    ratio = (ds["simulation"] / ds["theory"]).sel(alpha=1.0).values
    assert np.all(np.abs(ratio - 1) < 0.2), ratio
    sim = ds["simulation_exponent"].sel(alpha=1.0).values
    assert np.all(np.abs(sim - theory.sel(alpha=1.0).values) < 0.15), sim
    for var in ds.data_vars.values():
        assert {"long_name", "units", "description"} <= set(var.attrs)
    fig = plot_exponents(ds)
    assert fig.axes[0].get_xlabel().startswith("schedule exponent")
    assert fig.axes[0].get_title()


def test_concentrated_grid_resolves_the_width() -> None:
    grid = concentrated_grid((-5.0, 5.0), np.array([-1.0, 0.5]), 1e-3)
    near = np.abs(grid.x + 1.0) < 7e-3
    assert np.all(grid.h[near] <= 1e-3 / 4 + 1e-12)
    assert grid.cells < 600
    assert grid.max_width <= 0.25 + 1e-12


def test_bad_input() -> None:
    model = mf.models.chemical()
    with pytest.raises(ValueError, match="ns"):
        double_limit_map(model, alphas=[0.0], ns=[100], seeds=[0])
    with pytest.raises(ValueError, match="alphas"):
        double_limit_map(model, alphas=[0.5, 0.5], ns=[100, 200], seeds=[0])
    with pytest.raises(ValueError, match="model"):
        double_limit_map(mf.models.current_balanced(), alphas=[0.0], ns=[100, 200], seeds=[0])
    with pytest.raises(TypeError, match="model"):
        double_limit_map("chemical", alphas=[0.0], ns=[100, 200], seeds=[0])
