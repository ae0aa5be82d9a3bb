"""The compiled time loop (solvers.march_numba) is a twin of solvers.stepping.march: same steps,
same counters, same results to round-off, same errors."""

from __future__ import annotations

import numpy as np
import pytest

import meanfield as mf
import solvers
from meanfield.numeric import numeric
from solvers.limits import balance_points
from solvers.solve import initial_densities, sg_problem
from solvers.stepping import RULES, StepRules, integrate, ladder

pytest.importorskip("numba")

COUNTERS = ("steps", "rejected_steps", "newton_iterations", "positivity_fallbacks",
            "positivity_clips", "dt_min", "dt_max")


def _problem(model, cells, gamma, kernel="numba"):
    nm = numeric(model)
    grid = solvers.Grid.uniform(*model.domain, cells)
    return nm, grid, sg_problem(nm, grid, gamma, kernel)[1]


def _off_centre(model, grid, shift=0.3, spread=0.05):
    point = next(b for b in balance_points(model) if b.stable)
    rho = np.exp(-((grid.x[None, :] - (np.asarray(point.v)[:, None] + shift)) ** 2)
                 / (2 * spread**2))
    return rho / (rho @ grid.h)[:, None]


def _both(problem, rho0, times, **kwargs):
    python = integrate(problem, rho0, times, engine="python", **kwargs)
    compiled = integrate(problem, rho0, times, engine="compiled", **kwargs)
    return python, compiled


def _assert_twins(python, compiled):
    (fp, cp), (fc, cc) = python, compiled
    assert cp["engine"] == "python"
    assert cc["engine"] == "compiled"
    assert {k: cp[k] for k in COUNTERS} == {k: cc[k] for k in COUNTERS}
    np.testing.assert_allclose(fc, fp, rtol=0, atol=1e-12 * np.max(np.abs(fp)))


@pytest.mark.parametrize(("scheme", "dt"), [("bdf2", None), ("be", None), ("bdf2", 2e-3)])
def test_engines_take_the_same_steps(scheme, dt):
    model = mf.models.chemical()
    nm, grid, problem = _problem(model, 120, 100.0)
    rho0 = initial_densities(nm, grid, None)
    python, compiled = _both(problem, rho0, np.linspace(0.0, 0.5, 11), scheme=scheme, dt=dt,
                             rtol=1e-5, atol=1e-8)
    _assert_twins(python, compiled)
    assert python[1]["steps"] > 20
    if dt is None:
        assert python[1]["dt_max"] > 5 * python[1]["dt_min"]  # the controller was exercised


def test_engines_limit_and_fall_back_alike(monkeypatch):
    """BDF2 tails limited (clips) and, with a rule that refuses every limiting, redone by
    backward Euler (fallbacks): both loops decide alike."""
    import solvers.stepping as stepping

    model = mf.models.chemical()
    _nm, grid, problem = _problem(model, 200, 1e3)
    rho0 = _off_centre(model, grid)
    times = np.linspace(0.0, 0.01, 3)
    python, compiled = _both(problem, rho0, times, rtol=1e-4, atol=1e-8)
    _assert_twins(python, compiled)
    assert python[1]["positivity_clips"] > 10
    assert python[1]["rejected_steps"] > 0
    monkeypatch.setattr(stepping, "RULES", StepRules(clip_slack=-1e30))
    python, compiled = _both(problem, rho0, times, rtol=1e-4, atol=1e-8)
    _assert_twins(python, compiled)
    assert python[1]["positivity_fallbacks"] > 10
    assert python[1]["positivity_clips"] == 0


def test_progress_bar_runs_the_same_steps():
    model = mf.models.chemical()
    nm, grid, problem = _problem(model, 80, 100.0)
    rho0 = initial_densities(nm, grid, None)
    times = np.linspace(0.0, 0.2, 5)
    quiet = integrate(problem, rho0, times, engine="compiled")
    shown = integrate(problem, rho0, times, engine="compiled", progress=True)
    assert {k: quiet[1][k] for k in COUNTERS} == {k: shown[1][k] for k in COUNTERS}
    np.testing.assert_array_equal(quiet[0], shown[0])


