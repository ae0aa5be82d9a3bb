r"""The mean-field PDE of FitzHugh–Nagumo populations in ``(v, w)``, solved with FiPy on a ``Grid2D``.

For each population ``p`` (docs/mathematics.md §8, :mod:`meanfield.fhn`):

.. math::
    \partial_t \rho_p = -\partial_v\big[(v - v^3/3 - w + I_p - \gamma(K_p v - R_p))\rho_p\big]
        - \partial_w\big[\varepsilon_p (v + a_p - b_p w)\rho_p\big] + D_p\,\partial_{vv}\rho_p ,

with ``K, R`` computed from the coupling moments ``m_q = ∫ Ψ_q ρ_q`` (``Ψ_q(v) = v`` electrical,
``S_q(v)`` chemical). Rectangle ``v_range × w_range``, zero-flux boundaries (the velocity is set
to zero on the exterior faces, so mass is conserved to round-off). Diffusion acts along ``v``
only (no noise on ``w``): the face coefficient is ``D |n_v|``.

Discretisation: cell-centred finite volumes; along ``v`` exponential (Scharfetter–Gummel)
convection, implicit; along ``w`` (pure transport, slow) FiPy's explicit Van Leer TVD scheme,
which has far less numerical diffusion than upwinding (the ``w`` spread is small and would be
swamped by it); backward Euler in time; direct LU solves. The nonlocal coupling is made implicit
by sweeps: within a step the moments ``m`` are frozen, the step solved, and ``m`` updated by
Broyden's method on ``M(m) − m`` (``M``: the moments after the frozen-``m`` solve) until
``|M(m) − m| < sweep_tol`` (converged backward Euler; the first guess is extrapolated from the
two previous steps, the first update is a plain sweep). The ``w`` Courant number
``max|u_w| Δt/Δw`` must stay ≤ 1/2 (checked). Mass (to round-off) and positivity are measured at
every step; a violation raises.
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass, field
from os import PathLike
from typing import Any, ClassVar

import numpy as np

from meanfield.errors import bad_type, bad_value, check_finite_number, check_int
from meanfield.fhn import FhnModel, GaussianStart


@dataclass(frozen=True, eq=False)
class FhnPdeResult:
    """Densities and observables of the 2-D mean-field PDE at the saved times ``t`` (nt,).

    ``rho`` has shape (nt, P, nw, nv) on cell centres ``v`` (nv,) and ``w`` (nw,);
    ``mass``, ``mean_v``, ``var_v``, ``mean_w``, ``var_w``, ``m``, ``balance_residual`` and
    ``min_density`` have shape (nt, P). ``info`` holds steps, sweeps and the worst mass error.
    """

    model: FhnModel
    gamma: float
    t: np.ndarray
    v: np.ndarray
    w: np.ndarray
    rho: np.ndarray
    mass: np.ndarray
    mean_v: np.ndarray
    var_v: np.ndarray
    mean_w: np.ndarray
    var_w: np.ndarray
    m: np.ndarray
    balance_residual: np.ndarray
    min_density: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    RESULT_TYPE: ClassVar[str] = "FhnPdeResult"
    SOLVER: ClassVar[str] = "solve_fhn_pde"
    METHOD: ClassVar[str] = "fipy2d"
    EXTRA: ClassVar[dict[str, tuple[str, str, str]]] = {}
    """Further (t, population) variables of a subclass: name -> (long_name, units, description)."""

    @property
    def cell_area(self) -> float:
        return float((self.v[1] - self.v[0]) * (self.w[1] - self.w[0]))

    def marginal_v(self) -> np.ndarray:
        """``∫ ρ dw``: shape (nt, P, nv)."""
        return self.rho.sum(axis=2) * (self.w[1] - self.w[0])

    def marginal_w(self) -> np.ndarray:
        """``∫ ρ dv``: shape (nt, P, nw)."""
        return self.rho.sum(axis=3) * (self.v[1] - self.v[0])

    def to_xarray(self) -> Any:
        """An ``xarray.Dataset`` with dims (t, population, w, v), CF metadata."""
        from solvers.datasets import FHN_VARIABLES, RECOVERY, VOLT, build_dataset

        data = {name: (("t", "population"), getattr(self, name))
                for name in (*OBSERVABLES, *self.EXTRA)}
        data["rho"] = (("t", "population", "w", "v"), self.rho)
        coords = {"t": (("t",), self.t), "population": (("population",), list(self.model.names)),
                  "v": (("v",), self.v), "w": (("w",), self.w)}
        extra = FHN_VARIABLES | self.EXTRA | {
            "v": ("voltage (cell centre)", VOLT, "centres of the uniform cells in v"),
            "w": ("recovery variable (cell centre)", RECOVERY, "centres of the uniform cells in w")}
        return build_dataset(self.RESULT_TYPE, data=data, coords=coords, model=self.model,
                             gamma=self.gamma, solver=self.SOLVER, info=self.info,
                             attrs={"method": self.METHOD, "kind": self.model.kind}, extra=extra)

    def save(self, path: str | PathLike[str]) -> None:
        """Write :meth:`to_xarray` as NetCDF (read back with :func:`solvers.load`)."""
        self.to_xarray().to_netcdf(path)

    @classmethod
    def from_xarray(cls, ds: Any, path: Any = "<dataset>") -> FhnPdeResult:
        """The result of :meth:`to_xarray` (every array checked; errors name ``path``)."""
        from solvers.datasets import Reader
        from solvers.io import read_density, read_times

        r = Reader(ds, path, cls.RESULT_TYPE)
        model = r.model()
        r.size("population", model.P)
        v, w = (r.array(name, (name,)) for name in ("v", "w"))
        for name, centres in (("v", v), ("w", w)):
            if centres.size < 2 or not np.allclose(np.diff(centres), centres[1] - centres[0],
                                                   rtol=1e-9, atol=0) or centres[1] <= centres[0]:
                r.fail(f"{name} are not increasing uniform cell centres")
        obs = {name: r.array(name, ("t", "population")) for name in (*OBSERVABLES, *cls.EXTRA)}
        return cls(model=model, gamma=r.number("gamma", minimum=0), t=read_times(r), v=v, w=w,
                   rho=read_density(r, "rho", ("t", "population", "w", "v")),
                   info=r.mapping("info"), **obs)


OBSERVABLES = ("mass", "mean_v", "var_v", "mean_w", "var_w", "m", "balance_residual",
               "min_density")


def _interval(name: str, value: Any) -> tuple[float, float]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        bad_type(name, value, "a pair (low, high)")
    low, high = (check_finite_number(name, x) for x in value)
    if not low < high:
        bad_value(name, value, "an interval (low, high) with low < high")
    return low, high


def gaussian_density(start: GaussianStart, P: int, v: np.ndarray, w: np.ndarray,
                     area: float) -> np.ndarray:
    """Initial densities (P, nw, nv): Gaussians at cell centres, normalised to mass 1 on the grid."""
    par = start.per_population(P)
    out = np.empty((P, w.size, v.size))
    for p in range(P):
        if par["v_std"][p] <= 0 or par["w_std"][p] <= 0:
            bad_value("initial", start, "standard deviations > 0 for the PDE (a Dirac mass "
                      "cannot be put on a grid)")
        gv = np.exp(-0.5 * ((v - par["v"][p]) / par["v_std"][p]) ** 2)
        gw = np.exp(-0.5 * ((w - par["w"][p]) / par["w_std"][p]) ** 2)
        density = gw[:, None] * gv[None, :]
        total = density.sum() * area
        if not total > 0:
            bad_value("initial", start, "a law with mass inside v_range × w_range")
        out[p] = density / total
    return out


def solve_fhn_pde(model: FhnModel, *, gamma: float, t_final: float, nv: int = 40, nw: int = 40,
                  dt: float, v_range: tuple[float, float] = (-3.0, 3.0),
                  w_range: tuple[float, float] = (-1.5, 2.0),
                  initial: GaussianStart | None = None, save_every: int = 1,
                  sweep_tol: float = 1e-8, max_sweeps: int = 30,
                  mass_tol: float = 1e-9) -> FhnPdeResult:
    """Solve the 2-D mean-field PDE of ``model`` up to ``t_final`` with fixed steps ``≈ dt``.

    ``nv × nw`` cells on ``v_range × w_range``; ``initial`` (default
    :class:`~meanfield.fhn.GaussianStart`) must have positive spreads. Densities are saved
    every ``save_every`` steps (and at ``t_final``). Raises ``RuntimeError`` if the mass drifts by
    more than ``mass_tol`` or a density goes below ``-mass_tol`` (positivity lost).
    A :class:`~meanfield.errors.ResolutionWarning` names ``nv``, ``nw`` when the grid has fewer
    cells per spread than the native solver's default grid.
    ``sweep_tol`` bounds ``|M(m) − m|`` at the end of every step; below about 1e-9 it meets the
    round-off of FiPy's exponential weights (piecewise in the Péclet number) and costs sweeps
    for nothing.
    """
    if not isinstance(model, FhnModel):
        bad_type("model", model, "a meanfield.fhn.FhnModel (fhn_electrical(...), fhn_chemical(...))")
    gamma = check_finite_number("gamma", gamma, nonnegative=True)
    t_final = check_finite_number("t_final", t_final, positive=True)
    dt = check_finite_number("dt", dt, positive=True)
    nv = check_int("nv", nv, minimum=4)
    nw = check_int("nw", nw, minimum=4)
    save_every = check_int("save_every", save_every, minimum=1)
    max_sweeps = check_int("max_sweeps", max_sweeps, minimum=1)
    sweep_tol = check_finite_number("sweep_tol", sweep_tol, positive=True)
    mass_tol = check_finite_number("mass_tol", mass_tol, positive=True)
    v_lo, v_hi = _interval("v_range", v_range)
    w_lo, w_hi = _interval("w_range", w_range)
    if initial is None:
        initial = GaussianStart()
    if not isinstance(initial, GaussianStart):
        bad_type("initial", initial, "a meanfield.fhn.GaussianStart")

    _warn_unresolved(model, gamma, initial, t_final, nv, nw, (v_lo, v_hi), (w_lo, w_hi))
    import fipy

    dv, dw = (v_hi - v_lo) / nv, (w_hi - w_lo) / nw
    mesh = fipy.Grid2D(dx=dv, dy=dw, nx=nv, ny=nw) + ((v_lo,), (w_lo,))  # noqa: RUF005 (shifts the mesh)
    v_cells = v_lo + dv * (np.arange(nv) + 0.5)
    w_cells = w_lo + dw * (np.arange(nw) + 0.5)
    area = dv * dw
    cell_v = np.asarray(mesh.cellCenters[0])
    face_v = np.asarray(mesh.faceCenters[0])
    face_w = np.asarray(mesh.faceCenters[1])
    interior = ~np.asarray(mesh.exteriorFaces, dtype=bool)
    along_v = np.abs(np.asarray(mesh.faceNormals[0]))

    P = model.P
    pars = {k: model.param(k) for k in ("a", "b", "epsilon", "current", "sigma")}
    rho0 = gaussian_density(initial, P, v_cells, w_cells, area)
    rhos = [fipy.CellVariable(mesh=mesh, value=rho0[p].ravel(), hasOld=True) for p in range(P)]
    velocities = [fipy.FaceVariable(mesh=mesh, rank=1, value=0.0) for _ in range(P)]
    velocities_w = [fipy.FaceVariable(mesh=mesh, rank=1, value=0.0) for _ in range(P)]
    solver = fipy.LinearLUSolver()
    equations = []
    for p in range(P):
        diffusion = fipy.FaceVariable(mesh=mesh, value=pars["sigma"][p] ** 2 / 2 * along_v)
        equations.append(fipy.TransientTerm() + fipy.ExponentialConvectionTerm(coeff=velocities[p])
                         + fipy.VanLeerConvectionTerm(coeff=velocities_w[p])
                         == fipy.DiffusionTerm(coeff=diffusion))
    readouts = np.array(model.readouts([cell_v] * P))  # (P, cells)
    base_w = [pars["epsilon"][p] * (face_v + pars["a"][p] - pars["b"][p] * face_w)
              for p in range(P)]
    base_v = [face_v - face_v**3 / 3 - face_w + pars["current"][p] for p in range(P)]

    def moments(values: list[np.ndarray]) -> np.ndarray:
        return np.array([np.sum(readouts[q] * values[q]) * area for q in range(P)])

    def set_velocities(m: np.ndarray) -> None:
        K, R = model.coefficients(m)
        for p in range(P):
            uv = (base_v[p] - gamma * (K[p] * face_v - R[p])) * interior
            velocities[p].setValue(np.vstack([uv, 0.0 * uv]))
            velocities_w[p].setValue(np.vstack([0.0 * uv, base_w[p] * interior]))

    steps = max(1, round(t_final / dt))
    dt_eff = t_final / steps
    courant = max(float(np.max(np.abs(u))) for u in base_w) * dt_eff / dw
    if courant > 0.5:
        bad_value("dt", dt, f"a step with w Courant number ≤ 1/2 (got {courant:.3g}); "
                  f"use dt ≤ {dt * 0.5 / courant:.3g} or fewer w cells")
    saved_steps = sorted(set(range(0, steps + 1, save_every)) | {steps})
    saving = set(saved_steps)
    frames: list[np.ndarray] = []
    sweeps_total, worst_mass, worst_min = 0, 0.0, np.inf
    m_prev: np.ndarray | None = None
    started = _time.perf_counter()
    for k in range(steps + 1):
        current = [np.asarray(r.value).copy() for r in rhos]
        mass = np.array([c.sum() * area for c in current])
        worst_mass = max(worst_mass, float(np.max(np.abs(mass - 1.0))))
        worst_min = min(worst_min, float(min(c.min() for c in current)))
        if worst_mass > mass_tol or worst_min < -mass_tol:
            raise RuntimeError(f"fipy2d lost {'mass' if worst_mass > mass_tol else 'positivity'}"
                               f" at step {k}: |mass − 1| = {worst_mass:.3e}, "
                               f"min ρ = {worst_min:.3e} (tolerance {mass_tol:g})")
        if k in saving:
            frames.append(np.array([c.reshape(nw, nv) for c in current]))
        if k == steps:
            break
        for r in rhos:
            r.updateOld()
        m_now = moments(current)
        # first guess: moments extrapolated linearly from the last two steps
        guess = m_now if m_prev is None else 2 * m_now - m_prev
        m_prev = m_now
        # Broyden's method on the P moments, F(m) = M(m) − m, where M(m) solves the step with
        # the coupling frozen at m; the first iterate is a plain sweep (B = −I).
        jacobian = -np.eye(P)
        residual: np.ndarray | None = None
        step = np.zeros(P)
        for _sweep in range(max_sweeps):
            set_velocities(guess)
            # FiPy's exponential weights evaluate 0/0 on faces with neither flow nor diffusion
            # along their normal (the w-faces); the weight there is unused (zero flux).
            with np.errstate(invalid="ignore", divide="ignore"):
                for p in range(P):
                    equations[p].sweep(var=rhos[p], dt=dt_eff, solver=solver)
            new_residual = moments([np.asarray(r.value) for r in rhos]) - guess
            sweeps_total += 1
            change = float(np.max(np.abs(new_residual)))
            if change < sweep_tol:
                break
            if residual is not None:
                dF = new_residual - residual
                jacobian += np.outer(dF - jacobian @ step, step) / (step @ step)
            residual = new_residual
            try:
                step = -np.linalg.solve(jacobian, residual)
            except np.linalg.LinAlgError:  # degenerate secant update: fall back to a plain sweep
                jacobian = -np.eye(P)
                step = residual.copy()
            guess = guess + step
        else:
            raise RuntimeError(f"fipy2d sweeps did not converge at step {k}: moment change "
                               f"{change:.3e} > sweep_tol={sweep_tol:g} after {max_sweeps} sweeps")
    elapsed = _time.perf_counter() - started

    rho = np.array(frames)  # (nt, P, nw, nv)
    t = np.array(saved_steps, dtype=float) * dt_eff
    obs = _observe(model, rho, v_cells, w_cells, area, readouts.reshape(P, nw, nv))
    info = {"steps": steps, "dt": dt_eff, "sweeps": sweeps_total, "cells": nv * nw,
            "max_mass_error": worst_mass, "min_density": worst_min, "wall_time": elapsed,
            "time_per_step": elapsed / steps}
    return FhnPdeResult(model=model, gamma=gamma, t=t, v=v_cells, w=w_cells, rho=rho,
                        info=info, **obs)


def _warn_unresolved(model: FhnModel, gamma: float, initial: GaussianStart, t_final: float,
                     nv: int, nw: int, v_range: tuple[float, float],
                     w_range: tuple[float, float]) -> None:
    """A ``ResolutionWarning`` when the grid has fewer cells per spread than the native default
    (the concentration width ``√(D/(γA))`` along ``v``, the contracted ``w`` spread along ``w``)."""
    import warnings

    from meanfield.errors import ResolutionWarning
    from solvers.fhn.resolution import CELLS_PER_WIDTH, default_grid, widths

    need_v, need_w = default_grid(model, gamma, initial, t_final, v_range, w_range)
    if nv >= need_v and nw >= need_w:
        return
    width_v, width_w = widths(model, gamma, initial, t_final)
    causes = []
    if nv < need_v:
        causes.append(f"{width_v / ((v_range[1] - v_range[0]) / nv):.3g} cells per concentration "
                      f"width sqrt(D/(gamma*A)) = {width_v:.3g} along v")
    if nw < need_w:
        causes.append(f"{width_w / ((w_range[1] - w_range[0]) / nw):.3g} cells per spread "
                      f"{width_w:.3g} of w")
    warnings.warn(f"the FiPy 2-D grid nv×nw = {nv}×{nw} does not resolve the density ("
                  + "; ".join(causes) + f"; need {CELLS_PER_WIDTH:g}): use about nv={max(nv, need_v)}, "
                  f"nw={max(nw, need_w)} or more (or solve_fhn_native, which estimates its own "
                  "error)", ResolutionWarning, stacklevel=3)


def _observe(model: FhnModel, rho: np.ndarray, v: np.ndarray, w: np.ndarray, area: float,
             readouts: np.ndarray) -> dict[str, np.ndarray]:
    mass = rho.sum(axis=(2, 3)) * area
    safe = np.where(mass > 0, mass, 1.0)
    V, W = v[None, None, None, :], w[None, None, :, None]
    mean_v = (rho * V).sum(axis=(2, 3)) * area / safe
    mean_w = (rho * W).sum(axis=(2, 3)) * area / safe
    var_v = (rho * (V - mean_v[..., None, None]) ** 2).sum(axis=(2, 3)) * area / safe
    var_w = (rho * (W - mean_w[..., None, None]) ** 2).sum(axis=(2, 3)) * area / safe
    m = (rho * readouts[None]).sum(axis=(2, 3)) * area
    residual = np.empty_like(mass)
    for k in range(rho.shape[0]):
        K, R = model.coefficients(m[k])
        for p in range(model.P):
            residual[k, p] = np.sum(np.abs(K[p] * v[None, :] - R[p]) * rho[k, p]) * area
    return {"mass": mass, "mean_v": mean_v, "var_v": var_v, "mean_w": mean_w, "var_w": var_w,
            "m": m, "balance_residual": residual, "min_density": rho.min(axis=(2, 3))}


__all__ = ["FhnPdeResult", "gaussian_density", "solve_fhn_pde"]
