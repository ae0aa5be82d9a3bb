"""Sweep files that cannot be corrupted: links, concurrent runs, damaged files, write failures."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from meanfield.studies import sweep, sweepfiles, tasks

ROOT = Path(__file__).resolve().parents[2]
POINTS = [{"v": v} for v in range(4)]


def tiny(v: int) -> xr.Dataset:
    return xr.Dataset({"square": (("k",), [float(v) ** 2, float(v)])},
                      coords={"k": ["a", "b"]}, attrs={"source": "tiny"})


def squares(result: sweep.SweepResult) -> list[float]:
    return [float(ds["square"].sel(k="a")) for ds in result.datasets]


def finished(folder: Path) -> sweep.SweepResult:
    return sweep.run_points(tiny, POINTS, directory=folder)


def test_symlinked_part_and_point_files_are_never_followed(tmp_path: Path) -> None:
    folder, outside = tmp_path / "sweep", tmp_path / "outside.txt"
    folder.mkdir()
    outside.write_text("keep me")
    first = sweep.point_path(folder, POINTS[0])
    # the temporary name of earlier versions, and one in the current pattern
    os.symlink(outside, first.with_name(first.name + ".part"))
    os.symlink(outside, folder / f".{first.name}.123.abcdef.part")
    os.symlink(outside, sweep.point_path(folder, POINTS[1]))  # a point file that is a link
    with pytest.warns(sweepfiles.SweepFileWarning, match="is a symbolic link: moved to"):
        result = finished(folder)
    assert outside.read_text() == "keep me"
    assert result.computed == 4
    assert squares(result) == [0.0, 1.0, 4.0, 9.0]
    assert not list(folder.glob("*.part"))
    assert not list(folder.glob(".*.part"))
    (bad,) = folder.glob("*.bad")
    assert bad.is_symlink()
    assert bad.resolve() == outside
    for p in POINTS:  # every point file is a regular file that reads back
        path = sweep.point_path(folder, p)
        assert not path.is_symlink()
        assert json.loads(sweep.load_point(path).attrs["sweep_point"]) == p


def test_temporary_files_are_created_exclusively(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    target = tmp_path / "file.nc"
    monkeypatch.setattr(sweepfiles.secrets, "token_hex", lambda n: "fixed")
    planted = tmp_path / f".file.nc.{os.getpid()}.fixed.part"
    os.symlink(outside, planted)  # someone guessed the temporary name
    with pytest.raises(FileExistsError):
        sweepfiles.write_bytes(target, b"data")
    assert outside.read_text() == "keep me"
    assert not target.exists()
    planted.unlink()
    sweepfiles.write_bytes(target, b"data")
    assert target.read_bytes() == b"data"
    assert not planted.exists()


def test_lock_file_refuses_links_and_busy_folders(tmp_path: Path) -> None:
    folder = tmp_path / "sweep"
    folder.mkdir()
    with sweepfiles.FolderLock(folder), pytest.raises(
            sweepfiles.SweepBusyError, match=r"sweep folder .*sweep is in use by another sweep "
            rf"\(process {os.getpid()} holds \.sweep\.lock\); waited 0\.1 s"):
        sweep.run_points(tiny, POINTS, directory=folder, lock_timeout=0.1)
    assert not list(folder.glob("point-*.nc"))
    assert finished(folder).computed == 4  # released: the next run goes ahead
    with pytest.raises(ValueError, match="lock_timeout=-1"):
        sweep.run_points(tiny, POINTS, directory=folder, lock_timeout=-1)
    other, outside = tmp_path / "other", tmp_path / "outside.txt"
    other.mkdir()
    outside.write_text("keep me")
    os.symlink(outside, other / ".sweep.lock")
    with pytest.raises(sweepfiles.SweepBusyError, match=r"lock .* is a symbolic link"):
        sweep.run_points(tiny, POINTS, directory=other)
    assert outside.read_text() == "keep me"


CONCURRENT = textwrap.dedent("""
    import sys, time
    import xarray as xr
    from meanfield.studies import sweep

    def slow(v, w):
        time.sleep(0.05)
        return xr.Dataset({"square": ((), float(v) ** 2 + w)}, attrs={"v": v})

    if __name__ == "__main__":
        points = sweep.grid_points(v=list(range(8)), w=[0, 1])
        result = sweep.run_points(slow, points, directory=sys.argv[1])
        sweep.write_dataset(sys.argv[2], result.to_xarray())
        print(result.computed, result.reused)
