"""Datasets of stationary states and branches of them (:mod:`solvers.datasets` vocabulary).

One state has dims (population, x); a branch stacks its states along a ``gamma`` coordinate,
with the eigenvalue lists padded by NaN (``eigenvalue_count`` says how many are real entries,
-1 when the stability was not computed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from solvers.datasets import Reader, build_dataset


def _code(stable: bool | None) -> int:
    return -1 if stable is None else int(bool(stable))


def states_dataset(states: Sequence[Any], *, branch: bool) -> Any:
    """The dataset of one state (``branch=False``) or of a branch's states along ``gamma``."""
    lead: tuple[str, ...] = ("gamma",) if branch else ()
    first = states[0]

    def stack(name: str) -> Any:
        values = [np.asarray(getattr(s, name)) for s in states]
        return np.stack(values) if branch else values[0]

    per = (*lead, "population")
    data: dict[str, Any] = {"rho": ((*lead, "population", "x"), stack("rho")),
                            "m": (per, stack("m")), "mean": (per, stack("mean")),
                            "var": (per, stack("var")), "edges": (("edge",), first.edges),
                            "residual": (lead, stack("residual")),
                            "stable": (lead, np.array([_code(s.stable) for s in states],
                                                      dtype=np.int8).reshape(len(states))
                                       if branch else np.int8(_code(first.stable)))}
    if all(s.error_mean is not None and s.error_var is not None for s in states):
        data.update(error_mean=(per, stack("error_mean")), error_var=(per, stack("error_var")))
    counts = [-1 if s.eigenvalues is None else len(s.eigenvalues) for s in states]
    width = max(max(counts), 0)
    eig = np.full((len(states), width), np.nan, dtype=complex)
    for k, s in enumerate(states):
        if s.eigenvalues is not None:
            eig[k, : len(s.eigenvalues)] = s.eigenvalues
    eig = eig if branch else eig[0]
    data.update(eigenvalue_real=((*lead, "eigenvalue"), eig.real),
                eigenvalue_imag=((*lead, "eigenvalue"), eig.imag),
                eigenvalue_count=(lead, np.array(counts) if branch else np.int64(counts[0])))
    coords = {"population": (("population",), list(first.model.names)), "x": (("x",), first.x)}
    if branch:
        coords["gamma"] = (("gamma",), np.array([s.gamma for s in states]))
    reports = [None if s.resolution is None else s.resolution.as_dict() for s in states]
    return build_dataset("Branch" if branch else "StationaryState", data=data, coords=coords,
                         model=first.model, gamma=None if branch else first.gamma,
                         solver="stationary_states", info={"resolution": reports},
                         attrs={"resolved": str(all(r is None or r["ok"] for r in reports))})


def states_from_dataset(ds: Any, path: Any, *, branch: bool) -> list[Any]:
    """The states of :func:`states_dataset` (every array checked; errors name ``path``)."""
    from solvers.io import read_density, read_grid
    from solvers.resolution import report_from_dict
    from solvers.stationary import StationaryState

    r = Reader(ds, path, "Branch" if branch else "StationaryState")
    model = r.model()
    r.size("population", model.P)
    edges, x = read_grid(r)
    lead: tuple[str, ...] = ("gamma",) if branch else ()
    if branch:
        r.size("gamma", minimum=1)
        gammas = r.array("gamma", ("gamma",))
        if np.any(gammas < 0) or np.any(np.diff(gammas) <= 0):
            r.fail("gamma is not strictly increasing and >= 0")
    else:
        gammas = np.array([r.number("gamma", minimum=0)])
    count = gammas.size
    per = (*lead, "population")
    rho = read_density(r, "rho", (*lead, "population", "x")).reshape(count, model.P, x.size)
    fields = {name: r.array(name, per).reshape(count, model.P) for name in ("m", "mean", "var")}
    errors = {name: r.array(name, per).reshape(count, model.P)
              for name in ("error_mean", "error_var") if name in ds.variables}
    residual = r.array("residual", lead).reshape(count)
    stable = r.array("stable", lead, dtype=int).reshape(count)
    if np.any((stable < -1) | (stable > 1)):
        r.fail("stable has codes other than 1 (stable), 0 (unstable), -1 (not computed)")
    counts = r.array("eigenvalue_count", lead, dtype=int).reshape(count)
    eig = (r.array("eigenvalue_real", (*lead, "eigenvalue"), finite=False)
           + 1j * r.array("eigenvalue_imag", (*lead, "eigenvalue"), finite=False))
    eig = eig.reshape(count, -1)
    if np.any(counts < -1) or np.any(counts > eig.shape[1]) or any(
            np.any(np.isnan(eig[k, : max(c, 0)])) for k, c in enumerate(counts)):
        r.fail("eigenvalue_count does not match the eigenvalues stored")
    reports = r.mapping("info").get("resolution", [None] * count)
    if not isinstance(reports, list) or len(reports) != count:
        r.fail(f"the info 'resolution' is not a list of {count} reports")
    try:
        reports = [None if rep is None else report_from_dict(rep) for rep in reports]
    except (KeyError, TypeError, ValueError) as err:
        r.fail(f"the info 'resolution' is not a resolution report: {str(err)[:200]}")
    return [StationaryState(
        model=model, gamma=float(gammas[k]), x=x.copy(), rho=rho[k], m=fields["m"][k],
        mean=fields["mean"][k], var=fields["var"][k], residual=float(residual[k]),
        stable=None if stable[k] < 0 else bool(stable[k]),
        eigenvalues=None if counts[k] < 0 else eig[k, : counts[k]].copy(), edges=edges.copy(),
        resolution=reports[k], error_mean=errors["error_mean"][k] if errors else None,
        error_var=errors["error_var"][k] if errors else None) for k in range(count)]
