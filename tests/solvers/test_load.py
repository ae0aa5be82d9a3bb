"""``solvers.load`` treats a result file as data: every array checked, the file named in every error."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import solvers
from meanfield import models

MODEL = models.linear_ou()


@pytest.fixture(scope="module")
def solution() -> solvers.Solution:
    grid = solvers.Grid.uniform(*MODEL.domain, 8)
    bump = np.exp(-grid.x**2)
    rho = np.stack([np.stack([bump, bump[::-1]]) * (1 + k) for k in range(3)])
    rho /= (rho @ grid.h)[..., None]
    return solvers.Solution.from_densities(MODEL, 3.0, "sg", grid, [0.0, 0.1, 0.2], rho,
                                           info={"steps": 7, "scheme": "bdf2"})


def test_round_trip(solution: solvers.Solution, tmp_path: Path) -> None:
    solution.save(tmp_path / "ok.nc")
    back = solvers.load(tmp_path / "ok.nc")
    for name in ("t", "x", "rho", "mass", "mean", "var", "m", "balance_residual", "edges"):
        np.testing.assert_array_equal(getattr(back, name), getattr(solution, name))
    assert (back.gamma, back.method, back.info) == (3.0, "sg", {"steps": 7, "scheme": "bdf2"})
    assert back.model.to_json() == MODEL.to_json()
    assert back.grid.cells == 8


def _swap_var(name: str, values: Callable[[np.ndarray], np.ndarray]) -> Callable:
    def edit(ds: xr.Dataset) -> xr.Dataset:
        ds = ds.copy()
        ds[name] = (ds[name].dims, values(ds[name].values))
        return ds
    return edit


def _first_nan(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flat[3] = np.nan
    return a


def _first_negative(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flat[3] = -0.5
    return a


def _attr(name: str, value: object) -> Callable[[xr.Dataset], xr.Dataset]:
    def edit(ds: xr.Dataset) -> xr.Dataset:
        ds = ds.copy()
        ds.attrs[name] = value
        return ds
    return edit


def _drop_attr(ds: xr.Dataset) -> xr.Dataset:
    ds = ds.copy()
    del ds.attrs["model"]
    return ds


def _new_times(ds: xr.Dataset) -> xr.Dataset:
    return ds.assign_coords(t=[0.0, 0.2, 0.1])


def _new_x(ds: xr.Dataset) -> xr.Dataset:
    return ds.assign_coords(x=ds["x"].values + 0.01)


EDITS = [
    (lambda ds: ds.isel(x=slice(0, 5)), r"edges has shape \(9,\), expected \(6,\)"),
    (lambda ds: ds.isel(t=slice(0, 2)).assign(mass=ds["mass"].isel(t=slice(0, 1))
                                               .rename(t="t2")),
     r"mass has dims \('t2', 'population'\), expected \('t', 'population'\)"),
    (lambda ds: ds.transpose("x", "t", "population", "edge"), r"rho has dims \('x', 't', 'population'\)"),
    (lambda ds: ds.drop_vars(["var", "edges"]), "the variables var, edges are missing"),
    (lambda ds: ds.assign_coords(population=["A", "B"]),
     r"the populations \['A', 'B'\] differ from those of the model \['E', 'I'\]"),
    (_attr("model", models.chemical_single().to_json()), r"the populations \['E', 'I'\] differ"),
    (_attr("model", "{not json"), "the attribute 'model' is not a valid model"),
    (_attr("model", json.dumps({"populations": 3})), "the attribute 'model' is not a valid model"),
    (_attr("model", "x" * 1_000_001), "the attribute 'model' has 1000001 characters"),
    (_drop_attr, "the attribute 'model' is missing"),
    (_attr("gamma", "3.0"), "the attribute 'gamma' is '3.0', expected a finite number >= 0"),
    (_attr("gamma", -1.0), "the attribute 'gamma' is -1.0"),
    (_attr("method", 4), "the attribute 'method' is a int64, not text"),
    (_attr("info", "[1, 2]"), "the attribute 'info' is JSON of a list"),
    (_attr("info", "{oops"), "the attribute 'info' is not JSON"),
    (_swap_var("rho", _first_nan), "rho has 1 values that are NaN or infinite"),
    (_swap_var("rho", _first_negative), r"rho has negative values \(down to -0.5\)"),
    (_swap_var("rho", lambda a: 2 * a), "mass does not match the integral of rho"),
    (_swap_var("m", lambda a: a > 0), "m has dtype bool, expected real numbers"),
    (_swap_var("mean", lambda a: a.astype(str)), "mean has dtype <U"),
    (_swap_var("edges", lambda a: a[::-1].copy()), "edges are not strictly increasing"),
    (_new_x, "x are not the midpoints of the edges"),
    (_new_times, "the times t are not strictly increasing"),
]


@pytest.mark.parametrize(("edit", "match"), EDITS)
def test_inconsistent_files_are_refused(solution: solvers.Solution, tmp_path: Path,
                                        edit: Callable[[xr.Dataset], xr.Dataset],
                                        match: str) -> None:
    path = tmp_path / "edited.nc"
    edit(solution.to_xarray()).to_netcdf(path)
    with pytest.raises(ValueError, match=rf"^result file {path}: {match}"):
        solvers.load(path)


def test_unreadable_files_name_the_file(solution: solvers.Solution, tmp_path: Path) -> None:
    solution.save(tmp_path / "ok.nc")
    whole = (tmp_path / "ok.nc").read_bytes()
    files = {"empty.nc": b"", "truncated.nc": whole[: len(whole) // 3],
             "text.nc": b"rho = [1, 2, 3]\n", "head.nc": whole[:8]}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match=rf"^result file {tmp_path / name}: cannot be read"):
            solvers.load(tmp_path / name)
    foreign = tmp_path / "foreign.nc"
    xr.Dataset({"temperature": (("time",), [1.0, 2.0])}).to_netcdf(foreign)
    with pytest.raises(ValueError, match=rf"^result file {foreign}: the variables rho, mass, "
                       r"mean, var, m, balance_residual, edges, t, x, population are missing"):
        solvers.load(foreign)
    with pytest.raises(FileNotFoundError, match=f"result file {tmp_path / 'none.nc'}"):
        solvers.load(tmp_path / "none.nc")
    with pytest.raises(FileNotFoundError, match=f"result file {tmp_path}: no such file"):
        solvers.load(tmp_path)  # a folder
    with pytest.raises(TypeError, match="path has type int"):
        solvers.load(3)  # type: ignore[arg-type]