""")


def test_two_concurrent_sweeps_into_one_folder(tmp_path: Path) -> None:
    script = tmp_path / "run.py"
    script.write_text(CONCURRENT)
    shared, single = tmp_path / "shared", tmp_path / "single"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}

    def start(folder: Path, out: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, str(script), str(folder), str(tmp_path / out)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)

    runs = [start(shared, "a.nc"), start(shared, "b.nc")]
    outputs = [proc.communicate(timeout=120) for proc in runs]
    for proc, (_, err) in zip(runs, outputs, strict=True):
        assert proc.returncode == 0, err
    counts = sorted(tuple(map(int, out.split())) for out, _ in outputs)
    assert counts == [(0, 16), (16, 0)]  # one computed everything, the other waited and reused
    files = sorted(shared.glob("point-*.nc"))
    assert len(files) == 16
    assert not list(shared.glob("*.part"))
    assert not list(shared.glob("*.bad"))
    for path in files:
        sweep.load_point(path)
    namespace: dict[str, Any] = {}
    exec(compile(CONCURRENT, "run.py", "exec"), namespace)  # the same sweep alone, here
    alone = sweep.run_points(namespace["slow"], sweep.grid_points(v=list(range(8)), w=[0, 1]),
                             directory=single)
    assert alone.computed == 16
    sweep.write_dataset(tmp_path / "single.nc", alone.to_xarray())
    with xr.open_dataset(tmp_path / "single.nc") as ref:
        ref = ref.load()
    for name in ("a.nc", "b.nc"):
        with xr.open_dataset(tmp_path / name) as ds:
            xr.testing.assert_identical(ds.load(), ref)
    assert ref["square"].dims == ("v", "w")


def _damage_truncate(path: Path, other: Path) -> None:
    path.write_bytes(path.read_bytes()[:200])


def _damage_empty(path: Path, other: Path) -> None:
    path.write_bytes(b"")


def _damage_swap(path: Path, other: Path) -> None:
    shutil.copyfile(other, path)  # a valid file of another point


def _damage_values(path: Path, other: Path) -> None:
    ds = sweep.load_point(path)
    ds["square"] = ds["square"] + 1.0  # same attributes, other numbers
    ds.to_netcdf(path)


@pytest.mark.parametrize(("damage", "reason"), [
    (_damage_truncate, "cannot be read"), (_damage_empty, "cannot be read"),
    (_damage_swap, r"holds another point \(sweep_point = '\{\"v\":3\}'\)"),
    (_damage_values, "arrays that do not match their checksum")])
def test_damaged_point_files_are_moved_aside_and_recomputed(tmp_path: Path, damage: Any,
                                                            reason: str) -> None:
    finished(tmp_path)
    path = sweep.point_path(tmp_path, POINTS[1])
    for round_ in range(2):  # the second .bad does not overwrite the first
        damage(path, sweep.point_path(tmp_path, POINTS[3]))
        with pytest.warns(sweepfiles.SweepFileWarning, match=reason):
            again = finished(tmp_path)
        assert again.computed == 1
        assert again.reused == 3
        assert squares(again) == [0.0, 1.0, 4.0, 9.0]
        assert len(list(tmp_path.glob("*.bad"))) == round_ + 1
    assert {p.name for p in tmp_path.glob("*.bad")} == {f"{path.name}.bad", f"{path.name}.1.bad"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert finished(tmp_path).reused == 4
        assert squares(sweep.load_sweep(tmp_path)) == [0.0, 1.0, 4.0, 9.0]
    damage(path, sweep.point_path(tmp_path, POINTS[3]))
    with pytest.warns(sweepfiles.SweepFileWarning, match=f"1 point files of .* left out: "
                      f"{path.name} .*{reason}"):
        loaded = sweep.load_sweep(tmp_path)  # read only: left out, not moved
    assert list(loaded.points) == [POINTS[0], POINTS[2], POINTS[3]]
    assert len(list(tmp_path.glob("*.bad"))) == 2


@pytest.mark.filterwarnings("ignore:the grid does not resolve")
def test_real_results_reload_without_complaint(tmp_path: Path) -> None:
    """The checksum survives the NetCDF round trip of the solver results (no endless recompute)."""
    model = {"name": "linear_ou"}
    stationary = {"method": "stationary", "cells": 40, "stability": False}
    timed = {"method": "sg", "cells": 20, "t_final": 0.01, "save_at": [0.0, 0.01]}
    for options, fn_points in ((stationary, [{"gamma": 2.0}, {"gamma": 20.0}]),
                               (timed, [{"gamma": 1.0}])):
        from functools import partial

        fn = partial(tasks.run_task, model, options)
        first = sweep.run_points(fn, fn_points, directory=tmp_path, context=options)
        with warnings.catch_warnings():
            warnings.simplefilter("error", sweepfiles.SweepFileWarning)
            again = sweep.run_points(fn, fn_points, directory=tmp_path, context=options)
        assert again.reused == len(fn_points)
        xr.testing.assert_identical(again.to_xarray(), first.to_xarray())


def test_unwritable_point_fails_alone(tmp_path: Path) -> None:
    blocked = sweep.point_path(tmp_path, POINTS[2])
    blocked.mkdir()  # a directory where the file goes: the rename fails, even for root
    (blocked / "keep.txt").write_text("mine")
    with pytest.warns(sweepfiles.SweepFileWarning,
                      match=r"1 of 4 sweep points .* could not be written \(\{'v': 2\}: writing "
                      r".*IsADirectoryError"):
        result = finished(tmp_path)
    assert squares(result) == [0.0, 1.0, 4.0, 9.0]  # in memory
    assert [p for p, _ in result.unsaved] == [POINTS[2]]
    assert len(list(tmp_path.glob("point-*.nc"))) == 4
    assert blocked.is_dir()
    assert (blocked / "keep.txt").read_text() == "mine"
    assert not list(tmp_path.glob(".*.part"))

    def tiny_or_fail(v: int) -> xr.Dataset:
        if v == 0:
            raise ArithmeticError("point zero fails")
        return tiny(v)

    (tmp_path / "fresh").mkdir()
    sweep.point_path(tmp_path / "fresh", POINTS[2]).mkdir()
    with pytest.raises(sweep.SweepError, match=r"1 of 4 sweep points failed .*point zero fails.*"
                       r"1 computed points could not be written") as caught:
        sweep.run_points(tiny_or_fail, POINTS, directory=tmp_path / "fresh")
    assert [p for p, _ in caught.value.failures] == [POINTS[0], POINTS[2]]
    assert caught.value.result.datasets[0] is None
    assert sum(p.is_file() for p in (tmp_path / "fresh").glob("point-*.nc")) == 2


@pytest.mark.parametrize(("point", "error", "match"), [
    ({"gamma": math.nan}, ValueError, "gamma=nan is not allowed: a finite number"),
    ({"gamma": -math.inf}, ValueError, "gamma=-inf is not allowed"),
    ({"sigma": [0.5, np.float64(np.inf)]}, ValueError, r"sigma\[1\]=inf is not allowed"),
    ({"gamma": object()}, TypeError, "gamma has type object"),
    ({"gamma": 1 + 2j}, TypeError, "gamma has type complex"),
    ({"gamma": {"a": np.nan}}, ValueError, "gamma.a=nan"),
    ({3: 1.0}, ValueError, "points\\[1\\]=3 is not allowed: parameter names"),
])
def test_invalid_values_are_refused_before_dispatch(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    point: dict, error: type, match: str) -> None:
    calls: list[Any] = []

    def recording(**p: Any) -> xr.Dataset:
        calls.append(p)
        return xr.Dataset()

    with pytest.raises(error, match=match):
        sweep.run_points(recording, [{"gamma": 1.0}, point], directory=tmp_path)
    assert calls == []
    assert not list(tmp_path.iterdir())

    def no_cluster(**kwargs: Any) -> None:
        raise AssertionError("a cluster was started before the points were checked")

    monkeypatch.setattr(sweep, "open_client", no_cluster)
    with pytest.raises(error, match=match):
        sweep.run_sweep(recording, [{"gamma": 1.0}, point], directory=tmp_path, workers=1)


def test_config_values_are_checked_before_dispatch() -> None:
    options = {"method": "stationary", "cells": 40}
    model = {"name": "linear_ou"}
    tasks.check_vary(model, options, {"gamma": [1.0, 2.0], "model.sigma": [0.5]})
    with pytest.raises(ValueError, match=r"sweep\.vary\.gamma=-1\.0 is not allowed"):
        tasks.check_vary(model, options, {"gamma": [1.0, -1.0]})
    with pytest.raises(ValueError, match=r"sweep\.vary\.cells=2 is not allowed"):
        tasks.check_vary(model, options, {"cells": [40, 2]})
    with pytest.raises(ValueError, match=r"sweep\.vary\.model\.sigma: .*sigma"):
        tasks.check_vary(model, options, {"model.sigma": [0.5, -1.0]})
    with pytest.raises(ValueError, match=r"sweep\.vary\.model\.sigma: .*model\.sigma=nan"):
        tasks.check_vary(model, options, {"model.sigma": [math.nan]})


def two_parameter_point(**point: float) -> xr.Dataset:
    value = point["gamma"] * point["model.sigma"]
    return xr.Dataset({"mean": (("population",), [value, -value])},
                      coords={"population": ["E", "I"]})


def test_two_parameter_sweep_is_a_2d_dataset(tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    points = sweep.grid_points(gamma=[10.0, 1.0, 100.0], **{"model.sigma": [0.4, 0.6]})
    serial = sweep.run_points(two_parameter_point, points, directory=tmp_path / "serial")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        dask = sweep.run_sweep(two_parameter_point, points, directory=tmp_path / "dask",
                               client=client)
    for result, name in ((serial, "serial.nc"), (dask, "dask.nc")):
        sweep.write_dataset(tmp_path / name, result.to_xarray())
        with xr.open_dataset(tmp_path / name) as ds:
            ds = ds.load()
        assert ds["mean"].dims == ("gamma", "model_sigma", "population")
        assert ds["gamma"].dtype == np.float64
        assert ds["model_sigma"].dtype == np.float64
        np.testing.assert_array_equal(ds.gamma.values, [1.0, 10.0, 100.0])
        np.testing.assert_array_equal(ds.model_sigma.values, [0.4, 0.6])
        assert ds["model_sigma"].attrs["parameter"] == "model.sigma"
        assert float(ds["mean"].sel(gamma=100.0, model_sigma=0.4, population="E")) == 40.0
        assert float(sweep.select(ds, {"gamma": 10.0, "model.sigma": 0.6})["mean"][1]) == -6.0
    xr.testing.assert_identical(serial.to_xarray(), dask.to_xarray())
    # an incomplete grid stays along ``point``, the parameters numeric coordinates on it
    partial_grid = sweep.combine(points[:5], serial.datasets[:5])
    assert partial_grid["mean"].dims == ("point", "population")
    assert partial_grid["model_sigma"].dtype == np.float64
    with pytest.raises(ValueError, match=r"model_sigma='model_sigma' is not allowed"):
        sweep.combine([{"model.sigma": 1.0, "model_sigma": 2.0}], serial.datasets[:1])


def test_two_configs_in_one_folder_keep_their_summaries(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from meanfield import cli

    names = {"low": "run", "high": "high"}  # [output] name: the default, and the config stem
    for stem, sigma in (("low", 0.4), ("high", 0.8)):
        (tmp_path / f"{stem}.toml").write_text(textwrap.dedent(f"""
            [model]
            name = "linear_ou"
            parameters = {{ sigma = {sigma} }}
            [solve]
            cells = 40
            stability = false
            [sweep]
            vary = {{ gamma = [2.0, 20.0] }}
            [output]
            dir = "{tmp_path}"
            name = "{names[stem]}"
            """))
        assert cli.main(["sweep", str(tmp_path / f"{stem}.toml"), "--workers", "1",
                         "--threads", "--no-progress"]) == 0
    capsys.readouterr()
    variances = {}
    for stem, file in (("low", "low-run"), ("high", "high")):  # <stem>-<name>, or the name
        with xr.open_dataset(tmp_path / f"{file}.nc") as ds:
            variances[stem] = ds["var"].isel(state=0).load()
        assert variances[stem].dims == ("gamma", "population")
    options = {"method": "stationary", "cells": 40, "stability": False}
    for stem, sigma in (("low", 0.4), ("high", 0.8)):
        model = {"name": "linear_ou", "parameters": {"sigma": sigma}}
        expected = [tasks.run_task(model, options, gamma=g)["var"].isel(state=0).values
                    for g in (2.0, 20.0)]
        np.testing.assert_array_equal(variances[stem].values, expected)
    assert np.all(variances["high"].values > 2 * variances["low"].values)
    path = tmp_path / "bad.toml"
    path.write_text((tmp_path / "low.toml").read_text().replace("[2.0, 20.0]", "[2.0, -1.0]"))
    assert cli.main(["sweep", str(path), "--workers", "1", "--threads", "--no-progress"]) == 2
    assert "sweep.vary.gamma=-1.0 is not allowed" in capsys.readouterr().err
    assert not (tmp_path / "bad-run-points").exists()
    assert sorted(p.name for p in tmp_path.glob("*-points")) == ["high-points", "low-run-points"]
