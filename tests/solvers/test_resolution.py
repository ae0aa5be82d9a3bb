"""The resolution diagnostic: its error model against exact numbers, its report and its warning."""

import math
import warnings

import numpy as np
import pytest

from meanfield.errors import ResolutionWarning
from solvers.resolution import (
    aliasing_error,
    assess,
    excess_diffusion,
    peclet_target,
    report_from_dict,
    width_target,
)


def _gaussian(edges, centre, width):
    x = (edges[1:] + edges[:-1]) / 2
    rho = np.exp(-((x - centre) ** 2) / (2 * width**2))
    return x, rho / (rho @ np.diff(edges))


def _gibbs_report(cells, width, centre=0.3, domain=(-1.0, 1.0), tolerance=1e-2):
    edges = np.linspace(*domain, cells + 1)
    x, rho = _gaussian(edges, centre, width)
    D = 0.5
    U = D * (x - centre) ** 2 / (2 * width**2)  # rho is the exact Gibbs state of U
    return assess(names=("E",), edges=edges, rho=rho[None], potential_jumps=np.diff(U)[None],
                  D=np.array([D]), width=np.array([width]), tolerance=tolerance)


@pytest.mark.parametrize("c", [0.45, 0.55, 0.65])
def test_aliasing_error_predicts_the_variance_error_of_a_sampled_gaussian(c):
    width = 0.05
    errors = []
    for shift in np.linspace(0, 1, 9)[:-1]:  # phase of the centre within a cell
        edges = np.arange(-40, 41) * (width / c)
        x, rho = _gaussian(edges, shift * width / c, width)
        h = np.diff(edges)
        mean = rho @ (x * h)
        errors.append(abs(((x - mean) ** 2 * rho) @ h / width**2 - 1))
    predicted = float(aliasing_error(c))
    assert max(errors) <= predicted * 1.05
    assert max(errors) >= predicted * 0.5


def test_excess_diffusion_limits_and_targets():
    assert excess_diffusion(1e-2) == pytest.approx(1e-4 / 12, rel=1e-5)
    assert excess_diffusion(200.0) == pytest.approx(99.0, rel=1e-9)
    assert excess_diffusion(np.inf) == np.inf
    tol = 1e-2
    assert excess_diffusion(peclet_target(tol)) == pytest.approx(tol / 2, rel=1e-9)
    assert aliasing_error(width_target(tol)) == pytest.approx(tol / 2, rel=1e-9)
    assert 0.6 < width_target(tol) < 0.7
    assert 0.2 < peclet_target(tol) < 0.3


def test_a_resolved_gibbs_state_is_ok_and_an_unresolved_one_names_the_cells():
    good = _gibbs_report(400, 0.05)
    assert good.ok
    assert good.cells_needed == 0
    assert good.peclet[0] < 1e-9
    assert good.cells_per_width[0] == pytest.approx(10.0)
    bad = _gibbs_report(40, 0.005)
    assert not bad.ok
    assert bad.cells_per_width[0] == pytest.approx(0.1)
    assert bad.cells_needed == math.ceil(40 * width_target(1e-2) / 0.1)
    message = bad.message()
    assert "does not resolve the concentration width" in message
    assert f"cells={bad.cells_needed}" in message
    assert report_from_dict(bad.as_dict()).message() == message


def test_mass_at_the_domain_end_is_truncation():
    report = _gibbs_report(400, 0.05, centre=0.98)
    assert not report.ok
    assert report.cells_needed == 0
    assert report.wall_mass[0] > 0.1
    assert "widen the domain" in report.message()


def test_a_transported_profile_has_a_large_peclet_number():
    edges = np.linspace(-1, 1, 201)
    x, rho = _gaussian(edges, -0.5, 0.05)
    D = 0.01
    U = 50.0 * x  # a steep slope: drift 50, profile far from its Gibbs state
    report = assess(names=("E",), edges=edges, rho=rho[None], potential_jumps=np.diff(U)[None],
                    D=np.array([D]), width=np.array([np.inf]), times=[0.25])
    assert report.peclet[0] == pytest.approx(50.0 * 0.01 / D, rel=0.05)
    assert not report.ok
    assert report.time == 0.25
    assert "Péclet" in report.message()
    assert "t=0.25" in report.message()
    assert report.cells_needed >= 200 * report.peclet[0] / peclet_target(1e-2)


