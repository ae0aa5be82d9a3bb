"""Models shared by the asymptotics tests: 1, 2 and 3 populations, affine and non-affine fields."""

from __future__ import annotations

import sympy as sp

import meanfield as mf

x = mf.x


def chemical3() -> mf.Model:
    return mf.models.chemical(names=("E", "I", "J"), reversal=(2.0, -1.5, 0.5),
                              sigma=(0.8, 0.6, 0.7),
                              g=((1.0, 2.0, 0.5), (1.5, 1.0, 0.5), (0.5, 1.0, 1.0)))


def cubic_coupling() -> mf.Model:
    """Non-affine but monotone ``Φ_pq = (x − E_q) + (x − E_q)³/10``: curvature terms at v."""
    reversal = (2, sp.Rational(-3, 2))
    phi = [[(x - e) + (x - e) ** 3 / 10 for e in reversal] for _ in range(2)]
    pops = [mf.Population("E", x - x**3 / 3, 0.8), mf.Population("I", 2 - 2 * x, 0.6)]
    return mf.Model(pops, [[1.0, 2.0], [1.5, 1.0]], phi,
                    [mf.sigmoid(x, 0, 2), mf.sigmoid(x, 0.5, 3)], (-5.0, 5.0))


def saturating_coupling() -> mf.Model:
    """``Φ_pq = tanh(x − E_q)``: no Taylor series terminates (every order of the rescaled
    equation is truncated)."""
    reversal = (2, sp.Rational(-3, 2))
    phi = [[sp.tanh(x - e) for e in reversal] for _ in range(2)]
    pops = [mf.Population("E", x - x**3 / 3, 0.8), mf.Population("I", -x, 0.6)]
    return mf.Model(pops, [[1.0, 2.0], [1.5, 1.0]], phi,
                    [mf.sigmoid(x, 0, 2), mf.sigmoid(x, 0.5, 3)], (-5.0, 5.0))


CONCENTRATING = {
    "chemical_single": mf.models.chemical_single,
    "chemical": mf.models.chemical,
    "linear_ou": mf.models.linear_ou,
    "chemical3": chemical3,
    "cubic_coupling": cubic_coupling,
}
"""Name -> model factory, every field h_p depending on x (compared with `solvers`)."""

SYMBOLIC = {**CONCENTRATING, "saturating_coupling": saturating_coupling}
"""Models for the symbolic checks only."""


GAMMAS = (1e2, 1e3, 1e4, 1e5)


def exact_states(name: str):
    """Exact discrete Gibbs states of ``CONCENTRATING[name]`` at ``GAMMAS`` (cached per name).

    The grid spacing is 0.5 × the smallest concentration width ``sqrt(D/(γ A))`` (A from the
    balance point), so the node quadrature of every moment is exact to round-off.
    """
    return _states(name)


def _fit_slope(gammas, errors) -> float:
    import numpy as np

    return float(np.polyfit(np.log(gammas), np.log(errors), 1)[0])


fit_slope = _fit_slope


def _make_states(name: str):
    import numpy as np

    import asymptotics as asy
    import solvers

    model = CONCENTRATING[name]()
    point = asy.balance_points(model).principal
    width2 = float(np.min(np.array(model.diffusion) / point.slope))
    a, b = model.domain
    out = []
    for gamma in GAMMAS:
        cells = int(np.ceil((b - a) / (0.5 * np.sqrt(width2 / gamma))))
        states = solvers.stationary_states(model, gamma=gamma, cells=cells, starts=2,
                                           stability=False)
        nearest = min(states, key=lambda s: float(np.max(np.abs(s.mean - point.v))))
        out.append(nearest)
    return tuple(out)


_CACHE: dict = {}


def _states(name: str):
    if name not in _CACHE:
        _CACHE[name] = _make_states(name)
    return _CACHE[name]
