"""The sweep engine: real LocalCluster runs, one file per point, a killed sweep resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import solvers
from meanfield import models
from meanfield.studies import sweep

ROOT = Path(__file__).resolve().parents[2]


def stationary_point(gamma: float, cells: int) -> xr.Dataset:
    """A real point: the exact stationary state of the linear OU model (one state)."""
    (state,) = solvers.stationary_states(models.linear_ou(), gamma=gamma, cells=cells,
                                         stability=False)
    return state.to_xarray()


def failing_point(value: int) -> xr.Dataset:
    if value == 2:
        raise ArithmeticError("point two fails")
    return xr.Dataset({"square": ((), float(value**2))})


POINTS = sweep.grid_points(gamma=[1.0, 10.0, 100.0], cells=[60, 120])


def test_grid_points_and_keys() -> None:
    assert POINTS[:2] == [{"gamma": 1.0, "cells": 60}, {"gamma": 1.0, "cells": 120}]
    assert len(POINTS) == 6
    assert sweep.point_key({"a": 1, "b": 2.0}) == sweep.point_key({"b": 2.0, "a": 1})
    assert sweep.point_key({"a": 1}) != sweep.point_key({"a": 2})
    assert sweep.point_key({"a": np.float64(1.5)}) == sweep.point_key({"a": 1.5})


def test_local_cluster_matches_serial(tmp_path: Path) -> None:
    serial = sweep.run_points(stationary_point, POINTS)
    distributed = sweep.run_sweep(stationary_point, POINTS, directory=tmp_path, workers=2,
                                  processes=False)
    assert distributed.computed == 6
    assert distributed.reused == 0
    assert len(list(tmp_path.glob("point-*.nc"))) == 6
    a, b = serial.to_xarray(), distributed.to_xarray()
    np.testing.assert_array_equal(a["mean"].values, b["mean"].values)
    # a grid of points is a dataset with one dimension per varied parameter
    assert b["mean"].dims == ("gamma", "cells", "population")
    np.testing.assert_array_equal(b["gamma"].values, [1, 10, 100])
    np.testing.assert_array_equal(b["cells"].values, [60, 120])
    # the linear OU model's mean is exact: (α μ + γ Σ g m E)/(α + γ A) -> balance voltage as γ grows
    var_e = b["var"].sel(population="E", cells=120).values
    assert var_e[-1] < var_e[0] / 20
    again = sweep.run_sweep(stationary_point, POINTS, directory=tmp_path, workers=1,
                            processes=False)
    assert again.computed == 0
    assert again.reused == 6
    xr.testing.assert_identical(again.to_xarray(), b)
    xr.testing.assert_identical(sweep.load_sweep(tmp_path).to_xarray(), b)


def test_failed_points_are_reported_and_retried(tmp_path: Path) -> None:
    points = [{"value": v} for v in range(4)]
    with pytest.raises(RuntimeError, match=r"1 of 4 sweep points failed .*point two fails"):
        sweep.run_points(failing_point, points, directory=tmp_path)
    assert len(list(tmp_path.glob("point-*.nc"))) == 3
    with pytest.raises(RuntimeError, match="1 of 4"):
        sweep.run_points(failing_point, points, directory=tmp_path)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match=r"points=.*distinct points"):
        sweep.run_points(failing_point, [{"value": 1}, {"value": 1}])
    with pytest.raises(TypeError, match="fn has type int"):
        sweep.run_points(3, [{"value": 1}])
    with pytest.raises(TypeError, match=r"fn has type float.*xarray\.Dataset"):
        sweep.run_points(lambda value: 1.0, [{"value": 1}])
    with pytest.raises(ValueError, match=r"gamma=.*non-empty list"):
        sweep.grid_points(gamma=[])
    with pytest.raises(TypeError, match="a has type object"):
        sweep.point_key({"a": object()})
    with pytest.raises(ValueError, match="workers=2 is not allowed: either workers="):
        sweep.open_client(workers=2, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(ValueError, match=r"directory=.*sweep\.json"):
        sweep.load_sweep("/nonexistent-sweep-dir")


SCRIPT = textwrap.dedent("""
    import sys, time
    import xarray as xr
    import solvers
    from meanfield import models
    from meanfield.studies import sweep

    def slow_point(gamma, cells):
        time.sleep(0.25)
        (state,) = solvers.stationary_states(models.linear_ou(), gamma=gamma, cells=cells,
                                             stability=False)
        return state.to_xarray()

    if __name__ == "__main__":
        points = sweep.grid_points(gamma=[1.0, 3.0, 10.0, 30.0, 100.0, 300.0], cells=[50, 80])
        sweep.run_sweep(slow_point, points, directory=sys.argv[1], workers=1, processes=False)
