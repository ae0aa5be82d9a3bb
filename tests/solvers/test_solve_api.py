"""The front door ``solvers.solve``: argument checks, initial data, output times, dispatch."""

import warnings

import numpy as np
import pytest

import solvers
from meanfield import models
from meanfield.numeric import numeric
from solvers.kernels import stage_kernel, stage_numpy
from solvers.solve import sg_problem

MODEL = models.chemical()
QUICK = dict(gamma=1.0, t_final=0.05, cells=60)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    (dict(gamma=-1.0), ValueError, "gamma=-1.0"),
    (dict(gamma="big"), TypeError, "gamma has type str"),
    (dict(gamma=float("nan")), ValueError, "gamma=nan"),
    (dict(t_final=0.0), ValueError, "t_final=0.0"),
    (dict(method="euler"), ValueError, "method='euler'.*one of"),
    (dict(dt=-0.1), ValueError, "dt=-0.1"),
    (dict(rtol=0.0), ValueError, "rtol=0.0"),
    (dict(rtol=2.0), ValueError, "rtol=2.0"),
    (dict(atol=-1.0), ValueError, "atol=-1.0"),
    (dict(progress="yes"), TypeError, "progress has type str"),
    (dict(cells=2), ValueError, "cells=2"),
    (dict(save_at=[0.1, 0.2, 7.0]), ValueError, r"save_at=.*\[0, t_final=0.05\]"),
    (dict(save_at=[-0.01]), ValueError, "save_at="),
    (dict(save_at=["a"]), TypeError, "save_at has type list"),
    (dict(scheme="rk4"), ValueError, "scheme='rk4'"),
    (dict(kernel="cuda"), ValueError, "kernel='cuda'"),
    (dict(max_steps=0), ValueError, "max_steps=0"),
    (dict(sweeps=3), TypeError, r"unexpected option\(s\) \['sweeps'\] for method='sg'"),
])
def test_bad_arguments_are_rejected_with_their_name(kwargs, error, match):
    with pytest.raises(error, match=match):
        solvers.solve(MODEL, **{**QUICK, **kwargs})


def test_model_must_be_a_model():
    with pytest.raises(TypeError, match="model has type str"):
        solvers.solve("chemical", gamma=1.0, t_final=1.0)


@pytest.mark.parametrize(("initial", "match"), [
    (np.ones((2, 61)), r"shape \(2, 60\)"),
    (-np.ones((2, 60)), "values >= 0"),
    (np.full((2, 60), np.nan), "finite values"),
    (np.zeros((2, 60)), "positive mass"),
    ([lambda x: np.ones(3), lambda x: x**2], r"values of shape \(60,\)"),
])
def test_bad_initial_data(initial, match):
    with pytest.raises(ValueError, match=f"initial=.*{match}"):
        solvers.solve(MODEL, initial=initial, **QUICK)


@pytest.mark.usefixtures("strict_floats")
def test_initial_forms_are_normalised_to_unit_mass():
    grid = solvers.Grid.uniform(-5.0, 5.0, 60)
    bump = np.exp(-grid.x**2)
    from_array = solvers.solve(MODEL, initial=np.array([3 * bump, bump]), **QUICK)
    from_callables = solvers.solve(MODEL, initial=[lambda x: np.exp(-x**2),
                                                   lambda x: 7 * np.exp(-x**2)], **QUICK)
    from_one = solvers.solve(MODEL, initial=lambda x: np.exp(-x**2), **QUICK)
    for sol in (from_array, from_callables, from_one):
        assert np.allclose(sol.rho[0] @ grid.h, 1.0, atol=1e-14)
        assert np.allclose(sol.rho, from_array.rho, atol=1e-13)
    default = solvers.solve(MODEL, **QUICK)
    expected = np.exp(-(grid.x**2) / 2)  # the model's default: N(middle, (length/10)^2)
    assert np.allclose(default.rho[0], expected / (expected @ grid.h), atol=1e-13)


