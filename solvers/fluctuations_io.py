"""Datasets of :class:`~solvers.Fluctuations` and :class:`~solvers.TransientFluctuations`.

Variables per observable ``y`` (``m`` or ``mean``): ``y_cov``, ``y_var`` and, stationary,
``y_correlation_time``, ``y_autocorrelation`` (at the lags ``tau``), ``y_spectrum`` (at the
angular frequencies ``omega``); ``covariance`` is n·Cov of the cell masses (docs/mathematics.md §9).
"""

from __future__ import annotations

from typing import Any

from solvers.datasets import TIME, Reader, build_dataset

WHAT = {"m": "activity m_q", "mean": "population mean"}
OBSERVABLES = tuple(WHAT)


def _meta(names: Any) -> dict[str, tuple[str, str, str]]:
    extra = {
        "covariance": ("n·Cov of cell masses", "1", "n x covariance of the masses of the cells "
                       "(population-major, P·M); at a stationary state the solution of "
                       "A C + C Aᵀ + B Bᵀ = 0 on the zero-mass subspace"),
        "population2": ("population (second index)", "1", "second population index of a "
                        "covariance matrix"),
        "tau": ("lag", TIME, "lags of the tabulated autocorrelations"),
        "omega": ("angular frequency", f"1/({TIME})", "angular frequencies of the tabulated "
                  "power spectra"),
    }
    for name in names:
        what = WHAT[name]
        extra[f"{name}_cov"] = (f"n·Cov, {what}", "1", f"n x covariance matrix of the {what}")
        extra[f"{name}_var"] = (f"n·Var, {what}", "1", f"n x variance of the {what}")
        extra[f"{name}_correlation_time"] = (
            f"correlation time, {what}", TIME,
            "integral over tau >= 0 of the normalised autocorrelation, Wᵀ(−A)⁻¹CW / WᵀCW")
        extra[f"{name}_autocorrelation"] = (
            f"autocorrelation, {what}", "1", "Cov(y(t+tau), y(t)) / Var(y), from Wᵀ e^{A tau} C W")
        extra[f"{name}_spectrum"] = (f"power spectrum, {what}", TIME,
                                     "n x int e^{-i omega tau} Cov(y(t+tau), y(t)) dtau (real)")
    return extra


def fluctuations_dataset(fl: Any) -> Any:
    pops = list(fl.model.names)
    data: dict[str, Any] = {"rho": (("population", "x"), fl.rho), "m": (("population",), fl.m),
                            "covariance": (("cell", "cell2"), fl.covariance),
                            "edges": (("edge",), fl.edges)}
    for name in fl.cov:
        data[f"{name}_cov"] = (("population", "population2"), fl.cov[name])
        data[f"{name}_var"] = (("population",), fl.var[name])
        data[f"{name}_correlation_time"] = (("population",), fl.correlation_time[name])
        if name in fl.autocorrelation:
            data[f"{name}_autocorrelation"] = (("tau", "population"), fl.autocorrelation[name])
        if name in fl.spectrum:
            data[f"{name}_spectrum"] = (("omega", "population"), fl.spectrum[name])
    coords = {"population": (("population",), pops), "population2": (("population2",), pops),
              "x": (("x",), fl.x), "tau": (("tau",), fl.tau), "omega": (("omega",), fl.omega)}
    return build_dataset("Fluctuations", data=data, coords=coords, model=fl.model,
                         gamma=fl.gamma, solver="fluctuations", info=fl.info,
                         extra=_meta(fl.cov))


def transient_dataset(tr: Any) -> Any:
    pops = list(tr.model.names)
    data: dict[str, Any] = {"covariance": (("t", "cell", "cell2"), tr.covariance),
                            "edges": (("edge",), tr.edges)}
    for name in tr.cov:
        data[f"{name}_cov"] = (("t", "population", "population2"), tr.cov[name])
        data[f"{name}_var"] = (("t", "population"), tr.var[name])
    coords = {"t": (("t",), tr.t), "population": (("population",), pops),
              "population2": (("population2",), pops), "x": (("x",), tr.x)}
    return build_dataset("TransientFluctuations", data=data, coords=coords, model=tr.model,
                         gamma=tr.gamma, solver="transient_fluctuations", info=tr.info,
                         extra=_meta(tr.cov))


