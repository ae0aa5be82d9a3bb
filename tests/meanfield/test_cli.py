"""The ``meanfield`` command: every sub-command with --help, solve/sweep/derive on small configs."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

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


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from meanfield import __version__

    with pytest.raises(SystemExit) as stop:
        cli.main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"meanfield {__version__}"


def test_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    for name in CATALOGUE:
        assert f"\n{name}\n" in f"\n{out}"
    assert "      reversal = (2.0, -1.5)\n          reversal potential E_q of each presynaptic" in out
    assert "      drift = -x**3/3 + x\n" in out  # expressions as text, not repr
    assert "`" not in out
    assert ":func:" not in out
    # every parameter of every model has its meaning under its default
    for name, fn in CATALOGUE.items():
        block = out.split(f"\n{name}\n", 1)[1] if name != "chemical" else out
        for param in __import__("inspect").signature(fn).parameters:
            match = re.search(rf"^      {param} = .*\n          (\S.*)$", block, flags=re.M)
            assert match, (name, param)


def _meanfield_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "meanfield.cli", *args]


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(Path(cli.__file__).resolve().parents[1])}


def test_models_into_a_closed_pipe_exits_cleanly() -> None:
    # `meanfield models | head -1`, as the shell runs it
    shell = subprocess.run(["bash", "-c", "set -o pipefail; " + " ".join(
        _meanfield_command("models")) + " | head -1"], capture_output=True, text=True,
        env=_env(), timeout=120)
    assert shell.returncode == 0
    assert shell.stdout == "chemical\n"
    assert "Traceback" not in shell.stderr
    assert "BrokenPipe" not in shell.stderr
    # the reader closes before anything is written: the write fails for certain
    proc = subprocess.Popen(_meanfield_command("models"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=_env())
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 0
    assert err == ""


def test_compilation_message_once(monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("numba")
    monkeypatch.setattr(cli, "_kernels_cached", lambda: False)
    state: dict = {}
    cli._announce_compilation(state)
    cli._announce_compilation(state)
    assert capsys.readouterr().err == cli.COMPILING + "\n"
    monkeypatch.setattr(cli, "_kernels_cached", lambda: True)
    cli._announce_compilation({})
    assert capsys.readouterr().err == ""


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
    assert ds.attrs["model_name"] == "linear_ou"  # the file remembers what to call the model
    (state,) = solvers.stationary_states(models.linear_ou(), gamma=50.0, cells=100, starts=4,
                                         stability=False)
    np.testing.assert_array_equal(ds["mean"].values[0], state.mean)
    np.testing.assert_array_equal(ds["rho"].values[0], state.rho)
    assert f"{state.mean[0]:14.8f}" in out
    assert "stability" in out.splitlines()[0]
    assert out.splitlines()[1].endswith(" stable")
    assert (tmp_path / "out" / "ou-densities.png").stat().st_size > 1000


def test_solve_table_and_figure_show_stability(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, f"""
        [model]
        name = "chemical_single"
        [solve]
        gamma = 2.5
        cells = 150
        [output]
        dir = "{tmp_path}"
        name = "bistable"
        """)
    assert cli.main(["solve", str(path), "--pdf"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if "state=" in line]
    # the bistable range of models.chemical_single: quiet and active states, unstable between
    assert [row[-1] for row in rows] == ["stable", "unstable", "stable"]
    assert (tmp_path / "bistable-densities.png").stat().st_size > 1000
    assert (tmp_path / "bistable-densities.pdf").read_bytes()[:5] == b"%PDF-"


def test_warnings_are_one_clean_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, f"""
        [model]
        name = "chemical"
        [solve]
        gamma = 1000.0
        method = "sg"
        cells = 40
        t_final = 0.001
        save_at = [0.0, 0.001]
        [output]
        dir = "{tmp_path}"
        figures = false
        """)
    assert cli.main(["solve", str(path), "--no-progress"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning")]
    assert err, "40 cells cannot resolve the width at γ = 1000: a warning is expected"
    for line in err:
        assert re.fullmatch(r"warning: \w+Warning: the grid does not resolve .*", line), line
        assert ".py" not in line


def test_progress_bar_over_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, f"""
        [model]
        name = "linear_ou"
        [solve]
        gamma = 1.0
        method = "sg"
        cells = 60
        t_final = 0.1
        [output]
        dir = "{tmp_path}"
        figures = false
        """)
    assert cli.main(["solve", str(path), "--progress"]) == 0
    captured = capsys.readouterr()
    assert "sg:" in captured.err
    assert "100%" in captured.err
    assert "log-spaced" in captured.out  # no save_at: log-spaced times from 0.1/γ
    with xr.open_dataset(tmp_path / "run.nc") as ds:
        np.testing.assert_allclose(ds["t"].values[1], 0.1 / 10, rtol=1e-12)
    assert cli.main(["solve", str(path), "--no-progress"]) == 0
    assert "sg:" not in capsys.readouterr().err


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
    assert float(row["gamma"]) == 100.0
    assert float(row["model_sigma"]) == 0.6
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
    assert "== Hopf–Cole transform" in out
    assert "== rescaled equation" in out
    assert "== symbols" in out
    assert "rho_E: probability density of population E" in out
    assert cli.main(["derive", str(path), "--latex"]) == 0
    assert "% balance manifold" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["chemical_single", "chemical", "current_balanced"])
def test_derive_latex_is_valid_math(name: str, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    from matplotlib.mathtext import MathTextParser

    path = write(tmp_path, f"""
        [model]
        name = "{name}"
        """)
    assert cli.main(["derive", str(path), "--latex", "--order", "1"]) == 0
    out = capsys.readouterr().out
    equations = re.findall(r"\\begin\{equation\}(.*?)\\end\{equation\}", out, flags=re.S)
    labels = re.findall(r"\\label\{(eq:[\w,-]+)\}", out)
    assert len(labels) == len(equations) == len(set(labels)) >= 4  # every line labelled, once
    parser = MathTextParser("path")
    for equation in equations:
        math = re.sub(r"\\label\{[^}]*\}", "", equation).strip()
        parser.parse(f"${math}$")  # raises on invalid TeX
    # derivatives of products keep their parentheses; symbol names are valid TeX
    assert r"\partial_{x} \left(" in out
    assert "u_well" not in out.split("% symbols")[0]
    # every non-comment line is inside an equation environment
    body = re.sub(r"\\begin\{equation\}.*?\\end\{equation\}", "", out, flags=re.S)
    assert all(not line.strip() or line.startswith("%") for line in body.splitlines())
    tex = tmp_path / "derive.tex"
    assert cli.main(["derive", str(path), "--out", str(tex)]) == 0
    document = tex.read_text()
    assert document.startswith("\\documentclass{article}")
    assert document.rstrip().endswith(
        "\\end{document}")
    assert document.count("\\begin{equation}") == len(equations)
    assert "\\section*{symbols}" in document
    assert "\\begin{itemize}" in document
    assert cli.main(["derive", str(path), "--out", str(tmp_path / "derive.txt")]) == 2


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
                 "collapse.png", "transient-gamma100.nc", "transient-gamma1000.nc"):
        assert (tmp_path / name).exists(), name
    with xr.open_dataset(tmp_path / "gamma-convergence.nc") as ds:
        ds = ds.load()
    slopes = ds["fitted_slope"]
    np.testing.assert_allclose(slopes.sel(quantity="balance_point").values, [-1, -1], atol=0.1)
    np.testing.assert_allclose(slopes.sel(quantity="mean").values, [-2, -2], atol=0.25)
    transient = solvers.load(tmp_path / "transient-gamma100.nc")
    np.testing.assert_allclose(transient.mass[-1], 1.0, atol=1e-12)
    # the γ = 1000 transient is saved through its initial layer t ~ 1/γ
    layer = solvers.load(tmp_path / "transient-gamma1000.nc")
    assert np.count_nonzero((layer.t > 0) & (layer.t < 5e-3)) >= 4


def test_derive_plain_names_every_symbol() -> None:
    from meanfield.studies import derivations

    for name, fn in CATALOGUE.items():
        text = derivations.report(fn(), order=1)
        equations, symbols = text.split("== symbols\n")
        listed = {line.split(":")[0] for line in symbols.splitlines() if line.strip()}
        notes = ("==", "balance point", "principal", "balanced moments", "not available",
                 "does not")
        lines = [line for line in equations.splitlines() if not line.startswith(notes)]
        used = set(re.findall(r"[A-Za-z][A-Za-z0-9]*(?:_(?:\{[\w,]+\}|[A-Za-z0-9]+))*",
                              "\n".join(lines)))
        functions = {"Integral", "tanh", "Derivative", "exp", "log", "sqrt", "Eq"}
        assert used - functions <= listed, (name, used - functions - listed)
        assert "a parameter of the model" not in symbols, name
    assert derivations.symbol_meanings(["m_X"], ["E"]) == [
        "m_X: level of the external input X (given)"]


def test_kernel_cache_detection(tmp_path: Path) -> None:
    pytest.importorskip("numba")
    import warnings

    # compile (or load) the kernels once: afterwards numba's cache holds them
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        solvers.solve(models.linear_ou(), gamma=1.0, t_final=0.01, cells=20)
    assert cli._kernels_cached()
