r"""Native 2-D finite-volume solver of the FitzHugh–Nagumo mean-field PDE (docs/mathematics.md §12).

.. math::
    \partial_t \rho_p = -\partial_v\big[(v - v^3/3 - w + I_p - \gamma(K_p v - R_p))\rho_p\big]
        - \partial_w\big[\varepsilon_p (v + a_p - b_p w)\rho_p\big] + D_p\,\partial_{vv}\rho_p ,

``K, R`` affine in the coupling moments ``m_q = ∫Ψ_q ρ_q`` (:meth:`meanfield.fhn.FhnModel.coefficients`).
Cell-centred finite volumes on a uniform ``nv × nw`` grid, zero flux on the boundary (mass is
conserved to round-off), Strang splitting ``W(h/2) V(h) W(h/2)``:

* ``V``: along ``v`` on every ``w`` row, the Scharfetter–Gummel flux with the exact potential
  difference ``δ = ΔU/D``, ``U = −∫F dv + γ(K v²/2 − R v)`` (affine in ``m``), integrated by the
  two-stage L-stable SDIRK2 (``γ_s = 1 − 1/√2``, stiffly accurate). Both stages are implicit
  in ``ρ`` *and* in the moments: Newton on the P moments (:func:`solvers.implicit.solve_stage`)
  over the tridiagonal stage kernels of :mod:`solvers.kernels` (rows folded per population,
  :class:`solvers.fhn.kernels.RowFold`), O(cells) per evaluation. The first stage is positive
  (M-matrix); where the second has undershoots they are removed and the population rescaled to
  its exact mass, and the removed mass is added to the step's error estimate.
* ``W``: pure transport along ``w``, positive van Leer–limited upwind flux, SSP-RK2 substeps
  with outflow Courant number ≤ 1/2 (:mod:`solvers.fhn.kernels`). The moments are unchanged
  by it (``Ψ`` depends on ``v`` only and each ``v`` column keeps its mass).

Second order in space along ``v`` and ``w`` (smooth solutions) and in time. Adaptive steps by
step doubling: one step ``h`` against two of ``h/2``, local error ``‖ρ_{h/2,h/2} − ρ_h‖₁/3``
(L1 over the cells) kept ≤ ``atol + rtol·‖ρ_p‖₁`` for every population, step sizes from
:class:`solvers.stepping.Controller`; the two half steps are kept. The spatial error is
estimated by Richardson extrapolation from two more solves on grids coarsened by 2 along ``v``
and along ``w`` (:mod:`solvers.fhn.resolution`) and reported in the result.
"""

from __future__ import annotations

import time as _time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from meanfield.errors import ResolutionWarning, bad_type, bad_value, check_finite_number, check_int
from meanfield.fhn import ElectricalCoupling, FhnModel, GaussianStart
from solvers.fhn.fipy2d import _interval, _observe, gaussian_density
from solvers.fhn.kernels import outflow_speed, row_kernel, transport_kernel, transport_substeps
from solvers.fhn.resolution import SPACE_TOL, default_grid, richardson, verdict
from solvers.fhn.result import FhnNativeResult
from solvers.implicit import StageProblem, solve_stage
from solvers.stepping import Controller

SDIRK = 1.0 - 1.0 / np.sqrt(2.0)
"""Diagonal coefficient of the two-stage L-stable SDIRK2 of the ``v`` substep."""


@dataclass(frozen=True, eq=False)
class AffineRows:
    """``δ_r = base_r + Σ_q m_q slopes_{r,q}`` on the rows (R, nv − 1) of the grid."""

    base: np.ndarray
    slopes: np.ndarray

    def differences(self, m: np.ndarray, _time: float) -> np.ndarray:
        return self.base + np.einsum("rqe,q->re", self.slopes, np.asarray(m, dtype=float))

    def derivative(self, _m: np.ndarray, _time: float) -> np.ndarray:
        return self.slopes


