r"""Kernels of the native 2-D FitzHugh–Nagumo solver (docs/mathematics.md §12), plain numpy.

Densities are stored as ``ρ[p, j, i]`` (population, ``w`` cell, ``v`` cell), C order.

**Transport along w** (no diffusion): ``∂_t ρ = −∂_w(u ρ)``, ``u = ε_p(v + a_p − b_p w)``
evaluated exactly on the ``w`` faces (zero on the two walls: no flux, mass kept to round-off).
The face flux is upwind with a van Leer–limited linear reconstruction,

.. math:: F_{j+1/2} = u^+_{j+1/2}\,(\rho_j + s_j/2) + u^-_{j+1/2}\,(\rho_{j+1} - s_{j+1}/2),
   \qquad s_j = \frac{2\,\Delta_- \Delta_+}{\Delta_- + \Delta_+}\ \text{if}\ \Delta_-\Delta_+ > 0
   \ \text{else}\ 0,

(``s = 0`` in the two wall cells), so every face value lies in ``[0, 2ρ_j]``; time stepping by
SSP-RK2 (Heun) in ``n`` equal substeps. Each Euler stage is positive when the outflow Courant
number ``(u^+_{j+1/2} + u^-_{j-1/2})Δt/Δw ≤ 1/2`` in every cell, and SSP-RK2 is a convex
combination of such stages, so ``ρ ≥ 0`` is kept; :func:`transport_substeps` picks ``n``.
The numba twin is :mod:`solvers.fhn.kernels_numba` (same operations, same results to round-off).

**Diffusion and drift along v** reuse the implicit Scharfetter–Gummel stage kernels of
:mod:`solvers.kernels` on the ``P·n_w`` rows of the grid; :class:`RowFold` folds the row
readouts into the ``P`` coupling moments, so that the Newton iteration of
:func:`solvers.implicit.solve_stage` runs on the P moments only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from meanfield.errors import bad_value
from solvers.kernels import StageKernel, numba_available, stage_kernel

COURANT_MAX = 0.5
"""Largest outflow Courant number of one transport substep (positivity bound)."""


def transport_rate(rho: np.ndarray, u: np.ndarray, inv_dw: float) -> np.ndarray:
    """``−(F_{j+1/2} − F_{j−1/2})/Δw`` for densities ``rho`` (P, nw, nv) and face speeds ``u``
    (P, nw + 1, nv) (zero on the walls)."""
    d = np.diff(rho, axis=1)
    lower, upper = d[:, :-1], d[:, 1:]
    product = lower * upper
    slope = np.zeros_like(rho)
    total = lower + upper
    np.divide(2.0 * product, total, out=slope[:, 1:-1], where=product > 0)
    uf = u[:, 1:-1]
    flux = np.maximum(uf, 0.0) * (rho[:, :-1] + 0.5 * slope[:, :-1]) \
        + np.minimum(uf, 0.0) * (rho[:, 1:] - 0.5 * slope[:, 1:])
    out = np.zeros_like(rho)
    out[:, :-1] -= flux
    out[:, 1:] += flux
    return out * inv_dw


def transport_numpy(rho: np.ndarray, u: np.ndarray, dt: float, dw: float,
                    substeps: int) -> np.ndarray:
    """``substeps`` SSP-RK2 steps of length ``dt/substeps`` of the w transport (a new array)."""
    tau = dt / substeps
    inv_dw = 1.0 / dw
    out = np.array(rho, dtype=float)
    for _ in range(substeps):
        stage = out + tau * transport_rate(out, u, inv_dw)
        stage += tau * transport_rate(stage, u, inv_dw)
        out = 0.5 * (out + stage)
    return out


def outflow_speed(u: np.ndarray) -> float:
    """``max_j (u^+_{j+1/2} + u^-_{j−1/2})``: the outflow speed of the worst cell."""
    return float(np.max(np.maximum(u[:, 1:], 0.0) + np.maximum(-u[:, :-1], 0.0)))


def transport_substeps(speed: float, dt: float, dw: float) -> int:
    """Fewest equal substeps with outflow Courant number ``speed·τ/Δw ≤`` :data:`COURANT_MAX`."""
    return max(1, int(np.ceil(speed * dt / dw / COURANT_MAX * (1 - 1e-12))))


TRANSPORT_KERNELS = ("auto", "numba", "numpy")


def transport_kernel(name: str = "auto") -> tuple[str, Any]:
    """``(resolved name, transport function)`` with the signature of :func:`transport_numpy`."""
    if name not in TRANSPORT_KERNELS:
        bad_value("kernel", name, f"one of {TRANSPORT_KERNELS}")
    if name == "numpy" or (name == "auto" and not numba_available()):
        return "numpy", transport_numpy
    if not numba_available():
        bad_value("kernel", name, "'numpy' or 'auto' (numba is not installed)")
    from solvers.fhn.kernels_numba import transport_numba

    return "numba", transport_numba


@dataclass(frozen=True, eq=False)
class RowFold:
    """A stage kernel over the ``R = P·n_w`` rows whose readouts are summed per population.

    ``row_scale`` (R, nv − 1), ``widths`` (nv,) and ``row_weights`` (R, nv) are the data of
    the rows (``w_{r,i} = Ψ_p(v_i) Δv Δw`` for row ``r`` of population ``p``); rows are
    ordered population by population, ``n_w`` each. :meth:`stage_kernel` wraps it as a
    :class:`~solvers.kernels.StageKernel` whose readout, magnitude and Jacobian are (P,),
    (P,), (P, P) (the arrays a :class:`~solvers.implicit.StageProblem` passes in are ignored).
    """

    inner: StageKernel
    row_scale: np.ndarray
    widths: np.ndarray
    row_weights: np.ndarray
    P: int

    def fold(self, values: np.ndarray) -> np.ndarray:
        return values.reshape(self.P, -1, *values.shape[1:]).sum(axis=1)

    def solve(self, delta: np.ndarray, _scale: Any, _widths: Any, _weights: Any, kappa: float,
              rhs: np.ndarray, workspace: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
        rho, readout, magnitude, factors = self.inner.solve(
            delta, self.row_scale, self.widths, self.row_weights, kappa, rhs, workspace)
        return rho, self.fold(readout), self.fold(magnitude), factors

    def jacobian(self, factors: Any, ddelta: np.ndarray, _scale: Any, _widths: Any,
                 _weights: Any, kappa: float, rho: np.ndarray) -> np.ndarray:
        rows = self.inner.jacobian(factors, ddelta, self.row_scale, self.widths,
                                   self.row_weights, kappa, rho)
        return self.fold(rows)

    def stage_kernel(self) -> StageKernel:
        return StageKernel(f"rows-{self.inner.name}", self.solve, self.jacobian)


def row_kernel(name: str, row_scale: np.ndarray, widths: np.ndarray, row_weights: np.ndarray,
               P: int) -> tuple[str, StageKernel]:
    """The folded stage kernel on the rows (``name``: "auto", "numba" or "numpy")."""
    resolved, inner = stage_kernel(name)
    fold = RowFold(inner, np.ascontiguousarray(row_scale, dtype=float),
                   np.ascontiguousarray(widths, dtype=float),
                   np.ascontiguousarray(row_weights, dtype=float), P)
    return resolved, fold.stage_kernel()


__all__ = ["COURANT_MAX", "RowFold", "outflow_speed", "row_kernel", "transport_kernel",
           "transport_numpy", "transport_rate", "transport_substeps"]
