"""Studies: convergence and comparison runs that combine `solvers` and `asymptotics`.

Each study returns an ``xarray.Dataset`` (model, parameters, package version and fitted slopes in
its attributes) and has a ``plot()``.
"""
