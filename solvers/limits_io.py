"""Datasets of the γ = ∞ results (docs/mathematics.md §4): build and read back, checked.

:class:`~solvers.constrained.ConstrainedSolution`, :class:`~solvers.limits.EarlyBehaviour` and
:class:`~solvers.limits.BalanceTrajectory` (and :class:`meanfield.balance.BalancePoints`) turn
into ``xarray.Dataset`` objects through
:func:`solvers.datasets.build_dataset` (CF metadata on every variable) and back through their
``from_xarray``; :func:`solvers.load` dispatches to them. No ``gamma`` attribute: these are the
limit γ → ∞ (the attribute ``limit`` says so).
"""

from __future__ import annotations

from os import PathLike
from typing import Any

import numpy as np

from solvers.datasets import FIELD, STATE, TIME, Reader, build_dataset

LIMIT = "gamma -> infinity"
FAST = "fast time units tau = gamma t (nondimensional)"

#: the variables only the γ = ∞ results have
LIMIT_VARIABLES: dict[str, tuple[str, str, str]] = {
    "multipliers": ("Lagrange multiplier lambda_p", f"{STATE} per {TIME}", "lambda_p(t) = lim "
                    "gamma h_p: the drift that keeps the constraint h_p(m(t), t) = 0 of the "
                    "constrained Fokker-Planck equation (docs/mathematics.md §4)"),
    "shift": ("initial shift", STATE, "translation of each population's initial density onto "
              "the constraint by the early-behaviour flow (the gamma = infinity initial layer)"),
    "tau": ("fast time tau", FAST, "fast time of the early-behaviour transport d_tau rho_p = "
            "d_x(h_p rho_p)"),
    "node": ("quadrature node", "1", "index of the characteristic started at a Gauss-Legendre "
             "node of the domain"),
    "positions": ("characteristic position", STATE, "position X(tau) of the characteristic "
                  "dX/dtau = -h_p(X; m(tau)) started at the node"),
    "weights": ("quadrature weight", "1", "probability carried by the characteristic (initial "
                "density times the quadrature weight, normalised to total 1 per population)"),
    "v": ("balance point v_p", STATE, "position of the Dirac mass of population p: "
          "h_p(v_p; Psi(v), t) = 0 (docs/mathematics.md §4)"),
    "slope": ("slope A_p", FIELD + " per state unit", "d h_p / dx at v_p (> 0: concentrating)"),
    "stable": ("stability", "1", "1 when every slope > 0 and the fixed-point map contracts, "
               "else 0"),
    "point": ("balance point index", "1", "index of the balance point (sorted by v)"),
    "column": ("population (column)", "1", "index r (model order) of the population a "
               "Jacobian column differentiates by"),
    "outside_point": ("outside point index", "1", "index of a balance point found beyond the "
                      "domain ends (searched only when none lies inside)"),
    "residual": ("balance residual max_p |H_p(v)|", FIELD, "largest |h_p(v_p; Psi(v), t)| at "
                 "the point (0 up to round-off)"),
    "jacobian": ("Jacobian of H", FIELD + " per state unit", "dH_p/dv_r = A_p delta_pr + g_pr "
                 "Phi_pr(v_p) Psi_r'(v_r): the linearised Dirac dynamics dv/dtau = -H(v)"),
    "iteration_jacobian": ("Jacobian of the fixed-point map", "1", "dT_p/dv_r = -g_pr "
                           "Phi_pr(v_p) Psi_r'(v_r)/A_p; the point is stable when its spectral "
                           "radius is < 1 and every slope > 0"),
    "outside": ("balance point outside the domain", STATE, "a solution of H(v) = 0 beyond the "
                "domain ends: the mass piles up on the wall instead (widen the domain)"),
}


def _pops(result: Any) -> list[str]:
    return list(result.model.names)


# ----------------------------------------------------------------------------- constrained
def constrained_dataset(sol: Any) -> Any:
    """The dataset of a :class:`~solvers.constrained.ConstrainedSolution`."""
    per_t = ("t", "population")
    data = {"rho": (("t", "population", "x"), sol.rho), "mass": (per_t, sol.mass),
            "mean": (per_t, sol.mean), "var": (per_t, sol.var), "m": (per_t, sol.m),
            "multipliers": (per_t, sol.multipliers), "shift": (("population",), sol.shift),
            "edges": (("edge",), sol.edges)}
    coords = {"t": (("t",), sol.t), "population": (("population",), _pops(sol)),
              "x": (("x",), sol.x)}
    return build_dataset("ConstrainedSolution", data=data, coords=coords, model=sol.model,
                         gamma=None, solver="constrained_fokker_planck", info=sol.info,
                         attrs={"limit": LIMIT}, extra=LIMIT_VARIABLES)