@dataclass(frozen=True, eq=False)
class Plan:
    """The fixed data of one grid: stage problem along ``v``, face speeds along ``w``."""

    nv: int
    nw: int
    v: np.ndarray
    w: np.ndarray
    dv: float
    dw: float
    area: float
    problem: StageProblem
    weights: np.ndarray
    speed_w: np.ndarray
    outflow: float
    transport: Any
    readouts: np.ndarray
    names: tuple[str, str]


def build_plan(model: FhnModel, gamma: float, nv: int, nw: int, v_range: tuple[float, float],
               w_range: tuple[float, float], kernel: str) -> Plan:
    """Grid, potential differences, readout weights and ``w`` face speeds of ``model``."""
    P = model.P
    (v_lo, v_hi), (w_lo, w_hi) = v_range, w_range
    dv, dw = (v_hi - v_lo) / nv, (w_hi - w_lo) / nw
    v = v_lo + dv * (np.arange(nv) + 0.5)
    w = w_lo + dw * (np.arange(nw) + 0.5)
    w_faces = w_lo + dw * np.arange(nw + 1)
    a, b, eps, current = (model.param(k) for k in ("a", "b", "epsilon", "current"))
    D = model.param("sigma") ** 2 / 2
    g = np.array(model.coupling.g, dtype=float)
    dvs = np.diff(v)
    dsq = np.diff(v**2 / 2)
    dquart = np.diff(v**4 / 12)
    base = np.empty((P, nw, nv - 1))
    slopes = np.empty((P, nw, P, nv - 1))
    for p in range(P):
        # −ΔF along v with F = v²/2 − v⁴/12 + (I_p − w) v
        base[p] = -(dsq - dquart)[None, :] - (current[p] - w)[:, None] * dvs[None, :]
        if isinstance(model.coupling, ElectricalCoupling):
            base[p] += gamma * g[p].sum() * dsq
            slopes[p] = (-gamma * g[p][:, None] * dvs[None, :])[None]
        else:
            reversal = np.array(model.coupling.reversal, dtype=float)
            slopes[p] = (gamma * g[p][:, None] * (dsq[None, :] - reversal[:, None] * dvs))[None]
        base[p] /= D[p]
        slopes[p] /= D[p]
    R = P * nw
    readouts = np.array(model.readouts([v] * P))  # (P, nv)
    weights = np.repeat(readouts * dv * dw, nw, axis=0)  # (R, nv)
    scale = np.repeat((D / dv)[:, None] * np.ones(nv - 1), nw, axis=0)
    kernel_name, folded = row_kernel(kernel, scale, np.full(nv, dv), weights, P)
    problem = StageProblem(scale=np.zeros((P, nv - 1)), widths=np.full(nv, dv),
                           weights=np.zeros((P, nv)),
                           coupling=AffineRows(base.reshape(R, nv - 1).copy(),
                                               slopes.reshape(R, P, nv - 1).copy()),
                           kernel=folded)
    speed = eps[:, None, None] * (v[None, None, :] + a[:, None, None]
                                  - b[:, None, None] * w_faces[None, :, None])
    speed[:, 0] = speed[:, -1] = 0.0  # walls: no flux
    transport_name, transport = transport_kernel(kernel)
    return Plan(nv=nv, nw=nw, v=v, w=w, dv=dv, dw=dw, area=dv * dw, problem=problem, weights=weights,
                speed_w=np.ascontiguousarray(speed), outflow=outflow_speed(speed),
                transport=transport, readouts=readouts, names=(kernel_name, transport_name))


@dataclass
class Counters:
    steps: int = 0
    rejected: int = 0
    newton: int = 0
    clipped_mass: float = 0.0
    transport_substeps: int = 0
    dt_min: float = np.inf
    dt_max: float = 0.0


def _moments(plan: Plan, rho: np.ndarray) -> np.ndarray:
    return np.einsum("pjv,pv->p", rho, plan.readouts) * plan.area


def _transport(plan: Plan, rho: np.ndarray, h: float, tally: Counters) -> np.ndarray:
    n = transport_substeps(plan.outflow, h, plan.dw)
    tally.transport_substeps += n
    return plan.transport(rho, plan.speed_w, h, plan.dw, n)