def test_combine_keeps_the_worst_and_warn_emits_once():
    good, bad = _gibbs_report(400, 0.05), _gibbs_report(40, 0.005)
    both = good.combine(bad)
    assert both.cells_per_width[0] == pytest.approx(0.1)
    assert both.cells_needed == bad.cells_needed
    assert not both.ok
    with pytest.warns(ResolutionWarning, match=r"cells=\d+") as record:
        assert both.warn()
    assert len(record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not good.warn()
    with pytest.raises(ValueError, match="populations"):
        good.combine(assess(names=("I",), edges=np.linspace(0, 1, 5), rho=np.ones((1, 4)),
                            potential_jumps=np.zeros((1, 3)), D=np.ones(1), width=np.ones(1)))


def test_advice_beyond_the_grid_cap_says_no_uniform_grid_fits():
    """σ so small that the width needs more cells than a grid may have: no absurd cells= advice."""
    import warnings

    import meanfield as mf
    from meanfield.errors import ResolutionWarning
    from solvers import solve
    from solvers.grid import MAX_CELLS

    model = mf.models.chemical_single(sigma=1e-9)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        solve(model, gamma=1e3, t_final=0.01, cells=50)
    messages = [str(w.message) for w in caught if issubclass(w.category, ResolutionWarning)]
    assert messages
    assert f"beyond the {MAX_CELLS} allowed" in messages[0]
    assert "use about cells=" not in messages[0]


def _ou(alpha=3.0):
    """One OU population: ``f = −α(x − 0.2)``, ``Φ = x − 0.5``, ``Ψ = 1`` (so ``m = 1``, ``A = 1``).

    Its stationary state is ``N(·, D/(α + γ))`` exactly: the potential's curvature is ``α + γA``.
    """
    import meanfield as mf

    return mf.models.linear_ou(names=("E",), alpha=alpha, mu=0.2, sigma=0.2, g=((1.0,),),
                               reversal=0.5, readout_slope=0.0, domain=(-2.0, 2.0))


@pytest.mark.parametrize("cells", [40, 400])
def test_width_is_the_exact_std_with_the_intrinsic_drift_counted(cells):
    from solvers import stationary_states

    gamma, D = 1.0, 0.02
    (state,) = stationary_states(_ou(), gamma=gamma, cells=cells, stability=False)
    width = state.resolution.cells_per_width[0] * (4.0 / cells)
    assert width == pytest.approx(math.sqrt(D / (3.0 + gamma)), rel=1e-6)


def test_intrinsic_confinement_makes_an_unresolved_grid_warn():
    """At γA = 1 and f' = −3 the width is half of √(D/(γA)): 30 cells give 0.53 cells per width
    (variance 8 % off) where the field's slope alone claimed 1.06 (an aliasing error of 1e-8)."""
    from solvers import stationary_states

    gamma, D, cells = 1.0, 0.02, 30
    h = 4.0 / cells
    with pytest.warns(ResolutionWarning, match="does not resolve the concentration width") as rec:
        (state,) = stationary_states(_ou(), gamma=gamma, cells=cells, stability=False)
    assert len(rec) == 1
    var = D / (3.0 + gamma)
    assert abs(state.var[0] / var - 1) > 0.05  # the grid really is unresolved
    assert state.resolution.cells_per_width[0] == pytest.approx(math.sqrt(var) / h, rel=1e-6)
    assert state.resolution.expected_error[0] > 0.05
    assert aliasing_error(math.sqrt(D / gamma) / h) < 1e-7  # what the slope alone predicted
    assert state.resolution.cells_needed >= cells * width_target(1e-2) / 0.53


def test_width_falls_back_to_the_densest_cell_where_the_mean_sits_on_a_barrier():
    """Double well ``f = x − x³`` at γ = 0: the symmetric bimodal state has its mean on the
    barrier (``U'' = −1``); the width is taken at the mode, ``√(D/(3x² − 1))``."""
    import meanfield as mf
    from solvers import Grid
    from solvers.resolution import assess_frames, frame_widths

    model = mf.Model([mf.Population("E", mf.x - mf.x**3, 0.4)], [[1.0]], [[mf.x]], [1],
                     (-2.0, 2.0))
    nm = mf.numeric(model)
    grid = Grid(np.linspace(-2.0, 2.0, 401))
    D = 0.08
    U = -(grid.x**2) / 2 + grid.x**4 / 4
    rho = np.exp(-U / D)
    rho /= rho @ grid.h
    mean, width, where = frame_widths(nm, rho[None, None], grid, 0.0, [0.0])
    assert abs(mean[0, 0]) < 1e-9
    mode = grid.x[np.argmax(rho)]
    assert where[0, 0] == mode
    assert width[0, 0] == pytest.approx(math.sqrt(D / (3 * mode**2 - 1)), rel=1e-9)
    report = assess_frames(nm, grid, 0.0, rho[None, None], [0.0], equilibrium=True)
    assert report.cells_per_width[0] == pytest.approx(width[0, 0] / 0.01, rel=1e-9)
    flat = mf.Model([mf.Population("E", 0, 0.4)], [[1.0]], [[mf.x]], [1], (-2.0, 2.0))
    uniform = np.full((1, 1, grid.cells), 0.25)
    assert np.isinf(frame_widths(mf.numeric(flat), uniform, grid, 0.0, [0.0])[1][0, 0])
