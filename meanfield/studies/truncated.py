r"""Stationary solutions of the truncated rescaled equations (the wiring of docs/mathematics.md §6).

``asymptotics.rescaled_equation(model, order=k)`` gives the drift of the zoomed equation
(``x = c + ε y``, ``ε = γ^{-1/2}``, ``ρ = ε^{-1} q``) as a series ``V = Σ_{j ≥ −2} ε^j V_j`` with
numeric coefficients ``V_j(y; c, m)``. Truncating after ``j = K`` and looking for a stationary
state with zero flux, ``V q = ε^{-2} D ∂_y q``, gives explicitly

.. math:: q(y) \propto \exp\Big(\frac{ε^2}{D}\int_0^y \sum_{j=-2}^{K} ε^j V_j(s; c, m)\,ds\Big),

(the integral by 5-point Gauss–Legendre per cell: exact for the polynomial coefficients of
degree ≤ 9), closed by the balance equation ``h_p(c_p; m) = 0`` for the centres and the self-consistency
``m_q = ∫ Ψ_q(c_q + ε y) q_q(y) dy`` (the readout is kept exact: only the drift is truncated).
The P moments are found with ``scipy.optimize.root``; the profile lives on a window of
``window`` standard deviations ``√(D/A)`` around ``y = 0`` with ``points`` nodes (trapezoidal
rule, spectrally accurate for these smooth, fast-decaying profiles). ``K = −2`` is the
Ornstein–Uhlenbeck (Gaussian) approximation.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from meanfield.balance import BalanceSystem, balance_points
from meanfield.errors import bad_value, check_finite_number, check_int
from meanfield.model import Model


@dataclass(frozen=True, eq=False)
class TruncatedState:
    """Stationary state of the rescaled equation truncated after ``ε^order``.

    ``center``, ``m``, ``mean``, ``var`` (P,); ``y`` (P, points) the nodes of each window in
    ``y = (x − center)/ε`` and ``rho`` (P, points) the density in ``x`` at ``x = center + ε y``.
    """

    gamma: float
    order: int
    center: np.ndarray
    m: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    y: np.ndarray
    rho: np.ndarray

    @property
    def eps(self) -> float:
        """``ε = γ^{-1/2}``."""
        return float(self.gamma) ** -0.5

    @property
    def x(self) -> np.ndarray:
        """The nodes in ``x``: ``center + ε y`` (P, points)."""
        return self.center[:, None] + self.eps * self.y

    @property
    def q(self) -> np.ndarray:
        """Deprecated: the density in ``y``, ``ε·rho`` (use ``rho``)."""
        warnings.warn("TruncatedState.q is deprecated; use rho (the density in x, q = eps*rho)",
                      DeprecationWarning, stacklevel=2)
        return self.eps * self.rho


_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(5)


def _trapezoid(values: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.trapezoid(values, y, axis=-1)


def truncated_stationary(model: Model, gamma: float, order: int, *, points: int = 801,
                         window: float = 10.0, equation: Any = None,
                         guess: np.ndarray | None = None) -> TruncatedState:
    """Solve the stationary truncated rescaled equation of ``model`` at coupling ``gamma``."""
    import scipy.optimize as so

    import asymptotics as asy
    from meanfield.numeric import numeric

    gamma = check_finite_number("gamma", gamma, positive=True)
    order = check_int("order", order, minimum=-2)
    points = check_int("points", points, minimum=51)
    window = check_finite_number("window", window, positive=True)
    eq = equation if equation is not None else asy.rescaled_equation(model, order=max(order, 0))
    if max(eq.drift_numeric[0]) < order:
        bad_value("equation", eq.order, f"a rescaled equation of order >= {order}")
    P, eps = model.P, gamma**-0.5
    D = np.asarray(model.diffusion, dtype=float)
    nm = numeric(model)
    point = balance_points(model).principal
    m0 = point.m.copy() if guess is None else np.asarray(guess, dtype=float)
    state: dict[str, Any] = {"c": point.v.copy()}
    system = BalanceSystem(model)

    def centres(m: np.ndarray) -> np.ndarray:
        m_all = np.concatenate([m, system.external])
        try:
            c = np.array([system.stable_zero(p, m_all, state["c"][p]) for p in range(P)])
        except ValueError as err:
            bad_value("model", model.names, f"fields increasing at their zeros ({err})")
        state["c"] = c
        return c

    def profiles(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c = centres(m)
        A = np.asarray(eq.slope(c, m), dtype=float)
        if np.any(A <= 0):
            bad_value("model", model, f"fields increasing at their zeros (slopes A = {A.tolist()})")
        ys, qs = [], []
        for p in range(P):
            y = np.linspace(-window, window, points) * np.sqrt(D[p] / A[p])
            half, mid = np.diff(y)[:, None] / 2, (y[1:] + y[:-1])[:, None] / 2
            nodes = mid + half * _NODES
            drift = sum(eps**k * eq.drift_numeric[p][k](nodes, c=c, m=m)
                        for k in sorted(eq.drift_numeric[p]) if k <= order)
            increments = (drift * half) @ _WEIGHTS
            exponent = eps**2 / D[p] * np.concatenate([[0.0], np.cumsum(increments)])
            q = np.exp(exponent - exponent.max())
            ys.append(y)
            qs.append(q / _trapezoid(q, y))
        return c, np.array(ys), np.array(qs)

    def residual(m: np.ndarray) -> np.ndarray:
        c, ys, qs = profiles(m)
        new = np.array([_trapezoid(nm.psi[q](c[q] + eps * ys[q]) * qs[q], ys[q]) for q in range(P)])
        return new - m

    solution = so.root(residual, m0, method="hybr", tol=1e-14)
    if np.max(np.abs(residual(solution.x))) > 1e-12:  # "no further improvement" is fine here
        raise RuntimeError(f"truncated rescaled equation (order {order}, gamma {gamma:g}): the "
                           f"self-consistency did not converge ({solution.message})")
    m = solution.x
    c, ys, qs = profiles(m)
    first = _trapezoid(ys * qs, ys)
    second = _trapezoid(ys**2 * qs, ys)
    return TruncatedState(gamma=gamma, order=order, center=c, m=m, mean=c + eps * first,
                          var=eps**2 * (second - first**2), y=ys, rho=qs / eps)


def truncation_study(model: Model, gammas: Sequence[float], orders: Sequence[int] | None = None,
                     *, kind: str = "stationary", **options: Any) -> Any:
    r"""Truncated rescaled equations against the exact ones as γ grows: the one front door.

    ``kind="stationary"``: the stationary truncated equation (:func:`truncated_stationary`)
    against the exact finite-volume stationary state, quantities ``mean_K<K>``, ``var_K<K>`` with
    predicted slopes (``orders`` default ``(-2, -1, 0, 1)``; options ``cells``, ``points``,
    ``window``, ``fit_from``, ``client``, ``directory``, ``progress``).
    ``kind="transient"``: the time-dependent truncated equation against the exact zoomed solver,
    compared at ``t = tau/γ`` after starting off the balance point (``orders`` default
    ``(-2, -1, 0)``; options ``tau``, ``offset``, ``cells``, ``rtol``;
    :func:`meanfield.studies.rescaled.transient_truncation`). Both return an ``xarray.Dataset``
    with the fitted log–log slopes in its attributes (docs/mathematics.md §6).
    """
    if kind == "stationary":
        from meanfield.studies.convergence import truncation_study as stationary

        return stationary(model, gammas, (-2, -1, 0, 1) if orders is None else orders, **options)
    if kind == "transient":
        from meanfield.studies.rescaled import transient_truncation

        return transient_truncation(model, gammas, (-2, -1, 0) if orders is None else orders,
                                    **options)
    bad_value("kind", kind, "'stationary' or 'transient'")
