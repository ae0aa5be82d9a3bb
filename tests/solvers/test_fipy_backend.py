"""The FiPy back end: options, exact equilibria, invariants, the sweep limit, adaptive steps."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import meanfield as mf
import solvers
from solvers.fipy_backend import (
    SweepDivergenceError,
    fipy_options,
    solve_fipy,
    sweep_contraction,
)


def quiet_solve(model: mf.Model, **kwargs: object) -> solvers.Solution:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # unresolved-width warning of coarse grids
        return solvers.solve(model, method="fipy", **kwargs)


def stationary(model: mf.Model, gamma: float, grid: solvers.Grid) -> solvers.StationaryState:
    return solvers.stationary_states(model, gamma=gamma, grid=grid, stability=False)[-1]


# ---------------------------------------------------------------- options and bad input


def test_unknown_options_are_rejected_by_name() -> None:
    with pytest.raises(TypeError, match=r"unknown FiPy option\(s\) \['colour', 'sweeps'\]"):
        fipy_options(sweeps=3, colour="red")
    model = mf.models.chemical_single()
    with pytest.raises(TypeError, match=r"unknown FiPy option\(s\) \['scheme'\]"):
        solvers.solve(model, gamma=1.0, t_final=0.1, cells=80, method="fipy", scheme="bdf2")


@pytest.mark.parametrize(("options", "message"), [
    ({"solver": "cg"}, r"solver='cg' is not allowed: one of \['bicgstab', 'cgs', 'gmres', 'lu'\]"),
    ({"solver": 3}, r"solver has type int"),
    ({"max_sweeps": 1}, r"max_sweeps=1 is not allowed: an integer >= 2"),
    ({"max_sweeps": 2.5}, r"max_sweeps has type float"),
    ({"sweep_tol": 0.0}, r"sweep_tol=0.0 is not allowed: a number > 0"),
    ({"sweep_tol": 2.0}, r"sweep_tol=2.0 is not allowed: a tolerance in \[1e-13, 1\)"),
    ({"sweep_tol": 1e-15}, r"sweep_tol=1e-15 is not allowed: a tolerance in \[1e-13, 1\)"),
    ({"linear_tol": -1.0}, r"linear_tol=-1.0 is not allowed"),
    ({"velocity": "centres"}, r"velocity='centres' is not allowed: one of \['faces', 'averaged'\]"),
    ({"max_steps": 0}, r"max_steps=0 is not allowed"),
])
def test_bad_option_values(options: dict[str, object], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        fipy_options(**options)


def test_bad_direct_arguments() -> None:
    model = mf.models.chemical_single()
    grid = solvers.Grid.uniform(*model.domain, 10)
    args = {"gamma": 1.0, "t_final": 1.0, "grid": grid, "dt": 0.5, "rtol": 1e-3, "atol": 1e-6,
            "save_at": np.array([0.0, 1.0])}
    with pytest.raises(ValueError, match=r"rho0=\(1, 9\) is not allowed: shape \(1, 10\)"):
        solve_fipy(model, rho0=np.ones((1, 9)), **args)
    with pytest.raises(TypeError, match="grid has type tuple"):
        solve_fipy(model, rho0=np.ones((1, 10)), **{**args, "grid": (0, 1)})
    with pytest.raises(ValueError, match=r"save_at=.* sorted increasing times starting at 0"):
        solve_fipy(model, rho0=np.ones((1, 10)), **{**args, "save_at": np.array([1.0, 0.5])})


def test_bad_sweep_contraction_arguments() -> None:
    model = mf.models.chemical_single()
    grid = solvers.Grid.uniform(*model.domain, 10)
    with pytest.raises(ValueError, match=r"rho=\(2, 10\) is not allowed: shape \(1, 10\)"):
        sweep_contraction(model, gamma=1.0, dt=0.1, grid=grid, rho=np.ones((2, 10)))
    with pytest.raises(ValueError, match=r"dt=0.0 is not allowed: a number > 0"):
        sweep_contraction(model, gamma=1.0, dt=0.0, grid=grid, rho=np.ones((1, 10)))
    with pytest.raises(TypeError, match="model has type str"):
        sweep_contraction("chemical", gamma=1.0, dt=0.1, grid=grid, rho=np.ones((1, 10)))


# ---------------------------------------------------------------- equilibria: where FiPy differs


def test_averaged_face_velocity_keeps_exact_gibbs_states() -> None:
    """With ``u = −ΔU/Δx`` FiPy's exponential scheme *is* Scharfetter–Gummel: Gibbs is fixed."""
    model = mf.models.chemical()
    grid = solvers.Grid(np.linspace(-5, 5, 41) + 0.05 * np.sin(np.linspace(0, 6.2, 41)))
    state = stationary(model, 10.0, grid)
    sol = quiet_solve(model, gamma=10.0, t_final=1.5, grid=grid, initial=state.rho, dt=0.5,
                      save_at=[], velocity="averaged")
    drift = np.max(np.abs(sol.rho[-1] - state.rho) @ grid.h)
    assert drift <= 1e-11  # measured 2e-14
    # the default face-sampled velocity does not: O(h²) away (measured 6.4e-3 at 40 cells)
    faces = quiet_solve(model, gamma=10.0, t_final=1.5, grid=grid, initial=state.rho, dt=0.5,
                        save_at=[])
    assert 1e-3 <= np.max(np.abs(faces.rho[-1] - state.rho) @ grid.h) <= 3e-2


