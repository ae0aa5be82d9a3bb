"""Network studies: W1 to the PDE like n^{-1/2}; the double limit γ = γ0 n^α balances the network."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

import meanfield as mf
from meanfield.studies.network import (
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
    assert len(text) == 2 + 4 + 1
    assert text[2].split()[0] == "500"
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
    assert len(rows) == 2 + 6
    assert rows[-1].split()[:3] == ["alpha=1", "10000", "1e+04"]


def test_study_inputs_rejected():
    model = mf.models.linear_ou()
    with pytest.raises(ValueError, match=r"ns=.*distinct"):
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


# ----------------------------------------------------------------------------- Dask and resume
TINY = {"ns": (100, 400), "seeds": (0, 1), "t_final": 0.05, "dt": 5e-3, "cells": 200}
TINY_LIMIT = {"ns": (50, 200), "seeds": (0, 1), "t_final": 0.05, "dt": 5e-3}


@pytest.fixture(scope="module")
def tiny_serial():
    model = mf.models.linear_ou()
    return (network_convergence(model, 5.0, **TINY),
            double_limit(mf.models.chemical(), (0.0, 1.0), **TINY_LIMIT))


def test_network_studies_on_a_dask_client_equal_the_serial_run(tiny_serial):
    import xarray as xr
    from distributed import Client

    client = Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None)
    try:
        assert len(client.scheduler_info()["workers"]) == 1
        on_dask = network_convergence(mf.models.linear_ou(), 5.0, client=client, **TINY)
        limit = double_limit(mf.models.chemical(), (0.0, 1.0), client=client, **TINY_LIMIT)
    finally:
        client.close()
    xr.testing.assert_identical(on_dask, tiny_serial[0])
    xr.testing.assert_identical(limit, tiny_serial[1])
    assert on_dask["w1_per_seed"].shape == (2, 2, 2)
    assert np.all(on_dask["w1_per_seed"].values > 0)


def test_network_convergence_resumes_from_its_directory(tmp_path, monkeypatch, tiny_serial):
    import xarray as xr

    from meanfield.studies import network
    from meanfield.studies.sweep import load_point

    calls = []
    original = network._convergence_point

    def counted(*args, **kwargs):
        calls.append((kwargs["n"], kwargs["seed"]))
        return original(*args, **kwargs)

    monkeypatch.setattr(network, "_convergence_point", counted)
    model = mf.models.linear_ou()
    first = network_convergence(model, 5.0, directory=tmp_path, **TINY)
    files = sorted(tmp_path.glob("point-*.nc"))
    assert len(files) == 4
    assert sorted(calls) == [(100, 0), (100, 1), (400, 0), (400, 1)]
    xr.testing.assert_identical(first, tiny_serial[0])
    # a sweep killed after three points: only the missing one is computed again
    points = {f: json.loads(load_point(f).attrs["sweep_point"]) for f in files}
    lost = next(f for f, p in points.items() if (p["n"], p["seed"]) == (400, 1))
    lost.unlink()
    calls.clear()
    resumed = network_convergence(model, 5.0, directory=tmp_path, progress=True, **TINY)
    assert calls == [(400, 1)]
    xr.testing.assert_identical(resumed, tiny_serial[0])
    calls.clear()
    again = network_convergence(model, 5.0, directory=tmp_path, **TINY)
    assert calls == []
    xr.testing.assert_identical(again, tiny_serial[0])
    # another γ in the same directory gets its own points, not the finished ones
    other = network_convergence(model, 6.0, directory=tmp_path, **TINY)
    assert len(calls) == 4
    assert len(list(tmp_path.glob("point-*.nc"))) == 8
    assert not np.array_equal(other["errors"].values, first["errors"].values)


def test_double_limit_resumes_and_shares_equal_gammas(tmp_path, monkeypatch, tiny_serial):
    import xarray as xr

    from meanfield.studies import network

    calls = []
    original = network._double_limit_point

    def counted(*args, **kwargs):
        calls.append((kwargs["gamma"], kwargs["n"], kwargs["seed"]))
        return original(*args, **kwargs)

    monkeypatch.setattr(network, "_double_limit_point", counted)
    model = mf.models.chemical()
    first = double_limit(model, (0.0, 1.0), directory=tmp_path, **TINY_LIMIT)
    assert sorted(calls) == [(1.0, 50, 0), (1.0, 50, 1), (1.0, 200, 0), (1.0, 200, 1),
                             (50.0, 50, 0), (50.0, 50, 1), (200.0, 200, 0), (200.0, 200, 1)]
    xr.testing.assert_identical(first, tiny_serial[1])
    calls.clear()
    # γ = 50 at n = 50 is already there: only the new schedule's γ = 4 points run
    mixed = double_limit(model, {"alpha=1": lambda n: float(n), "fixed": lambda n: 4.0 if n > 50
                                 else 50.0}, directory=tmp_path, **TINY_LIMIT)
    assert sorted(calls) == [(4.0, 200, 0), (4.0, 200, 1)]
    np.testing.assert_array_equal(mixed["balance_residual"].sel(schedule="alpha=1").values,
                                  first["balance_residual"].sel(schedule="alpha=1").values)
    np.testing.assert_array_equal(mixed["balance_residual"].sel(schedule="fixed", n=50).values,
                                  first["balance_residual"].sel(schedule="alpha=1", n=50).values)
    assert len(list(tmp_path.glob("point-*.nc"))) == 10


def test_network_settings_rejected_before_any_run(tmp_path):
    model = mf.models.linear_ou()
    with pytest.raises(ValueError, match=r"dt=0\.5 is not allowed: a step <= t_final=0\.1"):
        network_convergence(model, 5.0, ns=(10, 20), t_final=0.1, dt=0.5, directory=tmp_path)
    with pytest.raises(ValueError, match="scheme='rk4'"):
        double_limit(mf.models.chemical(), (1.0,), ns=(10, 20), scheme="rk4")
    with pytest.raises(TypeError, match="fast has type str"):
        double_limit(mf.models.chemical(), (1.0,), ns=(10, 20), fast="yes")
    with pytest.raises(ValueError, match="t_final=-1"):
        network_convergence(model, 5.0, ns=(10, 20), t_final=-1.0)
    assert list(tmp_path.iterdir()) == []
