"""Pieces of the compiled time loop (solvers.march_numba): the stage with its continuation in κ,
the buffer pool and the accepted-step bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest

import solvers
from meanfield import models
from meanfield.numeric import numeric
from solvers.implicit import solve_stage
from solvers.solve import initial_densities, sg_problem

pytest.importorskip("numba")


@pytest.mark.parametrize(("gamma", "kappa", "max_iter"), [(300.0, 1e6, 5), (3000.0, 1e2, 60),
                                                          (300.0, 1e6, 2)])
def test_compiled_stage_continues_in_kappa_like_the_python_stage(gamma, kappa, max_iter):
    """Newton (capped at ``max_iter`` evaluations) fails from the guess: both stages halve κ,
    then climb back, with the same iterations and the same moments to round-off; with 2
    evaluations both fail."""
    from solvers import march_numba
    from solvers.kernels_numba import workspace_arrays

    nm = numeric(models.chemical())
    grid = solvers.Grid.uniform(*models.chemical().domain, 150)
    _, problem = sg_problem(nm, grid, gamma, "numba")
    rhs = initial_densities(nm, grid, None)
    guess = np.asarray(problem.readout(rhs), dtype=float)
    python = solve_stage(problem, rhs, kappa, 0.0, guess, max_iter=max_iter)
    P, M = rhs.shape
    coupling = problem.coupling
    ok, rho, m, iterations = march_numba.stage(
        coupling.folded_base(0.0), coupling.unknown_slopes, problem.scale, problem.widths,
        problem.weights, kappa, rhs, 0.0, guess, np.zeros(P), False, 0.0, guess, 1.0, max_iter,
        problem.moment_rtol, 0.1, workspace_arrays(None, P, M), (np.empty((P, M)),
                                                                  np.empty((P, M))))
    assert ok == python.converged == (max_iter > 2)
    if not ok:
        return
    assert python.iterations > 2 * max_iter  # at least one halving of κ and the climb back
    assert iterations == python.iterations
    assert np.max(np.abs(m - python.m)) <= 1e-13 * np.max(np.abs(python.m))
    assert np.max(np.abs(rho - python.rho)) <= 1e-12 * np.max(python.rho)


def test_buffers_never_hand_out_the_state_arrays():
    """The arrays of the next step avoid ``ρ_n``, ``ρ_{n−1}`` (pool or not) and ``f_n``."""
    from solvers.march_numba import buffers

    pool = np.zeros((7, 2, 5))
    outside = np.zeros((2, 5))
    cases = [(outside, outside.copy(), outside.copy()), (pool[0], pool[3], pool[4]),
             (pool[2], pool[1], pool[5]), (pool[1], outside, pool[4])]
    for rho, rho_prev, f in cases:
        (a, b), f_out, rhs_out = buffers(pool, rho, rho_prev, f)
        given = {x.ctypes.data for x in (rho, rho_prev, f)}
        handed = [x.ctypes.data for x in (a, b, f_out, rhs_out)]
        assert len(set(handed)) == 4
        assert not given & set(handed)


def test_accept_counts_the_step_and_its_extremes():
    from solvers.march_numba import accept

    counters = np.zeros(5, dtype=np.int64)
    clock = np.array([0.0, 0.0, 0.1, 0.0, np.inf, 0.0, 0.0])
    assert not accept(counters, clock, 0.25, True, False, 2)
    assert not accept(counters, clock, 0.5, False, True, 2)
    assert accept(counters, clock, 0.125, False, False, 2)
    assert counters.tolist() == [3, 0, 0, 1, 1]
    assert (clock[4], clock[5]) == (0.125, 0.5)



def test_switches_are_run_time_booleans_so_the_sweeps_compile_once():
    """Compiled callers pass ``ON``/``OFF`` (numpy booleans, typed as run-time ``bool``) where the
    literals ``True``/``False`` would compile one specialisation of the sweeps per value."""
    import numba
    from numba.core import types

    from solvers.kernels_numba import evaluate, workspace_arrays
    from solvers.kernels_numba_sweep import OFF, ON

    @numba.njit
    def caller(base, slopes, m, scale, widths, weights, rhs, rho, work, readout, size, jac):
        evaluate(base, slopes, m, slopes, scale, widths, weights, 0.1, rhs, rho, work, ON, ON,
                 readout, size, jac)
        evaluate(base, slopes, m, slopes, scale, widths, weights, 0.1, rhs, rho, work, OFF, ON,
                 readout, size, jac)
        evaluate(base, slopes, m, slopes, scale, widths, weights, 0.1, rhs, rho, work, ON, OFF,
                 readout, size, jac)

    P, M = 2, 20
    rng = np.random.default_rng(3)
    caller(rng.normal(size=(P, M - 1)), rng.normal(size=(P, P, M - 1)), np.ones(P),
           np.ones((P, M - 1)), np.full(M, 0.05), np.ones((P, M)), rng.random((P, M)),
           rng.random((P, M)), workspace_arrays(None, P, M), np.empty(P), np.empty(P),
           np.zeros((P, P)))
    switches = {signature[11:13] for signature in evaluate.signatures}
    assert (types.boolean, types.boolean) in switches
    assert not any(isinstance(t, types.Literal) for pair in switches for t in pair)