def test_budget_errors_are_the_same():
    model = mf.models.chemical()
    nm, grid, problem = _problem(model, 60, 100.0)
    rho0 = initial_densities(nm, grid, None)
    messages = []
    for engine in ("python", "compiled"):
        with pytest.raises(RuntimeError, match="max_steps=5") as err:
            integrate(problem, rho0, [0.0, 1.0], engine=engine, max_steps=5)
        messages.append(str(err.value))
    assert messages[0] == messages[1]


def test_engine_choice_and_bad_engines():
    model = mf.models.chemical()
    nm, grid, problem = _problem(model, 40, 10.0)
    rho0 = initial_densities(nm, grid, None)
    assert integrate(problem, rho0, [0.0, 0.01])[1]["engine"] == "compiled"
    _, _, plain = _problem(model, 40, 10.0, kernel="numpy")
    assert integrate(plain, rho0, [0.0, 0.01])[1]["engine"] == "python"
    with pytest.raises(ValueError, match="engine"):
        integrate(plain, rho0, [0.0, 0.01], engine="compiled")
    with pytest.raises(ValueError, match="engine"):
        integrate(problem, rho0, [0.0, 0.01], engine="fortran")
    driven = mf.models.current_balanced()  # a time-dependent input: the Python loop
    nm2, grid2, problem2 = _problem(driven, 40, 10.0)
    rho2 = initial_densities(nm2, grid2, None)
    assert integrate(problem2, rho2, [0.0, 0.01])[1]["engine"] == "python"
    with pytest.raises(ValueError, match="engine"):
        solvers.solve(model, gamma=10.0, t_final=0.01, cells=40, engine="jit")


@pytest.mark.filterwarnings("ignore::meanfield.errors.ResolutionWarning")
def test_solve_reports_engine_and_stepping_time():
    sol = solvers.solve(mf.models.chemical(), gamma=10.0, t_final=0.05, cells=60)
    assert sol.info["engine"] == "compiled"
    assert 0 < sol.info["stepping_time"] <= sol.info["wall_time"]


def test_ladder_of_both_loops():
    from solvers.march_numba import ladder as compiled_ladder

    rng = np.random.default_rng(4)
    values = np.concatenate([10.0 ** rng.uniform(-12, 3, 2000),
                             2.0 ** (np.arange(-80, 24) / 8)])  # and the rungs themselves
    for h in values:
        rung = ladder(float(h))
        assert rung == compiled_ladder(float(h), float(RULES.ladder_steps))
        assert rung <= h < rung * 2 ** (1 / 8) * (1 + 1e-15)
    assert [ladder(2.0 ** (k / 8)) for k in range(-8, 9)] == [2.0 ** (k / 8)
                                                              for k in range(-8, 9)]


def test_sweep_flushes_underflowed_tails_and_agrees_with_the_numpy_twin():
    """Across a tail that underflowed, the compiled substitutions stop at 1e-300 (no subnormal
    arithmetic); the LAPACK twin keeps subnormals; both agree to round-off above 1e-290."""
    from solvers.kernels import stage_kernel, stage_numpy

    M = 4000
    edges = np.linspace(-1.0, 1.0, M + 1)
    widths = np.diff(edges)
    x = (edges[1:] + edges[:-1]) / 2
    rhs = np.exp(-(x[None, :] - 0.3) ** 2 / (2 * 0.01**2))  # zero beyond |x − 0.3| ≈ 0.39
    assert np.any((rhs > 0) & (rhs < 2.2250738585072014e-308))
    delta = 0.002 * np.ones((1, M - 1))
    scale = np.full((1, M - 1), 0.5 / (x[1] - x[0]))
    weights = (x * widths)[None, :]
    args = (delta, np.zeros((1, 1, M - 1)), scale, widths, weights, 1e-7, rhs)
    fast, plain = stage_kernel("numba")[1](*args), stage_numpy(*args)
    rho = fast[0]
    assert rho.min() >= 0
    assert not np.any((rho > 0) & (rho < 1e-300))  # flushed
    assert np.any((plain[0] > 0) & (plain[0] < 1e-300))  # the twin kept them
    np.testing.assert_allclose(rho, plain[0], rtol=1e-11, atol=1e-290)
    np.testing.assert_allclose(fast[1], plain[1], rtol=1e-12)