def _common(r: Reader, lead: tuple[str, ...], *, cells: bool = True
            ) -> tuple[Any, Any, Any, dict[str, Any]]:
    """Shared checks; ``cells=False``: the cell covariance is empty (the resolvent method)."""
    from solvers.io import read_grid

    model = r.model()
    r.size("population", model.P)
    r.size("population2", model.P)
    edges, x = read_grid(r)
    size = model.P * x.size if cells else 0
    r.array("covariance", (*lead, "cell", "cell2"))
    r.size("cell", size)
    r.size("cell2", size)
    names = [name for name in OBSERVABLES if f"{name}_cov" in r.ds.variables]
    if not names:
        r.fail(f"none of {[f'{n}_cov' for n in OBSERVABLES]} is stored")
    return model, edges, x, {"names": names, "size": size}


def read_fluctuations(ds: Any, path: Any) -> Any:
    """A :class:`~solvers.Fluctuations` (every array checked; its linear system rebuilt from the
    stored state, so :meth:`autocovariance` and :meth:`power_spectrum` work after loading)."""
    from meanfield.numeric import numeric
    from solvers.fluctuations import Fluctuations
    from solvers.fluctuations_resolvent import ResolventSystem
    from solvers.grid import Grid
    from solvers.io import read_density
    from solvers.lyapunov import noise_bands, noise_system
    from solvers.stationary import GibbsMap

    r = Reader(ds, path, "Fluctuations")
    info = r.mapping("info")
    resolvent = info.get("method") == "resolvent"
    model, edges, x, found = _common(r, (), cells=not resolvent)
    names = found["names"]
    gamma = r.number("gamma", minimum=0)
    rho = read_density(r, "rho", ("population", "x"))
    m = r.array("m", ("population",))
    pair, per = ("population", "population2"), ("population",)
    cov = {n: r.array(f"{n}_cov", pair) for n in names}
    var = {n: r.array(f"{n}_var", per) for n in names}
    tc = {n: r.array(f"{n}_correlation_time", per) for n in names}
    acf = {n: r.array(f"{n}_autocorrelation", ("tau", "population")) for n in names
           if f"{n}_autocorrelation" in ds.variables}
    spec = {n: r.array(f"{n}_spectrum", ("omega", "population")) for n in names
            if f"{n}_spectrum" in ds.variables}
    gmap = GibbsMap(numeric(model), Grid(edges), gamma)
    system = (ResolventSystem(noise_bands(gmap, rho, m)) if resolvent
              else noise_system(gmap, rho, m))
    return Fluctuations(model=model, gamma=gamma, x=x, rho=rho, m=m,
                        covariance=r.array("covariance", ("cell", "cell2")), cov=cov, var=var,
                        tau=r.array("tau", ("tau",)), autocorrelation=acf, correlation_time=tc,
                        omega=r.array("omega", ("omega",)), spectrum=spec, edges=edges,
                        system=system, info=info)


def read_transient(ds: Any, path: Any) -> Any:
    """A :class:`~solvers.TransientFluctuations` (every array checked)."""
    from solvers.fluctuations import TransientFluctuations
    from solvers.io import read_times

    r = Reader(ds, path, "TransientFluctuations")
    model, edges, x, found = _common(r, ("t",))
    names = found["names"]
    cov = {n: r.array(f"{n}_cov", ("t", "population", "population2")) for n in names}
    var = {n: r.array(f"{n}_var", ("t", "population")) for n in names}
    return TransientFluctuations(
        model=model, gamma=r.number("gamma", minimum=0), t=read_times(r), x=x,
        covariance=r.array("covariance", ("t", "cell", "cell2")), cov=cov, var=var, edges=edges,
        info=r.mapping("info"))