def test_output_times_and_solution_fields(tmp_path):
    sol = solvers.solve(MODEL, save_at=[0.03, 0.01, 0.03], **QUICK)
    assert sol.t.tolist() == [0.0, 0.01, 0.03, 0.05]
    assert sol.rho.shape == (4, 2, 60)
    assert sol.x.shape == (60,)
    for name in ("mass", "mean", "var", "m", "balance_residual"):
        assert getattr(sol, name).shape == (4, 2)
    assert sol.method == "sg"
    assert sol.info["scheme"] == "bdf2"
    default = solvers.solve(MODEL, **QUICK)
    assert default.t.size == 101
    assert default.t[-1] == 0.05
    sol.save(tmp_path / "run.nc")
    back = solvers.load(tmp_path / "run.nc")
    assert np.array_equal(back.rho, sol.rho)
    assert back.info["steps"] == sol.info["steps"]


def test_fixed_steps_land_on_every_output_time():
    sol = solvers.solve(MODEL, dt=0.004, save_at=[0.01, 0.02], **QUICK)
    # intervals 0.01, 0.01, 0.03 cut into ceil(interval/dt) equal steps: 3 + 3 + 8
    assert sol.info["steps"] == 14
    assert sol.info["dt_max"] <= 0.004 + 1e-15


def test_fipy_method_is_dispatched_with_the_agreed_call(monkeypatch):
    import solvers.fipy_backend as backend

    calls = {}

    def fake(model, **kwargs):
        calls.update(kwargs, model=model)
        return "fipy-solution"

    monkeypatch.setattr(backend, "solve_fipy", fake)
    out = solvers.solve(MODEL, method="fipy", dt=0.01, save_at=[0.02], solver="lu", **QUICK)
    assert out == "fipy-solution"
    assert set(calls) == {"model", "gamma", "t_final", "grid", "rho0", "dt", "rtol", "atol",
                          "save_at", "progress", "solver"}
    assert calls["grid"].cells == 60
    assert calls["rho0"].shape == (2, 60)
    assert calls["save_at"].tolist() == [0.0, 0.02, 0.05]
    assert calls["solver"] == "lu"


