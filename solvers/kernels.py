r"""Tridiagonal kernels of one implicit Scharfetter–Gummel stage, in numba and in plain numpy/LAPACK.

One *stage* is the linear system, for every population ``p`` (``κ`` the implicit coefficient),

.. math:: (I - \kappa L_p)\,\rho_p = r_p, \qquad
   (L\rho)_i = -\frac{J_{i+1/2} - J_{i-1/2}}{h_i}, \qquad
   J_{i+1/2} = s_i\big[B(\delta_i)\rho_i - B(-\delta_i)\rho_{i+1}\big],

with zero flux at both ends, ``s_i = D/Δ_i`` and ``B(z) = z/(e^z − 1)``. A :class:`StageKernel`
works in two phases: ``solve`` factors and solves (returning the first three items below and the
factors), ``jacobian`` reuses the factors for the adjoint solves (only needed while Newton has
not converged). Called with all arguments, it returns

- ``rho`` (P, M): the solution;
- ``readout`` (P,): ``Σ_i w_{p,i} ρ_{p,i}`` and ``magnitude`` (P,): ``Σ_i |w_{p,i}| ρ_{p,i}``
  (the round-off scale of the readout);
- ``jacobian`` (P, P): ``∂ readout_p / ∂ m_j`` when ``δ_p`` depends on unknowns ``m`` with
  ``∂δ_p/∂m_j = ddelta[p, j]``. It costs one transposed solve per population, whatever P
  (adjoint: ``(I − κL_p)^T z_p = w_p``, then ``∂readout_p/∂m_j = κ Σ_e ∂J_e/∂δ_e ·
  ddelta[p, j, e] · (y_{e+1} − y_e)`` with ``z = H y``).

Work is O(M) per population. ``I − κL`` is an M-matrix whose h-weighted column sums are
``h_j > 0``. Both kernels eliminate without pivoting (Thomas) and compute the pivots from the
reduced column sums (a Grassmann–Taksar–Heyman-type recurrence, :func:`schur_pivots`), so no
step subtracts: on a non-negative right-hand side every operation adds non-negative numbers,
``rho ≥ 0`` holds exactly in floating point and the relative accuracy does not degrade as
``κ → ∞`` (where plain elimination loses ``κ‖L‖ε``). The numba kernel
(:mod:`solvers.kernels_numba`) fuses coefficients, recurrences, readouts and adjoint into one
forward and one backward sweep per population, and also runs the whole Newton iteration and the
tail of a time step compiled; the numpy twin evaluates the pivots by a vectorised prefix product
and hands the factors to LAPACK ``dgttrs``, and its Newton iteration and step tail are the
Python ones (:func:`solvers.implicit.newton_stage`, :func:`finish_step_numpy`). They agree to
round-off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg import lapack

from meanfield.errors import bad_value
from solvers.fv import bernoulli, bernoulli_derivative

KERNELS = ("auto", "numba", "numpy")


@dataclass(frozen=True)
class StageKernel:
    """A pair ``solve(delta, scale, widths, weights, kappa, rhs, workspace=None) -> (rho,
    readout, magnitude, factors)`` and ``jacobian(factors, ddelta, scale, widths, weights,
    kappa, rho) -> jac``. ``workspace`` is an optional dict, owned by the caller, in which a
    kernel may keep its factor arrays between calls (the factors of one call are then valid
    until the next call with the same workspace).

    Optional fused pieces (``None``: the generic path is used):

    - ``newton(base, slopes, scale, widths, weights, kappa, rhs, m_guess, max_iter, rtol,
      workspace) -> (rho, m, iterations, converged, residual)``: the whole Newton iteration of
      :func:`solvers.implicit.newton_stage` for ``δ = base + Σ_q m_q slopes[:, q]``;
    - ``finish(rho, rhs, kappa, rho_n, f_n, rho_prev, ratio, h, weights, widths) ->
      (limited rho, f, w·f, sums)``: the tail of a time step (:func:`finish_step_numpy`);
    - ``combine(x, cx, y, cy) -> cx·x + cy·y``;
    - ``newton_centred``: ``newton`` with the Jacobian from the centred readout weights
      (:func:`centred_weights_numpy`; used for a :class:`~solvers.implicit.StageProblem` with
      ``centred`` set);
    - ``bdf2_stage(rho_n, c_n, rho_prev, c_prev, base, slopes, scale, widths, weights, kappa,
      m_guess, max_iter, rtol, workspace, f_n, ratio, h, centred) -> (rhs, rho, m,
      iterations, converged, residual, f, w·f, sums)``: ``combine``, ``newton`` (or
      ``newton_centred``) and ``finish`` in one call
      (:func:`solvers.kernels_numba_fused.bdf2_stage`).
    """

    name: str
    solve: Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray, Any]]
    jacobian: Callable[..., np.ndarray]
    newton: Callable[..., tuple[np.ndarray, np.ndarray, int, bool, float]] | None = None
    finish: Callable[..., tuple[np.ndarray, ...]] | None = None
    combine: Callable[..., np.ndarray] | None = None
    newton_centred: Callable[..., tuple[np.ndarray, np.ndarray, int, bool, float]] | None = None
    bdf2_stage: Callable[..., tuple[Any, ...]] | None = None

    def __call__(self, delta: np.ndarray, ddelta: np.ndarray, scale: np.ndarray,
                 widths: np.ndarray, weights: np.ndarray, kappa: float, rhs: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        rho, readout, magnitude, factors = self.solve(delta, scale, widths, weights, kappa, rhs)
        jac = self.jacobian(factors, ddelta, scale, widths, weights, kappa, rho)
        return rho, readout, magnitude, jac


def finish_step_numpy(rho: np.ndarray, rhs: np.ndarray, kappa: float, rho_n: np.ndarray,
                      f_n: np.ndarray, rho_prev: np.ndarray, ratio: float, h: float,
                      weights: np.ndarray, widths: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Tail of a time step ``ρ = r + κ f`` from ``ρ_n`` (derivative ``f_n``), with ``ρ`` limited.

    The limited densities ``ρ̃_p = max(ρ_p, 0)·M_p/(M_p − N_p)`` (mass ``M_p = Σ ρ h`` kept,
    ``N_p = Σ min(ρ, 0) h`` the negative mass; ``ρ̃ = ρ``, the same array, when ``ρ ≥ 0``) are
    returned with ``f = (ρ̃ − r)/κ``, its readout ``w·f`` (P,) and ``sums`` (8, P): per
    population ``Σ|ρ̃ − p| h`` with ``p`` the predictor (for BDF2, when ``rho_prev`` has P rows,
    the quadratic through ``ρ_{n−1}``, ``ρ_n`` with slope ``f_n``: ``(1 − ω²)ρ_n + ω²ρ_{n−1} +
    h(1 + ω)f_n``, ``ω = ratio``; else ``ρ_n + h f_n``), ``Σ|ρ̃| h``, ``min ρ``, ``M``, ``N``,
    the moments ``w·ρ̃``, and ``Σ|ρ − p| h``, ``Σ|ρ| h`` before limiting.
    """
    mass, negative, lowest = rho @ widths, np.minimum(rho, 0.0) @ widths, rho.min(axis=1)
    raw = rho
    if np.any(lowest < 0):
        factor = np.where(lowest < 0, mass / (mass - negative), 1.0)
        rho = np.maximum(rho, 0.0)
        rho *= factor[:, None]
    f = rho - rhs
    f /= kappa
    if rho_prev.shape[0] == rho.shape[0]:
        predicted = rho_n * (1.0 - ratio * ratio)
        predicted += rho_prev * (ratio * ratio)
        predicted += f_n * (h * (1.0 + ratio))
    else:
        predicted = f_n * h
        predicted += rho_n
    deviation = np.abs(rho - predicted) @ widths
    raw_deviation = np.abs(raw - predicted) @ widths
    sums = np.array([deviation, np.abs(rho) @ widths, lowest, mass, negative,
                     np.einsum("pi,pi->p", weights, rho), raw_deviation, np.abs(raw) @ widths])
    return rho, f, np.einsum("pi,pi->p", weights, f), sums


