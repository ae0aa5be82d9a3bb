"""Studies: convergence and comparison runs that combine `solvers` and `asymptotics`.

Each study returns an ``xarray.Dataset`` (model, parameters, package version and fitted slopes in
its attributes) and has a ``plot()``: ``meanfield.studies.plot(ds)`` or ``ds.study.plot()``.
Independent points run on Dask with ``client=`` and persist with ``directory=``
(:mod:`meanfield.studies.sweep`).
"""

from meanfield.studies.convergence import (
    gamma_convergence,
    gamma_slopes,
    grid_convergence,
    stationary_predictions,
    time_convergence,
)
from meanfield.studies.fitting import SlopeFit, fit_slope
from meanfield.studies.plotting import plot, slopes_table
from meanfield.studies.sweep import grid_points, load_sweep, run_points, run_sweep
from meanfield.studies.truncated import truncation_study

# isort: off
# one line per study module (kept unsorted so each can be added on its own)
from meanfield.studies import accessor  # noqa: F401  (registers ds.study)
from meanfield.studies import fitzhugh_nagumo  # noqa: F401
from meanfield.studies import network  # noqa: F401
from meanfield.studies import rescaled  # noqa: F401  (time-dependent truncated equations)
from meanfield.studies.double_limit_map import double_limit_map  # noqa: F401
# isort: on

__all__ = [
    "SlopeFit",
    "fit_slope",
    "gamma_convergence",
    "gamma_slopes",
    "grid_convergence",
    "grid_points",
    "load_sweep",
    "plot",
    "run_points",
    "run_sweep",
    "slopes_table",
    "stationary_predictions",
    "time_convergence",
    "truncation_study",
]