def _diffuse(plan: Plan, rho: np.ndarray, m: np.ndarray, h: float, tally: Counters
             ) -> tuple[np.ndarray, np.ndarray, float] | None:
    """SDIRK2 along ``v`` over ``h`` (moments implicit); ``None`` if a Newton solve fails."""
    P, nw, nv = rho.shape
    rows = rho.reshape(P * nw, nv)
    first = solve_stage(plan.problem, rows, SDIRK * h, 0.0, m)
    tally.newton += first.iterations
    if not first.converged:
        return None
    rhs = rows + ((1.0 - SDIRK) / SDIRK) * (first.rho - rows)
    second = solve_stage(plan.problem, rhs, SDIRK * h, 0.0, first.m)
    tally.newton += second.iterations
    if not second.converged:
        return None
    out = second.rho.reshape(P, nw, nv)
    clipped = 0.0
    if np.any(out < 0):
        mass = rho.sum(axis=(1, 2))
        negative = np.minimum(out, 0.0).sum(axis=(1, 2))
        clipped = float(-negative.min() * plan.area)
        out = np.maximum(out, 0.0)
        out *= (mass / out.sum(axis=(1, 2)))[:, None, None]
        tally.clipped_mass += clipped
        return out, _moments(plan, out), clipped
    return out, second.m, clipped


def strang_step(plan: Plan, rho: np.ndarray, m: np.ndarray, h: float, tally: Counters
                ) -> tuple[np.ndarray, np.ndarray, float] | None:
    """``W(h/2) V(h) W(h/2)``: densities, moments and the mass removed by undershoot limiting."""
    half = _transport(plan, rho, h / 2, tally)
    done = _diffuse(plan, half, m, h, tally)
    if done is None:
        return None
    middle, m_new, clipped = done
    return _transport(plan, middle, h / 2, tally), m_new, clipped


