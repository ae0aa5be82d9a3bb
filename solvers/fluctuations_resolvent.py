r"""Fluctuations of a few observables without the dense covariance: the resolvent method.

Beyond the dense sizes (docs/fluctuations.md §5) only the readouts ``y = Wᵀη`` are needed. Their
spectrum ``S(ω) = Zᴴ Q Z`` with ``Z = (−iω − Aᵀ)⁻¹ W`` costs one sparse solve per ω, because
``A = blockdiag(L_p) + U Rᵀ`` is tridiagonal per population plus rank ``P``
(Sherman–Morrison–Woodbury on banded LU solves, O(P²·M) per ω), and

.. math:: n\,\mathrm{Cov}(y) = \frac1\pi \int_0^\infty \mathrm{Re}\,S(\omega)\,d\omega,
   \qquad \tau_c = \frac{S(0)}{2\,n\,\mathrm{Var}(y)} .

The integral is a trapezoidal rule in ``u = log ω`` (the integrand decays like ``e^{−|u|}`` at
both ends and is analytic in a strip, so the rule converges geometrically), halving the step
until two successive values agree to ``rtol``; the ends are closed with ``S(ω) ≈ S(ω_lo)`` below
``ω_lo`` and ``S(ω) ≈ WᵀQW/ω²`` above ``ω_hi``. The mass direction: ``Lᵀ 1 = 0`` and
``Uᵀ 1 = 0`` per population, so ``W`` and ``R`` are projected along ``1`` onto the complement
of the stationary masses (where ``−Lᵀ`` is invertible); ``Q`` ignores the constant part of ``Z``.
Valid at a stationary state (``L_p p_p = 0``). Memory O(P²·M): any number of cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from meanfield.errors import bad_value
from solvers.kernels import numba_available
from solvers.lyapunov import NoiseBands


@dataclass(frozen=True, eq=False)
class ResolventSystem:
    """The sparse linear-noise system at a stationary state, with the projected readouts."""

    bands: NoiseBands

    @property
    def shape(self) -> tuple[int, int]:
        return self.bands.diag.shape

    def project(self, W: np.ndarray) -> np.ndarray:
        """``W − 1_p (p_pᵀ W)`` per population block (``p_p`` the stationary masses)."""
        P, M = self.shape
        out = np.array(W, dtype=complex, copy=True)
        for p in range(P):
            s = slice(p * M, (p + 1) * M)
            out[s] -= self.bands.masses[s] @ out[s]
        return out

    def _local_solve(self, omega: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """``(−iω − Lᵀ)⁻¹ rhs`` (nω, P·M, k) for every ω (:func:`shifted_solve_numpy`, or its
        compiled twin :func:`solvers.fluctuations_numba.shifted_solve` when numba is there)."""
        b = self.bands
        omega = np.ascontiguousarray(omega, dtype=float)
        rhs = np.ascontiguousarray(rhs, dtype=complex)
        if numba_available():
            from solvers.fluctuations_numba import shifted_solve

            return shifted_solve(omega, np.ascontiguousarray(b.diag, dtype=float),
                                 np.ascontiguousarray(b.lower, dtype=float),
                                 np.ascontiguousarray(b.upper, dtype=float), rhs)
        return shifted_solve_numpy(omega, b.diag, b.lower, b.upper, rhs)

    def adjoint_solve(self, omega: np.ndarray, W: np.ndarray) -> np.ndarray:
        """``Z = (−iω − Aᵀ)⁻¹ W`` (nω, P·M, k) up to constants per population (``ω > 0``; as
        ``ω → 0`` the rounding error grows along the constants only, which ``Q`` and ``Uᵀ``
        annihilate)."""
        k = W.shape[1]
        U = self.bands.columns
        G = self._local_solve(omega, np.concatenate([self.project(W), self.project(self.bands.psi)],
                                                    axis=1))
        GW, GR = G[:, :, :k], G[:, :, k:]
        small = np.eye(U.shape[1])[None] - np.einsum("ia,wib->wab", U, GR)
        return GW + GR @ np.linalg.solve(small, np.einsum("ia,wib->wab", U, GW))

    def quadratic(self, Z: np.ndarray) -> np.ndarray:
        """``Zᴴ Q Z`` (…, k, k) with ``Q = Σ_faces traffic · d dᵀ`` (constants per population
        drop out); ``Z`` (…, P·M, k)."""
        P, M = self.shape
        out = 0
        for p in range(P):
            dz = np.diff(Z[..., p * M:(p + 1) * M, :], axis=-2)
            out = out + np.swapaxes(dz.conj(), -1, -2) @ (self.bands.traffic[p][:, None] * dz)
        return out

    def spectrum(self, W: np.ndarray, omega: np.ndarray, *, chunk: int | None = None
                 ) -> np.ndarray:
        """``S(ω) = Zᴴ Q Z`` (nω, k, k) for the readouts ``W`` (P·M, k), ``chunk`` ω at a time
        (default: about 8·10⁶ complex numbers of work space per chunk)."""
        omega = np.asarray(omega, dtype=float)
        if chunk is None:
            P, M = self.shape
            chunk = int(np.clip(8_000_000 // (P * M * (W.shape[1] + P)), 16, 2048))
        out = np.empty((omega.size, W.shape[1], W.shape[1]), dtype=complex)
        for start in range(0, omega.size, chunk):
            part = omega[start:start + chunk]
            out[start:start + chunk] = self.quadratic(self.adjoint_solve(part, W))
        return out


def resolvent_moments(system: ResolventSystem, W: np.ndarray, *, rtol: float = 1e-9,
                      max_halvings: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """``(n·Cov(y), S(0))`` for ``y = Wᵀη`` by the trapezoidal rule in ``log ω`` (module doc).

    ``ω`` runs from ``ω_lo = 10⁻¹⁰ s`` to ``ω_hi = 10⁴ s``, ``s = max|diag L|`` the fastest
    rate; ``S(0)`` is taken as ``S(ω_lo)`` (relative error ``(ω_lo/|λ|_min)²``). The step starts
    at 0.5 and is halved until every entry changes by less than ``rtol √(C_ii C_jj)``;
    ValueError if ``max_halvings`` halvings do not reach it.
    """
    b = system.bands
    scale = float(np.max(np.abs(b.diag)))
    if not scale > 0:
        bad_value("system", scale, "a non-trivial linear-noise system")
    lo, hi = np.log(1e-10 * scale), np.log(1e4 * scale)
    high = system.quadratic(system.project(W)[None])[0].real  # WᵀQW: S(ω) ≈ WᵀQW/ω² for large ω

    def integrand(u: np.ndarray) -> np.ndarray:
        w = np.exp(u)
        return system.spectrum(W, w).real * w[:, None, None]

    step = 0.5
    count = int(np.ceil((hi - lo) / step)) + 1
    values = integrand(lo + step * np.arange(count))
    s0 = values[0] / np.exp(lo)
    previous = None
    for _ in range(max_halvings + 1):
        total = step * (values.sum(axis=0) - 0.5 * (values[0] + values[-1]))
        u_hi = lo + step * (values.shape[0] - 1)
        total += values[0] + high / np.exp(u_hi)  # ∫₀^{ω_lo} S ≈ ω_lo S(ω_lo); tail WᵀQW/ω_hi
        cov = total / np.pi
        norm = np.sqrt(np.outer(np.abs(np.diag(cov)), np.abs(np.diag(cov))))
        if previous is not None and np.all(np.abs(cov - previous) <= rtol * norm):
            return (cov + cov.T) / 2, (s0 + s0.T) / 2
        previous = cov
        mids = integrand(lo + step * (np.arange(values.shape[0] - 1) + 0.5))
        merged = np.empty((2 * values.shape[0] - 1, *values.shape[1:]))
        merged[0::2], merged[1::2] = values, mids
        values, step = merged, step / 2
    bad_value("rtol", rtol, f"a tolerance reached within {max_halvings} halvings of the step "
              "(the spectrum has a nearly undamped mode: the state is close to a Hopf point)")
    raise AssertionError("unreachable")


def shifted_solve_numpy(omega: np.ndarray, diag: np.ndarray, lower: np.ndarray,
                        upper: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``(−iω − Lᵀ)⁻¹ rhs`` (nω, P·M, k) for every ω at once (``diag`` (P, M), ``lower`` and
    ``upper`` (P, M−1) the bands of ``L``): the Thomas algorithm per block, vectorised over ω
    (no pivoting needed: ``−Lᵀ`` has zero row sums and non-positive off-diagonal entries, so
    ``−iω − Lᵀ`` is diagonally dominant)."""
    P, M = diag.shape
    shift = -1j * np.asarray(omega, dtype=float)[:, None]
    out = np.empty((shift.shape[0], P * M, rhs.shape[1]), dtype=complex)
    for p in range(P):
        sup = -lower[p]  # K_{i,i+1} = −(Lᵀ)_{i,i+1} = −L_{i+1,i}
        sub = -upper[p]  # K_{i+1,i} = −L_{i,i+1}
        band = shift - diag[p][None, :]
        d = rhs[p * M:(p + 1) * M]
        cp = np.empty((shift.shape[0], M), dtype=complex)
        dp = np.empty((shift.shape[0], M, rhs.shape[1]), dtype=complex)
        cp[:, 0] = (sup[0] if M > 1 else 0.0) / band[:, 0]
        dp[:, 0] = d[0][None, :] / band[:, 0, None]
        for i in range(1, M):
            pivot = band[:, i] - sub[i - 1] * cp[:, i - 1]
            cp[:, i] = (sup[i] if i < M - 1 else 0.0) / pivot
            dp[:, i] = (d[i][None, :] - sub[i - 1] * dp[:, i - 1]) / pivot[:, None]
        x = out[:, p * M:(p + 1) * M]
        x[:, M - 1] = dp[:, M - 1]
        for i in range(M - 2, -1, -1):
            x[:, i] = dp[:, i] - cp[:, i, None] * x[:, i + 1]
    return out