def read_constrained(ds: Any, path: Any) -> Any:
    """A :class:`~solvers.constrained.ConstrainedSolution` from its dataset (every array checked)."""
    from solvers.constrained import ConstrainedSolution
    from solvers.io import read_density, read_grid, read_times

    r = Reader(ds, path, "ConstrainedSolution")
    model = r.model()
    r.size("population", model.P)
    edges, x = read_grid(r)
    t = read_times(r)
    rho = read_density(r, "rho", ("t", "population", "x"))
    per_t = ("t", "population")
    obs = {name: r.array(name, per_t, shape=(t.size, model.P))
           for name in ("mass", "mean", "var", "m", "multipliers")}
    if not np.allclose(obs["mass"], rho @ np.diff(edges), rtol=1e-8, atol=1e-12):
        r.fail("mass does not match the integral of rho over the cells")
    shift = r.array("shift", ("population",), shape=(model.P,))
    return ConstrainedSolution(model=model, t=t, x=x, edges=edges, rho=rho, shift=shift,
                               info=r.mapping("info"), **obs)


# ----------------------------------------------------------------------------- early behaviour
def early_dataset(eb: Any) -> Any:
    """The dataset of an :class:`~solvers.limits.EarlyBehaviour`."""
    per_tau = ("tau", "population")
    data = {"positions": (("tau", "population", "node"), eb.positions),
            "weights": (("population", "node"), eb.weights), "m": (per_tau, eb.m),
            "mean": (per_tau, eb.mean), "var": (per_tau, eb.var)}
    coords = {"tau": (("tau",), eb.tau), "population": (("population",), _pops(eb))}
    return build_dataset("EarlyBehaviour", data=data, coords=coords, model=eb.model, gamma=None,
                         solver="early_behaviour", options={"time": eb.time},
                         attrs={"limit": LIMIT, "time": eb.time}, extra=LIMIT_VARIABLES)


def read_early(ds: Any, path: Any) -> Any:
    """An :class:`~solvers.limits.EarlyBehaviour` from its dataset (every array checked)."""
    from solvers.limits import EarlyBehaviour

    r = Reader(ds, path, "EarlyBehaviour")
    model = r.model()
    r.size("population", model.P)
    nodes = r.size("node", minimum=1)
    tau = r.array("tau", ("tau",), shape=(r.size("tau", minimum=1),))
    if np.any(np.diff(tau) <= 0):
        r.fail("the fast times tau are not strictly increasing")
    weights = r.array("weights", ("population", "node"), shape=(model.P, nodes))
    if np.any(weights < 0) or not np.allclose(weights.sum(axis=1), 1.0, rtol=1e-12, atol=0):
        r.fail("weights are not nonnegative with total 1 per population")
    per_tau = ("tau", "population")
    return EarlyBehaviour(
        model=model, time=r.number("time"), tau=tau, weights=weights,
        positions=r.array("positions", ("tau", "population", "node"),
                          shape=(tau.size, model.P, nodes)),
        **{name: r.array(name, per_tau, shape=(tau.size, model.P))
           for name in ("m", "mean", "var")})


# ----------------------------------------------------------------------------- trajectory
def trajectory_dataset(traj: Any) -> Any:
    """The dataset of a :class:`~solvers.limits.BalanceTrajectory`."""
    per_t = ("t", "population")
    data = {"v": (per_t, traj.v), "m": (per_t, traj.m), "slope": (per_t, traj.slope),
            "stable": (("t",), np.asarray(traj.stable, dtype=np.int8))}
    coords = {"t": (("t",), traj.t), "population": (("population",), _pops(traj))}
    return build_dataset("BalanceTrajectory", data=data, coords=coords, model=traj.model,
                         gamma=None, solver="balance_trajectory", attrs={"limit": LIMIT},
                         extra=LIMIT_VARIABLES)


def read_trajectory(ds: Any, path: Any) -> Any:
    """A :class:`~solvers.limits.BalanceTrajectory` from its dataset (every array checked)."""
    from solvers.io import read_times
    from solvers.limits import BalanceTrajectory

    r = Reader(ds, path, "BalanceTrajectory")
    model = r.model()
    r.size("population", model.P)
    t = read_times(r)
    stable = r.array("stable", ("t",), shape=(t.size,), dtype=int)
    if not np.all((stable == 0) | (stable == 1)):
        r.fail("stable has codes other than 0 and 1")
    per_t = ("t", "population")
    return BalanceTrajectory(model=model, t=t, stable=stable.astype(bool),
                             **{name: r.array(name, per_t, shape=(t.size, model.P))
                                for name in ("v", "m", "slope")})