def integrate(plan: Plan, rho0: np.ndarray, save_at: np.ndarray, *, dt: float | None,
              rtol: float, atol: float, max_steps: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Frames (nt, P, nw, nv) at ``save_at`` (first = start) and counters."""
    tally = Counters()
    rho = np.array(rho0, dtype=float)
    m = _moments(plan, rho)
    frames = [rho]
    t = float(save_at[0])
    controller = Controller("bdf2")
    h = min(float(save_at[-1] - save_at[0]), 0.01) if dt is None else dt
    worst = 0.0
    for target in save_at[1:]:
        target = float(target)
        if dt is not None:
            count = max(1, int(np.ceil((target - t) / dt * (1 - 1e-12))))
            for k in range(count):
                h_fixed = (target - t) / (count - k)
                step = strang_step(plan, rho, m, h_fixed, tally)
                if step is None:
                    raise RuntimeError(f"the implicit moment solve did not converge at t={t:g} "
                                       f"with dt={h_fixed:g}; use a smaller dt or adaptive steps")
                rho, m, _clip = step
                t += h_fixed
                _account(tally, h_fixed, max_steps)
            t = target
        else:
            while t < target:
                remaining = target - t
                h_step = remaining if h >= remaining * (1 - 1e-12) else (
                    remaining / 2 if h > remaining / 2 else h)
                whole = strang_step(plan, rho, m, h_step, tally)
                first = strang_step(plan, rho, m, h_step / 2, tally)
                second = None if first is None else strang_step(plan, first[0], first[1],
                                                                  h_step / 2, tally)
                if whole is None or second is None:
                    error = 1e6
                else:
                    diff = np.abs(second[0] - whole[0]).sum(axis=(1, 2)) * plan.area / 3.0
                    diff += first[2] + second[2]
                    mass = np.abs(second[0]).sum(axis=(1, 2)) * plan.area
                    error = float(np.max(diff / (atol + rtol * mass)))
                accepted = error <= 1.0
                h = controller.next_step(h_step, error, 2, accepted)
                if not accepted:
                    tally.rejected += 1
                    if h < 1e-14 * max(abs(t), 1.0):
                        raise RuntimeError(f"step size underflow at t={t:g} (h={h:g})")
                    continue
                worst = max(worst, error)
                rho, m = second[0], second[1]
                t = target if h_step == remaining else t + h_step
                _account(tally, h_step, max_steps)
        frames.append(rho)
    counters = {"steps": tally.steps, "rejected_steps": tally.rejected,
                "newton_iterations": tally.newton, "clipped_mass": tally.clipped_mass,
                "transport_substeps": tally.transport_substeps,
                "dt_min": tally.dt_min if tally.steps else None,
                "dt_max": tally.dt_max if tally.steps else None,
                "max_error_ratio": worst if dt is None else None}
    return np.array(frames), counters


def _account(tally: Counters, h: float, max_steps: int) -> None:
    tally.steps += 1
    tally.dt_min = min(tally.dt_min, h)
    tally.dt_max = max(tally.dt_max, h)
    if tally.steps > max_steps:
        raise RuntimeError(f"more than max_steps={max_steps} steps; raise max_steps or loosen "
                           f"rtol/atol")


def _observables(model: FhnModel, plan: Plan, rho: np.ndarray) -> dict[str, np.ndarray]:
    return _observe(model, rho, plan.v, plan.w, plan.area,
                    np.repeat(plan.readouts[:, None, :], plan.nw, axis=1))


def _run(model: FhnModel, gamma: float, nv: int, nw: int, v_range: tuple[float, float],
         w_range: tuple[float, float], initial: GaussianStart, save_at: np.ndarray,
         options: dict[str, Any]) -> tuple[Plan, np.ndarray, dict[str, Any]]:
    plan = build_plan(model, gamma, nv, nw, v_range, w_range, options["kernel"])
    rho0 = gaussian_density(initial, model.P, plan.v, plan.w, plan.area)
    frames, counters = integrate(plan, rho0, save_at, dt=options["dt"], rtol=options["rtol"],
                                 atol=options["atol"], max_steps=options["max_steps"])
    return plan, frames, counters


def solve_fhn_native(model: FhnModel, *, gamma: float, t_final: float, nv: int | None = None,
                     nw: int | None = None, v_range: tuple[float, float] = (-3.0, 3.0),
                     w_range: tuple[float, float] = (-1.5, 2.0),
                     initial: GaussianStart | None = None, save_at: Any = None,
                     dt: float | None = None, rtol: float = 1e-4, atol: float = 1e-7,
                     error_estimate: bool = True, space_tol: float = SPACE_TOL,
                     kernel: str = "auto", max_steps: int = 1_000_000) -> FhnNativeResult:
    """Solve the 2-D mean-field PDE of ``model`` on ``v_range × w_range`` up to ``t_final``.

    ``nv``/``nw`` (even; default from the concentration width and the ``w`` spread,
    :func:`solvers.fhn.resolution.default_grid`); ``initial`` (default
    :class:`~meanfield.fhn.GaussianStart`); ``save_at`` the output times (default 11 equally
    spaced from 0). ``dt=None``: adaptive steps with local L1 error ``≤ atol + rtol·‖ρ_p‖₁``
    (step doubling); a number: fixed Strang steps of at most ``dt``. ``error_estimate`` runs the
    two coarsened grids and fills the ``error_*`` fields; if the relative space error exceeds
    ``space_tol`` a :class:`~meanfield.errors.ResolutionWarning` names it and the ``nv``, ``nw``
    that fix it. ``kernel``: "auto" (numba when installed), "numba" or "numpy".
    """
    if not isinstance(model, FhnModel):
        bad_type("model", model, "a meanfield.fhn.FhnModel (fhn_electrical(...), fhn_chemical(...))")
    gamma = check_finite_number("gamma", gamma, nonnegative=True)
    t_final = check_finite_number("t_final", t_final, positive=True)
    v_range, w_range = _interval("v_range", v_range), _interval("w_range", w_range)
    if initial is None:
        initial = GaussianStart()
    if not isinstance(initial, GaussianStart):
        bad_type("initial", initial, "a meanfield.fhn.GaussianStart")
    if np.any(model.param("sigma") <= 0):
        bad_value("model", model.param("sigma").tolist(), "sigma > 0 in every population (the "
                  "native solver fits exponentials to the diffusion along v)")
    auto_v, auto_w = default_grid(model, gamma, initial, t_final, v_range, w_range)
    nv = auto_v if nv is None else check_int("nv", nv, minimum=8)
    nw = auto_w if nw is None else check_int("nw", nw, minimum=8)
    for name, n in (("nv", nv), ("nw", nw)):
        if error_estimate and n % 2:
            bad_value(name, n, "an even number of cells (the error estimate coarsens by 2)")
    if dt is not None:
        dt = check_finite_number("dt", dt, positive=True)
    rtol = check_finite_number("rtol", rtol, positive=True)
    atol = check_finite_number("atol", atol, positive=True)
    space_tol = check_finite_number("space_tol", space_tol, positive=True)
    max_steps = check_int("max_steps", max_steps, minimum=1)
    if save_at is None:
        save_at = np.linspace(0.0, t_final, 11)
    save_at = np.atleast_1d(np.asarray(save_at, dtype=float))
    if save_at.ndim != 1 or save_at.size == 0 or not np.all(np.isfinite(save_at)) or \
            np.any(np.diff(save_at) <= 0) or save_at[0] < 0 or save_at[-1] > t_final * (1 + 1e-12):
        bad_value("save_at", save_at.tolist(), f"increasing finite times in [0, t_final={t_final}]")
    times = save_at if save_at[0] == 0 else np.concatenate([[0.0], save_at])
    options = {"dt": dt, "rtol": rtol, "atol": atol, "max_steps": max_steps, "kernel": kernel}

    started = _time.perf_counter()
    plan, frames, counters = _run(model, gamma, nv, nw, v_range, w_range, initial, times, options)
    elapsed = _time.perf_counter() - started
    keep = slice(0, None) if save_at[0] == 0 else slice(1, None)
    rho = frames[keep]
    obs = _observables(model, plan, rho)
    mass_error = float(np.max(np.abs(obs["mass"] - 1.0)))
    info: dict[str, Any] = {"scheme": "strang-sdirk2", "kernel": plan.names[0],
                            "transport_kernel": plan.names[1], "dt": dt, "rtol": rtol,
                            "atol": atol, "cells": nv * nw, "nv": nv, "nw": nw, **counters,
                            "max_mass_error": mass_error,
                            "min_density": float(rho.min()), "wall_time": elapsed,
                            "time_per_step": elapsed / max(counters["steps"], 1),
                            "default_grid": [auto_v, auto_w]}
    names = ("mean_v", "var_v", "mean_w", "var_w")
    errors = {f"error_{k}": np.full_like(obs[k], np.nan) for k in names}
    if error_estimate:
        coarse = {}
        for label, (cv, cw) in (("v", (nv // 2, nw)), ("w", (nv, nw // 2))):
            c_plan, c_frames, _ = _run(model, gamma, cv, cw, v_range, w_range, initial, times,
                                       options)
            coarse[label] = _observables(model, c_plan, c_frames[keep])
        fine = {k: obs[k] for k in names}
        total, along_v, along_w = richardson(fine, {k: coarse["v"][k] for k in names},
                                             {k: coarse["w"][k] for k in names})
        errors = {f"error_{k}": total[k] for k in names}
        report = verdict(obs, save_at, along_v, along_w, nv, nw, space_tol)
        info["resolution"] = report
        if not report["ok"]:
            warnings.warn(report["message"], ResolutionWarning, stacklevel=2)
    return FhnNativeResult(model=model, gamma=gamma, t=save_at, v=plan.v, w=plan.w, rho=rho,
                           info=info, **obs, **errors)


__all__ = ["FhnNativeResult", "build_plan", "integrate", "solve_fhn_native", "strang_step"]
