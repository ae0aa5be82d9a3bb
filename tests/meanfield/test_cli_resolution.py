"""``meanfield solve`` (stationary) tells the user when the grid does not resolve the states (#13)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import solvers
from meanfield import cli, models


def write(tmp_path: Path, cells: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(textwrap.dedent(f"""
        [model]
        name = "linear_ou"
        [solve]
        gamma = 10000.0
        cells = {cells}
        starts = 4
        stability = false
        [output]
        dir = "{tmp_path / 'out'}"
        name = "ou"
        figures = false
        """))
    return path


def warning_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning:")]


def test_unresolved_stationary_states_are_warned_about_and_flagged_in_the_dataset(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["solve", str(write(tmp_path, "100"))]) == 0
    captured = capsys.readouterr()
    (line,) = warning_lines(captured.err)
    assert re.fullmatch(r"warning: ResolutionWarning: the grid does not resolve the concentration "
                        r"width .* on 100 cells; use about cells=\d+ or more.*", line), line
    needed = int(re.search(r"cells=(\d+)", line).group(1))
    with xr.open_dataset(tmp_path / "out" / "ou.nc") as ds:
        ds = ds.load()
    assert ds["resolved"].values.tolist() == [0]
    assert int(ds["cells_needed"].values[0]) == needed > 100
    assert float(ds["expected_error"].max()) > 0.01
    assert "use about cells=" in ds.attrs["resolution"]
    # the reported variance really is off: the exact OU state has var = D/(γA) per population
    fine = solvers.stationary_states(models.linear_ou(), gamma=1e4, cells=4 * needed, starts=4,
                                     stability=False)[0]
    assert np.max(np.abs(ds["var"].values[0] / fine.var - 1)) > 0.01


def test_cells_auto_resolves_the_states_without_a_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["solve", str(write(tmp_path, '"auto"'))]) == 0
    captured = capsys.readouterr()
    assert warning_lines(captured.err) == []
    with xr.open_dataset(tmp_path / "out" / "ou.nc") as ds:
        ds = ds.load()
    assert ds["resolved"].values.tolist() == [1]
    assert ds.attrs["cells"] > 100
    assert float(ds["expected_error"].max()) <= 0.01
    assert "resolved on" in ds.attrs["resolution"]


def test_cells_must_be_an_integer_or_auto(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["solve", str(write(tmp_path, '"many"'))]) == 2
    err = capsys.readouterr().err
    assert re.search(r"solve\.cells='many' is not allowed: an integer >= 3 or \"auto\"", err), err
