"""The ``meanfield`` command: every sub-command with --help, solve/sweep/derive on small configs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import asymptotics
import solvers
from meanfield import cli, models
from meanfield.models import CATALOGUE

COMMANDS = ["demo", "solve", "sweep", "derive", "models"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main([command, "--help"])
    assert stop.value.code == 0
    assert f"usage: meanfield {command}" in capsys.readouterr().out


def test_top_level_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command in out


def test_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    for name in CATALOGUE:
        assert f"\n{name}\n" in f"\n{out}"
    assert "reversal = (2.0, -1.5)" in out


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_solve_stationary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, f"""
        [model]
        name = "linear_ou"
        [solve]
        gamma = 50.0
        cells = 100
        starts = 4
        [output]
        dir = "{tmp_path / 'out'}"
        name = "ou"
        """)
    assert cli.main(["solve", str(path)]) == 0
    out = capsys.readouterr().out
    with xr.open_dataset(tmp_path / "out" / "ou.nc") as ds:
        ds = ds.load()
    assert ds["stable"].values.tolist() == [1]
    (state,) = solvers.stationary_states(models.linear_ou(), gamma=50.0, cells=100, starts=4,
                                         stability=False)
    np.testing.assert_array_equal(ds["mean"].values[0], state.mean)
    np.testing.assert_array_equal(ds["rho"].values[0], state.rho)
    assert f"{state.mean[0]:14.8f}" in out
    assert (tmp_path / "out" / "ou-densities.png").stat().st_size > 1000


def test_solve_time_dependent_matches_solvers(tmp_path: Path) -> None:
    path = write(tmp_path, f"""
        [model]
        name = "chemical"
        [solve]
        gamma = 2.0
        method = "sg"
        cells = 80
        t_final = 0.2
        save_at = [0.0, 0.1, 0.2]
        [output]
        dir = "{tmp_path}"
        figures = false
        """)
    assert cli.main(["solve", str(path)]) == 0
    with xr.open_dataset(tmp_path / "run.nc") as ds:
        ds = ds.load()
    sol = solvers.solve(models.chemical(), gamma=2.0, t_final=0.2, cells=80,
                        save_at=[0.0, 0.1, 0.2])
    np.testing.assert_array_equal(ds["rho"].values, sol.rho)
    assert not (tmp_path / "run-densities.png").exists()


def test_sweep_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, f"""
        [model]
        name = "linear_ou"
        [solve]
        cells = 120
        starts = 4
        stability = false
        [sweep]
        vary = {{ gamma = [1.0, 10.0, 100.0], "model.sigma" = [0.4, 0.6] }}
        [output]
        dir = "{tmp_path}"
        name = "ou"
        """)
    args = ["sweep", str(path), "--workers", "2", "--threads", "--no-progress"]
    assert cli.main(args) == 0
    assert "6 points: 6 computed, 0 reused" in capsys.readouterr().out
    with xr.open_dataset(tmp_path / f"{path.stem}-ou.nc") as ds:  # <config stem>-<name>
        ds = ds.load()
    assert dict(ds["var"].sizes) == {"gamma": 3, "model_sigma": 2, "state": 1, "population": 2}
    assert len(list((tmp_path / f"{path.stem}-ou-points").glob("point-*.nc"))) == 6
    # linear OU: var_p = D_p/(α_p + γ A_p) (docstring of models.linear_ou); D = σ²/2
    row = ds.isel(gamma=2, model_sigma=1, state=0)
    assert float(row["gamma"]) == 100.0 and float(row["model_sigma"]) == 0.6
    (state,) = solvers.stationary_states(models.linear_ou(sigma=0.6), gamma=100.0, cells=120,
                                         starts=4, stability=False)
    np.testing.assert_array_equal(row["var"].values, state.var)
    (tmp_path / f"{path.stem}-ou-points" / "notes.txt").write_text("unrelated files are ignored")
    assert cli.main(args) == 0
    assert "6 points: 0 computed, 6 reused" in capsys.readouterr().out


def test_derive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, """
        [model]
        name = "chemical_single"
        """)
    assert cli.main(["derive", str(path), "--order", "1"]) == 0
    out = capsys.readouterr().out
    assert "== balance manifold and balance points" in out
    assert "balance point v = [2.0] (stable)" in out  # v* = E = 2 (models.chemical_single)
    assert "== Hopf–Cole transform" in out and "== rescaled equation" in out
    assert cli.main(["derive", str(path), "--latex"]) == 0
    assert "% balance manifold" in capsys.readouterr().out


def test_derive_without_asymptotics_pieces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delattr(asymptotics, "balance_points")
    path = write(tmp_path, """
        [model]
        name = "chemical_single"
        """)
    assert cli.main(["derive", str(path)]) == 0
    out = capsys.readouterr().out
    assert "not available in this installation (asymptotics.balance_points is missing)" in out


def test_bad_config_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, """
        [model]
        name = "chemical"
        [solve]
        gamma = 1.0
        method = "euler"
        """)
    assert cli.main(["solve", str(path)]) == 2
    err = capsys.readouterr().err
    assert "meanfield solve: solve.method='euler' is not allowed: one of stationary, sg, fipy" in err
    assert cli.main(["sweep", str(tmp_path / "none.toml")]) == 2


def test_demo_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--quick", "--no-progress", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Fitted log–log slopes" in out
    for name in ("gamma-convergence.nc", "densities.png", "errors.png", "transient.png",
                 "transient-gamma100.nc"):
        assert (tmp_path / name).exists(), name
    with xr.open_dataset(tmp_path / "gamma-convergence.nc") as ds:
        ds = ds.load()
    slopes = ds["fitted_slope"]
    np.testing.assert_allclose(slopes.sel(quantity="balance_point").values, [-1, -1], atol=0.1)
    np.testing.assert_allclose(slopes.sel(quantity="mean").values, [-2, -2], atol=0.25)
    transient = solvers.load(tmp_path / "transient-gamma100.nc")
    np.testing.assert_allclose(transient.mass[-1], 1.0, atol=1e-12)