# ----------------------------------------------------------------------------- balance points
def balance_points_dataset(bp: Any) -> Any:
    """The dataset of :class:`meanfield.balance.BalancePoints` (the γ = ∞ states of a model)."""
    P = bp.model.P
    if bp.concentrating:
        n = len(bp.all)

        def stack(name: str, shape: tuple[int, ...]) -> np.ndarray:
            return np.array([getattr(b, name) for b in bp.all], dtype=float).reshape(n, *shape)

        data = {"v": (("point", "population"), stack("v", (P,))),
                "m": (("point", "population"), stack("m", (P,))),
                "slope": (("point", "population"), stack("slope", (P,))),
                "jacobian": (("point", "population", "column"), stack("jacobian", (P, P))),
                "iteration_jacobian": (("point", "population", "column"),
                                       stack("iteration_jacobian", (P, P))),
                "residual": (("point",), stack("residual", ())),
                "stable": (("point",), np.array([b.stable for b in bp.all], dtype=np.int8))}
        if bp.outside:
            data["outside"] = (("outside_point", "population"), np.array(bp.outside, float))
    else:
        data = {"m": (("population",), np.asarray(bp.moments, float))}
    return build_dataset("BalancePoints", data=data,
                         coords={"population": (("population",), list(bp.model.names))},
                         model=bp.model, gamma=None, solver="meanfield.balance.balance_points",
                         options={"time": bp.time},
                         attrs={"limit": LIMIT, "time": bp.time,
                                "concentrating": int(bp.concentrating)},
                         extra=LIMIT_VARIABLES)


def read_balance_points(ds: Any, path: Any) -> Any:
    """:class:`meanfield.balance.BalancePoints` from its dataset (every array checked)."""
    from meanfield.balance import BalancePoint, BalancePoints

    r = Reader(ds, path, "BalancePoints")
    model = r.model()
    P = r.size("population", model.P)
    time = r.number("time")
    concentrating = r.number("concentrating", integer=True)
    if concentrating not in (0, 1):
        r.fail(f"the attribute 'concentrating' is {concentrating}, expected 0 or 1")
    if not concentrating:
        return BalancePoints(model=model, time=time, concentrating=False, all=(),
                             moments=r.array("m", ("population",), shape=(P,)))
    n = r.size("point")
    pair, square = ("point", "population"), ("point", "population", "column")
    arrays = {name: r.array(name, pair, shape=(n, P)) for name in ("v", "m", "slope")}
    arrays.update({name: r.array(name, square, shape=(n, P, P))
                   for name in ("jacobian", "iteration_jacobian")})
    residual = r.array("residual", ("point",), shape=(n,))
    points = tuple(BalancePoint(residual=float(residual[k]),
                                **{name: values[k] for name, values in arrays.items()})
                   for k in range(n))
    outside = (() if "outside" not in ds.variables else
               tuple(r.array("outside", ("outside_point", "population"),
                             shape=(r.size("outside_point"), P))))
    return BalancePoints(model=model, time=time, concentrating=True, all=points,
                         outside=tuple(np.array(v) for v in outside))


BUILDERS = {"ConstrainedSolution": constrained_dataset, "EarlyBehaviour": early_dataset,
            "BalanceTrajectory": trajectory_dataset}
READERS = {"ConstrainedSolution": read_constrained, "EarlyBehaviour": read_early,
           "BalanceTrajectory": read_trajectory}


class LimitResult:
    """``to_xarray``, ``save`` and ``from_xarray`` of the γ = ∞ results (one protocol)."""

    def to_xarray(self) -> Any:
        """An ``xarray.Dataset`` with CF metadata on every variable (:mod:`solvers.datasets`)."""
        return BUILDERS[type(self).__name__](self)

    def save(self, path: str | PathLike[str]) -> None:
        """Write :meth:`to_xarray` as NetCDF (read back with :func:`solvers.load`)."""
        self.to_xarray().to_netcdf(path)

    @classmethod
    def from_xarray(cls, ds: Any, path: Any = "<dataset>") -> Any:
        """The result of :meth:`to_xarray` (every array checked; errors name ``path``)."""
        return READERS[cls.__name__](ds, path)
