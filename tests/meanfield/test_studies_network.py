"""Network studies: W1 to the PDE like n^{-1/2}; the double limit γ = γ0 n^α balances the network."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import meanfield as mf  # noqa: E402
from meanfield.studies.network import (  # noqa: E402
    double_limit,
    network_convergence,
    plot,
    table,
)


@pytest.fixture(scope="module")
def convergence():
    return network_convergence(mf.models.linear_ou(), 5.0, ns=(500, 2000, 8000, 32000),
                               seeds=(0, 1, 2, 3, 4, 5), t_final=0.2, dt=2e-3)


def test_w1_to_the_pde_decays_like_n_to_minus_one_half(convergence):
    ds = convergence
    slopes = ds["fitted_slope"].sel(quantity="w1").values
    assert np.all(np.abs(slopes + 0.5) < 0.15), slopes
    # the constant: E W1 ≈ 0.9 sd/√n for i.i.d. Gaussian samples; the network stays within 2×
    sd = np.sqrt(np.array([0.02076, 0.00838]))
    ratio = ds["errors"].sel(quantity="w1").values * np.sqrt(ds["n"].values)[:, None] / sd
    assert np.all((ratio > 0.5) & (ratio < 2.0)), ratio
    assert ds["w1_per_seed"].shape == (4, 6, 2)
    assert json.loads(ds.attrs["parameters"])["gamma"] == 5.0
    assert ds.attrs["model"] == mf.models.linear_ou().to_json()
    assert ds.attrs["meanfield_version"] == mf.__version__
    assert json.loads(ds.attrs["fitted_slopes"])["w1"]["E"] == pytest.approx(slopes[0])


def test_w1_to_a_time_dependent_pde_solution():
    # agents and PDE start from the model's initial densities; compared at t = 0.5
    ds = network_convergence(mf.models.linear_ou(), 5.0, ns=(1000, 16000), seeds=range(6),
                             t_final=0.5, dt=2e-3, reference="solve", cells=1000)
    w1 = ds["errors"].sel(quantity="w1").values
    assert np.all(w1[1] < w1[0] / 2.5)  # ×16 agents: W1 / 4 predicted
    sd = np.sqrt(np.array([0.02076, 0.00838]))
    ratio = w1 * np.sqrt(ds["n"].values)[:, None] / sd
    assert np.all((ratio > 0.5) & (ratio < 2.5)), ratio
    assert json.loads(ds.attrs["parameters"])["reference"] == "solve"


def test_convergence_plot_is_a_figure(convergence):
    from matplotlib.figure import Figure

    from meanfield import studies

    assert isinstance(plot(convergence), Figure)
    assert isinstance(studies.plot(convergence), Figure)
    text = table(convergence).splitlines()
    assert len(text) == 2 + 4 + 1 and text[2].split()[0] == "500"
    assert float(text[-1].split()[1]) == pytest.approx(
        float(convergence["fitted_slope"].values[0, 0]), abs=1e-3)


def test_double_limit_balances_for_positive_alpha():
    ds = double_limit(mf.models.chemical(), (0.0, 1.0), ns=(100, 1000, 10000), t_final=0.5,
                      dt=1e-3, delta=0.1)
    slopes = json.loads(ds.attrs["fitted_slopes"])
    # γ = n: ∫|h| dμ_n and E|X − v*| decay like √(D/(γA)) ∝ n^{-1/2}
    for key in ("balance_residual", "distance"):
        for p in ("E", "I"):
            assert slopes[key]["alpha=1"][p] == pytest.approx(-0.5, abs=0.1)
            assert abs(slopes[key]["alpha=0"][p]) < 0.1  # fixed γ = 1: no balance
    frac = ds["fraction_within"]
    assert np.all(frac.sel(schedule="alpha=1").values[-1] >= 0.99)
    assert np.all(frac.sel(schedule="alpha=0").values < 0.2)
    assert json.loads(ds.attrs["balanced_from_n"]) == {"alpha=0": None, "alpha=1": 1000}
    np.testing.assert_allclose(ds["gamma"].values, [[1, 1, 1], [100, 1000, 10000]])
    np.testing.assert_array_equal(ds["balanced_probability"].values, [[0, 0, 0], [0, 1, 1]])
    from matplotlib.figure import Figure

    assert isinstance(plot(ds), Figure)
    rows = table(ds).splitlines()
    assert len(rows) == 2 + 6 and rows[-1].split()[:3] == ["alpha=1", "10000", "1e+04"]


def test_study_inputs_rejected():
    model = mf.models.linear_ou()
    with pytest.raises(ValueError, match="ns=.*distinct"):
        network_convergence(model, 5.0, ns=[100, 100])
    with pytest.raises(ValueError, match="reference='pde'"):
        network_convergence(model, 5.0, reference="pde")
    with pytest.raises(TypeError, match="schedules has type"):
        double_limit(model, "fast")
    with pytest.raises(ValueError, match="schedules=-1"):
        double_limit(model, [-1.0])
    with pytest.raises(ValueError, match="ds="):
        plot(model_dataset())
    with pytest.raises(ValueError, match="ds="):
        table(model_dataset())


def model_dataset():
    import xarray as xr

    return xr.Dataset(attrs={"study": "other"})
