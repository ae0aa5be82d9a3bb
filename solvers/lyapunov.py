r"""The linear-noise system of the finite-volume scheme (docs/mathematics.md §9, docs/fluctuations.md).

The Scharfetter–Gummel scheme is the master equation of a jump process between neighbouring
cells: on cell masses ``p_i = ρ_i h_i`` the face flux ``J_{i+1/2} = a_i ρ_i − b_i ρ_{i+1}`` is the
rate ``a_i/h_i`` of a jump ``i → i+1`` minus the rate ``b_i/h_{i+1}`` of a jump ``i+1 → i``.
For ``n`` agents per population the fluctuation ``η = √n (p̂ − p)`` of the cell fractions obeys,
to leading order in ``n^{-1/2}``,

.. math:: d\eta = A\,\eta\,dt + B\,dW, \qquad
   A = \mathrm{blockdiag}(L_p) + \Big(\frac{\partial (L_p(m) p_p)}{\partial m_q}\Big)\,\Psi^T,
   \qquad B B^T = Q = \sum_{p,i} (a_{p,i}\rho_{p,i} + b_{p,i}\rho_{p,i+1})\, d_i d_i^T,

``d_i = e_{i+1} − e_i`` (a jump through face ``i``), ``L_p`` the scheme's operator in mass
coordinates and ``Ψ^T η = √n δm``. Each population's mass is conserved, so ``η`` lives on
``{Σ_i η_{p,i} = 0}``; everything is solved on an orthonormal basis ``V`` of that subspace.
At a γ = 0 equilibrium ``A diag(p) + diag(p) A^T + Q = 0`` and ``A p = 0``: the stationary
covariance is the multinomial ``diag(p) − p p^T`` exactly.

Solvers: :func:`stationary_covariance` (Bartels–Stewart on the reduced system, any stable
``A``), :func:`stationary_covariance_modes` (exact and faster at a stationary state, from the
reversibility of the scheme; docs/fluctuations.md §5) and :func:`lyapunov_step` (Crank–Nicolson
for the differential Lyapunov equation). :func:`noise_bands` gives the same system in sparse
form (tridiagonal blocks, rank-P columns, face intensities) for
:mod:`solvers.fluctuations_resolvent`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from meanfield.errors import bad_value
from solvers.fv import bernoulli_derivative, divergence_bands, flux_coefficients, scaled_differences
from solvers.stationary import GibbsMap

DENSE_LIMIT = 4000
"""Largest P·M for the dense Lyapunov solvers (memory ~ 8 (P·M)² bytes per matrix, O((P·M)³))."""


@dataclass(frozen=True, eq=False)
class NoiseSystem:
    """``dη = A η dt + B dW`` on cell masses (P·M), with ``Q = B Bᵀ`` and the readout rows.

    ``basis`` (P·M, P·(M−1)) is orthonormal and spans the zero-mass subspace of each population;
    ``psi`` (P·M, P) holds ``Ψ_q`` on population ``q``'s block (``δm = psiᵀ η / √n``) and
    ``x`` (P·M, P) the cell centres likewise (population means). ``columns`` (P·M, P) are the
    nonlocal columns ``∂(L_p(m) p_p)/∂m_q``, ``forward``/``backward`` (P, M−1) the jump rates
    ``i → i+1`` / ``i+1 → i`` through each face and ``local_diag`` (P, M) the diagonal of the
    local blocks (what the reversible-mode solver needs).
    """

    A: np.ndarray
    Q: np.ndarray
    basis: np.ndarray
    psi: np.ndarray
    x: np.ndarray
    masses: np.ndarray
    columns: np.ndarray | None = None
    forward: np.ndarray | None = None
    backward: np.ndarray | None = None
    local_diag: np.ndarray | None = None

    def reduced(self) -> tuple[np.ndarray, np.ndarray]:
        """``(Vᵀ A V, Vᵀ Q V)``: the system on the zero-mass subspace (exact since ``1ᵀA = 0``)."""
        M = self.A.shape[0] // self.psi.shape[1]
        return project(self.A, M), project(self.Q, M)


def project(X: np.ndarray, M: int) -> np.ndarray:
    """``Vᵀ X V`` for the Householder basis of :func:`zero_mass_basis` in O((P·M)²) (rank-one
    updates by the reflectors instead of dense products)."""
    N = X.shape[0]
    P = N // M
    u = -np.full(M, 1 / np.sqrt(M))
    u[0] += 1.0
    beta = 2 / (u @ u)
    Y = np.array(X, dtype=float, copy=True)
    for p in range(P):
        s = slice(p * M, (p + 1) * M)
        Y[s, :] -= beta * np.outer(u, u @ Y[s, :])
        Y[:, s] -= beta * np.outer(Y[:, s] @ u, u)
    keep = np.concatenate([np.arange(p * M + 1, (p + 1) * M) for p in range(P)])
    return Y[np.ix_(keep, keep)]


def zero_mass_basis(P: int, M: int) -> np.ndarray:
    """Block-diagonal orthonormal basis of ``{Σ_i η_{p,i} = 0 for every p}`` (Householder).

    The reflector ``H = I − 2uuᵀ/uᵀu``, ``u = e_1 − 1/√M``, maps ``e_1`` to ``1/√M``; its other
    ``M − 1`` columns are orthonormal and orthogonal to ``1``.
    """
    u = -np.full(M, 1 / np.sqrt(M))
    u[0] += 1.0
    H = np.eye(M) - 2 * np.outer(u, u) / (u @ u)
    V = np.zeros((P * M, P * (M - 1)))
    for p in range(P):
        V[p * M:(p + 1) * M, p * (M - 1):(p + 1) * (M - 1)] = H[:, 1:]
    return V


@dataclass(frozen=True, eq=False)
class NoiseBands:
    """The linear-noise system in sparse form: ``A = blockdiag(L_p) + U Rᵀ``, ``Q`` from faces.

    ``lower``/``diag``/``upper`` (P, M−1)/(P, M)/(P, M−1): the tridiagonal local blocks ``L_p``
    in mass coordinates (``(L η)_i = lower_{i−1} η_{i−1} + diag_i η_i + upper_i η_{i+1}``);
    ``columns`` (P·M, P) ``U``, ``psi``/``x`` (P·M, P) the readouts (``R = psi``),
    ``traffic`` (P, M−1) the face intensities ``a_i ρ_i + b_i ρ_{i+1}`` of ``Q``,
    ``forward``/``backward`` (P, M−1) the jump rates and ``masses`` (P·M,).
    """

    lower: np.ndarray
    diag: np.ndarray
    upper: np.ndarray
    columns: np.ndarray
    psi: np.ndarray
    x: np.ndarray
    traffic: np.ndarray
    forward: np.ndarray
    backward: np.ndarray
    masses: np.ndarray


def noise_bands(gmap: GibbsMap, rho: np.ndarray, m: np.ndarray, time: float = 0.0) -> NoiseBands:
    """The pieces of the linear-noise system at densities ``rho`` (P, M), moments ``m`` (P,),
    external inputs at ``time``, in O(P²·M) memory (no dense matrix)."""
    nm, grid, gamma = gmap.nm, gmap.grid, gmap.gamma
    P, M = nm.P, grid.cells
    h = grid.h
    mj = np.concatenate([np.asarray(m, float), nm.external_m(time)])
    delta = scaled_differences(gmap.dF, gmap.dG, nm.g, nm.D, mj, gamma)
    a, b = flux_coefficients(delta, nm.D, grid.dx)
    lower, diag, upper = divergence_bands(a, b, h)
    dJ_ddelta = (nm.D[:, None] / grid.dx[None, :]) * (
        bernoulli_derivative(delta) * rho[:, :-1] + bernoulli_derivative(-delta) * rho[:, 1:])
    columns = np.zeros((P * M, P))
    psi = np.zeros((P * M, P))
    xs = np.zeros((P * M, P))
    for p in range(P):
        s = slice(p * M, (p + 1) * M)
        for j in range(P):
            dJ = dJ_ddelta[p] * gamma * nm.g[p, j] * gmap.dG[p, j] / nm.D[p]
            columns[s, j][:-1] -= dJ
            columns[s, j][1:] += dJ
        psi[s, p] = gmap.psi[p]
        xs[s, p] = grid.x
    # mass coordinates: (H L H⁻¹)_{ij} = h_i L_ij / h_j
    return NoiseBands(lower=lower * (h[1:] / h[:-1])[None, :], diag=diag,
                      upper=upper * (h[:-1] / h[1:])[None, :], columns=columns, psi=psi, x=xs,
                      traffic=a * rho[:, :-1] + b * rho[:, 1:], forward=a / h[None, :-1],
                      backward=b / h[None, 1:], masses=(rho * h).ravel())


def noise_system(gmap: GibbsMap, rho: np.ndarray, m: np.ndarray, time: float = 0.0,
                 basis: np.ndarray | None = None) -> NoiseSystem:
    """The linear-noise system at densities ``rho`` (P, M) with moments ``m`` (P,), dense.

    ``rho`` need not be stationary (the transient equation linearises along a trajectory); the
    external inputs are taken at ``time``. The local part and the nonlocal columns are the same
    Scharfetter–Gummel pieces as :func:`solvers.stationary.linearised_spectrum`, in mass units
    (:func:`noise_bands`).
    """
    bands = noise_bands(gmap, rho, m, time)
    P, M = bands.diag.shape
    A = np.zeros((P * M, P * M))
    Q = np.zeros((P * M, P * M))
    idx = np.arange(M)
    for p in range(P):
        s = slice(p * M, (p + 1) * M)
        block = np.zeros((M, M))
        block[idx, idx] = bands.diag[p]
        block[idx[1:], idx[:-1]] = bands.lower[p]
        block[idx[:-1], idx[1:]] = bands.upper[p]
        A[s, s] = block
        for j in range(P):
            A[s, j * M:(j + 1) * M] += np.outer(bands.columns[s, j], bands.psi[j * M:(j + 1) * M, j])
        traffic = bands.traffic[p]
        noise = np.zeros((M, M))
        noise[idx, idx] = np.concatenate([traffic, [0.0]]) + np.concatenate([[0.0], traffic])
        noise[idx[1:], idx[:-1]] = -traffic
        noise[idx[:-1], idx[1:]] = -traffic
        Q[s, s] = noise
    V = zero_mass_basis(P, M) if basis is None else basis
    return NoiseSystem(A=A, Q=Q, basis=V, psi=bands.psi, x=bands.x, masses=bands.masses,
                       columns=bands.columns, forward=bands.forward, backward=bands.backward,
                       local_diag=bands.diag)


def check_size(size: int) -> None:
    if size > DENSE_LIMIT:
        bad_value("cells", f"P·M = {size}", f"P·M <= {DENSE_LIMIT} (dense Lyapunov solvers); "
                  "use fewer cells or a non-uniform grid= concentrated where the mass is")


def stationary_covariance(system: NoiseSystem) -> tuple[np.ndarray, np.ndarray]:
    """``C`` with ``A C + C Aᵀ + Q = 0`` on the zero-mass subspace; returns ``(C, C_reduced)``.

    Bartels–Stewart (``scipy.linalg.solve_continuous_lyapunov``) on ``Vᵀ A V``: O((P·M)³).
    """
    Ar, Qr = system.reduced()
    Cr = sla.solve_continuous_lyapunov(Ar, -Qr)
    Cr = (Cr + Cr.T) / 2
    V = system.basis
    return V @ Cr @ V.T, Cr


def multinomial(masses: np.ndarray, P: int) -> np.ndarray:
    """Block-diagonal ``diag(p) − p pᵀ`` per population (the covariance of iid agents ×n)."""
    M = masses.size // P
    C = np.zeros((masses.size, masses.size))
    for p in range(P):
        s = slice(p * M, (p + 1) * M)
        w = masses[s]
        C[s, s] = np.diag(w) - np.outer(w, w)
    return C


def lyapunov_step(C: np.ndarray, old: NoiseSystem, new: NoiseSystem, dt: float) -> np.ndarray:
    """One Crank–Nicolson step of ``dC/dt = A C + C Aᵀ + Q`` (second order, A-stable).

    ``(C⁺ − C)/Δt = ½[L⁺(C⁺) + L(C)]`` is the Lyapunov equation ``S C⁺ + C⁺ Sᵀ = R`` with
    ``S = A⁺/2 − I/(2Δt)`` and ``R = −C/Δt − ½(A C + C Aᵀ + Q) − ½Q⁺``, solved on the
    zero-mass subspace (both systems share the basis).
    """
    V = old.basis
    Ao, Qo = old.reduced()
    An, Qn = new.reduced()
    Cr = V.T @ C @ V
    S = An / 2 - np.eye(An.shape[0]) / (2 * dt)
    R = -Cr / dt - (Ao @ Cr + Cr @ Ao.T + Qo) / 2 - Qn / 2
    Cn = sla.solve_continuous_lyapunov(S, R)
    Cn = (Cn + Cn.T) / 2
    return V @ Cn @ V.T


def stationary_covariance_modes(system: NoiseSystem) -> np.ndarray:
    """The stationary ``C`` in O((P·M)²·P²) work plus one (P·(M−1)·P)² solve, exploiting
    reversibility: at a stationary state each local block ``L_p`` is a reversible generator with
    the Gibbs masses ``p``, so ``S = D^{-1/2} L D^{1/2}`` (``D = diag p``) is symmetric
    tridiagonal, ``S = Φ Λ Φᵀ`` (``eigh_tridiagonal``), and in the modes ``T = D^{1/2}Φ`` the
    frozen-moment covariance is the identity (the multinomial). With ``A = L + U Rᵀ`` the rest
    ``X`` solves ``ΛX + XΛ = −(F + Ũ Yᵀ + Y Ũᵀ)``, ``F = Ũ R̃ᵀ + R̃ Ũᵀ``, ``Y = X R̃``: one linear
    system for ``Y`` (P·(M−1) × P unknowns), then ``X`` entrywise.

    Valid only at a stationary state (detailed balance of every face).
    """
    P = system.psi.shape[1]
    N = system.A.shape[0]
    M = N // P
    forward, backward, columns = system.forward, system.backward, system.columns
    lam, T, keep = [], np.zeros((N, P * (M - 1))), []
    for p in range(P):
        s = slice(p * M, (p + 1) * M)
        diag = system.local_diag[p]
        off = np.sqrt(forward[p] * backward[p])
        values, vectors = sla.eigh_tridiagonal(diag, off)
        order = np.argsort(-values)  # the zero (mass) mode first
        values, vectors = values[order], vectors[:, order]
        root = np.sqrt(system.masses[s])
        lam.append(values[1:])
        T[s, p * (M - 1):(p + 1) * (M - 1)] = root[:, None] * vectors[:, 1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            inv_root = np.where(root > 0, 1 / root, 0.0)
        keep.append((vectors[:, 1:], inv_root))
    lam = np.concatenate(lam)
    U_t = np.zeros((lam.size, P))
    for p in range(P):
        vectors, inv_root = keep[p]
        U_t[p * (M - 1):(p + 1) * (M - 1)] = vectors.T @ (inv_root[:, None] * columns[p * M:(p + 1) * M])
    R_t = T.T @ system.psi
    W = 1 / (lam[:, None] + lam[None, :])
    F = U_t @ R_t.T
    F = F + F.T
    k = lam.size
    # Y[i,b] + Σ_{j,a} U_t[i,a] R_t[j,b] W_ij Y[j,a] + Σ_a Y[i,a] K2[i,a,b] = −(W∘F) R_t
    K2 = np.einsum("ij,ja,jb->iab", W, U_t, R_t)
    big = np.einsum("ia,jb,ij->ibja", U_t, R_t, W).reshape(k * P, k * P)
    idx = np.arange(k)
    for a in range(P):
        for b in range(P):
            big[idx * P + b, idx * P + a] += K2[:, a, b]
    big += np.eye(k * P)
    rhs = -((W * F) @ R_t)
    Y = np.linalg.solve(big, rhs.ravel()).reshape(k, P)
    X = -W * (F + U_t @ Y.T + Y @ U_t.T)
    X = (X + X.T) / 2
    X[idx, idx] += 1.0
    return T @ X @ T.T