def test_warning_when_the_grid_cannot_resolve_the_concentration_width():
    with pytest.warns(UserWarning, match=r"does not resolve the concentration width"):
        solvers.solve(MODEL, gamma=1e4, t_final=0.01, cells=50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        solvers.solve(MODEL, gamma=1.0, t_final=0.01, cells=200)


def test_numba_and_numpy_kernels_agree_on_one_stage():
    rng = np.random.default_rng(3)
    grid = solvers.Grid(np.sort(rng.uniform(-5.0, 5.0, 201)))
    _, problem = sg_problem(numeric(MODEL), grid, 300.0)
    m = np.array([0.3, 0.6])
    delta = problem.coupling.differences(m, 0.0)
    ddelta = problem.coupling.derivative(m, 0.0)
    rhs = rng.random((2, grid.cells))
    name, fast = stage_kernel("auto")
    assert name == "numba"
    for kappa in (1e-3, 1.0, 1e6):
        args = (delta, ddelta, problem.scale, problem.widths, problem.weights, kappa, rhs)
        fast_out, plain_out = fast(*args), stage_numpy(*args)
        for a, b in zip(fast_out[:3], plain_out[:3], strict=True):  # rho, readout, magnitude
            assert np.max(np.abs(a - b)) <= 1e-13 * np.max(np.abs(b))
        # the Jacobian (used only to steer Newton) differences the adjoint solution, which
        # flattens as κ grows: agreement to ~κ‖L‖ε relative
        jac_tol = 1e-12 if kappa <= 1.0 else 1e-6
        assert np.max(np.abs(fast_out[3] - plain_out[3])) <= jac_tol * np.max(np.abs(plain_out[3]))


def test_stage_jacobian_matches_finite_differences():
    grid = solvers.Grid.uniform(-5.0, 5.0, 120)
    _, problem = sg_problem(numeric(MODEL), grid, 20.0)
    rhs = np.exp(-grid.x[None, :] ** 2) * np.ones((2, 1))
    m = np.array([0.3, 0.6])
    ddelta = problem.coupling.derivative(m, 0.0)

    def readout(trial):
        delta = problem.coupling.differences(trial, 0.0)
        return stage_numpy(delta, ddelta, problem.scale, problem.widths, problem.weights,
                           0.05, rhs)[1]

    jac = stage_numpy(problem.coupling.differences(m, 0.0), ddelta, problem.scale,
                      problem.widths, problem.weights, 0.05, rhs)[3]
    eps = 1e-6
    numeric_jac = np.column_stack([(readout(m + eps * e) - readout(m - eps * e)) / (2 * eps)
                                   for e in np.eye(2)])
    assert np.max(np.abs(jac - numeric_jac)) <= 1e-8 * np.max(np.abs(jac))


def test_stage_is_exactly_non_negative_at_extreme_coupling():
    grid = solvers.Grid.uniform(-5.0, 5.0, 80)
    _, problem = sg_problem(numeric(MODEL), grid, 1e8)
    rhs = np.exp(-grid.x[None, :] ** 2) * np.ones((2, 1))
    m = np.array([0.2, 0.7])
    args = (problem.coupling.differences(m, 0.0), problem.coupling.derivative(m, 0.0),
            problem.scale, problem.widths, problem.weights, 10.0, rhs)
    for kernel in (stage_kernel("numba")[1], stage_numpy):
        rho = kernel(*args)[0]
        assert rho.min() >= 0.0
        assert np.allclose(rho @ grid.h, rhs @ grid.h, rtol=1e-13)


def test_whole_solves_with_either_kernel_agree():
    run = dict(gamma=5.0, t_final=0.2, cells=200, save_at=[0.1])
    fast = solvers.solve(MODEL, kernel="numba", **run)
    plain = solvers.solve(MODEL, kernel="numpy", **run)
    assert fast.info["kernel"] == "numba"
    assert plain.info["kernel"] == "numpy"
    assert fast.info["steps"] == plain.info["steps"]
    assert np.max(np.abs(fast.rho - plain.rho)) <= 1e-10


def test_initial_of_the_wrong_type_and_the_progress_bar(capsys):
    with pytest.raises(TypeError, match="initial has type str"):
        solvers.solve(MODEL, initial="gaussian", **QUICK)
    sol = solvers.solve(MODEL, progress=True, **QUICK)
    assert "sg" in capsys.readouterr().err
    assert sol.t[-1] == QUICK["t_final"]


def test_auto_kernel_falls_back_to_numpy_without_numba(monkeypatch):
    import solvers.kernels as kernels

    monkeypatch.setattr(kernels, "numba_available", lambda: False)
    assert kernels.stage_kernel("auto")[0] == "numpy"
    with pytest.raises(ValueError, match=r"kernel='numba'.*numba is not installed"):
        kernels.stage_kernel("numba")


@pytest.mark.parametrize(("name", "gamma", "kappa"), [("chemical", 300.0, 1e-3),
                                                     ("chemical", 300.0, 1e6),
                                                     ("current_balanced", 1e4, 0.1)])
def test_compiled_newton_takes_the_same_iterations_as_the_python_newton(name, gamma, kappa):
    """The whole Newton loop in numba against the Python loop driving the numba kernel and the
    numpy twin: same iterations, same numbers to round-off."""
    from dataclasses import replace

    from solvers.implicit import solve_stage
    from solvers.solve import initial_densities

    model = models.CATALOGUE[name]()
    grid = solvers.Grid.uniform(*model.domain, 150)
    nm = numeric(model)
    _, compiled = sg_problem(nm, grid, gamma, "numba")
    looped = replace(compiled, kernel=replace(compiled.kernel, newton=None), workspace={})
    _, plain = sg_problem(nm, grid, gamma, "numpy")
    rhs = initial_densities(nm, grid, None)
    guess = compiled.readout(rhs)
    fast, slow, twin = (solve_stage(problem, rhs, kappa, 0.0, guess)
                        for problem in (compiled, looped, plain))
    assert fast.converged
    assert fast.residual <= 1e-12
    assert fast.rho.min() >= 0.0
    assert fast.iterations == slow.iterations == twin.iterations >= 2
    for other in (slow, twin):
        assert np.max(np.abs(fast.rho - other.rho)) <= 1e-12 * np.max(other.rho)
        assert np.max(np.abs(fast.m - other.m)) <= 1e-13 * np.max(np.abs(other.m))


def test_branch_free_exponential_and_bernoulli_functions_are_accurate():
    from solvers.fv import bernoulli, bernoulli_derivative
    from solvers.kernels_numba import bernoulli_values, exp_negative

    rng = np.random.default_rng(5)
    u = np.concatenate([rng.uniform(0.0, 1.0, 2000), rng.uniform(0.0, 700.0, 2000),
                        [0.0, 0.5, 708.0, 708.5, 1e8, np.inf]])
    exact = np.exp(-u)
    ours = np.array([exp_negative(v) for v in u])
    normal = exact > 1e-300
    assert np.max(np.abs(ours[normal] - exact[normal]) / exact[normal]) <= 2.5e-16
    assert np.all(ours[u > 708.0] == 0.0)
    z = np.concatenate([rng.uniform(-1.0, 1.0, 2000), rng.uniform(-800.0, 800.0, 2000),
                        [0.0, 0.5, -0.5, 1e-9]])
    plus, minus, slope = np.array([bernoulli_values(v) for v in z]).T
    for ours_b, exact_b in ((plus, bernoulli(z)), (minus, bernoulli(-z))):
        big = exact_b > 1e-300
        assert np.max(np.abs(ours_b[big] - exact_b[big]) / exact_b[big]) <= 1e-15
    assert np.max(np.abs(slope - bernoulli_derivative(z))) <= 1e-12


@pytest.mark.parametrize("bdf2", [True, False])
@pytest.mark.parametrize("clip", [True, False])
def test_fused_step_tail_and_combination_agree_with_their_numpy_twins(bdf2, clip):
    from solvers.kernels import combine_numpy, finish_step_numpy
    from solvers.kernels_numba import combine, finish_step

    rng = np.random.default_rng(7)
    rho, rhs, rho_n, f_n, prev = (rng.standard_normal((2, 97)) for _ in range(5))
    rho = np.abs(rho)  # population 1 non-negative: never limited
    if clip:
        rho[0, ::7] *= -0.01
    weights, widths = rng.random((2, 97)), rng.random(97)
    previous = prev if bdf2 else np.empty((0, 0))
    args = (rho, rhs, 0.3, rho_n, f_n, previous, 1.7, 0.01, weights, widths)
    plain = finish_step_numpy(*args)
    for fast, twin in zip(finish_step(*args), plain, strict=True):
        assert np.allclose(fast, twin, rtol=1e-13, atol=1e-15)
    used = rho.copy()
    mass, negative = rho @ widths, np.minimum(rho, 0.0) @ widths
    used[0] = np.maximum(rho[0], 0.0) * mass[0] / (mass[0] - negative[0])
    assert np.allclose(plain[0], used, rtol=1e-15, atol=0)
    assert (plain[0] is rho) == (not clip)
    assert np.allclose(used @ widths, mass, rtol=1e-14)
    assert used.min() >= 0
    predicted = (rho_n * (1 - 1.7**2) + prev * 1.7**2 + f_n * 0.01 * 2.7 if bdf2
                 else rho_n + 0.01 * f_n)
    assert np.allclose(plain[1], (used - rhs) / 0.3, rtol=1e-14)
    expected = [np.abs(used - predicted) @ widths, np.abs(used) @ widths, rho.min(axis=1),
                mass, negative, np.einsum("pi,pi->p", weights, used),
                np.abs(rho - predicted) @ widths, np.abs(rho) @ widths]
    assert np.allclose(plain[3], expected, rtol=1e-13, atol=0)
    assert np.allclose(combine(rho, 2.0, rhs, -3.0), combine_numpy(rho, 2.0, rhs, -3.0),
                       rtol=0, atol=1e-15)


def test_inputs_are_folded_into_the_base_once_while_constant():
    from solvers.implicit import AffineCoupling

    rng = np.random.default_rng(11)
    base, slopes = rng.standard_normal((2, 9)), rng.standard_normal((2, 3, 9))
    drive = AffineCoupling(base=base, slopes=slopes, external=lambda t: np.array([np.sin(t)]),
                           unknowns=2)
    m = np.array([0.4, -1.3])
    for time in (0.0, 0.7):
        expected = base + np.einsum("j,pji->pi", np.append(m, np.sin(time)), slopes)
        assert np.allclose(drive.differences(m, time), expected, rtol=1e-14, atol=1e-14)
    constant = AffineCoupling(base=base, slopes=slopes, external=lambda t: np.array([0.25]),
                              unknowns=2)
    assert constant.folded_base(0.0) is constant.folded_base(5.0)
    assert drive.folded_base(0.0) is not drive.folded_base(0.7)
    closed = AffineCoupling(base=base, slopes=slopes, external=lambda t: np.empty(0))
    assert closed.folded_base(0.0) is closed.folded_base(1.0)
    assert np.array_equal(closed.folded_base(0.0), base)
    m3 = np.array([0.4, -1.3, 2.0])
    assert np.allclose(closed.differences(m3, 0.0), base + np.einsum("j,pji->pi", m3, slopes),
                       rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("directions", [1, 3, 5])
def test_kernel_jacobians_agree_for_any_number_of_directions(directions):
    rng = np.random.default_rng(13)
    grid = solvers.Grid(np.sort(rng.uniform(-5.0, 5.0, 121)))
    _, problem = sg_problem(numeric(MODEL), grid, 50.0)
    delta = problem.coupling.differences(np.array([0.3, 0.6]), 0.0)
    ddelta = rng.standard_normal((2, directions, grid.cells - 1))
    args = (delta, ddelta, problem.scale, problem.widths, problem.weights, 0.2,
            rng.random((2, grid.cells)))
    fast, plain = stage_kernel("numba")[1](*args)[3], stage_numpy(*args)[3]
    assert fast.shape == plain.shape == (2, directions)
    assert np.max(np.abs(fast - plain)) <= 1e-12 * np.max(np.abs(plain))


def test_fixed_dt_default_frames_do_not_shorten_the_steps():
    from solvers.solve import output_times

    times = output_times(None, 10.0, 100, dt=0.5)
    assert times[0] == 0.0
    assert times[-1] == 10.0
    assert len(times) == 21
    assert np.allclose(np.diff(times), 0.5)
    many = output_times(None, 1.0, 100, dt=1e-4)
    assert len(many) <= 101
    assert many[-1] == 1.0
    assert np.allclose(np.round(many / 1e-4), many / 1e-4, atol=1e-6)
    sol = solvers.solve(models.chemical_single(), gamma=10.0, t_final=2.0, cells=160, dt=0.5)
    assert sol.info["steps"] == 4
    assert sol.t.size == 5


def test_fipy_path_warns_about_an_unresolved_concentration_width(monkeypatch):
    from solvers import fipy_backend as backend

    monkeypatch.setattr(backend, "solve_fipy", lambda model, **kwargs: "fipy-solution")
    with pytest.warns(UserWarning, match=r"does not resolve the concentration width"):
        assert solvers.solve(MODEL, method="fipy", gamma=1e4, t_final=0.01, cells=50) == \
            "fipy-solution"


# ----------------------------------------------------------------------------- resolution (#13)
def _layer_model(gamma):
    """One OU population, balance point 1.5, start 30 concentration widths off and 4 wide."""
    D, k = 0.18, 1 + gamma
    w, vstar = np.sqrt(D / k), (0.5 + 1.5 * gamma) / k
    x0, s0 = vstar - 30 * w, 4 * w
    model = models.linear_ou(names=("E",), alpha=1.0, mu=0.5, sigma=0.6, g=[[1.0]],
                             reversal=1.5, readout_slope=0.0,
                             domain=(x0 - 6 * s0, vstar + 12 * w))
    return model, (lambda x: np.exp(-((x - x0) ** 2) / (2 * s0**2))), (k, w, vstar, x0, s0)


def test_initial_layer_is_warned_about_and_exact_after_it():
    from meanfield.errors import ResolutionWarning

    gamma = 1e4
    model, initial, (k, w, _vstar, _x0, s0) = _layer_model(gamma)
    times = np.array([0.5, 1.0, 2.0, 20.0]) / k
    with pytest.warns(ResolutionWarning, match=r"Péclet.*t=0.*initial layer.*cells=\d+") as rec:
        sol = solvers.solve(model, gamma=gamma, t_final=times[-1], initial=initial,
                            save_at=times, cells=200)
    assert len([r for r in rec if r.category is ResolutionWarning]) == 1
    exact_var = w**2 + (s0**2 - w**2) * np.exp(-2 * k * sol.t)
    error = np.abs(sol.var[:, 0] / exact_var - 1)
    assert error[1:4].max() > 0.1  # the layer is really wrong on this grid (hence the warning)
    assert error[-1] < 1e-8  # and exact after it
    report = sol.resolution
    assert not report.ok
    assert report.time == 0.0
    assert report.cells_needed > 2000
    assert sol.info["resolution"]["peclet"][0] == pytest.approx(report.peclet[0])


def test_gamma_beyond_the_range_of_solve_says_to_use_the_rescaled_solver():
    from meanfield.errors import ResolutionWarning

    with pytest.raises(ValueError, match=r"gamma=1000000000000000.0.*<= 1e\+11.*solve_rescaled"):
        solvers.solve(models.chemical_single(), gamma=1e15, t_final=1.0, cells=50)
    with pytest.warns(ResolutionWarning, match="concentration width"):  # the top of the range runs
        sol = solvers.solve(models.chemical_single(), gamma=1e11, t_final=0.1, cells=50,
                            save_at=[0.1])
    assert np.all(np.isfinite(sol.var))
    assert abs(sol.mass[-1, 0] - 1) < 1e-12


def test_diffusion_underflow_is_rejected_naming_sigma():
    model = models.chemical_single(sigma=1e-200)
    with pytest.raises(ValueError, match=r"model=.*D = sigma\^2/2.*'E': 0.0.*sigma"):
        solvers.solve(model, gamma=1.0, t_final=0.1, cells=50)
    with pytest.raises(ValueError, match=r"model=.*D = sigma\^2/2"):
        solvers.stationary_states(model, gamma=1.0, cells=50)


@pytest.mark.parametrize("scale", [1e308, 1e-310])
@pytest.mark.usefixtures("strict_floats")
def test_extreme_initial_values_are_normalised_to_unit_mass(scale):
    model = models.chemical_single()
    x = solvers.Grid.uniform(-3, 5, 80).x
    initial = np.exp(-((x - 1) ** 2))[None] * scale
    if scale > 1:
        initial = np.full((1, 80), scale)
    sol = solvers.solve(model, gamma=1.0, t_final=0.01, cells=80, initial=initial,
                        save_at=[0.01])
    assert np.all(np.isfinite(sol.rho))
    assert sol.rho.max() > 0
    assert np.abs(sol.mass - 1).max() < 1e-12


def test_cells_auto_resolves_the_final_state_and_records_its_choice():
    import warnings

    model = models.chemical_single()
    gamma = 1e5
    rate = 1 + gamma / (1 + np.exp(-6.0))  # leak + γ g S(E): the stationary state is near E = 2
    width, centre = np.sqrt(0.125 / rate), 2 * (rate - 1) / rate
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sol = solvers.solve(model, gamma=gamma, t_final=0.01, cells="auto", save_at=[0.01],
                            initial=lambda x: np.exp(-((x - centre) ** 2) / (2 * width**2)))
    chosen = sol.info["cells_auto"]["cells"]
    assert chosen == sol.rho.shape[-1]
    assert 1000 < chosen <= 20_000
    assert sol.resolution.ok
    assert not sol.info["cells_auto"]["capped"]
    # 1000 cells would not resolve the width; the chosen grid reaches its exact stationary state
    assert 8 / 1000 > width / 0.67 > 8 / chosen
    state = solvers.stationary_states(model, gamma=gamma, cells=chosen, stability=False)[-1]
    assert sol.var[-1, 0] == pytest.approx(state.var[0], rel=1e-3)
    with pytest.raises(ValueError, match=r"cells='many'"):
        solvers.solve(model, gamma=1.0, t_final=0.1, cells="many")


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    (dict(tolerance=2.0), ValueError, r"tolerance=2.0.*\(0, 1\)"),
    (dict(tolerance=float("nan")), ValueError, r"tolerance=nan"),
    (dict(cells="auto", grid=solvers.Grid.uniform(-5, 5, 10)), ValueError, r"cells='auto'.*not both"),
    (dict(save_at=[float("nan")]), ValueError, r"save_at="),
])
def test_resolution_options_are_checked(kwargs, error, match):
    with pytest.raises(error, match=match):
        solvers.solve(MODEL, **{**QUICK, **kwargs})
