r"""Initial data of the zoomed-frame solvers: the accepted forms, their moments, their checks.

An initial density is a callable of ``x`` (its mass located by refined midpoint scans), a
:class:`Gaussian` ``(mean, std)`` (placed exactly, however narrow) or ``(x, density)`` samples
(piecewise linear, moments exact). :func:`initial_states` parses any of them into one
:class:`Start` per population; :func:`moments_of` finds the mean and standard deviation of a
callable profile, which place the first window of the frame (``docs/mathematics.md §6``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from meanfield.errors import bad_type, bad_value, check_finite_number
from meanfield.numeric import NumericModel


@dataclass(frozen=True)
class Gaussian:
    r"""An initial density ``N(mean, std²)``: ``exp(−(x − mean)²/(2 std²)) / (√(2π) std)``.

    Callable (so any solver taking callables of ``x`` accepts it); the zoomed-frame solvers use
    its known moments directly, so it is placed exactly however narrow it is (at γ = 1e12 the
    concentration width ``√(D/(γA))`` is ~1e-6).
    """

    mean: float
    std: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", check_finite_number("mean", self.mean))
        object.__setattr__(self, "std", check_finite_number("std", self.std, positive=True))

    def __call__(self, x: Any) -> np.ndarray:
        z = (np.asarray(x, dtype=float) - self.mean) / self.std
        return np.exp(-0.5 * z * z) / (np.sqrt(2 * np.pi) * self.std)


@dataclass(frozen=True, eq=False)
class Start:
    """One population's initial density: a vectorised ``profile`` of ``x`` and, when known
    (``Gaussian``, samples), its ``moments`` (mean, std); else they are found by scanning."""

    profile: Callable[[np.ndarray], np.ndarray]
    moments: tuple[float, float] | None = None


_ENTRY = ("a callable of x, a solvers.Gaussian(mean, std) or an (x, density) pair of 1-D arrays "
          "(samples on your own grid, linearly interpolated, zero outside)")


def _is_samples(entry: Any) -> bool:
    """Whether ``entry`` is an ``(x, density)`` pair of 1-D arrays (not callables)."""
    if not isinstance(entry, (tuple, list)) or len(entry) != 2 or any(callable(e) for e in entry):
        return False
    try:
        return all(np.ndim(np.asarray(e, dtype=float)) == 1 for e in entry)
    except (TypeError, ValueError):
        return False


def _is_entry(entry: Any) -> bool:
    return callable(entry) or _is_samples(entry)


def _check_values(name: str, xs: np.ndarray, values: np.ndarray) -> None:
    """``ValueError`` naming the first non-finite or negative density value and where it is."""
    bad = ~np.isfinite(values) | (values < 0)
    if np.any(bad):
        k = int(np.argmax(bad))
        bad_value(f"{name}(x={float(xs[k]):.9g})", float(values[k]),
                  "an initial density takes finite, nonnegative values")


def _from_samples(name: str, entry: Any, domain: tuple[float, float]) -> Start:
    r"""The piecewise-linear density through samples ``(x, density)``; its moments exactly.

    On ``[x_i, x_{i+1}]`` (``h = x_{i+1} − x_i``, ``u = x − x_ref``) the interpolant integrates to
    ``h(ρ_i + ρ_{i+1})/2``, ``h(ρ_i(2u_i + u_{i+1}) + ρ_{i+1}(u_i + 2u_{i+1}))/6`` and
    ``h(ρ_i(3u_i² + 2u_iu_{i+1} + u_{i+1}²) + ρ_{i+1}(u_i² + 2u_iu_{i+1} + 3u_{i+1}²))/12``.
    """
    x, rho = (np.asarray(e, dtype=float) for e in entry)
    if x.size != rho.size or x.size < 2:
        bad_value(name, entry, "an (x, density) pair of 1-D arrays of the same length >= 2")
    if not np.all(np.isfinite(x)) or np.any(np.diff(x) <= 0):
        bad_value(name, entry, "samples at finite, strictly increasing x")
    a, b = domain
    if x[0] < a or x[-1] > b:
        bad_value(name, entry, f"samples at x inside the domain [{a}, {b}]")
    _check_values(name, x, rho)
    h = np.diff(x)
    mass = float(h @ (rho[1:] + rho[:-1])) / 2
    if not mass > 0:
        bad_value(name, entry, "an initial density with positive mass (the samples are all 0)")
    peak = int(np.argmax(rho))
    u = x - x[peak]  # moments about the peak: no cancellation for narrow profiles
    ul, ur, rl, rr = u[:-1], u[1:], rho[:-1], rho[1:]
    first = float(h @ (rl * (2 * ul + ur) + rr * (ul + 2 * ur))) / 6 / mass
    second = float(h @ (rl * (3 * ul**2 + 2 * ul * ur + ur**2)
                        + rr * (ul**2 + 2 * ul * ur + 3 * ur**2))) / 12 / mass
    std = np.sqrt(max(second - first**2, 0.0))
    if not std > 0:
        std = float(np.min(h))
    return Start(lambda xs: np.interp(xs, x, rho, left=0.0, right=0.0),
                  (float(x[peak] + first), float(std)))


def initial_states(nm: NumericModel, initial: Any, domain: tuple[float, float]
                    ) -> list[Start]:
    """Parse ``initial`` (see :func:`solvers.solve_rescaled`) into one :class:`Start` per population."""
    P = nm.P
    if initial is None:
        return [Start(fn) for fn in nm.initial]
    allowed = f"None, or one or a sequence of {P} of: {_ENTRY}"
    if _is_entry(initial):
        entries = [initial] * P
    elif (isinstance(initial, (str, bytes)) or not isinstance(initial, Sequence)
          or len(initial) != P or not all(_is_entry(e) for e in initial)):
        bad_type("initial", initial, allowed)
    else:
        entries = list(initial)

    def wrap(fn: Callable[[np.ndarray], Any]) -> Callable[[np.ndarray], np.ndarray]:
        @functools.wraps(fn)  # error messages show the user's function
        def profile(xs: np.ndarray) -> np.ndarray:
            return np.broadcast_to(np.asarray(fn(xs), dtype=float), np.shape(xs))
        return profile

    starts = []
    for p, entry in enumerate(entries):
        name = f"initial[{p}]"
        if isinstance(entry, Gaussian):
            if not domain[0] < entry.mean < domain[1]:
                bad_value(name, entry, f"a Gaussian with its mean inside the domain {domain}")
            starts.append(Start(entry, (entry.mean, entry.std)))
        elif callable(entry):
            starts.append(Start(wrap(entry)))
        else:
            starts.append(_from_samples(name, entry, domain))
    return starts


def initial_profiles(nm: NumericModel, initial: Any,
                      domain: tuple[float, float] = (-np.inf, np.inf)
                      ) -> list[Callable[[np.ndarray], np.ndarray]]:
    """The initial densities as callables of ``x`` (any form :func:`solvers.solve_rescaled` accepts)."""
    return [start.profile for start in initial_states(nm, initial, domain)]


_SCAN_CELLS = 4000
"""Cells of the first scan of a profile (midpoint samples); finer scans refine by ``_REFINE``."""
_REFINE = 16
_FINEST_CELLS = 4000 * 16**3
"""Finest scan of a region (1.6e7 cells: spacing 6e-7 on a domain of length 10)."""
_CHUNK = 2**20


def _scan(fn: Callable[[np.ndarray], np.ndarray], lo: float, hi: float, name: str
          ) -> tuple[float, float, float]:
    """Mean, std and spacing of the coarsest midpoint scan of ``[lo, hi]`` that sees mass.

    Scans with 4000, 64 000, ... cells (in chunks), stopping at the first that has a positive
    value; raises the named ``ValueError`` for non-finite or negative values, or when even the
    finest scan sees none (a zero density, or one narrower than that spacing).
    """
    cells = _SCAN_CELLS
    while True:
        h = (hi - lo) / cells
        if cells <= _CHUNK:  # one chunk: the plain sums
            xs = np.linspace(lo, hi, cells + 1)
            h = xs[1] - xs[0]
            centres = (xs[1:] + xs[:-1]) / 2
            values = np.asarray(fn(centres), dtype=float)
            _check_values(name, centres, values)
            mass = values.sum()
            if mass > 0:
                mean = float(centres @ values / mass)
                return mean, float(np.sqrt(((centres - mean) ** 2) @ values / mass)), h
        else:  # moments about the first positive sample, accumulated over chunks
            shift, sums = None, np.zeros(3)
            for start in range(0, cells, _CHUNK):
                centres = lo + (np.arange(start, min(cells, start + _CHUNK)) + 0.5) * h
                values = np.asarray(fn(centres), dtype=float)
                _check_values(name, centres, values)
                positive = np.flatnonzero(values > 0)
                if positive.size == 0:
                    continue
                if shift is None:
                    shift = float(centres[positive[0]])
                u = centres[positive] - shift
                w = values[positive]
                sums += [w.sum(), u @ w, (u * u) @ w]
            if shift is not None:
                mean = sums[1] / sums[0]
                return float(shift + mean), float(np.sqrt(max(sums[2] / sums[0] - mean**2, 0.0))), h
        if cells >= _FINEST_CELLS:
            bad_value(name, fn, f"an initial density with positive mass on [{lo:.9g}, {hi:.9g}] "
                      f"(it is 0 at all {cells} points of a scan with spacing {h:.3g}; give a "
                      "narrower profile as solvers.Gaussian(mean, std) or (x, density) samples)")
        cells *= _REFINE


def moments_of(fn: Callable[[np.ndarray], np.ndarray], domain: tuple[float, float],
                name: str) -> tuple[float, float]:
    """Mean and standard deviation of the profile ``fn``, zooming in on narrow profiles.

    Each round scans the current region (:func:`_scan`, refined until it sees the mass) and
    zooms to ``mean ± 30 std`` until the profile spans more than 40 sample spacings.
    """
    lo, hi = domain
    mean = std = 0.0
    for _ in range(12):
        mean, std, width = _scan(fn, lo, hi, name)
        if std > 40 * width:
            return mean, std
        lo, hi = max(domain[0], mean - 30 * max(std, width)), min(domain[1], mean + 30 * max(
            std, width))
    return mean, max(std, (hi - lo) / 4000)