def combine_numpy(x: np.ndarray, cx: float, y: np.ndarray, cy: float) -> np.ndarray:
    """``cx·x + cy·y``."""
    out = x * cx
    out += y * cy
    return out


def schur_pivots(widths: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pivots of ``H(I − κL)`` (diag ``h_i + a_i + b_{i−1}``, off-diagonals ``−b_i``, ``−a_{i−1}``).

    Subtraction-free: the reduced column sums obey ``S_0 = h_0``,
    ``S_i = h_i + b_{i−1} S_{i−1}/(S_{i−1} + a_{i−1})`` and the pivots are ``S_i + a_i``
    (``a_{M−1} = 0``). Written as ``(p_i, q_i) = T_i (p_{i−1}, q_{i−1})`` with
    ``T_i = [[h_i + b_{i−1}, h_i a_{i−1}], [1, a_{i−1}]] ≥ 0`` and ``S = p/q``, evaluated by a
    vectorised prefix product (log₂ M passes, each matrix rescaled to avoid overflow).
    """
    M = widths.size
    prod = np.empty((M, 2, 2))
    prod[0] = np.eye(2)
    prod[1:, 0, 0] = widths[1:] + b
    prod[1:, 0, 1] = widths[1:] * a
    prod[1:, 1, 0] = 1.0
    prod[1:, 1, 1] = a
    shift = 1
    while shift < M:
        prod[shift:] = prod[shift:] @ prod[:-shift]
        prod /= prod.max(axis=(1, 2), keepdims=True)
        shift *= 2
    sums = (prod[:, 0, 0] * widths[0] + prod[:, 0, 1]) / (prod[:, 1, 0] * widths[0]
                                                           + prod[:, 1, 1])
    sums[0] = widths[0]
    pivots = sums.copy()
    pivots[:-1] += a
    return pivots


def _solve_numpy(delta: np.ndarray, scale: np.ndarray, widths: np.ndarray, weights: np.ndarray,
                 kappa: float, rhs: np.ndarray, workspace: dict[str, Any] | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
    P, M = rhs.shape
    rho = np.empty((P, M))
    factors = []
    no_swaps = np.arange(1, M + 1, dtype=np.int32)
    zeros = np.zeros(max(M - 2, 0))
    for p in range(P):
        a = kappa * scale[p] * bernoulli(delta[p])
        b = kappa * scale[p] * bernoulli(-delta[p])
        pivots = schur_pivots(widths, a, b)
        lu = (-a / pivots[:-1], pivots, -b, zeros, no_swaps)
        rho[p] = lapack.dgttrs(*lu, (widths * rhs[p])[:, None])[0][:, 0]
        factors.append((lu, bernoulli_derivative(delta[p])))
    readout = np.einsum("pi,pi->p", weights, rho)
    magnitude = np.einsum("pi,pi->p", np.abs(weights), np.abs(rho))
    return rho, readout, magnitude, factors


def _jacobian_numpy(factors: Any, ddelta: np.ndarray, scale: np.ndarray, widths: np.ndarray,
                    weights: np.ndarray, kappa: float, rho: np.ndarray) -> np.ndarray:
    P = rho.shape[0]
    jac = np.zeros((P, ddelta.shape[1]))
    for p in range(P):
        lu, bp = factors[p]
        # (H A)^T y = w  ⇔  A^T (H y) = w
        y = lapack.dgttrs(*lu, weights[p][:, None], trans="T")[0][:, 0]
        dJ = scale[p] * (bp * rho[p, :-1] - (bp + 1.0) * rho[p, 1:])
        jac[p] = kappa * (ddelta[p] @ (dJ * np.diff(y)))
    return jac


STAGE_NUMPY = StageKernel("numpy", _solve_numpy, _jacobian_numpy, finish=finish_step_numpy,
                          combine=combine_numpy)


def stage_numpy(delta: np.ndarray, ddelta: np.ndarray, scale: np.ndarray, widths: np.ndarray,
                weights: np.ndarray, kappa: float, rhs: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The plain numpy/LAPACK stage kernel, both phases (see the module docstring).

    The factors come from :func:`schur_pivots` (no pivoting) and are applied by LAPACK
    ``dgttrs``, whose substitutions then only add non-negative terms.
    """
    return STAGE_NUMPY(delta, ddelta, scale, widths, weights, kappa, rhs)


def _numba_stage() -> StageKernel | None:
    """The numba twin from :mod:`solvers.kernels_numba` (``None`` when numba is not installed)."""
    if not numba_available():
        return None
    from solvers.kernels_numba import STAGE_PIECES, workspace_arrays
    from solvers.kernels_numba_fused import bdf2_stage
    from solvers.kernels_numba_newton import newton_centred

    def centred_call(base: np.ndarray, slopes: np.ndarray, scale: np.ndarray,
                     widths: np.ndarray, weights: np.ndarray, kappa: float, rhs: np.ndarray,
                     m_guess: np.ndarray, max_iter: int, rtol: float,
                     workspace: dict[str, Any] | None = None
                     ) -> tuple[np.ndarray, np.ndarray, int, bool, float]:
        P, M = rhs.shape
        return newton_centred(base, slopes, scale, widths, weights, float(kappa), rhs,
                              np.asarray(m_guess, dtype=float), int(max_iter), float(rtol),
                              workspace_arrays(workspace, P, M), np.empty((P, M)),
                              np.empty((P, M)))

    def fused_call(rho_n: np.ndarray, c_n: float, rho_prev: np.ndarray, c_prev: float,
                   base: np.ndarray, slopes: np.ndarray, scale: np.ndarray, widths: np.ndarray,
                   weights: np.ndarray, kappa: float, m_guess: np.ndarray, max_iter: int,
                   rtol: float, workspace: dict[str, Any], f_n: np.ndarray, ratio: float,
                   h: float, centred: bool) -> tuple[Any, ...]:
        P, M = rho_n.shape
        return bdf2_stage(rho_n, float(c_n), rho_prev, float(c_prev), base, slopes, scale,
                          widths, weights, float(kappa), np.asarray(m_guess, dtype=float),
                          int(max_iter), float(rtol), workspace_arrays(workspace, P, M), f_n,
                          float(ratio), float(h), bool(centred))

    return StageKernel("numba", **STAGE_PIECES, newton_centred=centred_call,
                       bdf2_stage=fused_call)


def centred_weights_numpy(weights: np.ndarray, widths: np.ndarray, rhs: np.ndarray,
                          m: np.ndarray) -> np.ndarray:
    r"""``w̃_p = w_p − c_p h``, ``c_p = m_p / Σ_i h_i r_{p,i}`` (0 for a massless row): the readout
    weights whose adjoint gives the stage Jacobian without cancellation.

    A stage conserves mass (``Σ_i h_i ρ_{p,i}(m) = Σ_i h_i r_{p,i}`` for every ``m``), so
    ``∂(w̃·ρ)/∂m = ∂(w·ρ)/∂m`` exactly. Where ``w`` is nearly proportional to ``h`` (a window
    much narrower than the scale of ``Ψ``, and ``κ‖L‖ ≫ 1``) the adjoint of ``w`` is a large
    constant plus a small variation, and the Jacobian (sums of its differences) loses the digits
    of that constant (measured: 20 % to 400 % off at γ = 1e12 on a concentrated profile); the
    adjoint of ``w̃`` has no constant part. The twin of
    :func:`solvers.kernels_numba_newton.centred_weights`.
    """
    mass = rhs @ widths
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where((mass != 0) & np.isfinite(mass), np.asarray(m, dtype=float) / mass, 0.0)
    c = np.where(np.isfinite(c), c, 0.0)
    return weights - c[:, None] * widths[None]


def numba_available() -> bool:
    """Whether numba imports (the ``fast`` extra)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def stage_kernel(name: str = "auto") -> tuple[str, StageKernel]:
    """``(resolved name, kernel)``: ``"auto"`` is numba when it imports, else numpy."""
    if name not in KERNELS:
        bad_value("kernel", name, f"one of {KERNELS}")
    if name == "numpy" or (name == "auto" and not numba_available()):
        return "numpy", STAGE_NUMPY
    compiled = _numba_stage()
    if compiled is None:
        bad_value("kernel", name, "'numpy' or 'auto' (numba is not installed)")
    return "numba", compiled