""")


def test_killed_sweep_resumes_identically(tmp_path: Path) -> None:
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    killed, full = tmp_path / "killed", tmp_path / "full"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script), str(killed)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(list(killed.glob("point-*.nc"))) < 3 and time.monotonic() < deadline:
            assert proc.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = len(list(killed.glob("point-*.nc")))
    assert 3 <= done < 12
    namespace: dict = {}
    exec(compile(SCRIPT, "run.py", "exec"), namespace)
    points = sweep.grid_points(gamma=[1.0, 3.0, 10.0, 30.0, 100.0, 300.0], cells=[50, 80])
    resumed = sweep.run_points(namespace["slow_point"], points, directory=killed)
    assert resumed.reused == done
    assert resumed.computed == 12 - done
    uninterrupted = sweep.run_points(namespace["slow_point"], points, directory=full)
    assert uninterrupted.computed == 12
    xr.testing.assert_identical(resumed.to_xarray(), uninterrupted.to_xarray())
    assert len(list(killed.glob("point-*.nc"))) == 12


def test_existing_scheduler_address(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from distributed import LocalCluster

    from meanfield import cli

    config = tmp_path / "sweep.toml"
    config.write_text(textwrap.dedent(f"""
        [model]
        name = "linear_ou"
        [solve]
        cells = 60
        starts = 2
        stability = false
        [sweep]
        vary = {{ gamma = [2.0, 20.0] }}
        [output]
        dir = "{tmp_path}"
        """))
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                      dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://")
        assert cli.main(["sweep", str(config), "--scheduler", address, "--no-progress"]) == 0
    assert "2 points: 2 computed, 0 reused" in capsys.readouterr().out
    with xr.open_dataset(tmp_path / "sweep-run.nc") as ds:  # <config stem>-<output name>
        means = ds["mean"].load()
    expected = [stationary_point(g, 60)["mean"].values for g in (2.0, 20.0)]
    assert means.dims == ("gamma", "state", "population")
    np.testing.assert_allclose(means.isel(state=0).values, expected, rtol=1e-12)


def test_combine_keeps_list_parameters_numeric() -> None:
    points = [{"gamma": 1.0, "sigma": [0.5, 0.6]}, {"gamma": 2.0, "sigma": [0.8, 0.6]}]
    datasets = [xr.Dataset({"value": ((), float(k))}) for k in range(2)]
    out = sweep.combine(points, datasets)  # not a grid: along ``point``
    np.testing.assert_array_equal(out["sigma_value"].values, [[0.5, 0.6], [0.8, 0.6]])
    np.testing.assert_array_equal(out["gamma"].values, [1.0, 2.0])
    np.testing.assert_array_equal(out["value"].values, [0.0, 1.0])
    grid = sweep.combine(sweep.grid_points(sigma=[[0.5, 0.6], [0.8, 0.6]], gamma=[2.0, 1.0]),
                         [xr.Dataset({"value": ((), float(k))}) for k in range(4)])
    assert grid["value"].dims == ("sigma", "gamma")
    np.testing.assert_array_equal(grid["sigma_value"].values, [[0.5, 0.6], [0.8, 0.6]])
    np.testing.assert_array_equal(grid["gamma"].values, [1.0, 2.0])  # sorted
    np.testing.assert_array_equal(grid["value"].values, [[1.0, 0.0], [3.0, 2.0]])
    assert float(sweep.select(grid, {"sigma": [0.8, 0.6], "gamma": 1.0})["value"]) == 3.0


def _settings_point(gamma: float, *, offset: float) -> xr.Dataset:
    return xr.Dataset({"value": ((), gamma + offset)})


def test_context_keeps_studies_with_other_settings_apart(tmp_path: Path) -> None:
    from functools import partial

    points = sweep.grid_points(gamma=[1.0, 2.0])
    first = sweep.run_points(partial(_settings_point, offset=0.0), points, directory=tmp_path,
                             context={"offset": 0.0})
    other = sweep.run_points(partial(_settings_point, offset=10.0), points, directory=tmp_path,
                             context={"offset": 10.0})
    assert first.computed == 2
    assert other.computed == 2
    assert other.reused == 0
    assert [float(ds["value"]) for ds in other.datasets] == [11.0, 12.0]
    again = sweep.run_points(partial(_settings_point, offset=10.0), points, directory=tmp_path,
                             context={"offset": 10.0})
    assert again.reused == 2
    assert [float(ds["value"]) for ds in again.datasets] == [11.0, 12.0]
    assert [float(ds["value"]) for ds in sweep.load_sweep(tmp_path).datasets] == [11.0, 12.0]


def test_grid_convergence_directory_is_keyed_by_model(tmp_path: Path) -> None:
    from meanfield import models, studies

    a = studies.grid_convergence(models.linear_ou(), 10.0, cells=[40, 80], reference_cells=160,
                                 directory=tmp_path)
    b = studies.grid_convergence(models.linear_ou(sigma=(0.9, 0.5)), 10.0, cells=[40, 80],
                                 reference_cells=160, directory=tmp_path)
    assert len(list(tmp_path.glob("point-*.nc"))) == 6
    assert not np.allclose(a["errors"].values, b["errors"].values)