def test_face_velocity_is_exact_for_affine_drift_on_uniform_grids(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Affine ``f − γh`` at the midpoint face equals its mean between centres: no difference."""
    model = mf.models.current_balanced()
    grid = solvers.Grid.uniform(*model.domain, 40)
    state = stationary(model, 100.0, grid)
    sol = quiet_solve(model, gamma=100.0, t_final=0.06, grid=grid, initial=state.rho, dt=0.02,
                      save_at=[], progress=True)
    assert np.max(np.abs(sol.rho[-1] - state.rho) @ grid.h) <= 1e-11
    assert "fipy" in capsys.readouterr().err  # the tqdm progress bar


def test_relaxes_to_its_own_equilibrium_second_order_close_to_gibbs() -> None:
    """Long run from the model's initial density: mass kept, positive, FiPy's equilibrium O(h²)
    from the exact Gibbs state (observed order 2.0 ± 0.3 on 30/60/120 stretched cells)."""
    model = mf.models.chemical_single()
    diffs, cells_list = [], (30, 60, 120)
    for cells in cells_list:
        s = np.linspace(0, 1, cells + 1)
        grid = solvers.Grid(-3 + 8 * (s + 0.3 * np.sin(2 * np.pi * s) / (2 * np.pi)))
        state = stationary(model, 10.0, grid)
        sol = quiet_solve(model, gamma=10.0, t_final=40.0, grid=grid, dt=2.0, save_at=[38.0])
        assert np.max(np.abs(sol.mass - 1)) <= 1e-12
        assert sol.rho.min() >= -1e-13 * sol.rho.max()
        assert np.max(np.abs(sol.rho[-1] - sol.rho[-2]) @ grid.h) <= 1e-10  # steady
        diffs.append(float(np.abs(sol.rho[-1, 0] - state.rho[0]) @ grid.h))
    order = -np.polyfit(np.log(cells_list), np.log(diffs), 1)[0]
    assert abs(order - 2.0) <= 0.3, diffs
    assert diffs[-1] <= 3e-3, diffs  # measured 2.7e-2, 5.8e-3, 1.5e-3 (order 2.1)


# ---------------------------------------------------------------- the documented sweep limit


def test_sweep_contraction_grows_like_gamma_dt_for_current_coupling() -> None:
    """Lagged moments: the sweep map contracts by ≈ 0.24 γ·dt (current_balanced, γ = 1000)."""
    model = mf.models.current_balanced()
    grid = solvers.Grid.uniform(*model.domain, 60)
    state = stationary(model, 1000.0, grid)
    factors = {gdt: sweep_contraction(model, gamma=1000.0, dt=gdt / 1000.0, grid=grid,
                                      rho=state.rho) for gdt in (1.0, 4.0, 5.0)}
    for gdt, factor in factors.items():
        assert 0.22 <= factor / gdt <= 0.26, factors  # measured 0.2406, 0.2399, 0.2397
    assert factors[4.0] < 1.0 < factors[5.0]  # the limit: γ·dt ≈ 4.2


def resolved(model: mf.Model, gamma: float, cells: int
             ) -> tuple[solvers.Grid, solvers.StationaryState]:
    """A uniform grid over ±10 standard deviations of the stationary state, and that state."""
    coarse = stationary(model, gamma, solvers.Grid.uniform(*model.domain, 400))
    std = np.sqrt(coarse.var)
    a = max(model.domain[0], float(np.min(coarse.mean - 10 * std)))
    b = min(model.domain[1], float(np.max(coarse.mean + 10 * std)))
    grid = solvers.Grid.uniform(a, b, cells)
    return grid, stationary(model, gamma, grid)


@pytest.mark.parametrize(("name", "gamma", "gamma_dt", "low", "high"), [
    ("chemical", 1.0, 16.0, 0.40, 0.55),          # measured 0.4726
    ("chemical", 1.0, 64.0, 1.08, 1.25),          # measured 1.1651: the limit is in (16, 64)
    ("chemical", 1000.0, 1e4, 0.20, 0.30),        # measured 0.2473: no limit
    ("chemical_single", 1.0, 1e4, 0.13, 0.19),    # measured 0.1589
    ("linear_ou", 1.0, 1e4, 0.030, 0.045),        # measured 0.0384
])
def test_sweep_contraction_of_concentrating_models(name: str, gamma: float, gamma_dt: float,
                                                   low: float, high: float) -> None:
    model = mf.models.CATALOGUE[name]()
    grid, state = resolved(model, gamma, 60)
    factor = sweep_contraction(model, gamma=gamma, dt=gamma_dt / gamma, grid=grid, rho=state.rho)
    assert low <= factor <= high


def test_fixed_steps_converge_below_and_fail_above_the_sweep_limit() -> None:
    model = mf.models.current_balanced()
    grid = solvers.Grid.uniform(*model.domain, 60)
    state = stationary(model, 1000.0, grid)
    rho0 = state.rho * (1 + 0.05 * np.sin(grid.x))[None, :]
    ok = quiet_solve(model, gamma=1000.0, t_final=3e-3, grid=grid, initial=rho0, dt=3e-3,
                     save_at=[])
    assert ok.info["steps"] == 1
    assert 2 <= ok.info["max_sweeps_in_step"] <= 60
    assert ok.info["max_gamma_dt"] == pytest.approx(3.0)
    with pytest.raises(SweepDivergenceError, match=r"gamma\*dt=6"):
        quiet_solve(model, gamma=1000.0, t_final=6e-3, grid=grid, initial=rho0, dt=6e-3,
                    save_at=[])


def test_sweep_divergence_error_names_a_gamma_dt_that_converges() -> None:
    # the contraction ≈ 0.24 γ·dt of current coupling: the advice aims at 0.5, γ·dt ≈ 2.1
    model = mf.models.current_balanced()
    grid = solvers.Grid.uniform(*model.domain, 60)
    rho0 = stationary(model, 1000.0, grid).rho * (1 + 0.05 * np.sin(grid.x))[None, :]
    with pytest.raises(SweepDivergenceError, match=r"spectral radius 1\.\d+ .*use gamma\*dt <= "
                                                   r"(\d\.\d+) \(dt <= ") as failure:
        quiet_solve(model, gamma=1000.0, t_final=6e-3, grid=grid, initial=rho0, dt=6e-3,
                    save_at=[])
    advised = float(re.search(r"dt <= ([0-9.e-]+)\)", str(failure.value)).group(1))
    assert 1.5e-3 < advised < 3e-3
    ok = quiet_solve(model, gamma=1000.0, t_final=3 * advised, grid=grid, initial=rho0,
                     dt=advised, save_at=[])
    assert ok.info["steps"] == 3
    assert ok.info["max_gamma_dt"] <= 1000.0 * advised * (1 + 1e-9)


# ---------------------------------------------------------------- time stepping


def test_adaptive_steps_error_follows_the_tolerance() -> None:
    """Uniform grid, affine drift: FiPy's space discretisation equals sg's, so the difference
    to a tight sg reference is the time error of the adaptive backward-Euler steps. The local
    error per step is controlled, so the global error of this first-order method scales like
    ``rtol^{1/2}`` (measured 5.7e-2 at rtol = 1e-2, 1.9e-2 at 1e-3: exponent 0.47)."""
    model = mf.models.chemical_single()
    grid = solvers.Grid.uniform(*model.domain, 40)
    rho0 = np.exp(-((grid.x - 1.0) ** 2))[None, :]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        reference = solvers.solve(model, gamma=10.0, t_final=0.2, grid=grid, initial=rho0,
                                  rtol=1e-7, atol=1e-10, save_at=[], kernel="numpy")
    errors, steps = [], []
    for rtol in (1e-2, 1e-3):
        sol = quiet_solve(model, gamma=10.0, t_final=0.2, grid=grid, initial=rho0, rtol=rtol,
                          atol=1e-8, save_at=[])
        assert sol.info["adaptive"]
        assert sol.info["stepper"] == "backward_euler+extrapolation_estimate"
        errors.append(float(np.max(np.abs(sol.rho[-1] - reference.rho[-1]) @ grid.h)))
        steps.append(sol.info["steps"])
    assert errors[0] <= 8e-2, errors
    assert errors[1] <= 2.5e-2, errors
    exponent = np.log10(errors[0] / errors[1])
    assert 0.35 <= exponent <= 0.65, errors
    assert steps[1] > steps[0]


def test_save_at_frames_info_and_linear_solvers_agree(tmp_path: Path) -> None:
    model = mf.models.chemical()
    grid = solvers.Grid.uniform(*model.domain, 30)
    runs = {name: quiet_solve(model, gamma=10.0, t_final=0.3, grid=grid, dt=0.1,
                              save_at=[0.1, 0.2], solver=name, sweep_tol=1e-9)
            for name in ("lu", "gmres")}
    lu, gmres = runs["lu"], runs["gmres"]
    np.testing.assert_allclose(lu.t, [0.0, 0.1, 0.2, 0.3])
    assert lu.info["linear_solver"] == "lu"
    assert gmres.info["linear_solver"] == "gmres"
    assert gmres.info["linear_solver_class"] == "LinearGMRESSolver"
    assert lu.info["steps"] == 3
    assert lu.info["sweeps"] >= 2 * lu.info["steps"]
    assert lu.info["sweeps_per_step"] == lu.info["sweeps"] / 3
    assert np.max(np.abs(lu.rho - gmres.rho) @ grid.h) <= 1e-7
    assert lu.method == "fipy"
    assert "fipy" in lu.to_xarray().attrs["info"]
    lu.save(tmp_path / "fipy.nc")
    back = solvers.load(tmp_path / "fipy.nc")
    assert back.method == "fipy"
    assert back.info["linear_solver"] == "lu"
    np.testing.assert_array_equal(back.rho, lu.rho)
