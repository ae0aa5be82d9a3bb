r"""The native solver at one point of a study: argument checks, the state used and its resolution.

:func:`native_point` returns the final (or exact stationary) densities and observables of
``solvers.solve``/``solvers.stationary_states`` with the resolution flag of the state used
(:mod:`solvers.resolution`); :func:`project` moves densities between grids conservatively.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from meanfield.errors import bad_type, bad_value, check_finite_number, check_int
from meanfield.model import Model

NATIVE_METHODS = ("stationary", "sg", "fipy")


def check_model(model: Any) -> Model:
    """``model`` if it is a :class:`meanfield.Model` (else ``TypeError`` naming it)."""
    if not isinstance(model, Model):
        bad_type("model", model, "a meanfield.Model")
    return model


def check_method(method: Any, t_final: Any) -> float | None:
    """The checked ``t_final`` of ``method`` (``None`` for the exact stationary states)."""
    if method not in NATIVE_METHODS:
        bad_value("method", method, f"one of {', '.join(NATIVE_METHODS)}")
    if method == "stationary":
        if t_final is not None:
            bad_value("t_final", t_final, "None with method='stationary' (exact stationary states)")
        return None
    if t_final is None:
        bad_value("t_final", t_final, f"a final time > 0 with the time-dependent method {method!r}")
    return check_finite_number("t_final", t_final, positive=True)


def increasing(name: str, values: Any, *, integer: bool = False, minimum: int = 2) -> np.ndarray:
    """``values`` as an array of at least ``minimum`` strictly increasing numbers (or integers)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        bad_type(name, values, "a list of numbers")
    checked = [check_int(name, v, minimum=3) if integer else
               check_finite_number(name, v, positive=True) for v in values]
    arr = np.asarray(checked, dtype=int if integer else float)
    if arr.size < minimum or np.any(np.diff(arr) <= 0):
        bad_value(name, list(values), f"at least {minimum} strictly increasing values")
    return arr


def select_state(states: Sequence[Any], target: np.ndarray | None = None) -> Any:
    """The stable stationary state nearest ``target`` (means), or the only stable one."""
    if not states:
        raise RuntimeError("no stationary state found")
    stable = [s for s in states if s.stable is not False] or list(states)
    if target is not None:
        return min(stable, key=lambda s: float(np.max(np.abs(s.mean - target))))
    return stable[0]


def native_point(model: Model, gamma: float, cells: int, method: str, t_final: float | None,
            options: Mapping[str, Any], target: np.ndarray | None = None) -> dict[str, Any]:
    """Final (or stationary) densities and observables of the native solver, with ``resolved``.

    ``resolved``/``cells_needed`` come from the resolution report of the state used (for the
    time-dependent methods: of the final frame); the solvers' own ``ResolutionWarning`` is
    replaced by the study's single warning listing the excluded points.
    """
    import warnings

    import solvers
    from meanfield.errors import ResolutionWarning
    from meanfield.numeric import numeric
    from solvers.observables import observe

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResolutionWarning)
        if method == "stationary":
            # with a target the nearest state is taken and stability (a costly spectrum) is skipped
            options = {"stability": target is None, **options}
            states = solvers.stationary_states(model, gamma=gamma, cells=cells, **options)
            state = select_state(states, target)
            obs = observe(numeric(model), state.grid, state.rho[None], np.zeros(1))
            report = state.resolution
            return {"edges": state.edges, "rho": state.rho, "mean": state.mean,
                    "var": state.var, "m": state.m, "balance_residual": obs.balance_residual[0],
                    "resolved": report is None or report.ok,
                    "cells_needed": 0 if report is None else report.cells_needed}
        sol = solvers.solve(model, gamma=gamma, t_final=t_final, cells=cells, method=method,
                            save_at=[0.0, t_final], **options)
    from solvers.resolution import assess_frames

    final = assess_frames(numeric(model), sol.grid, gamma, sol.rho[-1:], sol.t[-1:])
    return {"edges": sol.edges, "rho": sol.rho[-1], "mean": sol.mean[-1], "var": sol.var[-1],
            "m": sol.m[-1], "balance_residual": sol.balance_residual[-1],
            "resolved": final.ok, "cells_needed": final.cells_needed}


def project(edges: np.ndarray, rho: np.ndarray, new_edges: np.ndarray) -> np.ndarray:
    """Cell averages on ``new_edges`` of the piecewise-constant densities ``rho`` (P, M) on ``edges``.

    Exact for piecewise-constant input (the cumulative distribution is interpolated linearly).
    """
    out = []
    for row in np.atleast_2d(rho):
        cumulative = np.concatenate([[0.0], np.cumsum(row * np.diff(edges))])
        out.append(np.diff(np.interp(new_edges, edges, cumulative)) / np.diff(new_edges))
    return np.array(out)
