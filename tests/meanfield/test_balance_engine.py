"""The one balance-point engine (meanfield.balance) and the layers that use it."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import asymptotics as asy
import meanfield as mf
from meanfield import balance as engine
from solvers import limits, network_observables

x, t = mf.x, mf.t


def three_points() -> mf.Model:
    """Strong excitation onto E with a steep sigmoid: a low, an unstable middle and a high point."""
    return mf.Model([mf.Population("E", -x, 0.5), mf.Population("I", -x, 0.5)],
                    [[4.0, 1.0], [4.0, 1.0]], [[x - 2, x + 1], [x - 2, x + 1]],
                    [mf.sigmoid(x, 0.5, 12), sp.Rational(1, 2) + 0 * x], (-3.0, 5.0))


def nonlinear_field() -> mf.Model:
    """A field that is not affine in x (Φ = x + x³/10): no explicit formula, Newton only."""
    return mf.Model([mf.Population("E", -x, 0.5)], [[1.5]], [[x - 1 + x**3 / 10]],
                    [mf.sigmoid(x, 0, 2)], (-4.0, 4.0))


def mixed() -> mf.Model:
    return mf.Model([mf.Population("E", -x, 0.5), mf.Population("I", -x, 0.5)],
                    [[1.0, 1.0], [1.0, -1.0]], [[x - 2, x + 1], [1, 1]],
                    [mf.sigmoid(x, 0, 2), mf.sigmoid(x, 0, 2)], (-5.0, 5.0))


def test_chemical_point_is_the_conductance_weighted_average():
    model = mf.models.chemical()
    points = engine.balance_points(model)
    (point,) = points.stable
    g, E = np.array(model.g), np.array([2.0, -1.5])
    S = 0.5 * (1 + np.tanh(point.v))  # sigmoid of slope 2, threshold 0
    np.testing.assert_allclose(point.v, g @ (E * S) / (g @ S), rtol=0, atol=1e-12)
    np.testing.assert_allclose(point.slope, g @ S, rtol=1e-12)
    np.testing.assert_allclose(point.m, S, rtol=1e-14)
    assert point.residual <= engine.ROOT_TOL
    np.testing.assert_array_equal(points.v, point.v)


@pytest.mark.parametrize("factory", [mf.models.chemical, mf.models.chemical_single,
                                     three_points, nonlinear_field])
def test_symbolic_formulas_agree_with_the_engine(factory):
    model = factory()
    numeric = engine.balance_points(model)
    symbolic = asy.balance_points(model)
    assert len(symbolic.all) == len(numeric.all) >= 1
    for a, b in zip(symbolic.all, numeric.all, strict=True):
        np.testing.assert_allclose(a.v, b.v, rtol=0, atol=1e-12)
        assert a.stable == b.stable
    assert symbolic.deviation() <= 1e-12


def test_stability_is_positive_slopes_and_a_contracting_fixed_point_map():
    model = three_points()
    points = engine.balance_points(model)
    assert [b.stable for b in points.all] == [True, False, True]
    middle = points.all[1]
    assert middle.concentrating
    assert middle.iteration_radius > 1
    assert min(b.iteration_radius for b in points.stable) < 1
    # the iteration Jacobian is the derivative of T(v) (the zeros of h_p(·; Ψ(v)))
    system = engine.BalanceSystem(model)

    def T(v: np.ndarray) -> np.ndarray:
        m_all = np.concatenate([system.moments(v), system.external])
        return np.array([engine.stable_zero(model, p, m_all, v[p]) for p in range(2)])

    for point in points.stable:
        step = 1e-6
        fd = np.column_stack([(T(point.v + step * e) - T(point.v - step * e)) / (2 * step)
                              for e in np.eye(2)])
        np.testing.assert_allclose(fd, point.iteration_jacobian, rtol=0, atol=1e-7)
        np.testing.assert_allclose(T(point.v), point.v, rtol=0, atol=1e-13)


def test_jacobian_of_the_balance_equations_matches_finite_differences():
    model = three_points()
    system = engine.BalanceSystem(model)
    v = np.array([0.3, -0.2])
    step = 1e-6
    fd = np.column_stack([(system(v + step * e) - system(v - step * e)) / (2 * step)
                          for e in np.eye(2)])
    np.testing.assert_allclose(fd, system.jacobian(v), rtol=0, atol=1e-7)
    point = engine.balance_points(model).all[0]
    np.testing.assert_allclose(np.sort(point.eigenvalues.real),
                               np.sort(np.linalg.eigvals(point.jacobian).real), atol=1e-14)


def test_is_concentrating_has_one_definition():
    assert engine.is_concentrating(mf.models.chemical())
    assert not engine.is_concentrating(mf.models.current_balanced())
    with pytest.raises(ValueError, match="all depend on x"):
        engine.is_concentrating(mixed())
    assert limits.is_concentrating is engine.is_concentrating
    assert asy.balance.is_concentrating is engine.is_concentrating


def test_balanced_moments_of_a_time_dependent_constraint():
    np.testing.assert_allclose(engine.balanced_moments(mf.models.current_balanced()), [0.2, 0.3],
                               rtol=0, atol=1e-14)
    model = mf.models.current_balanced(m_drive="0.4 + 0.1*sin(3*t)")
    K, drive = np.array([[-1.0, 2.0], [-2.0, 2.0]]), np.array([1.0, 0.5])
    for time in (0.0, 0.7):
        expected = np.linalg.solve(K, drive * (0.4 + 0.1 * np.sin(3 * time)))
        np.testing.assert_allclose(engine.balanced_moments(model, time), expected, rtol=0,
                                   atol=1e-14)
        points = engine.balance_points(model, time=time)
        assert not points.concentrating
        np.testing.assert_allclose(points.moments, expected, rtol=0, atol=1e-14)
    with pytest.raises(ValueError, match="non-concentrating"):
        _ = engine.balance_points(model).v


def test_points_outside_the_domain_are_diagnosed():
    model = mf.Model([mf.Population("E", -x, 0.5)], [[1.0]], [[x - 2]], [mf.sigmoid(x, 1, 6)],
                     (-3.0, 1.0))
    points = engine.balance_points(model)
    assert points.all == ()
    np.testing.assert_allclose(np.ravel(points.outside), [2.0], atol=1e-12)
    with pytest.raises(ValueError, match="outside"):
        _ = points.principal


def test_solvers_and_studies_use_the_engine():
    model = three_points()
    points = engine.balance_points(model)
    assert limits.balance_points(model) == points.all
    assert limits.BalancePoint is engine.BalancePoint
    np.testing.assert_array_equal(network_observables.balance_points(model),
                                  [b.v for b in points.stable])
    assert network_observables.balance_points(mf.models.current_balanced()).shape == (0, 2)


def test_dataset_of_the_points_is_described():
    ds = engine.balance_points(three_points()).to_xarray()
    assert ds["v"].shape == (3, 2)
    assert ds["stable"].values.tolist() == [True, False, True]
    for name in [*ds.data_vars, *ds.coords]:
        assert ds[name].attrs["long_name"]
        assert "units" in ds[name].attrs
    assert mf.Model.from_json(ds.attrs["model"]) == three_points()


def test_stable_zero_rejects_a_decreasing_field():
    model = mf.Model([mf.Population("E", -x, 0.5)], [[1.0]], [[2 - x]], [mf.sigmoid(x, 0, 2)],
                     (-3.0, 3.0))
    with pytest.raises(ValueError, match="no stable balance point"):
        engine.stable_zero(model, 0, np.array([0.5]), 0.0)


def test_bad_input():
    with pytest.raises(TypeError, match="model"):
        engine.balance_points([1, 2])
    with pytest.raises(ValueError, match="starts"):
        engine.balance_points(mf.models.chemical(), starts=0)
    with pytest.raises(TypeError, match="time"):
        engine.balance_points(mf.models.chemical(), time="now")


def test_pointwise_view_and_a_system_moved_in_time():
    from meanfield.numeric import pointwise

    drive = mf.ExternalInput("X", m=sp.Rational(1, 2) + sp.sin(3 * t) / 4, g=[0.5, 0.5],
                             phi=[x - 3, x - 3])
    model = mf.models.chemical().with_inputs([drive])
    view = pointwise(model)
    step, v = 1e-6, 0.37
    for q in range(2):
        fd = (view.psi[q](v + step) - view.psi[q](v - step)) / (2 * step)
        assert abs(view.dpsi[q](v) - fd) < 1e-8
    np.testing.assert_allclose(view.external[0](0.4), 0.5 + np.sin(1.2) / 4, rtol=1e-15)
    moved = engine.BalanceSystem(model).at(0.4)
    fresh = engine.BalanceSystem(model, 0.4)
    np.testing.assert_array_equal(moved.external, fresh.external)
    point = np.array([-0.5, 0.2])
    np.testing.assert_array_equal(moved(point), fresh(point))
    np.testing.assert_array_equal(moved.jacobian(point), fresh.jacobian(point))
